// Abstract integers of a fixed width: unsigned and signed bounds plus known bits, kept consistent
// with each other after every operation (the Linux verifier's reg_bounds_sync). One value stands
// for a set of w-bit bit patterns; every operation wraps modulo 2^w exactly as eBPF does.
// Width-generic so tests can check each operation against brute force at small widths.
import {
  mask, swapBytes, tadd, tand, tarsh, tbswap, tconst, tcontains, tintersect, tleq, tlsh, tmul, tor,
  trange, trsh, tsub, ttrunc, tunion, tunknown, txor, type Tnum,
} from './tnum.js';

export interface Num {
  readonly w: number;
  readonly umin: bigint;
  readonly umax: bigint;
  readonly smin: bigint;
  readonly smax: bigint;
  readonly t: Tnum;
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'udiv' | 'umod' | 'sdiv' | 'smod' | 'and' | 'or' | 'xor' | 'lsh' | 'rsh' | 'arsh';
/** Conditions a branch can establish; `nset` is "a & b == 0", the negation of `set`. */
export type Cond = 'eq' | 'ne' | 'ult' | 'ule' | 'ugt' | 'uge' | 'slt' | 'sle' | 'sgt' | 'sge' | 'set' | 'nset';

export const NEGATE: Record<Cond, Cond> = {
  eq: 'ne', ne: 'eq', ult: 'uge', ule: 'ugt', ugt: 'ule', uge: 'ult',
  slt: 'sge', sle: 'sgt', sgt: 'sle', sge: 'slt', set: 'nset', nset: 'set',
};
/** The same condition with its operands swapped (a < b  <=>  b > a). */
export const SWAP: Record<Cond, Cond> = {
  eq: 'eq', ne: 'ne', ult: 'ugt', ule: 'uge', ugt: 'ult', uge: 'ule',
  slt: 'sgt', sle: 'sge', sgt: 'slt', sge: 'sle', set: 'set', nset: 'nset',
};

const SMAX: bigint[] = Array.from({ length: 65 }, (_, w) => (w === 0 ? 0n : (1n << BigInt(w - 1)) - 1n));
const SMIN: bigint[] = Array.from({ length: 65 }, (_, w) => (w === 0 ? 0n : -(1n << BigInt(w - 1))));
const MOD: bigint[] = Array.from({ length: 65 }, (_, w) => 1n << BigInt(w));
const smaxOf = (w: number): bigint => SMAX[w];
const sminOf = (w: number): bigint => SMIN[w];
const big = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const small = (a: bigint, b: bigint): bigint => (a < b ? a : b);

export function toSigned(w: number, u: bigint): bigint {
  return u > SMAX[w] ? u - MOD[w] : u;
}
export function toUnsigned(w: number, s: bigint): bigint {
  return s < 0n ? s + MOD[w] : s;
}

/** Unknown values of each width: one shared object each (values are immutable). */
const TOPS: (Num | undefined)[] = [];

export function top(w: number): Num {
  return (TOPS[w] ??= intern({ w, umin: 0n, umax: mask(w), smin: sminOf(w), smax: smaxOf(w), t: tunknown(w) }));
}

// ---- hash-consing ----
// Every value the operations return is interned: equal values are one object. The analysis
// recomputes the same transfers on the same values over and over (each loop iteration, each call
// of a function), so the operations are memoised by the identity of their operands, and equal
// results keep later comparisons and joins on the cheap identity paths. Exact: the operations
// are pure functions of the values.

/** Interned values by hash (buckets of values with equal hashes). */
let TABLE = new Map<number, Num[]>();
let SIZE = 0;
/** Memo tables of the operations, keyed by the operands' identities (one Map per operation key). */
let MEMO = new Map<unknown, Map<Num, unknown>>();
const MAX_INTERNED = 1 << 18;

/** Forgets every interned value and memoised result (values stay valid, just no longer shared). */
export function clearCaches(): void {
  TABLE = new Map();
  MEMO = new Map();
  SIZE = 0;
  for (const t of TOPS) if (t !== undefined) intern(t);
}

function hashOf(n: Num): number {
  // Two bounds and the known bits determine a value almost always; sameNum settles the rest.
  const a = Number(n.umin), b = Number(n.umax), c = Number(n.t.v), d = Number(n.t.m);
  let h = Math.imul(n.w + (a | 0), 0x9e3779b1) + ((a / 4294967296) | 0);
  h = Math.imul(h ^ (b | 0), 0x85ebca6b) + ((b / 4294967296) | 0);
  h = Math.imul(h ^ (c | 0), 0xc2b2ae35) + ((c / 4294967296) | 0);
  h = Math.imul(h ^ (d | 0), 0x27d4eb2f) + ((d / 4294967296) | 0);
  return h | 0;
}

function sameNum(a: Num, b: Num): boolean {
  return a.w === b.w && a.umin === b.umin && a.umax === b.umax && a.smin === b.smin && a.smax === b.smax && a.t.v === b.t.v && a.t.m === b.t.m;
}

/** The one shared object equal to n. */
function intern(n: Num): Num {
  const h = hashOf(n);
  const bucket = TABLE.get(h);
  if (bucket === undefined) {
    if (++SIZE > MAX_INTERNED) clearCaches();
    TABLE.set(h, [n]);
    return n;
  }
  for (const x of bucket) if (x === n || sameNum(x, n)) return x;
  bucket.push(n);
  return n;
}

/** The memo of a one-operand operation (identified by `op`). */
function memo1(op: unknown): Map<Num, unknown> {
  let m = MEMO.get(op);
  if (m === undefined) {
    m = new Map();
    MEMO.set(op, m);
  }
  return m;
}

// Keys of the one-operand memos (numbers, one per operation and width).
const K_TRUNC = 1000, K_ZEXT = 2000, K_SEXT = 3000, K_BSWAP = 4000;

/** A two-operand memo entry: the first second operand seen, then a map for any others. */
interface Memo2 {
  readonly b: Num;
  readonly r: unknown;
  more?: Map<Num, unknown>;
}

/** The memoised result of operation `op` on (a, b), or undefined. */
function get2(op: unknown, a: Num, b: Num): unknown {
  const e = MEMO.get(op)?.get(a) as Memo2 | undefined;
  if (e === undefined) return undefined;
  return e.b === b ? e.r : e.more?.get(b);
}

function set2(op: unknown, a: Num, b: Num, r: unknown): void {
  let m = MEMO.get(op);
  if (m === undefined) {
    m = new Map();
    MEMO.set(op, m);
  }
  const e = m.get(a) as Memo2 | undefined;
  if (e === undefined) m.set(a, { b, r });
  else (e.more ??= new Map()).set(b, r);
}

export function constant(w: number, c: bigint): Num {
  const u = c & mask(w);
  const s = toSigned(w, u);
  return intern({ w, umin: u, umax: u, smin: s, smax: s, t: tconst(w, u) });
}

/** Values in [lo, hi] (unsigned). */
export function urange(w: number, lo: bigint, hi: bigint): Num {
  return sync({ ...top(w), umin: lo, umax: hi }) ?? top(w);
}

export function isConst(n: Num): boolean {
  return n.umin === n.umax;
}

export function contains(n: Num, x: bigint): boolean {
  const u = x & mask(n.w);
  const s = toSigned(n.w, u);
  return u >= n.umin && u <= n.umax && s >= n.smin && s <= n.smax && tcontains(n.t, u);
}

/**
 * Makes the bounds and the known bits agree; undefined when they leave no value (bottom).
 * Every step only removes values no component allows, so it is sound and idempotent enough
 * after two rounds.
 */
export function sync(n: Num): Num | undefined {
  const r = syncRaw(n);
  return r === undefined ? undefined : intern(r);
}

function syncRaw(n: Num): Num | undefined {
  const { w } = n;
  const M = mask(w);
  const half = MOD[w - 1];
  let { umin, umax, smin, smax, t } = n;
  // Nothing known at all is already consistent (and common).
  if (umin === 0n && umax === M && smin === SMIN[w] && smax === SMAX[w] && t.v === 0n && t.m === M) return n;
  const B = SMALL[w];
  if (umax < B && umin >= 0n) {
    // Known-one bits at or above B exceed umax: no value is left.
    if (t.v >= B) return undefined;
    const mBig = t.m >= B;
    return syncSmall(w, Number(umin), Number(umax),
      smin < 0n ? -1 : smin >= B ? Infinity : Number(smin), smax < 0n ? -1 : smax >= B ? Infinity : Number(smax),
      Number(t.v), Number(mBig ? BigInt.asUintN(LOW_BITS[w], t.m) : t.m), mBig, t.m < half);
  }
  for (let round = 0; round < 2; round++) {
    umin = big(umin, t.v);
    umax = small(umax, t.v | t.m);
    if ((t.m & half) === 0n) {
      smin = big(smin, toSigned(w, t.v));
      smax = small(smax, toSigned(w, t.v | t.m));
    }
    if (umin > umax || smin > smax) return undefined;
    // Both unsigned bounds in one signed half: the orders agree there.
    if (umax < half || umin >= half) {
      smin = big(smin, toSigned(w, umin));
      smax = small(smax, toSigned(w, umax));
    }
    if (smin >= 0n || smax < 0n) {
      umin = big(umin, toUnsigned(w, smin));
      umax = small(umax, toUnsigned(w, smax));
    }
    if (umin > umax || smin > smax) return undefined;
    const tt = tintersect(t, trange(w, umin, umax));
    if (tt === undefined) return undefined;
    t = tt;
    if (smin >= 0n || smax < 0n) {
      const ts = tintersect(t, trange(w, toUnsigned(w, smin), toUnsigned(w, smax)));
      if (ts === undefined) return undefined;
      t = ts;
    }
  }
  umin = big(umin, t.v);
  umax = small(umax, (t.v | t.m) & M);
  if (umin > umax) return undefined;
  if (umin === umax) {
    if (!tcontains(t, umin)) return undefined;
    const s = toSigned(w, umin);
    if (s < smin || s > smax) return undefined;
    return constant(w, umin);
  }
  return { w, umin, umax, smin, smax, t };
}

/**
 * sync's fast path for values whose unsigned bounds lie below SMALL[w] (2^32, or the sign bit when
 * w <= 32): after the first steps every component is non-negative and fits a uint32, so the same
 * steps run on doubles with 32-bit bitwise operations. Signed bounds outside [0, SMALL) come in as
 * -1 (any negative value) or Infinity (any value >= SMALL): the steps only compare them, and every
 * such bound is replaced or proves the value empty by the end of the first round. `mBig`: t.m has
 * unknown bits at or above SMALL (tm holds its low bits); `signClear`: t's sign bit is known.
 */
const SMALL: bigint[] = Array.from({ length: 65 }, (_, w) => (w === 0 ? 0n : w > 32 ? 1n << 32n : 1n << BigInt(w - 1)));
const LOW_BITS: number[] = Array.from({ length: 65 }, (_, w) => (w > 32 ? 32 : Math.max(0, w - 1)));

function syncSmall(w: number, umin: number, umax: number, smin: number, smax: number, tv: number, tm: number, mBig: boolean, signClear: boolean): Num | undefined {
  for (let round = 0; round < 2; round++) {
    const ones = mBig ? Infinity : (tv | tm) >>> 0;
    if (tv > umin) umin = tv;
    if (ones < umax) umax = ones;
    if (signClear) {
      if (tv > smin) smin = tv;
      if (ones < smax) smax = ones;
    }
    if (umin > umax || smin > smax) return undefined;
    // umax < SMALL <= the sign bit: the orders agree, and then smin >= 0.
    if (umin > smin) smin = umin;
    if (umax < smax) smax = umax;
    if (smin > umin) umin = smin;
    if (smax < umax) umax = smax;
    if (umin > umax || smin > smax) return undefined;
    // t meets the smallest tnum of [umin, umax], then of [smin, smax] (both have no bits >= SMALL).
    for (let k = 0; k < 2; k++) {
      const lo = k === 0 ? umin : smin, hi = k === 0 ? umax : smax;
      const chi = (lo ^ hi) >>> 0;
      const delta = chi === 0 ? 0 : (0xffffffff >>> Math.clz32(chi));
      const rv = (lo & ~delta) >>> 0;
      if (((tv ^ rv) & ~tm & ~delta) !== 0) return undefined;
      const mu = (tm & delta) >>> 0;
      tv = ((tv | rv) & ~mu) >>> 0;
      tm = mu;
    }
    mBig = false;
    signClear = true;
  }
  const ones = (tv | tm) >>> 0;
  if (tv > umin) umin = tv;
  if (ones < umax) umax = ones;
  if (umin > umax) return undefined;
  if (umin === umax) {
    if (((umin & ~tm) >>> 0) !== tv) return undefined;
    if (umin < smin || umin > smax) return undefined;
    return constant(w, BigInt(umin));
  }
  return { w, umin: BigInt(umin), umax: BigInt(umax), smin: BigInt(smin), smax: BigInt(smax), t: { v: BigInt(tv), m: BigInt(tm) } };
}

function make(w: number, umin: bigint, umax: bigint, smin: bigint, smax: bigint, t: Tnum): Num {
  // Transfer functions only produce over-approximations, so bottom here means a bug; fall back to top.
  return sync({ w, umin, umax, smin, smax, t }) ?? top(w);
}

export function join(a: Num, b: Num): Num {
  if (a === b) return a;
  let r = get2('join', a, b) as Num | undefined;
  if (r === undefined) {
    r = joinRaw(a, b);
    set2('join', a, b, r);
  }
  return r;
}

function joinRaw(a: Num, b: Num): Num {
  return intern({
    w: a.w,
    umin: small(a.umin, b.umin), umax: big(a.umax, b.umax),
    smin: small(a.smin, b.smin), smax: big(a.smax, b.smax),
    t: tunion(a.t, b.t),
  });
}

export function meet(a: Num, b: Num): Num | undefined {
  const t = tintersect(a.t, b.t);
  if (t === undefined) return undefined;
  return sync({
    w: a.w,
    umin: big(a.umin, b.umin), umax: small(a.umax, b.umax),
    smin: big(a.smin, b.smin), smax: small(a.smax, b.smax), t,
  });
}

export function leq(a: Num, b: Num): boolean {
  return a === b || a.umin >= b.umin && a.umax <= b.umax && a.smin >= b.smin && a.smax <= b.smax && tleq(a.t, b.t);
}

export function equal(a: Num, b: Num): boolean {
  return a === b || a.umin === b.umin && a.umax === b.umax && a.smin === b.smin && a.smax === b.smax && a.t.v === b.t.v && a.t.m === b.t.m;
}

/**
 * Widening with thresholds: a bound that grew jumps to the next threshold beyond it (or the end of
 * the range). Thresholds are sorted ascending and hold the program's constants and their
 * neighbours, so loop bounds like `i < 360` stabilise at the bound instead of at infinity.
 */
export function widen(old: Num, next: Num, thresholds: readonly bigint[]): Num {
  const { w } = old;
  const up = (v: bigint, lim: bigint): bigint => {
    for (const t of thresholds) if (t >= v && t <= lim) return t;
    return lim;
  };
  const down = (v: bigint, lim: bigint): bigint => {
    for (let i = thresholds.length - 1; i >= 0; i--) {
      const t = thresholds[i];
      if (t <= v && t >= lim) return t;
    }
    return lim;
  };
  const umin = next.umin < old.umin ? down(next.umin, 0n) : old.umin;
  const umax = next.umax > old.umax ? up(next.umax, mask(w)) : old.umax;
  const smin = next.smin < old.smin ? down(next.smin, sminOf(w)) : old.smin;
  const smax = next.smax > old.smax ? up(next.smax, smaxOf(w)) : old.smax;
  // Known bits lost one at a time would take w rounds (and would clip the widened bounds back):
  // every bit from the lowest newly unknown one up becomes unknown at once.
  let t = tunion(old.t, next.t);
  const lost = t.m & ~old.t.m;
  if (lost !== 0n) {
    const up = mask(w) & ~((lost & -lost) - 1n);
    t = { v: t.v & ~up, m: t.m | up };
  }
  return sync({ w, umin, umax, smin, smax, t }) ?? join(old, next);
}

// ---- arithmetic ----

function addSub(a: Num, b: Num, sub: boolean): Num {
  const { w } = a;
  const M = mask(w);
  const mod = 1n << BigInt(w);
  let umin = 0n, umax = M;
  const ulo = sub ? a.umin - b.umax : a.umin + b.umin;
  const uhi = sub ? a.umax - b.umin : a.umax + b.umax;
  if (ulo >= 0n && uhi <= M) { umin = ulo; umax = uhi; }
  else if (ulo > M || uhi < 0n) { umin = ulo > M ? ulo - mod : ulo + mod; umax = uhi > M ? uhi - mod : uhi + mod; }
  let smin = sminOf(w), smax = smaxOf(w);
  const slo = sub ? a.smin - b.smax : a.smin + b.smin;
  const shi = sub ? a.smax - b.smin : a.smax + b.smax;
  if (slo >= sminOf(w) && shi <= smaxOf(w)) { smin = slo; smax = shi; }
  else if (slo > smaxOf(w)) { smin = slo - mod; smax = shi - mod; }
  else if (shi < sminOf(w)) { smin = slo + mod; smax = shi + mod; }
  const t = sub ? tsub(w, a.t, b.t) : tadd(w, a.t, b.t);
  return make(w, umin, umax, smin, smax, t);
}

function mul(a: Num, b: Num): Num {
  const { w } = a;
  let umin = 0n, umax = mask(w);
  if (a.umax * b.umax <= mask(w)) { umin = a.umin * b.umin; umax = a.umax * b.umax; }
  let smin = sminOf(w), smax = smaxOf(w);
  const corners = [a.smin * b.smin, a.smin * b.smax, a.smax * b.smin, a.smax * b.smax];
  const lo = corners.reduce(small);
  const hi = corners.reduce(big);
  if (lo >= sminOf(w) && hi <= smaxOf(w)) { smin = lo; smax = hi; }
  return make(w, umin, umax, smin, smax, tmul(w, a.t, b.t));
}

function udiv(a: Num, b: Num): Num {
  const { w } = a;
  if (b.umax === 0n) return constant(w, 0n);
  // x / 0 = 0, and a quotient never exceeds the dividend.
  const lo = b.umin === 0n ? 0n : a.umin / b.umax;
  const hi = b.umin === 0n ? a.umax : a.umax / b.umin;
  return urange(w, lo, hi);
}

function umod(a: Num, b: Num): Num {
  const { w } = a;
  if (b.umin > 0n && a.umax < b.umin) return a;
  // x % 0 = x, and a remainder never exceeds the dividend.
  if (b.umin > 0n) return urange(w, 0n, small(a.umax, b.umax - 1n));
  return urange(w, 0n, a.umax);
}

function sdiv(a: Num, b: Num): Num {
  const { w } = a;
  if (isConst(b) && b.smin > 0n) {
    const q = (x: bigint): bigint => x / b.smin; // bigint division truncates toward zero, as eBPF's sdiv
    return make(w, 0n, mask(w), q(a.smin), q(a.smax), tunknown(w));
  }
  return top(w);
}

function smod(a: Num, b: Num): Num {
  const { w } = a;
  if (isConst(b) && b.smin !== 0n) {
    const c = b.smin < 0n ? -b.smin : b.smin;
    if (a.smin >= 0n && a.smax < c) return a;
    const lo = a.smin < 0n ? -(c - 1n) : 0n;
    const hi = a.smax > 0n ? c - 1n : 0n;
    return make(w, 0n, mask(w), lo, hi, tunknown(w));
  }
  return top(w);
}

function bitwise(op: 'and' | 'or' | 'xor', a: Num, b: Num): Num {
  const { w } = a;
  if (op === 'and') {
    const umax = small(a.umax, b.umax);
    const nonneg = a.smin >= 0n || b.smin >= 0n;
    return make(w, 0n, umax, nonneg ? 0n : sminOf(w), nonneg ? small(umax, smaxOf(w)) : smaxOf(w), tand(a.t, b.t));
  }
  if (op === 'or') return make(w, big(a.umin, b.umin), mask(w), sminOf(w), smaxOf(w), tor(a.t, b.t));
  return make(w, 0n, mask(w), sminOf(w), smaxOf(w), txor(a.t, b.t));
}

function shift(op: 'lsh' | 'rsh' | 'arsh', a: Num, b: Num): Num {
  const { w } = a;
  if (!isConst(b)) {
    if (op === 'rsh') return urange(w, 0n, a.umax);
    if (op === 'arsh') return make(w, 0n, mask(w), a.smin < 0n ? a.smin : 0n, a.smax >= 0n ? a.smax : -1n, tunknown(w));
    return top(w);
  }
  const k = Number(b.umin & BigInt(w - 1)); // shift counts are masked to the width
  const K = BigInt(k);
  if (op === 'lsh') {
    const M = mask(w);
    const fitsU = (a.umax << K) <= M;
    const fitsS = (a.smin << K) >= sminOf(w) && (a.smax << K) <= smaxOf(w);
    return make(w, fitsU ? a.umin << K : 0n, fitsU ? a.umax << K : M,
      fitsS ? a.smin << K : sminOf(w), fitsS ? a.smax << K : smaxOf(w), tlsh(w, a.t, k));
  }
  if (op === 'rsh') {
    return make(w, a.umin >> K, a.umax >> K, sminOf(w), smaxOf(w), trsh(a.t, k));
  }
  return make(w, 0n, mask(w), a.smin >> K, a.smax >> K, tarsh(w, a.t, k));
}

export function binary(op: BinaryOp, a: Num, b: Num): Num {
  let r = get2(op, a, b) as Num | undefined;
  if (r === undefined) {
    r = binaryRaw(op, a, b);
    set2(op, a, b, r);
  }
  return r;
}

function binaryRaw(op: BinaryOp, a: Num, b: Num): Num {
  if (isConst(a) && isConst(b)) return constant(a.w, evalBinary(op, a.w, a.umin, b.umin));
  switch (op) {
    case 'add': return addSub(a, b, false);
    case 'sub': return addSub(a, b, true);
    case 'mul': return mul(a, b);
    case 'udiv': return udiv(a, b);
    case 'umod': return umod(a, b);
    case 'sdiv': return sdiv(a, b);
    case 'smod': return smod(a, b);
    case 'and': case 'or': case 'xor': return bitwise(op, a, b);
    case 'lsh': case 'rsh': case 'arsh': return shift(op, a, b);
  }
}

/** The concrete operation on w-bit unsigned values (RFC 9669 semantics for /0, %0, shifts). */
export function evalBinary(op: BinaryOp, w: number, x: bigint, y: bigint): bigint {
  const M = mask(w);
  const sx = toSigned(w, x), sy = toSigned(w, y);
  const k = y & BigInt(w - 1);
  switch (op) {
    case 'add': return (x + y) & M;
    case 'sub': return (x - y) & M;
    case 'mul': return (x * y) & M;
    case 'udiv': return y === 0n ? 0n : x / y;
    case 'umod': return y === 0n ? x : x % y;
    case 'sdiv': return y === 0n ? 0n : (sx / sy) & M;
    case 'smod': return y === 0n ? x : (sx % sy) & M;
    case 'and': return x & y;
    case 'or': return x | y;
    case 'xor': return x ^ y;
    case 'lsh': return (x << k) & M;
    case 'rsh': return x >> k;
    case 'arsh': return (sx >> k) & M;
  }
}

export function neg(a: Num): Num {
  return binary('sub', constant(a.w, 0n), a);
}

/** The low `bits` bits as a `bits`-wide value. */
export function trunc(a: Num, bits: number): Num {
  const memo = memo1(K_TRUNC + bits);
  let r = memo.get(a) as Num | undefined;
  if (r === undefined) {
    r = truncRaw(a, bits);
    memo.set(a, r);
  }
  return r;
}

function truncRaw(a: Num, bits: number): Num {
  if (bits >= a.w) return a;
  const M = mask(bits);
  const B = BigInt(bits);
  const sameHigh = (a.umin >> B) === (a.umax >> B);
  const fitsS = a.smin >= sminOf(bits) && a.smax <= smaxOf(bits);
  return make(bits, sameHigh ? a.umin & M : 0n, sameHigh ? a.umax & M : M,
    fitsS ? a.smin : sminOf(bits), fitsS ? a.smax : smaxOf(bits), ttrunc(a.t, bits));
}

/** Zero-extension of a narrower value to width w. */
export function zext(a: Num, w: number): Num {
  const memo = memo1(K_ZEXT + w);
  let r = memo.get(a) as Num | undefined;
  if (r === undefined) {
    r = zextRaw(a, w);
    memo.set(a, r);
  }
  return r;
}

function zextRaw(a: Num, w: number): Num {
  if (a.w >= w) return a;
  return make(w, a.umin, a.umax, a.umin, a.umax, a.t);
}

/** Sign-extension of a narrower value to width w. */
export function sext(a: Num, w: number): Num {
  const memo = memo1(K_SEXT + w);
  let r = memo.get(a) as Num | undefined;
  if (r === undefined) {
    r = sextRaw(a, w);
    memo.set(a, r);
  }
  return r;
}

function sextRaw(a: Num, w: number): Num {
  if (a.w >= w) return a;
  const sign = 1n << BigInt(a.w - 1);
  const high = mask(w) & ~mask(a.w);
  let t: Tnum = a.t;
  if (a.t.m & sign) t = { v: a.t.v, m: a.t.m | high };
  else if (a.t.v & sign) t = { v: a.t.v | high, m: a.t.m };
  const nonneg = a.smin >= 0n;
  return make(w, nonneg ? a.umin : 0n, nonneg ? a.umax : mask(w), a.smin, a.smax, t);
}

/** Byte swap of the low `bits` bits, zero-extended (be16/be32/bswap*). */
export function bswap(a: Num, bits: number): Num {
  const memo = memo1(K_BSWAP + bits);
  let r = memo.get(a) as Num | undefined;
  if (r === undefined) {
    r = bswapRaw(a, bits);
    memo.set(a, r);
  }
  return r;
}

function bswapRaw(a: Num, bits: number): Num {
  const low = trunc(a, bits);
  if (isConst(low)) return constant(a.w, swapBytes(low.umin, bits));
  if (bits >= a.w) return make(a.w, 0n, mask(a.w), sminOf(a.w), smaxOf(a.w), tbswap(low.t, bits));
  return make(a.w, 0n, mask(bits), 0n, mask(bits), tbswap(low.t, bits));
}

// ---- branch refinement ----

function withU(n: Num, umin: bigint, umax: bigint): Num | undefined {
  return sync({ ...n, umin: big(n.umin, umin), umax: small(n.umax, umax) });
}
function withS(n: Num, smin: bigint, smax: bigint): Num | undefined {
  return sync({ ...n, smin: big(n.smin, smin), smax: small(n.smax, smax) });
}

/** Removes the single value c when it sits at a bound (all an interval can express). */
function exclude(n: Num, c: bigint): Num | undefined {
  const u = c & mask(n.w);
  const s = toSigned(n.w, u);
  let { umin, umax, smin, smax } = n;
  if (umin === u) umin++;
  if (umax === u) umax--;
  if (smin === s) smin++;
  if (smax === s) smax--;
  return sync({ ...n, umin, umax, smin, smax });
}

/**
 * Narrows a and b to the values for which `a cond b` holds; undefined when no values do (the
 * branch cannot go that way).
 */
const NONE: readonly [Num, Num] = [top(1), top(1)];
/** Memo keys of refine, apart from the operations' names. */
const REFINE_KEY = Object.fromEntries(Object.keys(NEGATE).map((c) => [c, `refine:${c}`])) as Record<Cond, string>;

export function refine(cond: Cond, a: Num, b: Num): [Num, Num] | undefined {
  let r = get2(REFINE_KEY[cond], a, b) as [Num, Num] | undefined;
  if (r === undefined) {
    r = refineRaw(cond, a, b) ?? (NONE as [Num, Num]);
    set2(REFINE_KEY[cond], a, b, r);
  }
  return r === NONE ? undefined : r;
}

function refineRaw(cond: Cond, a: Num, b: Num): [Num, Num] | undefined {
  const { w } = a;
  const M = mask(w);
  const SMIN = sminOf(w), SMAX = smaxOf(w);
  let x: Num | undefined = a;
  let y: Num | undefined = b;
  switch (cond) {
    case 'eq': {
      const m = meet(a, b);
      return m === undefined ? undefined : [m, m];
    }
    case 'ne':
      if (isConst(a) && isConst(b)) return a.umin === b.umin ? undefined : [a, b];
      if (isConst(b)) x = exclude(a, b.umin);
      if (isConst(a)) y = exclude(b, a.umin);
      break;
    case 'ult':
      if (b.umax === 0n || a.umin === M) return undefined;
      x = withU(a, 0n, b.umax - 1n);
      y = withU(b, a.umin + 1n, M);
      break;
    case 'ule':
      x = withU(a, 0n, b.umax);
      y = withU(b, a.umin, M);
      break;
    case 'slt':
      if (b.smax === SMIN || a.smin === SMAX) return undefined;
      x = withS(a, SMIN, b.smax - 1n);
      y = withS(b, a.smin + 1n, SMAX);
      break;
    case 'sle':
      x = withS(a, SMIN, b.smax);
      y = withS(b, a.smin, SMAX);
      break;
    case 'ugt': case 'uge': case 'sgt': case 'sge': {
      const r = refine(SWAP[cond], b, a);
      return r === undefined ? undefined : [r[1], r[0]];
    }
    case 'set':
      if (isConst(b)) {
        const c = b.umin;
        if (((a.t.v | a.t.m) & c) === 0n) return undefined;
        // A single tested bit that is unknown must be set on this path.
        if ((a.t.v & c) === 0n && (c & (c - 1n)) === 0n) x = sync({ ...a, t: { v: a.t.v | c, m: a.t.m & ~c } });
      } else if (isConst(a)) {
        const r = refine('set', b, a);
        return r === undefined ? undefined : [r[1], r[0]];
      }
      break;
    case 'nset':
      if (isConst(b)) {
        const c = b.umin;
        if (a.t.v & c) return undefined;
        x = sync({ ...a, t: { v: a.t.v, m: a.t.m & ~c } });
      } else if (isConst(a)) {
        const r = refine('nset', b, a);
        return r === undefined ? undefined : [r[1], r[0]];
      }
      break;
  }
  if (x === undefined || y === undefined) return undefined;
  return [x, y];
}

/** Whether `a cond b` holds for every value (true), none (false), or it depends (undefined). */
export function decide(cond: Cond, a: Num, b: Num): boolean | undefined {
  if (refine(cond, a, b) === undefined) return false;
  if (refine(NEGATE[cond], a, b) === undefined) return true;
  return undefined;
}

/** The concrete condition on w-bit unsigned values. */
export function evalCond(cond: Cond, w: number, x: bigint, y: bigint): boolean {
  const sx = toSigned(w, x), sy = toSigned(w, y);
  switch (cond) {
    case 'eq': return x === y;
    case 'ne': return x !== y;
    case 'ult': return x < y;
    case 'ule': return x <= y;
    case 'ugt': return x > y;
    case 'uge': return x >= y;
    case 'slt': return sx < sy;
    case 'sle': return sx <= sy;
    case 'sgt': return sx > sy;
    case 'sge': return sx >= sy;
    case 'set': return (x & y) !== 0n;
    case 'nset': return (x & y) === 0n;
  }
}
