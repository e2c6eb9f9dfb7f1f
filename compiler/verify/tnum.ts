// Tristate numbers ("known bits", as in the Linux verifier): a value whose bits are each known 0,
// known 1 or unknown. `v` holds the known-1 bits, `m` the unknown ones (v & m == 0).
// Width-generic (bigint, any width up to 64) so that tests can compare every operation against
// brute force over small widths; the verifier uses widths 64 and 32 (and 8/16 for truncations).

export interface Tnum {
  readonly v: bigint;
  readonly m: bigint;
}

const MASKS: bigint[] = Array.from({ length: 65 }, (_, w) => (1n << BigInt(w)) - 1n);
export const mask = (w: number): bigint => MASKS[w];

export function tconst(w: number, c: bigint): Tnum {
  return { v: c & mask(w), m: 0n };
}

export function tunknown(w: number): Tnum {
  return { v: 0n, m: mask(w) };
}

/** The smallest tnum holding every value in [lo, hi] (unsigned, lo <= hi). */
export function trange(w: number, lo: bigint, hi: bigint): Tnum {
  const chi = lo ^ hi;
  if (chi === 0n) return { v: lo, m: 0n };
  const bits = bitLength(chi);
  if (bits >= w) return tunknown(w);
  const delta = (1n << BigInt(bits)) - 1n;
  return { v: lo & ~delta, m: delta };
}

function bitLength(x: bigint): number {
  let n = 0;
  let v = x;
  while (v >= 0x100000000n) { v >>= 32n; n += 32; }
  return n + 32 - Math.clz32(Number(v));
}

export function tadd(w: number, a: Tnum, b: Tnum): Tnum {
  const M = mask(w);
  const sm = a.m + b.m;
  const sv = a.v + b.v;
  const sigma = sm + sv;
  const chi = sigma ^ sv;
  const mu = (chi | a.m | b.m) & M;
  return { v: sv & ~mu & M, m: mu };
}

export function tsub(w: number, a: Tnum, b: Tnum): Tnum {
  const M = mask(w);
  const dv = a.v - b.v;
  const alpha = dv + a.m;
  const beta = dv - b.m;
  const chi = alpha ^ beta;
  const mu = (chi | a.m | b.m) & M;
  return { v: dv & ~mu & M, m: mu };
}

export function tand(a: Tnum, b: Tnum): Tnum {
  const alpha = a.v | a.m;
  const beta = b.v | b.m;
  const v = a.v & b.v;
  return { v, m: alpha & beta & ~v };
}

export function tor(a: Tnum, b: Tnum): Tnum {
  const v = a.v | b.v;
  return { v, m: (a.m | b.m) & ~v };
}

export function txor(a: Tnum, b: Tnum): Tnum {
  const v = a.v ^ b.v;
  const mu = a.m | b.m;
  return { v: v & ~mu, m: mu };
}

export function tlsh(w: number, a: Tnum, s: number): Tnum {
  const M = mask(w);
  const k = BigInt(s);
  return { v: (a.v << k) & M, m: (a.m << k) & M };
}

export function trsh(a: Tnum, s: number): Tnum {
  const k = BigInt(s);
  return { v: a.v >> k, m: a.m >> k };
}

/** Arithmetic shift right: an unknown sign bit makes every shifted-in bit unknown. */
export function tarsh(w: number, a: Tnum, s: number): Tnum {
  const M = mask(w);
  const sign = 1n << BigInt(w - 1);
  const sx = (x: bigint): bigint => (x & sign ? x - (1n << BigInt(w)) : x);
  const k = BigInt(s);
  return { v: (sx(a.v) >> k) & M & ~((sx(a.m) >> k) & M), m: (sx(a.m) >> k) & M };
}

/** Multiplication (the kernel's tnum_mul): sums partial products of known and unknown bits. */
export function tmul(w: number, a: Tnum, b: Tnum): Tnum {
  const M = mask(w);
  const accV = (a.v * b.v) & M;
  let accM: Tnum = { v: 0n, m: 0n };
  let x = a;
  let y = b;
  while (x.v !== 0n || x.m !== 0n) {
    if (x.v & 1n) accM = tadd(w, accM, { v: 0n, m: y.m });
    else if (x.m & 1n) accM = tadd(w, accM, { v: 0n, m: y.v | y.m });
    x = trsh(x, 1);
    y = tlsh(w, y, 1);
  }
  return tadd(w, { v: accV, m: 0n }, accM);
}

/** Values known to both (meet); undefined when they disagree on a known bit. */
export function tintersect(a: Tnum, b: Tnum): Tnum | undefined {
  if ((a.v ^ b.v) & ~a.m & ~b.m) return undefined;
  const v = a.v | b.v;
  const mu = a.m & b.m;
  return { v: v & ~mu, m: mu };
}

/** The smallest tnum holding both (join). */
export function tunion(a: Tnum, b: Tnum): Tnum {
  const mu = a.m | b.m | (a.v ^ b.v);
  return { v: a.v & ~mu, m: mu };
}

export function tcontains(a: Tnum, x: bigint): boolean {
  return (x & ~a.m) === a.v;
}

/** Every value of a is a value of b. */
export function tleq(a: Tnum, b: Tnum): boolean {
  return (a.m & ~b.m) === 0n && (a.v & ~b.m) === b.v;
}

/** The low `bits` bits. */
export function ttrunc(a: Tnum, bits: number): Tnum {
  const M = mask(bits);
  return { v: a.v & M, m: a.m & M };
}

/** Byte swap of the low `bits` bits (exact on tnums: bits only move). */
export function tbswap(a: Tnum, bits: number): Tnum {
  return { v: swapBytes(a.v, bits), m: swapBytes(a.m, bits) };
}

export function swapBytes(x: bigint, bits: number): bigint {
  let out = 0n;
  for (let i = 0; i < bits / 8; i++) out = (out << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
  return out;
}
