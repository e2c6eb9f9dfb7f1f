// Hostile programs and corrupt images on the emulated Cortex-M4: every escape attempt must end
// with the interpreter's fault (kind, pc, address and size) and leave the canaries around the
// container's memory untouched; the device runtime must refuse every corrupt image (and run
// nothing). Programs are compiled with and without verifier facts, and with the IR passes off, so
// both the inline checks and the lookup routine are exercised.
import { beforeAll, describe, expect, it } from 'vitest';
import { ending } from './support/board-cases.js';
import { compileIr, compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { crc32, H, ImageError, readImage } from '../backends/thumb/image.js';
import { assembleProgram } from '../compiler/asm.js';
import { buildIr } from '../compiler/ir/build.js';
import type { Program } from '../compiler/program.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import { interpret } from '../runtime/interp.js';
import { runThumbBatch, thumbFirmware, toRunResult, type ThumbJob } from '../runtime/thumb-engine.js';

beforeAll(async () => {
  expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
  expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
  await thumbFirmware();
}, 120_000);

interface Attack {
  name: string;
  asm: string;
  mem?: number;
  budget?: number;
  /** A read-only (or writable) data section the program's first lddw points at. */
  data?: { bytes: number; writable: boolean };
  /** The fault every engine must report (undefined: the program must succeed). */
  kind?: string;
}

const ATTACKS: Attack[] = [
  { name: 'read below the stack', asm: 'ldxdw %r0, [%r10-4104]\nexit', kind: 'out-of-bounds' },
  { name: 'read just below the stack', asm: 'mov %r2, %r10\nsub %r2, 4097\nldxb %r0, [%r2+0]\nexit', kind: 'out-of-bounds' },
  { name: 'read past the stack top', asm: 'ldxdw %r0, [%r10+0]\nexit', kind: 'out-of-bounds' },
  { name: 'read straddling the stack top', asm: 'ldxdw %r0, [%r10-4]\nexit', kind: 'out-of-bounds' },
  { name: 'write straddling the stack top', asm: 'stdw [%r10-7], 1\nmov %r0, 0\nexit', kind: 'out-of-bounds' },
  { name: 'read the last stack bytes (allowed)', asm: 'ldxdw %r0, [%r10-8]\nexit' },
  { name: 'read with the upper half set', asm: 'lddw %r1, 0x100010000\nldxb %r0, [%r1+0]\nexit', kind: 'out-of-bounds' },
  { name: 'write with the upper half set', asm: 'lddw %r1, 0xffffffff00010000\nstxw [%r1+0], %r1\nexit', kind: 'out-of-bounds' },
  { name: 'read with an address that wraps to the stack', asm: 'lddw %r1, 0xffffffffffffffff\nldxb %r0, [%r1+0x1001]\nexit', kind: 'out-of-bounds' },
  { name: 'read before the context', asm: 'ldxb %r0, [%r1-1]\nexit', mem: 16, kind: 'out-of-bounds' },
  { name: 'read straddling the context end', asm: 'ldxw %r0, [%r1+14]\nexit', mem: 16, kind: 'out-of-bounds' },
  { name: 'read the last context byte (allowed)', asm: 'ldxb %r0, [%r1+15]\nexit', mem: 16 },
  { name: 'write just past the context', asm: 'mov %r3, %r1\nadd %r3, %r2\nstb [%r3+0], 0x55\nmov %r0, 0\nexit', mem: 16, kind: 'out-of-bounds' },
  { name: 'write far past the context', asm: 'mov %r3, %r1\nadd %r3, 0x100000\nstxdw [%r3+0], %r3\nmov %r0, 0\nexit', mem: 16, kind: 'out-of-bounds' },
  { name: 'write the context through a computed pointer (allowed)', asm: 'mov %r3, %r1\nadd %r3, %r2\nstxb [%r3-1], %r2\nldxb %r0, [%r1+15]\nexit', mem: 16 },
  { name: 'access without a context', asm: 'ldxb %r0, [%r1+0]\nexit', kind: 'out-of-bounds' },
  { name: 'write to read-only data', asm: 'lddw %r1, 0\nstb [%r1+0], 7\nmov %r0, 0\nexit', data: { bytes: 8, writable: false }, kind: 'permission' },
  { name: 'atomic add on read-only data', asm: 'lddw %r1, 0\nmov %r2, 1\nlock add32 [%r1+0], %r2\nmov %r0, 0\nexit', data: { bytes: 8, writable: false }, kind: 'permission' },
  { name: 'read past read-only data', asm: 'lddw %r1, 0\nldxdw %r0, [%r1+4]\nexit', data: { bytes: 8, writable: false }, kind: 'out-of-bounds' },
  { name: 'write writable data (allowed)', asm: 'lddw %r1, 0\nstw [%r1+4], 9\nldxw %r0, [%r1+4]\nexit', data: { bytes: 8, writable: true } },
  { name: 'atomic straddling the stack top', asm: 'mov %r1, 1\nlock add [%r10-4], %r1\nmov %r0, 0\nexit', kind: 'out-of-bounds' },
  { name: 'unaligned atomic (allowed)', asm: 'mov %r1, 5\nstdw [%r10-16], 0\nlock add32 [%r10-15], %r1\nldxw %r0, [%r10-15]\nexit' },
  { name: 'exhaust the budget', asm: 'loop:\nadd %r0, 1\nja loop', budget: 5000, kind: 'budget' },
  { name: 'exhaust the budget in a local call', asm: 'call local f\nexit\nf:\nadd %r0, 1\nja f', budget: 999, kind: 'budget' },
  { name: 'recurse too deep', asm: 'call local f\nexit\nf:\ncall local f\nexit', kind: 'call-depth' },
  // r6 is callee-saved: each level's value must come back after the nested call (6 + ... + 1 + 100).
  { name: 'recurse exactly as deep as allowed', asm: 'mov %r1, 6\nmov %r6, 100\ncall local f\nadd %r0, %r6\nexit\nf:\njeq %r1, 0, done\nmov %r6, %r1\nsub %r1, 1\ncall local f\nadd %r0, %r6\nexit\ndone:\nmov %r0, 0\nexit' },
  { name: 'call an unknown helper by register', asm: 'mov %r1, 99\ncallx %r1\nexit', kind: 'unknown-helper' },
  { name: 'call a helper id with the upper half set', asm: 'lddw %r1, 0x100000005\ncallx %r1\nexit', kind: 'unknown-helper' },
  { name: 'call an unknown helper by id', asm: 'call 77\nexit', kind: 'unknown-helper' },
  { name: 'unwind from a nested call', asm: 'call local f\nmov %r0, 9\nexit\nf:\nmov %r1, 0\ncall 5\nmov %r0, 3\nexit' },
];

function program(a: Attack): Program {
  const p = assembleProgram(`${a.asm}\n`, a.name);
  if (a.data !== undefined) {
    p.data = [{ name: a.data.writable ? '.data' : '.rodata', bytes: new Uint8Array(a.data.bytes).fill(0x11), writable: a.data.writable }];
    p.relocs = [{ slot: 0, section: 0, addend: 0 }];
  }
  return p;
}


describe('programs attacking the sandbox end with the right fault on the board', () => {
  const modes = ['facts', 'nofacts', 'raw'] as const;

  it.each(modes)('every attack faults as on the interpreter, canaries intact (%s)', async (mode) => {
    const progs = ATTACKS.map(program);
    const mems = ATTACKS.map((a) => (a.mem !== undefined ? Uint8Array.from({ length: a.mem }, (_, i) => i) : undefined));
    const jobs: ThumbJob[] = progs.map((p, i) => {
      const image =
        mode === 'raw' ? compileIr(buildIr(p)).image : compileThumb(p, mode === 'facts' ? thumbFacts(p, new Set([5])) : undefined).image;
      return { image, mem: mems[i], budget: ATTACKS[i].budget ?? 1_000_000 };
    });
    const runs = await runThumbBatch(jobs);
    const got: string[] = [];
    const want: string[] = [];
    runs.forEach((run, i) => {
      const a = ATTACKS[i];
      expect({ name: a.name, canary: run.canaryOk }).toEqual({ name: a.name, canary: true });
      const budget = a.budget ?? 1_000_000;
      const r = toRunResult(run, progs[i], mems[i], budget);
      const ref = interpret(progs[i], { mem: mems[i], budget });
      got.push(`${a.name}: ${ending(r)}`);
      want.push(`${a.name}: ${ending(ref)}`);
      expect(`${a.name}: ${r.ok ? 'ok' : r.fault.kind}`).toBe(`${a.name}: ${a.kind ?? 'ok'}`);
      if (!r.ok && !ref.ok) expect(r.fault.message.split(':')[0]).toBe(ref.fault.message.split(':')[0]);
    });
    expect(got).toEqual(want);
  }, 120_000);
});

describe('corrupt images are refused by the device runtime', () => {
  const p = program({ name: 'valid', asm: 'lddw %r1, 0\nldxb %r0, [%r1+0]\nexit', data: { bytes: 8, writable: true } });
  const valid = compileThumb(p).image;

  const withCrc = (img: Uint8Array): Uint8Array => {
    const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
    v.setUint32(H.CRC, 0, true);
    v.setUint32(H.CRC, crc32(img), true);
    return img;
  };
  const set32 = (at: number, value: number, fix = true): Uint8Array => {
    const img = valid.slice();
    new DataView(img.buffer).setUint32(at, value, true);
    return fix ? withCrc(img) : img;
  };
  const sectionTable = new DataView(valid.buffer).getUint32(H.SECTIONS_OFF, true);

  /** name, image, fc_status_t the device must answer. */
  const CORRUPT: Array<[string, Uint8Array, number]> = [
    ['truncated below the header', valid.slice(0, 32), 16],
    ['bad magic', set32(H.MAGIC, 0x464c457f), 17],
    ['unknown version', withCrc(((): Uint8Array => { const i = valid.slice(); new DataView(i.buffer).setUint16(H.VERSION, 9, true); return i; })()), 18],
    ['truncated image', valid.slice(0, valid.length - 4), 19],
    ['flipped code byte', ((): Uint8Array => { const i = valid.slice(); i[70] ^= 0x40; return i; })(), 20],
    ['odd entry point', set32(H.ENTRY, 3), 21],
    ['code past the end', set32(H.CODE_SIZE, valid.length * 2), 21],
    ['section moved against the layout', set32(sectionTable, 0x20000), 22],
    ['context base moved', set32(H.MEM_BASE, 0x80000), 22],
    ['too many register slots', set32(H.NREGS, 65), 23],
    ['too many sections', set32(H.SECTIONS_COUNT, 15), 23],
  ];

  it('the valid image runs', async () => {
    const [run] = await runThumbBatch([{ image: valid }]);
    expect(run.refused).toBe(false);
    expect(toRunResult(run, p, undefined, 1e6)).toMatchObject({ ok: true, r0: 0x11n });
  });

  it('every corruption is refused with its status, on the device and by the host reader', async () => {
    const runs = await runThumbBatch(CORRUPT.map(([, image]) => ({ image })));
    const got = runs.map((r, i) => `${CORRUPT[i][0]}: ${r.refused ? `refused ${r.status}` : `ran (status ${r.status})`}`);
    expect(got).toEqual(CORRUPT.map(([name, , status]) => `${name}: refused ${status}`));
    for (const [name, image] of CORRUPT) expect(() => readImage(image), name).toThrow(ImageError);
    expect(() => toRunResult(runs[0], p, undefined, 1e6)).toThrow(/refused the image: shorter than the header/);
  }, 60_000);
});
