// The Wasm encoder at its own level: LEB128 against published vectors and an independent BigInt
// reference, then modules for every instruction group, each validated by V8 and by wabt, compared
// with wabt's disassembly where the text says something useful, and executed against BigInt models.
import { beforeAll, describe, expect, it } from 'vitest';
import wabtInit from 'wabt';
import { FunctionBuilder, WasmEncodeError } from '../backends/wasm/encode.js';
import type { CodeSnapshot, ValType } from '../backends/wasm/encode.js';
import { ByteReader, ByteWriter } from '../backends/wasm/leb128.js';
import { ModuleBuilder } from '../backends/wasm/module.js';
import { Op } from '../backends/wasm/opcodes.js';
import { rng as prng } from './support/rng.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
type WasmFn = (...args: (number | bigint)[]) => unknown;

let wabt: Wabt;
beforeAll(async () => {
  wabt = await wabtInit();
});

/** Validates with V8 and wabt; returns wabt's text form (with names). */
function check(bytes: Uint8Array<ArrayBuffer>): string {
  expect(WebAssembly.validate(bytes)).toBe(true);
  const m = wabt.readWasm(bytes, {
    readDebugNames: true,
    bulk_memory: true,
    sign_extension: true,
    mutable_globals: true,
  });
  try {
    m.validate();
    m.applyNames(); // references (call, start, elem) by name too, not only definitions
    return m.toText({});
  } finally {
    m.destroy();
  }
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
}

function fn(inst: WebAssembly.Instance, name: string): WasmFn {
  const f = inst.exports[name];
  if (typeof f !== 'function') throw new Error(`export ${name} is not a function`);
  return f as WasmFn;
}

/** Runs f; 'trap' if the engine trapped. */
function run(f: WasmFn, ...args: (number | bigint)[]): unknown {
  try {
    return f(...args);
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) return 'trap';
    throw e;
  }
}


/** Random 64-bit signed value with a random magnitude, so short and long encodings both occur. */
function randomI64(rand: () => number): bigint {
  const raw = (BigInt(rand()) << 32n) | BigInt(rand());
  return BigInt.asIntN(64, raw >> BigInt(rand() % 64));
}

// ---- independent reference LEB128 (plain BigInt arithmetic, no bit tricks) --------------------

function refUnsigned(v: bigint): number[] {
  const out: number[] = [];
  do {
    let byte = Number(v % 128n);
    v /= 128n;
    if (v !== 0n) byte += 128;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

function refSigned(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(((v % 128n) + 128n) % 128n);
    v = (v - BigInt(byte)) / 128n;
    const signBit = byte >= 64;
    if ((v === 0n && !signBit) || (v === -1n && signBit)) {
      out.push(byte);
      return out;
    }
    out.push(byte + 128);
  }
}

function written(write: (w: ByteWriter) => void): number[] {
  const w = new ByteWriter(1);
  write(w);
  return [...w.toBytes()];
}

/** Matches one instruction (with its immediates) as wabt prints it, at the end of its line or list. */
function instr(text: string): RegExp {
  return new RegExp(`\\b${text.replace(/[.()^$]/g, '\\$&')}(?=[\\n)])`);
}

const hex = (s: string): number[] => s.split(' ').map((b) => parseInt(b, 16));

describe('LEB128', () => {
  it('encodes the published vectors', () => {
    // unsigned: the DWARF / Wikipedia example 624485 and the u32 edges
    expect(written((w) => w.u32(0))).toEqual([0]);
    expect(written((w) => w.u32(127))).toEqual([0x7f]);
    expect(written((w) => w.u32(128))).toEqual(hex('80 01'));
    expect(written((w) => w.u32(624485))).toEqual(hex('e5 8e 26'));
    expect(written((w) => w.u32(2 ** 32 - 1))).toEqual(hex('ff ff ff ff 0f'));
    // signed: -123456 is the Wikipedia example; 63/64 and -64/-65 sit on the sign-bit boundary
    expect(written((w) => w.s32(-123456))).toEqual(hex('c0 bb 78'));
    expect(written((w) => w.s32(0))).toEqual([0]);
    expect(written((w) => w.s32(-1))).toEqual([0x7f]);
    expect(written((w) => w.s32(63))).toEqual([0x3f]);
    expect(written((w) => w.s32(64))).toEqual(hex('c0 00'));
    expect(written((w) => w.s32(-64))).toEqual([0x40]);
    expect(written((w) => w.s32(-65))).toEqual(hex('bf 7f'));
    expect(written((w) => w.s32(2 ** 31 - 1))).toEqual(hex('ff ff ff ff 07'));
    expect(written((w) => w.s32(-(2 ** 31)))).toEqual(hex('80 80 80 80 78'));
    expect(written((w) => w.s64((1n << 63n) - 1n))).toEqual(hex('ff ff ff ff ff ff ff ff ff 00'));
    expect(written((w) => w.s64(-(1n << 63n)))).toEqual(hex('80 80 80 80 80 80 80 80 80 7f'));
    expect(written((w) => w.s64(1n << 31n))).toEqual(hex('80 80 80 80 08'));
    expect(written((w) => w.s64(-(1n << 31n) - 1n))).toEqual(hex('ff ff ff ff 77'));
    // 2^64-1 as an i64 bit pattern is -1
    expect(written((w) => w.s64((1n << 64n) - 1n))).toEqual([0x7f]);
    expect(written((w) => w.u64((1n << 64n) - 1n))).toEqual(hex('ff ff ff ff ff ff ff ff ff 01'));
    expect(written((w) => w.u64(1n << 32n))).toEqual(hex('80 80 80 80 10'));
  });

  const EDGES_64 = [
    0n, 1n, -1n, 63n, 64n, -64n, -65n, 127n, 128n,
    (1n << 31n) - 1n, 1n << 31n, -(1n << 31n), -(1n << 31n) - 1n, (1n << 32n) - 1n, 1n << 32n,
    (1n << 63n) - 1n, -(1n << 63n), 0x0123456789abcdefn, -0x0123456789abcdefn,
  ];

  it('matches the reference encoder and round-trips random and edge values', () => {
    const rand = prng(0x5eed);
    const s32s = [0, -1, 1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31)];
    const u32s = [0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1];
    const s64s = [...EDGES_64];
    for (let i = 0; i < 2000; i++) {
      s32s.push(rand() | 0, (rand() | 0) >> (rand() % 32));
      u32s.push(rand() >>> (rand() % 32));
      s64s.push(randomI64(rand));
    }
    for (const v of s32s) {
      const bytes = written((w) => w.s32(v));
      expect(bytes).toEqual(refSigned(BigInt(v)));
      expect(new ByteReader(Uint8Array.from(bytes)).s32()).toBe(v);
    }
    for (const v of u32s) {
      const bytes = written((w) => w.u32(v));
      expect(bytes).toEqual(refUnsigned(BigInt(v)));
      expect(new ByteReader(Uint8Array.from(bytes)).u32()).toBe(v);
    }
    for (const v of s64s) {
      const bytes = written((w) => w.s64(v));
      expect(bytes).toEqual(refSigned(v));
      expect(new ByteReader(Uint8Array.from(bytes)).s64()).toBe(v);
      // the BigInt-free path from 32-bit halves must agree
      const lo = Number(BigInt.asIntN(32, v));
      const hi = Number(BigInt.asIntN(32, v >> 32n));
      expect(written((w) => w.s64Parts(lo, hi))).toEqual(bytes);
      expect(written((w) => w.s64Parts(lo >>> 0, hi >>> 0))).toEqual(bytes);
      const u = BigInt.asUintN(64, v);
      const ubytes = written((w) => w.u64(u));
      expect(ubytes).toEqual(refUnsigned(u));
      expect(new ByteReader(Uint8Array.from(ubytes)).u64()).toBe(u);
    }
  });

  it('keeps a stream of mixed values intact across buffer growth', () => {
    const rand = prng(7);
    const w = new ByteWriter(1);
    const values: bigint[] = [];
    for (let i = 0; i < 5000; i++) values.push(randomI64(rand));
    for (const v of values) w.s64(v);
    const r = new ByteReader(w.toBytes());
    for (const v of values) expect(r.s64()).toBe(v);
    expect(r.pos).toBe(w.length);
  });

  it('rejects values out of range with WasmEncodeError', () => {
    const w = new ByteWriter();
    expect(() => w.u32(-1)).toThrow(WasmEncodeError);
    expect(() => w.u32(2 ** 32)).toThrow(/u32: 4294967296/);
    expect(() => w.u32(1.5)).toThrow(WasmEncodeError);
    expect(() => w.s32(2 ** 31)).toThrow(/s32: 2147483648/);
    expect(() => w.s32(Number.NaN)).toThrow(WasmEncodeError);
    expect(() => w.s64(1n << 64n)).toThrow(/s64/);
    expect(() => w.s64(-(1n << 63n) - 1n)).toThrow(/s64/);
    expect(() => w.u64(-1n)).toThrow(/u64/);
    expect(w.length).toBe(0);
  });

  it('reader rejects truncated and over-long input', () => {
    expect(() => new ByteReader(Uint8Array.from(hex('80 80'))).u32()).toThrow(/unexpected end/);
    expect(() => new ByteReader(Uint8Array.from(hex('80 80 80 80 80 00'))).u32()).toThrow(/longer than 5/);
    expect(() => new ByteReader(Uint8Array.from(hex('ff ff ff ff 1f'))).u32()).toThrow(/overflows/);
  });
});

