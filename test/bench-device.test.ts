// The device engines of the benchmarks, on QEMU (mps2-an386): the native firmware (every program
// by arm-none-eabi-gcc in one firmware) gives the same checksum as the host's gcc build for every
// program, with an exact instruction count that repeats; the Thumb and C-interpreter adapters give
// the native answer too. Plus the parsers of the firmware's and the binutils' output. No timing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_INTERP } from '../bench/device-interp.js';
import { functionAddresses, functionBytesByFile, nativeM4DriverSource, NATIVE_M4, parseNativeM4Output } from '../bench/device-native.js';
import { THUMB } from '../bench/device-thumb.js';
import type { DeviceContext, DeviceJob, DeviceOutcome } from '../bench/device.js';
import { TIMING } from '../bench/harness.js';
import { PROGRAMS, type BenchProgram } from '../bench/programs.js';
import { buildNative, compileBpf, runNative } from '../bench/toolchain.js';
import { loadVerified } from '../runtime/container.js';
import { conformanceHelpers } from '../runtime/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'femtojit-bench-device-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const ctx: DeviceContext = { workDir: work, timing: TIMING.quick };

/** The host's gcc answer for each program, and its input written where the board reads it. */
const hostNative = new Map<string, bigint>();
const jobs: DeviceJob[] = [];

beforeAll(async () => {
  for (const p of PROGRAMS) {
    const input = p.input();
    const inputFile = `${p.name}.input`;
    writeFileSync(join(work, inputFile), input);
    const exe = await buildNative(p, work);
    hostNative.set(p.name, (await runNative(exe.value, join(work, inputFile))).checksum);
    jobs.push({ program: p, input, inputFile });
  }
}, 120_000);

const byName = (name: string): BenchProgram => PROGRAMS.find((p) => p.name === name)!;

function measured(o: DeviceOutcome | undefined): NonNullable<Extract<DeviceOutcome, { ok: true }>['measurement']> {
  if (o === undefined || !o.ok) throw new Error(`no measurement: ${o === undefined ? 'missing' : o.reason}`);
  return o.measurement;
}

