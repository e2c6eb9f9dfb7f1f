// The Thumb back end's optimisations, at their own level and on the board: what known.ts knows
// (constant halves, unsigned ranges refined by branches and copies), the lowering that uses it
// (32-bit compares and adds of 64-bit values below 2^32, UMULL for zero-extended factors, ORRS for
// a 64-bit test against 0, dropped upper halves of pointers), the budget kept in a register, and
// then programs built to break each of those assumptions, run on the emulated Cortex-M4 and compared
// with the reference interpreter (result or fault, pc) and the IR evaluator (budget charged).
import { beforeAll, describe, expect, it } from 'vitest';
import { OFF } from '../backends/thumb/abi.js';
import { compileIr, compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { KnownHalves, knownHalf, knownRange } from '../backends/thumb/known.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { BUDGET_REG, halfKey } from '../backends/thumb/regalloc.js';
import { assembleProgram } from '../compiler/asm.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import { parseIr } from '../compiler/ir/text.js';
import type { Program } from '../compiler/program.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import type { RunResult } from '../runtime/errors.js';
import { interpret } from '../runtime/interp.js';
import { runThumbBatch, thumbFirmware, toRunResult, type ThumbJob } from '../runtime/thumb-engine.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

const NAMES = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'sb', 'sl', 'fp', 'ip', 'sp', 'lr', 'pc'];

function irModule(body: string): ReturnType<typeof parseIr> {
  return parseIr(`origin "test"\nfunction main (start 0) {\n${body}\n}\n`);
}

interface Lowered {
  low: LoweredModule;
  /** Disassembly of IR instruction `i` ('t' = terminator) of block `b`. */
  code(b: number, i: number | 't'): ThumbInsn[];
  all: ThumbInsn[];
}

function lower(body: string): Lowered {
  const low = lowerModule(irModule(body));
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks;
  return {
    low,
    all,
    code(b, i) {
      const k = marks.findIndex((mk) => mk.where === `f0.b${b}.${i}`);
      const end = k + 1 < marks.length ? marks[k + 1].offset : low.code.length;
      return all.filter((x) => x.address >= marks[k].offset && x.address < end);
    },
  };
}

const mn = (xs: ThumbInsn[]): string[] => xs.map((x) => x.mnemonic.replace(/\.w$/, ''));

// A counted loop as clang writes it: i and n are 64-bit registers, n a length (below 2^32).
const LOOP = `b0:
  r3 = const 0x0 ; @0
  r0 = const 0x0 ; @1
  br.eq.64 r2, 0, b2, b1 ; @2
b1:
  budget 3 ; @3
  r0 = add.64 r0, r3 ; @3
  r3 = add.64 r3, 1 ; @4
  br.ult.64 r3, r2, b1, b2 ; @5
b2:
  ret ; @6`;

