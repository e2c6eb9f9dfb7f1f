// The reference interpreter against an independent BigInt model of RFC 9669 (plus v4), every fault
// path with its user-facing message, and the whole bpf_conformance suite.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import type { Insn } from '../compiler/opcodes.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { HelperError, type Fault, type RunResult } from '../runtime/errors.js';
import { conformanceHelpers, HelperRegistry, type HelperDef } from '../runtime/helpers.js';
import { DEFAULT_BUDGET, interpret, Interpreter, MAX_CALL_DEPTH, STACK_FRAME, type RunOptions } from '../runtime/interp.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { rng } from './support/rng.js';

// With the fixed layout: stack [0x10000, 0x11000), then mem (if any) at 0x12000.
const STACK_BASE = 0x10000;
const STACK_TOP = STACK_BASE + MAX_CALL_DEPTH * STACK_FRAME;
const MEM_BASE = 0x12000;

const prog = (text: string): Program => rawProgram(assemble(text), 'test');
const run = (text: string, opts: RunOptions & { helpers?: HelperRegistry } = {}): RunResult => interpret(prog(text), opts);

function r0(text: string, opts: RunOptions & { helpers?: HelperRegistry } = {}): bigint {
  const r = run(text, opts);
  if (!r.ok) throw new Error(r.fault.message);
  return r.r0;
}

function faultOf(r: RunResult): Fault {
  if (r.ok) throw new Error(`expected a fault, got r0 = 0x${r.r0.toString(16)}`);
  return r.fault;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Little-endian bytes of 64-bit values. */
function le64(...vs: bigint[]): Uint8Array {
  const out = new Uint8Array(vs.length * 8);
  const view = new DataView(out.buffer);
  vs.forEach((v, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, v), true));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The BigInt model: operands and results are unsigned 64-bit values.
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const u32 = (v: bigint): bigint => BigInt.asUintN(32, v);
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);
type Ref = (a: bigint, b: bigint) => bigint;

const REF64: Record<string, Ref> = {
  add: (a, b) => u64(a + b),
  sub: (a, b) => u64(a - b),
  mul: (a, b) => u64(a * b),
  div: (a, b) => (b === 0n ? 0n : a / b),
  mod: (a, b) => (b === 0n ? a : a % b),
  sdiv: (a, b) => (b === 0n ? 0n : u64(s64(a) / s64(b))),
  smod: (a, b) => (b === 0n ? a : u64(s64(a) % s64(b))),
  or: (a, b) => a | b,
  and: (a, b) => a & b,
  xor: (a, b) => a ^ b,
  lsh: (a, b) => u64(a << (b & 63n)),
  rsh: (a, b) => a >> (b & 63n),
  arsh: (a, b) => u64(s64(a) >> (b & 63n)),
  mov: (_a, b) => b,
};
const REF32: Record<string, Ref> = {
  add: (a, b) => u32(a + b),
  sub: (a, b) => u32(a - b),
  mul: (a, b) => u32(a * b),
  div: (a, b) => (u32(b) === 0n ? 0n : u32(a) / u32(b)),
  mod: (a, b) => (u32(b) === 0n ? u32(a) : u32(a) % u32(b)),
  sdiv: (a, b) => (u32(b) === 0n ? 0n : u32(s32(a) / s32(b))),
  smod: (a, b) => (u32(b) === 0n ? u32(a) : u32(s32(a) % s32(b))),
  or: (a, b) => u32(a | b),
  and: (a, b) => u32(a & b),
  xor: (a, b) => u32(a ^ b),
  lsh: (a, b) => u32(a << (b & 31n)),
  rsh: (a, b) => u32(a) >> (b & 31n),
  arsh: (a, b) => u32(s32(a) >> (b & 31n)),
  mov: (_a, b) => u32(b),
};
const JREF: Record<string, (a: bigint, b: bigint, sa: bigint, sb: bigint) => boolean> = {
  jeq: (a, b) => a === b,
  jne: (a, b) => a !== b,
  jgt: (a, b) => a > b,
  jge: (a, b) => a >= b,
  jlt: (a, b) => a < b,
  jle: (a, b) => a <= b,
  jset: (a, b) => (a & b) !== 0n,
  jsgt: (_a, _b, sa, sb) => sa > sb,
  jsge: (_a, _b, sa, sb) => sa >= sb,
  jslt: (_a, _b, sa, sb) => sa < sb,
  jsle: (_a, _b, sa, sb) => sa <= sb,
};
const jref = (op: string, wide: boolean, a: bigint, b: bigint): boolean =>
  wide ? JREF[op](a, b, s64(a), s64(b)) : JREF[op](u32(a), u32(b), s32(a), s32(b));

const EDGES: bigint[] = [
  0n, 1n, 2n, 3n, 7n, 31n, 32n, 33n, 63n, 64n, 65n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
  0x1ffffffffn, 1n << 52n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 0x7fffffffffffffffn,
  0x8000000000000000n, u64(-1n), u64(-2n), u64(-3n), u64(-7n), u64(-(1n << 31n)), u64(-(1n << 53n)),
  u64(-(1n << 53n) - 1n), 0xdeadbeefcafebaben, 0xffffffff00000005n,
];
/** Immediates: sign-extended 32-bit values. */
const IMM_EDGES = [0, 1, -1, 2, -2, 3, 7, -7, 31, 32, 33, 63, 64, 65, 0x7fffffff, -0x80000000, 0x12345, -0x12345];


