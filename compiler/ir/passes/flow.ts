// What the passes share, over the record form (flat.ts): successors, predecessors, reverse
// post-order and strongly connected components of a function's blocks, register writes, and
// liveness over register halves (transfer functions and the per-component solver). One place per
// fact, so the passes cannot disagree about what an instruction touches. Walks allocate nothing:
// work arrays are reused from call to call, and a function's CFG facts are kept (flat.ts Cfg) until
// a pass changes its edges.
import { WorkArrays } from '../scratch.js';
import {
  A_CMPXCHG, B_ADD, B_AND, B_LSHR, B_MUL, B_OR, B_SHL, B_SUB, B_XOR, B_ASHR, BS, DEF_END, I_A, I_B, I_BK, I_DST, I_FLAG, I_OP, I_SUB, I_W, IS,
  OP_ADDR, OP_ATOMIC, OP_BIN, OP_BSWAP, OP_BUDGET, OP_CALL, OP_CALLLOCAL, OP_CALLX, OP_CONST, OP_EXT, OP_LOAD, OP_MOV, OP_NEG, OP_STORE,
  B_FIRST, B_LEN, T_A, T_BK, T_B, T_ELSE, T_OP, T_THEN, T_W, TOP_BR, TOP_JUMP, TOP_RET,
  cfgAlloc, type Cfg, type FlatFunction, type FlatModule,
} from '../flat.js';

/** Successor count of the block record at q (a br to one block twice counts once). */
export function succCount(blk: Int32Array, q: number): number {
  const op = blk[q + T_OP];
  return op === TOP_JUMP ? 1 : op === TOP_BR ? (blk[q + T_THEN] === blk[q + T_ELSE] ? 1 : 2) : 0;
}
/** Successor k (0: jump target or br then; 1: br else). */
export function succAt(blk: Int32Array, q: number, k: number): number {
  return k === 0 ? blk[q + T_THEN] : blk[q + T_ELSE];
}

/** 64-bit operations whose low result half depends only on the operands' low halves. */
export function lowOnlyBin(bin: number): boolean {
  return bin === B_ADD || bin === B_SUB || bin === B_MUL || bin === B_AND || bin === B_OR || bin === B_XOR || bin === B_SHL;
}
export function shiftBin(bin: number): boolean {
  return bin === B_SHL || bin === B_LSHR || bin === B_ASHR;
}

/**
 * The registers an instruction writes in full, as one number: the first register times 8 plus how
 * many consecutive registers. A definition writes dst, an atomic fetch its src, cmpxchg r0, and a
 * call is taken to clobber r0-r5 (r1-r5 are dead after it).
 * Walk it with `for (let r = span >> 3, end = r + (span & 7); r < end; r++)`.
 */
export function writeSpan(ins: Int32Array, p: number): number {
  const op = ins[p + I_OP];
  if (op < DEF_END) return ins[p + I_DST] * 8 + 1;
  switch (op) {
    case OP_ATOMIC: return ins[p + I_SUB] === A_CMPXCHG ? 1 : ins[p + I_FLAG] === 1 ? ins[p + I_B] * 8 + 1 : 0;
    case OP_CALL: case OP_CALLX: case OP_CALLLOCAL: return 6;
    default: return 0;
  }
}

const work = new WorkArrays(12);

/** The function's CFG facts, computed when no pass has since changed its edges. */
export function cfgOf(fm: FlatModule, k: number): Cfg {
  let c = fm.cfg[k];
  if (c === undefined) {
    c = computeCfg(fm, fm.fns[k]);
    fm.cfg[k] = c;
  }
  return c;
}

/** A pass changed the edges of function k (its CFG facts are recomputed when next asked for). */
export function invalidateCfg(fm: FlatModule, k: number): void {
  fm.cfg[k] = undefined;
}

