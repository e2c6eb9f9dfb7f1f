// `npm run bench`: every benchmark program on every engine, answers checked against gcc -O2, results
// in bench/results/latest.{json,md,svg}. Exit status: 0 all answers right, 1 a wrong answer or a
// failed engine, 2 bad command line.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, type as osType, arch } from 'node:os';
import { join } from 'node:path';
import type { Program } from '../compiler/program.js';
import { loadVerified } from '../runtime/container.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { DEVICE_ENGINES } from './device-engines.js';
import { hostEbpfEngines, REFERENCE_ENGINES, type EbpfBenchEngine, type Measurement, type ReferenceEngine } from './engines.js';
import type { TimingOptions } from './measure.js';
import { PROGRAMS, REPO_ROOT, type BenchProgram } from './programs.js';
import {
  BASELINE, formatNs, ORACLE, renderMarkdown, renderSvg,
  type BenchReport, type EngineInfo, type ProgramInfo, type ResultRow,
} from './report.js';
import { BPF_COMPILERS, compileBpf, missingTool, type BpfBuild } from './toolchain.js';

export interface HarnessOptions {
  quick: boolean;
  only: string[];
}

/** A command-line mistake: printed with the usage, exit status 2. */
export class UsageError extends Error {}

const TIMING: Record<'quick' | 'full', TimingOptions> = {
  quick: { minSampleMs: 5, samples: 3, warmupMs: 200 },
  full: { minSampleMs: 20, samples: 11, warmupMs: 500 },
};

const USAGE = `usage: npm run bench -- [--quick] [--only NAME[,NAME...]]...
  --quick        fewer and shorter samples (under a minute)
  --only NAME    run only these programs (${PROGRAMS.map((p) => p.name).join(', ')})`;

export function parseArgs(argv: readonly string[]): HarnessOptions {
  const opts: HarnessOptions = { quick: false, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const value = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (value === undefined || value === '') throw new UsageError('--only needs a program name');
      opts.only.push(...value.split(',').filter((s) => s !== ''));
    } else if (a === '--help' || a === '-h') throw new UsageError('');
    else throw new UsageError(`unknown argument '${a}'`);
  }
  const known = new Set(PROGRAMS.map((p) => p.name));
  const unknown = opts.only.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new UsageError(`unknown program ${unknown.map((n) => `'${n}'`).join(', ')}`);
  return opts;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function progress(p: BenchProgram, label: string, row: ResultRow): void {
  const head = `${p.name.padEnd(15)} ${label.padEnd(18)}`;
  if (row.status === 'skipped') return log(`${head} skipped: ${row.reason ?? ''}`);
  if (row.status === 'failed') return log(`${head} FAILED: ${row.reason ?? ''}`);
  const extra = [
    row.steps !== undefined ? `${row.steps} insns` : '',
    row.mips !== undefined ? `${row.mips.toFixed(1)} M insn/s` : '',
    `checksum ${row.checksum}`,
  ].filter((s) => s !== '');
  log(`${head} ${formatNs(row.nsPerRun).padStart(10)}/run  ${extra.join('  ')}`);
}

function rowOf(program: string, engine: string, build: BpfBuild | undefined, m: Measurement): ResultRow {
  const ns = m.timing?.nsPerRun;
  return {
    program, engine, build, status: 'ok', checksum: hex(m.checksum),
    nsPerRun: ns, iterations: m.timing?.iterations, samplesNs: m.timing?.samplesNs,
    compileMs: m.compileMs, prepareMs: m.prepareMs, steps: m.steps, cyclesPerRun: m.cyclesPerRun,
    mips: m.steps !== undefined && ns !== undefined && ns > 0 ? (m.steps / ns) * 1e3 : undefined,
  };
}

interface Setup {
  timing: TimingOptions;
  workDir: string;
  refs: { engine: ReferenceEngine; skipped?: string }[];
  ebpf: { engine: EbpfBenchEngine; skipped?: string }[];
  compilers: Record<BpfBuild, string | undefined>;
}

