// Loop versioning on the Thumb back end (backends/thumb/version.ts): an innermost loop walking
// memory runs a copy without checks when one entry test shows every covered access of every
// iteration in bounds, and the original, checked loop otherwise. Checked on the code (the copy's
// loop has no check, the original keeps its own), then on the emulated Cortex-M4 against the
// reference interpreter with trip counts and starts around the end of the context, so that the
// first or the last iteration is out of bounds: the fault must be the interpreter's (kind, pc,
// address), and long runs that stay in bounds must take the copy (fewer instructions than the image
// without versioning).
import { beforeAll, describe, expect, it } from 'vitest';
import { ending } from './support/board-cases.js';
import { compileIr, compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { assembleProgram } from '../compiler/asm.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import type { IrModule } from '../compiler/ir/ir.js';
import { parseIr } from '../compiler/ir/text.js';
import type { Program } from '../compiler/program.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import { interpret } from '../runtime/interp.js';
import { runThumbBatch, thumbFirmware, toRunResult, type ThumbJob } from '../runtime/thumb-engine.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

const module = (body: string, data = ''): string => `origin "test"\n${data}function main (start 0) {\n${body}\n}\n`;

/** The code of the blocks whose marks start with `prefix` (`f0.b1.`: the original loop, `f0.v1.`: its copy). */
function code(low: LoweredModule, prefix: string): ThumbInsn[] {
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks;
  const out: ThumbInsn[] = [];
  marks.forEach((mk, i) => {
    if (!mk.where.startsWith(prefix)) return;
    const end = i + 1 < marks.length ? marks[i + 1].offset : low.code.length;
    out.push(...all.filter((x) => x.address >= mk.offset && x.address < end));
  });
  return out;
}

/** Inline checks: compares of ip (ea - vbase) with a count; lookups: calls of the shared routine. */
const checks = (c: ThumbInsn[]): number => c.filter((x) => x.text.startsWith('cmp ip')).length;
const stateLoads = (c: ThumbInsn[]): number => c.filter((x) => /^ldr(\.w)? \w+, \[sp, #0x[0-9a-f]+\]$/.test(x.text)).length;

// Sums the context's bytes two at a time through a checked pointer (clang's shape).
const WALK = `b0:
  r0 = const 0x0 ; @0
  r3 = mov.64 r1 ; @1
  br.eq.64 r2, 0, b2, b1 ; @2
b1:
  r4 = load.u8 r3+0 [check mem] ; @3
  r5 = load.u8 r3+1 [check mem] ; @4
  r0 = add.64 r0, r4 ; @5
  r0 = add.64 r0, r5 ; @6
  r3 = add.64 r3, 2 ; @7
  r2 = add.64 r2, -1 ; @8
  br.ne.64 r2, 0, b1, b2 ; @9
b2:
  ret ; @10`;

describe('the versioned copy', () => {
  it('runs the walk without checks or state loads, and keeps the original checked', () => {
    const low = lowerModule(parseIr(module(WALK)));
    expect(low.versions).toEqual([{ fn: 0, header: 1, pcs: [3, 4] }]);
    const copy = code(low, 'f0.v1.');
    expect(copy.filter((x) => x.mnemonic.startsWith('ldrb'))).toHaveLength(2);
    expect(checks(copy)).toBe(0);
    expect(copy.filter((x) => x.mnemonic.startsWith('cmp'))).toHaveLength(0);
    expect(stateLoads(copy)).toBe(0);
    expect(checks(code(low, 'f0.b1.'))).toBe(1);
    // The test block reads the context's size (cnt[1] of region 1) once.
    expect(code(low, 'f0.t1.').some((x) => x.text.includes('[sp, #0x')));
  });

  it('is not made without versioning, for proven accesses, or for a loop without a counted exit', () => {
    expect(lowerModule(parseIr(module(WALK)), undefined, { version: false }).versions).toEqual([]);
    expect(lowerModule(parseIr(module(WALK.replaceAll('[check mem]', '[proven mem]')))).versions).toEqual([]);
    const uncounted = WALK.replace('  r2 = add.64 r2, -1 ; @8', '  r2 = add.64 r2, -1 ; @8\n  r2 = add.64 r2, 0 ; @8');
    expect(lowerModule(parseIr(module(uncounted))).versions).toEqual([]);
  });

  it('keeps a store into read-only data checked in the copy', () => {
    const body = `b0:
  r3 = addr data0+0 ; @0
  r6 = const 0x4 ; @1
  jump b1 ; @2
b1:
  r4 = load.u8 r1+0 [check mem] ; @3
  store.8 r3+0, r4 [check] ; @4
  r3 = add.64 r3, 1 ; @5
  r6 = add.64 r6, -1 ; @6
  br.ne.64 r6, 0, b1, b2 ; @7
b2:
  r0 = const 0x1 ; @8
  ret ; @9`;
    const low = lowerModule(parseIr(module(body, 'data ".rodata" ro 0102030405060708\n')));
    expect(low.versions).toEqual([{ fn: 0, header: 1, pcs: [3] }]);
    // The store's inline compare is against nothing writable: it goes through the lookup.
    expect(code(low, 'f0.v1.').filter((x) => x.mnemonic === 'bl').length).toBeGreaterThanOrEqual(1);
  });
});

// ---- on the board ----

interface Case {
  name: string;
  asm: string;
  mem: number;
  /** The loop must get a versioned copy (with and without facts). */
  versioned: boolean;
  /** Long enough for the copy to win back its entry test: fewer instructions when in bounds. */
  long?: boolean;
}

/** Forward walk of `k` bytes from ctx + start, counter down to 0 (64-bit or 32-bit). */
const forward = (k: number, start: number, w32 = false): string => {
  const s = w32 ? '32' : '';
  return `mov %r0, 0\nmov %r3, %r1\nadd %r3, ${start}\nmov${s} %r6, ${k}\nloop:\nldxb %r4, [%r3+0]\nadd %r0, %r4\nlsh %r0, 1\nadd %r3, 1\nsub${s} %r6, 1\njne${s} %r6, 0, loop\nexit`;
};
/** Walk of `k` halfwords downwards from ctx + start (reads [p-2, p)), counter up to k (strict). */
const backward = (k: number, start: number): string =>
  `mov %r0, 0\nmov %r3, %r1\nadd %r3, ${start}\nmov %r6, 0\nmov %r7, ${k}\nloop:\nldxh %r4, [%r3-2]\nxor %r0, %r4\nlsh %r0, 3\nadd %r3, -2\nadd %r6, 1\njlt %r6, %r7, loop\nexit`;
/** Two accesses per iteration 4 bytes apart, step 4, strict up to an immediate bound. */
const pairs = (k: number, start: number): string =>
  `mov %r0, 0\nmov %r3, %r1\nadd %r3, ${start}\nmov %r6, 0\nloop:\nldxw %r4, [%r3+0]\nldxb %r5, [%r3+7]\nadd %r0, %r4\nadd %r0, %r5\nadd %r3, 4\nadd %r6, 1\njlt %r6, ${k}, loop\nexit`;

const CASES: Case[] = [];
for (const [k, start] of [[1, 0], [3, 0], [8, 0], [4, 5], [9, 2]]) {
  for (const mem of new Set([0, start, start + k - 1, start + k, start + k + 1, 32])) {
    CASES.push({ name: `forward k=${k} start=${start} len=${mem}`, asm: forward(k, start), mem, versioned: true });
    CASES.push({ name: `forward32 k=${k} start=${start} len=${mem}`, asm: forward(k, start, true), mem, versioned: true });
  }
}
for (const [k, start] of [[1, 2], [4, 8], [5, 9], [3, 12]]) {
  for (const mem of new Set([0, start - 2 * k - 1, start - 2 * k, start - 1, start, start + 1, 32].filter((x) => x >= 0))) {
    CASES.push({ name: `backward k=${k} start=${start} len=${mem}`, asm: backward(k, start), mem, versioned: true });
  }
}
for (const [k, start] of [[1, 0], [3, 1], [5, 0]]) {
  for (const mem of new Set([4 * k + start + 3, 4 * k + start + 4, 4 * k + start + 5, 4 * (k - 1) + start + 8, 40])) {
    CASES.push({ name: `pairs k=${k} start=${start} len=${mem}`, asm: pairs(k, start), mem, versioned: true });
  }
}
for (const [asm, mem] of [[forward(200, 3), 256], [forward(150, 0, true), 150], [backward(100, 240), 256], [pairs(50, 1), 208]] as const) {
  CASES.push({ name: `long ${asm.split('\n').length} len=${mem}`, asm, mem, versioned: true, long: true });
}
// A counter starting at 0 and decremented wraps: 2^64 - 1 iterations, so the test fails and the
// checked loop runs off the end of the context.
CASES.push({ name: 'wrapped counter', asm: forward(0, 0), mem: 24, versioned: true });
CASES.push({ name: 'wrapped 32-bit counter', asm: forward(0, 3, true), mem: 24, versioned: true });


const memOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 29 + 7) & 0xff);
const BUDGET = 1_000_000;

describe('versioned loops on the board', () => {
  beforeAll(async () => {
    expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
    expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
    await thumbFirmware();
  }, 120_000);

  it.each(['facts', 'raw'] as const)('end as on the interpreter, and take the copy when in bounds (%s)', async (mode) => {
    const progs: Program[] = CASES.map((c) => assembleProgram(`${c.asm}\n`, c.name));
    const irOf = (p: Program): { ir: IrModule; facts?: ReturnType<typeof thumbFacts> } => {
      if (mode === 'raw') return { ir: buildIr(p) };
      const facts = thumbFacts(p, new Set([5]));
      return { ir: compileThumb(p, facts).ir, facts };
    };
    const built = progs.map(irOf);
    const versioned = built.map(({ ir, facts }) => compileIr(ir, facts));
    const plain = built.map(({ ir, facts }) => compileIr(ir, facts, { version: false }));
    versioned.forEach((c, i) => {
      expect({ name: CASES[i].name, versioned: c.lowered.versions.length > 0 }).toEqual({ name: CASES[i].name, versioned: CASES[i].versioned });
    });
    const jobs: ThumbJob[] = [...versioned, ...plain].map((c, i) => ({ image: c.image, mem: memOf(CASES[i % CASES.length].mem), budget: BUDGET }));
    const runs = await runThumbBatch(jobs);
    const got: string[] = [];
    const want: string[] = [];
    let faster = 0;
    let long = 0;
    CASES.forEach((c, i) => {
      const run = runs[i];
      const base = runs[i + CASES.length];
      expect({ name: c.name, canary: run.canaryOk }).toEqual({ name: c.name, canary: true });
      const r = toRunResult(run, progs[i], memOf(c.mem), BUDGET);
      got.push(`${c.name}: ${ending(r)}`);
      want.push(`${c.name}: ${ending(interpret(progs[i], { mem: memOf(c.mem), budget: BUDGET }))}`);
      // Same ending as the image without versioning, and in bounds: fewer instructions (the copy ran).
      expect(`${c.name}: ${ending(toRunResult(base, progs[i], memOf(c.mem), BUDGET))}`).toBe(got[i]);
      if (r.ok && c.long === true) {
        long++;
        // Per iteration the copy runs at least the check's compare and branch fewer.
        if (run.insns + 100 < base.insns) faster++;
      }
    });
    expect(got).toEqual(want);
    expect(got.filter((g) => g.includes('out-of-bounds')).length).toBeGreaterThan(20);
    expect(got.filter((g) => g.includes(': ok ')).length).toBeGreaterThan(40);
    expect(long).toBe(4);
    expect(faster).toBe(long);
    expect(got.find((g) => g.startsWith('wrapped counter'))).toMatch(/out-of-bounds at 4 addr=0x[0-9a-f]+ size=1/);
  }, 300_000);

  it('runs a walk over read-only data (a constant region size) and faults a store into it', async () => {
    const walk = (k: number, start: number): string => `b0:
  r0 = const 0x0 ; @0
  r3 = addr data0+${start} ; @1
  r6 = const 0x${k.toString(16)} ; @2
  jump b1 ; @3
b1:
  r4 = load.u8 r3+0 [check] ; @4
  r0 = add.64 r0, r4 ; @5
  r0 = shl.64 r0, 1 ; @6
  r3 = add.64 r3, 1 ; @7
  r6 = add.64 r6, -1 ; @8
  br.ne.64 r6, 0, b1, b2 ; @9
b2:
  ret ; @10`;
    const data = `data ".rodata" ro ${Array.from({ length: 12 }, (_, i) => (i * 17 + 3).toString(16).padStart(2, '0')).join('')}\n`;
    const store = walk(4, 0).replace('  r0 = add.64 r0, r4 ; @5', '  store.8 r3+0, r4 [check] ; @5');
    const bodies = [walk(12, 0), walk(11, 1), walk(12, 1), walk(3, 9), walk(3, 10), walk(2, 11), store];
    const mods = bodies.map((b) => parseIr(module(b, data)));
    const images = mods.map((m) => compileIr(m));
    images.slice(0, 6).forEach((c) => expect(c.lowered.versions).toHaveLength(1));
    const runs = await runThumbBatch(images.map((c) => ({ image: c.image, budget: BUDGET })));
    const dummy = assembleProgram('exit\n', 'ir');
    const got = runs.map((r) => ending(toRunResult(r, dummy, undefined, BUDGET)));
    const want = mods.map((m) => ending(evalIr(m, { budget: BUDGET })));
    expect(got).toEqual(want);
    expect(got.slice(0, 6).map((g) => g.split(' ')[0])).toEqual(['ok', 'ok', 'out-of-bounds', 'ok', 'out-of-bounds', 'out-of-bounds']);
    expect(got[6]).toMatch(/^permission at 5 addr=/);
  }, 120_000);
});