/** Tarjan's algorithm, iterative (no recursion depth limit on long chains of blocks), then predecessors. */
function computeCfg(fm: FlatModule, f: FlatFunction): Cfg {
  const blk = fm.blk, base = f.b0 * BS;
  const n = f.nb;
  let nsucc = 0;
  for (let b = 0, q = base; b < n; b++, q += BS) nsucc += succCount(blk, q);
  const at = cfgAlloc(fm, 6 * n + 2 + nsucc);
  const a = fm.cfgBuf;
  const out = at, start = at + n, cyclic = at + 2 * n + 1, reachable = at + 3 * n + 1, pstart = at + 4 * n + 1, comp = at + 5 * n + 2, plist = at + 6 * n + 2;
  // index (-1: not visited), low, the component stack, the walk's blocks and next successor, on-stack flags.
  const index = work.get(0, n, -1), low = work.get(1, n), stack = work.get(2, n), callId = work.get(3, n), callNext = work.get(4, n), on = work.get(5, n);
  let sp = 0, counter = 0, emitted = 0, count = 0, reach = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] >= 0) continue;
    let csp = 0;
    index[root] = low[root] = counter++;
    stack[sp++] = root;
    on[root] = 1;
    callId[csp] = root;
    callNext[csp++] = 0;
    while (csp > 0) {
      const v = callId[csp - 1];
      const q = base + v * BS;
      const k = callNext[csp - 1];
      if (k < succCount(blk, q)) {
        callNext[csp - 1] = k + 1;
        const w = succAt(blk, q, k);
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack[sp++] = w;
          on[w] = 1;
          callId[csp] = w;
          callNext[csp++] = 0;
        } else if (on[w] === 1 && index[w] < low[v]) low[v] = index[w];
        continue;
      }
      csp--;
      if (low[v] === index[v]) {
        a[start + count] = emitted;
        let w: number;
        do {
          w = stack[--sp];
          on[w] = 0;
          a[comp + w] = count;
          a[out + emitted++] = w;
        } while (w !== v);
        let selfLoop = false;
        for (let j = 0, c = succCount(blk, q); j < c; j++) if (succAt(blk, q, j) === v) selfLoop = true;
        a[cyclic + count] = emitted - a[start + count] > 1 || selfLoop ? 1 : 0;
        count++;
      }
      if (csp > 0) {
        const parent = callId[csp - 1];
        if (low[v] < low[parent]) low[parent] = low[v];
      }
    }
    if (root === 0) {
      reach = count;
      for (let j = 0; j < emitted; j++) a[reachable + a[out + j]] = 1;
    }
  }
  a[start + count] = emitted;
  for (let b = 0, q = base; b < n; b++, q += BS) {
    for (let k = 0, c = succCount(blk, q); k < c; k++) a[pstart + succAt(blk, q, k) + 1]++;
  }
  for (let k = 0; k < n; k++) a[pstart + k + 1] += a[pstart + k];
  const fill = work.get(6, n);
  for (let k = 0; k < n; k++) fill[k] = a[pstart + k];
  for (let b = 0, q = base; b < n; b++, q += BS) {
    for (let k = 0, c = succCount(blk, q); k < c; k++) a[plist + fill[succAt(blk, q, k)]++] = b;
  }
  return { a, count, reach, blocks: out, start, cyclic, reachable, comp, pstart, plist };
}

/** Reachable blocks in reverse post-order from block 0: the order (valid until the next call) and its length. */
export function rpo(fm: FlatModule, f: FlatFunction): { order: Int32Array; count: number } {
  const n = f.nb, blk = fm.blk, base = f.b0 * BS;
  const seen = work.get(7, n);
  const post = work.get(8, n);
  const stackId = work.get(9, n);
  const stackNext = work.get(10, n);
  let sp = 1, np = 0;
  seen[0] = 1;
  while (sp > 0) {
    const id = stackId[sp - 1];
    const q = base + id * BS;
    const k = stackNext[sp - 1];
    if (k < succCount(blk, q)) {
      stackNext[sp - 1] = k + 1;
      const s = succAt(blk, q, k);
      if (seen[s] === 0) {
        seen[s] = 1;
        stackId[sp] = s;
        stackNext[sp] = 0;
        sp++;
      }
    } else {
      post[np++] = id;
      sp--;
    }
  }
  for (let i = 0, j = np - 1; i < j; i++, j--) {
    const t = post[i];
    post[i] = post[j];
    post[j] = t;
  }
  return { order: post, count: np };
}

