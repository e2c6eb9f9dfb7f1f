// The Wasm JIT's tiers: a baseline module (compileToWasm tier 'baseline': no IR passes, no loop
// copies) that the instance replaces on its second run with optimised code, sized for a steady
// context length when that length proves more, else for any length. Checked here: which module
// each run enters (the policy), that every run ends as the reference interpreter says (r0, or the
// fault's kind, pc and message) across the switches, that the budget charged and budget faults do
// not depend on the tier, that the resident context and the stack survive a switch, and that the
// baseline and optimised modules end every run identically (r0, steps, fault kind, pc, address,
// message) on the benchmark programs, generated programs and the conformance suite.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import { printIr } from '../compiler/ir/text.js';
import { programFacts } from '../compiler/frontend.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { loadVerified } from '../runtime/container.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import {
  compileToWasm, instantiateWasm, instantiateWasmAsync, wasmEngine, type WasmInstance, type WasmTierOptions,
} from '../runtime/wasm-engine.js';
import { compileBpf, removeScratch } from './support/clang.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { generateProgram } from './support/progen.js';

afterAll(() => removeScratch());

const asm = (lines: string[], name: string): Program => assembleProgram(lines.join('\n'), name);

/** An instance starting on the baseline module, as the engine makes one. */
function tiered(program: Program, tiers: WasmTierOptions = {}): WasmInstance {
  return instantiateWasm(program, compileToWasm(program, { facts: programFacts(program), tier: 'baseline' }), conformanceHelpers(), tiers);
}

/** One module for every run: the baseline or the optimised one. */
function single(program: Program, tier: 'baseline' | 'optimized', facts: 'none' | undefined = undefined): WasmInstance {
  return instantiateWasm(program, compileToWasm(program, { facts: facts ?? programFacts(program), tier }), conformanceHelpers(), { tierUp: false, specialize: false });
}

function outcome(r: RunResult) {
  return r.ok ? { r0: r.r0 } : { kind: r.fault.kind, pc: r.fault.pc, message: r.fault.message };
}
function oracle(program: Program, mem: Uint8Array | undefined, budget?: number) {
  return outcome(new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem: mem?.slice(), budget }));
}
const show = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

const bytes = (len: number, seed = 1): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 17 + 5) & 0xff);

/** Which module a run entered, from the stats before and after it. */
function entered(inst: WasmInstance, run: () => RunResult): { where: string; result: RunResult } {
  const a = inst.tierStats();
  const result = run();
  const b = inst.tierStats();
  const where = b.sizedRuns > a.sizedRuns ? 'sized' : b.baselineRuns > a.baselineRuns ? 'baseline' : b.genericRuns > a.genericRuns ? 'optimized' : 'none';
  return { where, result };
}

// Fixed-offset reads up to byte 63: all checked for an unknown length, all proven for 64.
const HEADER = asm([
  'ldxb %r0, [%r1+0]', 'ldxh %r3, [%r1+2]', 'add %r0, %r3', 'ldxw %r3, [%r1+12]', 'add %r0, %r3',
  'ldxdw %r3, [%r1+48]', 'add %r0, %r3', 'ldxb %r3, [%r1+63]', 'lsh %r3, 40', 'add %r0, %r3', 'exit',
], 'header');

// Every access bounded by a comparison with the length: a length proves nothing more.
const SUM = asm([
  'mov %r0, 0', 'mov %r3, 0', 'jeq %r2, 0, done',
  'loop:', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, loop',
  'ldxb %r5, [%r1+0]', 'add %r5, 1', 'stxb [%r1+0], %r5',
  'done:', 'exit',
], 'sum-and-bump');

// A loop whose trip count is a context word (not provably bounded: charged), after fixed-offset reads.
const COUNTED = asm([
  'ldxw %r0, [%r1+4]', 'ldxw %r3, [%r1+16]', 'ldxh %r5, [%r1+30]', 'add %r0, %r5',
  'loop:', 'jeq %r3, 0, done', 'add %r0, %r3', 'sub %r3, 1', 'ja loop',
  'done:', 'exit',
], 'counted');

