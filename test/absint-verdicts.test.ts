// The abstract interpreter on whole programs: verdicts per access slot for hand-written programs,
// the unsafe corpus (test/fixtures/unsafe/*.asm, each stating its expected outcome in its header),
// every conformance program accepted, and the benchmark programs (real clang output) accepted with
// the share of executed accesses that need no runtime check measured against the goal.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { loadElf } from '../compiler/elf.js';
import { loadInput } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { analyze, verifyProgram, type AnalysisResult } from '../compiler/verify/absint.js';
import { formatReport } from '../compiler/verify/report.js';
import { checkStructure, VerifyError } from '../compiler/verify/structural.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { Interpreter } from '../runtime/interp.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { traceRun } from './absint-trace.js';
import { compileBpf, removeScratch } from './support/clang.js';
import { CONFORMANCE_TESTS, dataFiles, ROOT } from './support/paths.js';

afterAll(removeScratch);

const helpers = conformanceHelpers();
const asm = (text: string): Program => assembleProgram(text, 'test.asm');
const run = (p: Program, memSize?: number): AnalysisResult => analyze(p, { regions: [], helpers: helpers.ids(), memSize });
const verdict = (r: AnalysisResult, slot: number): string | undefined => r.facts.access.get(slot)?.verdict;