// ---- numeric instruction groups -----------------------------------------------------------------

const sx = (w: bigint, x: bigint): bigint => BigInt.asIntN(Number(w), x);
const zx = (w: bigint, x: bigint): bigint => BigInt.asUintN(Number(w), x);
const bool = (b: boolean): bigint => (b ? 1n : 0n);

type Ref = (a: bigint, b: bigint, w: bigint) => bigint | 'trap';
interface NumOp {
  name: string;
  i32: (f: FunctionBuilder) => FunctionBuilder;
  i64: (f: FunctionBuilder) => FunctionBuilder;
  ref: Ref;
  /** Result is an i32 truth value whatever the operand width. */
  cmp?: boolean;
}

const rotl = (a: bigint, b: bigint, w: bigint): bigint => {
  const k = zx(w, b) % w;
  const x = zx(w, a);
  return sx(w, (x << k) | (x >> (w - k)));
};

const BINARY: NumOp[] = [
  { name: 'add', i32: (f) => f.i32Add(), i64: (f) => f.i64Add(), ref: (a, b, w) => sx(w, a + b) },
  { name: 'sub', i32: (f) => f.i32Sub(), i64: (f) => f.i64Sub(), ref: (a, b, w) => sx(w, a - b) },
  { name: 'mul', i32: (f) => f.i32Mul(), i64: (f) => f.i64Mul(), ref: (a, b, w) => sx(w, a * b) },
  {
    name: 'div_s', i32: (f) => f.i32DivS(), i64: (f) => f.i64DivS(),
    ref: (a, b, w) => (b === 0n || (a === -(1n << (w - 1n)) && b === -1n) ? 'trap' : sx(w, a / b)),
  },
  {
    name: 'div_u', i32: (f) => f.i32DivU(), i64: (f) => f.i64DivU(),
    ref: (a, b, w) => (b === 0n ? 'trap' : sx(w, zx(w, a) / zx(w, b))),
  },
  { name: 'rem_s', i32: (f) => f.i32RemS(), i64: (f) => f.i64RemS(), ref: (a, b) => (b === 0n ? 'trap' : a % b) },
  {
    name: 'rem_u', i32: (f) => f.i32RemU(), i64: (f) => f.i64RemU(),
    ref: (a, b, w) => (b === 0n ? 'trap' : sx(w, zx(w, a) % zx(w, b))),
  },
  { name: 'and', i32: (f) => f.i32And(), i64: (f) => f.i64And(), ref: (a, b) => a & b },
  { name: 'or', i32: (f) => f.i32Or(), i64: (f) => f.i64Or(), ref: (a, b) => a | b },
  { name: 'xor', i32: (f) => f.i32Xor(), i64: (f) => f.i64Xor(), ref: (a, b) => a ^ b },
  { name: 'shl', i32: (f) => f.i32Shl(), i64: (f) => f.i64Shl(), ref: (a, b, w) => sx(w, a << (zx(w, b) % w)) },
  { name: 'shr_s', i32: (f) => f.i32ShrS(), i64: (f) => f.i64ShrS(), ref: (a, b, w) => a >> (zx(w, b) % w) },
  { name: 'shr_u', i32: (f) => f.i32ShrU(), i64: (f) => f.i64ShrU(), ref: (a, b, w) => sx(w, zx(w, a) >> (zx(w, b) % w)) },
  { name: 'rotl', i32: (f) => f.i32Rotl(), i64: (f) => f.i64Rotl(), ref: rotl },
  { name: 'rotr', i32: (f) => f.i32Rotr(), i64: (f) => f.i64Rotr(), ref: (a, b, w) => rotl(a, -b, w) },
  { name: 'eq', cmp: true, i32: (f) => f.i32Eq(), i64: (f) => f.i64Eq(), ref: (a, b) => bool(a === b) },
  { name: 'ne', cmp: true, i32: (f) => f.i32Ne(), i64: (f) => f.i64Ne(), ref: (a, b) => bool(a !== b) },
  { name: 'lt_s', cmp: true, i32: (f) => f.i32LtS(), i64: (f) => f.i64LtS(), ref: (a, b) => bool(a < b) },
  { name: 'lt_u', cmp: true, i32: (f) => f.i32LtU(), i64: (f) => f.i64LtU(), ref: (a, b, w) => bool(zx(w, a) < zx(w, b)) },
  { name: 'gt_s', cmp: true, i32: (f) => f.i32GtS(), i64: (f) => f.i64GtS(), ref: (a, b) => bool(a > b) },
  { name: 'gt_u', cmp: true, i32: (f) => f.i32GtU(), i64: (f) => f.i64GtU(), ref: (a, b, w) => bool(zx(w, a) > zx(w, b)) },
  { name: 'le_s', cmp: true, i32: (f) => f.i32LeS(), i64: (f) => f.i64LeS(), ref: (a, b) => bool(a <= b) },
  { name: 'le_u', cmp: true, i32: (f) => f.i32LeU(), i64: (f) => f.i64LeU(), ref: (a, b, w) => bool(zx(w, a) <= zx(w, b)) },
  { name: 'ge_s', cmp: true, i32: (f) => f.i32GeS(), i64: (f) => f.i64GeS(), ref: (a, b) => bool(a >= b) },
  { name: 'ge_u', cmp: true, i32: (f) => f.i32GeU(), i64: (f) => f.i64GeU(), ref: (a, b, w) => bool(zx(w, a) >= zx(w, b)) },
];

