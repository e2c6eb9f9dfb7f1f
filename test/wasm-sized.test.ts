// The Wasm engine's sized tier: a second module compiled with the verifier's facts for one mem
// length, sharing the generic instance's memory, entered only by runs of that length. Every run is
// compared with the reference interpreter (r0, or the fault's kind, pc and message) while lengths
// change between runs; `steps` and budget faults are compared with the generic module
// (specialize: false), since only blocks of unproven loops are charged.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { programFacts } from '../compiler/frontend.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { sizedFacts } from '../backends/wasm/compile.js';
import { loadVerified } from '../runtime/container.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import {
  compileToWasm, instantiateWasm, instantiateWasmAsync, wasmEngine, WasmRunError, type WasmInstance, type WasmTierOptions,
} from '../runtime/wasm-engine.js';
import { compileBpf, removeScratch } from './support/clang.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { generateProgram } from './support/progen.js';

afterAll(() => removeScratch());

const asm = (lines: string[], name: string): Program => assembleProgram(lines.join('\n'), name);

function instance(program: Program, tiers: WasmTierOptions = {}): WasmInstance {
  return instantiateWasm(program, compileToWasm(program, { facts: programFacts(program) }), conformanceHelpers(), tiers);
}

/** What must equal the interpreter's: r0, or the fault's kind, pc and message. */
function outcome(r: RunResult) {
  return r.ok ? { r0: r.r0 } : { kind: r.fault.kind, pc: r.fault.pc, message: r.fault.message };
}
function oracle(program: Program, mem: Uint8Array | undefined, budget?: number) {
  return outcome(new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem: mem?.slice(), budget }));
}

const bytes = (len: number, seed = 1): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 17 + 5) & 0xff);

// Reads fields at fixed offsets up to byte 63: all checked for an unknown length, all proven for 64.
const HEADER = asm([
  'ldxb %r0, [%r1+0]', 'ldxh %r3, [%r1+2]', 'add %r0, %r3', 'ldxw %r3, [%r1+12]', 'add %r0, %r3',
  'ldxdw %r3, [%r1+48]', 'add %r0, %r3', 'ldxb %r3, [%r1+63]', 'lsh %r3, 40', 'add %r0, %r3', 'exit',
], 'header');

// The same reads, then a byte past the end of a 64-byte context: a path that always faults at 64.
const PAST_END = asm([
  'ldxb %r0, [%r1+0]', 'ldxw %r3, [%r1+60]', 'add %r0, %r3', 'ldxb %r3, [%r1+70]', 'add %r0, %r3', 'exit',
], 'past-end');

// A data-dependent offset: byte 0 picks which byte to read, in bounds at 64 only for small values.
const INDEXED = asm([
  'ldxw %r0, [%r1+8]', 'ldxb %r3, [%r1+0]', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5',
  'stxb [%r1+1], %r5', 'exit',
], 'indexed');

// A loop whose trip count is a word of the context (up to 2^32: not provably bounded), after fixed-offset reads.
const COUNTED = asm([
  'ldxw %r0, [%r1+4]', 'ldxw %r3, [%r1+16]', 'ldxh %r5, [%r1+30]', 'add %r0, %r5',
  'loop:', 'jeq %r3, 0, done', 'add %r0, %r3', 'sub %r3, 1', 'ja loop',
  'done:', 'exit',
], 'counted');