/** Random 64-bit values of every magnitude and sign, so that both the double and the BigInt paths run. */
function randomOperand(next: () => number): bigint {
  const pick = next() % 16;
  if (pick === 0) return EDGES[next() % EDGES.length];
  const v = ((BigInt(next()) << 32n) | BigInt(next())) >> BigInt(next() % 64);
  return pick < 6 ? u64(-v) : v;
}

/** A program taking a and b from mem, applying `op` to them, and returning the result. */
function binaryProgram(opText: string): Interpreter {
  return new Interpreter(prog(`ldxdw %r0, [%r1]\nldxdw %r2, [%r1+8]\n${opText}\nexit`));
}

function runOn(vm: Interpreter, mem: Uint8Array): bigint {
  const r = vm.run({ mem });
  if (!r.ok) throw new Error(r.fault.message);
  return r.r0;
}

const ALU_OPS = Object.keys(REF64);

// ---------------------------------------------------------------------------------------------
describe('ALU on edge values, both widths, register and immediate forms', () => {
  for (const wide of [true, false]) {
    const ref = wide ? REF64 : REF32;
    const sfx = wide ? '' : '32';
    for (const op of ALU_OPS) {
      it(`${op}${sfx}`, () => {
        const viaReg = binaryProgram(`${op}${sfx} %r0, %r2`);
        for (const a of EDGES) {
          for (const b of EDGES) {
            const got = runOn(viaReg, le64(a, b));
            if (got !== ref[op](a, b)) expect(`${hex(a)} ${op}${sfx} ${hex(b)} = ${hex(got)}`).toBe(hex(ref[op](a, b)));
          }
        }
        for (const imm of IMM_EDGES) {
          const viaImm = binaryProgram(`${op}${sfx} %r0, ${imm}`);
          const b = u64(BigInt(imm));
          for (const a of EDGES) {
            const got = runOn(viaImm, le64(a, 0n));
            if (got !== ref[op](a, b)) expect(`${hex(a)} ${op}${sfx} imm ${imm} = ${hex(got)}`).toBe(hex(ref[op](a, b)));
          }
        }
      });
    }
  }

  it('neg and neg32', () => {
    const neg = binaryProgram('neg %r0');
    const neg32 = binaryProgram('neg32 %r0');
    for (const a of EDGES) {
      expect(runOn(neg, le64(a, 0n))).toBe(u64(-a));
      expect(runOn(neg32, le64(a, 0n))).toBe(u32(-a));
    }
  });

  // Anchors: the model above is itself checked against values spelled out from the RFC.
  it.each([
    ['mov32 %r0, -1', 0xffffffffn],
    ['mov %r0, -1', u64(-1n)],
    ['lddw %r0, 0x8000000000000000\nsdiv %r0, -1', 0x8000000000000000n],
    ['lddw %r0, 0x8000000000000000\nsmod %r0, -1', 0n],
    ['mov32 %r0, 0x80000000\nsdiv32 %r0, -1', 0x80000000n],
    ['mov32 %r0, 0x80000000\nsmod32 %r0, -1', 0n],
    ['mov %r0, -7\nsmod %r0, 2', u64(-1n)],
    ['mov %r0, 7\nsmod %r0, -2', 1n],
    ['mov %r0, -7\nsmod32 %r0, 2', 0xffffffffn],
    ['mov %r0, -7\nsdiv %r0, 2', u64(-3n)],
    ['lddw %r0, 0xffffffff00000005\nmod32 %r0, 0', 5n],
    ['lddw %r0, 0xffffffff00000005\nmov %r1, 0\nmod %r0, %r1', 0xffffffff00000005n],
    ['lddw %r0, 0xffffffff00000005\nmov %r1, 0\ndiv %r0, %r1', 0n],
    ['lddw %r0, 0xffffffff00000005\nmov %r1, 0\ndiv32 %r0, %r1', 0n],
    ['mov32 %r0, 1\nlsh32 %r0, 33', 2n],
    ['mov %r0, 1\nlsh %r0, 65', 2n],
    ['mov %r0, -1\nrsh32 %r0, 4', 0x0fffffffn],
    ['mov32 %r0, 0x80000000\narsh32 %r0, 4', 0xf8000000n],
    ['mov %r0, 0x7fffffff\nadd32 %r0, 1', 0x80000000n],
    ['mov %r0, 0x7fffffff\nadd %r0, 1', 0x80000000n],
    ['mov %r0, -1\nadd %r0, 1', 0n],
    ['lddw %r0, 0x8000000000000000\nneg %r0', 0x8000000000000000n],
    ['lddw %r0, 0x8000000000000000\nmul %r0, -1', 0x8000000000000000n],
    ['mov32 %r0, 0x80000000\nmul32 %r0, -1', 0x80000000n],
    ['mov %r0, -1\nmul %r0, -1', 1n],
    ['lddw %r0, 0x1000000000\nadd32 %r0, 0', 0n],
    ['mov %r0, -1\ndiv %r0, 2', 0x7fffffffffffffffn],
    ['mov %r0, -1\ndiv32 %r0, 2', 0x7fffffffn],
  ])('%s', (text, want) => {
    expect(r0(`${text}\nexit`)).toBe(want);
  });
});

