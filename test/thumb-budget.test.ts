// Budget-guarded loop copies on the Thumb back end (backends/thumb/version.ts): an innermost loop
// with budget charges and a counted exit runs a copy whose charges are plain subtractions when one
// entry test shows the budget covers every iteration it can run. The budget charged (`steps`) and a
// budget fault's pc must stay exactly those of the checked lowering: checked on the code (the copy
// has no budget branch, the original keeps its own) and on the emulated Cortex-M4 at every budget
// from 0 to just past what the run needs, against the image without copies and against evalIr.
import { beforeAll, describe, expect, it } from 'vitest';
import { boardReady } from './support/board-cases.js';
import { compileIr, compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { assembleProgram } from '../compiler/asm.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import type { IrModule } from '../compiler/ir/ir.js';
import { parseIr } from '../compiler/ir/text.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import type { RunResult } from '../runtime/errors.js';
import { runThumbBatch, toRunResult, type ThumbJob } from '../runtime/thumb-engine.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

function code(low: LoweredModule, prefix: string): ThumbInsn[] {
  const all = dis.disasm(low.code, 0, low.data);
  const out: ThumbInsn[] = [];
  low.marks.forEach((mk, i) => {
    if (!mk.where.startsWith(prefix)) return;
    const end = i + 1 < low.marks.length ? low.marks[i + 1].offset : low.code.length;
    out.push(...all.filter((x) => x.address >= mk.offset && x.address < end));
  });
  return out;
}

/** Budget charges as lowered: `sub(s) r9, r9, #k`; checked ones are followed by a `blo`. */
const charges = (c: ThumbInsn[]): ThumbInsn[] => c.filter((x) => /^subs?(\.w)? r9, r9, #/.test(x.text) || /^subs?(\.w)? sb, sb, #/.test(x.text));
const budgetBranches = (c: ThumbInsn[]): number => c.filter((x, i) => i > 0 && /^(blo|bcc)/.test(x.mnemonic) && charges([c[i - 1]]).length === 1).length;

// Three charged blocks per iteration, one of them conditional, and a counted exit at the latch.
const LOOP = `origin "test"
function main (start 0) {
b0:
  r0 = const 0x0 ; @0
  r3 = const 0x0 ; @1
  jump b1 ; @2
b1:
  budget 2 ; @3
  r4 = and.64 r3, 1 ; @3
  br.eq.64 r4, 0, b3, b2 ; @4
b2:
  budget 3 ; @5
  r0 = add.64 r0, r3 ; @5
  r0 = add.64 r0, 7 ; @6
  jump b3 ; @7
b3:
  budget 4 ; @8
  r0 = xor.64 r0, 5 ; @8
  r3 = add.64 r3, 1 ; @9
  br.ult.64 r3, r2, b1, b4 ; @10
b4:
  ret ; @11
}
`;

describe('the budget-guarded copy', () => {
  it('charges without budget branches in the copy and keeps the original checked', () => {
    const low = lowerModule(parseIr(LOOP));
    expect(low.budgetGuards).toEqual([{ fn: 0, header: 1, charge: 9 }]);
    expect(low.versions).toEqual([]);
    const copy = code(low, 'f0.v');
    expect(charges(copy)).toHaveLength(3);
    expect(budgetBranches(copy)).toBe(0);
    const orig = code(low, 'f0.b');
    expect(charges(orig)).toHaveLength(3);
    expect(budgetBranches(orig)).toBe(3);
  });

  it('is not made without versioning or without a counted exit', () => {
    expect(lowerModule(parseIr(LOOP), undefined, { version: false }).budgetGuards).toEqual([]);
    const uncounted = LOOP.replace('  r3 = add.64 r3, 1 ; @9', '  r3 = add.64 r3, 1 ; @9\n  r3 = add.64 r3, 0 ; @9');
    expect(lowerModule(parseIr(uncounted)).budgetGuards).toEqual([]);
  });
});

// ---- on the board ----

interface Case {
  name: string;
  asm: string;
  mem: number;
}

/** crc32_table's shape: one charged block per iteration, counter up to the context length (r2). */
const single = `mov %r0, 0\nmov %r3, 0\njeq %r2, 0, out\nloop:\nmov %r5, %r1\nadd %r5, %r3\nldxb %r5, [%r5+0]\nxor %r0, %r5\nlsh %r0, 1\nadd %r3, 1\njlt %r3, %r2, loop\nout:\nexit`;
/** bubble_sort's shape: a conditional swap inside, 32-bit strict counter, an early exit on a zero byte. */
const swap = `mov %r0, 0\nmov %r3, %r1\nmov32 %r6, 0\nmov32 %r7, %r2\njeq %r2, 0, out\nloop:\nldxb %r4, [%r3+0]\njeq %r4, 0, out\njle %r4, 100, skip\nstxb [%r3+0], %r0\nadd %r0, %r4\nskip:\nadd %r0, 1\nadd %r3, 1\nadd32 %r6, 1\njlt32 %r6, %r7, loop\nout:\nexit`;
/** Counts past the context's end: an out-of-bounds fault in the loop after some charges. */
const overrun = `mov %r0, 0\nmov %r3, %r1\nmov %r6, 0\nmov %r7, %r2\nadd %r7, 3\nloop:\nldxb %r4, [%r3+0]\nadd %r0, %r4\nadd %r3, 1\nadd %r6, 1\njne %r6, %r7, loop\nexit`;
/** A counter down to 0 through a nested loop: the inner loop is guarded on each entry. */
const nested = `mov %r0, 0\nmov %r8, 3\nouter:\nmov %r6, %r2\njeq %r6, 0, next\ninner:\nadd %r0, %r6\nmul %r0, 3\nsub %r6, 1\njne %r6, 0, inner\nnext:\nsub %r8, 1\njne %r8, 0, outer\nexit`;

const CASES: Case[] = [
  { name: 'single', asm: single, mem: 9 },
  { name: 'swap', asm: swap, mem: 8 },
  { name: 'swap with zero', asm: swap, mem: 12 },
  { name: 'overrun', asm: overrun, mem: 6 },
  { name: 'nested', asm: nested, mem: 4 },
];

const memOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i === 10 ? 0 : (i * 53 + 9) & 0xff));
const BIG = 1_000_000;

