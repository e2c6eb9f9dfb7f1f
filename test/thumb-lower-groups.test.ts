// Three lowerings of the Thumb back end that take instructions off loop paths: unproven accesses
// through one base tested once on the union of their ranges (checks.ts groupAccesses, with the
// group's code replayed with one check per access when the test fails), copies at the end of a
// loop body turned around and moved to the loop's exits (liveness.ts sinkCopies), and 64-bit
// multiplies that leave the cache registers alone. Checked on the code and the IR, then with
// programs built to break them run on the emulated Cortex-M4 against the reference interpreter:
// faults must name the access the interpreter names (the first in program order), with its
// address.
import { beforeAll, describe, expect, it } from 'vitest';
import { boardReady, bytes, endingsOnBoard, type BoardCase } from './support/board-cases.js';
import { REGION, regionField } from '../backends/thumb/abi.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { sinkCopies } from '../backends/thumb/liveness.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { parseIr, printIr } from '../compiler/ir/text.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

const module = (body: string): string => `origin "test"\nfunction main (start 0) {\n${body}\n}\n`;

interface Lowered {
  low: LoweredModule;
  block(b: number): ThumbInsn[];
  /** Code after the function's last block: cold stubs. */
  cold: ThumbInsn[];
}

function lower(body: string): Lowered {
  // The checked loops themselves: no versioned copy (test/thumb-version.test.ts has those).
  const low = lowerModule(parseIr(module(body)), undefined, { version: false });
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks;
  const lastMark = marks[marks.length - 1];
  const coldStart = all.find((x) => x.address > lastMark.offset && /^b(\.w)?$/.test(x.mnemonic) === false && x.address > lastMark.offset)?.address ?? low.code.length;
  return {
    low,
    cold: all.filter((x) => x.address > coldStart),
    block(b) {
      const first = marks.findIndex((mk) => mk.where.startsWith(`f0.b${b}.`));
      const last = marks.findIndex((mk) => mk.where === `f0.b${b}.t`);
      const end = last + 1 < marks.length ? marks[last + 1].offset : low.code.length;
      return all.filter((x) => x.address >= marks[first].offset && x.address < end);
    },
  };
}

const count = (code: ThumbInsn[], prefix: string): number => code.filter((x) => x.mnemonic.startsWith(prefix)).length;
/** Inline checks: compares of ip (ea - vbase) with a count. */
const checks = (code: ThumbInsn[]): number => code.filter((x) => x.text.startsWith('cmp ip')).length;
const stateRef = (off: number): string => `[sp, #0x${off.toString(16)}]`;
const MEM = 1;

const PAIR = `b0:
  r0 = const 0x0 ; @0
  br.eq.64 r2, 0, b2, b1 ; @1
b1:
  r4 = load.u8 r1+1 [check mem] ; @2
  r4 = shl.64 r4, 8 ; @3
  r5 = load.u8 r1+0 [check mem] ; @4
  r0 = add.64 r0, r4 ; @5
  r0 = add.64 r0, r5 ; @6
  r1 = add.64 r1, 2 ; @7
  r2 = add.64 r2, -1 ; @8
  br.ne.64 r2, 0, b1, b2 ; @9
b2:
  ret ; @10`;

describe('accesses through one base checked once', () => {
  it('tests the two bytes as one 2-byte range, and checks each again on the cold path', () => {
    const l = lower(PAIR);
    const loop = l.block(1);
    expect(checks(loop)).toBe(1);
    expect(count(loop, 'ldrb')).toBe(2);
    const text = l.block(0).map((x) => x.text).join('\n');
    expect(text).toContain(stateRef(regionField(MEM, REGION.CNT + 4)));
    // The replay: one inline check per access, each with its own lookup call.
    expect(checks(l.cold)).toBeGreaterThanOrEqual(2);
    expect(l.low.sites.filter((s) => s.pc === 2)).toHaveLength(1);
    expect(l.low.sites.filter((s) => s.pc === 4)).toHaveLength(1);
  });

  it('covers 8 bytes with cnt[8] (a store pair at -4 and +0)', () => {
    const l = lower(PAIR.replace('r4 = load.u8 r1+1 [check mem]', 'store.32 r1+0, r0 [check mem]').replace('r5 = load.u8 r1+0 [check mem]', 'store.32 r1-4, r2 [check mem]'));
    expect(checks(l.block(1))).toBe(1);
    expect(l.block(0).map((x) => x.text).join('\n')).toContain(stateRef(regionField(MEM, REGION.CNT + 12)));
  });

  it('does not group accesses more than 8 bytes apart, across a base update or across a call', () => {
    const wide = lower(PAIR.replace('r1+1 [check mem]', 'r1+9 [check mem]'));
    expect(checks(wide.block(1))).toBe(2);
    const moved = lower(PAIR.replace('  r4 = shl.64 r4, 8 ; @3', '  r1 = add.64 r1, 1 ; @3'));
    expect(checks(moved.block(1))).toBe(2);
    const called = lower(PAIR.replace('  r4 = shl.64 r4, 8 ; @3', '  call 5 ; @3'));
    expect(checks(called.block(1))).toBe(2);
  });
});

