// The emulated board, end to end on QEMU: firmware build and cache, semihosting file loading,
// exit codes, the fault reporter, the instruction counter and the harness timeout.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BOARD_FAULT_EXIT,
  BoardRunError,
  COUNTER_MISCONFIGURED_EXIT,
  ICOUNT_SHIFT,
  hasArmGcc,
  hasQemu,
  qemuArgs,
  runOnBoard,
} from '../runtime/cortex-m/board.js';
import { FirmwareBuildError, buildFirmware } from '../runtime/cortex-m/build.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outDir = path.join(repo, 'build', 'test-firmware');
const probeSource = path.join(repo, 'runtime', 'cortex-m', 'test', 'probe.c');

let probe = '';
let work = '';

/** Reference Fletcher-32, the definition probe.c implements. */
function fletcher32(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  for (let i = 0; i < data.length; i += 2) {
    const word = data[i]! | (i + 1 < data.length ? data[i + 1]! << 8 : 0);
    sum1 = (sum1 + word) % 65535;
    sum2 = (sum2 + sum1) % 65535;
  }
  return ((sum2 << 16) | sum1) >>> 0;
}

function field(stdout: string, re: RegExp): string {
  const m = re.exec(stdout);
  if (m?.[1] === undefined) throw new Error(`no match for ${re} in:\n${stdout}`);
  return m[1];
}

function countOf(stdout: string, cmd: string, n: number): number {
  return Number(field(stdout, new RegExp(`^${cmd} ${n}=(\\d+)`, 'm')));
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'femtojit-board-'));
  probe = await buildFirmware({ name: 'probe', sources: [probeSource], outDir });
});

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('toolchain', () => {
  it('has qemu-system-arm and arm-none-eabi-gcc installed', () => {
    expect(hasQemu()).toBe(true);
    expect(hasArmGcc()).toBe(true);
  });
});