describe('verdicts on small programs', () => {
  it('proves constant stack accesses and tracks spilled values', () => {
    const r = run(asm('stdw [%r10-8], 5\nldxdw %r0, [%r10-8]\nexit'));
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(0)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: -8, max: -8 }, size: 8, write: true });
    expect(r.facts.access.get(1)).toMatchObject({ verdict: 'proven', region: 'stack', write: false });
  });

  it('proves a pointer spilled and reloaded whole, and uses it', () => {
    const r = run(asm('stxdw [%r10-16], %r1\nldxdw %r3, [%r10-16]\nldxw %r0, [%r3+4]\nexit'), 8);
    expect(verdict(r, 2)).toBe('proven');
    expect(r.facts.access.get(2)?.region).toBe('mem');
  });

  it('proves mem accesses only within the given size', () => {
    const p = asm('ldxw %r0, [%r1+4]\nldxw %r3, [%r1+8]\nexit');
    expect(verdict(run(p, 8), 0)).toBe('proven');
    expect(verdict(run(p, 12), 1)).toBe('proven');
    // 8 bytes: the second read is out of bounds on every path.
    const r8 = run(p, 8);
    expect(verdict(r8, 1)).toBe('fault');
    expect(r8.diagnostics.map((d) => d.rule)).toEqual(['always-faults']);
    expect(r8.diagnostics[0].message).toMatch(/^instruction 1 \(ldxw %r3, \[%r1\+8\]\): /);
  });

  it('checks mem accesses when the size is unknown and nothing bounds them', () => {
    const r = run(asm('ldxw %r0, [%r1+4]\nexit'));
    expect(verdict(r, 0)).toBe('check');
    expect(r.facts.access.get(0)?.region).toBe('mem');
    expect(r.facts.assumedSizes).toEqual({});
  });

  it('proves mem accesses guarded by a comparison with the length r2, with or without the size', () => {
    // if (len < 8) return; read mem[4..8)
    const p = asm('mov %r0, 0\njlt %r2, 8, +1\nldxw %r0, [%r1+4]\nexit');
    expect(verdict(run(p), 2)).toBe('proven');
    expect(verdict(run(p, 100), 2)).toBe('proven');
    // The guard is one byte short: the access is checked (it faults only for len = 7).
    const q = asm('mov %r0, 0\njlt %r2, 7, +1\nldxw %r0, [%r1+4]\nexit');
    expect(verdict(run(q), 2)).toBe('check');
  });

  it('proves a pointer compared against mem + len (the end pointer)', () => {
    // end = r1 + r2; p = r1 + 4; if (p > end) return; read p[-4..0)
    const p = asm([
      'mov %r0, 0', 'mov %r3, %r1', 'add %r3, %r2', 'mov %r4, %r1', 'add %r4, 4',
      'jgt %r4, %r3, +1', 'ldxw %r0, [%r4-4]', 'exit',
    ].join('\n'));
    expect(verdict(run(p), 6)).toBe('proven');
  });

  it('proves `for (i = 0; i < len; i++) p[i]` without knowing len', () => {
    const p = asm([
      'mov %r0, 0', 'mov %r3, 0', 'jeq %r2, 0, +6',
      'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]', 'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, -6',
      'exit',
    ].join('\n'));
    const r = run(p);
    expect(verdict(r, 5)).toBe('proven');
    expect(r.facts.access.get(5)?.reason).toMatch(/mem length/);
  });

  it('proves `while (n--) *p++` with n from len (a pointer and a counter in step)', () => {
    const p = asm([
      'mov %r0, 0', 'mov %r3, %r2', 'jeq %r3, 0, +5',
      'ldxb %r5, [%r1+0]', 'add %r0, %r5', 'add %r1, 1', 'add %r3, -1', 'jne %r3, 0, -5',
      'exit',
    ].join('\n'));
    expect(verdict(run(p), 3)).toBe('proven');
    expect(verdict(run(p, 64), 3)).toBe('proven');
  });

  it('proves a pointer striding by 4 against a counter bounded by len / 4 when the size is known', () => {
    const p = asm([
      'mov %r0, 0', 'mov %r3, %r2', 'rsh %r3, 2', 'mov %r4, 0', 'jeq %r3, 0, +5',
      'ldxw %r5, [%r1+0]', 'add %r0, %r5', 'add %r1, 4', 'add %r4, 1', 'jlt %r4, %r3, -5',
      'exit',
    ].join('\n'));
    expect(verdict(run(p, 360), 5)).toBe('proven');
    expect(verdict(run(p), 5)).toBe('check');
  });

  it('refines on JMP32 conditions through the low half', () => {
    // w3 = mem[0]; if (w3 > 12) return; read stack[r10 - 16 + w3]: needs w3 <= 12 (64-bit view too).
    const p = asm([
      'stdw [%r10-16], 0', 'stdw [%r10-8], 0', 'mov %r0, 0', 'jlt %r2, 4, +6', 'ldxw %r3, [%r1+0]',
      'jgt32 %r3, 12, +4', 'mov %r4, %r10', 'add %r4, -16', 'add %r4, %r3', 'ldxw %r0, [%r4+0]', 'exit',
    ].join('\n'));
    const r = run(p);
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(9)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: -16, max: -4 } });
  });

  it('treats a dereferenced scalar (an integer address) as a runtime check, never a rejection', () => {
    const r = run(asm('mov %r3, 0x10000\nldxb %r0, [%r3+0]\nexit'));
    expect(verdict(r, 1)).toBe('check');
    expect(r.diagnostics).toEqual([]);
  });

  it('passes stack pointers to local calls and sees the callee write the caller frame', () => {
    const p = asm([
      'mov %r1, %r10', 'add %r1, -8', 'call local fill', 'ldxdw %r0, [%r10-8]', 'exit',
      'fill:', 'stdw [%r1+0], 42', 'mov %r0, 0', 'exit',
    ].join('\n'));
    const r = run(p);
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(5)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: 504, max: 504 } });
    expect(verdict(r, 3)).toBe('proven');
  });

  it('rejects a read of stack the callee did not write', () => {
    const p = asm([
      'mov %r1, %r10', 'add %r1, -8', 'call local nothing', 'ldxdw %r0, [%r10-8]', 'exit',
      'nothing:', 'mov %r0, 0', 'exit',
    ].join('\n'));
    expect(run(p).diagnostics.map((d) => [d.index, d.rule])).toEqual([[3, 'uninit-stack']]);
  });

  it('keeps each counter of nested loops at its own bound, and one compared through a copy', () => {
    // The outer counter r3 indexes an 8-byte stack array; the inner loop runs while r5 = r4 + 4 is
    // below 20. Widening stops r3 at its own bound (not at the inner loop's constants, which it
    // is never compared with), so both arrays are proven exactly and both loops are bounded.
    const p = asm([
      'mov %r3, 0',
      'outer:', 'mov %r4, 0',
      'inner:', 'mov %r5, %r4', 'add %r5, 4', 'mov %r2, %r10', 'add %r2, -128', 'add %r2, %r4', 'stb [%r2+0], 1',
      'add %r4, 1', 'jlt %r5, 20, inner',
      'mov %r1, %r3', 'lsh %r1, 3', 'mov %r2, %r10', 'add %r2, -56', 'add %r2, %r1', 'stdw [%r2+0], 0',
      'add %r3, 1', 'jlt %r3, 6, outer',
      'mov %r0, 0', 'exit',
    ].join('\n'));
    const r = run(p);
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(7)).toMatchObject({ verdict: 'proven', offset: { min: -128, max: -112 } });
    expect(r.facts.access.get(15)).toMatchObject({ verdict: 'proven', offset: { min: -56, max: -16 } });
    expect([...r.facts.boundedBackEdges].sort((x, y) => x - y)).toEqual([9, 17]);
  });

  it('bounds counted loops and budgets the others', () => {
    const bounded = asm('mov %r3, 0\nadd %r3, 1\njlt %r3, 100, -2\nmov %r0, %r3\nexit');
    expect([...run(bounded).facts.boundedBackEdges]).toEqual([2]);
    // The counter restarts from memory each time round: nothing proves the loop ends.
    const unbounded = asm('stdw [%r10-8], 0\nldxdw %r3, [%r10-8]\nadd %r3, 1\nstxdw [%r10-8], %r3\njne %r3, 0, -4\nmov %r0, 0\nexit');
    expect(run(unbounded).facts.boundedBackEdges.size).toBe(0);
  });

  it('verifyProgram runs the structural checks first and throws VerifyError on any problem', () => {
    expect(() => verifyProgram(asm('mov %r10, 1\nexit'), { regions: [], helpers: helpers.ids() })).toThrow(VerifyError);
    try {
      verifyProgram(asm('ldxdw %r0, [%r10-8]\nexit'), { regions: [], helpers: helpers.ids() });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(VerifyError);
      expect((e as VerifyError).diagnostics[0]).toMatchObject({ index: 0, rule: 'uninit-stack' });
    }
    const facts = verifyProgram(asm('ldxw %r0, [%r1+0]\nexit'), { regions: [], memSize: 4, helpers: helpers.ids() });
    expect(facts.access.get(0)?.verdict).toBe('proven');
    expect(facts.assumedSizes).toEqual({ mem: 4 });
  });

  it('terminates on programs whose values never settle (widening)', () => {
    // x = x * 3 + 1 forever (with a budget check), over a nest of loops.
    const p = asm([
      'mov %r3, 1', 'mov %r4, 0',
      'mul %r3, 3', 'add %r3, 1', 'add %r4, %r3', 'jne %r4, 7, -4',
      'jgt %r3, 5, -5', 'mov %r0, %r4', 'exit',
    ].join('\n'));
    const r = run(p);
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.boundedBackEdges.size).toBe(0);
  });
});

