// Thumb images specialised for one context length (IMAGE.md "Required context length"): the image
// records the length its facts assumed, the device runtime refuses any other before running code,
// and the `thumb` engine compiles per length. On the emulated Cortex-M4 (QEMU mps2-an386), every
// specialised run must end as on the reference interpreter, including its faults (the facts for a
// known length never prove an access that can fault), and every run's canaries must be intact.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileThumb, compileThumbAot, requiredMemLength, thumbFacts } from '../backends/thumb/aot.js';
import { ANY_MEM_LENGTH, crc32, expectedBases, H, HEADER_SIZE, ImageError, readImage, SIZED_HEADER_SIZE, writeImage, type ImageContents } from '../backends/thumb/image.js';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { loadVerified } from '../runtime/container.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { prepareThumb, runThumbBatch, thumbEngine, thumbEngineWith, thumbFirmware, ThumbBoardError, toRunResult, type ThumbJob, type ThumbRun } from '../runtime/thumb-engine.js';
import { runTestText } from '../cli/conformance.js';
import { compileBpf, hasClang } from './support/clang.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';
import { generateProgram } from './support/progen.js';

const FC_ERR_SHORT = 16;
const FC_ERR_FORMAT = 21;
const FC_ERR_CONTEXT = 28;
const BUDGET = 100_000_000;
const helpers = conformanceHelpers();

beforeAll(async () => {
  expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
  expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
  await thumbFirmware();
}, 120_000);

/** What the interpreter and the board must agree on. */
function ending(r: RunResult): string {
  return r.ok ? `ok r0=0x${r.r0.toString(16)}` : `${r.fault.kind} at ${r.fault.pc}${r.fault.addr !== undefined ? ` addr=0x${r.fault.addr.toString(16)} size=${r.fault.size}` : ''}`;
}

const sized = (p: Program, len: number): Uint8Array => compileThumb(p, thumbFacts(p, helpers.ids(), { memSize: len })).image;
const generic = (p: Program): Uint8Array => compileThumb(p, thumbFacts(p, helpers.ids())).image;

/** Recomputes the CRC after an edit, so that only the edited check can refuse the image. */
function patched(image: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const out = image.slice();
  const v = new DataView(out.buffer);
  edit(v);
  v.setUint32(H.CRC, 0, true);
  v.setUint32(H.CRC, crc32(out), true);
  return out;
}

/** A run fc_run refused: no code ran, nothing was charged, nothing outside the container changed. */
function expectRefusedRun(run: ThumbRun, what: string): void {
  expect({ what, status: run.status, refused: run.refused, insns: run.insns, steps: run.steps, r0: run.r0, canary: run.canaryOk }).toEqual({
    what, status: FC_ERR_CONTEXT, refused: false, insns: 0, steps: 0, r0: 0n, canary: true,
  });
}

// Sums the context's words while the offset is below the length: the last word straddles the end
// unless the length is a multiple of 4.
const LOOP_ASM = 'mov %r0, 0\nmov %r3, 0\njge %r3, %r2, +6\nmov %r4, %r1\nadd %r4, %r3\nldxw %r5, [%r4+0]\nadd %r0, %r5\nadd %r3, 4\nja -7\nexit';
const LOOP = assembleProgram(`${LOOP_ASM}\n`, 'word-loop');