describe('randomised cross-check of the 64-bit halves arithmetic against BigInt', () => {
  for (const wide of [true, false]) {
    const ref = wide ? REF64 : REF32;
    const sfx = wide ? '' : '32';
    for (const op of ALU_OPS) {
      it(`${op}${sfx}: 3000 random pairs`, () => {
        const next = rng(0x5eed + op.length * 31 + (wide ? 7 : 0));
        const vm = binaryProgram(`${op}${sfx} %r0, %r2`);
        for (let k = 0; k < 3000; k++) {
          const a = randomOperand(next);
          const b = k % 4 === 0 ? (randomOperand(next) & 0xffffn) : randomOperand(next);
          const got = runOn(vm, le64(a, b));
          if (got !== ref[op](a, b)) expect(`${hex(a)} ${op}${sfx} ${hex(b)} = ${hex(got)}`).toBe(hex(ref[op](a, b)));
        }
      });
    }
  }

  for (const wide of [true, false]) {
    const sfx = wide ? '' : '32';
    for (const op of Object.keys(JREF)) {
      it(`${op}${sfx}: 2000 random pairs`, () => {
        const next = rng(0xc0ffee + op.length * 17 + (wide ? 3 : 0));
        const vm = new Interpreter(prog(`ldxdw %r3, [%r1]\nldxdw %r4, [%r1+8]\nmov %r0, 1\n${op}${sfx} %r3, %r4, +1\nmov %r0, 0\nexit`));
        for (let k = 0; k < 2000; k++) {
          const a = randomOperand(next);
          // Equal halves often, so that the low-half tie-breaks of the compares are exercised.
          const b = k % 3 === 0 ? u64(a + BigInt((next() % 3) - 1)) : k % 5 === 0 ? (a ^ 0xffffffff00000000n) : randomOperand(next);
          const got = runOn(vm, le64(a, b)) === 1n;
          if (got !== jref(op, wide, a, b)) expect(`${hex(a)} ${op}${sfx} ${hex(b)}: ${got}`).toBe(`${!got}`);
        }
      });
    }
  }
});

describe('conditional jumps', () => {
  for (const wide of [true, false]) {
    const sfx = wide ? '' : '32';
    for (const op of Object.keys(JREF)) {
      it(`${op}${sfx} on edge values, register and immediate`, () => {
        const viaReg = new Interpreter(prog(`ldxdw %r3, [%r1]\nldxdw %r4, [%r1+8]\nmov %r0, 1\n${op}${sfx} %r3, %r4, +1\nmov %r0, 0\nexit`));
        for (const a of EDGES) {
          for (const b of EDGES) expect(runOn(viaReg, le64(a, b)) === 1n, `${hex(a)} ${op}${sfx} ${hex(b)}`).toBe(jref(op, wide, a, b));
        }
        for (const imm of IMM_EDGES) {
          const viaImm = new Interpreter(prog(`ldxdw %r3, [%r1]\nmov %r0, 1\n${op}${sfx} %r3, ${imm}, +1\nmov %r0, 0\nexit`));
          for (const a of EDGES) {
            expect(runOn(viaImm, le64(a)) === 1n, `${hex(a)} ${op}${sfx} imm ${imm}`).toBe(jref(op, wide, a, u64(BigInt(imm))));
          }
        }
      });
    }
  }

  it('compares the immediate sign-extended in JMP and as 32 bits in JMP32', () => {
    expect(r0('mov32 %r1, -1\nmov %r0, 1\njeq %r1, -1, +1\nmov %r0, 0\nexit')).toBe(0n);
    expect(r0('mov32 %r1, -1\nmov %r0, 1\njeq32 %r1, -1, +1\nmov %r0, 0\nexit')).toBe(1n);
    expect(r0('lddw %r1, 0x100000000\nmov %r0, 1\njeq32 %r1, 0, +1\nmov %r0, 0\nexit')).toBe(1n);
    expect(r0('mov %r1, -1\nmov %r0, 1\njgt %r1, 5, +1\nmov %r0, 0\nexit')).toBe(1n);
    expect(r0('mov %r1, -1\nmov %r0, 1\njsgt %r1, 5, +1\nmov %r0, 0\nexit')).toBe(0n);
  });

  it('ja jumps forward and backward relative to the next slot; ja32 takes its offset from imm', () => {
    expect(r0('mov %r0, 0\nja +2\nadd %r0, 1\nadd %r0, 2\nadd %r0, 4\nexit')).toBe(4n);
    expect(r0('mov %r0, 0\nja +1\nexit\nadd %r0, 1\njlt %r0, 3, -2\nexit')).toBe(3n);
    expect(r0('mov %r0, 0\nja32 +1\nmov %r0, 9\nadd %r0, 1\nexit')).toBe(1n);
    expect(r0('mov %r0, 0\nja +1\nexit\nadd %r0, 1\nja32 -3\n')).toBe(1n);
    const raw: Insn[] = [
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0x06, dst: 0, src: 0, off: 0, imm: 1 }, // gotol +1
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 7 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    expect(interpret(rawProgram(raw, 'raw'))).toMatchObject({ ok: true, r0: 0n, steps: 3 });
  });
});