// ---- liveness over register halves ----
// A set over halves uses bit 2r for the low half of r and bit 2r+1 for its upper half.

/** Words per set for bits 0..bits-1. */
export const wordsFor = (bits: number): number => Math.max(1, (bits + 31) >>> 5);
/** Words per register-half set of a function (registers 0..maxReg). */
export const halfWords = (f: FlatFunction): number => wordsFor(2 * (Math.max(10, f.maxReg) + 1));

export function has(s: Int32Array, bit: number): boolean {
  return (s[bit >>> 5] & (1 << (bit & 31))) !== 0;
}
export function set(s: Int32Array, bit: number): void {
  s[bit >>> 5] |= 1 << (bit & 31);
}
export function unset(s: Int32Array, bit: number): void {
  s[bit >>> 5] &= ~(1 << (bit & 31));
}

function kill(live: Int32Array, r: number): void {
  live[r >>> 4] &= ~(3 << ((2 * r) & 31));
}
/** Reads r's low half, and its upper half when `hi`. */
function use(live: Int32Array, r: number, hi: boolean): void {
  live[r >>> 4] |= (hi ? 3 : 1) << ((2 * r) & 31);
}
export const hiLive = (live: Int32Array, r: number): boolean => (live[r >>> 4] & (2 << ((2 * r) & 31))) !== 0;
export const anyLive = (live: Int32Array, r: number): boolean => (live[r >>> 4] & (3 << ((2 * r) & 31))) !== 0;

/**
 * One instruction, backwards over a half set: kill what it writes, add what it reads. Whether the
 * upper half of its result is live decides what some operations read: without it, an operation
 * whose low half needs only low halves (mov, neg, add, sub, mul, and, or, xor, shl) reads only those.
 */
export function transferInst(ins: Int32Array, p: number, live: Int32Array): void {
  switch (ins[p + I_OP]) {
    case OP_CONST: case OP_ADDR:
      kill(live, ins[p + I_DST]);
      return;
    case OP_MOV: case OP_NEG: {
      const dst = ins[p + I_DST];
      const dstHi = hiLive(live, dst);
      kill(live, dst);
      use(live, ins[p + I_A], ins[p + I_W] === 64 && dstHi);
      return;
    }
    case OP_EXT:
      kill(live, ins[p + I_DST]);
      use(live, ins[p + I_A], false);
      return;
    case OP_BSWAP:
      kill(live, ins[p + I_DST]);
      use(live, ins[p + I_A], ins[p + I_W] === 64);
      return;
    case OP_BIN: {
      const dst = ins[p + I_DST];
      const dstHi = hiLive(live, dst);
      kill(live, dst);
      if (ins[p + I_W] === 32) {
        use(live, ins[p + I_A], false);
        if (ins[p + I_BK] === 0) use(live, ins[p + I_B], false);
      } else {
        const bin = ins[p + I_SUB];
        const aHi = lowOnlyBin(bin) ? dstHi : true;
        use(live, ins[p + I_A], aHi);
        if (ins[p + I_BK] === 0) use(live, ins[p + I_B], shiftBin(bin) ? false : aHi);
      }
      return;
    }
    case OP_LOAD:
      kill(live, ins[p + I_DST]);
      use(live, ins[p + I_A], true);
      return;
    case OP_STORE:
      use(live, ins[p + I_A], true);
      if (ins[p + I_BK] === 0) use(live, ins[p + I_B], ins[p + I_W] === 8);
      return;
    case OP_ATOMIC: {
      const cmpxchg = ins[p + I_SUB] === A_CMPXCHG;
      if (cmpxchg) kill(live, 0);
      else if (ins[p + I_FLAG] === 1) kill(live, ins[p + I_B]);
      use(live, ins[p + I_A], true);
      use(live, ins[p + I_B], ins[p + I_W] === 8);
      if (cmpxchg) use(live, 0, ins[p + I_W] === 8);
      return;
    }
    // r1-r5 survive a helper call unchanged in every engine, so only r0 is killed there.
    case OP_CALLX:
      kill(live, 0);
      use(live, ins[p + I_A], true);
      live[0] |= 0xffc;
      return;
    case OP_CALL: case OP_CALLLOCAL:
      kill(live, 0);
      live[0] |= 0xffc;
      return;
    case OP_BUDGET:
      return;
  }
}