describe('the image format', () => {
  const contents = (memLength?: number): ImageContents => ({
    code: new Uint8Array([0x70, 0x47]), entry: 0, sites: [], sections: [], helpers: [], nregs: 11, memBase: expectedBases([]).mem,
    ...(memLength !== undefined ? { memLength } : {}),
  });

  it('keeps the 64-byte header for any length and writes a 68-byte one with the required length', () => {
    const any = writeImage(contents());
    const v = new DataView(any.buffer);
    expect(v.getUint16(H.HEADER_SIZE, true)).toBe(HEADER_SIZE);
    expect(v.getUint32(H.CODE_OFF, true)).toBe(64);
    expect(readImage(any).memLength).toBeUndefined();
    for (const len of [0, 1, 360, 0xf0000000]) {
      const img = writeImage(contents(len));
      const w = new DataView(img.buffer);
      expect(w.getUint16(H.HEADER_SIZE, true)).toBe(SIZED_HEADER_SIZE);
      expect(w.getUint32(H.MEM_LENGTH, true)).toBe(len);
      expect(w.getUint32(H.CODE_OFF, true)).toBe(68);
      expect(readImage(img)).toEqual({ ...contents(len), code: contents().code });
    }
  });

  it('reads a 68-byte header holding 0xffffffff as any length', () => {
    const img = patched(writeImage(contents(5)), (v) => v.setUint32(H.MEM_LENGTH, ANY_MEM_LENGTH, true));
    expect(readImage(img).memLength).toBeUndefined();
  });

  it('refuses to write a length that is no byte count', () => {
    for (const bad of [-1, 1.5, ANY_MEM_LENGTH, Number.NaN]) expect(() => writeImage(contents(bad)), String(bad)).toThrow(RangeError);
  });

  it('refuses other header sizes and a buffer shorter than the header it announces', () => {
    const img = writeImage(contents(8));
    expect(() => readImage(patched(img, (v) => v.setUint16(H.HEADER_SIZE, 66, true)))).toThrow(/header size 66 is neither 64 nor 68/);
    const short = patched(img.slice(0, 66), (v) => v.setUint32(H.IMAGE_SIZE, 66, true));
    expect(() => readImage(short)).toThrow(ImageError);
    expect(() => readImage(short)).toThrow(/66 bytes is shorter than the 68-byte header/);
  });

  it('records the size the facts assumed, and nothing for facts for any size', () => {
    const f8 = thumbFacts(LOOP, helpers.ids(), { memSize: 8 });
    expect(requiredMemLength(f8)).toBe(8);
    expect(readImage(compileThumb(LOOP, f8).image).memLength).toBe(8);
    expect(readImage(compileThumb(LOOP, thumbFacts(LOOP, helpers.ids())).image).memLength).toBeUndefined();
    expect(readImage(compileThumb(LOOP).image).memLength).toBeUndefined();
  });

  it('specialises ahead-of-time images on request (--mem-size)', async () => {
    const img = (await compileThumbAot(LOOP, { emit: 'image', memSize: 12 })) as Uint8Array;
    expect(readImage(img).memLength).toBe(12);
    expect(readImage((await compileThumbAot(LOOP, { emit: 'image' })) as Uint8Array).memLength).toBeUndefined();
    // "FCT2", version 1, header size 68 (0x44).
    expect(await compileThumbAot(LOOP, { emit: 'c', memSize: 12 })).toMatch(/0x46, 0x43, 0x54, 0x32, 0x01, 0x00, 0x44, 0x00,/);
  });

  it('rejects context sizes that are no byte count', () => {
    for (const bad of [-4, 2.5, ANY_MEM_LENGTH]) expect(() => thumbFacts(LOOP, helpers.ids(), { memSize: bad }), String(bad)).toThrow(RangeError);
  });

  it('proves more accesses with the length known (the point of specialising)', () => {
    const p = assembleProgram('ldxw %r0, [%r1+8]\nexit\n', 'word at 8');
    expect(thumbFacts(p, helpers.ids()).access.get(0)?.verdict).toBe('check');
    expect(thumbFacts(p, helpers.ids(), { memSize: 12 }).access.get(0)?.verdict).toBe('proven');
    expect(thumbFacts(p, helpers.ids(), { memSize: 11 }).access.get(0)?.verdict).not.toBe('proven');
  });
});

