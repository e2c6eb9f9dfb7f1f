// The benchmark report's renderers on a small hand-built report (nothing is timed here): the host,
// device, code-size and compile tables, the headline ratios, the two-panel SVG chart, and the
// README section with its marker-bounded rewrite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { README_END, README_START, ReadmeMarkerError, rewriteReadmeSection } from '../bench/readme.js';
import {
  codeSizeTable, compileTable, deviceTable, headlines, hostRatioTable, hostTimeTable, renderMarkdown, renderReadmeSection, renderSvg,
  type BenchReport,
} from '../bench/report.js';
import { ROOT } from './support/paths.js';

const report: BenchReport = {
  date: '2026-01-01T00:00:00.000Z',
  machine: { cpu: 'Test CPU', cores: 2, os: 'Linux', node: 'v20.0.0' },
  mode: 'full',
  timing: { minSampleMs: 20, samples: 11, warmupMs: 500, compileRepeats: 7 },
  engines: [
    { name: 'native', description: 'gcc', family: 'reference', where: 'host' },
    { name: 'clang-wasm32', description: 'clang wasm32', family: 'reference', where: 'host', skipped: 'clang-19: not installed' },
    { name: 'interp', description: 'interpreter', family: 'ebpf', where: 'host' },
    { name: 'wasm', description: 'wasm jit', family: 'ebpf', where: 'host' },
    { name: 'native-m4', description: 'arm gcc', family: 'reference', where: 'device' },
    { name: 'thumb', description: 'thumb', family: 'ebpf', where: 'device' },
    { name: 'c-interp', description: 'device interpreter', family: 'ebpf', where: 'device' },
  ],
  programs: [
    { name: 'alpha', description: 'a', inputBytes: 8, slots: { v3: 10, v4: 9 }, compileMs: { v3: 30 }, loadMs: { v3: 5 }, v4Differs: true },
    { name: 'beta', description: 'b', inputBytes: 8, slots: { v3: 20, v4: 20 }, compileMs: { v3: 31 }, loadMs: { v3: 6 }, v4Differs: false },
  ],
  results: [
    { program: 'alpha', engine: 'native', status: 'ok', checksum: '0x1', nsPerRun: 100, samplesNs: [95, 100, 105], compileMs: 80 },
    { program: 'alpha', engine: 'clang-wasm32', status: 'skipped', reason: 'clang-19: not installed' },
    { program: 'alpha', engine: 'interp', build: 'v3', status: 'ok', checksum: '0x1', nsPerRun: 1000, steps: 500, mips: 500 },
    { program: 'alpha', engine: 'interp', build: 'v4', status: 'ok', checksum: '0x1', nsPerRun: 500, steps: 250, mips: 500 },
    { program: 'alpha', engine: 'wasm', build: 'v3', status: 'ok', checksum: '0x1', nsPerRun: 200, jitMs: 2, analysisMs: 1.5, instantiateMs: 0.5, codeBytes: 300, tierUp: { target: 'sized', analysisMs: 3, compileMs: 4, instantiateMs: 0.25 } },
    { program: 'alpha', engine: 'wasm', build: 'v4', status: 'ok', checksum: '0x1', nsPerRun: 100 },
    { program: 'beta', engine: 'native', status: 'ok', checksum: '0x2', nsPerRun: 400, compileMs: 81 },
    { program: 'beta', engine: 'clang-wasm32', status: 'skipped', reason: 'clang-19: not installed' },
    { program: 'beta', engine: 'interp', build: 'v3', status: 'ok', checksum: '0x2', nsPerRun: 16000, steps: 800, mips: 50 },
    { program: 'beta', engine: 'wasm', build: 'v3', status: 'ok', checksum: '0x2', nsPerRun: 800, samplesNs: [700, 800, 1000], jitMs: 4, instantiateMs: 0.7, codeBytes: 500 },
    { program: 'alpha', engine: 'native-m4', status: 'ok', checksum: '0x1', deviceInsns: 1000, codeBytes: 40 },
    { program: 'beta', engine: 'native-m4', status: 'ok', checksum: '0x2', deviceInsns: 2000, codeBytes: 100 },
    { program: 'alpha', engine: 'thumb', build: 'v3', status: 'ok', checksum: '0x1', deviceInsns: 4000, codeBytes: 160, jitMs: 1 },
    { program: 'beta', engine: 'thumb', build: 'v3', status: 'ok', checksum: '0x2', deviceInsns: 2000, codeBytes: 200, jitMs: 2 },
    { program: 'alpha', engine: 'c-interp', build: 'v3', status: 'ok', checksum: '0x1', deviceInsns: 40000 },
    { program: 'beta', engine: 'c-interp', build: 'v3', status: 'ok', checksum: '0x2', deviceInsns: 80000 },
  ],
  overhead: [{ engine: 'interp', nsPerRun: 2000 }, { engine: 'wasm', nsPerRun: 90 }],
  frontend: { title: 'Front-end speed', markdown: '## Front-end speed (median)\n\n| program | insns |\n|---|---:|\n| gen | 10000 |' },
  failures: [],
};