describe('what known.ts knows', () => {
  it('bounds a counter by the length it is compared with, and keeps the sum unbounded', () => {
    const f = irModule(LOOP).functions[0];
    const k = new KnownHalves(f, true, 11);
    const s = k.at(1);
    // r3 < r2 <= 0xf0000000 (the context's length ends below the regions' limit) on the back
    // edge, 0 on entry
    expect(knownRange(s, 3)).toEqual([0, 0xf000_0000 - 1]);
    expect(knownHalf(s, 3, 1)).toBe(0);
    expect(knownRange(s, 2)).toEqual([1, 0xf000_0000]);
    // r0 accumulates without bound: nothing known about its upper half
    expect(knownHalf(s, 0, 1)).toBeUndefined();
  });

  it('refines a copy of a compared register (clang: r3 = r2; if r2 < K ...)', () => {
    const f = irModule(`b0:
  r2 = load.u64 r10-8 [check] ; @0
  r3 = mov.64 r2 ; @1
  br.ult.64 r2, 359, b2, b1 ; @2
b1:
  r3 = const 0x167 ; @3
  jump b2 ; @4
b2:
  ret ; @5`).functions[0];
    const s = new KnownHalves(f, true, 11).at(2);
    expect(knownRange(s, 3)).toEqual([0, 359]);
    expect(knownRange(s, 2)[1]).toBe(Infinity);
  });

  it('knows nothing unsound about a counter that crosses 2^32', () => {
    const f = irModule(`b0:
  r3 = const 0xfffffff0 ; @0
  jump b1 ; @1
b1:
  r3 = add.64 r3, 1 ; @2
  br.ne.64 r3, 0, b1, b2 ; @3
b2:
  ret ; @4`).functions[0];
    const s = new KnownHalves(f, true, 11).at(1);
    expect(knownHalf(s, 3, 1)).toBeUndefined();
  });

  it('knows the entry frame pointer and folds arithmetic on it to a constant', () => {
    const l = lower('b0:\n  r2 = add.64 r10, -448 ; @0\n  r0 = load.u64 r2+0 [proven stack] ; @1\n  ret ; @2');
    // (r2 is then known wherever it is read: it is materialised where the load needs it)
    const code = [...l.code(0, 0), ...l.code(0, 1)].map((x) => x.text);
    expect(code.join(' ')).not.toContain(`#0x${OFF.R10.toString(16)}]`);
    // 0x11000 - 448 = 0x10e40
    expect(code.some((t) => /movw \w+, #0xe40/.test(t))).toBe(true);
  });
});

describe('lowering with known halves', () => {
  it('turns a 64-bit counted loop into 32-bit code: one ADDS, one CMP', () => {
    const l = lower(LOOP);
    expect(mn(l.code(1, 2))).toEqual(['adds']);
    expect(mn(l.code(1, 't'))).toEqual(['cmp', 'blo']);
    // The counter's upper half is known wherever it is read: it has no home and is never written.
    expect(l.low.alloc.eliminated.has(halfKey(3, 1))).toBe(true);
    expect(l.low.alloc.homes.has(halfKey(3, 1))).toBe(false);
  });

  it('tests a 64-bit value against 0 with ORRS', () => {
    const l = lower('b0:\n  r1 = load.u64 r10-8 [check] ; @0\n  br.ne.64 r1, 0, b1, b2 ; @1\nb1:\n  r0 = const 0x1 ; @2\n  ret ; @3\nb2:\n  r0 = const 0x2 ; @4\n  ret ; @5');
    expect(mn(l.code(0, 't'))).toEqual(['orrs', 'beq']);
  });

  it('decides a 64-bit compare from different known upper halves without code', () => {
    const l = lower('b0:\n  r1 = load.u32 r10-8 [check] ; @0\n  r3 = const 0x100000000 ; @1\n  br.ult.64 r1, r3, b1, b2 ; @2\nb1:\n  r0 = const 0x1 ; @3\n  ret ; @4\nb2:\n  r0 = const 0x2 ; @5\n  ret ; @6');
    expect(mn(l.code(0, 't'))).toEqual([]);
  });

  it('multiplies zero-extended values with one UMULL', () => {
    const l = lower('b0:\n  r1 = load.u32 r10-8 [check] ; @0\n  r3 = load.u32 r10-16 [check] ; @1\n  r0 = mul.64 r1, r3 ; @2\n  r4 = load.u64 r10-24 [check] ; @3\n  r0 = add.64 r0, r4 ; @4\n  ret ; @5');
    expect(mn(l.code(0, 2))).toEqual(['umull']);
  });

  it('shifts a value with a zero upper half right by a register in two instructions', () => {
    const l = lower('b0:\n  r1 = load.u32 r10-8 [check] ; @0\n  r3 = load.u64 r10-16 [check] ; @1\n  r0 = lshr.64 r1, r3 ; @2\n  ret ; @3');
    expect(mn(l.code(0, 2))).toEqual(['and', 'lsr']);
  });

  it('computes no upper half for a pointer used only by proven accesses', () => {
    const l = lower('b0:\n  r3 = load.u32 r10-8 [check] ; @0\n  r5 = add.64 r1, r3 ; @1\n  r0 = load.u8 r5+0 [proven mem] ; @2\n  ret ; @3');
    expect(mn(l.code(0, 1))).toEqual(['adds']);
  });
});

describe('the budget register', () => {
  it('charges a loop block with SUBS/BLO on the register, and every exit stores it back', () => {
    const l = lower(LOOP);
    const sb = NAMES[BUDGET_REG];
    expect(l.low.alloc.budgetReg).toBe(BUDGET_REG);
    expect(l.code(1, 0).map((x) => x.text)).toEqual([`subs.w ${sb}, ${sb}, #3`, expect.stringMatching(/^blo/)]);
    const budget = `[sp, #${OFF.BUDGET}]`;
    const texts = l.all.map((x) => x.text);
    expect(texts.filter((t) => t === `ldr.w ${sb}, ${budget}`)).toHaveLength(1);
    // exit_ok, helper stop and fault_common
    expect(texts.filter((t) => t === `str.w ${sb}, ${budget}`)).toHaveLength(3);
    expect(Object.values(Object.fromEntries(l.low.alloc.homes))).not.toContain(BUDGET_REG);
  });

  it('reserves no register when nothing is charged', () => {
    const l = lower('b0:\n  r0 = const 0x1 ; @0\n  ret ; @1');
    expect(l.low.alloc.budgetReg).toBeUndefined();
  });
});

// ---- on the board ----

interface Case {
  name: string;
  asm: string;
  mem?: number[];
  budget?: number;
  /** Not compiled with verifier facts. */
  noFacts?: boolean;
}

const u32 = (...ws: number[]): number[] => ws.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]);

