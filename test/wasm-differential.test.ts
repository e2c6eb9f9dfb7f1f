// Differential tests of the wasm engine against the reference interpreter: real clang output (every
// benchmark program, clang 14 -mcpu=v3 and clang-19 -mcpu=v4, on its benchmark input) and 2,000
// random programs from test/support/progen.ts (with the verifier's facts and the IR passes, and
// without either). Equal r0 on
// success; on a fault the same kind, and the same pc except for budget faults (an engine charges
// only unproven loops, so it runs out at another instruction). The budget the wasm engine charges
// must equal what the IR interpreter charges for the same IR.
import { afterAll, describe, expect, it } from 'vitest';
import { evalIr } from '../compiler/ir/eval.js';
import type { Program } from '../compiler/program.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers, type HelperRegistry } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import { loadVerified } from '../runtime/container.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';
import type { Access } from '../compiler/ir/ir.js';
import { compileBpf, removeScratch, type ClangName } from './support/clang.js';
import { generateProgram } from './support/progen.js';

afterAll(() => removeScratch());

/** What must agree between engines: r0, or the fault kind and (but for budget faults) its pc. */
function outcome(r: RunResult): string {
  if (r.ok) return `r0 = 0x${r.r0.toString(16)}`;
  return r.fault.kind === 'budget' ? 'budget' : `${r.fault.kind} at ${r.fault.pc}`;
}

function compare(program: Program, mem: Uint8Array, helpers: HelperRegistry, opts: WasmCompileOptions, label: string): RunResult {
  const want = new Interpreter(program, { helpers }).run({ mem });
  const got = instantiateWasm(program, compileToWasm(program, opts), helpers).run({ mem });
  expect(`${label}: ${outcome(got)}`).toBe(`${label}: ${outcome(want)}`);
  if (!got.ok && !want.ok && got.fault.kind !== 'budget') expect(got.fault.message).toBe(want.fault.message);
  return got;
}

describe('benchmark programs (clang output) on the wasm engine and the interpreter', () => {
  const builds: [ClangName, 'v3' | 'v4'][] = [['clang', 'v3'], ['clang-19', 'v4']];
  it('has the benchmark set', () => expect(PROGRAMS.length).toBeGreaterThanOrEqual(12));
  it.each(PROGRAMS.map((p) => [p.name, p] as const))('%s', (_name, p) => {
    for (const [clang, mcpu] of builds) {
      const obj = compileBpf(sourcePath(p), { clang, mcpu });
      const { program } = loadVerified(obj, `${p.name}.${mcpu}.o`, { entry: p.name, helpers: conformanceHelpers() });
      const input = p.input();
      const before = input.slice();
      const got = compare(program, input, conformanceHelpers(), {}, `${p.name} ${mcpu}`);
      compare(program, input, conformanceHelpers(), { facts: 'none' }, `${p.name} ${mcpu} (no facts)`);
      expect(got.ok).toBe(true);
      expect(input).toEqual(before);
      // The same instance again and again (it tiers up on the second run; programs that write their
      // input get a fresh copy every run): every run ends as the first, checked against the interpreter.
      const inst = instantiateWasm(program, compileToWasm(program), conformanceHelpers());
      for (let i = 0; i < 3; i++) expect(inst.run({ mem: input })).toEqual(got);
      // Charged budget = the IR interpreter's, on the very IR that was lowered.
      const compiled = compileToWasm(program);
      expect(instantiateWasm(program, compiled, conformanceHelpers()).run({ mem: input }).steps)
        .toBe(evalIr(compiled.ir, { mem: input, program }).steps);
      for (const f of compiled.ir.functions) for (const b of f.blocks) for (const i of b.insts) if ('access' in i) verdicts.push(i.access);
    }
  }, 60_000);

  const verdicts: Access[] = [];
  it('compiles with the verifier\'s facts: proven accesses and one-region checks both occur', () => {
    expect(verdicts.filter((a) => a.verdict === 'proven').length).toBeGreaterThan(10);
    expect(verdicts.filter((a) => a.verdict === 'check' && a.region !== undefined).length).toBeGreaterThan(0);
  });
});

describe('generated programs on the wasm engine and the interpreter', () => {
  const N = 2000;
  it(`${N} programs, with facts and IR passes (every fourth also without passes, or without facts)`, () => {
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= N; seed++) {
      const { program, mem } = generateProgram(seed);
      const r = compare(program, mem, conformanceHelpers(), {}, `seed ${seed}`);
      const k = r.ok ? 'ok' : r.fault.kind;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
      if (seed % 4 === 0) compare(program, mem, conformanceHelpers(), { optimize: false }, `seed ${seed} (no passes)`);
      if (seed % 4 === 2) compare(program, mem, conformanceHelpers(), { facts: 'none' }, `seed ${seed} (no facts)`);
      if (seed % 20 === 0) {
        // The budget charged is the IR interpreter's on the very IR that was lowered (with and without facts).
        for (const facts of ['analyze', 'none'] as const) {
          const compiled = compileToWasm(program, { facts });
          const got = instantiateWasm(program, compiled, conformanceHelpers()).run({ mem });
          expect(got.steps).toBe(evalIr(compiled.ir, { mem, program }).steps);
        }
      }
    }
    // The generator exercises both ends: most programs finish, some fault on purpose.
    expect(kinds.get('ok') ?? 0).toBeGreaterThan(N / 2);
    expect(N - (kinds.get('ok') ?? 0)).toBeGreaterThan(10);
  }, 300_000);
});
