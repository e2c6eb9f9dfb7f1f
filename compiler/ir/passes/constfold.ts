// Constant propagation and folding: a forward dataflow over each function (a register is a known
// constant at a block's start when it is the same constant at the end of every reachable
// predecessor), then a rewrite: operations on known values become `const`, known register operands
// become immediates where the immediate means the same, and branches on known values become jumps.
// Values are int32 pairs (lo, hi); the arithmetic is the evaluator's, done on the pairs, and the
// 64-bit multiplications and divisions call the evaluator itself (test/ir-passes.test.ts checks the
// pair arithmetic against it), so folding and execution agree.
// Clears hiDead marks (the narrowing pass recomputes them).
import { evalBin } from '../eval.js';
import {
  B_ADD, B_AND, B_ASHR, B_LSHR, B_MUL, B_OR, B_SDIV, B_SHL, B_SREM, B_SUB, B_UDIV, B_UREM, B_XOR, BIN_NAMES, BS,
  C_EQ, C_NE, C_SET, C_SGE, C_SGT, C_SLT, C_UGE, C_UGT, C_ULE, C_ULT,
  B_FIRST, B_LEN, DEF_END, I_A, I_B, I_BK, I_DST, I_FLAG, I_HID, I_K1, I_K2, I_OP, I_SUB, I_W, IS,
  OP_BIN, OP_BSWAP, OP_CONST, OP_EXT, OP_MOV, OP_NEG, OP_STORE, T_A, T_B, T_BK, T_COND, T_ELSE, T_OP, T_THEN, T_W, TOP_BR, TOP_JUMP,
  type FlatModule,
} from '../flat.js';
import { WorkArrays } from '../scratch.js';
import { cfgOf, invalidateCfg, succAt, succCount, writeSpan } from './flow.js';

// The result of the last successful fold/evaluation (a pair of int32 halves).
let rLo = 0, rHi = 0;

const bswap32 = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);

/** The 64-bit BigInt of a pair, and back into rLo/rHi. */
const big = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
function fromBig(v: bigint): void {
  rLo = Number(BigInt.asIntN(32, v));
  rHi = Number(BigInt.asIntN(32, v >> 32n));
}

/** The last result of binPair/extPair as an unsigned 64-bit value (for tests). */
export function lastPair(): bigint {
  return big(rLo, rHi);
}

/** a OP b at width w into rLo/rHi (the evaluator's evalBin on pairs). */
export function binPair(op: number, w: number, aLo: number, aHi: number, bLo: number, bHi: number): void {
  if (w === 32) {
    let r: number;
    switch (op) {
      case B_ADD: r = aLo + bLo; break;
      case B_SUB: r = aLo - bLo; break;
      case B_MUL: r = Math.imul(aLo, bLo); break;
      case B_UDIV: r = bLo === 0 ? 0 : (aLo >>> 0) / (bLo >>> 0); break;
      case B_SDIV: r = bLo === 0 ? 0 : (aLo | 0) / (bLo | 0); break;
      case B_UREM: r = bLo === 0 ? aLo : (aLo >>> 0) % (bLo >>> 0); break;
      case B_SREM: r = bLo === 0 ? aLo : (aLo | 0) % (bLo | 0); break;
      case B_AND: r = aLo & bLo; break;
      case B_OR: r = aLo | bLo; break;
      case B_XOR: r = aLo ^ bLo; break;
      case B_SHL: r = aLo << (bLo & 31); break;
      case B_LSHR: r = aLo >>> (bLo & 31); break;
      default: r = aLo >> (bLo & 31); break;
    }
    // ToInt32 truncates towards zero, as the evaluator's bigint division does.
    rLo = r | 0;
    rHi = 0;
    return;
  }
  switch (op) {
    case B_ADD: {
      const lo = (aLo >>> 0) + (bLo >>> 0);
      rLo = lo | 0;
      rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) | 0;
      return;
    }
    case B_SUB: {
      const lo = (aLo >>> 0) - (bLo >>> 0);
      rLo = lo | 0;
      rHi = (aHi - bHi - (lo < 0 ? 1 : 0)) | 0;
      return;
    }
    case B_AND: rLo = aLo & bLo; rHi = aHi & bHi; return;
    case B_OR: rLo = aLo | bLo; rHi = aHi | bHi; return;
    case B_XOR: rLo = aLo ^ bLo; rHi = aHi ^ bHi; return;
    case B_SHL: {
      const s = bLo & 63;
      if (s === 0) { rLo = aLo; rHi = aHi; } else if (s < 32) { rHi = (aHi << s) | (aLo >>> (32 - s)); rLo = aLo << s; } else { rHi = aLo << (s - 32); rLo = 0; }
      return;
    }
    case B_LSHR: {
      const s = bLo & 63;
      if (s === 0) { rLo = aLo; rHi = aHi; } else if (s < 32) { rLo = (aLo >>> s) | (aHi << (32 - s)); rHi = (aHi >>> s) | 0; } else { rLo = (aHi >>> (s - 32)) | 0; rHi = 0; }
      return;
    }
    case B_ASHR: {
      const s = bLo & 63;
      if (s === 0) { rLo = aLo; rHi = aHi; } else if (s < 32) { rLo = (aLo >>> s) | (aHi << (32 - s)); rHi = aHi >> s; } else { rLo = aHi >> (s - 32); rHi = aHi >> 31; }
      return;
    }
    default:
      fromBig(evalBin(BIN_NAMES[op], 64, big(aLo, aHi), big(bLo, bHi)));
  }
}

