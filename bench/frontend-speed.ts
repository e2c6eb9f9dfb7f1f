// Front-end speed: how many eBPF instructions per millisecond each compile stage handles, on
// large generated programs (straight-line code, counted loops, local calls) and on the benchmark
// programs as clang compiles them. Each stage is timed alone, after warm-up, as the median of
// several runs. Not part of `npm test` (speed is measured here, never in unit tests).
//
// Standalone: npx esbuild bench/frontend-speed.ts --bundle --platform=node --format=esm \
//   --outfile=/tmp/fs.mjs --external:binaryen --external:wabt --external:capstone-wasm \
//   && node /tmp/fs.mjs [--quick]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { assembleProgram } from '../compiler/asm.js';
import { loadElf } from '../compiler/elf.js';
import { frontEnd } from '../compiler/frontend.js';
import { classify, isInvalid } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import { analyze, type AnalysisOptions } from '../compiler/verify/absint.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { PROGRAMS, sourcePath, type BenchProgram } from './programs.js';
import { BPF_COMPILERS, compileBpf, missingTool, run } from './toolchain.js';

export interface StageTime {
  /** Median milliseconds of one run (undefined: the stage failed or is unavailable). */
  ms?: number;
  /** eBPF instruction slots per millisecond. */
  perMs?: number;
  /** Why there is no time. */
  error?: string;
}

export interface FrontendRow {
  program: string;
  insns: number;
  /** Memory accesses the analysis proved, out of all accesses it judged. */
  proven: number;
  accesses: number;
  stages: Record<StageName, StageTime>;
}

export type StageName = 'structure' | 'analyze' | 'ir' | 'baseline' | 'wasm';

export interface FrontendSpeedOptions {
  quick: boolean;
}

export interface FrontendSpeedResult {
  rows: FrontendRow[];
  markdown: string;
}

const STAGES: readonly { name: StageName; title: string }[] = [
  { name: 'structure', title: 'verifyStructure' },
  { name: 'analyze', title: 'analyze (absint)' },
  { name: 'ir', title: 'frontEnd (IR build + passes)' },
  { name: 'baseline', title: 'compileToWasm baseline (facts given: the JIT\'s path to a ready instance)' },
  { name: 'wasm', title: 'compileToWasm optimised (facts given: the tier-up)' },
];

interface Timing { warmup: number; runs: number; minMs: number }
const TIMING: Record<'quick' | 'full', Timing> = {
  quick: { warmup: 3, runs: 5, minMs: 100 },
  full: { warmup: 10, runs: 21, minMs: 400 },
};

type WasmCompile = (program: Program, opts: { facts: ProgramFacts; helpers: ReadonlySet<number>; tier: 'baseline' | 'optimized' }) => unknown;

// ---- the generated programs ----

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALU_OPS = ['add', 'sub', 'mul', 'xor', 'or', 'and', 'rsh', 'lsh', 'arsh'] as const;

/**
 * A valid program of about `slots` instruction slots: the entry keeps mem in r6 and its length in
 * r7, accumulates into r0/r8/r9 and mixes straight-line ALU code, spills to the stack, reads of
 * mem guarded by the length, counted loops over mem and over a stack array (one loop per
 * `slots / loops` slots), and calls to a few local functions that take a pointer into the
 * caller's frame.
 */