interface Loaded {
  program?: Program;
  failure?: string;
}

/**
 * Marks every answered row whose checksum differs from the judge's as failed and returns those
 * rows. The judge is the native (gcc) answer; without gcc, the interpreter's v3 answer (the
 * semantic oracle) stands in.
 */
export function judgeAnswers(rows: ResultRow[]): ResultRow[] {
  const judge =
    rows.find((r) => r.engine === BASELINE && r.status === 'ok') ??
    rows.find((r) => r.engine === ORACLE && r.build === 'v3' && r.status === 'ok');
  if (judge === undefined) return [];
  const wrong = rows.filter((r) => r.status === 'ok' && r.checksum !== judge.checksum);
  for (const r of wrong) {
    r.status = 'failed';
    r.expected = judge.checksum;
    r.reason = `wrong answer: checksum ${r.checksum}, ${judge.engine} gives ${judge.checksum}`;
  }
  return wrong;
}

async function benchProgram(p: BenchProgram, s: Setup, info: ProgramInfo[], results: ResultRow[]): Promise<void> {
  const input = p.input();
  const inputPath = join(s.workDir, `${p.name}.input`);
  writeFileSync(inputPath, input);
  const rows: ResultRow[] = [];
  const add = (label: string, row: ResultRow): void => {
    rows.push(row);
    progress(p, label, row);
  };

  for (const { engine, skipped } of s.refs) {
    if (skipped !== undefined) {
      add(engine.name, { program: p.name, engine: engine.name, status: 'skipped', reason: skipped });
      continue;
    }
    try {
      add(engine.name, rowOf(p.name, engine.name, undefined, await engine.measure(p, { input, inputPath, workDir: s.workDir }, s.timing)));
    } catch (e) {
      add(engine.name, { program: p.name, engine: engine.name, status: 'failed', reason: message(e) });
    }
  }

  const pinfo: ProgramInfo = { name: p.name, description: p.description, inputBytes: input.length, slots: {}, compileMs: {}, loadMs: {}, v4Differs: false };
  info.push(pinfo);
  const loaded: Partial<Record<BpfBuild, Loaded>> = {};
  for (const build of ['v3', 'v4'] as const) {
    const missing = s.compilers[build];
    if (missing !== undefined) {
      loaded[build] = { failure: `${BPF_COMPILERS[build].label}: ${missing}` };
      continue;
    }
    try {
      const obj = await compileBpf(p, build, s.workDir);
      pinfo.compileMs[build] = obj.ms;
      const t0 = performance.now();
      const program = loadVerified(obj.value, `${p.name}.${build}.o`, { entry: p.name, helpers: conformanceHelpers() }).program;
      pinfo.loadMs[build] = performance.now() - t0;
      pinfo.slots[build] = program.insns.length;
      loaded[build] = { program };
    } catch (e) {
      loaded[build] = { failure: `${BPF_COMPILERS[build].label}: ${message(e)}` };
    }
  }
  const v3 = loaded.v3?.program, v4 = loaded.v4?.program;
  pinfo.v4Differs = v3 !== undefined && v4 !== undefined && JSON.stringify(v3.insns) !== JSON.stringify(v4.insns);
  const builds: BpfBuild[] = pinfo.v4Differs || v3 === undefined ? ['v3', 'v4'] : ['v3'];

  const helpers = conformanceHelpers();
  for (const { engine, skipped } of s.ebpf) {
    for (const build of builds) {
      const label = `${engine.name} (${build})`;
      const base = { program: p.name, engine: engine.name, build };
      const l = loaded[build];
      if (skipped !== undefined) add(label, { ...base, status: 'skipped', reason: skipped });
      else if (l?.program === undefined) add(label, { ...base, status: 'failed', reason: l?.failure ?? 'not built' });
      else {
        try {
          add(label, rowOf(p.name, engine.name, build, await engine.measure(l.program, helpers, input, s.timing)));
        } catch (e) {
          add(label, { ...base, status: 'failed', reason: message(e) });
        }
      }
    }
  }

  for (const r of judgeAnswers(rows)) {
    log(`${p.name.padEnd(15)} ${`${r.engine}${r.build ? ` (${r.build})` : ''}`.padEnd(18)} WRONG ANSWER: ${r.reason}`);
  }
  results.push(...rows);
}

