// `npm run bench`: every benchmark program on every engine, answers checked against gcc -O2, results
// in bench/results/latest.{json,md,svg} and the README's benchmark section. Two phases: the host
// (time per run, program by program), then the emulated board (instructions per run, each device
// engine given every program at once so QEMU boots once per engine). Then the front-end speed
// figures (bench/frontend-speed.ts). Exit status: 0 all answers right, 1 a wrong answer or a failed
// engine, 2 bad command line.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, release, tmpdir, type as osType } from 'node:os';
import { join } from 'node:path';
import { assembleProgram } from '../compiler/asm.js';
import type { Program } from '../compiler/program.js';
import { loadVerified } from '../runtime/container.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { DEVICE_ENGINES } from './device-engines.js';
import type { DeviceBenchEngine, DeviceJob } from './device.js';
import { REFERENCE_ENGINES, type EbpfBenchEngine, type Measurement, type ReferenceEngine } from './engines.js';
import { runFrontendSpeed } from './frontend-speed.js';
import { hostEbpfEngines } from './host-engines.js';
import type { TimingOptions } from './measure.js';
import { PROGRAMS, REPO_ROOT, type BenchProgram } from './programs.js';
import { updateReadme } from './readme.js';
import {
  BASELINE, formatNs, ORACLE, renderMarkdown, renderReadmeSection, renderSvg,
  type BenchReport, type EngineInfo, type ExtraSection, type OverheadRow, type ProgramInfo, type ResultRow,
} from './report.js';
import { BPF_COMPILERS, compileBpf, missingTool, type BpfBuild } from './toolchain.js';

export interface HarnessOptions {
  quick: boolean;
  only: string[];
  /** Rewrite the README's benchmark section (only ever on a run of every program). */
  readme: boolean;
  /** eBPF engines to run (host and device); empty: all. The reference engines always run. */
  engines: string[];
  /** Skip the front-end speed section. */
  frontend: boolean;
  /** Results directory (default bench/results); another one leaves the README alone. */
  out?: string;
}

/** A command-line mistake: printed with the usage, exit status 2. */
export class UsageError extends Error {}

export const TIMING: Record<'quick' | 'full', TimingOptions> = {
  quick: { minSampleMs: 5, samples: 3, warmupMs: 100, compileRepeats: 1 },
  full: { minSampleMs: 20, samples: 11, warmupMs: 500, compileRepeats: 7 },
};

const USAGE = `usage: npm run bench -- [--quick] [--only NAME[,NAME...]]... [--engines E[,E...]] [--no-frontend] [--out DIR] [--no-readme]
  --quick        fewer and shorter samples (under a minute)
  --only NAME    run only these programs (${PROGRAMS.map((p) => p.name).join(', ')});
                 the README is then left alone
  --engines E    run only these eBPF engines (e.g. wasm,thumb,c-interp); the native references always run;
                 the README is then left alone
  --no-frontend  skip the front-end speed section
  --out DIR      write latest.{json,md,svg} to DIR instead of bench/results (README left alone)
  --no-readme    do not rewrite the README's benchmark section`;