// ---- what the faster fixpoint must keep (call cache, replayed blocks, per-loop thresholds) ----

describe('values no fact depends on are forgotten, the others kept', () => {
  it('keeps a callee\'s return value that the caller adds to a pointer', () => {
    const p = asm([
      'mov %r6, %r1', 'call local three', 'mov %r1, %r6', 'add %r1, %r0', 'ldxb %r0, [%r1+0]', 'exit',
      'three:', 'mov %r0, 5', 'xor %r0, 6', 'exit',
    ].join('\n'));
    const r = run(p, 4);
    expect(r.facts.access.get(4)).toMatchObject({ verdict: 'proven', region: 'mem', offset: { min: 3, max: 3 } });
    expect(run(p, 3).facts.access.get(4)?.verdict).toBe('fault');
  });

  it('keeps a pointer the caller stored in its frame for the callee to load and use', () => {
    const p = asm([
      'stxdw [%r10-8], %r1', 'mov %r1, %r10', 'add %r1, -8', 'call local use', 'exit',
      'use:', 'ldxdw %r2, [%r1+0]', 'ldxb %r0, [%r2+3]', 'exit',
    ].join('\n'));
    const r = run(p, 4);
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(6)).toMatchObject({ verdict: 'proven', region: 'mem', offset: { min: 3, max: 3 } });
  });

  it('keeps a second induction variable that ends up in an address', () => {
    const p = asm([
      'mov %r3, 0', 'mov %r4, 0', 'mov %r0, 0',
      'loop:', 'add %r4, 2', 'mul %r0, 3', 'add %r0, %r4', 'add %r3, 1', 'jlt %r3, 4, loop',
      'mov %r5, %r1', 'add %r5, %r4', 'ldxb %r0, [%r5+0]', 'exit',
    ].join('\n'));
    const r = run(p, 9);
    expect(r.facts.access.get(10)).toMatchObject({ verdict: 'proven', region: 'mem', offset: { min: 8, max: 8 } });
    expect([...r.facts.boundedBackEdges]).toEqual([7]);
  });

  it('forgets stored values nothing reads as an address, not which stack bytes are written', () => {
    const p = asm([
      'mov %r0, 0', 'mov %r3, 0',
      'loop:', 'stxdw [%r10-8], %r0', 'ldxdw %r4, [%r10-8]', 'add %r0, %r4', 'add %r0, 7', 'add %r3, 1', 'jlt %r3, 9, loop',
      'ldxw %r0, [%r10-8]', 'ldxw %r0, [%r10-16]', 'exit',
    ].join('\n'));
    const r = run(p);
    // The accumulator's value is never needed (and never settles); the slot it goes through is
    // still written on every path, and the slot below it still is not.
    expect(r.diagnostics.map((d) => [d.index, d.rule])).toEqual([[9, 'uninit-stack']]);
    expect(verdict(r, 8)).toBe('proven');
    expect([...r.facts.boundedBackEdges]).toEqual([7]);
  });
});