describe('dispatch by length', () => {
  it('runs of lengths L, L, other, L, ... end as the interpreter says, on the tier for their length', () => {
    const inst = instance(HEADER);
    const lengths = [64, 64, 16, 64, 100, 64, 63, 0, 64, 64, 65];
    const tiers: string[] = [];
    for (const [i, len] of lengths.entries()) {
      const mem = bytes(len, i);
      const before = inst.tierStats();
      expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
      const after = inst.tierStats();
      tiers.push(after.sizedRuns > before.sizedRuns ? 'sized' : 'generic');
    }
    // The second run of 64 makes it steady and already runs sized; no other length ever does.
    expect(tiers).toEqual(['generic', 'sized', 'generic', 'sized', 'generic', 'sized', 'generic', 'generic', 'sized', 'sized', 'generic']);
    const stats = inst.tierStats();
    expect(stats.sizedLen).toBe(64);
    expect(stats.compiles).toHaveLength(1);
    expect(stats.compiles[0]).toMatchObject({ len: 64, outcome: 'used' });
    expect(stats.compiles[0].proven).toBeGreaterThan(stats.compiles[0].provenGeneric);
  });

  it('a run with another length never reaches the sized module, even with stale bytes past its end', () => {
    const inst = instance(HEADER, { specializeFor: 64 });
    const full = bytes(64, 3);
    expect(outcome(inst.run({ mem: full }))).toEqual(oracle(HEADER, full));
    expect(inst.tierStats()).toMatchObject({ sizedLen: 64, sizedRuns: 1, genericRuns: 0 });
    // Bytes 16..63 of the memory still hold the last context: the sized code (no checks) would
    // read them and return a value; the generic module checks and faults as the interpreter does.
    for (const len of [16, 63, 65, 1]) {
      const mem = full.subarray(0, Math.min(len, 64));
      const r = inst.run({ mem: len > 64 ? bytes(len) : mem });
      expect(outcome(r)).toEqual(oracle(HEADER, len > 64 ? bytes(len) : mem));
      if (len < 64) expect(r).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds' } });
    }
    const resident = inst.contextView(20);
    resident.set(full.subarray(0, 20));
    expect(outcome(inst.runResident(20))).toEqual(oracle(HEADER, full.subarray(0, 20)));
    // No mem at all is never the sized length either.
    expect(outcome(inst.run())).toEqual(oracle(HEADER, undefined));
    expect(inst.tierStats()).toMatchObject({ sizedRuns: 1, genericRuns: 6 });
  });

  it('a module compiled for one length refuses to be entered with another (the dispatch check)', () => {
    const compiled = compileToWasm(HEADER, { memSize: 64 });
    expect(compiled.memSize).toBe(64);
    const inst = instantiateWasm(HEADER, compiled, conformanceHelpers());
    const mem = bytes(64);
    expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    expect(() => inst.run({ mem: bytes(16) })).toThrow(WasmRunError);
    expect(() => inst.runResident(63)).toThrow(/exactly 64 bytes; this run's mem has 63 bytes/);
    expect(() => inst.run()).toThrow(/mem is absent/);
    // It never specialises further: its facts already assume the length.
    expect(inst.tierStats().compiles).toHaveLength(0);
    expect(() => compileToWasm(HEADER, { memSize: -1 })).toThrow(RangeError);
  });

  it('with specialize: false every run is on the generic module', () => {
    const inst = instance(HEADER, { specialize: false, specializeFor: 64 });
    for (let i = 0; i < 5; i++) {
      const mem = bytes(64, i);
      expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    }
    expect(inst.tierStats()).toEqual({ genericTier: 'optimized', sizedLen: undefined, genericRuns: 5, baselineRuns: 0, sizedRuns: 0, compiles: [] });
    // A module asked to check everything gets no tier with facts either.
    const none = instantiateWasm(HEADER, compileToWasm(HEADER, { facts: 'none' }), conformanceHelpers());
    for (let i = 0; i < 3; i++) none.run({ mem: bytes(64) });
    expect(none.tierStats().sizedRuns).toBe(0);
  });
});

describe('policy', () => {
  it('another length replaces the tier only after replaceRuns runs in a row, and compiles are capped', () => {
    const inst = instance(HEADER, { replaceRuns: 4, maxCompiles: 2 });
    const run = (len: number): void => {
      const mem = bytes(len, len);
      expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    };
    run(64);
    run(64);
    expect(inst.tierStats().sizedLen).toBe(64);
    // Alternating lengths never form a streak.
    for (let i = 0; i < 10; i++) run(i % 2 === 0 ? 80 : 64);
    expect(inst.tierStats().compiles).toHaveLength(1);
    for (let i = 0; i < 3; i++) run(80);
    expect(inst.tierStats().sizedLen).toBe(64);
    run(80);
    expect(inst.tierStats()).toMatchObject({ sizedLen: 80, sizedRuns: 1 });
    // 64 is the generic module's again, and a third compile is over the cap.
    for (let i = 0; i < 8; i++) run(64);
    expect(inst.tierStats()).toMatchObject({ sizedLen: 80 });
    expect(inst.tierStats().compiles.map((c) => c.len)).toEqual([64, 80]);
  });

  it('a length that proves nothing more is declined once, not retried on every run', () => {
    // Every access is bounded by a comparison with the length: proven for any length already.
    const sum = asm([
      'mov %r0, 0', 'mov %r3, 0', 'jeq %r2, 0, done',
      'loop:', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, loop',
      'done:', 'exit',
    ], 'sum');
    const inst = instance(sum);
    for (let i = 0; i < 6; i++) {
      const mem = bytes(40, i);
      expect(outcome(inst.run({ mem }))).toEqual(oracle(sum, mem));
    }
    const { compiles } = inst.tierStats();
    expect(compiles).toHaveLength(1);
    expect(compiles[0].outcome).toMatch(/proves no access/);
    expect(inst.tierStats()).toMatchObject({ sizedLen: undefined, genericRuns: 6 });
  });

  it("'async': the run that makes the length steady stays generic; the tier is used once ready", async () => {
    const inst = await instantiateWasmAsync(HEADER, compileToWasm(HEADER), conformanceHelpers());
    const mem = bytes(64);
    expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    expect(inst.tierStats()).toMatchObject({ genericRuns: 2, sizedRuns: 0 });
    await inst.tierSettled();
    expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
    expect(inst.tierStats()).toMatchObject({ sizedLen: 64, genericRuns: 2, sizedRuns: 1 });
    const ready = await instantiateWasmAsync(HEADER, compileToWasm(HEADER), conformanceHelpers(), { specializeFor: 64 });
    expect(outcome(ready.run({ mem }))).toEqual(oracle(HEADER, mem));
    expect(ready.tierStats()).toMatchObject({ sizedRuns: 1, genericRuns: 0 });
  });

  it('the engine takes the load\'s facts for the generic module and tiers up asynchronously', async () => {
    const { program, facts } = loadVerified(
      new TextEncoder().encode('-- asm\nldxb %r0, [%r1+0]\nldxw %r3, [%r1+12]\nadd %r0, %r3\nexit\n-- mem\n00\n-- result\n0x0\n'),
      'load.data', { helpers: conformanceHelpers() },
    );
    const runnable = (await wasmEngine.prepare(program, conformanceHelpers(), facts)) as WasmInstance;
    expect(runnable.compiled.facts).toBe(facts);
    const mem = bytes(32);
    for (let i = 0; i < 2; i++) expect(outcome(await runnable.run({ mem }))).toEqual(oracle(program, mem));
    await runnable.tierSettled();
    expect(outcome(await runnable.run({ mem }))).toEqual(oracle(program, mem));
    expect(runnable.tierStats()).toMatchObject({ sizedLen: 32, sizedRuns: 1 });
  });
});

describe('faults on the sized tier', () => {
  it('an access past the end at length L faults exactly as the interpreter does', () => {
    const inst = instance(PAST_END, { specializeFor: 64 });
    expect(inst.tierStats().compiles[0].outcome).toBe('used');
    expect(sizedFacts(PAST_END, 64).access.get(3)?.verdict).toBe('fault');
    for (const len of [64, 64, 80, 64]) {
      const mem = bytes(len);
      const r = inst.run({ mem });
      expect(outcome(r)).toEqual(oracle(PAST_END, mem));
      if (len === 64) expect(r).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', pc: 3, addr: BigInt(inst.compiled.layout.memBase + 70), size: 1 } });
    }
    expect(inst.tierStats()).toMatchObject({ sizedRuns: 3, genericRuns: 1 });
  });

  it('data-dependent faults and in-place writes agree with the interpreter at L and elsewhere', () => {
    const inst = instance(INDEXED, { specializeFor: 64 });
    expect(inst.tierStats().sizedLen).toBe(64);
    for (const [len, pick] of [[64, 3], [64, 63], [64, 64], [64, 200], [70, 66], [64, 0], [32, 40]] as const) {
      const mem = bytes(len, pick);
      mem[0] = pick;
      expect(outcome(inst.run({ mem }))).toEqual(oracle(INDEXED, mem));
    }
    expect(inst.tierStats().sizedRuns).toBe(5);
  });

  it('budget faults and the budget charged are the generic module\'s, run after run', () => {
    const sized = instance(COUNTED, { specializeFor: 64 });
    const generic = instance(COUNTED, { specialize: false });
    expect(sized.tierStats().sizedLen).toBe(64);
    const withCount = (count: number): Uint8Array => {
      const mem = bytes(64, count);
      new DataView(mem.buffer).setUint32(16, count, true);
      return mem;
    };
    for (const [count, budget] of [[0, 10], [5, 1000], [200, 100], [200, 5000], [255, 0], [3, 12], [3, 11], [1e6, 1e9]] as const) {
      const mem = withCount(count);
      const a = sized.run({ mem, budget });
      const b = generic.run({ mem, budget });
      expect(a).toEqual(b);
      if (a.ok) expect(outcome(a)).toEqual(oracle(COUNTED, mem));
    }
    expect(sized.tierStats().sizedRuns).toBe(8);
    for (const [count, budget] of [[200, 100], [255, 0], [2 ** 32 - 1, 1e6]]) {
      expect(sized.run({ mem: withCount(count), budget })).toMatchObject({ ok: false, fault: { kind: 'budget' } });
    }
  });
});

describe('the resident path on a sized tier', () => {
  it('contextView bytes are what the sized module reads and writes', () => {
    const inst = instance(INDEXED, { specializeFor: 64 });
    const input = bytes(64, 9);
    input[0] = 10;
    const view = inst.contextView(64);
    view.set(input);
    const ctx = input.slice();
    for (let i = 0; i < 4; i++) {
      expect(outcome(inst.runResident(64))).toEqual(oracle(INDEXED, ctx));
      // The program wrote the byte it picked to byte 1, in place.
      ctx[1] = ctx[ctx[0]];
      expect(view).toEqual(ctx);
    }
    // A shorter context in the same memory goes to the generic module, and back.
    const short = inst.contextView(8);
    expect(outcome(inst.runResident(8))).toEqual(oracle(INDEXED, short.slice()));
    expect(outcome(inst.runResident(64))).toEqual(oracle(INDEXED, inst.contextView(64).slice()));
    expect(inst.tierStats()).toMatchObject({ sizedRuns: 5, genericRuns: 1 });
  });

  it('a longer context grows the shared memory: both modules see it', () => {
    const inst = instance(HEADER, { specializeFor: 64 });
    const big = bytes(300_000);
    inst.contextView(big.length).set(big);
    expect(outcome(inst.runResident(big.length))).toEqual(oracle(HEADER, big));
    const view = inst.contextView(64);
    view.set(bytes(64, 4));
    expect(outcome(inst.runResident(64))).toEqual(oracle(HEADER, bytes(64, 4)));
    expect(inst.tierStats()).toMatchObject({ sizedRuns: 1, genericRuns: 1 });
  });

  it('the stack each module wrote is clear when the other runs', () => {
    // Reads a stack slot before writing it (0 on a fresh stack) and through a mem-derived offset.
    const p = asm([
      'ldxdw %r0, [%r10-16]', 'ldxb %r3, [%r1+40]', 'and %r3, 7', 'lsh %r3, 3', 'mov %r4, %r10', 'sub %r4, 64', 'add %r4, %r3',
      'ldxdw %r5, [%r4+0]', 'add %r0, %r5', 'stdw [%r10-16], 7', 'stxdw [%r4+0], %r3', 'ldxw %r5, [%r1+44]', 'add %r0, %r5', 'exit',
    ], 'stack');
    const inst = instance(p, { specializeFor: 48 });
    expect(inst.tierStats().sizedLen).toBe(48);
    for (const [i, len] of [48, 60, 48, 48, 60, 60, 48].entries()) {
      const mem = bytes(len, i);
      expect(outcome(inst.run({ mem }))).toEqual(oracle(p, mem));
    }
  });
});

describe('the memory import', () => {
  it('importMemory keeps the module\'s meaning and limits, and shares another instance\'s memory', () => {
    const own = compileToWasm(HEADER);
    const imported = compileToWasm(HEADER, { importMemory: true, facts: own.facts });
    expect(own.memoryImported).toBe(false);
    expect(imported.memoryImported).toBe(true);
    const mod = new WebAssembly.Module(imported.bytes);
    expect(WebAssembly.Module.imports(mod)).toEqual([
      { module: 'env', name: 'helper', kind: 'function' },
      { module: 'env', name: 'memory', kind: 'memory' },
    ]);
    expect(WebAssembly.Module.exports(mod)).toEqual(WebAssembly.Module.exports(new WebAssembly.Module(own.bytes)));
    // An instance of it runs alone too (the engine makes the memory).
    const inst = instantiateWasm(HEADER, imported, conformanceHelpers(), { specialize: false });
    const mem = bytes(64);
    expect(outcome(inst.run({ mem }))).toEqual(oracle(HEADER, mem));
  });
});

describe('sized tiers on real programs', () => {
  it.each(PROGRAMS.map((p) => [p.name, p] as const))('%s (clang 14) at its input length and others', (_n, p) => {
    const obj = compileBpf(sourcePath(p), { clang: 'clang', mcpu: 'v3' });
    const { program, facts } = loadVerified(obj, `${p.name}.o`, { entry: p.name, helpers: conformanceHelpers() });
    const input = p.input();
    const inst = instantiateWasm(program, compileToWasm(program, { facts }), conformanceHelpers(), { specializeFor: input.length });
    const generic = instantiateWasm(program, compileToWasm(program, { facts }), conformanceHelpers(), { specialize: false });
    const [c] = inst.tierStats().compiles;
    expect(c.len).toBe(input.length);
    const shorter = input.subarray(0, input.length >> 1);
    for (const mem of [input, input, shorter, input]) {
      const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem: mem.slice() });
      const got = inst.run({ mem });
      expect(outcome(got)).toEqual(outcome(want));
      expect(got.steps).toBe(generic.run({ mem }).steps);
    }
    expect(inst.tierStats().sizedRuns).toBe(c.outcome === 'used' ? 3 : 0);
  }, 60_000);
});