describe('byte order, movsx and sign-extending loads', () => {
  const V = 'lddw %r0, 0x0123456789abcdef';
  it.each([
    ['le16', 0xcdefn], ['le32', 0x89abcdefn], ['le64', 0x0123456789abcdefn],
    ['be16', 0xefcdn], ['be32', 0xefcdab89n], ['be64', 0xefcdab8967452301n],
    ['bswap16', 0xefcdn], ['bswap32', 0xefcdab89n], ['bswap64', 0xefcdab8967452301n],
  ])('%s', (op, want) => {
    expect(r0(`${V}\n${op} %r0\nexit`)).toBe(want);
  });

  it.each([
    ['movsx832', 0x80n, 0xffffff80n], ['movsx832', 0xffffffff0000017fn, 0x7fn],
    ['movsx1632', 0x8001n, 0xffff8001n], ['movsx1632', 0x17fffn, 0x7fffn],
    ['movsx864', 0x80n, 0xffffffffffffff80n], ['movsx864', 0x7fn, 0x7fn],
    ['movsx1664', 0x18001n, 0xffffffffffff8001n],
    ['movsx3264', 0x80000001n, 0xffffffff80000001n], ['movsx3264', 0xffffffff7fffffffn, 0x7fffffffn],
  ])('%s of %s', (op, v, want) => {
    expect(r0(`lddw %r1, ${hex(v)}\n${op} %r0, %r1\nexit`)).toBe(want);
    // The same register as source and destination.
    expect(r0(`lddw %r0, ${hex(v)}\n${op} %r0, %r0\nexit`)).toBe(want);
  });

  it('mov32 zero-extends and mov sign-extends its immediate', () => {
    expect(r0('mov %r0, -1\nmov32 %r0, %r0\nexit')).toBe(0xffffffffn);
    expect(r0('mov %r0, -2\nexit')).toBe(u64(-2n));
    expect(r0('mov32 %r0, -2\nexit')).toBe(0xfffffffen);
  });

  const mem = Uint8Array.from([0x80, 0xff, 0x7f, 0x80, 0x01, 0x02, 0x03, 0x84]);
  it.each([
    ['ldxsb %r0, [%r1]', 0xffffffffffffff80n], ['ldxsb %r0, [%r1+2]', 0x7fn], ['ldxb %r0, [%r1]', 0x80n],
    ['ldxsh %r0, [%r1]', 0xffffffffffffff80n], ['ldxsh %r0, [%r1+2]', 0xffffffffffff807fn], ['ldxh %r0, [%r1+2]', 0x807fn],
    ['ldxsw %r0, [%r1]', 0xffffffff807fff80n], ['ldxsw %r0, [%r1+4]', 0xffffffff84030201n], ['ldxw %r0, [%r1]', 0x807fff80n],
    ['ldxdw %r0, [%r1]', 0x84030201807fff80n],
  ])('%s', (text, want) => {
    expect(r0(`${text}\nexit`, { mem })).toBe(want);
  });

  it('stores truncate and stdw sign-extends its immediate', () => {
    expect(r0('stdw [%r10-8], -2\nldxdw %r0, [%r10-8]\nexit')).toBe(u64(-2n));
    expect(r0('stdw [%r10-8], 0\nstb [%r10-8], 0x1ff\nsth [%r10-6], -1\nldxdw %r0, [%r10-8]\nexit')).toBe(0xffff00ffn);
    expect(r0('stdw [%r10-8], 0\nlddw %r1, 0x1122334455667788\nstxw [%r10-8], %r1\nstxh [%r10-4], %r1\nstxb [%r10-2], %r1\nldxdw %r0, [%r10-8]\nexit'))
      .toBe(0x0088778855667788n);
  });
});

describe('atomics', () => {
  const MEMV = 0x7fffffff_fffffff0n;
  const SRCV = 0x00000001_00000022n;
  const R0V = 0xabcdn;
  type Model = (mem: bigint, src: bigint, r0: bigint) => { mem: bigint; src: bigint; r0: bigint };
  const arith: Record<string, (a: bigint, b: bigint) => bigint> = {
    add: (a, b) => a + b, or: (a, b) => a | b, and: (a, b) => a & b, xor: (a, b) => a ^ b,
  };
  const cases: [string, Model][] = [];
  for (const wide of [true, false]) {
    const sfx = wide ? '' : '32';
    // A 32-bit atomic touches the low word of the 8-byte slot; fetch results are zero-extended.
    const merge = (m: bigint, v: bigint): bigint => (wide ? u64(v) : (m & 0xffffffff00000000n) | u32(v));
    const old = (m: bigint): bigint => (wide ? m : u32(m));
    for (const [op, f] of Object.entries(arith)) {
      cases.push([`lock ${op}${sfx}`, (m, s, r) => ({ mem: merge(m, f(old(m), s)), src: s, r0: r })]);
      cases.push([`lock fetch ${op}${sfx}`, (m, s, r) => ({ mem: merge(m, f(old(m), s)), src: old(m), r0: r })]);
    }
    cases.push([`lock xchg${sfx}`, (m, s, r) => ({ mem: merge(m, s), src: old(m), r0: r })]);
    cases.push([`lock cmpxchg${sfx}`, (m, s, r) => ({ mem: old(m) === (wide ? r : u32(r)) ? merge(m, s) : m, src: s, r0: old(m) })]);
  }

  function runAtomic(insn: string, m: bigint, s: bigint, r: bigint): { mem: bigint; src: bigint; r0: bigint } {
    const vm = new Interpreter(prog(`mov %r6, %r1
lddw %r1, ${hex(m)}
stxdw [%r10-8], %r1
lddw %r2, ${hex(s)}
lddw %r0, ${hex(r)}
${insn} [%r10-8], %r2
ldxdw %r3, [%r10-8]
stxdw [%r6], %r3
stxdw [%r6+8], %r2
stxdw [%r6+16], %r0
exit`));
    const res = vm.run({ mem: new Uint8Array(24) });
    if (!res.ok) throw new Error(res.fault.message);
    const out = new DataView(vm.regions!.regions[1].bytes.buffer);
    return { mem: out.getBigUint64(0, true), src: out.getBigUint64(8, true), r0: out.getBigUint64(16, true) };
  }

  it.each(cases)('%s', (insn, model) => {
    const inputs: [bigint, bigint, bigint][] = [
      [MEMV, SRCV, R0V], [u64(-1n), 1n, 0n], [0xffffffffn, 0xffffffff00000001n, 0xffffffffn],
      [0x12345678_9abcdef0n, 0x11223344n, 0x12345678_9abcdef0n], [0x12345678_9abcdef0n, 5n, 0xffffffff_9abcdef0n],
    ];
    for (const [m, s, r] of inputs) expect(runAtomic(insn, m, s, r), `${insn} mem=${hex(m)} src=${hex(s)} r0=${hex(r)}`).toEqual(model(m, s, r));
  });

  it('faults like a store on a bad or read-only address', () => {
    const f = faultOf(run('lock add [%r10], %r1\nexit'));
    expect(f).toMatchObject({ kind: 'out-of-bounds', pc: 0, addr: BigInt(STACK_TOP), size: 8 });
    expect(f.message).toContain('lock add [%r10+0], %r1');
    expect(f.message).toContain(`write of 8 bytes at ${hex(STACK_TOP)}`);
  });
});

