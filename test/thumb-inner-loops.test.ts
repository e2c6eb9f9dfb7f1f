// Inner loops with their own register homes (regalloc.ts RegionHomes over the loop tree), homes
// weighed by what the lowered code touches (liveness.ts loweredMentions), and low-half bounds
// (known.ts lowHalfRange) that drop shift-count masks and shorten AND masks. Checked at the code
// level, then with programs built against them (values live across sibling inner loops, a break
// out of both loops, a fault inside the inner loop) run on the emulated Cortex-M4 against the
// reference interpreter.
import { beforeAll, describe, expect, it } from 'vitest';
import { boardReady, bytes, endingsOnBoard, type BoardCase } from './support/board-cases.js';
import { slotOf } from '../backends/thumb/abi.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { halfKey } from '../backends/thumb/regalloc.js';
import { parseIr } from '../compiler/ir/text.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

interface Lowered {
  low: LoweredModule;
  /** Disassembly of block `b`'s code (instructions and terminator, no cold stubs). */
  block(b: number): ThumbInsn[];
}

function lower(body: string): Lowered {
  const low = lowerModule(parseIr(`origin "test"\nfunction main (start 0) {\n${body}\n}\n`));
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks;
  return {
    low,
    block(b) {
      const first = marks.findIndex((mk) => mk.where.startsWith(`f0.b${b}.`));
      const last = marks.findIndex((mk) => mk.where === `f0.b${b}.t`);
      const end = last + 1 < marks.length ? marks[last + 1].offset : low.code.length;
      return all.filter((x) => x.address >= marks[first].offset && x.address < end);
    },
  };
}

const SLOTS = new Set(Array.from({ length: 22 }, (_, k) => `[sp, #0x${slotOf(k >> 1, (k & 1) as 0 | 1).toString(16)}]`));