describe('facts that the analysis records from shared or replayed work', () => {
  it('records the facts of a function first analysed while its caller\'s loop was still ascending', () => {
    const p = asm([
      'mov %r6, 0',
      'loop:', 'mov %r1, %r10', 'add %r1, -8', 'call local f', 'add %r6, 1', 'jlt %r6, 4, loop',
      'ldxdw %r0, [%r10-8]', 'exit',
      'f:', 'stdw [%r1+0], 1', 'ldxdw %r0, [%r1-8]', 'exit',
    ].join('\n'));
    const r = run(p);
    // f reads the 8 bytes below what the caller passed (the caller's r10-16), which nothing wrote.
    expect(r.diagnostics.map((d) => [d.index, d.rule])).toEqual([[9, 'uninit-stack']]);
    expect(r.facts.access.get(8)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: 504, max: 504 }, write: true });
    expect(r.facts.access.get(9)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: 496, max: 496 } });
    expect(r.facts.access.get(6)).toMatchObject({ verdict: 'proven', offset: { min: -8, max: -8 } });
    expect([...r.facts.boundedBackEdges]).toEqual([5]);
  });

  it('records nested callees first analysed while the outer caller was not recording', () => {
    const body = [
      'f:', 'stdw [%r1+0], 1', 'mov %r1, %r10', 'add %r1, -16', 'call local g', 'ldxdw %r0, [%r10-16]', 'exit',
      'g:', 'stdw [%r1+0], 7', 'ldxdw %r0, [%r1-8]', 'exit',
    ];
    // f and g are first analysed (and cached) by the ascending pass of the loop, then recorded
    // later from what that analysis kept; called once without a loop they are recorded directly.
    const looped = run(asm([
      'mov %r6, 0',
      'loop:', 'mov %r1, %r10', 'add %r1, -8', 'call local f', 'add %r6, 1', 'jlt %r6, 4, loop',
      'ldxdw %r0, [%r10-8]', 'exit', ...body,
    ].join('\n')));
    const once = run(asm(['mov %r6, 0', 'mov %r1, %r10', 'add %r1, -8', 'call local f', 'add %r6, 1', 'ja +0', 'ldxdw %r0, [%r10-8]', 'exit', ...body].join('\n')));
    // g reads the 8 bytes below f's r10-16 (f's r10-24), which nothing wrote: rejected in g.
    expect(looped.diagnostics.map((d) => [d.index, d.rule])).toEqual([[15, 'uninit-stack']]);
    expect(looped.facts.access.get(8)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: 504, max: 504 }, write: true });
    expect(looped.facts.access.get(14)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: 496, max: 496 }, write: true });
    expect(looped.facts.access.get(15)).toMatchObject({ region: 'stack', offset: { min: 488, max: 488 }, write: false });
    expect(looped.facts.access.get(12)).toMatchObject({ verdict: 'proven', offset: { min: -16, max: -16 } });
    for (const slot of [8, 12, 14, 15]) expect(looped.facts.access.get(slot)).toEqual(once.facts.access.get(slot));
    expect(once.diagnostics.map((d) => [d.index, d.rule])).toEqual([[15, 'uninit-stack']]);
  });

  it('gives every recorded fact its reason, including facts merged over several visits', () => {
    const r = run(asm('mov %r3, 0\nloop:\nmov %r4, %r10\nadd %r4, -64\nadd %r4, %r3\nstb [%r4+0], 1\nadd %r3, 1\njlt %r3, 64, loop\nldxdw %r0, [%r1+0]\nexit'));
    const store = r.facts.access.get(4);
    expect(store).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: -64, max: -1 } });
    expect(store?.reason).toMatch(/^stack\[-64, -1\]: inside the stack$/);
    const read = r.facts.access.get(7);
    expect(read?.verdict).toBe('check');
    expect(read?.reason).toBe('mem+0: the mem size is unknown and no comparison with the length bounds the offset');
  });

  it('keeps the facts and diagnostics of code outside loops that is analysed once', () => {
    const p = asm([
      'stdw [%r10-8], 1', 'ldxdw %r0, [%r10-16]', 'mov %r3, 0',
      'loop:', 'add %r3, 1', 'jlt %r3, 10, loop',
      'stdw [%r10-24], 2', 'ldxdw %r4, [%r10-32]', 'ldxw %r5, [%r1+4]', 'exit',
    ].join('\n'));
    const r = run(p, 8);
    expect(r.diagnostics.map((d) => [d.index, d.rule])).toEqual([[1, 'uninit-stack'], [6, 'uninit-stack']]);
    expect([0, 1, 5, 6, 7].map((i) => verdict(r, i))).toEqual(['proven', 'proven', 'proven', 'proven', 'proven']);
    // The same program with a 4-byte mem: the read past its end is rejected (from replayed work too).
    const small = run(p, 4);
    expect(small.diagnostics.map((d) => [d.index, d.rule])).toEqual([[1, 'uninit-stack'], [6, 'uninit-stack'], [7, 'always-faults']]);
  });

  it('widens a loop to its own bound whatever other constants the program compares with', () => {
    // Fifty guarded reads compare the length with 1..50 before the loop; the loop indexes a 64-byte
    // stack array with i < 60: the offset must come out as exactly [-64, -5].
    const lines = ['mov %r0, 0'];
    for (let k = 1; k <= 50; k++) lines.push(`jlt %r2, ${k}, +1`, 'add %r0, 1');
    for (let o = 8; o <= 64; o += 8) lines.push(`stdw [%r10-${o}], 0`);
    lines.push('mov %r3, 0', 'loop:', 'mov %r4, %r10', 'add %r4, -64', 'add %r4, %r3', 'ldxw %r5, [%r4+0]',
      'add %r0, %r5', 'add %r3, 1', 'jlt %r3, 60, loop', 'exit');
    const p = asm(lines.join('\n'));
    const r = run(p);
    const slot = lines.filter((l) => !l.endsWith(':')).indexOf('ldxw %r5, [%r4+0]');
    expect(r.diagnostics).toEqual([]);
    expect(r.facts.access.get(slot)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: -64, max: -5 } });
    expect(r.facts.boundedBackEdges.size).toBe(1);
  });
});

