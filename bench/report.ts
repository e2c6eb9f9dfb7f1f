// The benchmark report: one JSON document (everything measured), rendered as Markdown tables, a
// dependency-free SVG chart and the README's benchmark section. Pure functions of the report, so
// they are testable without timing anything.
//
// Host engines are compared by time per run, device engines by the board's exact instruction count
// per run; the two are never mixed in one ratio.
import { geomean, median, type TimingOptions } from './measure.js';
import type { BpfBuild } from './toolchain.js';

export type EngineFamily = 'reference' | 'ebpf';
export type ResultStatus = 'ok' | 'failed' | 'skipped';

export interface EngineInfo {
  name: string;
  description: string;
  /** `reference`: compiles the C source; `ebpf`: runs the clang BPF object. */
  family: EngineFamily;
  /** `host`: timed in this process (or by a native driver); `device`: instructions on the emulated board. */
  where: 'host' | 'device';
  /** Why the engine did not run on this machine; absent when it ran. */
  skipped?: string;
}

export interface ProgramInfo {
  name: string;
  description: string;
  inputBytes: number;
  /** Instruction slots of each BPF build that compiled. */
  slots: Partial<Record<BpfBuild, number>>;
  /** clang time per BPF build, ms. */
  compileMs: Partial<Record<BpfBuild, number>>;
  /** Load + verify time per BPF build, ms. */
  loadMs: Partial<Record<BpfBuild, number>>;
  /** The v4 build's instructions differ from v3's (so host eBPF engines also run it). */
  v4Differs: boolean;
}

export interface ResultRow {
  program: string;
  engine: string;
  /** BPF build, for eBPF engines. */
  build?: BpfBuild;
  status: ResultStatus;
  /** Failure or skip reason. */
  reason?: string;
  /** Hex, unsigned 64-bit. */
  checksum?: string;
  expected?: string;
  nsPerRun?: number;
  iterations?: number;
  samplesNs?: number[];
  /** Source -> runnable by an outside compiler (gcc, clang), ms. */
  compileMs?: number;
  /** Engine preparation of a loaded program, ms. */
  prepareMs?: number;
  /** femtojit's compile, Program -> target code, median ms. */
  jitMs?: number;
  /** The verifier's analysis that yields the facts jitMs compiles with (done once at load; not in jitMs), median ms. */
  analysisMs?: number;
  /** V8 compile + instantiate, ms. */
  instantiateMs?: number;
  codeBytes?: number;
  /** A tiering engine's tier-up (Measurement.tierUp). */
  tierUp?: { target: string; analysisMs: number; compileMs: number; instantiateMs: number };
  steps?: number;
  /** Millions of eBPF instructions per second (steps / time). */
  mips?: number;
  /** Device engines: instructions per run, from the board's exact counter. */
  deviceInsns?: number;
}

/** Another engineer's section (front-end speed), included as Markdown, or why it is missing. */
export interface ExtraSection {
  title: string;
  markdown?: string;
  missing?: string;
}

/** A host engine's fixed cost of one run: a program that only exits, with a 1 KiB context. */
export interface OverheadRow {
  engine: string;
  nsPerRun?: number;
  reason?: string;
}

export interface BenchReport {
  date: string;
  /** `load`: the 1-minute load average at the start and the end of the run (other work skews times). */
  machine: { cpu: string; cores: number; os: string; node: string; load?: [number, number] };
  mode: 'quick' | 'full';
  timing: TimingOptions;
  engines: EngineInfo[];
  programs: ProgramInfo[];
  results: ResultRow[];
  /** Per-run overhead of each host eBPF engine. */
  overhead?: OverheadRow[];
  /** Front-end verification and compile speed (bench/frontend-speed.ts). */
  frontend?: ExtraSection;
  /** One line per wrong answer or failed engine; non-empty means the run failed. */
  failures: string[];
}

export interface Headline {
  label: string;
  /** The geometric mean (or median, for rates), when measured. */
  value?: number;
  /** What it means, in words, or why it is missing. */
  text: string;
}

/** Host baseline and checksum judge. */
export const BASELINE = 'native';
/** Device baseline: the same C by arm-none-eabi-gcc, on the board. */
export const DEVICE_BASELINE = 'native-m4';
/** The semantic oracle (and the judge when gcc is missing). */
export const ORACLE = 'interp';
export const WASM = 'wasm';
export const WASM_AOT = 'wasm-aot';
export const CLANG_WASM = 'clang-wasm32';
export const THUMB = 'thumb';
/** Thumb images for any context length (`thumb` specialises each for the run's length). */
export const THUMB_GENERIC = 'thumb-generic';
export const DEVICE_INTERP = 'c-interp';