const rowOf = (md: string, first: string): string | undefined => md.split('\n').find((l) => l.startsWith(`| ${first} |`));

describe('host tables', () => {
  it('lists each host engine\'s time, with the interpreter\'s rate and its geometric mean', () => {
    const t = hostTimeTable(report);
    expect(t.split('\n')[0]).toBe('| program | eBPF insns/run | native | clang-wasm32 (skipped) | interp (v3) | wasm (v3) | interp M insn/s |');
    expect(rowOf(t, 'alpha')).toBe('| alpha | 500 | 100 ns | skipped | 1.00 µs | 200 ns | 500.0 |');
    // beta on wasm: samples 700..1000 around 800 -> ±19%; alpha's native ±5% is not worth a mark.
    expect(rowOf(t, 'beta')).toBe('| beta | 800 | 400 ns | skipped | 16.0 µs | 800 ns ±19% | 50.0 |');
    expect(rowOf(t, '**geometric mean**')).toBe('| **geometric mean** |  |  |  |  |  | **158.1** |'); // sqrt(500 * 50)
  });

  it('puts every ratio next to the others, skipping the columns of engines that did not run', () => {
    const t = hostRatioTable(report);
    expect(t.split('\n')[0]).toBe('| program | interp × native | wasm × native | interp ÷ wasm |');
    expect(rowOf(t, 'alpha')).toBe('| alpha | 10.0× | 2.00× | 5.00× |');
    expect(rowOf(t, 'beta')).toBe('| beta | 40.0× | 2.00× | 20.0× |');
    expect(rowOf(t, '**geometric mean**')).toBe('| **geometric mean** | **20.0×** | **2.00×** | **10.0×** |');
  });

  it('marks a failed run and leaves it out of the geometric mean', () => {
    const failed: BenchReport = {
      ...report,
      results: report.results.map((r) => (r.program === 'beta' && r.engine === 'wasm' && r.build === 'v3' ? { ...r, status: 'failed' as const, reason: 'wrong answer' } : r)),
      failures: ['beta on wasm (v3): wrong answer'],
    };
    const t = hostRatioTable(failed);
    expect(rowOf(t, 'beta')).toBe('| beta | 40.0× | **FAILED** | **FAILED** |');
    expect(rowOf(t, '**geometric mean**')).toBe('| **geometric mean** | **20.0×** | — | — |');
    const md = renderMarkdown(failed);
    expect(md).toContain('**FAILURES** (the run failed):');
    expect(md).toContain('- beta on wasm (v3): wrong answer');
  });
});