const bits = (x: bigint): string => x.toString(2);
const UNARY: NumOp[] = [
  {
    name: 'clz', i32: (f) => f.i32Clz(), i64: (f) => f.i64Clz(),
    ref: (a, _b, w) => (zx(w, a) === 0n ? w : w - BigInt(bits(zx(w, a)).length)),
  },
  {
    name: 'ctz', i32: (f) => f.i32Ctz(), i64: (f) => f.i64Ctz(),
    ref: (a, _b, w) => (zx(w, a) === 0n ? w : BigInt(bits(zx(w, a)).length - bits(zx(w, a)).lastIndexOf('1') - 1)),
  },
  {
    name: 'popcnt', i32: (f) => f.i32Popcnt(), i64: (f) => f.i64Popcnt(),
    ref: (a, _b, w) => BigInt(bits(zx(w, a)).replace(/0/g, '').length),
  },
  { name: 'eqz', cmp: true, i32: (f) => f.i32Eqz(), i64: (f) => f.i64Eqz(), ref: (a) => bool(a === 0n) },
];

function edgeInputs(w: bigint): bigint[] {
  const rand = prng(Number(w));
  const base = [
    0n, 1n, -1n, 2n, 7n, -7n, 31n, 32n, 33n, 63n, 64n, 65n, 0x7fffffffn, -0x80000000n, 0xffffffffn,
    (1n << 63n) - 1n, -(1n << 63n), 0x0123456789abcdefn,
  ];
  for (let i = 0; i < 6; i++) base.push(randomI64(rand));
  return [...new Set(base.map((v) => sx(w, v)))];
}

function toJs(type: ValType, v: bigint): number | bigint {
  return type === 'i64' ? v : Number(v);
}

for (const type of ['i32', 'i64'] as const) {
  const w = type === 'i32' ? 32n : 64n;
  describe(`${type} numeric instructions`, () => {
    it('binary ops, comparisons and shifts match the BigInt model on edge inputs', () => {
      const mb = new ModuleBuilder({ name: `${type}_binary` });
      for (const op of BINARY) {
        const f = mb.addFunction(`${type}_${op.name}`, [type, type], [op.cmp ? 'i32' : type], { export: op.name });
        op[type](f.localGet(0).localGet(1)).end();
      }
      const text = check(mb.build());
      for (const op of BINARY) expect(text).toMatch(instr(`${type}.${op.name}`));
      const inst = instantiate(mb.build());
      const inputs = edgeInputs(w);
      for (const op of BINARY) {
        const f = fn(inst, op.name);
        for (const a of inputs) {
          for (const b of inputs) {
            const want = op.ref(a, b, w);
            const expected = want === 'trap' ? 'trap' : toJs(op.cmp ? 'i32' : type, want);
            const got = run(f, toJs(type, a), toJs(type, b));
            if (got !== expected) expect({ op: op.name, a, b, got }).toEqual({ op: op.name, a, b, got: expected });
          }
        }
      }
    });

    it('unary ops match the BigInt model', () => {
      const mb = new ModuleBuilder();
      for (const op of UNARY) {
        const f = mb.addFunction(`${type}_${op.name}`, [type], [op.cmp ? 'i32' : type], { export: op.name });
        op[type](f.localGet(0));
      }
      const bytes = mb.build();
      const text = check(bytes);
      for (const op of UNARY) expect(text).toMatch(instr(`${type}.${op.name}`));
      const inst = instantiate(bytes);
      for (const op of UNARY) {
        for (const a of edgeInputs(w)) {
          const want = op.ref(a, 0n, w);
          expect([op.name, a, run(fn(inst, op.name), toJs(type, a))]).toEqual([
            op.name, a, toJs(op.cmp ? 'i32' : type, want as bigint),
          ]);
        }
      }
    });
  });
}