describe('the device runtime enforces the required length', () => {
  it('refuses the header the host refuses, with the same checks', async () => {
    const img = sized(LOOP, 12);
    const runs = await runThumbBatch([
      { image: patched(img, (v) => v.setUint16(H.HEADER_SIZE, 66, true)), mem: new Uint8Array(12) },
      { image: patched(img.slice(0, 67), (v) => v.setUint32(H.IMAGE_SIZE, 67, true)), mem: new Uint8Array(12) },
    ]);
    expect(runs.map((r) => [r.refused, r.status])).toEqual([[true, FC_ERR_FORMAT], [true, FC_ERR_SHORT]]);
  }, 60_000);

  it('runs a specialised image only with its length, and with no context only when that is 0', async () => {
    const mem = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i + 1);
    const img12 = sized(LOOP, 12);
    const img0 = sized(LOOP, 0);
    // The length comes from the header, not from the code: the same image with the field edited
    // runs with the edited length only (the facts no longer hold, but nothing here reads past 12).
    const img16 = patched(img12, (v) => v.setUint32(H.MEM_LENGTH, 16, true));
    const jobs: ThumbJob[] = [
      { image: img12, mem: mem(12) },
      { image: img12, mem: mem(11) },
      { image: img12, mem: mem(13) },
      { image: img12, mem: mem(0) },
      { image: img12 },
      { image: img0 },
      { image: img0, mem: mem(0) },
      { image: img0, mem: mem(4) },
      { image: img16, mem: mem(12) },
    ];
    const runs = await runThumbBatch(jobs);
    expect(ending(toRunResult(runs[0], LOOP, mem(12), BUDGET))).toBe(ending(interpret(LOOP, { mem: mem(12) })));
    for (const i of [1, 2, 3, 4, 7, 8]) expectRefusedRun(runs[i], `run ${i}`);
    expect(ending(toRunResult(runs[5], LOOP, undefined, BUDGET))).toBe(ending(interpret(LOOP, {})));
    expect(ending(toRunResult(runs[6], LOOP, mem(0), BUDGET))).toBe(ending(interpret(LOOP, { mem: mem(0) })));
    expect(() => toRunResult(runs[1], LOOP, mem(11), BUDGET)).toThrow(ThumbBoardError);
    expect(() => toRunResult(runs[1], LOOP, mem(11), BUDGET)).toThrow(/refused to run the image on a 11-byte context: the image was compiled for another context length/);
  }, 60_000);
});

interface Case {
  name: string;
  program: Program;
  mem: Uint8Array;
}

function benchCases(): Case[] {
  expect(hasClang('clang') && hasClang('clang-19'), 'clang and clang-19 are needed').toBe(true);
  const cases: Case[] = [];
  for (const p of PROGRAMS) {
    for (const [clang, mcpu] of [['clang', 'v3'], ['clang-19', 'v4']] as const) {
      const obj = compileBpf(sourcePath(p), { clang, mcpu });
      const { program } = loadVerified(obj, `${p.name}.${mcpu}.o`, { entry: p.name, helpers });
      cases.push({ name: `${p.name}.${mcpu}`, program, mem: p.input() });
    }
  }
  return cases;
}