/** Three-way comparison of two 64-bit pairs, unsigned or signed in the upper half. */
function cmp64(aLo: number, aHi: number, bLo: number, bHi: number, signed: boolean): number {
  const ah = signed ? aHi | 0 : aHi >>> 0, bh = signed ? bHi | 0 : bHi >>> 0;
  if (ah !== bh) return ah < bh ? -1 : 1;
  const al = aLo >>> 0, bl = bLo >>> 0;
  return al === bl ? 0 : al < bl ? -1 : 1;
}

/** The evaluator's evalCond on pairs. */
export function condPair(cond: number, w: number, aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  if (cond === C_SET) return w === 32 ? (aLo & bLo) !== 0 : ((aLo & bLo) | (aHi & bHi)) !== 0;
  let u: number, s: number;
  if (w === 32) {
    u = cmp64(aLo, 0, bLo, 0, false);
    s = cmp64(aLo, aLo >> 31, bLo, bLo >> 31, true);
  } else {
    u = cmp64(aLo, aHi, bLo, bHi, false);
    s = cmp64(aLo, aHi, bLo, bHi, true);
  }
  switch (cond) {
    case C_EQ: return u === 0;
    case C_NE: return u !== 0;
    case C_UGT: return u > 0;
    case C_UGE: return u >= 0;
    case C_ULT: return u < 0;
    case C_ULE: return u <= 0;
    case C_SGT: return s > 0;
    case C_SGE: return s >= 0;
    case C_SLT: return s < 0;
    default: return s <= 0;
  }
}

/** The evaluator's evalExt on a pair's low half, into rLo/rHi. */
export function extPair(signed: boolean, bits: number, w: number, lo: number): void {
  let l = bits === 8 ? lo & 0xff : bits === 16 ? lo & 0xffff : lo;
  if (signed) {
    l = bits === 8 ? (l << 24) >> 24 : bits === 16 ? (l << 16) >> 16 : l | 0;
    rLo = l;
    rHi = w === 64 && l < 0 ? -1 : 0;
  } else {
    rLo = l | 0;
    rHi = 0;
  }
}

/** The immediate that means the pair to an operation of width w; undefined when there is none. */
function asImm(lo: number, hi: number, w: number): number | undefined {
  if (w === 32) return lo;
  return hi === lo >> 31 ? lo : undefined;
}

const commutative = (op: number): boolean => op === B_ADD || op === B_MUL || op === B_AND || op === B_OR || op === B_XOR;

/**
 * The environment: a bit set of the registers with a known value (KW words), and their values in
 * LO/HI; one environment for the walk and one per block (its exit environment, at offsets
 * id * KW and id * nregs). Only the values of known registers mean anything, so meeting and
 * comparing environments touches only those.
 */
interface Envs {
  nregs: number;
  KW: number;
  K: Int32Array;
  LO: Int32Array;
  HI: Int32Array;
  oK: Int32Array;
  oLo: Int32Array;
  oHi: Int32Array;
  /** The block's exit environment has been computed. */
  has: Int32Array;
}

const isKnown = (K: Int32Array, r: number): boolean => (K[r >>> 5] & (1 << (r & 31))) !== 0;

