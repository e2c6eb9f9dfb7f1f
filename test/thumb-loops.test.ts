// Loop-level lowering of the Thumb back end: region words (counts, hosts, deltas) kept in r10/r11
// across a loop's iterations and loaded on the way in (cache-flow.ts), and homes per outermost
// loop (regalloc.ts RegionHomes) with the halves moved on the edges between them. Checked at the
// code level, then with programs built to break both (faults inside cached loops, slow paths that
// leave and re-enter the cache, values live across loops with different homes) run on the
// emulated Cortex-M4 against the reference interpreter.
import { beforeAll, describe, expect, it } from 'vitest';
import { boardReady, bytes, endingsOnBoard, type BoardCase } from './support/board-cases.js';
import { REGION, regionField, slotOf } from '../backends/thumb/abi.js';
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
  all: ThumbInsn[];
}

function lower(body: string): Lowered {
  // The checked loops themselves: no versioned copy (test/thumb-version.test.ts has those).
  const low = lowerModule(parseIr(`origin "test"\nfunction main (start 0) {\n${body}\n}\n`), undefined, { version: false });
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks;
  return {
    low,
    all,
    block(b) {
      const first = marks.findIndex((mk) => mk.where.startsWith(`f0.b${b}.`));
      const last = marks.findIndex((mk) => mk.where === `f0.b${b}.t`);
      const end = last + 1 < marks.length ? marks[last + 1].offset : low.code.length;
      return all.filter((x) => x.address >= marks[first].offset && x.address < end);
    },
  };
}

/** `[sp, #off]` as capstone prints it. */
const stateRef = (off: number): string => `[sp, #0x${off.toString(16)}]`;

// Region 1 is the context when the program has no data sections.
const MEM = 1;
const CNT1 = regionField(MEM, REGION.CNT);
const HOST = regionField(MEM, REGION.HOST);
/** cnt[2]: the two byte loads of WALK are tested once, as one 2-byte range (checks.ts groupAccesses). */
const CNT2 = regionField(MEM, REGION.CNT + 4);
const DELTA = regionField(MEM, REGION.DELTA);

// Sums the context's bytes through a checked 64-bit pointer (clang's shape for a pointer walk).
const WALK = `b0:
  r0 = const 0x0 ; @0
  r3 = mov.64 r1 ; @1
  br.eq.64 r2, 0, b2, b1 ; @2
b1:
  r4 = load.u8 r3+0 [check mem] ; @3
  r5 = load.u8 r3+1 [check mem] ; @4
  r0 = add.64 r0, r4 ; @5
  r0 = add.64 r0, r5 ; @6
  r3 = add.64 r3, 2 ; @7
  r2 = add.64 r2, -1 ; @8
  br.ne.64 r2, 0, b1, b2 ; @9
b2:
  ret ; @10`;

describe('region words across a loop', () => {
  it('loads the count and the delta once on the way into the loop, never inside it', () => {
    const l = lower(WALK);
    const inLoop = l.block(1).map((x) => x.text).join('\n');
    for (const w of [CNT1, CNT2, HOST, DELTA]) expect(inLoop).not.toContain(stateRef(w));
    // ...and the loop still checks the accesses (once, for both: one range of 2 bytes) and reads
    // through the delta (the branch on r2 != 0 uses the flags of the decrement: no second compare).
    expect(l.block(1).filter((x) => x.mnemonic.startsWith('cmp'))).toHaveLength(1);
    expect(l.block(1).filter((x) => x.mnemonic.startsWith('ldrb'))).toHaveLength(2);
    const entry = l.block(0).map((x) => x.text).join('\n');
    expect(entry).toContain(stateRef(CNT2));
    expect(entry).toContain(stateRef(DELTA));
  });

  it('loads the count and the host of single checks the same way', () => {
    // Two accesses through different bases: no group, each checked against cnt[1].
    const l = lower(WALK.replace('r5 = load.u8 r3+1 [check mem]', 'r5 = load.u8 r1+1 [check mem]'));
    const inLoop = l.block(1).map((x) => x.text).join('\n');
    expect(inLoop).not.toContain(stateRef(CNT1));
    expect(inLoop).not.toContain(stateRef(HOST));
    expect(l.block(1).filter((x) => x.mnemonic.startsWith('cmp'))).toHaveLength(2);
    const entry = l.block(0).map((x) => x.text).join('\n');
    expect(entry).toContain(stateRef(CNT1));
    expect(entry).toContain(stateRef(HOST));
  });

  it('reloads what a block in the loop overwrites (a helper call forgets the cache)', () => {
    const l = lower(WALK.replace('  r3 = add.64 r3, 2 ; @7', '  r3 = add.64 r3, 2 ; @7\n  call 5 ; @7'));
    const inLoop = l.block(1).map((x) => x.text).join('\n');
    expect(inLoop).toContain(stateRef(CNT2));
  });
});