describe('benchmark programs (clang output), specialised', () => {
  let cases: Case[] = [];
  let runs: ThumbRun[] = [];
  beforeAll(async () => {
    cases = benchCases();
    // Per case: specialised, generic, then the specialised image on two other lengths.
    const jobs = cases.flatMap((c): ThumbJob[] => {
      const s = sized(c.program, c.mem.length);
      return [
        { image: s, mem: c.mem.slice(), budget: BUDGET },
        { image: generic(c.program), mem: c.mem.slice(), budget: BUDGET },
        { image: s, mem: c.mem.slice(0, c.mem.length - 1), budget: BUDGET },
        { image: s, mem: new Uint8Array([...c.mem, 0, 0, 0, 0]), budget: BUDGET },
      ];
    });
    runs = await runThumbBatch(jobs);
  }, 300_000);

  it('end as on the interpreter, specialised and generic', () => {
    expect(cases).toHaveLength(2 * PROGRAMS.length);
    const got = cases.flatMap((c, i) => [0, 1].map((k) => `${c.name}/${k === 0 ? 'sized' : 'generic'}: ${ending(toRunResult(runs[4 * i + k], c.program, c.mem, BUDGET))}`));
    const want = cases.flatMap((c) => ['sized', 'generic'].map((k) => `${c.name}/${k}: ${ending(interpret(c.program, { mem: c.mem.slice(), budget: BUDGET }))}`));
    expect(got).toEqual(want);
    expect(want.every((w) => w.includes(': ok '))).toBe(true);
  });

  it('execute fewer instructions specialised than generic', () => {
    const total = (k: number): number => cases.reduce((a, _, i) => a + runs[4 * i + k].insns, 0);
    expect(total(0)).toBeLessThan(total(1));
    // None gets slower by more than noise in the register allocation.
    cases.forEach((c, i) => expect(runs[4 * i].insns, c.name).toBeLessThanOrEqual(runs[4 * i + 1].insns * 1.02));
  });

  it('refuse every other context length without running', () => {
    cases.forEach((c, i) => {
      expectRefusedRun(runs[4 * i + 2], `${c.name} shorter`);
      expectRefusedRun(runs[4 * i + 3], `${c.name} longer`);
    });
  });
});

describe('the conformance suite, specialised per test', () => {
  const cases = dataFiles(CONFORMANCE_TESTS).map((file) => {
    const test = parseDataFile(readFileSync(file, 'utf8'));
    const program = programOfTest(test, basename(file));
    verifyStructure(program, { helpers: helpers.ids() });
    return { name: basename(file), program, mem: test.mem, expected: test.result };
  });

  it('every test passes on the engine compiling per length, and each image is specialised', async () => {
    expect(cases).toHaveLength(313);
    const runnables = cases.map((c) => prepareThumb(c.program, helpers));
    const results = await Promise.all(cases.map(async (c, i) => runnables[i].run({ mem: c.mem, budget: BUDGET })));
    const wrong: string[] = [];
    results.forEach((got, i) => {
      const c = cases[i];
      const want = interpret(c.program, { mem: c.mem, budget: BUDGET });
      if (ending(got) !== ending(want) || !got.ok || got.r0 !== c.expected) wrong.push(`${c.name}: board ${ending(got)}, interpreter ${ending(want)}, expected ${c.expected}`);
      expect(runnables[i].cachedLengths, c.name).toEqual([c.mem?.length ?? 0]);
      expect(readImage(runnables[i].imageFor(c.mem?.length ?? 0)).memLength, c.name).toBe(c.mem?.length ?? 0);
    });
    expect(wrong).toEqual([]);
  }, 180_000);

  it('passes through the conformance runner with either engine setting', async () => {
    for (const engine of [thumbEngine, thumbEngineWith({ specialize: false })]) {
      const outcomes = await Promise.all(dataFiles(CONFORMANCE_TESTS).map(async (f) => runTestText(basename(f), readFileSync(f, 'utf8'), engine, helpers)));
      expect(outcomes.filter((o) => !o.pass).map((o) => `${engine.description}: ${o.name}: ${o.why}`)).toEqual([]);
    }
  }, 240_000);

  it('refuses each specialised image on another length, which the generic image runs', async () => {
    const withMem = cases.filter((c) => c.mem !== undefined && c.mem.length > 0);
    expect(withMem.length).toBeGreaterThan(20);
    const jobs = withMem.flatMap((c): ThumbJob[] => {
      const other = new Uint8Array([...(c.mem ?? []), 0xaa]);
      return [
        { image: sized(c.program, c.mem!.length), mem: other, budget: BUDGET },
        { image: sized(c.program, c.mem!.length), budget: BUDGET },
        { image: generic(c.program), mem: other, budget: BUDGET },
      ];
    });
    const runs = await runThumbBatch(jobs);
    withMem.forEach((c, i) => {
      expectRefusedRun(runs[3 * i], `${c.name} one byte longer`);
      expectRefusedRun(runs[3 * i + 1], `${c.name} no context`);
      const other = new Uint8Array([...(c.mem ?? []), 0xaa]);
      expect(ending(toRunResult(runs[3 * i + 2], c.program, other, BUDGET)), c.name).toBe(ending(interpret(c.program, { mem: other, budget: BUDGET })));
    });
  }, 120_000);
});