// ---- the unsafe corpus ----

const UNSAFE = join(ROOT, 'test', 'fixtures', 'unsafe');

interface Expectation { kind: 'rejected' | 'check' | 'proven' | 'budget' | 'bounded'; rule?: string; slot: number }

function parseCorpus(text: string, name: string): { program: Program; memSize?: number; expect: Expectation[] } {
  const program = assembleProgram(text, name);
  let memSize: number | undefined;
  const expect: Expectation[] = [];
  for (const line of text.split('\n')) {
    let m = /^#\s*mem-size:\s*(\d+)/.exec(line);
    if (m) memSize = Number(m[1]);
    m = /^#\s*data:\s*(\S+)\s+(ro|rw)\s+(\d+)/.exec(line);
    if (m) program.data.push({ name: m[1], bytes: new Uint8Array(Number(m[3])), writable: m[2] === 'rw' });
    m = /^#\s*reloc:\s*(\d+)\s+(\S+)\s+(\d+)/.exec(line);
    if (m) {
      const [slot, section, addend] = [Number(m[1]), m[2], Number(m[3])];
      program.relocs.push({ slot, section: program.data.findIndex((d) => d.name === section), addend });
    }
    m = /^#\s*expect:\s*(rejected|check|proven|budget|bounded)(?:\s+([a-z-]+))?\s+at\s+(\d+)/.exec(line);
    if (m) expect.push({ kind: m[1] as Expectation['kind'], rule: m[2], slot: Number(m[3]) });
  }
  return { program, memSize, expect };
}

