// The benchmark report: one JSON document (everything measured), rendered as a Markdown table and
// a dependency-free SVG bar chart. Pure functions of the report, so they are testable without
// timing anything.
import type { TimingOptions } from './measure.js';
import { geomean } from './measure.js';
import type { BpfBuild } from './toolchain.js';

export type EngineFamily = 'reference' | 'ebpf';
export type ResultStatus = 'ok' | 'failed' | 'skipped';

export interface EngineInfo {
  name: string;
  description: string;
  family: EngineFamily;
  where?: 'host' | 'device';
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
  /** The v4 build's instructions differ from v3's (so eBPF engines also run it). */
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
  compileMs?: number;
  prepareMs?: number;
  steps?: number;
  /** Millions of eBPF instructions per second (steps / time). */
  mips?: number;
  cyclesPerRun?: number;
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; os: string; node: string };
  mode: 'quick' | 'full';
  timing: TimingOptions;
  engines: EngineInfo[];
  programs: ProgramInfo[];
  results: ResultRow[];
  /** One line per wrong answer or failed engine; non-empty means the run failed. */
  failures: string[];
}

export const BASELINE = 'native';
export const ORACLE = 'interp';

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

const formatMs = (ms: number | undefined): string => (ms === undefined ? '—' : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`);

/** The row an engine produced for a program (eBPF engines: the given build, default v3). */
export function resultOf(report: BenchReport, program: string, engine: string, build: BpfBuild = 'v3'): ResultRow | undefined {
  const family = report.engines.find((e) => e.name === engine)?.family;
  return report.results.find((r) => r.program === program && r.engine === engine && (family !== 'ebpf' || r.build === build));
}

function timeOf(report: BenchReport, program: string, engine: string, build: BpfBuild = 'v3'): number | undefined {
  const r = resultOf(report, program, engine, build);
  return r?.status === 'ok' ? r.nsPerRun : undefined;
}

/** t(engine) / t(native) for every program where both ran. */
export function ratiosToNative(report: BenchReport, engine: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of report.programs) {
    const t = timeOf(report, p.name, engine);
    const base = timeOf(report, p.name, BASELINE);
    if (t !== undefined && base !== undefined && base > 0) out.set(p.name, t / base);
  }
  return out;
}

function cell(report: BenchReport, program: string, engine: EngineInfo, build: BpfBuild = 'v3'): string | undefined {
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
  /** The geometric-mean row's cell. */
  summary(): string;
}

function columns(report: BenchReport): Column[] {
  const cols: Column[] = [];
  const names = new Set(report.engines.map((e) => e.name));
  for (const e of report.engines) {
    const label = e.family === 'ebpf' ? `${e.name} (v3)` : e.name;
    const header = e.skipped !== undefined ? `${label} (skipped)` : label;
    const geo = (values: (number | undefined)[]): string => {
      const xs = values.filter((v): v is number => v !== undefined && v > 0);
      return xs.length === report.programs.length && xs.length > 0 ? formatRatio(geomean(xs)) : '—';
    };
    const per = (f: (p: string) => number | undefined): (() => string) => () => geo(report.programs.map((p) => f(p.name)));
    cols.push({
      header,
      value: (p) => cell(report, p, e) ?? formatNs(timeOf(report, p, e.name)),
      summary: () => '',
    });
    const t = (p: string): number | undefined => timeOf(report, p, e.name);
    if (e.name !== BASELINE && names.has(BASELINE)) {
      const ratio = (p: string): number | undefined => {
        const base = timeOf(report, p, BASELINE);
        const x = t(p);
        return x !== undefined && base !== undefined ? x / base : undefined;
      };
      cols.push({ header: `${e.name} × native`, value: (p) => cell(report, p, e) ?? formatRatio(ratio(p)), summary: per(ratio) });
    }
    if (e.name !== ORACLE && e.name !== BASELINE && names.has(ORACLE)) {
      const speedup = (p: string): number | undefined => {
        const oracle = timeOf(report, p, ORACLE);
        const x = t(p);
        return x !== undefined && oracle !== undefined ? oracle / x : undefined;
      };
      cols.push({ header: `interp ÷ ${e.name}`, value: (p) => cell(report, p, e) ?? formatRatio(speedup(p)), summary: per(speedup) });
    }
    if (e.name === ORACLE) {
      const mips = (p: string): number | undefined => {
        const r = resultOf(report, p, ORACLE);
        return r?.status === 'ok' ? r.mips : undefined;
      };
      cols.push({
        header: 'M insn/s',
        value: (p) => cell(report, p, e) ?? (mips(p)?.toFixed(1) ?? '—'),
        summary: () => {
          const xs = report.programs.map((p) => mips(p.name)).filter((v): v is number => v !== undefined);
          return xs.length > 0 ? geomean(xs).toFixed(1) : '—';
        },
      });
    }
  }
  return cols;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? ':--' : '--:'))), ...rows.map(line)].join('\n');
}

function mainTable(report: BenchReport): string {
  const cols = columns(report);
  const rows = report.programs.map((p) => {
    const steps = resultOf(report, p.name, ORACLE)?.steps;
    return [p.name, steps === undefined ? '—' : String(steps), ...cols.map((c) => c.value(p.name))];
  });
  rows.push(['**geometric mean**', '', ...cols.map((c) => c.summary())]);
  return table(['program', 'eBPF insns/run', ...cols.map((c) => c.header)], rows);
}

function v4Table(report: BenchReport): string | undefined {
  const differing = report.programs.filter((p) => p.v4Differs);
  if (differing.length === 0) return undefined;
  const ebpf = report.engines.filter((e) => e.family === 'ebpf');
  const header = ['program', 'slots v3', 'slots v4', 'insns/run v3', 'insns/run v4'];
  for (const e of ebpf) header.push(`${e.name} v3`, `${e.name} v4`, 'v4 ÷ v3');
  const rows = differing.map((p) => {
    const steps = (b: BpfBuild): string => String(resultOf(report, p.name, ORACLE, b)?.steps ?? '—');
    const row = [p.name, String(p.slots.v3 ?? '—'), String(p.slots.v4 ?? '—'), steps('v3'), steps('v4')];
    for (const e of ebpf) {
      const t3 = timeOf(report, p.name, e.name, 'v3');
      const t4 = timeOf(report, p.name, e.name, 'v4');
      row.push(
        cell(report, p.name, e, 'v3') ?? formatNs(t3),
        cell(report, p.name, e, 'v4') ?? formatNs(t4),
        t3 !== undefined && t4 !== undefined ? formatRatio(t4 / t3) : '—',
      );
    }
    return row;
  });
  return table(header, rows);
}

function costTable(report: BenchReport): string {
  const header = ['program', 'input bytes', 'clang 14 (v3)', 'clang-19 (v4)', 'load + verify (v3)'];
  const ebpf = report.engines.filter((e) => e.family === 'ebpf' && e.skipped === undefined);
  const refs = report.engines.filter((e) => e.family === 'reference' && e.skipped === undefined);
  for (const e of ebpf) header.push(`${e.name} prepare`);
  for (const e of refs) header.push(`${e.name} compile`);
  const wasm = refs.some((e) => e.name === 'clang-wasm32');
  if (wasm) header.push('Wasm compile + instantiate');
  const rows = report.programs.map((p) => {
    const row = [p.name, String(p.inputBytes), formatMs(p.compileMs.v3), formatMs(p.compileMs.v4), formatMs(p.loadMs.v3)];
    for (const e of ebpf) row.push(formatMs(resultOf(report, p.name, e.name)?.prepareMs));
    for (const e of refs) row.push(formatMs(resultOf(report, p.name, e.name)?.compileMs));
    if (wasm) row.push(formatMs(resultOf(report, p.name, 'clang-wasm32')?.prepareMs));
    return row;
  });
  return table(header, rows);
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const t = report.timing;
  const out: string[] = [
    '# femtojit benchmarks',
    '',
    `${report.date} · ${m.cpu} (${m.cores} cores) · ${m.os} · Node ${m.node} · ${report.mode} mode ` +
      `(median of ${t.samples} samples of at least ${t.minSampleMs} ms, after ${t.warmupMs} ms of warm-up)`,
    '',
    'Time per run of each program. `E × native`: E\'s time ÷ the gcc -O2 time (lower is better). ' +
      '`interp ÷ E`: the interpreter\'s time ÷ E\'s time (how many times faster than the interpreter E is). ' +
      'eBPF engines run the clang 14 `-mcpu=v3` build.',
    '',
    mainTable(report),
    '',
  ];
  const skipped = report.engines.filter((e) => e.skipped !== undefined);
  if (skipped.length > 0) {
    out.push('Skipped engines:', '', ...skipped.map((e) => `- \`${e.name}\`: ${e.skipped}`), '');
  }
  if (report.failures.length > 0) {
    out.push('**FAILURES** (the run failed):', '', ...report.failures.map((f) => `- ${f}`), '');
  }
  const v4 = v4Table(report);
  if (v4 !== undefined) {
    out.push('## clang-19 `-mcpu=v4` builds', '', 'Programs whose v4 code differs from v3 (eBPF engines only).', '', v4, '');
  }
  out.push('## Compile and prepare times', '', costTable(report), '');
  out.push('## Engines', '', ...report.engines.map((e) => `- \`${e.name}\`: ${e.description}`), '');
  return out.join('\n');
}

