// The Wasm engine's per-run paths: the zero-copy context (contextView + runResident), the stack
// range a run may write (only that range is zeroed between runs) and the cached r0. Each run is
// compared with the reference interpreter on a fresh input.
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { programFacts } from '../compiler/frontend.js';
import type { Program } from '../compiler/program.js';
import { noFacts, type AccessFact, type ProgramFacts } from '../compiler/verify/facts.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';

function prepare(program: Program, opts: WasmCompileOptions = {}) {
  const compiled = compileToWasm(program, { facts: programFacts(program), ...opts });
  return { compiled, inst: instantiateWasm(program, compiled, conformanceHelpers()) };
}

/** The interpreter's r0 or fault kind and pc (its `steps` counts every instruction, the engine only charged blocks). */
function oracle(program: Program, mem: Uint8Array, budget?: number) {
  return outcome(new Interpreter(program).run({ mem: mem.slice(), budget }));
}
function outcome(r: RunResult) {
  return r.ok ? { r0: r.r0 } : { kind: r.fault.kind, pc: r.fault.pc };
}

// Sums the context's bytes, then adds 1 to its first byte (a program that writes its context).
const SUM_AND_BUMP = assembleProgram(
  [
    'mov %r0, 0', 'mov %r3, 0', 'jeq %r2, 0, done',
    'loop:', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, loop',
    'ldxb %r5, [%r1+0]', 'add %r5, 1', 'stxb [%r1+0], %r5',
    'done:', 'exit',
  ].join('\n'),
  'sum-and-bump',
);

// Reads a stack slot it never wrote (0 in a fresh run), then writes it: a run that saw a previous
// run's stack would return 7 more.
const STACK_ONCE = assembleProgram(
  ['ldxdw %r0, [%r10-16]', 'stdw [%r10-16], 7', 'stdw [%r10-8], 1', 'exit'].join('\n'),
  'stack-once',
);

describe('runResident: the context written in place', () => {
  it('runs on the bytes written through contextView, and sees its own writes on the next run', () => {
    const { inst } = prepare(SUM_AND_BUMP);
    const input = Uint8Array.from({ length: 100 }, (_, i) => (i * 7 + 3) & 0xff);
    const view = inst.contextView(input.length);
    expect(view.length).toBe(input.length);
    view.set(input);
    const first = inst.runResident(input.length);
    expect(outcome(first)).toEqual(oracle(SUM_AND_BUMP, input));
    // The program bumped byte 0 in place: the next resident run sums the changed context.
    expect(view[0]).toBe((input[0] + 1) & 0xff);
    const changed = input.slice();
    changed[0] = (changed[0] + 1) & 0xff;
    expect(outcome(inst.runResident(input.length))).toEqual(oracle(SUM_AND_BUMP, changed));
    // run({ mem }) still copies its input in, over the resident bytes.
    expect(outcome(inst.run({ mem: input }))).toEqual(oracle(SUM_AND_BUMP, input));
  });

  it('a longer context grows the memory; a new view sees the same bytes the run does', () => {
    const { inst } = prepare(SUM_AND_BUMP);
    const big = Uint8Array.from({ length: 200_000 }, (_, i) => i & 0xff);
    inst.contextView(8).set(big.subarray(0, 8));
    expect(outcome(inst.runResident(8))).toEqual(oracle(SUM_AND_BUMP, big.subarray(0, 8)));
    const view = inst.contextView(big.length);
    view.set(big);
    expect(outcome(inst.runResident(big.length))).toEqual(oracle(SUM_AND_BUMP, big));
  });

  it('length 0 is an empty context, and bad lengths are refused with a message', () => {
    const { inst } = prepare(SUM_AND_BUMP);
    expect(outcome(inst.runResident(0))).toEqual(oracle(SUM_AND_BUMP, new Uint8Array(0)));
    expect(() => inst.contextView(-1)).toThrow(/non-negative integer/);
    expect(() => inst.runResident(1.5)).toThrow(/non-negative integer/);
  });

  it('faults on a budget too small, the same way on every run, and the budget is charged afresh', () => {
    const { inst } = prepare(SUM_AND_BUMP, { facts: 'none' });
    const input = new Uint8Array(50).fill(1);
    inst.contextView(input.length).set(input);
    // The engine charges only blocks of unproven loops (the interpreter counts every instruction),
    // so the fault's pc is the engine's own: compare runs with each other.
    const first = outcome(inst.runResident(input.length, { budget: 40 }));
    expect(first).toMatchObject({ kind: 'budget' });
    expect(outcome(inst.runResident(input.length, { budget: 40 }))).toEqual(first);
    inst.contextView(input.length).set(input);
    expect(outcome(inst.runResident(input.length))).toEqual(oracle(SUM_AND_BUMP, input));
  });
});