function summary(r: RunResult): string {
  return r.ok ? `ok r0=0x${r.r0.toString(16)} steps=${r.steps}` : `${r.fault.kind} at ${r.fault.pc} steps=${r.steps}`;
}

describe('budget-guarded loops on the board', () => {
  beforeAll(boardReady, 120_000);

  it.each(['facts', 'raw'] as const)('charge and fault exactly as the checked lowering at every budget (%s)', async (mode) => {
    const built = CASES.map((c) => {
      const p = assembleProgram(`${c.asm}\n`, c.name);
      if (mode === 'raw') return { p, ir: buildIr(p) as IrModule, facts: undefined as ProgramFacts | undefined };
      const facts = thumbFacts(p, new Set([5]));
      return { p, ir: compileThumb(p, facts).ir, facts };
    });
    const guarded = built.map(({ ir, facts }) => compileIr(ir, facts));
    const plain = built.map(({ ir, facts }) => compileIr(ir, facts, { version: false }));
    guarded.forEach((g, i) => expect({ name: CASES[i].name, guarded: g.lowered.budgetGuards.length > 0 }).toEqual({ name: CASES[i].name, guarded: true }));
    plain.forEach((g) => expect(g.lowered.budgetGuards).toEqual([]));
    // Every budget from 0 to 2 past what the run charges with plenty.
    const needed = built.map(({ ir, p }, i) => evalIr(ir, { mem: memOf(CASES[i].mem), budget: BIG, program: p }).steps);
    const jobs: Array<{ c: number; budget: number }> = [];
    CASES.forEach((_, c) => {
      for (let b = 0; b <= needed[c] + 2; b++) jobs.push({ c, budget: b });
      jobs.push({ c, budget: BIG });
    });
    const toJob = (images: typeof guarded) => jobs.map((j): ThumbJob => ({ image: images[j.c].image, mem: memOf(CASES[j.c].mem), budget: j.budget }));
    const runs = await runThumbBatch([...toJob(guarded), ...toJob(plain)]);
    const got: string[] = [];
    const base: string[] = [];
    const want: string[] = [];
    let faults = 0;
    let fewer = 0;
    jobs.forEach((j, i) => {
      const { p, ir } = built[j.c];
      const label = `${CASES[j.c].name} budget=${j.budget}`;
      const r = toRunResult(runs[i], p, memOf(CASES[j.c].mem), j.budget);
      got.push(`${label}: ${summary(r)}`);
      base.push(`${label}: ${summary(toRunResult(runs[i + jobs.length], p, memOf(CASES[j.c].mem), j.budget))}`);
      want.push(`${label}: ${summary(evalIr(ir, { mem: memOf(CASES[j.c].mem), budget: j.budget, program: p }))}`);
      if (!r.ok && r.fault.kind === 'budget') faults++;
      if (j.budget === BIG && r.ok) {
        // The entry test costs a few instructions once per entry; each iteration then saves a branch per charge.
        expect({ label, over: runs[i].insns - runs[i + jobs.length].insns <= 12 }).toEqual({ label, over: true });
        if (runs[i].insns < runs[i + jobs.length].insns) fewer++;
      }
    });
    expect(got).toEqual(base);
    expect(got).toEqual(want);
    // The sweep reaches budget faults, and with plenty of budget the copy runs fewer instructions.
    expect(faults).toBeGreaterThan(CASES.length * 5);
    expect(fewer).toBeGreaterThanOrEqual(2);
  }, 600_000);
});
