// Ahead-of-time linking on the board: runtime/cortex-m/examples/sensor-filter compiled by clang,
// turned into a C array by `femtojit compile --target thumb --emit c` (and into a bytecode array by
// packBytecode), linked into the example firmware with the fc runtime, run on the emulated
// Cortex-M4; it must print what the reference interpreter computes for the same context. Also the
// footprint measurement behind the README's table.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVerified } from '../runtime/container.js';
import { hasArmGcc, hasQemu, runOnBoard } from '../runtime/cortex-m/board.js';
import { buildFirmware } from '../runtime/cortex-m/build.js';
import { fcIncludes, fcSources } from '../runtime/cortex-m/fc/sources.js';
import { footprintTable, measureFootprint } from '../runtime/cortex-m/footprint.js';
import { bytecodeCHeader, bytecodeCSource, packBytecode } from '../runtime/device-engine.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { compileBpf, hasClang } from './support/clang.js';
import { CLI, ROOT } from './support/paths.js';

const EXAMPLE = join(ROOT, 'runtime', 'cortex-m', 'examples', 'sensor-filter');

let dir: string;

beforeAll(() => {
  expect(hasQemu() && hasArmGcc(), 'qemu-system-arm and arm-none-eabi-gcc are needed').toBe(true);
  expect(hasClang('clang'), 'clang is needed').toBe(true);
  expect(existsSync(CLI), 'dist/femtojit.js is built by the test setup').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'femtojit-example-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The context main.c builds: n = 64, then 64 int16 samples (a ramp with a spike every 13th). */
function exampleContext(): Uint8Array {
  const b = new Uint8Array(4 + 64 * 2);
  const v = new DataView(b.buffer);
  v.setUint32(0, 64, true);
  for (let i = 0; i < 64; i++) v.setInt16(4 + 2 * i, ((i * 37) % 200) - 100 + (i % 13 === 5 ? 3000 : 0), true);
  return b;
}

describe('the sensor-filter example firmware', () => {
  it('links the container compiled with --emit c and prints the interpreter\'s result, on both engines', async () => {
    const obj = join(dir, 'filter.o');
    compileBpf(join(EXAMPLE, 'filter.c'), { clang: 'clang', mcpu: 'v3', out: obj });
    execFileSync(process.execPath, [CLI, 'compile', obj, '--target', 'thumb', '--emit', 'c', '--entry', 'sensor_filter', '-o', join(dir, 'filter_image.c')], { stdio: 'pipe' });
    expect(readFileSync(join(dir, 'filter_image.h'), 'utf8')).toMatch(/extern const uint8_t filter_image\[\];/);
    const { program } = loadVerified(new Uint8Array(readFileSync(obj)), 'filter.o', { entry: 'sensor_filter', helpers: conformanceHelpers() });
    writeFileSync(join(dir, 'filter_bytecode.c'), bytecodeCSource(packBytecode(program), 'filter_bytecode', 'filter.o'));
    writeFileSync(join(dir, 'filter_bytecode.h'), bytecodeCHeader('filter_bytecode'));

    const elf = await buildFirmware({
      name: 'sensor-filter',
      sources: [join(EXAMPLE, 'main.c'), join(dir, 'filter_image.c'), join(dir, 'filter_bytecode.c'), ...fcSources({ interp: true })],
      includes: [dir, ...fcIncludes()],
      defines: { WITH_BYTECODE: '1' },
      outDir: join(ROOT, 'build', 'firmware'),
    });
    const r = await runOnBoard(elf, { timeoutMs: 20_000 });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);

    const want = interpret(program, { mem: exampleContext() });
    expect(want.ok).toBe(true);
    const r0 = want.ok ? want.r0 : 0n;
    const value = Number(r0 >> 16n) - 32768;
    const spikes = Number(r0 & 0xffffn);
    expect(spikes).toBeGreaterThan(0); // the waveform has spikes; the filter must see some
    const line = (engine: string): string =>
      `${engine} status=0 r0=0x${(r0 & 0xffffffffn).toString(16).padStart(8, '0')} value=${value} spikes=${spikes}`;
    expect(r.stdout.trim().split('\n')).toEqual([line('thumb'), line('interp')]);
  }, 180_000);
});

describe('footprint', () => {
  it('measures flash and RAM of each runtime configuration; the interpreter costs flash, not RAM', async () => {
    const report = await measureFootprint();
    const get = (config: string, opt: '-Os' | '-O2') => report.rows.find((r) => r.config.startsWith(config) && r.opt === opt);
    for (const opt of ['-Os', '-O2'] as const) {
      const thumb = get('Thumb images (', opt);
      const interp = get('C interpreter (', opt);
      const both = get('both engines', opt);
      expect(thumb && interp && both).toBeTruthy();
      if (!thumb || !interp || !both) return;
      expect(thumb.flash).toBeGreaterThan(500);
      expect(interp.flash).toBeGreaterThan(thumb.flash);
      expect(both.flash).toBeGreaterThan(interp.flash);
      expect(interp.ram).toBe(thumb.ram); // the interpreter keeps its state in the container
    }
    expect(get('C interpreter (', '-Os')?.flash).toBeLessThan(get('C interpreter (', '-O2')?.flash ?? 0);
    expect(report.containerBytes).toBeGreaterThan(2048 + 1616);
    expect(report.interpFrameBytes).toBeGreaterThan(0);
    expect(footprintTable(report)).toMatch(/\| C interpreter \(fc_load_bytecode \+ fc_run\) \| \d+ B/);
  }, 120_000);
});