describe('device and code-size tables', () => {
  it('compares instructions per run with the native firmware and the Thumb code', () => {
    const t = deviceTable(report);
    expect(t.split('\n')[0]).toBe(
      '| program | eBPF insns/run | native-m4 insns | thumb insns | thumb × native-m4 | c-interp insns | c-interp × native-m4 | c-interp ÷ thumb |',
    );
    expect(rowOf(t, 'alpha')).toBe('| alpha | 500 | 1,000 | 4,000 | 4.00× | 40,000 | 40.0× | 10.0× |');
    expect(rowOf(t, 'beta')).toBe('| beta | 800 | 2,000 | 2,000 | 1.00× | 80,000 | 40.0× | 40.0× |');
    expect(rowOf(t, '**geometric mean**')).toBe('| **geometric mean** |  |  |  | **2.00×** |  | **40.0×** | **20.0×** |');
  });

  it('shows a device engine that is not available as such, with its reason', () => {
    const without: BenchReport = {
      ...report,
      engines: report.engines.map((e) => (e.name === 'c-interp' ? { ...e, skipped: 'not available yet' } : e)),
      results: report.results.filter((r) => r.engine !== 'c-interp'),
    };
    const t = deviceTable(without);
    expect(t.split('\n')[0]).toBe('| program | eBPF insns/run | native-m4 insns | thumb insns | thumb × native-m4 | c-interp insns (not run) |');
    expect(rowOf(t, 'alpha')).toBe('| alpha | 500 | 1,000 | 4,000 | 4.00× | skipped |');
    expect(renderMarkdown(without)).toContain('- `c-interp`: not available yet');
    expect(headlines(without).find((h) => h.label.includes('C interpreter'))?.text).toBe('not measured: `c-interp`: not available yet');
  });

  it('lists code bytes of every engine that reports them, with Thumb ÷ native and Thumb ÷ eBPF', () => {
    const t = codeSizeTable(report);
    expect(t.split('\n')[0]).toBe('| program | eBPF (v3) | wasm module | native-m4 function | thumb code | thumb ÷ native-m4 | thumb ÷ eBPF |');
    expect(rowOf(t, 'alpha')).toBe('| alpha | 80 | 300 | 40 | 160 | 4.00× | 2.00× |');
    expect(rowOf(t, 'beta')).toBe('| beta | 160 | 500 | 100 | 200 | 2.00× | 1.25× |');
    expect(rowOf(t, '**geometric mean**')).toBe('| **geometric mean** |  |  |  |  | **2.83×** | **1.58×** |');
  });

  it('gives compile times with eBPF instructions per ms and their median', () => {
    const t = compileTable(report);
    const header = t.split('\n')[0];
    expect(header).toContain('| wasm compile | wasm insns/ms | thumb compile | thumb insns/ms |');
    expect(header).toContain('| wasm V8 compile + instantiate |');
    expect(header).toContain('| native build |');
    // The load's analysis, when measured, after the compile it is not part of.
    // The tier-up, when there was one, with its own analysis and V8 time.
    expect(rowOf(t, 'alpha')).toBe('| alpha | 10 | 30 ms | 5.00 ms | 2.00 ms (+ analysis 1.50 ms) | 5.00 | 1.00 ms | 10.0 | sized: 4.00 ms + analysis 3.00 ms, V8 0.25 ms | 0.50 ms | 80 ms |');
    expect(rowOf(t, 'beta')).toBe('| beta | 20 | 31 ms | 6.00 ms | 4.00 ms | 5.00 | 2.00 ms | 10.0 | — | 0.70 ms | 81 ms |');
    // wasm: 10/2 and 20/4 insns per ms; thumb: 10/1 and 20/2.
    expect(rowOf(t, '**median**')).toBe('| **median** |  |  |  |  | **5.00** |  | **10.0** |  |  |  |');
  });
});