// Byte 0 picks the byte read (out of bounds for large picks), which is written back to byte 1.
const INDEXED = asm([
  'ldxw %r0, [%r1+8]', 'ldxb %r3, [%r1+0]', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5',
  'stxb [%r1+1], %r5', 'exit',
], 'indexed');

describe('the tier-up policy', () => {
  it('a steady length that proves more tiers up to sized code; other lengths then to the optimised module', () => {
    const inst = tiered(HEADER);
    expect(inst.compiled.tier).toBe('baseline');
    const where: string[] = [];
    for (const [i, len] of [64, 64, 16, 16, 64, 30, 0, 64].entries()) {
      const mem = bytes(len, i);
      const { where: w, result } = entered(inst, () => inst.run({ mem }));
      expect(outcome(result)).toEqual(oracle(HEADER, mem));
      where.push(w);
    }
    expect(where).toEqual(['baseline', 'sized', 'baseline', 'optimized', 'sized', 'optimized', 'optimized', 'sized']);
    const stats = inst.tierStats();
    expect(stats).toMatchObject({ genericTier: 'optimized', sizedLen: 64, baselineRuns: 2, genericRuns: 5, sizedRuns: 3 });
    expect(stats.compiles.map((c) => [c.target, c.len, c.outcome])).toEqual([['sized', 64, 'used'], ['optimized', -1, 'used']]);
    expect(stats.compiles[0].proven).toBeGreaterThan(stats.compiles[0].provenGeneric);
    expect(stats.compiles[1].codeBytes).toBeGreaterThan(0);
  });

  it('a steady length that proves nothing more is declined, and the same run tiers up to the optimised module', () => {
    const inst = tiered(SUM);
    const where: string[] = [];
    for (let i = 0; i < 4; i++) {
      const mem = bytes(40, i);
      const { where: w, result } = entered(inst, () => inst.run({ mem }));
      expect(outcome(result)).toEqual(oracle(SUM, mem));
      where.push(w);
    }
    expect(where).toEqual(['baseline', 'optimized', 'optimized', 'optimized']);
    const { compiles } = inst.tierStats();
    expect(compiles.map((c) => [c.target, c.outcome.startsWith('this length proves no access') ? 'declined' : c.outcome])).toEqual([['sized', 'declined'], ['optimized', 'used']]);
  });

  it('changing lengths tier up to the optimised module; a length that becomes steady later gets its sized tier', () => {
    const inst = tiered(HEADER);
    const where = [100, 80, 80, 80].map((len, i) => {
      const mem = bytes(len, i);
      const e = entered(inst, () => inst.run({ mem }));
      expect(outcome(e.result)).toEqual(oracle(HEADER, mem));
      return e.where;
    });
    expect(where).toEqual(['baseline', 'optimized', 'sized', 'sized']);
    expect(inst.tierStats().compiles.map((c) => c.target)).toEqual(['optimized', 'sized']);
  });

  it('runs without mem count towards the tier-up like any other', () => {
    const inst = tiered(HEADER);
    const where = [undefined, undefined, undefined].map(() => entered(inst, () => inst.run()).where);
    expect(where).toEqual(['baseline', 'optimized', 'optimized']);
    expect(inst.run()).toEqual(single(HEADER, 'baseline').run());
  });

  it('tierUpRuns sets the run that tiers up; tierUp: false keeps the baseline module (sized tiers still come)', () => {
    const late = tiered(SUM, { tierUpRuns: 5 });
    const where = [0, 1, 2, 3, 4, 5].map((i) => entered(late, () => late.run({ mem: bytes(10 + i) })).where);
    expect(where).toEqual(['baseline', 'baseline', 'baseline', 'baseline', 'optimized', 'optimized']);
    const first = tiered(SUM, { tierUpRuns: 1 });
    expect(entered(first, () => first.run({ mem: bytes(12) })).where).toBe('optimized');

    const stay = tiered(HEADER, { tierUp: false });
    const w2 = [64, 64, 16, 16, 16].map((len) => entered(stay, () => stay.run({ mem: bytes(len) })).where);
    expect(w2).toEqual(['baseline', 'sized', 'baseline', 'baseline', 'baseline']);
    const one = tiered(HEADER, { tierUp: false, specialize: false });
    for (let i = 0; i < 4; i++) one.run({ mem: bytes(64) });
    expect(one.tierStats()).toEqual({ genericTier: 'baseline', sizedLen: undefined, genericRuns: 4, baselineRuns: 4, sizedRuns: 0, compiles: [] });
  });

  it('specializeFor on a baseline module: the sized tier at once, other lengths tier up to the optimised module', () => {
    const inst = tiered(HEADER, { specializeFor: 64 });
    expect(inst.tierStats().compiles.map((c) => c.target)).toEqual(['sized']);
    const where = [64, 20, 20, 64, 20].map((len, i) => {
      const mem = bytes(len, i);
      const e = entered(inst, () => inst.run({ mem }));
      expect(outcome(e.result)).toEqual(oracle(HEADER, mem));
      return e.where;
    });
    expect(where).toEqual(['sized', 'baseline', 'optimized', 'sized', 'optimized']);
  });

  it('optimize() tiers up on demand, once; an optimised module has nothing to tier up', () => {
    const inst = tiered(SUM);
    expect(inst.optimize().outcome).toBe('used');
    expect(inst.optimize().outcome).toMatch(/optimised already/);
    expect(entered(inst, () => inst.run({ mem: bytes(9) })).where).toBe('optimized');
    const opt = single(SUM, 'optimized');
    expect(opt.optimize().outcome).toMatch(/optimised already/);
    expect(opt.tierStats().genericTier).toBe('optimized');
  });

  it('facts: none stays checked everywhere: the tier-up keeps them, and no sized tier is made', () => {
    const compiled = compileToWasm(HEADER, { facts: 'none', tier: 'baseline' });
    const inst = instantiateWasm(HEADER, compiled, conformanceHelpers());
    const where = [64, 64, 64].map((i) => entered(inst, () => inst.run({ mem: bytes(i) })).where);
    expect(where).toEqual(['baseline', 'optimized', 'optimized']);
    expect(inst.tierStats().compiles).toMatchObject([{ target: 'optimized', proven: 0, outcome: 'used' }]);
  });

  it("'async': the runs go on with the baseline module until the new one is ready", async () => {
    const inst = await instantiateWasmAsync(HEADER, compileToWasm(HEADER, { tier: 'baseline' }), conformanceHelpers());
    const mem = bytes(64);
    expect(entered(inst, () => inst.run({ mem })).where).toBe('baseline');
    expect(entered(inst, () => inst.run({ mem })).where).toBe('baseline');
    await inst.tierSettled();
    expect(entered(inst, () => inst.run({ mem })).where).toBe('sized');
    // A declined length falls back to the optimised module in the same later task.
    const sum = await instantiateWasmAsync(SUM, compileToWasm(SUM, { tier: 'baseline' }), conformanceHelpers());
    for (let i = 0; i < 3; i++) expect(outcome(sum.run({ mem: bytes(30) }))).toEqual(oracle(SUM, bytes(30)));
    await sum.tierSettled();
    expect(entered(sum, () => sum.run({ mem: bytes(30) })).where).toBe('optimized');
    expect(sum.tierStats().baselineRuns).toBe(3);
  });

  it('the engine starts on the baseline module with the load\'s facts and tiers up', async () => {
    const { program, facts } = loadVerified(
      new TextEncoder().encode('-- asm\nldxb %r0, [%r1+0]\nldxw %r3, [%r1+12]\nadd %r0, %r3\nexit\n-- mem\n00\n-- result\n0x0\n'),
      'load.data', { helpers: conformanceHelpers() },
    );
    const runnable = (await wasmEngine.prepare(program, conformanceHelpers(), facts)) as WasmInstance;
    expect(runnable.compiled).toMatchObject({ tier: 'baseline', facts });
    const mem = bytes(32);
    for (let i = 0; i < 2; i++) expect(outcome(await runnable.run({ mem }))).toEqual(oracle(program, mem));
    await runnable.tierSettled();
    expect(outcome(await runnable.run({ mem }))).toEqual(oracle(program, mem));
    expect(runnable.tierStats()).toMatchObject({ sizedLen: 32, sizedRuns: 1, baselineRuns: 2 });
  });
});