export function parseArgs(argv: readonly string[]): HarnessOptions {
  const opts: HarnessOptions = { quick: false, only: [], readme: true, engines: [], frontend: true };
  const valueOf = (a: string, flag: string, i: number): string => {
    const value = a === flag ? argv[i] : a.slice(flag.length + 1);
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const is = (flag: string): boolean => a === flag || a.startsWith(`${flag}=`);
    if (a === '--quick') opts.quick = true;
    else if (a === '--no-readme') opts.readme = false;
    else if (a === '--no-frontend') opts.frontend = false;
    else if (is('--only')) opts.only.push(...valueOf(a, '--only', a === '--only' ? ++i : i).split(',').filter((s) => s !== ''));
    else if (is('--engines')) opts.engines.push(...valueOf(a, '--engines', a === '--engines' ? ++i : i).split(',').filter((s) => s !== ''));
    else if (is('--out')) opts.out = valueOf(a, '--out', a === '--out' ? ++i : i);
    else if (a === '--help' || a === '-h') throw new UsageError('');
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
  if (row.nsPerRun === undefined && row.deviceInsns === undefined) return log(`${head} answer checked (not timed)  checksum ${row.checksum}`);
  if (row.deviceInsns !== undefined) return log(`${head} ${String(row.deviceInsns).padStart(10)} board insns/run  checksum ${row.checksum}`);
  const extra = [
    row.mips !== undefined && row.steps !== undefined ? `${row.steps} insns` : '',
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
    compileMs: m.compileMs, prepareMs: m.prepareMs, jitMs: m.jitMs, analysisMs: m.analysisMs, instantiateMs: m.instantiateMs, codeBytes: m.codeBytes, tierUp: m.tierUp,
    steps: m.steps, deviceInsns: m.deviceInsns,
    // Only the interpreter counts every instruction (compiled engines report the budget charged).
    mips: engine === ORACLE && m.steps !== undefined && ns !== undefined && ns > 0 ? (m.steps / ns) * 1e3 : undefined,
  };
}

interface Setup {
  quick: boolean;
  timing: TimingOptions;
  workDir: string;
  refs: { engine: ReferenceEngine; skipped?: string }[];
  ebpf: { engine: EbpfBenchEngine; skipped?: string }[];
  devices: { engine: DeviceBenchEngine; skipped?: string }[];
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

/** One program on the host: reference engines, then every host eBPF engine on each BPF build. */
async function benchProgram(p: BenchProgram, s: Setup, info: ProgramInfo[], rows: ResultRow[]): Promise<DeviceJob> {
  const input = p.input();
  const inputFile = `${p.name}.input`;
  const inputPath = join(s.workDir, inputFile);
  writeFileSync(inputPath, input);
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
          // Quick mode checks the v4 build's answer without timing it (that halves its host phase).
          const timing = build === 'v4' && s.quick ? undefined : s.timing;
          add(label, rowOf(p.name, engine.name, build, await engine.measure(l.program, helpers, input, timing, p.mutates)));
        } catch (e) {
          add(label, { ...base, status: 'failed', reason: message(e) });
        }
      }
    }
  }
  return { program: p, input, inputFile, ebpf: v3, ebpfFailure: loaded.v3?.failure };
}

/** Every program on one device engine (one board session); eBPF engines run the v3 build. */
async function benchDevice(engine: DeviceBenchEngine, skipped: string | undefined, jobs: DeviceJob[], s: Setup, rows: ResultRow[]): Promise<void> {
  const build = engine.family === 'ebpf' ? ('v3' as const) : undefined;
  const base = (j: DeviceJob): ResultRow => ({ program: j.program.name, engine: engine.name, build, status: 'skipped' });
  const add = (j: DeviceJob, row: ResultRow): void => {
    rows.push(row);
    progress(j.program, engine.name, row);
  };
  if (skipped !== undefined) {
    for (const j of jobs) add(j, { ...base(j), status: 'skipped', reason: skipped });
    return;
  }
  log(`${'(board)'.padEnd(15)} ${engine.name.padEnd(18)} ${jobs.length} program(s) on the emulated Cortex-M4 ...`);
  try {
    const outcomes = await engine.measureAll(jobs, { workDir: s.workDir, timing: s.timing });
    jobs.forEach((j, i) => {
      const o = outcomes[i];
      if (o === undefined) add(j, { ...base(j), status: 'failed', reason: 'no outcome' });
      else if (o.ok) add(j, rowOf(j.program.name, engine.name, build, o.measurement));
      else add(j, { ...base(j), status: 'failed', reason: o.reason });
    });
  } catch (e) {
    for (const j of jobs) add(j, { ...base(j), status: 'failed', reason: message(e) });
  }
}

async function setup(opts: HarnessOptions, workDir: string): Promise<Setup> {
  const refs = await Promise.all(REFERENCE_ENGINES.map(async (engine) => ({ engine, skipped: await engine.unavailable(workDir) })));
  const wanted = <E extends { name: string }>(e: E): boolean => opts.engines.length === 0 || opts.engines.includes(e.name);
  const ebpf = await Promise.all(hostEbpfEngines().filter(wanted).map(async (engine) => ({ engine, skipped: await engine.unavailable() })));
  const devices = await Promise.all(DEVICE_ENGINES.filter((e) => e.family === 'reference' || wanted(e)).map(async (engine) => ({ engine, skipped: await engine.unavailable() })));
  return {
    quick: opts.quick,
    timing: TIMING[opts.quick ? 'quick' : 'full'],
    workDir,
    refs,
    ebpf,
    devices,
    compilers: { v3: await missingTool(BPF_COMPILERS.v3.command), v4: await missingTool(BPF_COMPILERS.v4.command) },
  };
}

/** Context size for the per-run overhead figure: about the benchmark inputs' size. */
export const OVERHEAD_INPUT_BYTES = 1024;

/**
 * Each host eBPF engine's fixed cost per run: a program that only exits, with a 1 KiB context
 * (copied in, as for every run). Short programs' times are mostly this.
 */
