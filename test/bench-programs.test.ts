// The benchmark programs end to end, without timing anything: each C file compiles with clang 14
// (-mcpu=v3) and clang-19 (-mcpu=v4), loads and passes the verifier, and the interpreter's answer
// on the generated input equals what the same source compiled by gcc -O2 (and by clang for wasm32)
// returns for the same bytes. Plus the harness's pure parts: argument parsing and answer judging
// (the rendering is test/bench-report.test.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostEbpfEngine, REFERENCE_ENGINES } from '../bench/engines.js';
import { judgeAnswers, parseArgs, UsageError } from '../bench/harness.js';
import { geomean, median } from '../bench/measure.js';
import { PROGRAMS, type BenchProgram } from '../bench/programs.js';
import type { ResultRow } from '../bench/report.js';
import { buildNative, compileBpf, nativeDriverSource, parseDriverOutput, runNative, ToolError, type BpfBuild } from '../bench/toolchain.js';
import { loadVerified } from '../runtime/container.js';
import { ENGINES } from '../runtime/engine.js';
import { conformanceHelpers } from '../runtime/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'femtojit-bench-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const interp = hostEbpfEngine(ENGINES.get('interp')!);
const wasm32 = REFERENCE_ENGINES.find((e) => e.name === 'clang-wasm32')!;
const checksums = new Map<string, bigint>();

async function nativeChecksum(p: BenchProgram, input: Uint8Array): Promise<{ checksum: bigint; inputPath: string }> {
  const inputPath = join(work, `${p.name}.input`);
  writeFileSync(inputPath, input);
  const exe = await buildNative(p, work);
  return { checksum: (await runNative(exe.value, inputPath)).checksum, inputPath };
}

describe('benchmark programs: clang BPF output on the interpreter agrees with gcc -O2', () => {
  it('has the programs the benchmark set promises', () => {
    expect(PROGRAMS.map((p) => p.name)).toEqual(expect.arrayContaining([
      'fletcher32', 'bubble_sort', 'bitswap', 'crc32_bitwise', 'crc32_table', 'fibonacci', 'moving_average',
      'memcpy_bytes', 'packet_parser', 'atoi_sum', 'muldiv64', 'sieve',
    ]));
  });

  it.each(PROGRAMS.map((p) => [p.name, p] as const))('%s', async (_name, p) => {
    const input = p.input();
    expect(p.input()).toEqual(input); // the generator is deterministic
    const native = await nativeChecksum(p, input);
    for (const build of ['v3', 'v4'] as BpfBuild[]) {
      const obj = await compileBpf(p, build, work);
      const { program } = loadVerified(obj.value, `${p.name}.${build}.o`, { entry: p.name, helpers: conformanceHelpers() });
      const m = await interp.measure(program, conformanceHelpers(), input);
      expect({ build, checksum: m.checksum }).toEqual({ build, checksum: native.checksum });
      expect(m.steps).toBeGreaterThan(100);
      if (p.mutates) {
        // The engine must hand every run a fresh copy of the input: a second run gives the same answer.
        const again = await interp.measure(program, conformanceHelpers(), input);
        expect(again.checksum).toBe(native.checksum);
      }
    }
    const w = await wasm32.measure(p, { input, inputPath: native.inputPath, workDir: work });
    expect(w.checksum).toBe(native.checksum);
    checksums.set(p.name, native.checksum);
  });

  it('gives every program its own, non-trivial answer', () => {
    expect(checksums.size).toBe(PROGRAMS.length);
    expect(new Set(checksums.values()).size).toBe(PROGRAMS.length);
    for (const v of checksums.values()) expect(v).not.toBe(0n);
  });

  it('packet_parser uses byte swaps in both builds', async () => {
    const p = PROGRAMS.find((q) => q.name === 'packet_parser')!;
    for (const build of ['v3', 'v4'] as BpfBuild[]) {
      const { program } = loadVerified((await compileBpf(p, build, work)).value, 'packet_parser', { entry: p.name, helpers: conformanceHelpers() });
      // 0xd4 / 0xdc: `le`/`be` (v3), 0xd7: `bswap` (v4).
      expect(program.insns.some((i) => i.code === 0xd4 || i.code === 0xdc || i.code === 0xd7)).toBe(true);
    }
  });

  it('crc32_table reads its table from .rodata', async () => {
    const p = PROGRAMS.find((q) => q.name === 'crc32_table')!;
    const { program } = loadVerified((await compileBpf(p, 'v3', work)).value, 'crc32_table', { entry: p.name, helpers: conformanceHelpers() });
    expect(program.data.some((d) => d.name.startsWith('.rodata') && d.bytes.length === 1024)).toBe(true);
    expect(program.relocs.length).toBeGreaterThan(0);
  });
});

