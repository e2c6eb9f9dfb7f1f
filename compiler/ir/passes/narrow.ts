// Narrowing: what lets a 32-bit target spend one instruction on an ALU32-shaped operation.
// 1. Forward, "upper half known zero" facts (meet over predecessors): a 64-bit and/or/xor/udiv/
//    urem/lshr/mov or an unsigned compare whose operands have zero upper halves computes exactly
//    what its 32-bit form computes (a result with a zero upper half), so it is rewritten to it.
// 2. Backward, liveness of upper halves: a definition whose upper half is never read before being
//    overwritten is marked hiDead, and a 64-bit add/sub/mul/and/or/xor/neg/mov (or shl by a
//    constant below 32) marked so becomes its 32-bit form: the low halves agree.
// Recomputes every hiDead mark, so it should run last.
import {
  A_CMPXCHG, B_AND, B_LSHR, B_OR, B_SHL, B_UDIV, B_UREM, B_XOR, BS, C_SGE, C_SGT, C_SLE, C_SLT,
  B_FIRST, B_LEN, DEF_END, I_A, I_B, I_BK, I_DST, I_FLAG, I_HID, I_K1, I_K2, I_OP, I_SUB, I_W, IS,
  OP_ADDR, OP_ATOMIC, OP_BIN, OP_BSWAP, OP_CONST, OP_EXT, OP_LOAD, OP_MOV, OP_NEG, T_A, T_BK, T_COND, T_OP, T_W, TOP_BR,
  type Cfg, type FlatFunction, type FlatModule,
} from '../flat.js';
import { WorkArrays } from '../scratch.js';
import { cfgOf, copyWords, succAt, succCount, halfWords, has, hiLive, lowOnlyBin, set, solveScc, transferInst, transferTerm, unionSuccs, unset, wordsFor, writeSpan } from './flow.js';

const FP = 10;
const work = new WorkArrays(8);

/** The second operand (record words p + I_BK, p + I_B) has a zero upper half. */
function isZ(z: Int32Array, a: Int32Array, p: number): boolean {
  return a[p] === 0 ? has(z, a[p + 1]) : a[p + 1] >= 0;
}

/**
 * Whether the result of a definition has a zero upper half, given the facts before it. hiDead marks
 * are not looked at: this runs before the pass recomputes them, as if none were set.
 */
function resultHiZero(fm: FlatModule, z: Int32Array, p: number): boolean {
  const ins = fm.ins;
  switch (ins[p + I_OP]) {
    case OP_CONST: return ins[p + I_K2] === 0;
    case OP_ADDR: {
      const off = ins[p + I_K2];
      return off >= 0 && off <= (fm.src.data[ins[p + I_K1]]?.bytes.length ?? -1);
    }
    case OP_MOV: return ins[p + I_W] === 32 || has(z, ins[p + I_A]);
    case OP_NEG: return ins[p + I_W] === 32;
    case OP_EXT: return ins[p + I_W] === 32 || ins[p + I_FLAG] === 0;
    case OP_BSWAP: return ins[p + I_W] !== 64;
    case OP_LOAD: return ins[p + I_W] < 8 && ins[p + I_FLAG] === 0;
    case OP_BIN: {
      if (ins[p + I_W] === 32) return true;
      const a = has(z, ins[p + I_A]);
      const b = isZ(z, ins, p + I_BK);
      switch (ins[p + I_SUB]) {
        case B_AND: return a || b;
        case B_OR: case B_XOR: return a && b;
        case B_UDIV: case B_UREM: return a;
        case B_LSHR: return a || (ins[p + I_BK] === 1 && (ins[p + I_B] & 63) >= 32);
        default: return false;
      }
    }
    default: return false;
  }
}