describe('buildFirmware', () => {
  it('reuses a cached ELF when nothing changed', async () => {
    const before = statSync(probe).mtimeMs;
    const again = await buildFirmware({ name: 'probe', sources: [probeSource], outDir });
    expect(again).toBe(probe);
    expect(statSync(again).mtimeMs).toBe(before);
  });

  it('builds a different ELF when a define changes', async () => {
    const other = await buildFirmware({
      name: 'probe',
      sources: [probeSource],
      outDir,
      defines: { PROBE_VARIANT: '1' },
    });
    expect(other).not.toBe(probe);
  });

  it('honours extra cflags, and the counter calibrates itself at any optimisation level', async () => {
    const o0 = await buildFirmware({ name: 'probe', sources: [probeSource], outDir, cflags: ['-O0'] });
    expect(o0).not.toBe(probe);
    const r = await runOnBoard(o0, { args: ['count-empty', 'count', '10', 'count', '20'], timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(field(r.stdout, /^count-empty=(\d+) overhead=\d+/m)).toBe('0');
    // -O0 really changed the code: the counter's own overhead grows.
    const plain = await runOnBoard(probe, { args: ['count-empty'], timeoutMs: 5000 });
    expect(Number(field(r.stdout, /overhead=(\d+)/))).toBeGreaterThan(Number(field(plain.stdout, /overhead=(\d+)/)));
    expect(countOf(r.stdout, 'count', 20) - countOf(r.stdout, 'count', 10)).toBe(20);
  });

  it('reports gcc errors with the compiler message', async () => {
    const bad = path.join(work, 'bad.c');
    writeFileSync(bad, 'int main(void) { return undeclared_thing; }\n');
    const err = await buildFirmware({ name: 'bad', sources: [bad], outDir: work }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirmwareBuildError);
    expect((err as Error).message).toContain('failed building firmware "bad"');
    expect((err as Error).message).toMatch(/undeclared_thing.*undeclared/);
  });

  it('rejects a missing source and an unusable name before running gcc', async () => {
    await expect(buildFirmware({ name: 'x', sources: [path.join(work, 'nope.c')], outDir: work })).rejects.toThrow(
      /source not found/,
    );
    await expect(buildFirmware({ name: 'a/b', sources: [probeSource], outDir: work })).rejects.toThrow(
      /not usable as a file name/,
    );
  });
});

describe('semihosting', () => {
  it('loads a host file given on the command line', async () => {
    const data = randomBytes(3001); // odd length exercises the padded last word
    writeFileSync(path.join(work, 'blob.bin'), data);
    const r = await runOnBoard(probe, { args: ['load', 'blob.bin'], cwd: work, timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`load len=3001 fletcher32=0x${fletcher32(data).toString(16).padStart(8, '0')}`);
  });

  it('loads an empty file and fails cleanly on a missing one', async () => {
    writeFileSync(path.join(work, 'empty.bin'), new Uint8Array(0));
    const ok = await runOnBoard(probe, { args: ['load', 'empty.bin'], cwd: work, timeoutMs: 5000 });
    expect(ok.stdout).toContain('load len=0 fletcher32=0x00000000');
    const missing = await runOnBoard(probe, { args: ['load', 'missing.bin'], cwd: work, timeoutMs: 5000 });
    expect(missing.exitCode).toBe(2);
    expect(missing.stdout).toContain('cannot read host file: missing.bin');
  });

  it('passes exit codes through', async () => {
    for (const code of [0, 7, 200]) {
      const r = await runOnBoard(probe, { args: ['exit', String(code)], timeoutMs: 5000 });
      expect(r.exitCode).toBe(code);
      expect(r.timedOut).toBe(false);
    }
  });

  it('keeps stdout to the firmware console only', async () => {
    const r = await runOnBoard(probe, { args: [], timeoutMs: 5000 });
    expect(r.stdout).toBe('probe: done\n');
    expect(r.stderr.trim()).toBe('');
  });

  it('rejects arguments the command line cannot carry', async () => {
    await expect(runOnBoard(probe, { args: ['two words'] })).rejects.toBeInstanceOf(BoardRunError);
    await expect(runOnBoard(path.join(work, 'none.elf'))).rejects.toThrow(/firmware not found/);
  });
});

describe('faults', () => {
  function pcOf(stdout: string): number {
    return Number.parseInt(field(stdout, /pc=0x([0-9a-f]{8})/), 16);
  }

  function disassembleAt(pc: number): string {
    return execFileSync('arm-none-eabi-objdump', [
      '-d',
      `--start-address=${pc}`,
      `--stop-address=${pc + 2}`,
      probe,
    ]).toString();
  }

  it('reports an undefined instruction with the stacked registers and exits with the fault code', async () => {
    const r = await runOnBoard(probe, { args: ['fault', 'undef'], timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(BOARD_FAULT_EXIT);
    expect(r.stdout).toContain('*** FAULT: UsageFault');
    for (const reg of ['r0', 'r1', 'r2', 'r3', 'r12', 'lr', 'pc', 'xpsr', 'CFSR', 'HFSR', 'MMFAR', 'BFAR']) {
      expect(r.stdout).toMatch(new RegExp(`\\b${reg}=0x[0-9a-f]{8}`));
    }
    // UFSR.UNDEFINSTR, and the stacked pc is the udf itself.
    expect(Number.parseInt(field(r.stdout, /CFSR=0x([0-9a-f]{8})/), 16) & 0x10000).toBe(0x10000);
    expect(disassembleAt(pcOf(r.stdout))).toMatch(/\budf\b/);
  });

  it('reports a read of an unmapped address as a precise bus fault with its address', async () => {
    const r = await runOnBoard(probe, { args: ['fault', 'bus'], timeoutMs: 5000 });
    expect(r.exitCode).toBe(BOARD_FAULT_EXIT);
    expect(r.stdout).toContain('*** FAULT: BusFault');
    const cfsr = Number.parseInt(field(r.stdout, /CFSR=0x([0-9a-f]{8})/), 16);
    expect(cfsr & 0x8200).toBe(0x8200); // BFARVALID | PRECISERR
    expect(r.stdout).toContain('BFAR=0x30000000');
    expect(disassembleAt(pcOf(r.stdout))).toMatch(/\bldr/);
  });

  it('survives a fault whose exception entry cannot stack (wild SP) and still reports it', async () => {
    const r = await runOnBoard(probe, { args: ['fault', 'stack'], timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(BOARD_FAULT_EXIT);
    expect(r.stdout).toContain('stacking failed: no stacked registers');
    const cfsr = Number.parseInt(field(r.stdout, /CFSR=0x([0-9a-f]{8})/), 16);
    expect(cfsr & 0x1000).toBe(0x1000); // STKERR
  });

  it('does not trap on division by zero (eBPF defines it)', async () => {
    const r = await runOnBoard(probe, { args: ['div0'], timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('div0 udiv=0 sdiv=0');
  });
});

describe('instruction counter', () => {
  const N = 50_000;
  const countArgs = ['count-empty', 'count', '1', 'count', String(N), 'count', String(2 * N), 'count-wrap', String(N)];

  it('is deterministic across runs', async () => {
    const a = await runOnBoard(probe, { args: countArgs, timeoutMs: 5000 });
    const b = await runOnBoard(probe, { args: countArgs, timeoutMs: 5000 });
    expect(a.exitCode).toBe(0);
    expect(a.stdout).toMatch(/^count 50000=\d+$/m);
    expect(b.stdout).toBe(a.stdout);
  });

  it('counts exact instructions: empty window 0, loops proportional to their length', async () => {
    const r = await runOnBoard(probe, { args: countArgs, timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(Number(field(r.stdout, /^count-empty=(\d+)/m))).toBe(0);
    const one = countOf(r.stdout, 'count', 1);
    const n = countOf(r.stdout, 'count', N);
    const twoN = countOf(r.stdout, 'count', 2 * N);
    // Each extra iteration is exactly subs + bne; the call around the loop is a small constant.
    expect(n - one).toBe(2 * (N - 1));
    expect(twoN - n).toBe(2 * N);
    expect(one).toBeGreaterThanOrEqual(2);
    expect(one).toBeLessThan(12);
    expect(twoN / n).toBeCloseTo(2, 3);
  });

  it('keeps counting across a timer wrap', async () => {
    const r = await runOnBoard(probe, { args: countArgs, timeoutMs: 5000 });
    expect(field(r.stdout, /^count-wrap 50000=\d+ wraps=(\d+)/m)).toBe('1');
    const wrapped = countOf(r.stdout, 'count-wrap', N);
    const plain = countOf(r.stdout, 'count', N);
    // The only difference is the wrap interrupt handler's few instructions.
    expect(wrapped - plain).toBeGreaterThan(0);
    expect(wrapped - plain).toBeLessThanOrEqual(16);
  });

  it('refuses to count when QEMU runs with another -icount shift', () => {
    const args = qemuArgs(probe, ['count', '10']).map((a) =>
      a.startsWith('shift=') ? a.replace(`shift=${ICOUNT_SHIFT}`, `shift=${ICOUNT_SHIFT - 2}`) : a,
    );
    const r = spawnSync('qemu-system-arm', args, { timeout: 5000, encoding: 'utf8' });
    expect(r.status).toBe(COUNTER_MISCONFIGURED_EXIT);
    expect(r.stdout).toContain(`is QEMU running with -icount shift=${ICOUNT_SHIFT}?`);
  });
});

describe('timeout', () => {
  it('kills a firmware that spins forever and says so', async () => {
    const started = Date.now();
    const r = await runOnBoard(probe, { args: ['spin'], timeoutMs: 800 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(-1);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