export function formatNs(ns: number | undefined): string {
  if (ns === undefined || !Number.isFinite(ns)) return '—';
  if (ns < 1e3) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return r >= 100 ? `${Math.round(r)}×` : `${r.toPrecision(3)}×`;
}

const formatMs = (ms: number | undefined): string =>
  ms === undefined || !Number.isFinite(ms) ? '—' : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
const formatCount = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const formatRate = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n >= 100 ? formatCount(n) : n.toPrecision(3));

/** The row an engine produced for a program (eBPF engines: the given build, default v3). */
export function resultOf(report: BenchReport, program: string, engine: string, build: BpfBuild = 'v3'): ResultRow | undefined {
  const family = report.engines.find((e) => e.name === engine)?.family;
  return report.results.find((r) => r.program === program && r.engine === engine && (family !== 'ebpf' || r.build === build));
}

function okRow(report: BenchReport, program: string, engine: string, build: BpfBuild = 'v3'): ResultRow | undefined {
  const r = resultOf(report, program, engine, build);
  return r?.status === 'ok' ? r : undefined;
}

const timeOf = (report: BenchReport, program: string, engine: string, build: BpfBuild = 'v3'): number | undefined =>
  okRow(report, program, engine, build)?.nsPerRun;
const insnsOf = (report: BenchReport, program: string, engine: string): number | undefined => okRow(report, program, engine)?.deviceInsns;

type Metric = (report: BenchReport, program: string, engine: string) => number | undefined;

/** metric(a) ÷ metric(b) for every program where both were measured. */
export function ratios(report: BenchReport, metric: Metric, a: string, b: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of report.programs) {
    const x = metric(report, p.name, a);
    const y = metric(report, p.name, b);
    if (x !== undefined && y !== undefined && x > 0 && y > 0) out.set(p.name, x / y);
  }
  return out;
}

const hostEngines = (report: BenchReport): EngineInfo[] => report.engines.filter((e) => e.where === 'host');
const deviceEngines = (report: BenchReport): EngineInfo[] => report.engines.filter((e) => e.where === 'device');
const engineNamed = (report: BenchReport, name: string): EngineInfo | undefined => report.engines.find((e) => e.name === name);
const label = (e: EngineInfo): string => (e.family === 'ebpf' && e.where === 'host' ? `${e.name} (v3)` : e.name);

/** The cell of a program an engine did not answer, or undefined when it did. */
function missingCell(report: BenchReport, program: string, engine: EngineInfo, build: BpfBuild = 'v3'): string | undefined {
  if (engine.skipped !== undefined) return 'skipped';
  const r = resultOf(report, program, engine.name, build);
  if (r === undefined) return '—';
  if (r.status === 'failed') return '**FAILED**';
  if (r.status === 'skipped') return 'skipped';
  return undefined;
}

interface Column {
  header: string;
  value(program: string): string;
  /** The summary row's cell. */
  summary: string;
}

/** A ratio column with its geometric mean (only over every program: a partial mean would mislead). */
function ratioColumn(report: BenchReport, header: string, values: Map<string, number>, blame: EngineInfo[]): Column {
  const xs = [...values.values()];
  return {
    header,
    value: (p) => {
      const v = values.get(p);
      if (v !== undefined) return formatRatio(v);
      for (const e of blame) {
        const m = missingCell(report, p, e);
        if (m !== undefined) return m;
      }
      return '—';
    },
    summary: xs.length === report.programs.length && xs.length > 0 ? `**${formatRatio(geomean(xs))}**` : '—',
  };
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? ':--' : '--:'))), ...rows.map(line)].join('\n');
}

function columnsTable(report: BenchReport, first: Column[], cols: Column[], summaryLabel: string | undefined): string {
  const all = [...first, ...cols];
  const rows = report.programs.map((p) => [p.name, ...all.map((c) => c.value(p.name))]);
  if (summaryLabel !== undefined) rows.push([`**${summaryLabel}**`, ...all.map((c) => c.summary)]);
  return table(['program', ...all.map((c) => c.header)], rows);
}

const stepsColumn = (report: BenchReport): Column => ({
  header: 'eBPF insns/run',
  value: (p) => formatCount(okRow(report, p, ORACLE)?.steps ?? okRow(report, p, WASM)?.steps),
  summary: '',
});

