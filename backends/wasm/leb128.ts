// The Wasm encoder's byte layer: a growable byte buffer that writes LEB128 integers in place, and
// a reader for the same encodings (tests and diagnostics). Values are written straight into a
// Uint8Array: the JIT path emits millions of bytes, so no per-byte boxing, arrays of numbers or strings.
// 64-bit values travel as two 32-bit halves wherever possible (eBPF `lddw` already provides them),
// so BigInt arithmetic stays off the hot path.

/** A value or structure the encoder cannot represent; the message names what and where. */
export class WasmEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmEncodeError';
  }
}

const TWO_63 = 1n << 63n;
const TWO_64 = 1n << 64n;

const utf8 = new TextEncoder();
const NAME_CACHE = new Map<string, Uint8Array>();

/** Bytes needed for `v` as an unsigned 32-bit LEB128 (v must already be a valid u32). */
export function lebU32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

export class ByteWriter {
  /** Backing store; only [0, length) is meaningful. Reallocated when it fills. */
  bytes: Uint8Array<ArrayBuffer>;
  length = 0;

  constructor(capacity = 256) {
    this.bytes = new Uint8Array(Math.max(16, capacity));
  }

  /** Makes room for `n` more bytes. Callers reserve once per item, then store without checks. */
  reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    let cap = Math.max(16, this.bytes.length * 2);
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  u8(b: number): void {
    if (this.length === this.bytes.length) this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** Two bytes, e.g. an opcode and a one-byte immediate. */
  u8x2(a: number, b: number): void {
    if (this.length + 2 > this.bytes.length) this.reserve(2);
    const p = this.length;
    this.bytes[p] = a;
    this.bytes[p + 1] = b;
    this.length = p + 2;
  }

  u32(v: number): void {
    if (v >>> 0 !== v) throw new WasmEncodeError(`LEB128 u32: ${v} is not an integer in [0, 2^32-1]`);
    this.writeU32(v);
  }

  /** Unchecked u32: for values the caller has already range-checked. */
  writeU32(v: number): void {
    if (this.length + 5 > this.bytes.length) this.reserve(5);
    const b = this.bytes;
    let p = this.length;
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.length = p;
  }

  s32(v: number): void {
    if ((v | 0) !== v) throw new WasmEncodeError(`LEB128 s32: ${v} is not an integer in [-2^31, 2^31-1]`);
    this.writeS32(v);
  }

  /** Unchecked s32: `v` must be an int32. */
  writeS32(v: number): void {
    if (this.length + 5 > this.bytes.length) this.reserve(5);
    const b = this.bytes;
    let p = this.length;
    for (;;) {
      const byte = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
        b[p++] = byte;
        break;
      }
      b[p++] = byte | 0x80;
    }
    this.length = p;
  }

  /**
   * Signed 64-bit LEB128 of the value whose low and high 32-bit halves are `lo` and `hi` (either
   * signedness: only the bit patterns matter). No BigInt involved.
   */
  s64Parts(lo: number, hi: number): void {
    lo |= 0;
    hi |= 0;
    if (hi === lo >> 31) {
      this.writeS32(lo);
      return;
    }
    if (this.length + 10 > this.bytes.length) this.reserve(10);
    const b = this.bytes;
    let p = this.length;
    for (;;) {
      const byte = lo & 0x7f;
      lo = (lo >>> 7) | (hi << 25);
      hi >>= 7;
      if (
        (hi === 0 && lo === 0 && (byte & 0x40) === 0) ||
        (hi === -1 && lo === -1 && (byte & 0x40) !== 0)
      ) {
        b[p++] = byte;
        break;
      }
      b[p++] = byte | 0x80;
    }
    this.length = p;
  }

  /**
   * Signed 64-bit LEB128. Accepts [-2^63, 2^64-1]: values of 2^63 and above are taken as their
   * two's-complement bit pattern, which is what an i64 immediate means.
   */
  s64(v: bigint): void {
    if (v < -TWO_63 || v >= TWO_64) {
      throw new WasmEncodeError(`LEB128 s64: ${v} does not fit in 64 bits`);
    }
    if (v >= -0x80000000n && v <= 0x7fffffffn) {
      this.writeS32(Number(v));
      return;
    }
    this.s64Parts(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
  }

  /** Unsigned 64-bit LEB128 of [0, 2^64-1]. */
  u64(v: bigint): void {
    if (v < 0n || v >= TWO_64) {
      throw new WasmEncodeError(`LEB128 u64: ${v} is not in [0, 2^64-1]`);
    }
    if (v <= 0xffffffffn) {
      this.writeU32(Number(v));
      return;
    }
    let lo = Number(v & 0xffffffffn);
    let hi = Number(v >> 32n);
    this.reserve(10);
    const b = this.bytes;
    let p = this.length;
    while (hi !== 0 || lo >= 0x80) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.length = p;
  }

  bytesFrom(src: Uint8Array): void {
    this.reserve(src.length);
    this.bytes.set(src, this.length);
    this.length += src.length;
  }

  /** A Wasm `name`: UTF-8 bytes preceded by their length. */
  name(s: string): void {
    let enc = NAME_CACHE.get(s);
    if (enc === undefined) {
      enc = utf8.encode(s);
      // Import and export names repeat in every module; other names (function names) vary.
      if (NAME_CACHE.size < 256) NAME_CACHE.set(s, enc);
    }
    this.writeU32(enc.length);
    this.bytesFrom(enc);
  }

  /** A copy of the written bytes, sized exactly (ArrayBuffer-backed, as WebAssembly.compile wants). */
  toBytes(): Uint8Array<ArrayBuffer> {
    return this.bytes.slice(0, this.length);
  }
}

/** Reads the encodings ByteWriter writes; rejects truncated and over-long input. */
export class ByteReader {
  pos: number;

  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }

  u8(): number {
    if (this.pos >= this.bytes.length) {
      throw new WasmEncodeError(`unexpected end of input at byte ${this.pos}`);
    }
    return this.bytes[this.pos++];
  }

  u32(): number {
    const v = this.leb(5, false, 'u32');
    if (v > 0xffffffffn) throw new WasmEncodeError(`LEB128 u32 overflows at byte ${this.pos}`);
    return Number(v);
  }

  s32(): number {
    const v = this.leb(5, true, 's32');
    if (v < -0x80000000n || v > 0x7fffffffn) {
      throw new WasmEncodeError(`LEB128 s32 overflows at byte ${this.pos}`);
    }
    return Number(v);
  }

  s64(): bigint {
    const v = this.leb(10, true, 's64');
    if (v < -TWO_63 || v >= TWO_63) throw new WasmEncodeError(`LEB128 s64 overflows at byte ${this.pos}`);
    return v;
  }

  u64(): bigint {
    const v = this.leb(10, false, 'u64');
    if (v >= TWO_64) throw new WasmEncodeError(`LEB128 u64 overflows at byte ${this.pos}`);
    return v;
  }

  private leb(maxBytes: number, signed: boolean, what: string): bigint {
    const start = this.pos;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < maxBytes; i++) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) {
        if (signed && (byte & 0x40) !== 0) result -= 1n << shift;
        return result;
      }
    }
    throw new WasmEncodeError(`LEB128 ${what} at byte ${start} is longer than ${maxBytes} bytes`);
  }
}