describe('local calls', () => {
  it('preserve r6-r9, give the callee a fresh frame, and restore r10', () => {
    const text = `mov %r6, 6
mov %r7, 7
mov %r8, 8
mov %r9, 9
stdw [%r10-8], 111
call local f
mov %r2, %r10
sub %r2, %r0
jne %r2, ${STACK_FRAME}, fail
ldxdw %r3, [%r10-8]
jne %r3, 111, fail
jne %r6, 6, fail
jne %r7, 7, fail
jne %r8, 8, fail
jne %r9, 9, fail
mov %r0, 1
exit
fail:
mov %r0, 0
exit
f:
stdw [%r10-8], 222
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
mov %r0, %r10
exit`;
    expect(r0(text)).toBe(1n);
  });

  it('pass r1-r5 through and return r0', () => {
    expect(r0('mov %r1, 3\nmov %r5, 4\ncall local f\nadd %r0, %r1\nexit\nf:\nmov %r0, %r5\nlsh %r0, 4\nexit')).toBe(0x43n);
  });

  const nest = (n: number): string => `mov %r1, ${n}\ncall local f\nexit\nf:\njeq %r1, 0, +2\nsub %r1, 1\ncall local f\nmov %r0, %r10\nexit`;

  it(`allow ${MAX_CALL_DEPTH} frames, the deepest at the bottom of the stack region`, () => {
    // r0 = the innermost frame's r10 is the last written before the returns unwind.
    const text = `mov %r1, ${MAX_CALL_DEPTH - 2}\ncall local f\nexit\nf:\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nexit\nstdw [%r10-${STACK_FRAME}], 1\nmov %r0, %r10\nexit`;
    expect(r0(text)).toBe(BigInt(STACK_BASE + STACK_FRAME));
    expect(r0(nest(MAX_CALL_DEPTH - 2))).toBe(BigInt(STACK_TOP - STACK_FRAME));
  });

  it('fault with call-depth one frame deeper', () => {
    const r = run(nest(MAX_CALL_DEPTH - 1));
    const f = faultOf(r);
    expect(f.kind).toBe('call-depth');
    expect(f.pc).toBe(5);
    expect(f.message).toMatch(/^call depth exceeded at instruction 5 \(call local -3\): /);
  });

  it('fault on unbounded recursion long before the budget', () => {
    const r = run('call local f\nexit\nf:\ncall local f\nexit');
    expect(faultOf(r).kind).toBe('call-depth');
    expect(r.steps).toBe(MAX_CALL_DEPTH);
  });

  it('cannot reach below the deepest frame', () => {
    const text = `mov %r1, ${MAX_CALL_DEPTH - 2}\ncall local f\nexit\nf:\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nexit\nstb [%r10-${STACK_FRAME + 1}], 1\nexit`;
    const f = faultOf(run(text));
    expect(f).toMatchObject({ kind: 'out-of-bounds', pc: 7, addr: BigInt(STACK_BASE - 1), size: 1 });
    expect(f.message).toContain(`stb [%r10-${STACK_FRAME + 1}], 1`);
    expect(f.message).toContain(`(nearest: stack [${hex(STACK_BASE)}, ${hex(STACK_TOP)}))`);
  });
});