/** Half the samples' range relative to the median, when above 10%: a time to read with care. */
function spread(r: ResultRow | undefined): string {
  const xs = r?.samplesNs;
  if (xs === undefined || xs.length < 2 || r?.nsPerRun === undefined || r.nsPerRun <= 0) return '';
  const half = (Math.max(...xs) - Math.min(...xs)) / 2 / r.nsPerRun;
  return half > 0.1 ? ` ±${Math.round(half * 100)}%` : '';
}

/** Time per run of every host engine (± the samples' spread when over 10%), and the interpreter's rate. */
export function hostTimeTable(report: BenchReport): string {
  const cols: Column[] = hostEngines(report).map((e) => ({
    header: e.skipped !== undefined ? `${label(e)} (skipped)` : label(e),
    value: (p) => missingCell(report, p, e) ?? `${formatNs(timeOf(report, p, e.name))}${spread(okRow(report, p, e.name))}`,
    summary: '',
  }));
  const interp = engineNamed(report, ORACLE);
  if (interp !== undefined && interp.skipped === undefined) {
    const mips = report.programs.map((p) => okRow(report, p.name, ORACLE)?.mips).filter((v): v is number => v !== undefined);
    cols.push({
      header: 'interp M insn/s',
      value: (p) => missingCell(report, p, interp) ?? (okRow(report, p, ORACLE)?.mips?.toFixed(1) ?? '—'),
      summary: mips.length > 0 ? `**${geomean(mips).toFixed(1)}**` : '—',
    });
  }
  return columnsTable(report, [stepsColumn(report)], cols, 'geometric mean');
}

/** Every host engine's time ÷ native, then how the Wasm engines compare with the interpreter and clang. */
export function hostRatioTable(report: BenchReport): string {
  const base = engineNamed(report, BASELINE);
  const cols: Column[] = [];
  const hosts = hostEngines(report).filter((e) => e.name !== BASELINE && e.skipped === undefined);
  if (base !== undefined && base.skipped === undefined) {
    for (const e of hosts) cols.push(ratioColumn(report, `${e.name} × native`, ratios(report, timeOf, e.name, BASELINE), [e, base]));
  }
  const interp = engineNamed(report, ORACLE);
  const clang = engineNamed(report, CLANG_WASM);
  for (const e of hosts.filter((h) => h.family === 'ebpf' && h.name !== ORACLE)) {
    if (interp !== undefined && interp.skipped === undefined) {
      cols.push(ratioColumn(report, `interp ÷ ${e.name}`, ratios(report, timeOf, ORACLE, e.name), [interp, e]));
    }
  }
  for (const e of hosts.filter((h) => h.name === WASM || h.name === WASM_AOT)) {
    if (clang !== undefined && clang.skipped === undefined) {
      cols.push(ratioColumn(report, `${e.name} ÷ clang-wasm32`, ratios(report, timeOf, e.name, CLANG_WASM), [e, clang]));
    }
  }
  return columnsTable(report, [], cols, 'geometric mean');
}

/** Instructions per run on the board: the native baseline, every device engine and its ratios. */
export function deviceTable(report: BenchReport): string {
  const devices = deviceEngines(report);
  const base = devices.find((e) => e.name === DEVICE_BASELINE);
  const cols: Column[] = [];
  for (const e of devices) {
    cols.push({
      header: e.skipped !== undefined ? `${e.name} insns (not run)` : `${e.name} insns`,
      value: (p) => missingCell(report, p, e) ?? formatCount(insnsOf(report, p, e.name)),
      summary: '',
    });
    if (e === base || base === undefined || e.skipped !== undefined || base.skipped !== undefined) continue;
    cols.push(ratioColumn(report, `${e.name} × native-m4`, ratios(report, insnsOf, e.name, DEVICE_BASELINE), [e, base]));
  }
  const thumb = devices.find((e) => e.name === THUMB && e.skipped === undefined);
  for (const e of devices.filter((d) => d.family === 'ebpf' && d.name !== THUMB && d.skipped === undefined)) {
    if (thumb !== undefined) cols.push(ratioColumn(report, `${e.name} ÷ thumb`, ratios(report, insnsOf, e.name, THUMB), [e, thumb]));
  }
  return columnsTable(report, [stepsColumn(report)], cols, 'geometric mean');
}