describe('headline', () => {
  it('states the geometric means a user picks a runtime on, and why one is missing', () => {
    const h = new Map(headlines(report).map((x) => [x.label, x]));
    expect(h.get('Wasm JIT vs the reference interpreter')).toMatchObject({ text: '10.0× faster than the interpreter' });
    expect(h.get('Wasm JIT vs the reference interpreter')?.value).toBeCloseTo(10, 10);
    expect(h.get('Wasm JIT vs native (gcc -O2)')?.value).toBeCloseTo(2, 10);
    expect(h.get('Thumb vs native Cortex-M4 (gcc -O2)')).toMatchObject({ text: "2.00× gcc's instructions per run (images for the run's context length)" });
    expect(h.get('Thumb vs the C interpreter on the device')).toMatchObject({ text: '20.0× fewer instructions than the interpreter' });
    expect(h.get('Thumb, one image for any context length, vs native Cortex-M4')?.text).toBe('not measured: no `thumb-generic` engine in this run');
    expect(h.get('Wasm JIT vs clang wasm32 (same V8)')?.text).toBe('not measured: `clang-wasm32`: clang-19: not installed');
    expect(h.get('Wasm JIT vs clang wasm32 (same V8)')?.value).toBeUndefined();
    expect(h.get('Wasm AOT -O vs clang wasm32')?.text).toBe('not measured: no `wasm-aot` engine in this run');
    expect(h.get('Wasm JIT compile speed')?.value).toBeCloseTo(5, 10);
    // Only alpha's analysis was measured: 10 slots in 1.5 ms.
    expect(h.get('Wasm JIT compile speed')?.text).toBe(
      "5.00 eBPF instructions per ms (median; a loaded program with its verifier facts to the baseline tier's module bytes), then 0.60 ms of V8 compile + instantiate; the verifier's analysis at load runs 6.67 per ms",
    );
  });

  it('says when a mean covers only some programs', () => {
    const partial: BenchReport = { ...report, results: report.results.filter((r) => !(r.program === 'beta' && r.engine === 'thumb')) };
    const h = headlines(partial).find((x) => x.label === 'Thumb vs native Cortex-M4 (gcc -O2)');
    expect(h?.text).toBe("4.00× gcc's instructions per run (images for the run's context length) (only 1 of 2 programs)");
  });
});

describe('latest.md', () => {
  const md = renderMarkdown(report);

  it('has the sections in reading order, with date, machine and the per-run overhead', () => {
    const order = ['## Headline', '## Host: time per run', '## Host: ratios', '## Device: instructions per run', '## Code size', '## Compile times', '## clang-19 `-mcpu=v4` builds', '## Front-end speed (median)', '## Engines'];
    const at = order.map((h) => md.indexOf(h));
    expect(at.every((x) => x >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(md).toContain('2026-01-01T00:00:00.000Z · Test CPU (2 cores) · Linux · Node v20.0.0 · full mode');
    expect(md).toContain('`interp` 2.00 µs, `wasm` 90.0 ns');
    expect(md).not.toContain('## Front-end speed\n'); // its own heading is kept, not doubled
  });

  it('lists the v4 builds that differ, with their time relative to v3', () => {
    expect(rowOf(md, 'alpha')).toBeDefined();
    expect(md).toMatch(/\| alpha \| 10 \| 9 \| 500 \| 250 \| 1\.00 µs \| 500 ns \| 0\.500× \| 200 ns \| 100 ns \| 0\.500× \|/);
    expect(md).not.toMatch(/\| beta \| 20 \| 20 \|/);
  });

  it('gives the load average and warns when the machine was busy', () => {
    const busy = renderMarkdown({ ...report, machine: { ...report.machine, load: [3.5, 4.25] } });
    expect(busy).toContain('Node v20.0.0 · load average 3.5 → 4.3 (**busy machine: host times are noisy**) · full mode');
    const calm = renderMarkdown({ ...report, machine: { ...report.machine, load: [0.5, 1.0] } });
    expect(calm).toContain('load average 0.5 → 1.0 · full mode');
  });

  it('says when the front-end figures are missing', () => {
    const without = renderMarkdown({ ...report, frontend: { title: 'Front-end speed', missing: 'bench/frontend-speed.ts failed: boom' } });
    expect(without).toContain('## Front-end speed\n\nNot measured: bench/frontend-speed.ts failed: boom.');
  });
});

describe('chart', () => {
  const svg = renderSvg(report);

  it('draws a host and a device panel, each with labelled log axes', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('>Host: time per run ÷ native (gcc -O2) — lower is better<');
    expect(svg).toContain('>Device (emulated Cortex-M4): instructions per run ÷ native — lower is better<');
    expect(svg).toContain('>time per run ÷ gcc -O2 time (log scale)<');
    expect(svg).toContain('>instructions per run ÷ arm-none-eabi-gcc -O2 instructions (log scale)<');
    expect(svg.match(/>program</g)).toHaveLength(2);
    for (const tick of ['1×', '10×', '100×']) expect(svg).toContain(`>${tick}<`);
  });

  it('draws one bar per engine and program plus the geometric means, none for skipped engines', () => {
    // Host: interp and wasm; device: thumb and c-interp; each over 2 programs + the mean.
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="9"/g)];
    expect(bars).toHaveLength(12);
    for (const label of ['10.0×', '40.0×', '20.0×', '4.00×', 'geometric mean', 'interp (v3)', 'c-interp']) expect(svg).toContain(`>${label}<`);
    expect(svg).not.toContain('clang-wasm32');
  });
});