describe('copies moved out of loops', () => {
  // r6 = r5 at the end: next iteration's operand is this iteration's sum.
  const LOOP = `b0:
  r6 = const 0x0 ; @0
  r0 = const 0x1 ; @1
  jump b1 ; @2
b1:
  r5 = mul.64 r2, 3 ; @3
  r5 = add.64 r5, r6 ; @4
  r0 = add.64 r5, r0 ; @5
  r2 = add.64 r2, -1 ; @6
  r6 = mov.64 r5 ; @7
  br.ne.64 r2, 0, b1, b2 ; @8
b2:
  r0 = add.64 r0, r5 ; @9
  ret ; @10`;

  it('turns the last copy around and places it on the exit, where its source is live', () => {
    const out = printIr(sinkCopies(parseIr(module(LOOP))).module);
    // r6 = r5 became: the add computes r6, its readers read r6, and r5 = r6 moved to b2.
    expect(out).toContain('r6 = add.64 r5, r6');
    expect(out).toContain('r0 = add.64 r6, r0');
    expect(out).toMatch(/b2:\n {2}r5 = mov.64 r6/);
    const b1 = out.slice(out.indexOf('b1:'), out.indexOf('b2:'));
    expect(b1).not.toContain('mov');
  });

  it('leaves copies whose source is live into a block with other predecessors, or whose destination is read first', () => {
    const joined = LOOP.replace('  jump b1 ; @2', '  br.eq.64 r2, 0, b2, b1 ; @2');
    expect(printIr(sinkCopies(parseIr(module(joined))).module)).toContain('r6 = mov.64 r5');
    const readFirst = LOOP.replace('  r2 = add.64 r2, -1 ; @6', '  r2 = add.64 r2, r6 ; @6');
    expect(printIr(sinkCopies(parseIr(module(readFirst))).module)).toContain('r6 = mov.64 r5');
  });

  it('lowers the loop without the copy', () => {
    const loop = lower(LOOP).block(1);
    // No register-to-register move (constants may still be materialised).
    expect(loop.filter((x) => /^movs?(\.w)? r\d+, r\d+$/.test(x.text)).map((x) => x.text)).toEqual([]);
  });
});