/** eBPF bytes and every engine's code bytes; Thumb against native and against eBPF. */
export function codeSizeTable(report: BenchReport): string {
  const withCode = report.engines.filter((e) => report.results.some((r) => r.engine === e.name && r.codeBytes !== undefined));
  const ebpfBytes = (p: string): number | undefined => {
    const slots = report.programs.find((q) => q.name === p)?.slots.v3;
    return slots === undefined ? undefined : slots * 8;
  };
  const bytes = (p: string, e: string): number | undefined => okRow(report, p, e)?.codeBytes;
  const cols: Column[] = [{ header: 'eBPF (v3)', value: (p) => formatCount(ebpfBytes(p)), summary: '' }];
  for (const e of withCode) {
    const kind = e.name === THUMB || e.name === THUMB_GENERIC ? 'code' : e.where === 'device' ? 'function' : 'module';
    cols.push({ header: `${e.name} ${kind}`, value: (p) => missingCell(report, p, e) ?? formatCount(bytes(p, e.name)), summary: '' });
  }
  const thumb = engineNamed(report, THUMB);
  if (thumb !== undefined && withCode.includes(thumb)) {
    const native = engineNamed(report, DEVICE_BASELINE);
    if (native !== undefined && withCode.includes(native)) {
      cols.push(ratioColumn(report, 'thumb ÷ native-m4', ratios(report, (r, p, e) => bytes(p, e), THUMB, DEVICE_BASELINE), [thumb, native]));
    }
    const perEbpf = new Map<string, number>();
    for (const p of report.programs) {
      const t = bytes(p.name, THUMB), b = ebpfBytes(p.name);
      if (t !== undefined && b !== undefined && b > 0) perEbpf.set(p.name, t / b);
    }
    cols.push(ratioColumn(report, 'thumb ÷ eBPF', perEbpf, [thumb]));
  }
  return columnsTable(report, [], cols, 'geometric mean');
}

/** Compile times: clang, load + verify, femtojit's compilers (with eBPF instructions per ms), V8, gcc. */
export function compileTable(report: BenchReport): string {
  const slots = (p: string): number | undefined => report.programs.find((q) => q.name === p)?.slots.v3;
  const info = (p: string): ProgramInfo | undefined => report.programs.find((q) => q.name === p);
  const cols: Column[] = [
    { header: 'slots (v3)', value: (p) => formatCount(slots(p)), summary: '' },
    { header: 'clang 14', value: (p) => formatMs(info(p)?.compileMs.v3), summary: '' },
    { header: 'load + verify', value: (p) => formatMs(info(p)?.loadMs.v3), summary: '' },
  ];
  const rate = (e: string) => (p: string): number | undefined => {
    const ms = okRow(report, p, e)?.jitMs;
    const n = slots(p);
    return ms !== undefined && n !== undefined && ms > 0 ? n / ms : undefined;
  };
  for (const e of report.engines.filter((x) => report.results.some((r) => r.engine === x.name && r.jitMs !== undefined))) {
    const perMs = rate(e.name);
    const rates = report.programs.map((p) => perMs(p.name)).filter((v): v is number => v !== undefined);
    const compileCell = (p: string): string => {
      const r = okRow(report, p, e.name);
      return `${formatMs(r?.jitMs)}${r?.analysisMs !== undefined ? ` (+ analysis ${formatMs(r.analysisMs)})` : ''}`;
    };
    cols.push({ header: `${e.name} compile`, value: (p) => missingCell(report, p, e) ?? compileCell(p), summary: '' });
    cols.push({
      header: `${e.name} insns/ms`,
      value: (p) => missingCell(report, p, e) ?? formatRate(perMs(p)),
      summary: rates.length > 0 ? `**${formatRate(median(rates))}**` : '—',
    });
  }
  for (const e of report.engines.filter((x) => report.results.some((r) => r.engine === x.name && r.tierUp !== undefined))) {
    cols.push({
      header: `${e.name} tier-up`,
      value: (p) => {
        const t = okRow(report, p, e.name)?.tierUp;
        if (t === undefined) return missingCell(report, p, e) ?? '—';
        const analysis = t.analysisMs > 0 ? ` + analysis ${formatMs(t.analysisMs)}` : '';
        return `${t.target}: ${formatMs(t.compileMs)}${analysis}, V8 ${formatMs(t.instantiateMs)}`;
      },
      summary: '',
    });
  }
  for (const e of report.engines.filter((x) => report.results.some((r) => r.engine === x.name && r.instantiateMs !== undefined))) {
    cols.push({ header: `${e.name} V8 compile + instantiate`, value: (p) => missingCell(report, p, e) ?? formatMs(okRow(report, p, e.name)?.instantiateMs), summary: '' });
  }
  for (const e of report.engines.filter((x) => x.family === 'reference' && report.results.some((r) => r.engine === x.name && r.compileMs !== undefined))) {
    cols.push({ header: `${e.name} build`, value: (p) => missingCell(report, p, e) ?? formatMs(okRow(report, p, e.name)?.compileMs), summary: '' });
  }
  return columnsTable(report, [], cols, 'median');
}