async function setup(opts: HarnessOptions, workDir: string): Promise<Setup> {
  const refs = await Promise.all(REFERENCE_ENGINES.map(async (engine) => ({ engine, skipped: await engine.unavailable(workDir) })));
  const ebpf = await Promise.all(
    [...hostEbpfEngines(), ...DEVICE_ENGINES].map(async (engine) => ({ engine, skipped: await engine.unavailable() })),
  );
  return {
    timing: TIMING[opts.quick ? 'quick' : 'full'],
    workDir,
    refs,
    ebpf,
    compilers: { v3: await missingTool(BPF_COMPILERS.v3.command), v4: await missingTool(BPF_COMPILERS.v4.command) },
  };
}

export async function runBenchmarks(opts: HarnessOptions): Promise<BenchReport> {
  const workDir = mkdtempSync(join(tmpdir(), 'femtojit-bench-'));
  try {
    const s = await setup(opts, workDir);
    const programs = opts.only.length > 0 ? PROGRAMS.filter((p) => opts.only.includes(p.name)) : PROGRAMS;
    const info: ProgramInfo[] = [];
    const results: ResultRow[] = [];
    for (const p of programs) await benchProgram(p, s, info, results);
    const engines: EngineInfo[] = [
      ...s.refs.map(({ engine, skipped }) => ({ name: engine.name, description: engine.description, family: 'reference' as const, skipped })),
      ...s.ebpf.map(({ engine, skipped }) => ({ name: engine.name, description: engine.description, family: 'ebpf' as const, where: engine.where, skipped })),
    ];
    const failures = results
      .filter((r) => r.status === 'failed')
      .map((r) => `${r.program} on ${r.engine}${r.build ? ` (${r.build})` : ''}: ${r.reason ?? 'failed'}`);
    for (const c of Object.values(BPF_COMPILERS)) {
      const missing = s.compilers[c.build];
      if (missing !== undefined) failures.push(`${c.label}: ${missing}`);
    }
    const cpu = cpus();
    return {
      date: new Date().toISOString(),
      machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, os: `${osType()} ${release()} ${arch()}`, node: process.version },
      mode: opts.quick ? 'quick' : 'full',
      timing: s.timing,
      engines,
      programs: info,
      results,
      failures,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

export function writeReport(report: BenchReport, dir = join(REPO_ROOT, 'bench', 'results')): string[] {
  mkdirSync(dir, { recursive: true });
  const files = {
    'latest.json': `${JSON.stringify(report, null, 2)}\n`,
    'latest.md': renderMarkdown(report),
    'latest.svg': renderSvg(report),
  };
  return Object.entries(files).map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: HarnessOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log(e.message === '' ? USAGE : `bench: ${e.message}\n${USAGE}`);
    return e.message === '' ? 0 : 2;
  }
  const report = await runBenchmarks(opts);
  const files = writeReport(report);
  process.stdout.write(`${renderMarkdown(report)}\n`);
  log(`\nwrote ${files.join(', ')}`);
  if (report.failures.length > 0) {
    log(`\nbench FAILED: ${report.failures.length} failure(s):`);
    for (const f of report.failures) log(`  ${f}`);
    return 1;
  }
  return 0;
}

// Only as a program (dist/bench.js), so that tests can import the functions above.
const isMain = process.argv[1] !== undefined && /(?:^|[\\/])(?:bench\.js|harness\.ts)$/.test(process.argv[1]);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      log(`bench: internal error: ${message(e)}`);
      process.exit(1);
    },
  );
}