describe('conversions and constants', () => {
  interface Conv {
    name: string;
    from: ValType;
    to: ValType;
    emit: (f: FunctionBuilder) => FunctionBuilder;
    ref: (a: bigint) => bigint;
  }
  const CONVS: Conv[] = [
    { name: 'i32.wrap_i64', from: 'i64', to: 'i32', emit: (f) => f.i32WrapI64(), ref: (a) => sx(32n, a) },
    { name: 'i64.extend_i32_s', from: 'i32', to: 'i64', emit: (f) => f.i64ExtendI32S(), ref: (a) => a },
    { name: 'i64.extend_i32_u', from: 'i32', to: 'i64', emit: (f) => f.i64ExtendI32U(), ref: (a) => zx(32n, a) },
    { name: 'i32.extend8_s', from: 'i32', to: 'i32', emit: (f) => f.i32Extend8S(), ref: (a) => sx(8n, a) },
    { name: 'i32.extend16_s', from: 'i32', to: 'i32', emit: (f) => f.i32Extend16S(), ref: (a) => sx(16n, a) },
    { name: 'i64.extend8_s', from: 'i64', to: 'i64', emit: (f) => f.i64Extend8S(), ref: (a) => sx(8n, a) },
    { name: 'i64.extend16_s', from: 'i64', to: 'i64', emit: (f) => f.i64Extend16S(), ref: (a) => sx(16n, a) },
    { name: 'i64.extend32_s', from: 'i64', to: 'i64', emit: (f) => f.i64Extend32S(), ref: (a) => sx(32n, a) },
  ];

  it('wrap, extend and sign-extension ops', () => {
    const mb = new ModuleBuilder();
    for (const c of CONVS) c.emit(mb.addFunction(c.name, [c.from], [c.to], { export: c.name }).localGet(0));
    const bytes = mb.build();
    const text = check(bytes);
    const inst = instantiate(bytes);
    for (const c of CONVS) {
      expect(text).toMatch(instr(`${c.name}`));
      const width = c.from === 'i32' ? 32n : 64n;
      for (const a of [...edgeInputs(width), sx(width, 0x80n), sx(width, 0xff7fn), sx(width, 0x1_8000_0000n)]) {
        expect([c.name, a, run(fn(inst, c.name), toJs(c.from, a))]).toEqual([c.name, a, toJs(c.to, c.ref(a))]);
      }
    }
  });

  it('plain() emits table-selected opcodes for table-driven lowering', () => {
    const mb = new ModuleBuilder();
    const lowering: Record<string, number> = { sub: Op.I64Sub, rotr: Op.I64Rotr, lt_u: Op.I64LtU };
    for (const [name, code] of Object.entries(lowering)) {
      mb.addFunction(name, ['i64', 'i64'], [name === 'lt_u' ? 'i32' : 'i64'], { export: name })
        .localGet(0).localGet(1).plain(code);
    }
    const bytes = mb.build();
    const text = check(bytes);
    for (const name of Object.keys(lowering)) expect(text).toMatch(instr(`i64.${name}`));
    const inst = instantiate(bytes);
    expect(fn(inst, 'sub')(1n, 3n)).toBe(-2n);
    expect(fn(inst, 'rotr')(1n, 1n)).toBe(-(1n << 63n));
    expect(fn(inst, 'lt_u')(1n, -1n)).toBe(1);
  });

  it('i32/i64 constants of every encoding length, from numbers, bigints and 32-bit halves', () => {
    const rand = prng(99);
    const values = [...edgeInputs(64n), (1n << 64n) - 1n, 1n << 40n, -(1n << 40n)];
    for (let i = 0; i < 20; i++) values.push(randomI64(rand));
    const mb = new ModuleBuilder();
    values.forEach((v, i) => {
      mb.addFunction(`big${i}`, [], ['i64'], { export: `big${i}` }).i64Const(v);
      const lo = Number(BigInt.asUintN(32, v));
      const hi = Number(BigInt.asIntN(32, v >> 32n));
      mb.addFunction(`parts${i}`, [], ['i64'], { export: `parts${i}` }).i64ConstParts(lo, hi);
      const n = Number(BigInt.asIntN(64, v));
      if (Number.isSafeInteger(n)) mb.addFunction(`num${i}`, [], ['i64'], { export: `num${i}` }).i64Const(n);
    });
    const i32s = [0, -1, 1, 0x7fffffff, -0x80000000, 0xffffffff, 0x80000000, 64, -65];
    i32s.forEach((v, i) => mb.addFunction(`i32_${i}`, [], ['i32'], { export: `i32_${i}` }).i32Const(v));
    const bytes = mb.build();
    const text = check(bytes);
    expect(text).toContain('i64.const -9223372036854775808');
    expect(text).toContain('i64.const 9223372036854775807');
    expect(text).toContain('i32.const -2147483648');
    const inst = instantiate(bytes);
    values.forEach((v, i) => {
      const want = BigInt.asIntN(64, v);
      expect(fn(inst, `big${i}`)()).toBe(want);
      expect(fn(inst, `parts${i}`)()).toBe(want);
      if (inst.exports[`num${i}`]) expect(fn(inst, `num${i}`)()).toBe(want);
    });
    i32s.forEach((v, i) => expect(fn(inst, `i32_${i}`)()).toBe(v | 0));
  });

  it('a long body crossing many buffer growths computes the right sum', () => {
    const mb = new ModuleBuilder();
    const f = mb.addFunction('sum', ['i64'], ['i64'], { export: 'sum' });
    const rand = prng(3);
    let want = 5n;
    f.localGet(0);
    for (let i = 0; i < 20000; i++) {
      const v = randomI64(rand);
      want = BigInt.asIntN(64, want + v);
      f.i64Const(v).i64Add();
    }
    const bytes = mb.build();
    check(bytes);
    expect(f.instructionCount).toBe(40002);
    expect(fn(instantiate(bytes), 'sum')(5n)).toBe(want);
  });
});

// ---- memory -------------------------------------------------------------------------------------

