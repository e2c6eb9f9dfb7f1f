// 64-bit eBPF arithmetic on a register file held as 32-bit halves (lo[r], hi[r], both Int32Array),
// so the interpreter's hot path never allocates a BigInt. Each operation updates register d in
// place with the second operand given as halves (bl, bh). The simple ones (add, sub, logic,
// compares) are inlined in the interpreter; these are the ones with enough logic to share.
// Division falls back to BigInt only when an operand does not fit in 53 bits.

const TWO32 = 4294967296;
/** Upper halves below this (unsigned) keep an unsigned value under 2^53, where doubles are exact. */
const SAFE_HI = 0x200000;

const toBig = (l: number, h: number): bigint => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);

function setBig(lo: Int32Array, hi: Int32Array, d: number, v: bigint): void {
  lo[d] = Number(v & 0xffffffffn) | 0;
  hi[d] = Number((v >> 32n) & 0xffffffffn) | 0;
}

/** Stores an integral double (|v| < 2^53) as 64-bit two's complement. */
function setDouble(lo: Int32Array, hi: Int32Array, d: number, v: number): void {
  // ToInt32 reduces modulo 2^32 exactly, for negative values too.
  lo[d] = v | 0;
  hi[d] = Math.floor(v / TWO32) | 0;
}

export function mul64(lo: Int32Array, hi: Int32Array, d: number, bl: number, bh: number): void {
  const al = lo[d];
  const ah = hi[d];
  // The low 32x32 -> 64 product from 16-bit limbs: every partial product stays below 2^32.
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  lo[d] = (mid << 16) | (p00 & 0xffff);
  const carry = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536);
  hi[d] = (carry + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
}

/** Unsigned division; division by zero gives 0. */
export function udiv64(lo: Int32Array, hi: Int32Array, d: number, bl: number, bh: number): void {
  const al = lo[d];
  const ah = hi[d];
  if ((bl | bh) === 0) {
    lo[d] = 0;
    hi[d] = 0;
  } else if ((ah | bh) === 0) {
    lo[d] = ((al >>> 0) / (bl >>> 0)) | 0;
  } else if (ah >>> 0 < SAFE_HI && bh >>> 0 < SAFE_HI) {
    // For integers below 2^53 the rounded quotient never reaches the next integer.
    setDouble(lo, hi, d, Math.floor(((ah >>> 0) * TWO32 + (al >>> 0)) / ((bh >>> 0) * TWO32 + (bl >>> 0))));
  } else {
    setBig(lo, hi, d, toBig(al, ah) / toBig(bl, bh));
  }
}

/** Unsigned remainder; modulo by zero leaves the dividend. */
export function umod64(lo: Int32Array, hi: Int32Array, d: number, bl: number, bh: number): void {
  const al = lo[d];
  const ah = hi[d];
  if ((bl | bh) === 0) return;
  if ((ah | bh) === 0) {
    lo[d] = ((al >>> 0) % (bl >>> 0)) | 0;
  } else if (ah >>> 0 < SAFE_HI && bh >>> 0 < SAFE_HI) {
    setDouble(lo, hi, d, ((ah >>> 0) * TWO32 + (al >>> 0)) % ((bh >>> 0) * TWO32 + (bl >>> 0)));
  } else {
    setBig(lo, hi, d, toBig(al, ah) % toBig(bl, bh));
  }
}

const fitsSigned = (h: number): boolean => h >= -SAFE_HI && h < SAFE_HI;

/** Signed division, truncating; by zero gives 0, INT64_MIN / -1 gives INT64_MIN. */
export function sdiv64(lo: Int32Array, hi: Int32Array, d: number, bl: number, bh: number): void {
  const al = lo[d];
  const ah = hi[d];
  if ((bl | bh) === 0) {
    lo[d] = 0;
    hi[d] = 0;
  } else if (fitsSigned(ah) && fitsSigned(bh)) {
    setDouble(lo, hi, d, Math.trunc((ah * TWO32 + (al >>> 0)) / (bh * TWO32 + (bl >>> 0))));
  } else {
    // asUintN in setBig wraps INT64_MIN / -1 = 2^63 back to INT64_MIN.
    setBig(lo, hi, d, BigInt.asIntN(64, toBig(al, ah)) / BigInt.asIntN(64, toBig(bl, bh)));
  }
}

/** Signed remainder with the sign of the dividend; by zero leaves the dividend, INT64_MIN % -1 = 0. */
export function smod64(lo: Int32Array, hi: Int32Array, d: number, bl: number, bh: number): void {
  const al = lo[d];
  const ah = hi[d];
  if ((bl | bh) === 0) return;
  if (fitsSigned(ah) && fitsSigned(bh)) {
    // Double `%` is exact and takes the dividend's sign, as eBPF's smod does.
    setDouble(lo, hi, d, (ah * TWO32 + (al >>> 0)) % (bh * TWO32 + (bl >>> 0)));
  } else {
    setBig(lo, hi, d, BigInt.asIntN(64, toBig(al, ah)) % BigInt.asIntN(64, toBig(bl, bh)));
  }
}

/** Shift left by n & 63. */
export function lsh64(lo: Int32Array, hi: Int32Array, d: number, n: number): void {
  n &= 63;
  if (n === 0) return;
  if (n < 32) {
    hi[d] = (hi[d] << n) | (lo[d] >>> (32 - n));
    lo[d] = lo[d] << n;
  } else {
    hi[d] = lo[d] << (n - 32);
    lo[d] = 0;
  }
}

/** Logical shift right by n & 63. */
export function rsh64(lo: Int32Array, hi: Int32Array, d: number, n: number): void {
  n &= 63;
  if (n === 0) return;
  if (n < 32) {
    lo[d] = (lo[d] >>> n) | (hi[d] << (32 - n));
    hi[d] = hi[d] >>> n;
  } else {
    lo[d] = hi[d] >>> (n - 32);
    hi[d] = 0;
  }
}

/** Arithmetic shift right by n & 63. */
export function arsh64(lo: Int32Array, hi: Int32Array, d: number, n: number): void {
  n &= 63;
  if (n === 0) return;
  if (n < 32) {
    lo[d] = (lo[d] >>> n) | (hi[d] << (32 - n));
    hi[d] = hi[d] >> n;
  } else {
    lo[d] = hi[d] >> (n - 32);
    hi[d] = hi[d] >> 31;
  }
}

export function swap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

export function swap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

/** Unsigned a > b on halves. */
export function ugt(ah: number, al: number, bh: number, bl: number): boolean {
  return ah !== bh ? ah >>> 0 > bh >>> 0 : al >>> 0 > bl >>> 0;
}

/** Unsigned a >= b on halves. */
export function uge(ah: number, al: number, bh: number, bl: number): boolean {
  return ah !== bh ? ah >>> 0 > bh >>> 0 : al >>> 0 >= bl >>> 0;
}

/** Signed a > b on halves (the high halves are signed Int32 values). */
export function sgt(ah: number, al: number, bh: number, bl: number): boolean {
  return ah !== bh ? ah > bh : al >>> 0 > bl >>> 0;
}

/** Signed a >= b on halves. */
export function sge(ah: number, al: number, bh: number, bl: number): boolean {
  return ah !== bh ? ah > bh : al >>> 0 >= bl >>> 0;
}