describe('the engine', () => {
  it('compiles once per context length and keeps the images', async () => {
    const r = prepareThumb(LOOP, helpers);
    expect(r.specialize).toBe(true);
    const mem = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    const lengths = [12, 10, 12, 0, 16, 12];
    const got = await Promise.all(lengths.map(async (n) => r.run({ mem: mem(n) })));
    expect(got.map(ending)).toEqual(lengths.map((n) => ending(interpret(LOOP, { mem: mem(n) }))));
    expect(got.some((g) => !g.ok)).toBe(true); // 10 bytes: the last word straddles the end
    expect(r.cachedLengths.sort((a, b) => a - b)).toEqual([0, 10, 12, 16]);
    const before = r.imageFor(12);
    await r.run({ mem: mem(12) });
    expect(r.imageFor(12)).toBe(before);
  }, 60_000);

  it('bounds the images it keeps, dropping the least recently used', () => {
    const r = prepareThumb(LOOP, helpers);
    for (let n = 0; n < 20; n++) r.imageFor(n);
    expect(r.cachedLengths).toEqual([...Array(16).keys()].map((k) => k + 4));
    r.imageFor(5);
    r.imageFor(20);
    expect(r.cachedLengths).toHaveLength(16);
    expect(r.cachedLengths).toContain(5);
    expect(r.cachedLengths).not.toContain(4);
    expect(r.cachedLengths.at(-1)).toBe(20);
  });

  it('without specialisation runs one image for any length, from the caller\'s facts', async () => {
    const facts = thumbFacts(LOOP, helpers.ids());
    const r = prepareThumb(LOOP, helpers, facts, { specialize: false });
    expect(readImage(r.image).memLength).toBeUndefined();
    const mem = (n: number): Uint8Array => new Uint8Array(n).fill(3);
    const got = await Promise.all([12, 10, 4].map(async (n) => r.run({ mem: mem(n) })));
    expect(got.map(ending)).toEqual([12, 10, 4].map((n) => ending(interpret(LOOP, { mem: mem(n) }))));
    expect(r.cachedLengths).toEqual([]);
  }, 60_000);
});

// Accesses at and past the end of a context of known length: the facts for that length must leave
// every one that can fault checked, so the board faults where the interpreter does (same pc,
// address and size).
const EDGES: { name: string; asm: string; lengths: number[]; mem?: (n: number) => Uint8Array }[] = [
  { name: 'word loop', asm: LOOP_ASM, lengths: [0, 4, 9, 10, 11, 12, 64] },
  {
    name: 'byte loop to the end inclusive (off by one)',
    asm: 'mov %r0, 0\nmov %r3, %r1\nadd %r2, %r1\njgt %r3, %r2, +4\nldxb %r4, [%r3+0]\nadd %r0, %r4\nadd %r3, 1\nja -5\nexit',
    lengths: [1, 7, 32],
  },
  { name: 'constant offset at the end', asm: 'ldxw %r0, [%r1+6]\nexit', lengths: [8, 9, 10, 12] },
  { name: 'store at the end', asm: 'stb [%r1+8], 1\nldxb %r0, [%r1+7]\nexit', lengths: [8, 9] },
  {
    name: 'index read from the context',
    asm: 'ldxb %r3, [%r1+0]\nadd %r3, %r1\nldxb %r0, [%r3+0]\nexit',
    lengths: [16, 17, 200],
    mem: (n) => Uint8Array.from({ length: n }, (_, i) => (i === 0 ? 16 : i)),
  },
  {
    name: '8-byte read at a masked index',
    asm: 'ldxb %r3, [%r1+0]\nand %r3, 15\nadd %r3, %r1\nldxdw %r0, [%r3+0]\nexit',
    lengths: [16, 23, 24],
    mem: (n) => Uint8Array.from({ length: n }, (_, i) => (i === 0 ? 13 : i)),
  },
  {
    name: 'length-checked read that checks one byte short',
    asm: 'mov %r0, 0\njlt %r2, 3, +2\nldxw %r0, [%r1+0]\nexit\nexit',
    lengths: [0, 2, 3, 4],
  },
];