function v4Table(report: BenchReport): string | undefined {
  const differing = report.programs.filter((p) => p.v4Differs);
  const ebpf = hostEngines(report)
    .filter((e) => e.family === 'ebpf' && e.skipped === undefined)
    .filter((e) => report.results.some((r) => r.engine === e.name && r.build === 'v4' && r.nsPerRun !== undefined));
  if (differing.length === 0) return undefined;
  const header = ['program', 'slots v3', 'slots v4', 'insns/run v3', 'insns/run v4'];
  for (const e of ebpf) header.push(`${e.name} v3`, `${e.name} v4`, 'v4 ÷ v3');
  const rows = differing.map((p) => {
    const steps = (b: BpfBuild): string => formatCount(okRow(report, p.name, ORACLE, b)?.steps);
    const row = [p.name, formatCount(p.slots.v3), formatCount(p.slots.v4), steps('v3'), steps('v4')];
    for (const e of ebpf) {
      const t3 = timeOf(report, p.name, e.name, 'v3');
      const t4 = timeOf(report, p.name, e.name, 'v4');
      row.push(
        missingCell(report, p.name, e, 'v3') ?? formatNs(t3),
        missingCell(report, p.name, e, 'v4') ?? formatNs(t4),
        t3 !== undefined && t4 !== undefined ? formatRatio(t4 / t3) : '—',
      );
    }
    return row;
  });
  return table(header, rows);
}

// --- headline ---------------------------------------------------------------------------------------

function headlineOf(report: BenchReport, label: string, metric: Metric, a: string, b: string, say: (v: number) => string): Headline {
  for (const n of [a, b]) {
    const e = engineNamed(report, n);
    if (e === undefined) return { label, text: `not measured: no \`${n}\` engine in this run` };
    if (e.skipped !== undefined) return { label, text: `not measured: \`${n}\`: ${e.skipped}` };
  }
  const rs = ratios(report, metric, a, b);
  if (rs.size === 0) return { label, text: 'not measured: no program ran on both' };
  const value = geomean([...rs.values()]);
  const of = rs.size === report.programs.length ? '' : ` (only ${rs.size} of ${report.programs.length} programs)`;
  return { label, value, text: `${say(value)}${of}` };
}

/** The figures a user picks a runtime on: geometric means over the programs. */
export function headlines(report: BenchReport): Headline[] {
  const faster = (v: number): string => (v >= 1 ? `${formatRatio(v)} faster` : `${formatRatio(1 / v)} slower`);
  const times = (what: string) => (v: number): string => `${formatRatio(v)} ${what}`;
  const out = [
    headlineOf(report, 'Wasm JIT vs the reference interpreter', timeOf, ORACLE, WASM, (v) => `${faster(v)} than the interpreter`),
    headlineOf(report, 'Wasm JIT vs clang wasm32 (same V8)', timeOf, WASM, CLANG_WASM, times("clang-19's time per run")),
    headlineOf(report, 'Wasm AOT -O vs clang wasm32', timeOf, WASM_AOT, CLANG_WASM, times("clang-19's time per run")),
    headlineOf(report, 'Wasm JIT vs native (gcc -O2)', timeOf, WASM, BASELINE, times("gcc's time per run")),
    headlineOf(report, 'Thumb vs native Cortex-M4 (gcc -O2)', insnsOf, THUMB, DEVICE_BASELINE, times("gcc's instructions per run (images for the run's context length)")),
    headlineOf(report, 'Thumb, one image for any context length, vs native Cortex-M4', insnsOf, THUMB_GENERIC, DEVICE_BASELINE, times("gcc's instructions per run")),
    headlineOf(report, 'Thumb vs the C interpreter on the device', insnsOf, DEVICE_INTERP, THUMB, (v) => `${formatRatio(v)} fewer instructions than the interpreter`),
  ];
  const rates = report.programs
    .map((p) => {
      const r = okRow(report, p.name, WASM);
      return r?.jitMs !== undefined && p.slots.v3 !== undefined && r.jitMs > 0 ? p.slots.v3 / r.jitMs : undefined;
    })
    .filter((v): v is number => v !== undefined);
  const v8 = report.programs.map((p) => okRow(report, p.name, WASM)?.instantiateMs).filter((v): v is number => v !== undefined);
  const analysisRates = report.programs
    .map((p) => {
      const r = okRow(report, p.name, WASM);
      return r?.analysisMs !== undefined && p.slots.v3 !== undefined && r.analysisMs > 0 ? p.slots.v3 / r.analysisMs : undefined;
    })
    .filter((v): v is number => v !== undefined);
  const analysis = analysisRates.length > 0 ? `; the verifier's analysis at load runs ${formatRate(median(analysisRates))} per ms` : '';
  out.push(
    rates.length === 0
      ? { label: 'Wasm JIT compile speed', text: 'not measured' }
      : {
          label: 'Wasm JIT compile speed',
          value: median(rates),
          text: `${formatRate(median(rates))} eBPF instructions per ms (median; a loaded program with its verifier facts to the baseline tier's module bytes), then ${formatMs(median(v8))} of V8 compile + instantiate${analysis}`,
        },
  );
  return out;
}