describe('generated programs and the conformance suite on sized tiers', () => {
  it('300 generated programs at their length, shorter and longer', () => {
    let sized = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { program, mem } = generateProgram(seed);
      const inst = instance(program, { specializeFor: mem.length });
      const longer = new Uint8Array(mem.length + 8);
      longer.set(mem);
      for (const m of [mem, mem.subarray(0, mem.length >> 1), mem, longer, mem]) {
        expect(`seed ${seed}: ${JSON.stringify(outcome(inst.run({ mem: m })), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`)
          .toBe(`seed ${seed}: ${JSON.stringify(oracle(program, m), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
      }
      if (inst.tierStats().sizedRuns > 0) sized++;
    }
    expect(sized).toBeGreaterThan(50);
  }, 300_000);

  it('every conformance test with input runs on a tier for its length as the interpreter does', () => {
    let sized = 0;
    for (const f of dataFiles(CONFORMANCE_TESTS)) {
      const test = parseDataFile(readFileSync(f, 'utf8'));
      if (test.mem.length === 0) continue;
      const program = programOfTest(test, basename(f));
      const inst = instance(program, { specializeFor: test.mem.length });
      for (let i = 0; i < 2; i++) expect({ f, ...outcome(inst.run({ mem: test.mem })) }).toEqual({ f, ...oracle(program, test.mem) });
      if (inst.tierStats().sizedRuns > 0) sized++;
    }
    expect(sized).toBeGreaterThan(20);
  });
});