describe('native-m4: the benchmark C on the board', () => {
  it('gives the host gcc answer for every program, with a count that repeats and the function size', async () => {
    const out = await NATIVE_M4.measureAll(jobs, ctx);
    expect(out).toHaveLength(PROGRAMS.length);
    out.forEach((o, i) => {
      const m = measured(o);
      const name = jobs[i].program.name;
      expect({ name, checksum: m.checksum }).toEqual({ name, checksum: hostNative.get(name) });
      expect(m.deviceInsns).toBeGreaterThan(100);
      expect(m.codeBytes).toBeGreaterThan(16);
    });
    // The constant table is data, not function code (the linker puts both in one output section).
    const crc = measured(out[jobs.findIndex((j) => j.program.name === 'crc32_table')]);
    expect(crc.codeBytes).toBeLessThan(1024);
    // A longer loop runs more instructions: the sieve does the most work of all.
    const insns = out.map((o) => measured(o).deviceInsns ?? 0);
    expect(Math.max(...insns)).toBe(insns[jobs.findIndex((j) => j.program.name === 'sieve')]);
  }, 120_000);

  it('reports a program whose input file is missing as a failure of that program only', async () => {
    const lonely: DeviceJob[] = [
      { program: byName('fletcher32'), input: new Uint8Array(0), inputFile: 'fletcher32.input' },
      { program: byName('bitswap'), input: new Uint8Array(0), inputFile: 'bitswap.input' },
    ];
    const empty = mkdtempSync(join(tmpdir(), 'femtojit-bench-device-empty-'));
    try {
      writeFileSync(join(empty, 'fletcher32.input'), byName('fletcher32').input());
      const out = await NATIVE_M4.measureAll(lonely, { ...ctx, workDir: empty });
      expect(measured(out[0]).checksum).toBe(hostNative.get('fletcher32'));
      expect(out[1]).toMatchObject({ ok: false });
      expect(out[1].ok ? '' : out[1].reason).toMatch(/cannot read: bitswap\.input/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  }, 60_000);

  it('declares every program and a table entry for each in the generated driver', () => {
    const src = nativeM4DriverSource(PROGRAMS);
    for (const p of PROGRAMS) {
      expect(src).toContain(`uint64_t ${p.name}(uint8_t *ctx, uint64_t len);`);
      expect(src).toContain(`{ "${p.name}", ${p.name} },`);
    }
  });
});

describe('output parsers', () => {
  it('reads the driver\'s result lines and ignores anything else', () => {
    const lines = parseNativeM4Output(
      'noise\nN sieve checksum=0x1d9b0dda321742c3 insns=348946 checksum2=0x1d9b0dda321742c3 insns2=348946\nN bad checksum=0x12 insns=1\n',
    );
    expect([...lines.keys()]).toEqual(['sieve']);
    expect(lines.get('sieve')).toEqual({ name: 'sieve', checksum: 0x1d9b0dda321742c3n, insns: 348946, checksum2: 0x1d9b0dda321742c3n, insns2: 348946 });
  });

  it('sums function symbols per source file, leaving out data in the text section', () => {
    const readelf = [
      '    62: 00000000     0 FILE    LOCAL  DEFAULT  ABS crc32_table.c',
      '    65: 00001a58  1024 OBJECT  LOCAL  DEFAULT    2 crc_table',
      '   146: 00000555    56 FUNC    GLOBAL DEFAULT    2 crc32_table',
      '   147: 00000601    20 FUNC    LOCAL  DEFAULT    2 helper',
    ].join('\n');
    const nm = [
      '00000554 00000038 T crc32_table\t/src/crc32_table.c:53',
      '00000600 00000014 t helper\t/src/crc32_table.c:9',
      '00001a58 00000400 t crc_table\t/src/crc32_table.c:7',
      '00000700 00000010 T main\t/src/driver.c:3',
    ].join('\n');
    const funcs = functionAddresses(readelf);
    expect([...funcs].sort((a, b) => a - b)).toEqual([0x554, 0x600]);
    expect(functionBytesByFile(nm, funcs)).toEqual(new Map([['/src/crc32_table.c', 56 + 20]]));
  });
});

describe('eBPF engines on the board', () => {
  const picked = ['fletcher32', 'crc32_table', 'bubble_sort'];

  async function ebpfJobs(): Promise<DeviceJob[]> {
    return Promise.all(
      picked.map(async (name) => {
        const p = byName(name);
        const obj = await compileBpf(p, 'v3', work);
        const { program } = loadVerified(obj.value, `${name}.v3.o`, { entry: name, helpers: conformanceHelpers() });
        return { program: p, input: p.input(), inputFile: `${name}.input`, ebpf: program };
      }),
    );
  }

  it('thumb gives the native answer with the generated code\'s size and an instruction count', async () => {
    const out = await THUMB.measureAll(await ebpfJobs(), ctx);
    expect(out).toHaveLength(picked.length);
    out.forEach((o, i) => {
      const m = measured(o);
      expect(m.checksum).toBe(hostNative.get(picked[i]));
      expect(m.deviceInsns).toBeGreaterThan(100);
      expect(m.codeBytes).toBeGreaterThan(16);
      expect(m.jitMs).toBeGreaterThan(0);
    });
  }, 120_000);

  it('the C interpreter gives the native answer and runs more instructions than the Thumb code', async () => {
    const js = await ebpfJobs();
    const [interp, thumb] = [await DEVICE_INTERP.measureAll(js, ctx), await THUMB.measureAll(js, ctx)];
    expect(interp).toHaveLength(picked.length);
    expect(thumb).toHaveLength(picked.length);
    interp.forEach((o, i) => {
      const m = measured(o);
      expect(m.checksum).toBe(hostNative.get(picked[i]));
      expect(m.deviceInsns).toBeGreaterThan(measured(thumb[i]).deviceInsns ?? Infinity);
    });
  }, 120_000);

  it('reports a program without a BPF build as failed, with the reason, and still runs the others', async () => {
    const js = await ebpfJobs();
    js[1] = { ...js[1], ebpf: undefined, ebpfFailure: 'clang 14 -mcpu=v3: not installed' };
    const out = await THUMB.measureAll(js, ctx);
    expect(out[1]).toEqual({ ok: false, reason: 'clang 14 -mcpu=v3: not installed' });
    expect(measured(out[0]).checksum).toBe(hostNative.get(picked[0]));
  }, 120_000);
});
