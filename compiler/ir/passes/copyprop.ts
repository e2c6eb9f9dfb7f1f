// Copy propagation within blocks: after `rD = mov.64 rS`, reads of rD become reads of rS until
// either is written; after `rD = mov.32 rS`, only reads of rD's low half are redirected (rD is rS
// zero-extended, which equals rS only in the low half). The copies themselves are left for dead
// code elimination. Registers an instruction also writes (atomic fetch sources) and implicit
// operands (call arguments, cmpxchg's r0) are never renamed.
// Pure (returns a new module); clears hiDead marks (the narrowing pass recomputes them).
import type { Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';
import { clearHiDead, mapFunctions, writes } from './util.js';

interface Copy {
  src: Reg;
  w: 32 | 64;
}
type Copies = Map<Reg, Copy>;

/** The register to read instead of r, for a read of its low half only (lowOnly) or all of it. */
function resolve(copies: Copies, r: Reg, lowOnly: boolean): Reg {
  const c = copies.get(r);
  if (c === undefined) return r;
  return c.w === 64 || lowOnly ? c.src : r;
}

function opnd(copies: Copies, o: Operand, lowOnly: boolean): Operand {
  return 'reg' in o ? { reg: resolve(copies, o.reg, lowOnly) } : o;
}

const SHIFTS = new Set(['shl', 'lshr', 'ashr']);

function renameReads(c: Copies, i: Inst): Inst {
  switch (i.op) {
    case 'mov': case 'neg': return { ...i, src: resolve(c, i.src, i.w === 32) };
    case 'ext': return { ...i, src: resolve(c, i.src, true) };
    case 'bswap': return { ...i, src: resolve(c, i.src, i.bits !== 64) };
    case 'bin': return { ...i, a: resolve(c, i.a, i.w === 32), b: opnd(c, i.b, i.w === 32 || SHIFTS.has(i.bin)) };
    case 'load': return { ...i, base: resolve(c, i.base, false) };
    case 'store': return { ...i, base: resolve(c, i.base, false), value: opnd(c, i.value, i.size < 8) };
    case 'atomic': return i.fetch ? { ...i, base: resolve(c, i.base, false) } : { ...i, base: resolve(c, i.base, false), src: resolve(c, i.src, i.size === 4) };
    case 'callx': return { ...i, reg: resolve(c, i.reg, false) };
    default: return i;
  }
}

function renameTerm(c: Copies, t: Terminator): Terminator {
  if (t.op !== 'br') return t;
  return { ...t, a: resolve(c, t.a, t.w === 32), b: opnd(c, t.b, t.w === 32) };
}

function copyPropFunction(f: IrFunction): void {
  for (const b of f.blocks) {
    clearHiDead(b);
    const copies: Copies = new Map();
    b.insts = b.insts.map((orig) => {
      const i = renameReads(copies, orig);
      for (const w of writes(i)) {
        copies.delete(w);
        for (const [d, c] of copies) if (c.src === w) copies.delete(d);
      }
      if (i.op === 'mov' && i.src !== i.dst) copies.set(i.dst, { src: i.src, w: i.w });
      return i;
    });
    b.term = renameTerm(copies, b.term);
  }
}

export function copyProp(m: IrModule): IrModule {
  return mapFunctions(m, copyPropFunction);
}
