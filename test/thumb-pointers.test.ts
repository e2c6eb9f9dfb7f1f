// Lowerings that lean on what is known about pointers and values (backends/thumb): a base register
// whose access completed lies inside the regions' window, so a pointer walk drops its ADC and its
// SBCS; an address addition feeding one proven access is folded into it; definitions nothing reads
// from where they live are not lowered; a branch on x != 0 reuses the flags of the instruction that
// computed x; `1 << n` on 64 bits, AND with 0xffff or ~3. Checked at the code level, then with
// programs built to break each (pointers that leave the window through their upper half, walks off
// either end, fold candidates whose value is needed again) run on the emulated Cortex-M4 against
// the reference interpreter, faults included (kind, pc, address).
import { beforeAll, describe, expect, it } from 'vitest';
import { boardReady, bytes, endingsOnBoard, type BoardCase } from './support/board-cases.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { KnownHalves, knownHalf, knownRange } from '../backends/thumb/known.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { parseIr } from '../compiler/ir/text.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

const irModule = (body: string): ReturnType<typeof parseIr> => parseIr(`origin "test"\nfunction main (start 0) {\n${body}\n}\n`);

interface Lowered {
  low: LoweredModule;
  /** Disassembly of block `b`'s code (instructions and terminator, no cold stubs). */
  block(b: number): ThumbInsn[];
}

function lower(body: string): Lowered {
  const low = lowerModule(irModule(body));
  const all = dis.disasm(low.code, 0, low.data);
  return {
    low,
    block(b) {
      const first = low.marks.findIndex((mk) => mk.where.startsWith(`f0.b${b}.`));
      const last = low.marks.findIndex((mk) => mk.where === `f0.b${b}.t`);
      const end = last + 1 < low.marks.length ? low.marks[last + 1].offset : low.code.length;
      return all.filter((x) => x.address >= low.marks[first].offset && x.address < end);
    },
  };
}

const mnemonics = (xs: ThumbInsn[]): string[] => xs.map((x) => x.mnemonic.replace(/\.w$/, ''));

// A checked pointer walk over the context (clang's shape), counting down r2.
const WALK = `b0:
  r0 = const 0x0 ; @0
  r3 = mov.64 r1 ; @1
  br.eq.64 r2, 0, b2, b1 ; @2
b1:
  r4 = load.u8 r3+0 [check mem] ; @3
  r0 = xor.64 r0, r4 ; @4
  r3 = add.64 r3, 1 ; @5
  r2 = add.64 r2, -1 ; @6
  br.ne.64 r2, 0, b1, b2 ; @7
b2:
  ret ; @8`;

describe('pointers inside the regions window (known.ts)', () => {
  it('bounds a base after its access, and r1/r2 at entry, below 0xf0000000', () => {
    const f = irModule(WALK).functions[0];
    const s = new KnownHalves(f, true, 11, undefined, 0x14000).at(1);
    // r3 starts as r1 <= 0x14000 and, after each access at [r3+0], is below 0xf0000000 - 1.
    expect(knownRange(s, 3)[1]).toBeLessThan(0xf000_0000 + 1);
    expect(knownHalf(s, 3, 1)).toBe(0);
    const entry = new KnownHalves(f, true, 11, undefined, 0x14000).at(0);
    expect(knownRange(entry, 1)).toEqual([0, 0x14000]);
    expect(knownRange(entry, 2)).toEqual([0, 0xf000_0000 - 0x14000]);
    // Without the entry facts (a function something calls) nothing is known about r3.
    const callee = new KnownHalves(f, false, 11).at(1);
    expect(knownHalf(callee, 3, 1)).toBeUndefined();
  });

  it('walks without ADC or SBCS, and branches on the decrement\'s flags', () => {
    const m = mnemonics(lower(WALK).block(1));
    expect(m).not.toContain('adc');
    expect(m).not.toContain('sbcs');
    // one compare: the bounds check (r2 != 0 reuses the flags of r2 - 1)
    expect(m.filter((x) => x === 'cmp')).toHaveLength(1);
  });

  it('keeps the compare when something set the flags in between', () => {
    const m = mnemonics(lower(WALK.replace('  r2 = add.64 r2, -1 ; @6', '  r2 = add.64 r2, -1 ; @6\n  r0 = or.64 r0, r4 ; @6')).block(1));
    expect(m.filter((x) => x === 'cmp')).toHaveLength(2);
  });
});

describe('address additions folded into proven accesses', () => {
  // r2 = r10 - 64 + r5 (r5 < 8 * 7): the add feeds one load and dies there.
  const TABLE = `b0:
  r5 = and.64 r1, 56 ; @0
  r2 = add.64 r10, -64 ; @1
  r2 = add.64 r2, r5 ; @2
  r0 = load.u64 r2+0 [proven stack] ; @3
  ret ; @4`;

  it('computes the address from the index in the access itself', () => {
    const m = mnemonics(lower(TABLE).block(0));
    // and, add host + index, two loads; nothing materialises r10 - 64 or r2
    expect(m.filter((x) => x === 'ldr').length).toBeGreaterThanOrEqual(2);
    expect(m).not.toContain('movw');
    expect(m.filter((x) => x === 'add' || x === 'adds')).toHaveLength(1);
  });

  it('keeps the add when its value is read again', () => {
    const again = TABLE.replace('  ret ; @4', '  r0 = add.64 r0, r2 ; @4\n  ret ; @4');
    const m = mnemonics(lower(again).block(0));
    expect(m.filter((x) => x === 'add' || x === 'adds').length).toBeGreaterThanOrEqual(2);
  });
});

