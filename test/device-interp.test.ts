// The device runtime's C interpreter on the emulated Cortex-M4 (QEMU mps2-an386), end to end: the
// conformance suite (one firmware run for all 313), the negative suite, the benchmark programs from
// real clang output and generated programs, each compared with the reference interpreter in r0,
// fault kind and pc, fault address and size, and `steps` (the C interpreter counts instructions
// exactly as the reference does); then every error path and every refusal of the bytecode loader.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { H } from '../backends/thumb/image.js';
import { assemble, assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { loadVerified } from '../runtime/container.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import {
  BytecodeError, DeviceRefusedError, FC_ERR_INSN, deviceFirmware, deviceInterpEngine, deviceRunResult, packBytecode, runDeviceBatch,
  type DeviceJob, type DeviceRun,
} from '../runtime/device-engine.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers, defaultHelpers } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { runThumbBatch } from '../runtime/thumb-engine.js';
import { crc32 } from '../backends/thumb/image.js';
import { compileBpf, hasClang } from './support/clang.js';
import { CONFORMANCE_NEGATIVE, CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { generateProgram } from './support/progen.js';
import { REFERENCE_ENGINE, runSuite } from './support/suite.js';

beforeAll(async () => {
  expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
  expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
  await deviceFirmware();
}, 120_000);

const helpers = conformanceHelpers();
const BUDGET = 1_000_000;

/** What the interpreter and the board must agree on, steps included. */
function ending(r: RunResult): string {
  const end = r.ok
    ? `ok r0=0x${r.r0.toString(16)}`
    : `${r.fault.kind} at ${r.fault.pc}${r.fault.addr !== undefined ? ` addr=0x${r.fault.addr.toString(16)} size=${r.fault.size}` : ''}`;
  return `${end} steps=${r.steps}`;
}

interface Case {
  name: string;
  program: Program;
  mem?: Uint8Array;
}

async function runCases(cases: readonly Case[], budget: number, compact: boolean): Promise<DeviceRun[]> {
  return runDeviceBatch(cases.map((c): DeviceJob => ({ container: packBytecode(c.program), mem: c.mem, budget })), { compact });
}

/** Compares every case with the reference interpreter; returns the mismatches and the fault count. */
async function compare(cases: readonly Case[], budget: number, compact = false): Promise<{ wrong: string[]; faults: number; runs: DeviceRun[] }> {
  const runs = await runCases(cases, budget, compact);
  const wrong: string[] = [];
  let faults = 0;
  runs.forEach((run, i) => {
    const c = cases[i];
    if (!run.canaryOk) wrong.push(`${c.name}: canary overwritten`);
    const got = deviceRunResult(run, c.program, c.mem, budget);
    const want = interpret(c.program, { mem: c.mem, budget });
    if (!got.ok) faults++;
    if (ending(got) !== ending(want)) wrong.push(`${c.name}: board ${ending(got)}, interpreter ${ending(want)}`);
  });
  return { wrong, faults, runs };
}

describe('the conformance suite on the C interpreter', () => {
  const cases: Case[] = dataFiles(CONFORMANCE_TESTS).map((file) => {
    const test = parseDataFile(readFileSync(file, 'utf8'));
    const program = programOfTest(test, basename(file));
    verifyStructure(program, { helpers: helpers.ids() });
    return { name: basename(file), program, mem: test.mem };
  });

  it('runs all 313 tests in one firmware run, ending exactly as the reference interpreter', async () => {
    expect(cases).toHaveLength(313);
    const { wrong, runs } = await compare(cases, 100_000_000);
    expect(wrong).toEqual([]);
    expect(runs.every((r) => r.insns > 0)).toBe(true);
  }, 180_000);

  it('ends the same with the compact dispatch (the -Os build)', async () => {
    const { wrong, runs } = await compare(cases, 100_000_000, true);
    expect(wrong).toEqual([]);
    expect(runs.length).toBe(313);
  }, 180_000);

  it('passes through the engine and the conformance runner', async () => {
    const outcomes = await runSuite(CONFORMANCE_TESTS, deviceInterpEngine, helpers);
    expect(outcomes.filter((o) => !o.pass).map((o) => `${o.name}: ${o.why}`)).toEqual([]);
    expect(outcomes).toHaveLength(313);
  }, 180_000);

  it('fails and passes the negative suite as the reference interpreter does', async () => {
    const board = await runSuite(CONFORMANCE_NEGATIVE, deviceInterpEngine, helpers);
    const reference = await runSuite(CONFORMANCE_NEGATIVE, REFERENCE_ENGINE, helpers);
    expect(board.map((o) => `${o.name}: ${o.pass}`)).toEqual(reference.map((o) => `${o.name}: ${o.pass}`));
    expect(board.length).toBeGreaterThan(10);
  }, 180_000);
});

describe('benchmark programs (clang output) on the C interpreter', () => {
  it('compiles with clang 14 and clang-19 and ends as the reference interpreter, steps included', async () => {
    expect(hasClang('clang') && hasClang('clang-19'), 'clang and clang-19 are needed').toBe(true);
    const cases: Case[] = [];
    for (const p of PROGRAMS) {
      for (const [clang, mcpu] of [['clang', 'v3'], ['clang-19', 'v4']] as const) {
        const obj = compileBpf(sourcePath(p), { clang, mcpu });
        const { program } = loadVerified(obj, `${p.name}.${mcpu}.o`, { entry: p.name, helpers });
        cases.push({ name: `${p.name}.${mcpu}`, program, mem: p.input() });
      }
    }
    expect(cases).toHaveLength(24);
    const { wrong, faults, runs } = await compare(cases, 100_000_000);
    expect(wrong).toEqual([]);
    expect(faults).toBe(0);
    // Every eBPF instruction costs the interpreter at least its dispatch.
    runs.forEach((r) => expect(r.insns).toBeGreaterThan(5 * r.steps));
  }, 300_000);
});

describe('generated programs on the C interpreter', () => {
  const N = 320;
  const cases: Case[] = Array.from({ length: N }, (_, i) => {
    const g = generateProgram(5000 + i, { size: 40, callees: 3 });
    return { name: `progen:${5000 + i}`, program: g.program, mem: g.mem };
  });

  it(`${N} programs agree with the reference interpreter (r0, fault kind, pc, address, steps)`, async () => {
    const { wrong, faults } = await compare(cases, BUDGET);
    expect(wrong).toEqual([]);
    expect(faults).toBeGreaterThan(10);
  }, 300_000);

  it(`${N} programs agree with the compact dispatch too`, async () => {
    const { wrong } = await compare(cases, BUDGET, true);
    expect(wrong).toEqual([]);
  }, 300_000);

  it('agrees at small budgets too (the budget fault at the same instruction)', async () => {
    const small = cases.slice(0, 60);
    const { wrong } = await compare(small, 37);
    expect(wrong).toEqual([]);
  }, 120_000);
});

/** A program with data sections: `lddw` slots listed in relocs get the section's address. */
function withData(text: string, data: Program['data'], relocs: Program['relocs']): Program {
  return { insns: assemble(text), entry: 0, functions: [], data, relocs, origin: 'test' };
}

describe('error paths on the board, as the reference interpreter ends them', () => {
  const ctx = new Uint8Array(16).map((_, i) => i + 1);
  const cases: Case[] = [
    { name: 'oob-read', program: assembleProgram('ldxw %r0, [%r1+16]\nexit', 'oob'), mem: ctx },
    { name: 'oob-straddle', program: assembleProgram('ldxdw %r0, [%r1+12]\nexit', 'oob'), mem: ctx },
    { name: 'oob-high-half', program: assembleProgram('lddw %r2, 0x100000000\nadd %r1, %r2\nldxb %r0, [%r1]\nexit', 'oob'), mem: ctx },
    { name: 'oob-stack-below', program: assembleProgram('stdw [%r10-4104], 1\nexit', 'oob') },
    // The fast path adds base and offset in 32 bits: carries and borrows must still fault.
    { name: 'oob-wrap-to-stack', program: assembleProgram('lddw %r1, 0xffffffffffffffff\nldxb %r0, [%r1+0x1001]\nexit', 'oob') },
    { name: 'oob-borrow', program: assembleProgram('mov %r1, 5\nldxb %r0, [%r1-10]\nexit', 'oob') },
    { name: 'oob-carry', program: assembleProgram('lddw %r1, 0xffffff00\nldxb %r0, [%r1+0x7fff]\nexit', 'oob') },
    { name: 'unaligned-atomic-ok', program: assembleProgram('mov %r1, 5\nstdw [%r10-16], 0\nlock add32 [%r10-15], %r1\nldxw %r0, [%r10-15]\nexit', 'atomic') },
    { name: 'deepest-recursion-ok', program: assembleProgram('mov %r1, 6\nmov %r6, 100\ncall local f\nadd %r0, %r6\nexit\nf:\njeq %r1, 0, done\nmov %r6, %r1\nsub %r1, 1\ncall local f\nadd %r0, %r6\nexit\ndone:\nmov %r0, 0\nexit', 'rec') },
    { name: 'oob-no-mem', program: assembleProgram('ldxb %r0, [%r1]\nexit', 'oob') },
    {
      name: 'readonly-write',
      program: withData('lddw %r1, 0\nstb [%r1+1], 7\nexit', [{ name: '.rodata', bytes: new Uint8Array(8), writable: false }], [{ slot: 0, section: 0, addend: 0 }]),
    },
    {
      name: 'readonly-read-ok',
      program: withData('lddw %r1, 0\nldxb %r0, [%r1+3]\nexit', [{ name: '.rodata', bytes: Uint8Array.of(9, 8, 7, 6, 5), writable: false }], [{ slot: 0, section: 0, addend: 0 }]),
    },
    { name: 'budget', program: assembleProgram('mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit', 'loop') },
    { name: 'call-depth', program: assembleProgram('call local f\nexit\nf:\ncall local f\nexit', 'rec') },
    { name: 'unknown-helper', program: assembleProgram('call 99\nexit', 'h') },
    { name: 'unknown-helper-callx', program: assembleProgram('lddw %r3, 0x500000005\ncallx %r3\nexit', 'h') },
    { name: 'helper-stop', program: assembleProgram('mov %r1, 0\nmov %r0, 3\ncall 5\nmov %r0, 9\nexit', 'h') },
    { name: 'atomic-readonly', program: withData('lddw %r1, 0\nmov %r2, 1\nlock add32 [%r1], %r2\nexit', [{ name: '.rodata', bytes: new Uint8Array(8), writable: false }], [{ slot: 0, section: 0, addend: 0 }]) },
  ];

  it('faults with the same kind, pc, address, size and steps', async () => {
    const { wrong, runs } = await compare(cases, 1000);
    expect(wrong).toEqual([]);
    const byName = new Map(cases.map((c, i) => [c.name, runs[i]]));
    // Spot checks against the fault codes of runtime/errors.ts, independent of the interpreter.
    expect(byName.get('oob-read')).toMatchObject({ status: 1, pc: 0, addr: 0x12000n + 16n, size: 4, hasAddr: true, write: false });
    expect(byName.get('readonly-write')).toMatchObject({ status: 2, pc: 2, size: 1, write: true });
    expect(byName.get('budget')).toMatchObject({ status: 3, steps: 1000 });
    expect(byName.get('unknown-helper')).toMatchObject({ status: 4, pc: 0 });
    expect(byName.get('call-depth')).toMatchObject({ status: 6 });
    expect(byName.get('helper-stop')).toMatchObject({ status: 0, r0: 0n, steps: 3 });
    expect(byName.get('readonly-read-ok')).toMatchObject({ status: 0, r0: 6n });
    expect(byName.get('oob-carry')).toMatchObject({ status: 1, addr: 0x1_0000_7effn, size: 1 });
    expect(byName.get('oob-wrap-to-stack')).toMatchObject({ status: 1, addr: 0x1000n });
    expect(byName.get('deepest-recursion-ok')).toMatchObject({ status: 0, r0: 121n });
  }, 120_000);

  it('rejects a helper argument (memcpy out of bounds, a firmware-registered checked helper)', async () => {
    const registry = defaultHelpers({ print: () => undefined });
    const memcpyOob = assembleProgram('mov %r6, %r1\nmov %r1, %r10\nsub %r1, 8\nmov %r2, %r6\nmov %r3, 17\ncall 2\nexit', 'memcpy');
    const sumOob = assembleProgram('mov %r2, 17\ncall 0x7000\nexit', 'sum');
    const sumOk = assembleProgram('mov %r2, 16\ncall 0x7000\nexit', 'sum');
    const fillRo = withData('lddw %r1, 0\nmov %r2, 4\nmov %r3, 0x41\ncall 0x7001\nexit', [{ name: '.rodata', bytes: new Uint8Array(8), writable: false }], [{ slot: 0, section: 0, addend: 0 }]);
    const fillZero = withData('lddw %r1, 0\nmov %r2, 0\nmov %r3, 0x41\ncall 0x7001\nexit', [{ name: '.rodata', bytes: new Uint8Array(8), writable: false }], [{ slot: 0, section: 0, addend: 0 }]);
    const progs = [memcpyOob, sumOob, sumOk, fillRo, fillZero];
    const runs = await runDeviceBatch(progs.map((p) => ({ container: packBytecode(p), mem: ctx, budget: 100 })));
    expect(runs.map((r) => r.status)).toEqual([5, 5, 0, 5, 0]);
    expect(runs[0].pc).toBe(5);
    expect(runs[2].r0).toBe(BigInt(ctx.reduce((a, b) => a + b, 0)));
    expect(runs[4].r0).toBe(0n);
    // memcpy's refusal is the host's too.
    const host = interpret(memcpyOob, { mem: ctx, helpers: registry });
    expect(host.ok ? 'ok' : `${host.fault.kind} at ${host.fault.pc}`).toBe('helper at 5');
  }, 120_000);

  it('counts a program that uses exactly its budget as finished, one more instruction as a budget fault', async () => {
    const p = assembleProgram('mov %r0, 1\nadd %r0, 2\nadd %r0, 3\nexit', 'exact');
    const runs = await runDeviceBatch([4, 3, 0].map((budget) => ({ container: packBytecode(p), budget })));
    expect(runs.map((r) => `${r.status}:${r.steps}:${r.pc}`)).toEqual(['0:4:0', '3:3:3', '3:0:0']);
  }, 120_000);
});

/** Rewrites a container's code slot (after the 64-byte header) and fixes the checksum. */
function patched(container: Uint8Array, edit: (v: DataView, codeOff: number) => void): Uint8Array {
  const out = container.slice();
  const v = new DataView(out.buffer);
  edit(v, v.getUint32(H.CODE_OFF, true));
  v.setUint32(H.CRC, 0, true);
  v.setUint32(H.CRC, crc32(out), true);
  return out;
}

function thumbImage(text: string): Uint8Array {
  const p = assembleProgram(text, 'thumb');
  return compileThumb(p, thumbFacts(p)).image;
}

describe('the bytecode loader refuses malformed containers (and runs nothing)', () => {
  const good = packBytecode(assembleProgram('mov %r0, 1\nja +1\nmov %r0, 2\nlddw %r1, 5\nexit', 'good'));
  const slot = (k: number, code: number, regs: number, off: number, imm: number) => (v: DataView, at: number): void => {
    v.setUint8(at + 8 * k, code);
    v.setUint8(at + 8 * k + 1, regs);
    v.setInt16(at + 8 * k + 2, off, true);
    v.setInt32(at + 8 * k + 4, imm, true);
  };
  const bad: Array<{ name: string; bytes: Uint8Array; status: number; slot?: number }> = [
    { name: 'short', bytes: good.slice(0, 40), status: 16 },
    { name: 'magic (neither FCB1 nor FCT2)', bytes: patched(good, (v) => v.setUint32(H.MAGIC, 0x33424346, true)), status: 17 },
    { name: 'a Thumb image runs (the magic picks the loader)', bytes: thumbImage('mov %r0, 7\nexit'), status: 0 },
    { name: 'checksum', bytes: (() => { const b = good.slice(); b[good.length - 1] ^= 1; return b; })(), status: 20 },
    { name: 'size', bytes: (() => { const b = new Uint8Array(good.length + 4); b.set(good); return b; })(), status: 19 },
    { name: 'unknown opcode', bytes: patched(good, slot(2, 0xf7, 0, 0, 0)), status: FC_ERR_INSN, slot: 2 },
    { name: 'register 11', bytes: patched(good, slot(0, 0xb7, 0x0b, 0, 1)), status: FC_ERR_INSN, slot: 0 },
    { name: 'source register 12', bytes: patched(good, slot(2, 0xbf, 0xc0, 0, 0)), status: FC_ERR_INSN, slot: 2 },
    { name: 'reserved field', bytes: patched(good, slot(2, 0xb7, 0x00, 3, 2)), status: FC_ERR_INSN, slot: 2 },
    { name: 'jump past the end', bytes: patched(good, slot(1, 0x05, 0, 10, 0)), status: FC_ERR_INSN, slot: 1 },
    { name: 'jump before the start', bytes: patched(good, slot(1, 0x05, 0, -3, 0)), status: FC_ERR_INSN, slot: 1 },
    { name: 'jump into an lddw', bytes: patched(good, slot(1, 0x05, 0, 2, 0)), status: FC_ERR_INSN, slot: 1 },
    { name: 'lddw second slot not zero', bytes: patched(good, slot(4, 0x00, 0x01, 0, 0)), status: FC_ERR_INSN, slot: 3 },
    { name: 'lddw map reference', bytes: patched(good, slot(3, 0x18, 0x11, 0, 5)), status: FC_ERR_INSN, slot: 3 },
    { name: 'local call out of range', bytes: patched(good, slot(2, 0x85, 0x10, 0, 40)), status: FC_ERR_INSN, slot: 2 },
    { name: 'call by BTF id', bytes: patched(good, slot(2, 0x85, 0x20, 0, 1)), status: FC_ERR_INSN, slot: 2 },
    { name: 'no end slot', bytes: patched(good, slot(6, 0x95, 0, 0, 0)), status: 21 },
    { name: 'sdiv offset 2', bytes: patched(good, slot(2, 0x3f, 0x10, 2, 0)), status: FC_ERR_INSN, slot: 2 },
    { name: 'byte swap width 8', bytes: patched(good, slot(2, 0xd4, 0x00, 0, 8)), status: FC_ERR_INSN, slot: 2 },
    { name: 'atomic op', bytes: patched(good, slot(2, 0xdb, 0x10, 0, 0x10)), status: FC_ERR_INSN, slot: 2 },
    { name: 'version', bytes: patched(good, (v) => v.setUint16(H.VERSION, 2, true)), status: 18 },
    { name: 'entry on the end slot', bytes: patched(good, (v) => v.setUint32(H.ENTRY, 6 * 8, true)), status: 21 },
    { name: 'entry into an lddw', bytes: patched(good, (v) => v.setUint32(H.ENTRY, 4 * 8, true)), status: FC_ERR_INSN, slot: 4 },
  ];

  it('refuses each with its status (and the slot for instruction refusals)', async () => {
    const runs = await runDeviceBatch([...bad.map((b) => ({ container: b.bytes })), { container: good }]);
    const got = runs.map((r, i) => `${bad[i]?.name ?? 'good'}: ${r.status}${r.refusedSlot !== undefined ? ` slot ${r.refusedSlot}` : ''}${r.refused ? ' refused' : ''}`);
    const want = [
      ...bad.map((b) => `${b.name}: ${b.status}${b.slot !== undefined ? ` slot ${b.slot}` : ''}${b.status !== 0 ? ' refused' : ''}`),
      'good: 0',
    ];
    expect(got).toEqual(want);
    expect(runs[runs.length - 1].r0).toBe(1n);
    expect(runs[2].r0).toBe(7n);
  }, 120_000);

  it('the Thumb-only firmware refuses a bytecode container by its magic', async () => {
    const [run] = await runThumbBatch([{ image: good }]);
    expect(run).toMatchObject({ refused: true, status: 17 });
  }, 120_000);

  it('the engine turns a refusal into an error naming the instruction', async () => {
    const p = assembleProgram('mov %r0, 1\nexit', 'p');
    const run: DeviceRun = { status: FC_ERR_INSN, r0: 0n, pc: 0, addr: 0n, size: 0, write: false, hasAddr: false, steps: 0, insns: 0, canaryOk: true, refused: true, output: '', outputTruncated: false, refusedSlot: 0 };
    expect(() => deviceRunResult(run, p, undefined, 10)).toThrow(DeviceRefusedError);
    expect(() => deviceRunResult(run, p, undefined, 10)).toThrow(/instruction 0 \(mov %r0, 1\)/);
  });

  it('packBytecode refuses a relocation that is not at an lddw', () => {
    const p = withData('mov %r0, 1\nexit', [{ name: '.rodata', bytes: new Uint8Array(4), writable: false }], [{ slot: 0, section: 0, addend: 0 }]);
    expect(() => packBytecode(p)).toThrow(BytecodeError);
    expect(() => packBytecode(p)).toThrow(/slot 0/);
  });
});