/** Folds the instruction record at p given the walk's environment: true (value in rLo/rHi) when its result is known. */
function fold(e: Envs, ins: Int32Array, p: number): boolean {
  const K = e.K, LO = e.LO, HI = e.HI;
  if (ins[p + I_OP] === OP_CONST) {
    rLo = ins[p + I_K1];
    rHi = ins[p + I_K2];
    return true;
  }
  switch (ins[p + I_OP]) {
    case OP_MOV: {
      const s = ins[p + I_A];
      if (!isKnown(K, s)) return false;
      rLo = LO[s];
      rHi = ins[p + I_W] === 64 ? HI[s] : 0;
      return true;
    }
    case OP_NEG: {
      const s = ins[p + I_A];
      if (!isKnown(K, s)) return false;
      if (ins[p + I_W] === 64) binPair(B_SUB, 64, 0, 0, LO[s], HI[s]);
      else { rLo = -LO[s] | 0; rHi = 0; }
      return true;
    }
    case OP_EXT: {
      const s = ins[p + I_A];
      if (!isKnown(K, s)) return false;
      extPair(ins[p + I_FLAG] === 1, ins[p + I_SUB], ins[p + I_W], LO[s]);
      return true;
    }
    case OP_BSWAP: {
      const s = ins[p + I_A];
      if (!isKnown(K, s)) return false;
      const bits = ins[p + I_W];
      if (bits === 16) { rLo = ((LO[s] & 0xff) << 8) | ((LO[s] >>> 8) & 0xff); rHi = 0; } else if (bits === 32) { rLo = bswap32(LO[s]); rHi = 0; } else { rLo = bswap32(HI[s]); rHi = bswap32(LO[s]); }
      return true;
    }
    case OP_BIN: {
      const a = ins[p + I_A];
      if (!isKnown(K, a)) return false;
      let bLo: number, bHi: number;
      if (ins[p + I_BK] === 1) {
        bLo = ins[p + I_B];
        bHi = bLo >> 31;
      } else {
        const b = ins[p + I_B];
        if (!isKnown(K, b)) return false;
        bLo = LO[b];
        bHi = HI[b];
      }
      binPair(ins[p + I_SUB], ins[p + I_W], LO[a], HI[a], bLo, bHi);
      return true;
    }
    default: return false;
  }
}

/** Forward transfer of one instruction over the walk's environment, given whether it folded (rLo/rHi). */
function stepWith(e: Envs, ins: Int32Array, p: number, known: boolean): void {
  const K = e.K;
  for (let span = writeSpan(ins, p), r = span >> 3, end = r + (span & 7); r < end; r++) K[r >>> 5] &= ~(1 << (r & 31));
  if (known && ins[p + I_OP] < DEF_END) {
    const d = ins[p + I_DST];
    K[d >>> 5] |= 1 << (d & 31);
    e.LO[d] = rLo;
    e.HI[d] = rHi;
  }
}

/** Rewrites the instruction record at p given the environment before it (known: it folded to rLo/rHi). */
function rewrite(e: Envs, ins: Int32Array, p: number, known: boolean): void {
  const op = ins[p + I_OP];
  const K = e.K, LO = e.LO, HI = e.HI;
  if (known && op < DEF_END && op !== OP_CONST) {
    ins[p + I_OP] = OP_CONST;
    ins[p + I_K1] = rLo;
    ins[p + I_K2] = rHi;
    ins[p + I_HID] = 0;
    return;
  }
  if (op === OP_BIN) {
    if (ins[p + I_BK] === 0) {
      const w = ins[p + I_W];
      const b = ins[p + I_B];
      const imm = isKnown(K, b) ? asImm(LO[b], HI[b], w) : undefined;
      if (imm !== undefined) {
        ins[p + I_BK] = 1;
        ins[p + I_B] = imm;
        return;
      }
      const a = ins[p + I_A];
      const aImm = isKnown(K, a) ? asImm(LO[a], HI[a], w) : undefined;
      if (aImm !== undefined && commutative(ins[p + I_SUB])) {
        ins[p + I_A] = b;
        ins[p + I_BK] = 1;
        ins[p + I_B] = aImm;
      }
    }
    return;
  }
  if (op === OP_STORE && ins[p + I_BK] === 0) {
    const s = ins[p + I_B];
    if (!isKnown(K, s)) return;
    // A stored immediate is sign-extended to 64 bits, then cut to `size` bytes.
    const imm = ins[p + I_W] === 8 ? asImm(LO[s], HI[s], 64) : LO[s];
    if (imm !== undefined) {
      ins[p + I_BK] = 1;
      ins[p + I_B] = imm;
    }
  }
}

/** Rewrites the terminator at q given the block's exit environment; true when a branch became a jump. */
function rewriteTerm(e: Envs, blk: Int32Array, q: number): boolean {
  if (blk[q + T_OP] !== TOP_BR) return false;
  const K = e.K;
  const a = blk[q + T_A];
  const w = blk[q + T_W];
  let bLo: number, bHi: number;
  let bKnown = true;
  if (blk[q + T_BK] === 1) {
    bLo = blk[q + T_B];
    bHi = bLo >> 31;
  } else {
    const b = blk[q + T_B];
    bKnown = isKnown(K, b);
    bLo = e.LO[b];
    bHi = e.HI[b];
  }
  if (isKnown(K, a) && bKnown) {
    const taken = condPair(blk[q + T_COND], w, e.LO[a], e.HI[a], bLo, bHi);
    blk[q + T_OP] = TOP_JUMP;
    blk[q + T_THEN] = taken ? blk[q + T_THEN] : blk[q + T_ELSE];
    return true;
  }
  if (blk[q + T_BK] === 0 && bKnown) {
    const imm = asImm(bLo, bHi, w);
    if (imm !== undefined) {
      blk[q + T_BK] = 1;
      blk[q + T_B] = imm;
    }
  }
  return false;
}