describe('README section', () => {
  const section = renderReadmeSection(report, { markdown: 'bench/results/latest.md', svg: 'bench/results/latest.svg' });

  it('holds the date and machine, the headline, the chart and the main tables, with no headings of its own', () => {
    expect(section).toContain('_Measured 2026-01-01 on Test CPU (2 cores), Linux, Node v20.0.0, full mode');
    expect(section).toContain('[bench/results/latest.md](bench/results/latest.md)');
    expect(section).toContain('![benchmarks](bench/results/latest.svg)');
    expect(section).toContain('- **Wasm JIT vs the reference interpreter**: 10.0× faster than the interpreter');
    expect(section).toContain('| alpha | 10.0× | 2.00× | 5.00× |');
    expect(section).toContain('| alpha | 500 | 1,000 | 4,000 | 4.00× | 40,000 | 40.0× | 10.0× |');
    expect(section).toContain('**Front-end speed (median)**');
    expect(section).not.toMatch(/^#/m);
  });
});

describe('README rewrite', () => {
  const readme = `# Title\n\nintro\n\n## Benchmarks\n\ntext before\n\n${README_START}\nold figures\nmore old\n${README_END}\n\n## Layout\n\nrest\n`;

  it('replaces only the text between the markers', () => {
    const out = rewriteReadmeSection(readme, 'new figures\n| a |');
    expect(out).toBe(`# Title\n\nintro\n\n## Benchmarks\n\ntext before\n\n${README_START}\nnew figures\n| a |\n${README_END}\n\n## Layout\n\nrest\n`);
    const [before, after] = [readme.split(README_START), out.split(README_START)];
    expect(after[0]).toBe(before[0]);
    expect(after[1].split(README_END)[1]).toBe(before[1].split(README_END)[1]);
  });

  it('gives the same file when rewritten twice with the same section', () => {
    const once = rewriteReadmeSection(readme, 'x');
    expect(rewriteReadmeSection(once, 'x')).toBe(once);
  });

  it('refuses a README without both markers in order, once each', () => {
    expect(() => rewriteReadmeSection('# no markers\n', 'x')).toThrow(ReadmeMarkerError);
    expect(() => rewriteReadmeSection(`${README_START}\n`, 'x')).toThrow(/no '<!-- bench:end -->'/);
    expect(() => rewriteReadmeSection(`${README_END}\n${README_START}\n`, 'x')).toThrow(/comes before/);
    expect(() => rewriteReadmeSection(`${README_START}\n${README_END}\n${README_START}\n`, 'x')).toThrow(/more than once/);
    expect(() => rewriteReadmeSection(readme, `sneaky ${README_END}`)).toThrow(/must not contain/);
  });

  it('finds the markers in the repository README', () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const out = rewriteReadmeSection(text, 'probe');
    expect(out).toContain(`${README_START}\nprobe\n${README_END}`);
    expect(out.slice(0, out.indexOf(README_START))).toBe(text.slice(0, text.indexOf(README_START)));
    expect(out.slice(out.indexOf(README_END))).toBe(text.slice(text.indexOf(README_END)));
  });
});