describe('helpers', () => {
  it('unwind returns its argument, and stops the program with r0 = 0 on 0', () => {
    expect(r0('mov %r1, -1\ncall 5\nmov %r0, 2\nexit')).toBe(2n);
    expect(r0('mov %r1, 77\ncall 5\nexit')).toBe(77n);
    const stopped = run('mov %r0, 9\nmov %r1, 0\ncall 5\nmov %r0, 2\nexit');
    expect(stopped).toEqual({ ok: true, r0: 0n, steps: 3 });
    // Unwinding from inside a local call ends the whole program.
    expect(run('call local f\nmov %r0, 5\nexit\nf:\nmov %r1, 0\ncall 5\nexit')).toEqual({ ok: true, r0: 0n, steps: 3 });
  });

  it('callx calls the helper whose id is in the register', () => {
    expect(r0('mov %r1, 7\nmov %r2, 5\ncallx %r2\nexit')).toBe(7n);
  });

  it('leave r1-r5 unchanged and pass them as unsigned 64-bit values', () => {
    const seen: bigint[] = [];
    const helpers = new HelperRegistry().register({
      id: 1, name: 'probe', call: (_c, a, b, c, d, e) => { seen.push(a, b, c, d, e); return 42n; },
    });
    const text = 'mov %r1, -1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nadd %r0, %r1\nadd %r0, %r2\nadd %r0, %r3\nadd %r0, %r4\nadd %r0, %r5\nexit';
    expect(r0(text, { helpers })).toBe(42n - 1n + 2n + 3n + 4n + 5n);
    expect(seen).toEqual([u64(-1n), 2n, 3n, 4n, 5n]);
  });

  it('read and write memory through the checked context', () => {
    const helpers = new HelperRegistry().register({
      id: 2, name: 'copy', call: (ctx, dst, src, len) => { ctx.write(dst, ctx.read(src, Number(len))); return 0n; },
    });
    const text = 'mov %r6, %r1\nmov %r2, %r1\nmov %r1, %r10\nsub %r1, 8\nmov %r3, 8\ncall 2\nldxdw %r0, [%r10-8]\nexit';
    expect(r0(text, { helpers, mem: le64(0x1122334455667788n) })).toBe(0x1122334455667788n);
  });

  const copyHelpers = (): HelperRegistry => new HelperRegistry().register({
    id: 2, name: 'copy', call: (ctx, dst, src, len) => { ctx.write(dst, ctx.read(src, Number(len))); return 0n; },
  });

  it('turn a bad pointer in a helper into a helper fault naming the access', () => {
    const f = faultOf(run('mov %r2, %r1\nmov %r1, %r10\nmov %r3, 9\ncall 2\nexit', { helpers: copyHelpers(), mem: new Uint8Array(8) }));
    expect(f.kind).toBe('helper');
    expect(f.pc).toBe(3);
    expect(f.message).toBe(`helper failed at instruction 3 (call 2): copy: read of 9 bytes at ${hex(MEM_BASE)} crosses the end of mem [${hex(MEM_BASE)}, ${hex(MEM_BASE + 8)})`);
  });

  it('turn a write to read-only data in a helper into a helper fault', () => {
    const program: Program = {
      ...prog('lddw %r1, 0\nmov %r2, %r10\nsub %r2, 8\nmov %r3, 1\ncall 2\nexit'),
      data: [{ name: '.rodata', bytes: new Uint8Array(4), writable: false }],
      relocs: [{ slot: 0, section: 0, addend: 0 }],
    };
    const f = faultOf(interpret(program, { helpers: copyHelpers() }));
    expect(f.kind).toBe('helper');
    expect(f.message).toContain('to read-only region .rodata');
  });

  it('fault on an unknown helper id, for call and callx', () => {
    const f = faultOf(run('mov %r0, 0\ncall 99\nexit'));
    expect(f).toMatchObject({ kind: 'unknown-helper', pc: 1 });
    expect(f.message).toBe('unknown helper at instruction 1 (call 99): no helper is registered with id 99');
    const g = faultOf(run('lddw %r3, 0x100000005\ncallx %r3\nexit'));
    expect(g).toMatchObject({ kind: 'unknown-helper', pc: 2 });
    expect(g.message).toContain('(callx %r3)');
    expect(g.message).toContain('0x100000005');
  });

  it('other errors from a helper are not swallowed', () => {
    const helpers = new HelperRegistry().register({ id: 3, name: 'buggy', call: () => { throw new TypeError('bug'); } });
    expect(() => run('call 3\nexit', { helpers })).toThrow(TypeError);
    const refusing: HelperDef = { id: 3, name: 'strict', call: () => { throw new HelperError('bad flags'); } };
    const f = faultOf(run('call 3\nexit', { helpers: new HelperRegistry().register(refusing) }));
    expect(f.message).toBe('helper failed at instruction 0 (call 3): strict: bad flags');
  });

  it('the conformance set is exactly unwind', () => {
    const h = conformanceHelpers();
    expect([...h.names()]).toEqual([['unwind', 5]]);
    expect(h.ids()).toEqual(new Set([5]));
  });
});