// Two loops over different registers: more hot halves than homes in total, fewer in each loop.
const TWO_LOOPS = `b0:
  r3 = const 0x0 ; @0
  r4 = const 0x0 ; @1
  r5 = const 0x1 ; @2
  r6 = const 0x2 ; @3
  jump b1 ; @4
b1:
  r4 = add.64 r4, r3 ; @5
  r5 = mul.64 r5, r4 ; @6
  r6 = xor.64 r6, r5 ; @7
  r3 = add.64 r3, 1 ; @8
  br.ult.64 r3, r2, b1, b2 ; @9
b2:
  r7 = const 0x0 ; @10
  r8 = const 0x3 ; @11
  r9 = const 0x5 ; @12
  r0 = mov.64 r6 ; @13
  jump b3 ; @14
b3:
  r8 = mul.64 r8, r9 ; @15
  r9 = add.64 r9, r8 ; @16
  r0 = xor.64 r0, r9 ; @17
  r7 = add.64 r7, 1 ; @18
  br.ult.64 r7, r2, b3, b4 ; @19
b4:
  r0 = add.64 r0, r4 ; @20
  ret ; @21`;

describe('homes per outermost loop', () => {
  it('gives each loop its own hottest halves and moves the live ones between loops', () => {
    const l = lower(TWO_LOOPS);
    const rg = l.low.alloc.regions;
    expect(rg).toBeDefined();
    if (rg === undefined) return;
    expect(rg.of[1]).not.toBe(rg.of[3]);
    const first = rg.homes[rg.of[1]];
    const second = rg.homes[rg.of[3]];
    for (const r of [4, 5, 6]) for (const h of [0, 1] as const) expect(first.has(halfKey(r, h))).toBe(true);
    for (const r of [8, 9, 0]) for (const h of [0, 1] as const) expect(second.has(halfKey(r, h))).toBe(true);
    // Neither loop's iteration (up to its back edge; the moves out follow it) touches a slot.
    const slots = new Set(Array.from({ length: 22 }, (_, k) => stateRef(slotOf(k >> 1, (k & 1) as 0 | 1))));
    for (const b of [1, 3]) {
      const code = l.block(b);
      const back = code.findIndex((x) => /^b(lo|hs|ne|eq)?(\.w)?$/.test(x.mnemonic));
      expect(back).toBeGreaterThan(0);
      const after = code.slice(back + 1).map((x) => x.text);
      expect(after.some((t) => t.startsWith('str'))).toBe(true);
      for (const x of code.slice(0, back + 1)) {
        const ref = /\[sp, #0x[0-9a-f]+\]/.exec(x.text)?.[0];
        if (ref !== undefined && !x.text.startsWith('ldr') && !x.text.startsWith('str')) continue;
        expect(ref !== undefined && slots.has(ref) ? x.text : '').toBe('');
      }
    }
  });

  it('keeps one map for modules with local calls (they share one register file)', () => {
    const m = parseIr(`origin "test"\nfunction main (start 0) {\nb0:\n  r3 = const 0x0 ; @0\n  jump b1 ; @1\nb1:\n  r3 = add.64 r3, 1 ; @2\n  br.ult.64 r3, r2, b1, b2 ; @3\nb2:\n  calllocal 1 ; @4\n  ret ; @5\n}\nfunction f (start 6) {\nb0:\n  r0 = const 0x1 ; @6\n  ret ; @7\n}\n`);
    expect(lowerModule(m).alloc.regions).toBeUndefined();
  });
});

// ---- on the board ----

interface Case extends BoardCase {
  noFacts?: boolean;
}

const CASES: Case[] = [
  {
    name: 'a pointer walk that runs off the end of the context (fault inside the cached loop)',
    // r2 counts twice the context's length: the loop leaves the context halfway.
    asm: 'mov %r0, 0\nmov %r3, %r1\nlsh %r2, 1\nloop:\nldxb %r4, [%r3+0]\nldxb %r5, [%r3+1]\nadd %r0, %r4\nadd %r0, %r5\nadd %r3, 2\nsub %r2, 2\njne %r2, 0, loop\nexit',
    mem: bytes(40, (i) => i * 7 + 3),
  },
  {
    name: 'a store loop whose pointer visits the stack through the slow path, then comes back',
    noFacts: true,
    // Every third iteration the address is the stack's (the inline check against the context
    // fails, the lookup finds the stack), the others the context's: the cache must survive.
    asm: 'mov %r0, 0\nmov %r3, 0\nmov %r6, %r10\nsub %r6, 64\nloop:\nmov %r4, %r1\nadd %r4, %r3\nmov %r7, %r3\nmod %r7, 3\njne %r7, 0, ctx\nmov %r4, %r6\nadd %r4, %r3\nctx:\nstxb [%r4+0], %r3\nldxb %r5, [%r4+0]\nadd %r0, %r5\nlsh %r0, 1\nadd %r3, 1\njlt %r3, 30, loop\nexit',
    mem: bytes(32, (i) => i),
  },
  {
    name: 'two loops with values live across both (homes differ per loop)',
    asm: 'mov %r3, 0\nmov %r4, 0\nmov %r5, 1\nmov %r6, 2\nl1:\nadd %r4, %r3\nmul %r5, %r4\nxor %r6, %r5\nadd %r3, 1\njlt %r3, 17, l1\nmov %r7, 0\nmov %r8, 3\nmov %r9, 5\nmov %r0, %r6\nl2:\nmul %r8, %r9\nadd %r9, %r8\nxor %r0, %r9\nadd %r7, 1\njlt %r7, 13, l2\nadd %r0, %r4\nadd %r0, %r5\nexit',
  },
  {
    name: 'a loop over a table on the stack and one over the context (two regions cached)',
    asm: 'mov %r3, 0\nst:\nmov %r4, %r10\nsub %r4, 64\nadd %r4, %r3\nstxb [%r4+0], %r3\nadd %r3, 1\njlt %r3, 64, st\nmov %r0, 0\nmov %r3, 0\nsum:\nmov %r4, %r1\nadd %r4, %r3\nldxb %r5, [%r4+0]\nmov %r6, %r10\nsub %r6, 64\nadd %r6, %r5\nldxb %r7, [%r6+0]\nadd %r0, %r7\nadd %r3, 1\njlt %r3, %r2, sum\nexit',
    mem: bytes(48, (i) => (i * 13) % 64),
  },
  {
    name: 'a loop that returns from its middle (r0 leaves from a loop home)',
    asm: 'mov %r0, 0\nmov %r3, 0\nloop:\nmov %r4, %r1\nadd %r4, %r3\nldxb %r5, [%r4+0]\nadd %r0, %r5\njgt %r0, 300, out\nadd %r3, 1\njlt %r3, %r2, loop\nmov %r0, 1\nout:\nexit',
    mem: bytes(20, (i) => 40 + i),
  },
];

describe('programs built against the loop-level lowering, on the board', () => {
  beforeAll(boardReady, 120_000);

  it.each(['facts', 'raw'] as const)('each ends as on the interpreter (%s)', async (mode) => {
    const cases = CASES.filter((c) => mode !== 'facts' || c.noFacts !== true);
    const { got, want } = await endingsOnBoard(cases, mode, new Set([5]));
    expect(got).toEqual(want);
    expect(got.some((g) => g.includes('out-of-bounds at'))).toBe(true);
    expect(got.filter((g) => g.includes(': ok ')).length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