function headlineList(report: BenchReport): string {
  return headlines(report).map((h) => `- **${h.label}**: ${h.text}`).join('\n');
}

// --- Markdown ---------------------------------------------------------------------------------------

/** The load average, with a warning when other work competed for the cores. */
function loadNote(report: BenchReport, sep = ' · '): string {
  const l = report.machine.load;
  if (l === undefined) return '';
  const busy = Math.max(...l) > report.machine.cores;
  return `${sep}load average ${l[0].toFixed(1)} → ${l[1].toFixed(1)}${busy ? ' (**busy machine: host times are noisy**)' : ''}`;
}

function machineLine(report: BenchReport): string {
  const m = report.machine;
  const t = report.timing;
  return `${report.date} · ${m.cpu} (${m.cores} cores) · ${m.os} · Node ${m.node}${loadNote(report)} · ${report.mode} mode ` +
    `(host: median of ${t.samples} samples of at least ${t.minSampleMs} ms, after at least ${t.warmupMs} ms of CPU time of warm-up and until the time per run settles; ` +
    `compile times: median of ${t.compileRepeats})`;
}

const HOST_NOTE =
  'Time per run. `E × native`: E\'s time ÷ the gcc -O2 time (lower is better). `interp ÷ E`: how many times faster than ' +
  'the reference interpreter E is. `E ÷ clang-wasm32`: E\'s time ÷ clang-19\'s own wasm32 build of the C source in the same V8. ' +
  'eBPF engines run the clang 14 `-mcpu=v3` build; every run copies the context in (the engines\' contract). ' +
  '`±N%`: half the range of the samples, shown when over 10% (another process took the core).';

const DEVICE_NOTE =
  'Instructions per run on the emulated Cortex-M4 (QEMU mps2-an386 with `-icount`; the board\'s exact counter, ' +
  'runtime/cortex-m/board/counter.h), not cycles. `native-m4`: the C source by arm-none-eabi-gcc -O2, one call. ' +
  '`thumb`: the generated code from entry to exit (the runtime\'s per-run set-up, zeroing the 4 KiB stack, is not counted). ' +
  'Every engine runs each program twice on the board; both runs must agree exactly.';

const SIZE_NOTE =
  'Bytes. eBPF: instruction slots × 8. `thumb code`: the generated Thumb-2 code (no image header, data or tables). ' +
  '`native-m4 function`: text symbols of the program\'s source file in the firmware (libgcc helpers such as 64-bit division not counted). ' +
  'Wasm: whole modules (code, data segments, exports).';

function overheadLines(report: BenchReport): string[] {
  const rows = report.overhead ?? [];
  if (rows.length === 0) return [];
  const each = rows.map((r) => `\`${r.engine}\` ${r.nsPerRun !== undefined ? formatNs(r.nsPerRun) : `failed (${r.reason ?? 'unknown'})`}`);
  return [
    `Fixed cost of one run (a program that only exits, 1 KiB context copied in; part of every time above): ${each.join(', ')}. ` +
      '`native` and `clang-wasm32` call the C function directly.',
    '',
  ];
}

function failureLines(report: BenchReport): string[] {
  const out: string[] = [];
  const skipped = report.engines.filter((e) => e.skipped !== undefined);
  if (skipped.length > 0) out.push('Engines not run:', '', ...skipped.map((e) => `- \`${e.name}\`: ${e.skipped}`), '');
  if (report.failures.length > 0) out.push('**FAILURES** (the run failed):', '', ...report.failures.map((f) => `- ${f}`), '');
  return out;
}

/**
 * The front-end speed section as bench/frontend-speed.ts renders it; its own headings are kept in
 * latest.md and turned into bold lines in the README (where they would break the outline).
 */