/** A terminator's reads, added to a half set. */
export function transferTerm(blk: Int32Array, q: number, live: Int32Array): void {
  const op = blk[q + T_OP];
  if (op === TOP_BR) {
    const wide = blk[q + T_W] === 64;
    use(live, blk[q + T_A], wide);
    if (blk[q + T_BK] === 0) use(live, blk[q + T_B], wide);
  } else if (op === TOP_RET) use(live, 0, true);
}

/** to[toOff ..] := from[fromOff ..], `words` words. */
export function copyWords(to: Int32Array, toOff: number, from: Int32Array, fromOff: number, words: number): void {
  for (let w = 0; w < words; w++) to[toOff + w] = from[fromOff + w];
}

/** live := the union of the live-in sets (inn, by local block id) of the successors of block record q. */
export function unionSuccs(blk: Int32Array, q: number, inn: Int32Array, words: number, live: Int32Array): void {
  for (let w = 0; w < words; w++) live[w] = 0;
  for (let k = 0, c = succCount(blk, q); k < c; k++) {
    const s = succAt(blk, q, k) * words;
    for (let w = 0; w < words; w++) live[w] |= inn[s + w];
  }
}

/** Live-in of a block (into `live`) from its live-out (in `live`). */
function transferBlock(fm: FlatModule, q: number, live: Int32Array): void {
  const ins = fm.ins, blk = fm.blk;
  transferTerm(blk, q, live);
  const first = blk[q + B_FIRST];
  for (let k = blk[q + B_LEN] - 1; k >= 0; k--) transferInst(ins, (first + k) * IS, live);
}

/**
 * Solves the liveness of component k to its least fixpoint, given the final live-in sets of the
 * components solved before it: writes the live-in of its blocks to `inn` and their live-out to `out`.
 * Sweeps the component in order, visiting only blocks a successor's change has made stale.
 */
export function solveScc(fm: FlatModule, f: FlatFunction, c: Cfg, k: number, inn: Int32Array, out: Int32Array, words: number, live: Int32Array): void {
  const a = c.a;
  const from = c.blocks + a[c.start + k], to = c.blocks + a[c.start + k + 1];
  const blk = fm.blk, base = f.b0 * BS;
  // Every flag is clear between calls: a block is only marked stale until its visit.
  const stale = work.keep(11, f.nb);
  for (let j = from; j < to; j++) {
    stale[a[j]] = 1;
    for (let w = 0, o = a[j] * words; w < words; w++) inn[o + w] = 0;
  }
  const cyclic = a[c.cyclic + k] === 1;
  for (let again = true; again;) {
    again = false;
    for (let j = from; j < to; j++) {
      const id = a[j];
      if (stale[id] === 0) continue;
      stale[id] = 0;
      const q = base + id * BS;
      unionSuccs(blk, q, inn, words, live);
      transferBlock(fm, q, live);
      let changed = false;
      for (let w = 0, o = id * words; w < words; w++) {
        if (inn[o + w] !== live[w]) {
          inn[o + w] = live[w];
          changed = true;
        }
      }
      if (!changed || !cyclic) continue;
      for (let i = c.plist + a[c.pstart + id], end = c.plist + a[c.pstart + id + 1]; i < end; i++) {
        const p = a[i];
        if (a[c.comp + p] === k && stale[p] === 0) {
          stale[p] = 1;
          again = true;
        }
      }
    }
  }
  for (let j = from; j < to; j++) {
    const id = a[j];
    unionSuccs(blk, base + id * BS, inn, words, live);
    copyWords(out, id * words, live, 0, words);
  }
}