describe('stack restored between runs', () => {
  it('zeroes only the range the entry frame writes, and every run starts from a zero stack', () => {
    // The verifier's facts for the three accesses, given here so the test does not depend on its precision.
    const fact = (slot: number, min: number, write: boolean): [number, AccessFact] =>
      [slot, { slot, verdict: 'proven', region: 'stack', offset: { min, max: min }, size: 8, write, reason: 'test' }];
    const facts: ProgramFacts = { ...noFacts(), access: new Map([fact(0, -16, false), fact(1, -16, true), fact(2, -8, true)]) };
    const { compiled, inst } = prepare(STACK_ONCE, { facts });
    const top = compiled.layout.stackTop;
    expect(compiled.stackWritten).toEqual({ start: top - 16, end: top });
    for (let i = 0; i < 3; i++) expect(inst.run()).toEqual({ ok: true, r0: 0n, steps: 0 });
  });

  it('a small written range is zeroed by the module\'s own run, with no host restoring it', () => {
    const fact = (slot: number, min: number, write: boolean): [number, AccessFact] =>
      [slot, { slot, verdict: 'proven', region: 'stack', offset: { min, max: min }, size: 8, write, reason: 'test' }];
    const facts: ProgramFacts = { ...noFacts(), access: new Map([fact(0, -16, false), fact(1, -16, true), fact(2, -8, true)]) };
    const { compiled } = prepare(STACK_ONCE, { facts });
    expect(compiled.moduleZeroesStack).toBe(true);
    // A bare instance: nothing but the module touches its memory between runs.
    const raw = new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), { env: { helper: () => 0n } });
    const run = raw.exports.run as () => bigint;
    const words = new BigUint64Array((raw.exports.memory as WebAssembly.Memory).buffer);
    const slot = (compiled.layout.stackTop - 16) / 8;
    for (let i = 0; i < 3; i++) {
      words[slot] = 0x1234n + BigInt(i);
      expect(run()).toBe(0n);
      expect(words[slot]).toBe(7n);
    }
    // The whole stack is the host's to zero (a fill beats 512 stores).
    expect(prepare(STACK_ONCE, { facts: noFacts() }).compiled.moduleZeroesStack).toBe(false);
  });

  it('without facts the whole stack may be written, and is restored', () => {
    const { compiled, inst } = prepare(STACK_ONCE, { facts: noFacts() });
    expect(compiled.stackWritten).toEqual({ start: compiled.layout.stackBase, end: compiled.layout.stackTop });
    for (let i = 0; i < 3; i++) expect(inst.run().ok && inst.run()).toEqual({ ok: true, r0: 0n, steps: 0 });
  });

  it('a program that writes no memory needs no restore; one that calls a helper restores all', () => {
    expect(prepare(assembleProgram('mov %r0, 1\nexit', 'pure')).compiled.stackWritten).toBeUndefined();
    const { compiled } = prepare(assembleProgram('mov %r1, 1\ncall 5\nexit', 'helper'));
    expect(compiled.stackWritten).toEqual({ start: compiled.layout.stackBase, end: compiled.layout.stackTop });
  });
});

describe('r0 across runs', () => {
  it('returns each run its own r0 when the result changes from run to run', () => {
    const { inst } = prepare(SUM_AND_BUMP);
    const values = [0, 1, 255, 1, 1, 0, 2];
    for (const v of values) {
      expect(outcome(inst.run({ mem: Uint8Array.of(v) }))).toEqual(oracle(SUM_AND_BUMP, Uint8Array.of(v)));
    }
    const wide = assembleProgram('lddw %r0, 0x8000000100000002\nexit', 'wide');
    const w = prepare(wide).inst;
    expect(w.run()).toEqual({ ok: true, r0: 0x8000000100000002n, steps: 0 });
    expect(w.run()).toEqual({ ok: true, r0: 0x8000000100000002n, steps: 0 });
  });
});