export function generateProgram(slots: number, loops: number, seed: number): Program {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const FUNCS = 6;
  const lines: string[] = [
    'mov %r6, %r1', 'mov %r7, %r2', 'mov %r0, 0', 'mov %r8, 1', 'mov %r9, 2',
  ];
  for (let o = 8; o <= 64; o += 8) lines.push(`stdw [%r10-${o}], 0`);
  let label = 0;
  const fresh = (): string => `L${label++}`;
  const straight = (n: number): void => {
    lines.push(`mov %r3, ${int(0, 1000)}`, 'mov %r4, %r8', `mov %r5, ${int(1, 50)}`);
    const regs = ['%r0', '%r3', '%r4', '%r5', '%r8', '%r9'];
    for (let k = 0; k < n; k++) {
      const op = pick(ALU_OPS);
      const w = r() < 0.25 ? '32' : '';
      const shift = op === 'rsh' || op === 'lsh' || op === 'arsh';
      const src = shift || r() < 0.5 ? `${int(shift ? 1 : 1, shift ? 7 : 255)}` : pick(regs);
      lines.push(`${op}${w} ${pick(regs)}, ${src}`);
    }
  };
  const spill = (): void => {
    const o = 8 * int(1, 8);
    lines.push(`stxdw [%r10-${o}], %r8`, `ldxdw %r3, [%r10-${o}]`, 'add %r9, %r3', `stxw [%r10-${o}], %r9`, `ldxw %r4, [%r10-${o}]`, 'xor %r0, %r4');
  };
  const guardedRead = (): void => {
    const k = int(0, 60);
    const skip = fresh();
    lines.push(`jlt %r7, ${k + 4}, ${skip}`, `ldxw %r3, [%r6+${k}]`, 'add %r0, %r3', `${skip}:`);
  };
  const memLoop = (): void => {
    const n = int(4, 64);
    const head = fresh(), skip = fresh();
    lines.push('mov %r3, 0', `jlt %r7, ${n}, ${skip}`, `${head}:`, 'mov %r4, %r6', 'add %r4, %r3', 'ldxb %r5, [%r4+0]',
      'add %r0, %r5', 'add %r3, 1', `jlt %r3, ${n}, ${head}`, `${skip}:`);
  };
  const stackLoop = (): void => {
    const head = fresh();
    lines.push('mov %r3, 0', `${head}:`, 'mov %r4, %r3', 'and %r4, 7', 'lsh %r4, 3', 'mov %r5, %r10', 'add %r5, -64', 'add %r5, %r4',
      'ldxdw %r4, [%r5+0]', 'add %r4, %r3', 'stxdw [%r5+0], %r4', 'add %r3, 1', `jlt %r3, ${int(8, 40)}, ${head}`);
  };
  const nestedLoop = (): void => {
    const outer = fresh(), inner = fresh();
    lines.push('mov %r3, 0', `${outer}:`, 'mov %r4, 0', `${inner}:`, 'add %r0, %r4', 'add %r4, 1', `jlt %r4, ${int(2, 9)}, ${inner}`,
      'add %r3, 1', `jlt %r3, ${int(2, 9)}, ${outer}`);
  };
  const call = (): void => {
    lines.push('mov %r1, %r10', `add %r1, -${8 * int(1, 8)}`, `mov %r2, ${int(0, 100)}`, `call local f${int(0, FUNCS - 1)}`, 'add %r8, %r0');
  };
  const loopKinds = [memLoop, memLoop, stackLoop, nestedLoop];
  const perLoop = Math.max(1, Math.floor(slots / Math.max(1, loops)));
  let sinceLoop = 0;
  let counted = 0, slotsSoFar = 0;
  const slotCount = (): number => {
    for (; counted < lines.length; counted++) if (!lines[counted].endsWith(':')) slotsSoFar++;
    return slotsSoFar;
  };
  while (slotCount() < slots - 40 * FUNCS) {
    const before = slotCount();
    if (sinceLoop >= perLoop) {
      pick(loopKinds)();
      sinceLoop = 0;
    } else {
      const x = r();
      if (x < 0.45) straight(int(6, 20));
      else if (x < 0.65) spill();
      else if (x < 0.85) guardedRead();
      else call();
    }
    sinceLoop += slotCount() - before;
  }
  lines.push('mov %r0, %r8', 'exit');
  for (let f = 0; f < FUNCS; f++) {
    lines.push(`f${f}:`, `stdw [%r1+0], ${f}`, 'ldxdw %r0, [%r1+0]', 'add %r0, %r2', 'mov %r3, %r2', 'and %r3, 15', 'mov %r4, 0');
    const head = fresh();
    lines.push(`${head}:`, 'add %r0, %r4', `mul %r0, ${f + 3}`, 'add %r4, 1', `jlt %r4, %r3, ${head}`);
    for (let k = 0; k < 20; k++) lines.push(`${pick(['add', 'xor', 'or', 'sub'])} %r0, ${int(1, 99)}`);
    lines.push(`stxdw [%r1+0], %r0`, 'exit');
  }
  return assembleProgram(lines.join('\n'), `generated-${slots}-${seed}`);
}

// ---- measuring ----

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median time of f after warm-up; repeats cheap calls until a sample is long enough to time. */
function timeIt(f: () => unknown, t: Timing): number {
  for (let i = 0; i < t.warmup; i++) f();
  // Calls per sample so one sample lasts at least minMs / runs.
  const start = performance.now();
  f();
  const one = Math.max(performance.now() - start, 1e-3);
  const reps = Math.max(1, Math.ceil(t.minMs / t.runs / one));
  const samples: number[] = [];
  for (let i = 0; i < t.runs; i++) {
    const s = performance.now();
    for (let k = 0; k < reps; k++) f();
    samples.push((performance.now() - s) / reps);
  }
  return median(samples);
}

function calledHelpers(program: Program): Set<number> {
  const ids = new Set<number>(conformanceHelpers().ids());
  for (const insn of program.insns) {
    const c = classify(insn);
    if (!isInvalid(c) && c.form === 'call' && !c.local) ids.add(insn.imm);
  }
  return ids;
}

async function loadWasmCompiler(): Promise<WasmCompile | string> {
  try {
    const mod = await import('../backends/wasm/compile.js');
    return (program, opts) => mod.compileToWasm(program, { facts: opts.facts, helpers: opts.helpers, tier: opts.tier });
  } catch (e) {
    return `the Wasm back end is not available (${e instanceof Error ? e.message : String(e)})`;
  }
}