describe('runs across the switch', () => {
  it('budget faults and the budget charged do not depend on the tier', () => {
    const withCount = (count: number, len = 64): Uint8Array => {
      const mem = bytes(len, count);
      new DataView(mem.buffer).setUint32(16, count, true);
      return mem;
    };
    const cases = [[0, 10], [5, 1000], [200, 100], [200, 5000], [255, 0], [3, 12], [3, 11], [1e6, 1e9], [40, 150], [40, 40]] as const;
    // Lengths 64, 64 (steady: sized), 48 (baseline, optimised from its second run), and again.
    const inst = tiered(COUNTED);
    const base = single(COUNTED, 'baseline');
    const opt = single(COUNTED, 'optimized');
    const seen = new Set<string>();
    let faults = 0;
    for (const [k, [count, budget]] of cases.entries()) {
      for (const len of [64, 64, 48]) {
        const mem = withCount(count, len);
        const { where, result } = entered(inst, () => inst.run({ mem, budget }));
        seen.add(where);
        expect(result).toEqual(base.run({ mem, budget }));
        expect(result).toEqual(opt.run({ mem, budget }));
        if (result.ok) expect(outcome(result)).toEqual(oracle(COUNTED, mem, budget));
        else faults++;
        // Charged = the IR interpreter's on the baseline module's IR.
        if (k === 1) expect(result.steps).toBe(evalIr(base.compiled.ir, { mem, program: COUNTED }).steps);
      }
    }
    expect([...seen].sort()).toEqual(['baseline', 'optimized', 'sized']);
    expect(faults).toBeGreaterThan(4);
  });

  it('faults end as the interpreter says, with the same address, on every tier', () => {
    const inst = tiered(INDEXED);
    const base = single(INDEXED, 'baseline');
    const seen = new Set<string>();
    for (const [len, pick] of [[64, 3], [64, 63], [64, 64], [64, 200], [70, 66], [64, 0], [32, 40], [32, 31], [64, 100]] as const) {
      const mem = bytes(len, pick);
      mem[0] = pick;
      const { where, result } = entered(inst, () => inst.run({ mem }));
      seen.add(where);
      expect(outcome(result)).toEqual(oracle(INDEXED, mem));
      expect(result).toEqual(base.run({ mem }));
      if (pick >= len) expect(result).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', pc: 4, addr: BigInt(inst.compiled.layout.memBase + pick), size: 1 } });
    }
    expect([...seen].sort()).toEqual(['baseline', 'optimized', 'sized']);
  });

  it('the resident context stays put across the switches: views made before still see the runs', () => {
    const inst = tiered(SUM);
    const input = bytes(100, 7);
    const view = inst.contextView(100);
    view.set(input);
    const ctx = input.slice();
    const where: string[] = [];
    for (let i = 0; i < 4; i++) {
      const e = entered(inst, () => inst.runResident(100));
      where.push(e.where);
      expect(outcome(e.result)).toEqual(oracle(SUM, ctx));
      // The program bumps byte 0 in place, in the memory every tier shares.
      ctx[0] = (ctx[0] + 1) & 0xff;
      expect(view).toEqual(ctx);
    }
    expect(where).toEqual(['baseline', 'optimized', 'optimized', 'optimized']);
    // A header on a tier sized for its length, read from the same resident bytes.
    const h = tiered(HEADER);
    const hv = h.contextView(64);
    hv.set(bytes(64, 2));
    const hw = [0, 1, 2].map(() => entered(h, () => h.runResident(64)));
    expect(hw.map((e) => e.where)).toEqual(['baseline', 'sized', 'sized']);
    for (const e of hw) expect(outcome(e.result)).toEqual(oracle(HEADER, bytes(64, 2)));
    // A longer context grows the shared memory: every tier sees it.
    const big = bytes(300_000, 3);
    h.contextView(big.length).set(big);
    expect(outcome(h.runResident(big.length))).toEqual(oracle(HEADER, big));
    expect(outcome(h.runResident(big.length))).toEqual(oracle(HEADER, big));
    expect(h.tierStats().genericTier).toBe('optimized');
  });

  it('the stack a module wrote is clear when another runs', () => {
    // Reads a stack slot before writing it (0 on a fresh stack) and through a mem-derived offset.
    const p = asm([
      'ldxdw %r0, [%r10-16]', 'ldxb %r3, [%r1+40]', 'and %r3, 7', 'lsh %r3, 3', 'mov %r4, %r10', 'sub %r4, 64', 'add %r4, %r3',
      'ldxdw %r5, [%r4+0]', 'add %r0, %r5', 'stdw [%r10-16], 7', 'stxdw [%r4+0], %r3', 'ldxw %r5, [%r1+44]', 'add %r0, %r5', 'exit',
    ], 'stack');
    const inst = tiered(p);
    const seen = new Set<string>();
    for (const [i, len] of [48, 48, 60, 60, 48, 60, 48, 60].entries()) {
      const mem = bytes(len, i);
      const e = entered(inst, () => inst.run({ mem }));
      seen.add(e.where);
      expect(outcome(e.result)).toEqual(oracle(p, mem));
    }
    expect([...seen].sort()).toEqual(['baseline', 'optimized', 'sized']);
  });
});

