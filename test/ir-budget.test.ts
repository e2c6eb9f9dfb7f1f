// Budget placement (ir.ts "Budget:"): blocks of loops the verifier proved are not charged, every
// cycle of uncharged blocks goes through a proven back edge, an endless outer loop around a proven
// inner one still faults 'budget' on every IR pipeline, and a compiled run never charges more than
// the interpreter counts. Facts come from the real verifier (analyze), fletcher32 from real clang.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROGRAMS } from '../bench/programs.js';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { loadElf } from '../compiler/elf.js';
import { programFacts } from '../compiler/frontend.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import type { IrFunction, IrModule } from '../compiler/ir/ir.js';
import { DEFAULT_PASSES, JIT_PASSES, optimizeIr } from '../compiler/ir/pipeline.js';
import { printIr } from '../compiler/ir/text.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { noFacts, type ProgramFacts } from '../compiler/verify/facts.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { CONFORMANCE_TESTS, dataFiles, ROOT } from './support/paths.js';
import { generateProgram } from './support/progen.js';

const work = mkdtempSync(join(tmpdir(), 'femtojit-ir-budget-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function asm(text: string): Program {
  const p = assembleProgram(text, 'test');
  verifyStructure(p, { helpers: new Set([5]) });
  return p;
}

/** [block, cost] of every charged block. */
function charges(m: IrModule, fn = 0): [number, number][] {
  const out: [number, number][] = [];
  for (const b of m.functions[fn].blocks) {
    const i = b.insts[0];
    if (i?.op === 'budget') out.push([b.id, i.cost]);
  }
  return out;
}

/** Successors of an IR block, except through a terminator whose slot the facts call bounded. */
function unprovenSuccs(f: IrFunction, id: number, facts: ProgramFacts): number[] {
  const t = f.blocks[id].term;
  if (facts.boundedBackEdges.has(t.pc)) return [];
  return t.op === 'jump' ? [t.target] : t.op === 'br' ? [t.then, t.else] : [];
}

/** A cycle made only of uncharged blocks and edges not proven bounded, if there is one. */
function unchargedCycle(f: IrFunction, facts: ProgramFacts): number[] | undefined {
  const free = (id: number): boolean => f.blocks[id].insts[0]?.op !== 'budget';
  const state = new Uint8Array(f.blocks.length); // 0 new, 1 on the path, 2 done
  const path: number[] = [];
  const visit = (id: number): number[] | undefined => {
    state[id] = 1;
    path.push(id);
    for (const s of unprovenSuccs(f, id, facts)) {
      if (!free(s)) continue;
      if (state[s] === 1) return path.slice(path.indexOf(s));
      if (state[s] === 0) {
        const c = visit(s);
        if (c !== undefined) return c;
      }
    }
    path.pop();
    state[id] = 2;
    return undefined;
  };
  for (let id = 0; id < f.blocks.length; id++) {
    if (state[id] !== 0 || !free(id)) continue;
    const c = visit(id);
    if (c !== undefined) return c;
  }
  return undefined;
}

describe('fletcher32 (clang -O2 -mcpu=v3): the proven inner loop is not charged', () => {
  const obj = join(work, 'fletcher32.o');
  execFileSync('clang', ['-O2', '-target', 'bpf', '-mcpu=v3', '-c', join(ROOT, 'bench', 'programs', 'fletcher32.c'), '-o', obj]);
  const program = loadElf(new Uint8Array(readFileSync(obj)), 'fletcher32', { entry: 'fletcher32', helpers: conformanceHelpers().names() });
  const facts = programFacts(program);

  it('the verifier proves the inner byte loop (back edge at slot 17), not the outer one', () => {
    expect([...facts.boundedBackEdges]).toEqual([17]);
    const m = buildIr(program, facts);
    const inner = m.functions[0].blocks.find((b) => b.term.pc === 17);
    expect(inner?.term).toMatchObject({ op: 'br', then: inner?.id });
  });

  it('charges the outer loop only: the latch block (slot 37) and the blocks outside the inner loop', () => {
    const m = buildIr(program, facts);
    // b2 = slots 6-17 (inner loop), b3 = 18-29, b5 = 33-34, b6 = 35, b7 = 36-37 (jumps back to b2).
    expect(charges(m)).toEqual([[3, 12], [5, 2], [6, 1], [7, 2]]);
    expect(printIr(m)).toContain('b2:\n  r5 = load.u8 r1+1 [check mem]  ; @6');
    expect(printIr(m)).toContain('b7:\n  budget 2                       ; @36\n  r7 = mov.64 r3');
    // Without facts the inner loop is charged as well (what the builder did before for both).
    expect(charges(buildIr(program, noFacts()))).toEqual([[2, 12], [3, 12], [5, 2], [6, 1], [7, 2]]);
  });

  it('gives the interpreter\'s answer and charges at most what it counts, with a budget that just suffices', () => {
    const mem = PROGRAMS.find((p) => p.name === 'fletcher32')?.input() ?? new Uint8Array(0);
    const want = interpret(program, { mem });
    expect(want.ok).toBe(true);
    for (const passes of [[], JIT_PASSES, DEFAULT_PASSES]) {
      const m = optimizeIr(buildIr(program, facts), { passes });
      const got = evalIr(m, { mem, budget: want.steps, program });
      expect(got.ok && want.ok && got.r0 === want.r0).toBe(true);
      expect(got.steps).toBeGreaterThan(0);
      expect(got.steps).toBeLessThan(want.steps / 4);
    }
  });
});

describe('an endless outer loop around a proven inner loop', () => {
  // The outer back edge (ja at slot 7) jumps to the inner loop's head, as in fletcher32.
  const INTO_HEAD = `
    mov %r0, 0
    ja setup
    inner:
    add %r0, 1
    add %r3, 1
    jlt %r3, 10, inner
    ja setup
    setup:
    mov %r3, 0
    ja inner
    exit`;
  // As above, but the inner loop falls through into the block that dominates it: its latch then
  // closes two natural loops (inner and outer), the facts name the latch by its slot only, so the
  // builder cannot tell which one was proven and charges it.
  const AMBIGUOUS = `
    mov %r0, 0
    mov %r3, 0
    ja setup
    inner:
    add %r0, 1
    add %r3, 1
    jlt %r3, 10, inner
    setup:
    mov %r3, 0
    ja inner
    exit`;
  // The outer back edge jumps to a block of its own before the inner loop.
  const NESTED = `
    mov %r0, 0
    outer:
    mov %r3, 0
    inner:
    add %r0, 1
    add %r3, 1
    jlt %r3, 10, inner
    ja outer
    exit`;

  it.each([
    ['into the inner head', INTO_HEAD, [[2, 1], [3, 2]], 4],
    ['nested', NESTED, [[1, 1], [3, 1]], 4],
    ['ambiguous latch', AMBIGUOUS, [[1, 3], [2, 2]], 5],
  ] as const)('%s: the inner loop is proven, the outer one charged', (_name, text, want, innerSlot) => {
    const p = asm(text);
    const facts = programFacts(p);
    expect([...facts.boundedBackEdges]).toEqual([innerSlot]);
    expect(charges(buildIr(p, facts))).toEqual(want);
  });

  it.each([['into the inner head', INTO_HEAD], ['nested', NESTED], ['ambiguous latch', AMBIGUOUS]])('%s: faults \'budget\' from the builder and after either pipeline, as the interpreter does', (_name, text) => {
    const p = asm(text);
    const facts = programFacts(p);
    const budget = 10_000;
    const want = interpret(p, { budget });
    expect(want.ok ? 'ok' : want.fault.kind).toBe('budget');
    for (const passes of [[], JIT_PASSES, DEFAULT_PASSES]) {
      const r = evalIr(optimizeIr(buildIr(p, facts), { passes }), { budget, program: p });
      expect(r.ok ? 'ok' : r.fault.kind, passes.join(',')).toBe('budget');
      expect(r.steps).toBeLessThanOrEqual(budget);
    }
  });
});

describe('every cycle of uncharged blocks goes through a back edge the verifier proved', () => {
  function check(name: string, p: Program, facts: ProgramFacts): number {
    const m = buildIr(p, facts);
    const none = buildIr(p, noFacts());
    let charged = 0;
    for (const [k, f] of m.functions.entries()) {
      expect(unchargedCycle(f, facts), `${name} ${f.name}`).toBeUndefined();
      expect(unchargedCycle(none.functions[k], noFacts()), `${name} ${f.name} without facts`).toBeUndefined();
      // Facts only take charges away, never add or change one.
      const withFacts = charges(m, k);
      const without = new Map(charges(none, k));
      for (const [b, cost] of withFacts) expect(without.get(b), `${name} b${b}`).toBe(cost);
      charged += without.size - withFacts.length;
    }
    return charged;
  }

  it('on the conformance programs and 300 generated ones', () => {
    let spared = 0, programs = 0;
    for (const file of dataFiles(CONFORMANCE_TESTS)) {
      const test = parseDataFile(readFileSync(file, 'utf8'));
      let p: Program;
      try {
        p = programOfTest(test, basename(file));
        verifyStructure(p, { helpers: new Set([5]) });
      } catch {
        continue;
      }
      spared += check(basename(file), p, programFacts(p));
      programs++;
    }
    for (let seed = 1; seed <= 300; seed++) {
      const g = generateProgram(seed);
      spared += check(`seed ${seed}`, g.program, programFacts(g.program));
      programs++;
    }
    expect(programs).toBeGreaterThan(550);
    // The facts must spare some blocks, or the check above proves little.
    expect(spared).toBeGreaterThan(10);
  });
});