const CASES: Case[] = [
  {
    name: 'a 64-bit counter crossing 2^32 (ranges must not assume a zero upper half)',
    asm: 'lddw %r3, 0xfffffff0\nmov %r0, 0\nloop:\nadd %r0, %r3\nadd %r3, 1\nlddw %r4, 0x100000010\njlt %r3, %r4, loop\nexit',
  },
  {
    name: 'a 32-bit counter wrapping to 0',
    asm: 'mov32 %r3, -4\nmov %r0, 0\nloop:\nadd32 %r3, 1\nadd %r0, 1\njne %r3, 0, loop\nlsh %r0, 40\nor %r0, %r3\nexit',
  },
  {
    name: 'a counted loop over the context with a 64-bit index',
    asm: 'mov %r0, 0\nmov %r3, 0\njeq %r2, 0, out\nloop:\nmov %r4, %r1\nadd %r4, %r3\nldxb %r5, [%r4+0]\nadd %r0, %r5\nmul %r0, 33\nadd %r3, 1\njlt %r3, %r2, loop\nout:\nexit',
    mem: Array.from({ length: 37 }, (_, i) => (i * 29 + 7) & 0xff),
  },
  {
    name: 'signed compares of negative values (no refinement may apply)',
    asm: 'mov %r3, -5\nmov %r0, 0\nloop:\nadd %r0, 3\nadd %r3, 1\njslt %r3, 3, loop\njsgt %r3, -1, done\nmov %r0, 99\ndone:\nexit',
  },
  {
    name: 'a copy bounded by a compare (min(n, 359))',
    asm: 'lddw %r2, 0x100000005\nmov %r3, %r2\njlt %r2, 359, small\nmov %r3, 359\nsmall:\nmov %r0, %r3\nrsh %r0, 1\nexit',
  },
  {
    name: 'a checked access through the slow path, then a cached one in the same block',
    // Without facts only: the verifier claims this pointer is in the context (see the report).
    noFacts: true,
    // r3 points into the stack but is derived from the context pointer: the inline check against
    // the context fails, the lookup finds the stack; the next access (context) reuses r10/r11.
    asm: 'stdw [%r10-8], 0x1234\nmov %r3, %r10\nsub %r3, %r1\nadd %r3, %r1\nldxdw %r4, [%r3-8]\nldxw %r5, [%r1+4]\nldxw %r6, [%r1+0]\nmov %r0, %r4\nlsh %r0, 32\nadd %r0, %r5\nadd %r0, %r6\nexit',
    mem: u32(0x11111111, 0x22222222),
  },
  {
    name: 'an 8-byte store and load at the context end, both through checks',
    asm: 'mov %r3, %r1\nadd %r3, %r2\nlddw %r4, 0x8877665544332211\nstxdw [%r3-8], %r4\nldxdw %r0, [%r3-8]\nldxw %r5, [%r3-4]\nxor %r0, %r5\nexit',
    mem: u32(1, 2, 3, 4),
  },
  {
    name: 'a pointer with a known nonzero upper half always faults',
    asm: 'mov %r3, %r1\nlddw %r4, 0x100000000\nadd %r3, %r4\nldxb %r0, [%r3+0]\nexit',
    mem: [1, 2, 3, 4],
  },
  {
    name: 'a helper called with known arguments (unwind returns r1)',
    asm: 'mov %r1, 7\ncall 5\nadd %r0, 1\nexit',
  },
  {
    name: 'a helper called with a known zero argument (unwind stops the program)',
    asm: 'mov %r1, 0\ncall 5\nmov %r0, 55\nexit',
  },
  {
    name: 'budget exhausted in a loop of several blocks',
    asm: 'mov %r0, 0\nloop:\nadd %r0, 1\njgt %r0, 3, skip\nadd %r0, 2\nskip:\nja loop',
    budget: 777,
  },
  {
    name: 'a 64-bit product of zero-extended values and its upper half',
    asm: 'ldxw %r3, [%r1+0]\nldxw %r4, [%r1+4]\nmov %r0, %r3\nmul %r0, %r4\nmov %r5, %r0\nrsh %r5, 32\nxor %r0, %r5\nexit',
    mem: u32(0xfffffffb, 0xfffffff1),
  },
  {
    name: 'a 64-bit shift by a register of a zero-extended value',
    asm: 'ldxw %r3, [%r1+0]\nmov %r4, 0\nmov %r0, 0\nloop:\nmov %r5, %r3\nrsh %r5, %r4\nxor %r0, %r5\nmov %r6, %r3\nlsh %r6, %r4\nadd %r0, %r6\nadd %r4, 7\njlt %r4, 70, loop\nexit',
    mem: u32(0x89abcdef),
  },
];