describe('out-of-bounds accesses in specialised images', () => {
  it('fault exactly as on the interpreter at the declared length', async () => {
    const cases: Case[] = EDGES.flatMap((e) => {
      const program = assembleProgram(`${e.asm}\n`, e.name);
      return e.lengths.map((n) => ({ name: `${e.name} @${n}`, program, mem: e.mem?.(n) ?? Uint8Array.from({ length: n }, (_, i) => i + 1) }));
    });
    const runs = await runThumbBatch(cases.map((c) => ({ image: sized(c.program, c.mem.length), mem: c.mem.slice(), budget: BUDGET })));
    const got = cases.map((c, i) => `${c.name}: ${ending(toRunResult(runs[i], c.program, c.mem, BUDGET))}`);
    const want = cases.map((c) => `${c.name}: ${ending(interpret(c.program, { mem: c.mem.slice(), budget: BUDGET }))}`);
    expect(got).toEqual(want);
    const faults = want.filter((w) => w.includes('out-of-bounds')).length;
    expect(faults).toBeGreaterThanOrEqual(8);
    // The lengths where the edge access is in bounds are where the facts prove it (no check left).
    const provenMem = (c: Case, f = thumbFacts(c.program, helpers.ids(), { memSize: c.mem.length })): number =>
      [...f.access.values()].filter((a) => a.verdict === 'proven' && a.region === 'mem').length;
    const sizedProofs = cases.reduce((n, c) => n + provenMem(c), 0);
    const genericProofs = cases.reduce((n, c) => n + provenMem(c, thumbFacts(c.program, helpers.ids())), 0);
    expect(sizedProofs).toBeGreaterThan(genericProofs + 5);
    expect(runs.every((r) => r.canaryOk)).toBe(true);
  }, 60_000);

  it('generated programs (many with deliberate faults) agree with the interpreter', async () => {
    const N = 200;
    const cases: Case[] = Array.from({ length: N }, (_, i) => {
      const g = generateProgram(7000 + i, { size: 40, callees: 3 });
      return { name: `progen:${7000 + i}`, program: g.program, mem: g.mem };
    });
    const budget = 1_000_000;
    const facts = cases.map((c) => thumbFacts(c.program, helpers.ids(), { memSize: c.mem.length }));
    const runs = await runThumbBatch(cases.map((c, i) => ({ image: compileThumb(c.program, facts[i]).image, mem: c.mem.slice(), budget })));
    const mismatches: string[] = [];
    let oob = 0;
    let proven = 0;
    runs.forEach((run, i) => {
      const c = cases[i];
      expect(run.canaryOk, c.name).toBe(true);
      const got = toRunResult(run, c.program, c.mem, budget);
      const want = interpret(c.program, { mem: c.mem.slice(), budget });
      if (!want.ok && want.fault.kind === 'out-of-bounds') oob++;
      proven += [...facts[i].access.values()].filter((a) => a.verdict === 'proven' && a.region === 'mem').length;
      if (ending(got) !== ending(want)) mismatches.push(`${c.name}: board ${ending(got)}, interpreter ${ending(want)}`);
    });
    expect(mismatches).toEqual([]);
    expect(oob).toBeGreaterThan(N / 20);
    expect(proven).toBeGreaterThan(N);
  }, 300_000);
});
