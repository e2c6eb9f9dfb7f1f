// The Thumb back end on the emulated Cortex-M4 (QEMU mps2-an386), end to end: the conformance
// suite (batch mode, with and without verifier facts, and through the engine and the conformance
// runner), the negative suite, the benchmark programs from real clang output, and generated
// programs, each compared with the reference interpreter (r0, fault kind and pc) and with the IR
// evaluator (budget consumed). Every run's canaries must be intact.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileIr, compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { parseDataFile, type DataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import type { IrModule } from '../compiler/ir/ir.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { loadVerified } from '../runtime/container.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { runThumbBatch, thumbEngine, thumbFirmware, toRunResult, type ThumbJob, type ThumbRun } from '../runtime/thumb-engine.js';
import { compileBpf, hasClang } from './support/clang.js';
import { CONFORMANCE_NEGATIVE, CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { generateProgram } from './support/progen.js';
import { REFERENCE_ENGINE, runSuite } from './support/suite.js';

beforeAll(async () => {
  expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
  expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
  await thumbFirmware();
}, 120_000);

const helpers = conformanceHelpers();
const BUDGET = 1_000_000;

/** What the interpreter and the board must agree on. */
function ending(r: RunResult): string {
  return r.ok ? `ok r0=0x${r.r0.toString(16)}` : `${r.fault.kind} at ${r.fault.pc}${r.fault.addr !== undefined ? ` addr=0x${r.fault.addr.toString(16)} size=${r.fault.size}` : ''}`;
}

interface Case {
  name: string;
  program: Program;
  mem?: Uint8Array;
  test?: DataFile;
}

function conformanceCases(): Case[] {
  return dataFiles(CONFORMANCE_TESTS).map((file) => {
    const test = parseDataFile(readFileSync(file, 'utf8'));
    const program = programOfTest(test, basename(file));
    verifyStructure(program, { helpers: helpers.ids() });
    return { name: basename(file), program, mem: test.mem, test };
  });
}

type Mode = 'facts' | 'nofacts-raw';

function compiled(c: Case, mode: Mode): { image: Uint8Array; ir: IrModule } {
  // 'nofacts-raw' skips the IR passes as well: every access checked, every instruction lowered.
  if (mode === 'facts') return compileThumb(c.program, thumbFacts(c.program, helpers.ids()));
  const ir = buildIr(c.program);
  return { image: compileIr(ir).image, ir };
}

interface Ran {
  run: ThumbRun;
  ir: IrModule;
}

async function runAll(cases: readonly Case[], mode: Mode, budget = BUDGET): Promise<Ran[]> {
  const built = cases.map((c) => compiled(c, mode));
  const runs = await runThumbBatch(cases.map((c, i): ThumbJob => ({ image: built[i].image, mem: c.mem, budget })));
  return runs.map((run, i) => ({ run, ir: built[i].ir }));
}

describe('the conformance suite on the board', () => {
  const cases = conformanceCases();

  it('has the 313 tests', () => {
    expect(cases).toHaveLength(313);
  });

  it.each(['facts', 'nofacts-raw'] as Mode[])('every test passes and ends as on the interpreter (%s)', async (mode) => {
    const runs = await runAll(cases, mode, 100_000_000);
    const wrong: string[] = [];
    runs.forEach(({ run }, i) => {
      const c = cases[i];
      expect(run.canaryOk, c.name).toBe(true);
      const got = toRunResult(run, c.program, c.mem, 100_000_000);
      const want = interpret(c.program, { mem: c.mem });
      const expected = c.test?.result;
      if (ending(got) !== ending(want) || !got.ok || got.r0 !== expected) wrong.push(`${c.name}: board ${ending(got)}, interpreter ${ending(want)}, expected ${expected}`);
    });
    expect(wrong).toEqual([]);
  }, 120_000);

  it('passes through the engine and the conformance runner (runs batched automatically)', async () => {
    const outcomes = await runSuite(CONFORMANCE_TESTS, thumbEngine, helpers);
    expect(outcomes.filter((o) => !o.pass).map((o) => `${o.name}: ${o.why}`)).toEqual([]);
    expect(outcomes).toHaveLength(313);
  }, 120_000);

  it('refuses every negative test that expects an error, and fails the malformed ones as the interpreter does', async () => {
    const files = dataFiles(CONFORMANCE_NEGATIVE);
    const board = await runSuite(CONFORMANCE_NEGATIVE, thumbEngine, helpers);
    const reference = await runSuite(CONFORMANCE_NEGATIVE, REFERENCE_ENGINE, helpers);
    const errorFiles = files.filter((f) => /^-- error/m.test(readFileSync(f, 'utf8')));
    expect(errorFiles.length).toBeGreaterThan(10);
    board.forEach((o, i) => {
      expect({ name: o.name, pass: o.pass }).toEqual({ name: reference[i].name, pass: reference[i].pass });
      expect(o.why).not.toMatch(/internal error/);
      if (errorFiles.includes(files[i])) expect({ name: o.name, pass: o.pass }).toEqual({ name: o.name, pass: true });
    });
  }, 120_000);

  it.each(['facts', 'nofacts-raw'] as Mode[])('reports the budget the IR charged, as the IR evaluator does (%s)', async (mode) => {
    const runs = await runAll(cases, mode);
    // Only the few tests with loops charge anything (straight-line code is never budgeted).
    expect(runs.filter((r) => r.run.steps > 0).length).toBeGreaterThan(mode === 'facts' ? 0 : 5);
    runs.forEach(({ run, ir }, i) => {
      const c = cases[i];
      const want = evalIr(ir, { mem: c.mem, budget: BUDGET, program: c.program });
      expect({ name: c.name, steps: run.steps }).toEqual({ name: c.name, steps: want.steps });
      expect(run.insns).toBeGreaterThan(0);
    });
  }, 120_000);
});

describe('benchmark programs (clang output) on the board', () => {
  it('compiles with clang 14 and clang-19 and returns what the interpreter returns', async () => {
    expect(hasClang('clang') && hasClang('clang-19'), 'clang and clang-19 are needed').toBe(true);
    const cases: Case[] = [];
    for (const p of PROGRAMS) {
      for (const [clang, mcpu] of [['clang', 'v3'], ['clang-19', 'v4']] as const) {
        const obj = compileBpf(sourcePath(p), { clang, mcpu });
        const { program } = loadVerified(obj, `${p.name}.${mcpu}.o`, { entry: p.name, helpers });
        cases.push({ name: `${p.name}.${mcpu}`, program, mem: p.input() });
      }
    }
    for (const mode of ['facts', 'nofacts-raw'] as Mode[]) {
      const runs = await runAll(cases, mode, 100_000_000);
      const got = runs.map(({ run: r }, i) => `${cases[i].name}: ${ending(toRunResult(r, cases[i].program, cases[i].mem, 100_000_000))}`);
      const want = cases.map((c) => `${c.name}: ${ending(interpret(c.program, { mem: c.mem, budget: 100_000_000 }))}`);
      expect(got).toEqual(want);
      expect(want.every((w) => w.includes(': ok '))).toBe(true);
    }
  }, 300_000);
});

describe('generated programs on the board', () => {
  const N = 320;
  const cases: Case[] = Array.from({ length: N }, (_, i) => {
    const g = generateProgram(1000 + i, { size: 40, callees: 3 });
    return { name: `progen:${1000 + i}`, program: g.program, mem: g.mem };
  });

  it.each(['facts', 'nofacts-raw'] as Mode[])(`${N} programs agree with the interpreter and the IR evaluator (%s)`, async (mode) => {
    const runs = await runAll(cases, mode);
    const mismatches: string[] = [];
    let faults = 0;
    runs.forEach(({ run, ir }, i) => {
      const c = cases[i];
      expect(run.canaryOk, c.name).toBe(true);
      const got = toRunResult(run, c.program, c.mem, BUDGET);
      const want = interpret(c.program, { mem: c.mem, budget: BUDGET });
      if (!got.ok) faults++;
      if (ending(got) !== ending(want)) mismatches.push(`${c.name}: board ${ending(got)}, interpreter ${ending(want)}`);
      const ev = evalIr(ir, { mem: c.mem, budget: BUDGET, program: c.program });
      if (ev.steps !== run.steps) mismatches.push(`${c.name}: board charged ${run.steps}, the IR evaluator ${ev.steps}`);
    });
    expect(mismatches).toEqual([]);
    // The generator makes faulting programs on purpose; they must be among the cases.
    expect(faults).toBeGreaterThan(10);
  }, 300_000);
});