describe('the unsafe corpus', () => {
  const files = readdirSync(UNSAFE).filter((f) => f.endsWith('.asm')).sort();
  it('has the cases the verifier must handle', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });
  it.each(files)('%s', (f) => {
    const { program, memSize, expect: wants } = parseCorpus(readFileSync(join(UNSAFE, f), 'utf8'), f);
    expect(wants.length).toBeGreaterThan(0);
    expect(checkStructure(program, { helpers: helpers.ids() })).toEqual([]);
    const r = run(program, memSize);
    const rejected = wants.filter((w) => w.kind === 'rejected');
    expect(r.diagnostics.map((d) => [d.index, d.rule])).toEqual(rejected.map((w) => [w.slot, w.rule]));
    for (const w of wants) {
      if (w.kind === 'check' || w.kind === 'proven') expect(verdict(r, w.slot), `slot ${w.slot}`).toBe(w.kind);
      if (w.kind === 'budget') expect(r.facts.boundedBackEdges.has(w.slot)).toBe(false);
      if (w.kind === 'bounded') expect(r.facts.boundedBackEdges.has(w.slot)).toBe(true);
      if (w.kind === 'rejected' && w.rule !== 'uninit-stack') expect(verdict(r, w.slot)).toBe('fault');
    }
    // The report says the same.
    const report = formatReport(program, r.facts, r.diagnostics);
    expect(report).toMatch(new RegExp(`accesses: \\d+ proven, \\d+ checked, ${new Set(rejected.map((w) => w.slot)).size} rejected`));
  });
});

// ---- conformance ----

describe('conformance programs', () => {
  const files = dataFiles(CONFORMANCE_TESTS);
  it('all 313 are accepted with no diagnostics (mem size from the test, and unknown)', () => {
    expect(files.length).toBe(313);
    const problems: string[] = [];
    for (const f of files) {
      const { program, test } = loadInput(readFileSync(f), f, { helpers: helpers.names() });
      for (const memSize of [test?.mem.length, undefined]) {
        const r = run(program, memSize);
        for (const d of r.diagnostics) problems.push(`${f}: ${d.message}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

// ---- benchmark programs ----

interface Measured { name: string; staticProven: number; staticChecked: number; dynProven: number; dynChecked: number }

describe('benchmark programs (clang -O2 -mcpu=v3)', () => {
  const measured: Measured[] = [];
  it.each(PROGRAMS.map((p) => [p.name, p] as const))('%s is accepted; its executed accesses are counted by verdict', (_n, p) => {
    const obj = compileBpf(sourcePath(p), { clang: 'clang', mcpu: 'v3' });
    const program = loadElf(obj, p.name, { entry: p.name, helpers: helpers.names() });
    const input = p.input();
    const unknown = run(program);
    expect(unknown.diagnostics).toEqual([]);
    const r = run(program, input.length);
    expect(r.diagnostics).toEqual([]);
    // Dynamic counts from the counting executor, itself checked against the reference interpreter.
    const t = traceRun(program, input);
    const ref = new Interpreter(program, { helpers }).run({ mem: input });
    expect(ref.ok && t.ok).toBe(true);
    if (ref.ok) {
      expect(t.r0).toBe(ref.r0);
      expect(t.steps).toBe(ref.steps);
    }
    const m: Measured = { name: p.name, staticProven: 0, staticChecked: 0, dynProven: 0, dynChecked: 0 };
    for (const [slot, f] of r.facts.access) {
      const n = t.accesses.get(slot) ?? 0;
      if (f.verdict === 'proven') { m.staticProven++; m.dynProven += n; } else { m.staticChecked++; m.dynChecked += n; }
    }
    // Every executed access slot has a fact.
    for (const slot of t.accesses.keys()) expect(r.facts.access.has(slot)).toBe(true);
    measured.push(m);
  });
  it('at least 90% of executed accesses are proven (mem size given)', () => {
    expect(measured.length).toBe(PROGRAMS.length);
    const proven = measured.reduce((a, m) => a + m.dynProven, 0);
    const total = measured.reduce((a, m) => a + m.dynProven + m.dynChecked, 0);
    const lines = measured.map((m) => `${m.name.padEnd(16)} static ${m.staticProven}/${m.staticProven + m.staticChecked} proven, dynamic ${m.dynProven}/${m.dynProven + m.dynChecked}`);
    console.log(`${lines.join('\n')}\ntotal dynamic: ${proven}/${total} = ${(100 * proven / total).toFixed(1)}% proven`);
    expect(proven / total).toBeGreaterThanOrEqual(0.9);
  });
});