/** Loads and stores of register slots in `code` up to its first branch back (one iteration). */
function slotTraffic(code: ThumbInsn[]): string[] {
  const back = code.findIndex((x) => /^b(lo|hs|ne|eq)?(\.w)?$/.test(x.mnemonic));
  expect(back).toBeGreaterThan(0);
  return code.slice(0, back + 1)
    .filter((x) => /^(ldr|str)/.test(x.mnemonic) && SLOTS.has(/\[sp, #0x[0-9a-f]+\]/.exec(x.text)?.[0] ?? ''))
    .map((x) => x.text);
}

// One outer loop holding two inner loops over different registers: 14 hot halves in all, at most
// 7 in either inner loop. The outer loop alone cannot home them all.
const SIBLINGS = `b0:
  r3 = const 0x0 ; @0
  r0 = const 0x0 ; @1
  jump b1 ; @2
b1:
  r4 = const 0x0 ; @3
  r5 = mov.64 r3 ; @4
  r6 = const 0x2 ; @5
  jump b2 ; @6
b2:
  r5 = mul.64 r5, r6 ; @7
  r6 = xor.64 r6, r5 ; @8
  r4 = add.64 r4, 1 ; @9
  br.ult.64 r4, 7, b2, b3 ; @10
b3:
  r7 = const 0x0 ; @11
  r8 = mov.64 r6 ; @12
  r9 = const 0x5 ; @13
  jump b4 ; @14
b4:
  r8 = mul.64 r8, r9 ; @15
  r9 = add.64 r9, r8 ; @16
  r0 = xor.64 r0, r9 ; @17
  r7 = add.64 r7, 1 ; @18
  br.ult.64 r7, 5, b4, b5 ; @19
b5:
  r0 = add.64 r0, r5 ; @20
  r3 = add.64 r3, 1 ; @21
  br.ult.64 r3, r2, b1, b6 ; @22
b6:
  ret ; @23`;

describe('homes per inner loop', () => {
  it('gives each inner loop its own region with all of its hot halves', () => {
    const l = lower(SIBLINGS);
    const rg = l.low.alloc.regions;
    expect(rg).toBeDefined();
    if (rg === undefined) return;
    const [outer, a, b] = [rg.of[1], rg.of[2], rg.of[4]];
    expect(new Set([outer, a, b, rg.of[0]]).size).toBe(4);
    expect(rg.of[5]).toBe(outer);
    for (const r of [5, 6]) for (const h of [0, 1] as const) expect(rg.homes[a].has(halfKey(r, h))).toBe(true);
    for (const r of [8, 9, 0]) for (const h of [0, 1] as const) expect(rg.homes[b].has(halfKey(r, h))).toBe(true);
    // Both together are more than the homes: the outer loop cannot have kept all of them.
    const both = [5, 6, 8, 9, 0].flatMap((r) => [halfKey(r, 0), halfKey(r, 1)]);
    expect(both.every((k) => rg.homes[outer].has(k))).toBe(false);
  });

  it('runs each inner iteration without touching a register slot', () => {
    const l = lower(SIBLINGS);
    expect(slotTraffic(l.block(2))).toEqual([]);
    expect(slotTraffic(l.block(4))).toEqual([]);
  });

  it('does not home a half the code never touches (the upper half of a proven base)', () => {
    // r6's upper half is named by the load only; proven accesses read the low half alone.
    const l = lower(`b0:
  r0 = const 0x0 ; @0
  r3 = const 0x0 ; @1
  jump b1 ; @2
b1:
  r6 = add.64 r1, r3 ; @3
  r7 = load.u8 r6+0 [proven mem] ; @4
  r0 = add.64 r0, r7 ; @5
  r3 = add.64 r3, 1 ; @6
  br.ult.64 r3, 4, b1, b2 ; @7
b2:
  ret ; @8`);
    const homed = [...l.low.alloc.homes.keys(), ...(l.low.alloc.regions?.homes.flatMap((h) => [...h.keys()]) ?? [])];
    expect(homed).toContain(halfKey(6, 0));
    expect(homed).not.toContain(halfKey(6, 1));
  });
});

describe('low-half bounds', () => {
  it('drops the mask of a 64-bit shift count already below 64, also when its upper half is dead', () => {
    const l = lower(`b0:
  r3 = lshr.32 r1, 1 ; @0
  r3.lo = and.32 r3, 63 ; @1
  r0 = const 0x1 ; @2
  r0 = shl.64 r0, r3 ; @3
  ret ; @4`);
    const code = l.block(0).map((x) => x.text);
    expect(code.filter((t) => t.includes('#0x3f'))).toHaveLength(1);
  });

  it('drops the mask of a 32-bit shift count below 32', () => {
    const l = lower(`b0:
  r3.lo = and.32 r1, 31 ; @0
  r0 = lshr.32 r2, r3 ; @1
  ret ; @2`);
    const code = l.block(0).map((x) => x.text);
    expect(code.filter((t) => t.includes('#0x1f'))).toHaveLength(1);
  });

  it('turns an AND mask into BIC when the operand has no bits where the mask is clear', () => {
    // r3 < 2^28 (a 32-bit value shifted right by 4): 0x0ffffff8 acts as 0xfffffff8 = bic #7.
    const l = lower(`b0:
  r3 = lshr.32 r1, 4 ; @0
  r0 = and.32 r3, 268435448 ; @1
  ret ; @2`);
    const code = l.block(0).map((x) => x.text);
    expect(code.some((t) => /^bic(s)?(\.w)? r\d+, r\d+, #7$/.test(t))).toBe(true);
    expect(code.some((t) => t.startsWith('movt'))).toBe(false);
  });

  it('keeps the mask when the operand may have those bits', () => {
    // r2 (the context's length) may be anything below 0xf0000000.
    const l = lower(`b0:
  r0 = and.32 r2, 268435448 ; @0
  ret ; @1`);
    const code = l.block(0).map((x) => x.text);
    expect(code.some((t) => t.startsWith('bic'))).toBe(false);
  });
});

// ---- on the board ----

type Case = BoardCase;

// Two inner loops in one outer loop, values live across both, the second reading the context and
// leaving both loops at a 0xff byte.
const NESTED = [
  'mov %r0, 0', 'mov %r3, 0', 'outer:', 'mov %r4, 0', 'mov %r5, %r3', 'mov %r6, 2',
  'la:', 'mul %r5, %r6', 'xor %r6, %r5', 'add %r4, 1', 'jlt %r4, 7, la',
  'mov %r7, 0', 'mov %r8, %r6', 'mov %r9, 5',
  'lb:', 'mul %r8, %r9', 'add %r9, %r8', 'xor %r0, %r9', 'mov %r4, %r1', 'add %r4, %r7', 'ldxb %r4, [%r4+0]',
  'add %r0, %r4', 'jeq %r4, 0xff, out', 'add %r7, 1', 'jlt %r7, 5, lb',
  'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, outer', 'out:', 'exit',
].join('\n');

// Sieve-shaped bit tests: the count below 64 (no mask), the word index masked with 0x0ffffff8.
const BITS = [
  'mov %r0, 0', 'mov %r7, 1', 'mov %r6, 0x12345', 'lsh %r6, 20', 'or %r6, 0x6789',
  'loop:', 'mov %r1, %r7', 'rsh %r1, 1', 'and32 %r1, 63', 'mov %r9, 1', 'lsh %r9, %r1', 'and %r9, %r6',
  'mov %r2, %r7', 'rsh %r2, 4', 'and %r2, 0x0ffffff8', 'add %r0, %r2',
  'mov32 %r3, %r7', 'and32 %r3, 31', 'mov32 %r4, 0xfedcba98', 'rsh32 %r4, %r3', 'xor %r0, %r4',
  'jeq %r9, 0, skip', 'add %r0, 1', 'skip:', 'add %r7, 3', 'jlt %r7, 400, loop', 'exit',
].join('\n');

const CASES: Case[] = [
  { name: 'sibling inner loops, no break', asm: NESTED, mem: bytes(12, (i) => i * 9 + 1) },
  { name: 'sibling inner loops, leaving both loops from the inner one', asm: NESTED, mem: bytes(12, (i) => (i === 8 ? 0xff : i + 3)) },
  { name: 'sibling inner loops, a fault inside the inner loop', asm: NESTED, mem: bytes(3, (i) => i + 1) },
  { name: 'shift counts and masks with bounded low halves', asm: BITS },
];

describe('programs built against inner-loop homes and low-half bounds, on the board', () => {
  beforeAll(boardReady, 120_000);

  it.each(['facts', 'raw'] as const)('each ends as on the interpreter (%s)', async (mode) => {
    const { got, want } = await endingsOnBoard(CASES, mode, new Set([5]));
    expect(got).toEqual(want);
    expect(got.filter((g) => g.includes('out-of-bounds at'))).toHaveLength(1);
    expect(got.filter((g) => g.includes(': ok '))).toHaveLength(3);
  }, 120_000);
});