describe('memory regions of a run', () => {
  it('r1 and r2 give the mem region; r10 the stack top', () => {
    expect(r0('mov %r0, %r1\nexit', { mem: new Uint8Array(3) })).toBe(BigInt(MEM_BASE));
    expect(r0('mov %r0, %r2\nexit', { mem: new Uint8Array(3) })).toBe(3n);
    expect(r0('mov %r0, %r1\nadd %r0, %r2\nexit')).toBe(0n);
    expect(r0('mov %r0, %r10\nexit')).toBe(BigInt(STACK_TOP));
  });

  it('the program writes to a copy of mem, and each run starts from fresh data', () => {
    const mem = Uint8Array.from([1, 2, 3, 4]);
    const vm = new Interpreter(prog('ldxw %r0, [%r1]\nstw [%r1], 9\nexit'));
    expect(vm.run({ mem })).toMatchObject({ ok: true, r0: 0x04030201n });
    expect(vm.run({ mem })).toMatchObject({ ok: true, r0: 0x04030201n });
    expect([...mem]).toEqual([1, 2, 3, 4]);
    expect([...vm.regions!.regions[1].bytes]).toEqual([9, 0, 0, 0]);
  });

  it('relocated lddw loads a data section address; writable sections are fresh copies per run', () => {
    const data = Uint8Array.from([0, 0, 0, 0, 5, 0, 0, 0]);
    const program: Program = {
      ...prog('lddw %r1, 0\nldxw %r0, [%r1]\nstw [%r1], 1\nexit'),
      data: [{ name: '.data', bytes: data, writable: true }],
      relocs: [{ slot: 0, section: 0, addend: 4 }],
    };
    const vm = new Interpreter(program);
    expect(vm.run()).toMatchObject({ ok: true, r0: 5n });
    expect(vm.run()).toMatchObject({ ok: true, r0: 5n });
    expect(vm.regions!.regions[1]).toMatchObject({ name: '.data', base: 0x12000 });
    expect(data[4]).toBe(5);
    // With a mem region the data section moves, and the relocation follows it.
    expect(vm.run({ mem: new Uint8Array(8) })).toMatchObject({ ok: true, r0: 5n });
    expect(vm.regions!.regions[2].base).toBe(0x14000);
  });

  it('host regions come before mem (mem is last, its size varies by run) and are used in place', () => {
    const host = new Uint8Array(4);
    const r = r0('lddw %r1, 0x12000\nstw [%r1], 0x5a5a\nmov %r0, %r2\nexit', { mem: new Uint8Array(1), regions: [{ name: 'host', bytes: host, writable: true }] });
    expect(r).toBe(1n);
    expect([...host]).toEqual([0x5a, 0x5a, 0, 0]);
  });
});