type Case = BoardCase;

const CASES: Case[] = [
  {
    name: 'a walk that runs off the end of the context (no upper-half check left in the loop)',
    asm: 'mov %r0, 0\nmov %r3, %r1\nloop:\nldxb %r4, [%r3+0]\nadd %r0, %r4\nadd %r3, 1\nja loop\nexit',
    mem: bytes(24, (i) => i * 5 + 1),
  },
  {
    name: 'a walk downwards off the start of the context, through a negative offset',
    asm: 'mov %r0, 0\nmov %r3, %r1\nadd %r3, %r2\nloop:\nldxb %r4, [%r3-1]\nadd %r0, %r4\nlsh %r0, 1\nsub %r3, 1\nja loop\nexit',
    mem: bytes(20, (i) => 200 - i),
  },
  {
    name: 'a pointer whose upper half becomes 1 inside the loop (the check must see it)',
    asm: 'mov %r0, 0\nmov %r3, %r1\nlddw %r6, 0x100000000\nmov %r5, 0\nloop:\nldxb %r4, [%r3+0]\nadd %r0, %r4\nadd %r3, 1\nadd %r5, 1\njne %r5, 3, loop\nadd %r3, %r6\nja loop\nexit',
    mem: bytes(16, (i) => i + 7),
  },
  {
    name: 'a pointer that starts with a nonzero upper half',
    asm: 'mov %r3, %r1\nlddw %r6, 0x200000000\nadd %r3, %r6\nldxw %r0, [%r3+0]\nexit',
    mem: bytes(8, (i) => i),
  },
  {
    name: 'a stack table indexed through folded additions (load and store)',
    asm: 'mov %r3, 0\nfill:\nmov %r2, %r3\nlsh %r2, 3\nmov %r4, %r10\nadd %r4, -128\nadd %r4, %r2\nstxdw [%r4+0], %r3\nadd %r3, 1\njlt %r3, 16, fill\nmov %r0, 0\nmov %r3, 0\nsum:\nmov %r2, %r3\nmul %r2, 7\nand %r2, 15\nlsh %r2, 3\nmov %r4, %r10\nadd %r4, -128\nadd %r4, %r2\nldxdw %r5, [%r4+0]\nadd %r0, %r5\nlsh %r0, 2\nadd %r3, 1\njlt %r3, 40, sum\nexit',
  },
  {
    name: 'a fold candidate out of bounds (index past the table: the access faults)',
    asm: 'mov %r3, 0\nloop:\nmov %r2, %r3\nlsh %r2, 6\nmov %r4, %r10\nadd %r4, -64\nadd %r4, %r2\nldxdw %r5, [%r4+0]\nadd %r3, 1\njlt %r3, 100, loop\nmov %r0, %r5\nexit',
  },
  {
    name: '64-bit 1 << n for every n, with AND 0xffff and AND ~3 (uxth, bic)',
    asm: 'mov %r0, 0\nmov %r3, 0\nloop:\nmov %r4, 1\nlsh %r4, %r3\nxor %r0, %r4\nmov %r5, %r0\nand %r5, 0xffff\nadd %r0, %r5\nmov %r5, %r0\nand %r5, -4\nxor %r0, %r5\nrsh %r5, 33\nadd %r0, %r5\nadd %r3, 1\njlt %r3, 64, loop\nexit',
  },
  {
    name: 'a countdown whose branch uses the flags of the decrement, with moves in between',
    asm: 'mov %r0, 0\nmov %r7, 37\nmov %r6, 1\nloop:\nadd %r0, %r6\nmov %r8, %r0\nadd32 %r7, -1\nmov32 %r6, %r8\nmov32 %r9, %r7\njne32 %r7, 0, loop\nadd %r0, %r9\nexit',
  },
  {
    name: 'a value that is only used as a known constant (its definition is dropped)',
    asm: 'mov %r0, 0\nmov %r3, 0\nloop:\nmov %r2, %r10\nadd %r2, -448\nadd %r2, %r3\nstxb [%r2+0], %r3\nldxb %r4, [%r2+0]\nadd %r0, %r4\nadd %r3, 1\njlt %r3, 200, loop\nexit',
  },
];

describe('programs built against these lowerings, on the board', () => {
  beforeAll(boardReady, 120_000);

  it.each(['facts', 'raw'] as const)('each ends as on the interpreter (%s)', async (mode) => {
    const { got, want } = await endingsOnBoard(CASES, mode);
    expect(got).toEqual(want);
    // The walks fault (past the end, before the start, with an upper half of 1 or 2)...
    expect(got.filter((g) => g.includes('out-of-bounds at')).length).toBeGreaterThanOrEqual(4);
    // ...the others finish.
    expect(got.filter((g) => g.includes(': ok ')).length).toBeGreaterThanOrEqual(4);
  }, 120_000);
});