describe('native timing driver', () => {
  it('restores the input before every run of a program that writes its context', () => {
    const sort = PROGRAMS.find((p) => p.name === 'bubble_sort')!;
    const fletcher = PROGRAMS.find((p) => p.name === 'fletcher32')!;
    expect(nativeDriverSource(sort)).toMatch(/memcpy\(work, input, len\);\s*uint64_t r = bubble_sort/);
    expect(nativeDriverSource(fletcher)).not.toMatch(/memcpy\(work, input, len\);\s*uint64_t r = /);
  });

  it('parses its output and refuses output without a checksum', () => {
    const out = parseDriverOutput('checksum 0xff\niterations 64\nsamples 3.000 1.000 2.000\nns_per_run 2.000\n', 'driver');
    expect(out).toEqual({ checksum: 255n, iterations: 64, samplesNs: [3, 1, 2], nsPerRun: 2 });
    expect(() => parseDriverOutput('Segmentation fault\n', 'fletcher32.native')).toThrow(ToolError);
    expect(() => parseDriverOutput('Segmentation fault\n', 'fletcher32.native')).toThrow(/fletcher32\.native: no checksum/);
  });
});

describe('harness', () => {
  it('parses --quick and --only, and refuses unknown programs and arguments', () => {
    expect(parseArgs(['--quick', '--only', 'sieve,fibonacci', '--only=bitswap'])).toEqual({ quick: true, only: ['sieve', 'fibonacci', 'bitswap'], readme: true, engines: [], frontend: true });
    expect(parseArgs(['--no-readme'])).toEqual({ quick: false, only: [], readme: false, engines: [], frontend: true });
    expect(parseArgs(['--engines', 'wasm,thumb', '--no-frontend', '--out=/tmp/x'])).toEqual({ quick: false, only: [], readme: true, engines: ['wasm', 'thumb'], frontend: false, out: '/tmp/x' });
    expect(() => parseArgs(['--out'])).toThrow(UsageError);
    expect(() => parseArgs(['--only', 'nosuch'])).toThrow(/unknown program 'nosuch'/);
    expect(() => parseArgs(['--only'])).toThrow(UsageError);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument '--fast'/);
  });

  it('fails every engine whose checksum differs from the native one', () => {
    const rows: ResultRow[] = [
      { program: 'p', engine: 'native', status: 'ok', checksum: '0x1' },
      { program: 'p', engine: 'clang-wasm32', status: 'ok', checksum: '0x1' },
      { program: 'p', engine: 'interp', build: 'v3', status: 'ok', checksum: '0x1' },
      { program: 'p', engine: 'interp', build: 'v4', status: 'ok', checksum: '0x2' },
    ];
    const wrong = judgeAnswers(rows);
    expect(wrong.map((r) => `${r.engine}/${r.build}`)).toEqual(['interp/v4']);
    expect(rows[3]).toMatchObject({ status: 'failed', expected: '0x1' });
    expect(rows[3].reason).toMatch(/checksum 0x2, native gives 0x1/);
  });

  it('falls back to the interpreter as judge when native did not run', () => {
    const rows: ResultRow[] = [
      { program: 'p', engine: 'native', status: 'skipped', reason: 'gcc: not installed' },
      { program: 'p', engine: 'clang-wasm32', status: 'ok', checksum: '0x5' },
      { program: 'p', engine: 'interp', build: 'v3', status: 'ok', checksum: '0x6' },
    ];
    expect(judgeAnswers(rows).map((r) => r.engine)).toEqual(['clang-wasm32']);
  });

  it('judges device rows against the host native answer too', () => {
    const rows: ResultRow[] = [
      { program: 'p', engine: 'native', status: 'ok', checksum: '0x7' },
      { program: 'p', engine: 'native-m4', status: 'ok', checksum: '0x7' },
      { program: 'p', engine: 'thumb', build: 'v3', status: 'ok', checksum: '0x8' },
      { program: 'p', engine: 'c-interp', build: 'v3', status: 'failed', reason: 'fault' },
    ];
    expect(judgeAnswers(rows).map((r) => r.engine)).toEqual(['thumb']);
    expect(rows[3].status).toBe('failed');
  });

  it('computes medians and geometric means', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(geomean([10, 40])).toBeCloseTo(20, 10);
  });
});