describe('faults', () => {
  const mem8 = { mem: new Uint8Array(8) };

  it('out-of-bounds read after a region end: the exact message', () => {
    const f = faultOf(run('ldxw %r0, [%r1+8]\nexit', mem8));
    expect(f).toEqual({
      kind: 'out-of-bounds', pc: 0, addr: BigInt(MEM_BASE + 8), size: 4,
      message: `out of bounds at instruction 0 (ldxw %r0, [%r1+8]): read of 4 bytes at ${hex(MEM_BASE + 8)} is outside every region (nearest: mem [${hex(MEM_BASE)}, ${hex(MEM_BASE + 8)}))`,
    });
  });

  it.each([
    ['ldxb %r0, [%r1-1]', 'read', 1, MEM_BASE - 1, 'is outside every region (nearest: mem'],
    ['ldxdw %r0, [%r1+4]', 'read', 8, MEM_BASE + 4, 'crosses the end of mem'],
    ['ldxh %r0, [%r1+7]', 'read', 2, MEM_BASE + 7, 'crosses the end of mem'],
    ['stw [%r1+6], 1', 'write', 4, MEM_BASE + 6, 'crosses the end of mem'],
    ['stxdw [%r1+8], %r1', 'write', 8, MEM_BASE + 8, 'is outside every region (nearest: mem'],
    ['stb [%r1-4096], 1', 'write', 1, MEM_BASE - 4096, 'is outside every region (nearest: stack'],
    ['stdw [%r10+0], 1', 'write', 8, STACK_TOP, 'is outside every region (nearest: stack'],
    ['ldxw %r0, [%r10-4098]', 'read', 4, STACK_TOP - 4098, 'is outside every region (nearest: stack'],
  ])('%s', (text, what, size, addr, why) => {
    const f = faultOf(run(`mov %r0, 0\n${text}\nexit`, mem8));
    expect(f.kind).toBe('out-of-bounds');
    expect(f.pc).toBe(1);
    expect(f.addr).toBe(BigInt(addr));
    expect(f.size).toBe(size);
    expect(f.message).toContain(`at instruction 1 (${text})`);
    expect(f.message).toContain(`${what} of ${size} byte${size === 1 ? '' : 's'} at ${hex(addr)} ${why}`);
  });

  it('an address with its upper half set misses every region', () => {
    const f = faultOf(run('lddw %r2, 0x100000000\nadd %r2, %r1\nldxb %r0, [%r2]\nexit', mem8));
    expect(f).toMatchObject({ kind: 'out-of-bounds', pc: 3, addr: 0x100000000n + BigInt(MEM_BASE), size: 1 });
    expect(f.message).toContain('(ldxb %r0, [%r2+0])');
    expect(f.message).toContain(`read of 1 byte at 0x1${MEM_BASE.toString(16).padStart(8, '0')} is outside every region`);
    // A negative offset from a small address wraps to the top of the 64-bit space.
    const g = faultOf(run('mov %r2, 0\nldxb %r0, [%r2-1]\nexit'));
    expect(g).toMatchObject({ kind: 'out-of-bounds', pc: 1, addr: u64(-1n) });
    expect(g.message).toContain('at 0xffffffffffffffff');
    // An offset that carries into the upper half.
    const h = faultOf(run('mov32 %r2, -1\nldxb %r0, [%r2+8193]\nexit'));
    expect(h.addr).toBe(0x100002000n);
  });

  it('writing read-only data is a permission fault; reading it is fine', () => {
    const program: Program = {
      ...prog('lddw %r2, 0\nldxb %r0, [%r2+1]\nstb [%r2+1], 1\nexit'),
      data: [{ name: '.rodata', bytes: Uint8Array.from([1, 2, 3]), writable: false }],
      relocs: [{ slot: 0, section: 0, addend: 0 }],
    };
    const f = faultOf(interpret(program));
    expect(f).toMatchObject({ kind: 'permission', pc: 3, addr: 0x12001n, size: 1 });
    expect(f.message).toBe('permission denied at instruction 3 (stb [%r2+1], 1): write of 1 byte at 0x12001 to read-only region .rodata');
    const ok = interpret({ ...program, insns: assemble('lddw %r2, 0\nldxb %r0, [%r2+1]\nexit') });
    expect(ok).toMatchObject({ ok: true, r0: 2n });
  });

  it('an infinite loop exhausts the budget', () => {
    const r = run('mov %r0, 0\nadd %r0, 1\nja -2\nexit', { budget: 1001 });
    const f = faultOf(r);
    expect(f.kind).toBe('budget');
    expect(f.pc).toBe(1);
    expect(r.steps).toBe(1001);
    expect(f.message).toBe('budget exhausted at instruction 1 (add %r0, 1): executed 1001 instructions without exiting');
    expect(DEFAULT_BUDGET).toBe(100_000_000);
  });

  it('a program may use exactly its budget; lddw counts once', () => {
    const text = 'lddw %r0, 1\nadd %r0, 1\nexit';
    expect(run(text, { budget: 3 })).toEqual({ ok: true, r0: 2n, steps: 3 });
    expect(faultOf(run(text, { budget: 2 }))).toMatchObject({ kind: 'budget', pc: 3 });
    expect(run(text, { budget: Infinity })).toMatchObject({ ok: true, steps: 3 });
  });

  const I = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
  const EXIT = I(0x95);

  it('an invalid instruction faults only when reached', () => {
    const insns = [I(0xb7, 0, 0, 0, 1), I(0x55, 0, 0, 1, 0), I(0xff), EXIT];
    expect(interpret(rawProgram(insns, 'raw'))).toMatchObject({ ok: true, r0: 1n });
    const bad = [I(0xb7, 0, 0, 0, 0), I(0x55, 0, 0, 1, 0), I(0xff), EXIT];
    const f = faultOf(interpret(rawProgram(bad, 'raw')));
    expect(f.kind).toBe('invalid');
    expect(f.pc).toBe(2);
    expect(f.message).toBe('invalid instruction at instruction 2 (.insn code=0xff dst=0 src=0 off=0 imm=0): unknown ALU operation 0xf0');
  });

  it.each([
    ['a register that does not exist', [I(0xb7, 11, 0, 0, 1), EXIT], 0, /mov %r11, 1\): register %r11 does not exist/],
    ['a source register that does not exist', [I(0xbf, 0, 12), EXIT], 0, /register %r12 does not exist/],
    ['a jump out of the program', [I(0x05, 0, 0, 5), EXIT], 0, /\(ja \+5\): target 6 is outside the program \(2 slots\)/],
    ['a local call out of the program', [I(0x85, 0, 1, 0, -3), EXIT], 0, /\(call local -3\): target -2 is outside/],
    ['a reserved field set', [I(0xb7, 0, 0, 1, 1), EXIT], 0, /reserved field off must be 0/],
    ['running past the end', [I(0xb7, 0, 0, 0, 1)], 1, /^invalid instruction at instruction 1 \(end of program\): execution ran past the last instruction/],
    ['a jump into the middle of an lddw', [I(0x05, 0, 0, 1), I(0x18, 0, 0, 0, 1), I(0, 0, 0, 0, 0), EXIT], 2, /second half of the lddw at 1/],
    ['an lddw without its second slot', [I(0x05, 0, 0, 0), I(0x18, 0, 0, 0, 1)], 1, /lddw needs a second slot/],
    ['a map lddw without a map', [I(0x18, 0, 1, 0, 1), I(0), EXIT], 0, /lddw src 1 \(map_by_fd\) needs a map/],
  ])('%s', (_what, insns, pc, message) => {
    const f = faultOf(interpret(rawProgram(insns as Insn[], 'raw')));
    expect(f.kind).toBe('invalid');
    expect(f.pc).toBe(pc);
    expect(f.message).toMatch(message);
  });

  it('a bad entry point or relocation is reported, not thrown', () => {
    const p = rawProgram([EXIT], 'raw');
    expect(faultOf(interpret({ ...p, entry: 4 }))).toMatchObject({ kind: 'invalid', pc: 4 });
    const f = faultOf(interpret({ ...p, relocs: [{ slot: 0, section: 0, addend: 0 }] }));
    expect(f.message).toMatch(/relocation 0 applies to a slot that is not an lddw/);
    const g = faultOf(interpret({ ...rawProgram([I(0x18), I(0), EXIT], 'raw'), relocs: [{ slot: 0, section: 3, addend: 0 }] }));
    expect(g.message).toMatch(/data section 3, which does not exist/);
  });
});

describe('bpf_conformance suite', () => {
  const files = dataFiles(CONFORMANCE_TESTS);
  it('has all 313 programs', () => expect(files).toHaveLength(313));
  it.each(files.map((f) => [basename(f, '.data'), f]))('%s', (name, f) => {
    const df = parseDataFile(readFileSync(f, 'utf8'));
    const program = df.asm !== undefined ? assembleProgram(df.asm, name) : rawProgram(df.raw ?? [], name);
    const r = interpret(program, { mem: df.mem, helpers: conformanceHelpers() });
    if (!r.ok) throw new Error(r.fault.message);
    expect(hex(r.r0)).toBe(hex(df.result ?? -1n));
  });
});