function stage(f: () => unknown, t: Timing, insns: number): StageTime {
  try {
    const ms = timeIt(f, t);
    return { ms, perMs: insns / ms };
  } catch (e) {
    return { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
}

function measure(name: string, program: Program, t: Timing, wasm: WasmCompile | string): FrontendRow {
  const helpers = calledHelpers(program);
  const opts: AnalysisOptions = {
    regions: program.data.map((d) => ({ name: d.name, size: d.bytes.length, writable: d.writable })),
    helpers,
  };
  const insns = program.insns.length;
  // Facts for the later stages, and the sanity figures (a faster analysis must still prove).
  const result = analyze(program, opts);
  let proven = 0;
  for (const f of result.facts.access.values()) if (f.verdict === 'proven') proven++;
  const facts = result.facts;
  const stages: Record<StageName, StageTime> = {
    structure: stage(() => verifyStructure(program, { helpers }), t, insns),
    analyze: stage(() => analyze(program, opts), t, insns),
    ir: stage(() => frontEnd(program, facts), t, insns),
    baseline: typeof wasm === 'string' ? { error: wasm } : stage(() => wasm(program, { facts, helpers, tier: 'baseline' }), t, insns),
    wasm: typeof wasm === 'string' ? { error: wasm } : stage(() => wasm(program, { facts, helpers, tier: 'optimized' }), t, insns),
  };
  return { program: name, insns, proven, accesses: result.facts.access.size, stages };
}

function fmt(s: StageTime): string {
  if (s.ms === undefined || s.perMs === undefined) return `n/a`;
  const ms = s.ms >= 10 ? s.ms.toFixed(1) : s.ms >= 1 ? s.ms.toFixed(2) : s.ms.toFixed(3);
  return `${ms} ms (${Math.round(s.perMs).toLocaleString('en-US')}/ms)`;
}

function renderMarkdown(rows: readonly FrontendRow[], notes: readonly string[]): string {
  const head = `| program | insns | proven | ${STAGES.map((s) => s.title).join(' | ')} |`;
  const rule = `|---|---:|---:|${STAGES.map(() => '---:').join('|')}|`;
  const body = rows.map((r) => `| ${r.program} | ${r.insns} | ${r.proven}/${r.accesses} | ${STAGES.map((s) => fmt(r.stages[s.name])).join(' | ')} |`);
  const errors: string[] = [];
  for (const r of rows) for (const s of STAGES) { const e = r.stages[s.name].error; if (e !== undefined) errors.push(`- ${r.program}, ${s.title}: ${e}`); }
  const uniq = [...new Set(errors)];
  return [
    '## Front-end speed (median per run after warm-up; eBPF instruction slots per ms)', '',
    head, rule, ...body, '',
    ...(uniq.length > 0 ? ['Unavailable:', ...uniq, ''] : []),
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
}

/**
 * clang -mcpu=v3 output for a benchmark program. Bundled outside the repository (/tmp/fs.mjs),
 * bench/programs.ts's root is wrong: the sources are then looked up from the working directory.
 */
async function compileV3(p: BenchProgram, work: string): Promise<Uint8Array> {
  if (existsSync(sourcePath(p))) return (await compileBpf(p, 'v3', work)).value;
  const src = join(process.cwd(), 'bench', 'programs', `${p.name}.c`);
  const out = join(work, `${p.name}.v3.o`);
  const c = BPF_COMPILERS.v3;
  await run(c.command, [...c.args, src, '-o', out]);
  return new Uint8Array(readFileSync(out));
}

export async function runFrontendSpeed(opts: FrontendSpeedOptions): Promise<FrontendSpeedResult> {
  const t = TIMING[opts.quick ? 'quick' : 'full'];
  const wasm = await loadWasmCompiler();
  const rows: FrontendRow[] = [];
  const notes: string[] = [];
  const generated: [number, number, number][] = opts.quick ? [[10_000, 200, 1]] : [[2_000, 40, 1], [10_000, 200, 1], [10_000, 200, 2], [30_000, 600, 3]];
  for (const [slots, loops, seed] of generated) rows.push(measure(`generated ${slots / 1000}k #${seed}`, generateProgram(slots, loops, seed), t, wasm));
  const missing = await missingTool('clang');
  if (missing !== undefined) {
    notes.push(`benchmark programs skipped: ${missing}`);
  } else {
    const work = mkdtempSync(join(tmpdir(), 'femtojit-fs-'));
    try {
      for (const p of PROGRAMS) {
        const obj = await compileV3(p, work);
        const program = loadElf(obj, p.name, { entry: p.name, helpers: conformanceHelpers().names() });
        rows.push(measure(p.name, program, t, wasm));
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  notes.push(`${t.runs} timed samples after ${t.warmup} warm-up runs; mem size unknown to the analysis (as on the JIT path); IR as the back ends get it (frontEnd: build + DEFAULT_PASSES, no validation).`);
  return { rows, markdown: renderMarkdown(rows, notes) };
}

// Run when this file (or its bundle, fs*.mjs as in the header) is the program, not when imported.
const script = typeof process === 'undefined' ? '' : basename(process.argv[1] ?? '');
const invokedDirectly = /^(frontend-speed|fs)([-.][\w-]+)?\.(ts|js|mjs)$/.test(script);
if (invokedDirectly) {
  runFrontendSpeed({ quick: process.argv.includes('--quick') }).then(
    (r) => { console.log(r.markdown); },
    (e: unknown) => { console.error(e instanceof Error ? e.message : String(e)); process.exitCode = 1; },
  );
}