/** Narrows an instruction record (in place) to the 32-bit form that computes the same 64-bit value, if any. */
function narrowByZeros(z: Int32Array, ins: Int32Array, p: number): void {
  const op = ins[p + I_OP];
  if (op === OP_MOV) {
    if (ins[p + I_W] === 64 && has(z, ins[p + I_A])) ins[p + I_W] = 32;
    return;
  }
  if (op !== OP_BIN || ins[p + I_W] !== 64) return;
  const a = has(z, ins[p + I_A]);
  const b = isZ(z, ins, p + I_BK);
  switch (ins[p + I_SUB]) {
    case B_AND: if (a || b) ins[p + I_W] = 32; break;
    case B_OR: case B_XOR: case B_UDIV: case B_UREM: if (a && b) ins[p + I_W] = 32; break;
    case B_LSHR: if (a && ins[p + I_BK] === 1 && (ins[p + I_B] & 63) < 32) ins[p + I_W] = 32; break;
    default: break;
  }
}

function narrowTerm(z: Int32Array, blk: Int32Array, q: number): void {
  if (blk[q + T_OP] !== TOP_BR || blk[q + T_W] !== 64) return;
  const c = blk[q + T_COND];
  // Equality and unsigned conditions (and set) only.
  if (c === C_SGT || c === C_SGE || c === C_SLT || c === C_SLE) return;
  if (has(z, blk[q + T_A]) && isZ(z, blk, q + T_BK)) blk[q + T_W] = 32;
}

function stepZ(fm: FlatModule, z: Int32Array, p: number): void {
  const ins = fm.ins;
  const op = ins[p + I_OP];
  const def = op < DEF_END;
  const zero = def && resultHiZero(fm, z, p);
  for (let span = writeSpan(ins, p), r = span >> 3, end = r + (span & 7); r < end; r++) unset(z, r);
  if (zero) set(z, ins[p + I_DST]);
  // A 32-bit atomic fetch zero-extends the old value.
  if (op === OP_ATOMIC && ins[p + I_W] === 4) {
    const cmpxchg = ins[p + I_SUB] === A_CMPXCHG;
    if (ins[p + I_FLAG] === 1 || cmpxchg) set(z, cmpxchg ? 0 : ins[p + I_B]);
  }
}

/**
 * The zero-upper-half facts (a greatest fixpoint, as in constant folding: components in
 * topological order, loops iterated first), narrowing each reachable block once its facts on
 * entry are final.
 */
function forward(fm: FlatModule, f: FlatFunction, c: Cfg): void {
  const a = c.a;
  const { ins, blk } = fm;
  const words = wordsFor(Math.max(10, f.maxReg) + 1);
  const n = f.nb, base = f.b0 * BS;
  const outZ = work.get(0, n * words);
  const evaluated = work.get(1, n);
  // r10 is a stack address and every region lies below 4 GiB; r1 (mem address) and r2 (its length) too at the entry.
  const entryZ = work.get(2, words);
  set(entryZ, FP);
  if (f === fm.fns[0]) {
    set(entryZ, 1);
    set(entryZ, 2);
  }
  const z = work.get(3, words);
  const stale = work.get(7, n);
  const inZ = (id: number): void => {
    let first = true;
    if (id === 0) {
      copyWords(z, 0, entryZ, 0, words);
      first = false;
    }
    for (let j = c.plist + a[c.pstart + id], end = c.plist + a[c.pstart + id + 1]; j < end; j++) {
      const p = a[j];
      if (a[c.reachable + p] === 0 || evaluated[p] === 0) continue;
      const o = p * words;
      if (first) {
        for (let w = 0; w < words; w++) z[w] = outZ[o + w];
        first = false;
      } else for (let w = 0; w < words; w++) z[w] &= outZ[o + w];
    }
    if (first) for (let w = 0; w < words; w++) z[w] = 0;
  };
  /** Records z as the block's exit facts; true when they changed. */
  const record = (id: number): boolean => {
    let changed = evaluated[id] === 0;
    evaluated[id] = 1;
    for (let w = 0, o = id * words; w < words; w++) {
      if (outZ[o + w] !== z[w]) {
        outZ[o + w] = z[w];
        changed = true;
      }
    }
    return changed;
  };
  for (let k = c.reach - 1; k >= 0; k--) {
    const from = c.blocks + a[c.start + k], to = c.blocks + a[c.start + k + 1];
    if (a[c.cyclic + k] === 1) {
      // Revisits only blocks a predecessor's change has made stale (the fixpoint is the same in any order).
      for (let j = from; j < to; j++) stale[a[j]] = 1;
      for (let again = true; again;) {
        again = false;
        for (let j = to - 1; j >= from; j--) {
          const id = a[j];
          if (stale[id] === 0) continue;
          stale[id] = 0;
          const q = base + id * BS;
          inZ(id);
          for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) stepZ(fm, z, p);
          if (!record(id)) continue;
          for (let t = 0, sc = succCount(blk, q); t < sc; t++) {
            const s = succAt(blk, q, t);
            if (a[c.comp + s] === k && stale[s] === 0) {
              stale[s] = 1;
              again = true;
            }
          }
        }
      }
    }
    for (let j = to - 1; j >= from; j--) {
      const id = a[j];
      const q = base + id * BS;
      inZ(id);
      for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) {
        narrowByZeros(z, ins, p);
        stepZ(fm, z, p);
      }
      narrowTerm(z, blk, q);
      record(id);
    }
  }
}