/** Records the walk's environment as block id's exit environment; true when it changed. */
function record(e: Envs, id: number): boolean {
  const { KW, K, LO, HI, oK, oLo, oHi } = e;
  const ko = id * KW, vo = id * e.nregs;
  let changed = e.has[id] === 0;
  e.has[id] = 1;
  for (let w = 0; w < KW; w++) {
    const k = K[w];
    if (oK[ko + w] !== k) {
      changed = true;
      oK[ko + w] = k;
    }
    for (let m = k; m !== 0; m &= m - 1) {
      const r = 32 * w + (31 - Math.clz32(m & -m));
      if (oLo[vo + r] !== LO[r] || oHi[vo + r] !== HI[r]) {
        changed = true;
        oLo[vo + r] = LO[r];
        oHi[vo + r] = HI[r];
      }
    }
  }
  return changed;
}

const work = new WorkArrays(8);

/**
 * Optimistic iteration: environments only shrink, so this terminates, and it ends at the greatest
 * fixpoint whatever the order. Components are solved in topological order, so the environment on
 * entry to a block outside any loop is final the first time it is computed: such a block is
 * rewritten at once; a loop is iterated to its fixpoint first. Blocks are visited after one of
 * their predecessors (the other not evaluated yet constrain nothing yet), and again only when a
 * predecessor's exit environment changed.
 */
function constFoldFunction(fm: FlatModule, fk: number): void {
  const f = fm.fns[fk];
  const { ins, blk } = fm;
  const c = cfgOf(fm, fk);
  const a = c.a;
  const nregs = Math.max(10, f.maxReg) + 1;
  const KW = (nregs + 31) >>> 5;
  const n = f.nb;
  // Exit values are only read where known, so they need no clearing.
  const e: Envs = {
    nregs, KW, K: work.get(0, KW), LO: work.keep(1, nregs), HI: work.keep(2, nregs),
    oK: work.get(3, n * KW), oLo: work.keep(4, n * nregs), oHi: work.keep(5, n * nregs), has: work.get(6, n),
  };
  const stale = work.get(7, n);
  const { K, LO, HI, oK, oLo, oHi } = e;
  const inEnv = (id: number): void => {
    let first = true;
    if (id !== 0) {
      for (let j = c.plist + a[c.pstart + id], end = c.plist + a[c.pstart + id + 1]; j < end; j++) {
        const p = a[j];
        if (a[c.reachable + p] === 0 || e.has[p] === 0) continue;
        const ko = p * KW, vo = p * nregs;
        for (let w = 0; w < KW; w++) {
          // Known on entry: known here and (first predecessor) there, with the same value.
          let k = first ? oK[ko + w] : K[w] & oK[ko + w];
          for (let m = k; m !== 0; m &= m - 1) {
            const r = 32 * w + (31 - Math.clz32(m & -m));
            if (first) {
              LO[r] = oLo[vo + r];
              HI[r] = oHi[vo + r];
            } else if (oLo[vo + r] !== LO[r] || oHi[vo + r] !== HI[r]) k &= ~(1 << (r & 31));
          }
          K[w] = k;
        }
        first = false;
      }
    }
    if (first) K.fill(0, 0, KW);
  };
  const base = f.b0 * BS;
  // hiDead marks are cleared everywhere (reachable blocks are rewritten below as well).
  for (let id = 0; id < n; id++) {
    const q = base + id * BS;
    for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) if (ins[p + I_OP] < DEF_END) ins[p + I_HID] = 0;
  }
  let edges = false;
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
          inEnv(id);
          for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) stepWith(e, ins, p, fold(e, ins, p));
          if (!record(e, id)) continue;
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
      inEnv(id);
      for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) {
        const known = fold(e, ins, p);
        rewrite(e, ins, p, known);
        stepWith(e, ins, p, known);
      }
      if (rewriteTerm(e, blk, q)) edges = true;
      record(e, id);
    }
  }
  if (edges) invalidateCfg(fm, fk);
}

export function constFoldFlat(fm: FlatModule): void {
  for (let k = 0; k < fm.fns.length; k++) constFoldFunction(fm, k);
}