describe('memory instructions', () => {
  interface Access {
    name: string;
    type: ValType;
    size: 1 | 2 | 4 | 8;
    signed: boolean;
    emit: (f: FunctionBuilder, offset: number) => FunctionBuilder;
  }
  const LOADS: Access[] = [
    { name: 'i32.load', type: 'i32', size: 4, signed: true, emit: (f, o) => f.i32Load(o) },
    { name: 'i64.load', type: 'i64', size: 8, signed: true, emit: (f, o) => f.i64Load(o) },
    { name: 'i32.load8_s', type: 'i32', size: 1, signed: true, emit: (f, o) => f.i32Load8S(o) },
    { name: 'i32.load8_u', type: 'i32', size: 1, signed: false, emit: (f, o) => f.i32Load8U(o) },
    { name: 'i32.load16_s', type: 'i32', size: 2, signed: true, emit: (f, o) => f.i32Load16S(o) },
    { name: 'i32.load16_u', type: 'i32', size: 2, signed: false, emit: (f, o) => f.i32Load16U(o) },
    { name: 'i64.load8_s', type: 'i64', size: 1, signed: true, emit: (f, o) => f.i64Load8S(o) },
    { name: 'i64.load8_u', type: 'i64', size: 1, signed: false, emit: (f, o) => f.i64Load8U(o) },
    { name: 'i64.load16_s', type: 'i64', size: 2, signed: true, emit: (f, o) => f.i64Load16S(o) },
    { name: 'i64.load16_u', type: 'i64', size: 2, signed: false, emit: (f, o) => f.i64Load16U(o) },
    { name: 'i64.load32_s', type: 'i64', size: 4, signed: true, emit: (f, o) => f.i64Load32S(o) },
    { name: 'i64.load32_u', type: 'i64', size: 4, signed: false, emit: (f, o) => f.i64Load32U(o) },
  ];
  const STORES: Access[] = [
    { name: 'i32.store', type: 'i32', size: 4, signed: false, emit: (f, o) => f.i32Store(o) },
    { name: 'i64.store', type: 'i64', size: 8, signed: false, emit: (f, o) => f.i64Store(o) },
    { name: 'i32.store8', type: 'i32', size: 1, signed: false, emit: (f, o) => f.i32Store8(o) },
    { name: 'i32.store16', type: 'i32', size: 2, signed: false, emit: (f, o) => f.i32Store16(o) },
    { name: 'i64.store8', type: 'i64', size: 1, signed: false, emit: (f, o) => f.i64Store8(o) },
    { name: 'i64.store16', type: 'i64', size: 2, signed: false, emit: (f, o) => f.i64Store16(o) },
    { name: 'i64.store32', type: 'i64', size: 4, signed: false, emit: (f, o) => f.i64Store32(o) },
  ];
  const OFFSET = 3;

  function littleEndian(mem: Uint8Array, at: number, size: number): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(mem[at + i]);
    return v;
  }

  function memoryModule(): { bytes: Uint8Array<ArrayBuffer>; text: string } {
    const mb = new ModuleBuilder();
    mb.setMemory({ min: 1, max: 3, export: 'mem' });
    for (const l of LOADS) l.emit(mb.addFunction(`load ${l.name}`, ['i32'], [l.type], { export: l.name }).localGet(0), OFFSET);
    for (const s of STORES) {
      s.emit(mb.addFunction(`store ${s.name}`, ['i32', s.type], [], { export: s.name }).localGet(0).localGet(1), OFFSET);
    }
    mb.addFunction('size', [], ['i32'], { export: 'size' }).memorySize();
    mb.addFunction('grow', ['i32'], ['i32'], { export: 'grow' }).localGet(0).memoryGrow();
    mb.addFunction('fill', ['i32', 'i32', 'i32'], [], { export: 'fill' }).localGet(0).localGet(1).localGet(2).memoryFill();
    mb.addFunction('copy', ['i32', 'i32', 'i32'], [], { export: 'copy' }).localGet(0).localGet(1).localGet(2).memoryCopy();
    // unusual alignment hints must survive encoding: wabt prints align= only when not natural
    const f = mb.addFunction('aligns', ['i32'], ['i64'], { export: 'aligns' });
    f.localGet(0).i64Load(8, 0).localGet(0).i32Load16U(0x10000, 0).i64ExtendI32U().i64Add();
    f.localGet(0).memAccess(Op.I64Load32S, 1, 1).i64Add();
    const bytes = mb.build();
    return { bytes, text: check(bytes) };
  }

  it('every load width and signedness reads the right bytes with the right extension', () => {
    const { bytes, text } = memoryModule();
    for (const l of LOADS) expect(text).toMatch(instr(`${l.name} offset=${OFFSET}`));
    const inst = instantiate(bytes);
    const mem = new Uint8Array((inst.exports.mem as WebAssembly.Memory).buffer);
    const rand = prng(11);
    for (let i = 0; i < 64; i++) mem[i] = rand() & 0xff;
    mem.set([0x80, 0xff, 0x7f, 0x00, 0xfe, 0x01, 0x80, 0x00, 0x00, 0x80], 40);
    for (const l of LOADS) {
      for (let addr = 0; addr < 48; addr++) {
        const raw = littleEndian(mem, addr + OFFSET, l.size);
        const v = l.signed ? sx(BigInt(l.size * 8), raw) : raw;
        const want = l.type === 'i32' ? Number(sx(32n, v)) : sx(64n, v);
        expect([l.name, addr, fn(inst, l.name)(addr)]).toEqual([l.name, addr, want]);
      }
    }
    // the offset is added without wrapping: an access past the end traps
    expect(run(fn(inst, 'i64.load'), 65536 - 8 - OFFSET + 1)).toBe('trap');
    expect(run(fn(inst, 'i64.load'), 65536 - 8 - OFFSET)).not.toBe('trap');
  });

  it('every store width writes exactly its bytes', () => {
    const inst = instantiate(memoryModule().bytes);
    const mem = () => new Uint8Array((inst.exports.mem as WebAssembly.Memory).buffer);
    const values = [0x1122334455667788n, -1n, -0x7edcba9876543211n, 0x80n];
    for (const s of STORES) {
      for (const v of values) {
        mem().fill(0xaa, 0, 64);
        const addr = 17;
        fn(inst, s.name)(addr, s.type === 'i64' ? v : Number(sx(32n, v)));
        const m = mem();
        expect([s.name, littleEndian(m, addr + OFFSET, s.size)]).toEqual([s.name, zx(BigInt(s.size * 8), v)]);
        expect(m[addr + OFFSET - 1]).toBe(0xaa);
        expect(m[addr + OFFSET + s.size]).toBe(0xaa);
      }
    }
  });

  it('alignment hints, memory.size/grow and bulk fill/copy', () => {
    const { bytes, text } = memoryModule();
    expect(text).toMatch(instr('i64.load offset=8 align=1'));
    expect(text).toMatch(instr('i32.load16_u offset=65536 align=1'));
    expect(text).toMatch(instr('i64.load32_s offset=1 align=2'));
    expect(text).toContain('memory.fill');
    expect(text).toContain('memory.copy');
    const inst = instantiate(bytes);
    const size = fn(inst, 'size');
    const grow = fn(inst, 'grow');
    expect(size()).toBe(1);
    expect(grow(1)).toBe(1);
    expect(size()).toBe(2);
    expect(grow(5)).toBe(-1); // above the declared maximum of 3 pages
    expect(size()).toBe(2);
    const mem = () => new Uint8Array((inst.exports.mem as WebAssembly.Memory).buffer);
    fn(inst, 'fill')(100, 0x1ab, 10); // the fill value is truncated to a byte
    expect([...mem().subarray(99, 111)]).toEqual([0, ...new Array<number>(10).fill(0xab), 0]);
    mem().set([1, 2, 3, 4, 5, 6], 200);
    fn(inst, 'copy')(202, 200, 4); // overlapping: memmove semantics
    expect([...mem().subarray(200, 207)]).toEqual([1, 2, 1, 2, 3, 4, 0]);
    expect(run(fn(inst, 'fill'), 2 * 65536 - 2, 0, 3)).toBe('trap');
    const m = mem();
    m.fill(0, 0, 64);
    m[8] = 0x42; // i64.load offset=8 from 0
    m[0x10000] = 0x34; // i32.load16_u offset=0x10000 (second page, grown above)
    m[0x10001] = 0x12;
    m[1] = 0xfe; // i64.load32_s offset=1: 0xfffffffe -> -2
    m[2] = 0xff;
    m[3] = 0xff;
    m[4] = 0xff;
    expect(fn(inst, 'aligns')(0)).toBe(0x42n + 0x1234n - 2n);
  });

  it('data segments initialise a defined, exported memory', () => {
    const mb = new ModuleBuilder();
    mb.setMemory({ min: 2, export: 'memory' });
    mb.addData(0, Uint8Array.from([1, 2, 3]));
    mb.addData(65536 + 10, new TextEncoder().encode('femtojit'));
    mb.addFunction('peek', ['i32'], ['i32'], { export: 'peek' }).localGet(0).i32Load8U();
    const bytes = mb.build();
    const text = check(bytes);
    expect(text).toContain('(data (;0;) (i32.const 0) "\\01\\02\\03")');
    expect(text).toContain('(data (;1;) (i32.const 65546) "femtojit")');
    const inst = instantiate(bytes);
    const mem = new Uint8Array((inst.exports.memory as WebAssembly.Memory).buffer);
    expect(mem.length).toBe(2 * 65536);
    expect([...mem.subarray(0, 4)]).toEqual([1, 2, 3, 0]);
    expect(new TextDecoder().decode(mem.subarray(65546, 65554))).toBe('femtojit');
    expect(fn(inst, 'peek')(65546)).toBe('f'.charCodeAt(0));
  });

  it('an imported memory receives the data segments and is used by the code', () => {
    const mb = new ModuleBuilder();
    mb.setMemory({ min: 1, max: 2, import: { module: 'env', name: 'memory' } });
    mb.addData(16, Uint8Array.from([0x78, 0x56, 0x34, 0x12]));
    mb.addFunction('read', [], ['i32'], { export: 'read' }).i32Const(16).i32Load();
    const bytes = mb.build();
    expect(check(bytes)).toContain('(import "env" "memory" (memory (;0;) 1 2))');
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
    const inst = instantiate(bytes, { env: { memory } });
    expect(new Uint8Array(memory.buffer)[19]).toBe(0x12);
    expect(fn(inst, 'read')()).toBe(0x12345678);
  });
});