/**
 * Sets every hiDead mark of a block (marking dead upper halves, clearing the others), walking back
 * from the live-out set in `live` (left as the live-in). A dead upper half narrows a 64-bit
 * add/sub/mul/and/or/xor/neg/mov, or a shl by a constant below 32.
 */
function markBlock(fm: FlatModule, q: number, live: Int32Array): void {
  const { ins, blk } = fm;
  transferTerm(blk, q, live);
  const first = blk[q + B_FIRST];
  for (let k = blk[q + B_LEN] - 1; k >= 0; k--) {
    const p = (first + k) * IS;
    const op = ins[p + I_OP];
    if (op < DEF_END) {
      if (!hiLive(live, ins[p + I_DST])) {
        ins[p + I_HID] = 1;
        if (ins[p + I_W] === 64) {
          if (op === OP_MOV || op === OP_NEG) ins[p + I_W] = 32;
          else if (op === OP_BIN) {
            const bin = ins[p + I_SUB];
            if (bin !== B_SHL ? lowOnlyBin(bin) : ins[p + I_BK] === 1 && (ins[p + I_B] & 63) < 32) ins[p + I_W] = 32;
          }
        }
      } else ins[p + I_HID] = 0;
    }
    // Marking does not change what the instruction reads (a narrowed form reads the same halves).
    transferInst(ins, p, live);
  }
}

/**
 * Liveness of upper halves, every block (reachable or not), components sinks first: a block
 * outside any loop is marked as its liveness is computed; a loop is solved first.
 */
function backward(fm: FlatModule, f: FlatFunction, c: Cfg): void {
  const a = c.a;
  const words = halfWords(f);
  const inn = work.get(4, f.nb * words);
  const out = work.get(5, f.nb * words);
  const live = work.get(6, words);
  const blk = fm.blk, base = f.b0 * BS;
  for (let k = 0; k < c.count; k++) {
    const from = c.blocks + a[c.start + k], to = c.blocks + a[c.start + k + 1];
    if (a[c.cyclic + k] === 0) {
      const id = a[from];
      const q = base + id * BS;
      unionSuccs(blk, q, inn, words, live);
      markBlock(fm, q, live);
      copyWords(inn, id * words, live, 0, words);
      continue;
    }
    solveScc(fm, f, c, k, inn, out, words, live);
    for (let j = from; j < to; j++) {
      const id = a[j];
      copyWords(live, 0, out, id * words, words);
      markBlock(fm, base + id * BS, live);
    }
  }
}

export function narrowFlat(fm: FlatModule): void {
  for (let k = 0; k < fm.fns.length; k++) {
    const c = cfgOf(fm, k);
    forward(fm, fm.fns[k], c);
    backward(fm, fm.fns[k], c);
  }
}