async function overheads(s: Setup): Promise<OverheadRow[]> {
  const program = assembleProgram('mov %r0, 0\nexit', 'overhead (mov %r0, 0; exit)');
  const input = new Uint8Array(OVERHEAD_INPUT_BYTES);
  const out: OverheadRow[] = [];
  for (const { engine, skipped } of s.ebpf) {
    if (skipped !== undefined) continue;
    try {
      const m = await engine.measure(program, conformanceHelpers(), input, s.timing);
      out.push({ engine: engine.name, nsPerRun: m.timing?.nsPerRun });
      log(`${'(overhead)'.padEnd(15)} ${engine.name.padEnd(18)} ${formatNs(m.timing?.nsPerRun).padStart(10)}/run  (exit only, ${OVERHEAD_INPUT_BYTES}-byte context)`);
    } catch (e) {
      out.push({ engine: engine.name, reason: message(e) });
    }
  }
  return out;
}

async function frontendSection(quick: boolean): Promise<ExtraSection> {
  const title = 'Front-end speed';
  log(`${'(front end)'.padEnd(15)} ${'frontend-speed'.padEnd(18)} verification and compile speed ...`);
  try {
    const r = await runFrontendSpeed({ quick });
    return { title, markdown: r.markdown.trim() };
  } catch (e) {
    log(`${'(front end)'.padEnd(15)} ${'frontend-speed'.padEnd(18)} FAILED: ${message(e)}`);
    return { title, missing: `bench/frontend-speed.ts failed: ${message(e)}` };
  }
}

export async function runBenchmarks(opts: HarnessOptions): Promise<BenchReport> {
  const workDir = mkdtempSync(join(tmpdir(), 'femtojit-bench-'));
  try {
    const load0 = loadavg()[0];
    const s = await setup(opts, workDir);
    const programs = opts.only.length > 0 ? PROGRAMS.filter((p) => opts.only.includes(p.name)) : PROGRAMS;
    const info: ProgramInfo[] = [];
    const results: ResultRow[] = [];
    const jobs: DeviceJob[] = [];
    const phases: string[] = [];
    let t0 = performance.now();
    const phase = (name: string): void => {
      const t = performance.now();
      phases.push(`${name} ${((t - t0) / 1000).toFixed(1)} s`);
      t0 = t;
    };
    for (const p of programs) jobs.push(await benchProgram(p, s, info, results));
    phase('host');
    for (const { engine, skipped } of s.devices) await benchDevice(engine, skipped, jobs, s, results);
    phase('board');
    for (const p of programs) {
      for (const r of judgeAnswers(results.filter((row) => row.program === p.name))) {
        log(`${p.name.padEnd(15)} ${`${r.engine}${r.build ? ` (${r.build})` : ''}`.padEnd(18)} WRONG ANSWER: ${r.reason}`);
      }
    }
    const overhead = await overheads(s);
    phase('overhead');
    const frontend = opts.frontend ? await frontendSection(opts.quick) : undefined;
    phase('front end');
    log(`phases: ${phases.join(', ')}`);
    const engines: EngineInfo[] = [
      ...s.refs.map(({ engine, skipped }) => ({ name: engine.name, description: engine.description, family: 'reference' as const, where: 'host' as const, skipped })),
      ...s.ebpf.map(({ engine, skipped }) => ({ name: engine.name, description: engine.description, family: 'ebpf' as const, where: 'host' as const, skipped })),
      ...s.devices.map(({ engine, skipped }) => ({ name: engine.name, description: engine.description, family: engine.family, where: 'device' as const, skipped })),
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
      machine: {
        cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, os: `${osType()} ${release()} ${arch()}`, node: process.version,
        load: [load0, loadavg()[0]],
      },
      mode: opts.quick ? 'quick' : 'full',
      timing: s.timing,
      engines,
      programs: info,
      results,
      overhead,
      frontend,
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
  const files = writeReport(report, opts.out);
  process.stdout.write(`${renderMarkdown(report)}\n`);
  log(`\nwrote ${files.join(', ')}`);
  if (opts.readme && opts.only.length === 0 && opts.engines.length === 0 && opts.out === undefined) {
    const readme = join(REPO_ROOT, 'README.md');
    try {
      const section = renderReadmeSection(report, { markdown: 'bench/results/latest.md', svg: 'bench/results/latest.svg' });
      log(updateReadme(readme, section) ? `rewrote the benchmark section of ${readme}` : `${readme}: benchmark section unchanged`);
    } catch (e) {
      report.failures.push(`README not updated: ${message(e)}`);
    }
  } else {
    log(`README left alone (${opts.readme ? '--only runs some programs only' : '--no-readme'})`);
  }
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