describe('64-bit multiplies in loops', () => {
  it('keeps r10/r11 and shifts for a power-of-two upper half', () => {
    const body = `b0:
  r0 = const 0x5 ; @0
  r4 = const 0x100000001b3 ; @1
  jump b1 ; @2
b1:
  r5 = load.u8 r1+0 [check mem] ; @3
  r0 = xor.64 r0, r5 ; @4
  r0 = mul.64 r0, r4 ; @5
  r1 = add.64 r1, 1 ; @6
  r2 = add.64 r2, -1 ; @7
  br.ne.64 r2, 0, b1, b2 ; @8
b2:
  ret ; @9`;
    const l = lower(body);
    const loop = l.block(1);
    const text = loop.map((x) => x.text).join('\n');
    expect(text).not.toMatch(/\[sp, #0x(7|8|9)[0-9a-f]\]/);
    expect(text).toContain('lsl');
    expect(count(loop, 'mul')).toBe(0);
  });
});

// ---- on the board ----

interface Case extends BoardCase {
  /** Only without the verifier's facts (the verifier would refuse or prove it). */
  raw?: boolean;
}

const CASES: Case[] = [
  {
    name: 'pair walk, first access (in program order) runs off the end',
    // r3 ends at the last byte: [r3+1] is the context's end, [r3+0] is its last byte.
    asm: 'mov %r0, 0\nmov %r3, %r1\nloop:\nldxb %r4, [%r3+1]\nldxb %r5, [%r3+0]\nadd %r0, %r4\nadd %r0, %r5\nadd %r3, 1\nja loop\nexit',
    mem: bytes(9, (i) => i * 5 + 1),
  },
  {
    name: 'pair walk, second access runs off the end',
    asm: 'mov %r0, 0\nmov %r3, %r1\nloop:\nldxb %r4, [%r3+0]\nldxb %r5, [%r3+1]\nadd %r0, %r4\nlsh %r5, 3\nadd %r0, %r5\nadd %r3, 1\nja loop\nexit',
    mem: bytes(9, (i) => i * 5 + 1),
  },
  {
    name: 'swap pair at +0 and -4: the second (below the start) faults',
    asm: 'mov %r3, %r1\nldxw %r4, [%r3+0]\nldxw %r5, [%r3+4]\nstxw [%r3+0], %r5\nstxw [%r3-4], %r4\nmov %r0, 1\nexit',
    mem: bytes(16, (i) => i),
  },
  {
    name: 'swap pair at +0 and -4 in bounds, bubble-sort style',
    asm: 'mov %r0, 0\nmov %r3, %r1\nadd %r3, 4\nmov %r6, %r2\nrsh %r6, 2\nsub %r6, 1\nloop:\nldxw %r4, [%r3-4]\nldxw %r5, [%r3+0]\njle %r4, %r5, next\nstxw [%r3+0], %r4\nstxw [%r3-4], %r5\nadd %r0, 1\nnext:\nadd %r3, 4\nsub %r6, 1\njne %r6, 0, loop\nldxw %r4, [%r1+0]\nlsh %r0, 32\nor %r0, %r4\nexit',
    mem: bytes(32, (i) => 200 - i * 7),
  },
  {
    name: 'a group whose base is on the stack while the guess is the context (cold path, then ok)',
    raw: true,
    asm: 'mov %r5, %r10\nsub %r5, %r1\nsub %r5, 64\nmov %r4, %r1\nadd %r4, %r5\nstb [%r4+0], 7\nstb [%r4+1], 9\nldxb %r0, [%r4+0]\nldxb %r6, [%r4+1]\nlsh %r6, 8\nadd %r0, %r6\nexit',
    mem: bytes(8, (i) => i),
  },
  {
    name: 'a store group where the first store is to a read-only place (permission, first access)',
    raw: true,
    asm: 'lddw %r4, 0x10000\nstb [%r4+0], 7\nstb [%r4+1], 9\nmov %r0, 1\nexit',
    mem: bytes(8, (i) => i),
  },
  {
    name: 'fletcher-style loop with loop-carried copies, live after the loop',
    asm: 'mov %r0, 0\nmov %r4, 0\nmov %r6, 0\nmov %r7, %r2\nrsh %r7, 1\njeq %r7, 0, out\nloop:\nldxb %r5, [%r1+1]\nlsh32 %r5, 8\nldxb %r0, [%r1+0]\nor32 %r5, %r0\nadd32 %r5, %r6\nadd %r1, 2\nmov32 %r0, %r4\nadd32 %r0, %r5\nadd %r7, -1\nmov32 %r6, %r5\nmov32 %r4, %r0\njne %r7, 0, loop\nout:\nlsh %r0, 16\nor %r0, %r5\nexit',
    mem: bytes(30, (i) => i * 37 + 11),
  },
  {
    name: 'a loop with two exits and a copy whose source is read on one of them',
    asm: 'mov %r0, 0\nmov %r3, 1\nmov %r4, 1\nloop:\nmov %r5, %r3\nadd %r5, %r4\njgt %r5, 1000, big\nmov %r3, %r4\nmov %r4, %r5\nadd %r0, 1\njlt %r0, 40, loop\nmov %r0, %r4\nexit\nbig:\nmov %r0, %r5\nlsh %r0, 8\nor %r0, %r3\nexit',
  },
  {
    name: 'FNV-style multiply by 0x100000001b3 with a checked load in the loop',
    asm: 'lddw %r0, 0xcbf29ce484222325\nlddw %r4, 0x100000001b3\nmov %r3, 0\nloop:\nmov %r5, %r1\nadd %r5, %r3\nldxb %r5, [%r5+0]\nxor %r0, %r5\nmul %r0, %r4\nadd %r3, 1\njlt %r3, %r2, loop\nexit',
    mem: bytes(24, (i) => i * 11 + 5),
  },
  {
    name: 'multiplies by constants with upper halves 1, 2^31, -1 and 3',
    asm: 'lddw %r0, 0x123456789abcdef1\nmov %r6, %r0\nlddw %r4, 0x1ffffffff\nmul %r6, %r4\nlddw %r4, 0x8000000000000003\nmul %r6, %r4\nmul %r6, -7\nlddw %r4, 0x300000005\nmul %r6, %r4\nxor %r0, %r6\nexit',
  },
];

describe('programs built against these lowerings, on the board', () => {
  beforeAll(boardReady, 120_000);

  it.each(['facts', 'raw'] as const)('each ends as on the interpreter (%s)', async (mode) => {
    const cases = CASES.filter((c) => mode === 'raw' || c.raw !== true);
    const { got, want } = await endingsOnBoard(cases, mode, new Set([5]));
    expect(got).toEqual(want);
    // The fault cases fault where they were built to (first, then second access in program order).
    expect(got[0]).toMatch(/out-of-bounds at 2 addr=/);
    expect(got[1]).toMatch(/out-of-bounds at 3 addr=/);
    expect(got[2]).toMatch(/out-of-bounds at 4 addr=/);
    expect(got.filter((g) => g.includes(': ok ')).length).toBeGreaterThanOrEqual(5);
  }, 120_000);
});