describe('the baseline module', () => {
  it('lowers the builder\'s IR as it is (no passes)', () => {
    const facts = programFacts(HEADER);
    const c = compileToWasm(HEADER, { facts, tier: 'baseline' });
    expect(printIr(c.ir)).toBe(printIr(buildIr(HEADER, facts)));
    expect(c.tier).toBe('baseline');
    expect(compileToWasm(HEADER, { facts }).tier).toBe('optimized');
    expect(() => compileToWasm(HEADER, { tier: 'fast' as 'baseline' })).toThrow(/tier must be 'baseline' or 'optimized'/);
  });

  it.each(PROGRAMS.map((p) => [p.name, p] as const))('%s (clang 14 and clang-19): baseline and optimised end every run alike', (_n, p) => {
    for (const [clang, mcpu] of [['clang', 'v3'], ['clang-19', 'v4']] as const) {
      const obj = compileBpf(sourcePath(p), { clang, mcpu });
      const { program, facts } = loadVerified(obj, `${p.name}.${mcpu}.o`, { entry: p.name, helpers: conformanceHelpers() });
      const mk = (tier: 'baseline' | 'optimized') =>
        instantiateWasm(program, compileToWasm(program, { facts, tier }), conformanceHelpers(), { tierUp: false, specialize: false });
      const base = mk('baseline');
      const opt = mk('optimized');
      const input = p.input();
      const full = base.run({ mem: input });
      expect(full.ok).toBe(true);
      expect(outcome(full)).toEqual(oracle(program, input));
      expect(full).toEqual(opt.run({ mem: input }));
      // Budgets around what the run is charged, a shorter context, none at all.
      const s = full.steps;
      for (const budget of [0, 1, s >> 1, s - 1, s]) {
        const a = base.run({ mem: input, budget });
        expect({ budget, ...a }).toEqual({ budget, ...opt.run({ mem: input, budget }) });
        if (budget < s) expect(a).toMatchObject({ ok: false, fault: { kind: 'budget' } });
      }
      for (const mem of [input.subarray(0, input.length >> 1), input.subarray(0, 3), undefined]) {
        const a = base.run({ mem });
        expect(a).toEqual(opt.run({ mem }));
        expect(outcome(a)).toEqual(oracle(program, mem));
      }
      // And a tiered instance over all of these lengths.
      const t = instantiateWasm(program, compileToWasm(program, { facts, tier: 'baseline' }), conformanceHelpers());
      for (const mem of [input, input, input.subarray(0, 3), input, input.subarray(0, 3)]) expect(t.run({ mem })).toEqual(base.run({ mem }));
    }
  }, 60_000);

  it('300 generated programs: baseline, optimised and tiered runs end alike, as the interpreter says', () => {
    let faults = 0;
    let steps = 0;
    let budgetFaults = 0;
    let sized = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { program, mem } = generateProgram(seed);
      const base = single(program, 'baseline');
      const opt = single(program, 'optimized');
      const t = tiered(program);
      const shorter = mem.subarray(0, mem.length >> 1);
      for (const [m, budget] of [[mem, undefined], [mem, 7], [shorter, undefined], [mem, undefined], [shorter, 40], [mem, 40]] as const) {
        const a = base.run({ mem: m, budget });
        const label = `seed ${seed} len ${m.length} budget ${budget}`;
        expect(`${label}: ${show(opt.run({ mem: m, budget }))}`).toBe(`${label}: ${show(a)}`);
        expect(`${label}: ${show(t.run({ mem: m, budget }))}`).toBe(`${label}: ${show(a)}`);
        if (budget === undefined) expect(`${label}: ${show(outcome(a))}`).toBe(`${label}: ${show(oracle(program, m))}`);
        if (!a.ok) faults++;
      }
      // Without facts every loop is charged: budgets that run out inside loops, on both tiers alike.
      if (seed % 3 === 0) {
        const nb = single(program, 'baseline', 'none');
        const no = single(program, 'optimized', 'none');
        for (const budget of [undefined, 7, 40, 300]) {
          const a = nb.run({ mem, budget });
          const label = `seed ${seed} facts none budget ${budget}`;
          expect(`${label}: ${show(no.run({ mem, budget }))}`).toBe(`${label}: ${show(a)}`);
          steps += a.steps;
          if (!a.ok && a.fault.kind === 'budget') budgetFaults++;
        }
      }
      // Sized at the second run or not, the module for any length is optimised by the fifth.
      const stats = t.tierStats();
      expect(stats).toMatchObject({ genericTier: 'optimized' });
      expect(stats.baselineRuns).toBeLessThanOrEqual(2);
      if (stats.sizedRuns > 0) sized++;
    }
    expect(sized).toBeGreaterThan(200);
    expect(faults).toBeGreaterThan(50);
    expect(steps).toBeGreaterThan(10000);
    expect(budgetFaults).toBeGreaterThan(60);
  }, 300_000);

  it('every conformance test runs on the baseline module and across the tier-up as the interpreter does', () => {
    let n = 0;
    for (const f of dataFiles(CONFORMANCE_TESTS)) {
      const test = parseDataFile(readFileSync(f, 'utf8'));
      let program: Program;
      try {
        program = programOfTest(test, basename(f));
      } catch {
        continue;
      }
      const t = tiered(program);
      const base = single(program, 'baseline');
      const mem = test.mem.length === 0 ? undefined : test.mem;
      for (let i = 0; i < 3; i++) {
        const r = t.run({ mem });
        expect({ f, ...outcome(r) }).toEqual({ f, ...oracle(program, mem) });
        expect({ f, ...base.run({ mem }) }).toEqual({ f, ...r });
      }
      n++;
    }
    expect(n).toBeGreaterThan(250);
  });
});