// --- SVG ------------------------------------------------------------------------------------------

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal bars of time ÷ native time on a log scale, one group per program plus the geometric
 * mean, one bar per engine; bars grow from the 1× line (left of it: faster than gcc).
 */
export function renderSvg(report: BenchReport): string {
  const series = report.engines
    .filter((e) => e.name !== BASELINE && e.skipped === undefined)
    .map((e) => ({ name: e.family === 'ebpf' ? `${e.name} (v3)` : e.name, ratios: ratiosToNative(report, e.name) }))
    .filter((s) => s.ratios.size > 0);
  const groups = report.programs.map((p) => p.name);
  const geo = series.map((s) => (s.ratios.size === groups.length ? geomean([...s.ratios.values()]) : undefined));
  const all = [...series.flatMap((s) => [...s.ratios.values()]), 1];
  const lo = Math.floor(Math.log10(Math.min(...all)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
  const left = 160, right = 70, top = 60, barH = 12, gap = 10, width = 900;
  const plotW = width - left - right;
  const x = (r: number): number => left + ((Math.log10(r) - lo) / (hi - lo)) * plotW;
  const groupH = Math.max(series.length, 1) * barH + gap;
  const height = top + (groups.length + 1) * groupH + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">Time per run ÷ native (gcc -O2), log scale — lower is better</text>`,
  ];
  series.forEach((s, i) => {
    const lx = left + i * 160;
    out.push(`<rect x="${lx}" y="28" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="38">${esc(s.name)}</text>`);
  });
  const plotBottom = top + (groups.length + 1) * groupH;
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d);
    out.push(`<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${plotBottom}" stroke="${d === 0 ? '#333' : '#ccc'}"/>`);
    out.push(`<text x="${gx.toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle">${10 ** d}×</text>`);
  }
  const rows: { label: string; values: (number | undefined)[] }[] = groups.map((g) => ({ label: g, values: series.map((s) => s.ratios.get(g)) }));
  rows.push({ label: 'geometric mean', values: geo });
  rows.forEach((row, gi) => {
    const y0 = top + gi * groupH;
    const bold = gi === groups.length ? ' font-weight="bold"' : '';
    out.push(`<text x="${left - 8}" y="${(y0 + (groupH - gap) / 2 + 4).toFixed(1)}" text-anchor="end"${bold}>${esc(row.label)}</text>`);
    row.values.forEach((r, si) => {
      if (r === undefined) return;
      const y = y0 + si * barH;
      const x1 = x(1), x2 = x(r);
      out.push(`<rect x="${Math.min(x1, x2).toFixed(1)}" y="${y}" width="${Math.max(Math.abs(x2 - x1), 1).toFixed(1)}" height="${barH - 2}" fill="${COLORS[si % COLORS.length]}"/>`);
      out.push(`<text x="${(Math.max(x1, x2) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">${formatRatio(r)}</text>`);
    });
  });
  out.push(`<text x="${left}" y="${height - 8}" fill="#666">${esc(`${report.date} · ${report.machine.cpu} · Node ${report.machine.node}`)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
