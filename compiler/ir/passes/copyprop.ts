// Copy propagation within blocks: after `rD = mov.64 rS`, reads of rD become reads of rS until
// either is written; after `rD = mov.32 rS`, only reads of rD's low half are redirected (rD is rS
// zero-extended, which equals rS only in the low half). The copies themselves are left for dead
// code elimination. Registers an instruction also writes (atomic fetch sources) and implicit
// operands (call arguments, cmpxchg's r0) are never renamed.
// Clears hiDead marks (the narrowing pass recomputes them).
import {
  B_FIRST, B_LEN, BS, DEF_END, I_A, I_B, I_BK, I_DST, I_FLAG, I_HID, I_OP, I_SUB, I_W, IS,
  OP_ATOMIC, OP_BIN, OP_BSWAP, OP_CALLX, OP_EXT, OP_LOAD, OP_MOV, OP_NEG, OP_STORE, T_A, T_B, T_BK, T_OP, T_W, TOP_BR,
  type FlatFunction, type FlatModule,
} from '../flat.js';
import { WorkArrays } from '../scratch.js';
import { shiftBin, writeSpan } from './flow.js';

/** The copies live at one point of a block: src[r] is the register r copies (-1: none), w[r] the copy's width. */
interface Copies {
  src: Int32Array;
  w: Int32Array;
  /** Registers 0 .. n-1. */
  n: number;
  /** Copies in force (so that a write with none to end costs nothing). */
  count: number;
}

/** The register to read instead of r, for a read of its low half only (lowOnly) or all of it. */
function resolve(c: Copies, r: number, lowOnly: boolean): number {
  const s = c.src[r];
  if (s < 0) return r;
  return c.w[r] === 64 || lowOnly ? s : r;
}

/** r was written: its copy, and every copy of it, end. */
function written(c: Copies, r: number): void {
  if (c.count === 0) return;
  const src = c.src;
  if (src[r] >= 0) c.count--;
  src[r] = -1;
  for (let d = 0; d < c.n; d++) {
    if (src[d] === r) {
      src[d] = -1;
      c.count--;
    }
  }
}

function renameReads(c: Copies, ins: Int32Array, p: number): void {
  switch (ins[p + I_OP]) {
    case OP_MOV: case OP_NEG: ins[p + I_A] = resolve(c, ins[p + I_A], ins[p + I_W] === 32); break;
    case OP_EXT: ins[p + I_A] = resolve(c, ins[p + I_A], true); break;
    case OP_BSWAP: ins[p + I_A] = resolve(c, ins[p + I_A], ins[p + I_W] !== 64); break;
    case OP_BIN: {
      const w32 = ins[p + I_W] === 32;
      ins[p + I_A] = resolve(c, ins[p + I_A], w32);
      if (ins[p + I_BK] === 0) ins[p + I_B] = resolve(c, ins[p + I_B], w32 || shiftBin(ins[p + I_SUB]));
      break;
    }
    case OP_LOAD: ins[p + I_A] = resolve(c, ins[p + I_A], false); break;
    case OP_STORE:
      ins[p + I_A] = resolve(c, ins[p + I_A], false);
      if (ins[p + I_BK] === 0) ins[p + I_B] = resolve(c, ins[p + I_B], ins[p + I_W] < 8);
      break;
    case OP_ATOMIC:
      ins[p + I_A] = resolve(c, ins[p + I_A], false);
      if (ins[p + I_FLAG] === 0) ins[p + I_B] = resolve(c, ins[p + I_B], ins[p + I_W] === 4);
      break;
    case OP_CALLX: ins[p + I_A] = resolve(c, ins[p + I_A], false); break;
    default: break;
  }
}

const work = new WorkArrays(2);

function copyPropFunction(fm: FlatModule, f: FlatFunction): void {
  const { ins, blk } = fm;
  const nregs = Math.max(10, f.maxReg) + 1;
  const c: Copies = { src: work.get(0, nregs, -1), w: work.get(1, nregs), n: nregs, count: 0 };
  for (let id = 0, q = f.b0 * BS; id < f.nb; id++, q += BS) {
    if (c.count > 0) {
      c.src.fill(-1, 0, nregs);
      c.count = 0;
    }
    for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) {
      const op = ins[p + I_OP];
      if (op < DEF_END) ins[p + I_HID] = 0;
      if (c.count > 0) renameReads(c, ins, p);
      for (let span = writeSpan(ins, p), r = span >> 3, e = r + (span & 7); r < e; r++) written(c, r);
      if (op === OP_MOV && ins[p + I_A] !== ins[p + I_DST]) {
        const d = ins[p + I_DST];
        if (c.src[d] < 0) c.count++;
        c.src[d] = ins[p + I_A];
        c.w[d] = ins[p + I_W];
      }
    }
    if (blk[q + T_OP] === TOP_BR && c.count > 0) {
      const w32 = blk[q + T_W] === 32;
      blk[q + T_A] = resolve(c, blk[q + T_A], w32);
      if (blk[q + T_BK] === 0) blk[q + T_B] = resolve(c, blk[q + T_B], w32);
    }
  }
}

export function copyPropFlat(fm: FlatModule): void {
  for (const f of fm.fns) copyPropFunction(fm, f);
}
