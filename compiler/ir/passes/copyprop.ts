// Copy propagation within blocks: after `rD = mov.64 rS`, reads of rD become reads of rS until
// either is written; after `rD = mov.32 rS`, only reads of rD's low half are redirected (rD is rS
// zero-extended, which equals rS only in the low half). The copies themselves are left for dead
// code elimination. Registers an instruction also writes (atomic fetch sources) and implicit
// operands (call arguments, cmpxchg's r0) are never renamed.
// Clears hiDead marks (the narrowing pass recomputes them).
import type { Inst, IrFunction, IrModule, Operand, Reg } from '../ir.js';
import { isDef, SHIFT_BIN, writeSpan, type InPlacePass } from './util.js';

/** The copies live at one point of a block: copySrc[r] is the register r copies (-1: none), copyW[r] the copy's width. */
class Copies {
  readonly src: Int32Array;
  readonly w: Uint8Array;
  constructor(nregs: number) {
    this.src = new Int32Array(nregs).fill(-1);
    this.w = new Uint8Array(nregs);
  }

  /** The register to read instead of r, for a read of its low half only (lowOnly) or all of it. */
  resolve(r: Reg, lowOnly: boolean): Reg {
    const s = this.src[r];
    if (s < 0) return r;
    return this.w[r] === 64 || lowOnly ? s : r;
  }

  /** `o` with its register resolved: the same object when nothing changes (operands are never mutated). */
  operand(o: Operand, lowOnly: boolean): Operand {
    if (!('reg' in o)) return o;
    const r = this.resolve(o.reg, lowOnly);
    return r === o.reg ? o : { reg: r };
  }

  /** r was written: its copy, and every copy of it, end. */
  written(r: Reg): void {
    const src = this.src;
    src[r] = -1;
    for (let d = 0; d < src.length; d++) if (src[d] === r) src[d] = -1;
  }
}

function renameReads(c: Copies, i: Inst): void {
  switch (i.op) {
    case 'mov': case 'neg': i.src = c.resolve(i.src, i.w === 32); break;
    case 'ext': i.src = c.resolve(i.src, true); break;
    case 'bswap': i.src = c.resolve(i.src, i.bits !== 64); break;
    case 'bin':
      i.a = c.resolve(i.a, i.w === 32);
      i.b = c.operand(i.b, i.w === 32 || SHIFT_BIN.has(i.bin));
      break;
    case 'load': i.base = c.resolve(i.base, false); break;
    case 'store':
      i.base = c.resolve(i.base, false);
      i.value = c.operand(i.value, i.size < 8);
      break;
    case 'atomic':
      i.base = c.resolve(i.base, false);
      if (!i.fetch) i.src = c.resolve(i.src, i.size === 4);
      break;
    case 'callx': i.reg = c.resolve(i.reg, false); break;
    default: break;
  }
}

function copyPropFunction(f: IrFunction): void {
  const c = new Copies(Math.max(10, f.maxReg) + 1);
  for (const b of f.blocks) {
    c.src.fill(-1);
    for (const i of b.insts) {
      if (isDef(i) && i.hiDead !== undefined) i.hiDead = undefined;
      renameReads(c, i);
      for (let span = writeSpan(i), r = span >> 3, end = r + (span & 7); r < end; r++) c.written(r);
      if (i.op === 'mov' && i.src !== i.dst) {
        c.src[i.dst] = i.src;
        c.w[i.dst] = i.w;
      }
    }
    const t = b.term;
    if (t.op === 'br') {
      t.a = c.resolve(t.a, t.w === 32);
      t.b = c.operand(t.b, t.w === 32);
    }
  }
}

export const copyPropInPlace: InPlacePass = (m: IrModule): void => {
  for (const f of m.functions) copyPropFunction(f);
};