// ---- control, calls, globals, tables ------------------------------------------------------------

describe('control flow, calls and globals', () => {
  it('br_table dispatches to the right arm, with the default for anything else', () => {
    const mb = new ModuleBuilder();
    const f = mb.addFunction('dispatch', ['i32'], ['i32'], { export: 'dispatch' });
    f.block().block().block().block();
    f.localGet(0).brTable([0, 1, 2], 3);
    f.end().i32Const(100).return();
    f.end().i32Const(101).return();
    f.end().i32Const(102).return();
    f.end().i32Const(999);
    f.end();
    const bytes = mb.build();
    expect(check(bytes)).toContain('br_table 0 (;@4;) 1 (;@3;) 2 (;@2;) 3 (;@1;)');
    const dispatch = fn(instantiate(bytes), 'dispatch');
    expect([0, 1, 2, 3, 4, -1, 1000].map((x) => dispatch(x))).toEqual([100, 101, 102, 999, 999, 999, 999]);
  });

  it('if/else, loops with br_if, select, valued blocks, early return, nop, unreachable', () => {
    const mb = new ModuleBuilder();
    mb.addFunction('pick', ['i32'], ['i32'], { export: 'pick' })
      .localGet(0).if('i32').i32Const(10).else().i32Const(20).end();
    mb.addFunction('onlyIf', ['i32', 'i32'], ['i32'], { export: 'onlyIf' })
      .localGet(0).if().i32Const(7).localSet(1).end().nop().localGet(1);

    const sum = mb.addFunction('sum', ['i32'], ['i64'], { export: 'sum' });
    const acc = sum.addLocal('i64');
    const i = sum.addLocal('i32');
    sum.block().loop();
    sum.localGet(i).localGet(0).i32GeS().brIf(1);
    sum.localGet(acc).localGet(i).i64ExtendI32S().i64Add().localSet(acc);
    sum.localGet(i).i32Const(1).i32Add().localTee(i).drop();
    sum.br(0).end().end().localGet(acc);

    mb.addFunction('sel', ['i64', 'i64', 'i32'], ['i64'], { export: 'sel' })
      .localGet(0).localGet(1).localGet(2).select();
    mb.addFunction('valued', ['i32'], ['i64'], { export: 'valued' })
      .block('i64').i64Const(5).localGet(0).brIf(0).drop().i64Const(7).end();
    mb.addFunction('early', ['i32'], ['i32'], { export: 'early' })
      .localGet(0).if().i32Const(1).return().end().i32Const(2);
    mb.addFunction('boom_here', [], [], { export: 'boom' }).unreachable();

    const bytes = mb.build();
    const text = check(bytes);
    expect(text).toContain('if (result i32)');
    expect(text).toContain('block (result i64)');
    expect(text).toContain('br_if 1 (;@1;)');
    const inst = instantiate(bytes);
    expect([fn(inst, 'pick')(1), fn(inst, 'pick')(0)]).toEqual([10, 20]);
    expect([fn(inst, 'onlyIf')(1, 3), fn(inst, 'onlyIf')(0, 3)]).toEqual([7, 3]);
    expect([0, 1, 10, 1000].map((n) => fn(inst, 'sum')(n))).toEqual([0n, 0n, 45n, 499500n]);
    expect([fn(inst, 'sel')(1n, 2n, 1), fn(inst, 'sel')(1n, 2n, 0)]).toEqual([1n, 2n]);
    expect([fn(inst, 'valued')(1), fn(inst, 'valued')(0)]).toEqual([5n, 7n]);
    expect([fn(inst, 'early')(1), fn(inst, 'early')(0)]).toEqual([1, 2]);
    // the name section reaches V8's stack traces
    let stack = '';
    try {
      fn(inst, 'boom')();
    } catch (e) {
      expect(e).toBeInstanceOf(WebAssembly.RuntimeError);
      stack = (e as Error).stack ?? '';
    }
    expect(stack).toMatch(/unreachable/);
    expect(stack).toContain('boom_here');
  });

  it('imports are called, calls and call_indirect reach the right functions', () => {
    const mb = new ModuleBuilder({ name: 'calls' });
    const add3 = mb.importFunction('env', 'add3', ['i64'], ['i64']);
    const note = mb.importFunction('env', 'note', ['i32'], [], 'host_note');
    const twice = mb.addFunction('twice', ['i32'], ['i32']);
    twice.localGet(0).i32Const(2).i32Mul();
    const neg = mb.addFunction('neg', ['i32'], ['i32']);
    neg.i32Const(0).localGet(0).i32Sub();
    mb.addFunction('viaImport', ['i64'], ['i64'], { export: 'viaImport' })
      .localGet(0).i32WrapI64().call(note).localGet(0).call(add3).call(add3);
    mb.addFunction('direct', ['i32'], ['i32'], { export: 'direct' }).localGet(0).call(twice.index).call(neg.index);
    mb.setTable({ min: 2, export: 'table' });
    mb.addElement(0, [twice.index, neg.index]);
    const sig = mb.addType(['i32'], ['i32']);
    expect(sig).toBe(twice.typeIndex);
    mb.addFunction('indirect', ['i32', 'i32'], ['i32'], { export: 'indirect' })
      .localGet(1).localGet(0).callIndirect(sig);
    const bytes = mb.build();
    const text = check(bytes);
    expect(text).toContain('(module $calls');
    expect(text).toContain('(import "env" "add3" (func $env.add3');
    expect(text).toContain('call $host_note');
    expect(text).toContain(`call_indirect (type ${sig})`);
    expect(sig).toBe(2);
    expect(text).toContain('(elem (;0;) (i32.const 0) func $twice $neg)');
    // one type per distinct signature: (i64)->i64, (i32)->(), (i32)->i32, (i32,i32)->i32
    expect(text.match(/\(type \(;\d+;\) \(func/g)?.length).toBe(4);
    const notes: number[] = [];
    const inst = instantiate(bytes, {
      env: { add3: (x: bigint) => x + 3n, note: (x: number) => void notes.push(x) },
    });
    expect(fn(inst, 'viaImport')(-10n)).toBe(-4n);
    expect(notes).toEqual([-10]);
    expect(fn(inst, 'direct')(21)).toBe(-42);
    expect([fn(inst, 'indirect')(0, 5), fn(inst, 'indirect')(1, 5)]).toEqual([10, -5]);
    expect(run(fn(inst, 'indirect'), 2, 5)).toBe('trap');
    expect((inst.exports.table as WebAssembly.Table).length).toBe(2);
  });

  it('globals are exported, read, written, and initialised by the start function', () => {
    const mb = new ModuleBuilder();
    const counter = mb.addGlobal({ type: 'i32', mutable: true, init: 5, export: 'counter' });
    const big = mb.addGlobal({ type: 'i64', mutable: true, init: -(1n << 63n), export: 'big' });
    const ro = mb.addGlobal({ type: 'i64', mutable: false, init: (1n << 64n) - 2n, export: 'ro' });
    const started = mb.addGlobal({ type: 'i32', mutable: true, init: 0, export: 'started' });
    mb.addFunction('inc', [], ['i32'], { export: 'inc' })
      .globalGet(counter).i32Const(1).i32Add().globalSet(counter).globalGet(counter);
    mb.addFunction('bump', [], [], { export: 'bump' }).globalGet(big).globalGet(ro).i64Sub().globalSet(big);
    const init = mb.addFunction('init', [], []);
    init.i32Const(42).globalSet(started);
    mb.setStart(init.index);
    const bytes = mb.build();
    const text = check(bytes);
    expect(text).toContain('(global (;0;) (mut i32) (i32.const 5))');
    expect(text).toContain('(global (;2;) i64 (i64.const -2))');
    expect(text).toContain('(start $init)');
    const inst = instantiate(bytes);
    const g = (name: string) => (inst.exports[name] as WebAssembly.Global).value as unknown;
    expect(g('started')).toBe(42);
    expect(g('counter')).toBe(5);
    expect(fn(inst, 'inc')()).toBe(6);
    expect(g('counter')).toBe(6);
    (inst.exports.counter as WebAssembly.Global).value = 100;
    expect(fn(inst, 'inc')()).toBe(101);
    expect(g('big')).toBe(-(1n << 63n));
    fn(inst, 'bump')();
    expect(g('big')).toBe(-(1n << 63n) + 2n);
    expect(g('ro')).toBe(-2n);
  });

  it('locals are declared as runs of one type and are addressable after the params', () => {
    const mb = new ModuleBuilder();
    const f = mb.addFunction('locals', ['i32'], ['i64'], { export: 'locals' });
    expect(f.addLocal('i64')).toBe(1);
    expect(f.addLocal('i64')).toBe(2);
    expect(f.addLocal('i32')).toBe(3);
    expect(f.addLocal('i64', 2)).toBe(4);
    expect(f.locals).toEqual([
      { type: 'i64', count: 2 },
      { type: 'i32', count: 1 },
      { type: 'i64', count: 2 },
    ]);
    f.localGet(0).localSet(3).localGet(3).i64ExtendI32S().localTee(5).localGet(5).i64Add();
    const bytes = mb.build();
    expect(check(bytes)).toContain('(local i64 i64 i32 i64 i64)');
    expect(fn(instantiate(bytes), 'locals')(-21)).toBe(-42n);
  });
});

// ---- build-time errors --------------------------------------------------------------------------

describe('encoder errors name the function and the instruction', () => {
  const fresh = (params: ValType[] = []): FunctionBuilder => new ModuleBuilder().addFunction('prog', params, []);

  it('unbalanced structure', () => {
    expect(() => fresh().block().finish()).toThrow(/'prog'.*1 block\(s\) still open .*block opened at instruction 0/);
    expect(() => fresh().loop().block().finish()).toThrow(/2 block\(s\) still open .*innermost: block opened at instruction 1/);
    expect(() => fresh().end().end()).toThrow(/end at instruction 1: has no open block/);
    expect(() => fresh().block().else()).toThrow(/else at instruction 1: has no matching if \(innermost open: block/);
    expect(() => fresh().i32Const(1).if('i32').i32Const(2).end()).toThrow(/closes an if with a result .* no else/);
    expect(() => fresh().end().nop()).toThrow(/nop at instruction 1: comes after the end of the function body/);
    expect(() => fresh().end().i64Add()).toThrow(WasmEncodeError);
  });

  it('branch depths out of range', () => {
    expect(() => fresh().br(1)).toThrow(/br at instruction 0: 1: branch depth out of range, 1 enclosing label/);
    expect(() => fresh().block().loop().brIf(3)).toThrow(/br_if at instruction 2: 3: .*valid depths 0..2/);
    expect(() => fresh().block().i32Const(0).brTable([0, 2], 0)).toThrow(/br_table .* 2: branch depth out of range/);
    expect(() => fresh().block().i32Const(0).brTable([0], 5)).toThrow(/br_table/);
    expect(() => fresh().br(-1)).toThrow(WasmEncodeError);
    expect(() => fresh().br(0.5)).toThrow(WasmEncodeError);
    // depth equal to the open labels minus one is the function body itself: valid
    expect(() => fresh().block().br(1).end().finish()).not.toThrow();
  });

  it('locals, immediates and opcodes out of range', () => {
    const f = fresh(['i32']);
    f.addLocal('i64');
    expect(() => f.localGet(2)).toThrow(/local.get at instruction 0: 2: no such local \(1 param\(s\) \+ 1 local\(s\)\)/);
    expect(() => f.localSet(-1)).toThrow(/local.set/);
    expect(() => f.localTee(7)).toThrow(/local.tee/);
    expect(() => f.i32Load(0, 3)).toThrow(/i32.load at instruction 0: alignment 2\^3 is not allowed/);
    expect(() => f.i64Load8U(0, 1)).toThrow(/i64.load8_u/);
    expect(() => f.i32Store(-4)).toThrow(/offset -4/);
    expect(() => f.i32Const(2 ** 32)).toThrow(/i32.const at instruction 0: 4294967296/);
    expect(() => f.i64Const(2 ** 60)).toThrow(/not a safe integer/);
    expect(() => f.i64Const(1n << 64n)).toThrow(/does not fit in 64 bits/);
    expect(() => f.plain(Op.Br)).toThrow(/takes immediates/);
    expect(() => f.plain(0x100 + Op.I64Add)).toThrow(/opcode 0x17c/);
    expect(() => f.memAccess(0x100 + Op.I32Load)).toThrow(/not an integer load or store/);
    expect(() => f.memAccess(Op.I32Add)).toThrow(/not an integer load or store/);
    expect(() => f.addLocal('i32', 0)).toThrow(/local count 0/);
    expect(f.instructionCount).toBe(0);
    expect(f.body.length).toBe(0);
  });

  it('module-level references are checked when the module is built', () => {
    const build = (setup: (mb: ModuleBuilder) => void) => () => {
      const mb = new ModuleBuilder({ name: 'm' });
      setup(mb);
      return mb.build();
    };
    expect(build((mb) => mb.addFunction('f', [], []).call(3))).toThrow(/module 'm': function 'f' \(#0\) calls function #3, but the module has 1/);
    expect(build((mb) => mb.addFunction('f', [], [], {}).globalGet(0).drop())).toThrow(/uses global #0, but the module has 0/);
    expect(build((mb) => mb.addFunction('f', [], []).i32Const(0).i32Load().drop())).toThrow(/accesses memory, but the module has no memory/);
    expect(build((mb) => mb.addFunction('f', [], []).i32Const(0).callIndirect(0))).toThrow(/no table/);
    expect(
      build((mb) => {
        mb.addGlobal({ type: 'i32', mutable: false, init: 1, name: 'limit' });
        mb.addFunction('f', [], []).i32Const(0).globalSet(0);
      }),
    ).toThrow(/sets global limit, which is immutable/);
    expect(
      build((mb) => {
        mb.addFunction('f', [], []);
        mb.importFunction('env', 'late', [], []);
      }),
    ).toThrow(/import 'env.late' declared after defined functions/);
    expect(
      build((mb) => {
        mb.addFunction('a', [], [], { export: 'x' });
        mb.addFunction('b', [], [], { export: 'x' });
      }),
    ).toThrow(/export name 'x' is used twice/);
    expect(build((mb) => mb.exportFunction(4, 'ghost'))).toThrow(/export 'ghost' refers to function #4/);
    expect(
      build((mb) => {
        mb.setMemory({ min: 1 });
        mb.addData(65530, new Uint8Array(10));
      }),
    ).toThrow(/data segment at 65530 \(10 bytes\) exceeds the memory's initial 65536 bytes/);
    expect(build((mb) => mb.setStart(mb.addFunction('s', ['i32'], []).index))).toThrow(/start function #0 must take no parameters/);
    expect(build((mb) => mb.setMemory({ min: 2, max: 1 }))).toThrow(/memory maximum 1 is not in \[2, 65536\]/);
    expect(build((mb) => mb.addGlobal({ type: 'i32', mutable: true, init: 2 ** 33 }))).toThrow(/does not fit i32/);
    expect(
      build((mb) => {
        mb.setTable({ min: 1 });
        mb.addElement(0, [0, 0]);
        mb.addFunction('f', [], []);
      }),
    ).toThrow(/element segment at 0 \(2 entries\) exceeds the table's 1 entries/);
  });
});

describe('copying code: repeat, snapshot/append, released buffers', () => {
  /** A module exporting f() -> i64 whose body `emit` writes (one i64 local, global 0 mutable). */
  const moduleWith = (emit: (f: FunctionBuilder) => void): { bytes: Uint8Array<ArrayBuffer>; f: FunctionBuilder } => {
    const mb = new ModuleBuilder();
    mb.addGlobal({ type: 'i64', mutable: true, init: 5, export: 'g' });
    const f = mb.addFunction('f', [], ['i64'], { export: 'f' });
    f.addLocal('i64');
    emit(f);
    return { bytes: mb.build(), f };
  };
  // local0 += g; g += 1 (two copies of this add 5 + 6)
  const step = (f: FunctionBuilder): void => {
    f.localGet(0).globalGet(0).i64Add().localSet(0).globalGet(0).i64Const(1).i64Add().globalSet(0);
  };

  it('repeat appends earlier bytes and counts their instructions', () => {
    const direct = moduleWith((f) => {
      step(f);
      step(f);
      f.localGet(0);
    });
    const copied = moduleWith((f) => {
      const from = f.body.length;
      const n = f.instructionCount;
      step(f);
      f.repeat(from, f.body.length, f.instructionCount - n);
      f.localGet(0);
    });
    expect([...copied.bytes]).toEqual([...direct.bytes]);
    expect(copied.f.instructionCount).toBe(direct.f.instructionCount);
    check(copied.bytes);
    expect(fn(instantiate(copied.bytes), 'f')()).toBe(11n);
  });

  it('repeat rejects ranges it has not written and code after the end', () => {
    const f = new ModuleBuilder().addFunction('r', [], []);
    f.i32Const(1).drop();
    expect(() => f.repeat(0, f.body.length + 1, 1)).toThrow(/'r'.*repeat of bytes \[0, 4\)/);
    expect(() => f.repeat(2, 1, 0)).toThrow(WasmEncodeError);
    expect(() => f.repeat(0, 1, -1)).toThrow(WasmEncodeError);
    f.end();
    expect(() => f.repeat(0, 2, 1)).toThrow(/comes after the end of the function body/);
  });

  it('append reproduces a snapshot in another module, references included', () => {
    let taken: CodeSnapshot | undefined;
    moduleWith((f) => {
      step(f);
      f.block().i32Const(0).brIf(0).end();
      taken = f.snapshot();
      f.localGet(0);
    });
    if (taken === undefined) throw new Error('no snapshot');
    const snap: CodeSnapshot = taken;
    expect(snap.maxGlobalRef).toBe(0);
    expect(snap.globalsSet).toEqual([0]);
    const again = moduleWith((f) => {
      f.append(snap);
      step(f);
      f.localGet(0);
    });
    const direct = moduleWith((f) => {
      step(f);
      f.block().i32Const(0).brIf(0).end();
      step(f);
      f.localGet(0);
    });
    expect([...again.bytes]).toEqual([...direct.bytes]);
    expect(again.f.instructionCount).toBe(direct.f.instructionCount);
    expect(fn(instantiate(again.bytes), 'f')()).toBe(11n);
    // The snapshot's global reference is checked against the module it lands in.
    const mb = new ModuleBuilder({ name: 'bare' });
    mb.addFunction('h', [], []).append(snap);
    expect(() => mb.build()).toThrow(/'bare': function 'h' \(#0\) uses global #0, but the module has 0/);
  });

  it('snapshot refuses open blocks', () => {
    const f = new ModuleBuilder().addFunction('s', [], []);
    f.block();
    expect(() => f.snapshot()).toThrow(/'s'.*snapshot with 1 block\(s\) open \(innermost: block opened at instruction 0\)/);
    f.end().end();
    expect(() => f.snapshot()).toThrow(/snapshot after the end of the function body/);
  });

  it('a released builder hands its buffer on without touching the built bytes', () => {
    const a = moduleWith((f) => {
      for (let i = 0; i < 200; i++) step(f);
      f.localGet(0);
    });
    const kept = a.bytes.slice();
    a.f.release();
    expect(() => a.f.finish()).toThrow(/'f'.*used after release\(\)/);
    expect(() => a.f.entrySize).toThrow(/used after release\(\)/);
    // The next builders reuse the buffer: earlier output stays as it was, and theirs is right.
    for (let k = 0; k < 3; k++) {
      const b = moduleWith((f) => {
        for (let i = 0; i <= k; i++) step(f);
        f.localGet(0);
      });
      b.f.release();
      expect(fn(instantiate(b.bytes), 'f')()).toBe([5n, 11n, 18n][k]);
    }
    expect([...a.bytes]).toEqual([...kept]);
    expect(fn(instantiate(a.bytes), 'f')()).toBe(BigInt(200 * 5 + (199 * 200) / 2));
  });
});