function frontendLines(report: BenchReport, readme: boolean): string[] {
  const f = report.frontend;
  if (f === undefined) return [];
  const heading = readme ? `**${f.title}**:` : `## ${f.title}`;
  if (f.markdown === undefined) return [heading, '', `Not measured: ${f.missing ?? 'unknown reason'}.`, ''];
  const md = readme ? f.markdown.replace(/^#{1,6}\s+(.*)$/gm, '**$1**') : f.markdown;
  return [...(/^#{1,6}\s/.test(f.markdown) ? [] : [heading, '']), md, ''];
}

export function renderMarkdown(report: BenchReport): string {
  const out: string[] = [
    '# femtojit benchmarks',
    '',
    machineLine(report),
    '',
    '## Headline',
    '',
    'Geometric means over the programs.',
    '',
    headlineList(report),
    '',
    ...failureLines(report),
    '## Host: time per run',
    '',
    HOST_NOTE,
    '',
    hostTimeTable(report),
    '',
    ...overheadLines(report),
    '## Host: ratios',
    '',
    hostRatioTable(report),
    '',
  ];
  if (deviceEngines(report).length > 0) out.push('## Device: instructions per run (emulated Cortex-M4)', '', DEVICE_NOTE, '', deviceTable(report), '');
  out.push('## Code size', '', SIZE_NOTE, '', codeSizeTable(report), '');
  out.push(
    '## Compile times',
    '',
    '`E compile`: femtojit\'s compile of the loaded program with the facts its verification at load produced, to the first runnable code (`wasm`: its baseline tier, timed after 20 warm-up compiles, as in a host that compiles many programs; `wasm-aot`: the optimised module through binaryen -O2 and wabt validation; `thumb`: the image), ' +
      '`E tier-up`: what the tiering engine compiled after its first run, off the path to a ready instance (the module the timed runs used), ' +
      'and after `+` the time of that analysis, done once at load and not part of the compile (`load + verify` includes it), ' +
      `median of ${report.timing.compileRepeats}; \`insns/ms\`: eBPF instruction slots per ms of it. Build times of the reference engines include their process start.`,
    '',
    compileTable(report),
    '',
  );
  const v4 = v4Table(report);
  if (v4 !== undefined) {
    const untimed = report.mode === 'quick' ? ' Quick mode checks the v4 builds\' answers on every host eBPF engine without timing them.' : '';
    out.push('## clang-19 `-mcpu=v4` builds', '', `Programs whose v4 code differs from v3 (host eBPF engines).${untimed}`, '', v4, '');
  }
  out.push(...frontendLines(report, false));
  out.push('## Engines', '', ...report.engines.map((e) => `- \`${e.name}\` (${e.where}): ${e.description}`), '');
  return out.join('\n');
}

/** The README's benchmark section (between its markers): the headline, the chart and the main tables. */
export function renderReadmeSection(report: BenchReport, paths: { markdown: string; svg: string }): string {
  const m = report.machine;
  const out = [
    `_Measured ${report.date.slice(0, 10)} on ${m.cpu} (${m.cores} cores), ${m.os}, Node ${m.node}${loadNote(report, ', ')}, ${report.mode} mode, ` +
      `by \`npm run bench\`; all tables: [${paths.markdown}](${paths.markdown})._`,
    '',
    headlineList(report),
    '',
    ...failureLines(report),
    `![benchmarks](${paths.svg})`,
    '',
    '**Host** (time per run ÷ gcc -O2 unless stated; lower is better):',
    '',
    hostRatioTable(report),
    '',
  ];
  if (deviceEngines(report).length > 0) {
    out.push('**Device** (instructions per run on the emulated Cortex-M4, exact counter):', '', deviceTable(report), '');
  }
  out.push('**Code size** (bytes):', '', codeSizeTable(report), '');
  out.push(...frontendLines(report, true));
  return out.join('\n').trimEnd();
}

// --- SVG --------------------------------------------------------------------------------------------

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Series {
  name: string;
  ratios: Map<string, number>;
}

interface Panel {
  title: string;
  axis: string;
  series: Series[];
}

/** 10^d as an axis label: 0.01×, 0.1×, 1×, 10×, 100×. */
const tickLabel = (d: number): string => `${d < 0 ? (10 ** d).toFixed(-d) : String(10 ** d)}×`;

const LEFT = 150, RIGHT = 60, WIDTH = 920, BAR = 11, GAP = 9;

/**
 * One panel: horizontal bars of a ratio on a log scale, one group per program plus the geometric
 * mean, one bar per series; bars grow from the 1× line (left of it: better than native).
 */
function drawPanel(out: string[], panel: Panel, programs: string[], y0: number): number {
  const series = panel.series.filter((s) => s.ratios.size > 0);
  const all = [...series.flatMap((s) => [...s.ratios.values()]), 1];
  const lo = Math.floor(Math.log10(Math.min(...all)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
  const plotW = WIDTH - LEFT - RIGHT;
  const x = (r: number): number => LEFT + ((Math.log10(r) - lo) / (hi - lo)) * plotW;
  const groupH = Math.max(series.length, 1) * BAR + GAP;
  out.push(`<text x="${LEFT}" y="${y0 + 16}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
  series.forEach((s, i) => {
    const lx = LEFT + i * 170;
    out.push(`<rect x="${lx}" y="${y0 + 26}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${y0 + 36}">${esc(s.name)}</text>`);
  });
  const top = y0 + 52;
  if (series.length === 0) {
    out.push(`<text x="${LEFT}" y="${top + 14}" fill="#666">not measured</text>`);
    return top + 30;
  }
  const rows = programs.map((g) => ({ label: g, values: series.map((s) => s.ratios.get(g)) }));
  rows.push({ label: 'geometric mean', values: series.map((s) => (s.ratios.size === programs.length ? geomean([...s.ratios.values()]) : undefined)) });
  const bottom = top + rows.length * groupH;
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${bottom}" stroke="${d === 0 ? '#333' : '#ccc'}"/>`);
    out.push(`<text x="${gx}" y="${bottom + 14}" text-anchor="middle">${tickLabel(d)}</text>`);
  }
  out.push(`<line x1="${LEFT}" y1="${bottom}" x2="${WIDTH - RIGHT}" y2="${bottom}" stroke="#333"/>`);
  out.push(`<text x="${LEFT + plotW / 2}" y="${bottom + 32}" text-anchor="middle" font-weight="bold">${esc(panel.axis)}</text>`);
  const midY = (top + bottom) / 2;
  out.push(`<text x="14" y="${midY.toFixed(1)}" text-anchor="middle" font-weight="bold" transform="rotate(-90 14 ${midY.toFixed(1)})">program</text>`);
  rows.forEach((row, gi) => {
    const gy = top + gi * groupH;
    const bold = gi === programs.length ? ' font-weight="bold"' : '';
    out.push(`<text x="${LEFT - 8}" y="${(gy + (groupH - GAP) / 2 + 4).toFixed(1)}" text-anchor="end"${bold}>${esc(row.label)}</text>`);
    row.values.forEach((r, si) => {
      if (r === undefined) return;
      const y = gy + si * BAR;
      const x1 = x(1), x2 = x(r);
      out.push(`<rect x="${Math.min(x1, x2).toFixed(1)}" y="${y}" width="${Math.max(Math.abs(x2 - x1), 1).toFixed(1)}" height="${BAR - 2}" fill="${COLORS[si % COLORS.length]}"/>`);
      out.push(`<text x="${(Math.max(x1, x2) + 4).toFixed(1)}" y="${y + BAR - 3}" font-size="9">${formatRatio(r)}</text>`);
    });
  });
  return bottom + 48;
}

/** Two panels: host time ÷ gcc -O2, device instructions ÷ arm-none-eabi-gcc -O2; log scales. */
export function renderSvg(report: BenchReport): string {
  const programs = report.programs.map((p) => p.name);
  const host: Panel = {
    title: 'Host: time per run ÷ native (gcc -O2) — lower is better',
    axis: 'time per run ÷ gcc -O2 time (log scale)',
    series: hostEngines(report)
      .filter((e) => e.name !== BASELINE && e.skipped === undefined)
      .map((e) => ({ name: label(e), ratios: ratios(report, timeOf, e.name, BASELINE) })),
  };
  const device: Panel = {
    title: 'Device (emulated Cortex-M4): instructions per run ÷ native — lower is better',
    axis: 'instructions per run ÷ arm-none-eabi-gcc -O2 instructions (log scale)',
    series: deviceEngines(report)
      .filter((e) => e.name !== DEVICE_BASELINE && e.skipped === undefined)
      .map((e) => ({ name: e.name, ratios: ratios(report, insnsOf, e.name, DEVICE_BASELINE) })),
  };
  const body: string[] = [];
  let y = drawPanel(body, host, programs, 8);
  if (deviceEngines(report).length > 0) y = drawPanel(body, device, programs, y);
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    ...body,
    `<text x="${LEFT}" y="${height - 6}" fill="#666">${esc(`${report.date} · ${report.machine.cpu} · Node ${report.machine.node} · ${report.mode} mode`)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