function ending(r: RunResult): string {
  if (r.ok) return `ok r0=0x${r.r0.toString(16)} steps=${r.steps}`;
  const where = r.fault.addr !== undefined ? ` addr=0x${r.fault.addr.toString(16)} size=${r.fault.size}` : '';
  return `${r.fault.kind} at ${r.fault.pc}${where}`;
}

describe('programs built against the optimisations, on the board', () => {
  beforeAll(async () => {
    expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
    expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
    await thumbFirmware();
  }, 120_000);

  it.each(['facts', 'nofacts', 'raw'] as const)('each ends as on the interpreter, charging what the IR evaluator charges (%s)', async (mode) => {
    const cases = CASES.filter((c) => mode !== 'facts' || c.noFacts !== true);
    const progs: Program[] = cases.map((c) => assembleProgram(`${c.asm}\n`, c.name));
    const mems = cases.map((c) => (c.mem !== undefined ? Uint8Array.from(c.mem) : undefined));
    const built = progs.map((p) => {
      if (mode === 'raw') {
        const ir = buildIr(p);
        return { image: compileIr(ir).image, ir };
      }
      return compileThumb(p, mode === 'facts' ? thumbFacts(p, new Set([5])) : undefined);
    });
    const jobs: ThumbJob[] = built.map((b, i) => ({ image: b.image, mem: mems[i]?.slice(), budget: cases[i].budget ?? 1_000_000 }));
    const runs = await runThumbBatch(jobs);
    const got: string[] = [];
    const want: string[] = [];
    runs.forEach((run, i) => {
      const c = cases[i];
      const budget = c.budget ?? 1_000_000;
      expect({ name: c.name, canary: run.canaryOk }).toEqual({ name: c.name, canary: true });
      const r = toRunResult(run, progs[i], mems[i], budget);
      const ref = interpret(progs[i], { mem: mems[i]?.slice(), budget });
      const ev = evalIr(built[i].ir, { mem: mems[i]?.slice(), budget, program: progs[i] });
      // The interpreter counts every instruction; compiled code charges whole blocks at their
      // heads, as the IR evaluator does (so a budget fault is at the charging block's pc).
      const expected = !ref.ok && ref.fault.kind === 'budget' ? ev : ref;
      got.push(`${c.name}: ${ending({ ...r, steps: 0 })} charged ${r.steps}`);
      want.push(`${c.name}: ${ending({ ...expected, steps: 0 })} charged ${ev.steps}`);
      if (!ev.ok && ev.fault.kind === 'budget') expect(ref.ok ? 'ok' : ref.fault.kind).toBe('budget');
    });
    expect(got).toEqual(want);
    // The cases must exercise both outcomes.
    expect(got.filter((g) => g.includes(': ok ')).length).toBeGreaterThan(5);
    expect(got.some((g) => g.includes('budget at'))).toBe(true);
    expect(got.some((g) => g.includes('out-of-bounds at'))).toBe(true);
  }, 120_000);
});
