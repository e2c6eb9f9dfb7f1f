// The Wasm back end's unrolled fast loops, joins that carry a pending charge, and grouped checks,
// each against oracles that share none of their shortcuts (the IR interpreter on the very IR that
// was lowered, and the reference interpreter on the eBPF):
// - an innermost charged loop's fast copy runs k copies per budget guard; a run may leave the group
//   after any copy, by the loop's exit, by a fault, or by running out of budget, and must end with
//   the same r0 or fault (kind, pc, message) and the same budget charged;
// - accesses through one unmodified base register in a block share one range test; when it fails,
//   the accesses run checked one by one, so the one that faults is the first in program order.
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { evalIr } from '../compiler/ir/eval.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { checkGroups } from '../backends/wasm/lower.js';
import { structureFunction, type Cmd } from '../backends/wasm/structure.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';

const prog = (text: string): Program => rawProgram(assemble(text), 'test');

/** Every budget from 0 to one past what the whole run charges: wasm ends exactly as evalIr. */
function everyBudget(program: Program, mem: Uint8Array | undefined, opts: WasmCompileOptions, label: string): number {
  const helpers = conformanceHelpers();
  const compiled = compileToWasm(program, opts);
  const inst = instantiateWasm(program, compiled, helpers);
  const full = evalIr(compiled.ir, { mem, helpers, program, budget: Infinity });
  let budgetFaults = 0;
  for (let budget = 0; budget <= full.steps + 1; budget++) {
    const want: RunResult = evalIr(compiled.ir, { mem, helpers, program, budget });
    const got = inst.run({ mem, budget });
    expect({ label, budget, ...got }).toEqual({ label, budget, ...want });
    if (!want.ok && want.fault.kind === 'budget') budgetFaults++;
  }
  return budgetFaults;
}

/** The reference interpreter and the wasm engine end the same way (r0, or the fault with its message). */
function sameAsInterpreter(program: Program, mem: Uint8Array | undefined, opts: WasmCompileOptions = {}): RunResult {
  const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem });
  const got = instantiateWasm(program, compileToWasm(program, opts), conformanceHelpers()).run({ mem });
  if (want.ok) expect(got).toMatchObject({ ok: true, r0: want.r0 });
  else expect(got).toMatchObject({ ok: false, fault: want.fault });
  return got;
}

function commands(program: Program, opts: WasmCompileOptions): Cmd[] {
  const { ir } = compileToWasm(program, opts);
  return ir.functions.flatMap((fn) => structureFunction(fn, { foldable: () => true, fastLoops: true }).cmds);
}

/** Per guarded loop: its guard and how many copies of the loop's first block it holds. */
function unrolled(cmds: Cmd[]): { guard: number; copies: number }[] {
  const out: { guard: number; copies: number }[] = [];
  cmds.forEach((c, i) => {
    if (c.op !== 'loop' || c.guard === undefined) return;
    const first = cmds.slice(i + 1).find((x) => x.op === 'code');
    let depth = 0;
    let copies = 0;
    for (let j = i + 1; j < cmds.length && depth >= 0; j++) {
      const x = cmds[j];
      if (x.op === 'block' || x.op === 'loop' || x.op === 'if') depth++;
      else if (x.op === 'end') depth--;
      else if (x.op === 'code' && first?.op === 'code' && x.block === first.block) copies++;
    }
    out.push({ guard: c.guard, copies });
  });
  return out;
}

const le32 = (n: number): Uint8Array => Uint8Array.from([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]);

describe('unrolled fast loops', () => {
  // n iterations of a 4-instruction loop, n read from mem (so nothing proves the loop bounded).
  const counted = prog(`
    ldxw %r6, [%r1]
    mov %r0, 0
    mov %r3, 1
  l:
    add %r0, %r3
    add %r3, %r0
    sub %r6, 1
    jne %r6, 0, l
    exit`);

  it('a small body gets 8 copies under one guard of 8 iterations\' charge', () => {
    const loops = unrolled(commands(counted, { facts: 'none' }));
    expect(loops).toHaveLength(1);
    expect(loops[0].copies).toBe(8);
    const compiled = compileToWasm(counted, { facts: 'none' });
    const costs = compiled.ir.functions[0].blocks.flatMap((b) => b.insts).flatMap((i) => (i.op === 'budget' ? [i.cost] : []));
    expect(loops[0].guard).toBe(8 * Math.max(...costs));
  });

  it('the loop exits after every copy of a group; every budget charges as the IR interpreter', () => {
    let budgetFaults = 0;
    for (let n = 1; n <= 19; n++) {
      const mem = le32(n);
      sameAsInterpreter(counted, mem, { facts: 'none' });
      sameAsInterpreter(counted, mem);
      budgetFaults += everyBudget(counted, mem, { facts: 'none' }, `n = ${n}`);
      budgetFaults += everyBudget(counted, mem, {}, `n = ${n} (facts)`);
    }
    expect(budgetFaults).toBeGreaterThan(19 * 2 * 4);
  });

  it('a fault in any copy of a group: the same pc, address and message as the interpreter', () => {
    // Reads bytes until it runs off mem's end: the checked load faults in copy (len mod 8).
    const walk = prog(`
      mov %r0, 0
    l:
      ldxb %r3, [%r1]
      add %r0, %r3
      add %r1, 1
      ja l`);
    expect(unrolled(commands(walk, {}))[0].copies).toBe(8);
    for (let len = 1; len <= 18; len++) {
      const mem = Uint8Array.from({ length: len }, (_, i) => i + 1);
      expect(sameAsInterpreter(walk, mem)).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', pc: 1, size: 1 } });
      everyBudget(walk, mem, {}, `len ${len}`);
    }
  });

  it('a loop whose body branches: copies with several exits, a triangle and a second latch', () => {
    const branchy = prog(`
      ldxw %r6, [%r1]
      mov %r0, 0
      mov %r7, 0
    l:
      mov %r3, %r7
      and %r3, 3
      jeq %r3, 1, skip
      add %r0, %r7
      jgt %r0, 1000, out
    skip:
      add %r7, 1
      jeq %r3, 2, l
      jlt %r7, %r6, l
    out:
      exit`);
    expect(unrolled(commands(branchy, { facts: 'none' })).some((l) => l.copies > 1)).toBe(true);
    for (const n of [1, 2, 3, 5, 8, 9, 13, 17, 60]) {
      const mem = le32(n);
      sameAsInterpreter(branchy, mem, { facts: 'none' });
      everyBudget(branchy, mem, { facts: 'none' }, `branchy n = ${n}`);
    }
  });

  it('a big body is not unrolled', () => {
    const body = Array.from({ length: 60 }, (_, i) => `add %r0, ${i + 1}`).join('\n');
    const big = prog(`ldxw %r6, [%r1]\nmov %r0, 0\nl:\n${body}\nsub %r6, 1\njne %r6, 0, l\nexit`);
    const loops = unrolled(commands(big, { facts: 'none' }));
    expect(loops).toHaveLength(1);
    expect(loops[0].copies).toBe(1);
    everyBudget(big, le32(3), { facts: 'none' }, 'big');
  });
});

describe('grouped checks', () => {
  // r2 = mem + mem[0]: the verifier cannot place it, so every access through r2 is checked.
  const launder = 'ldxb %r3, [%r1]\nmov %r2, %r1\nadd %r2, %r3\n';

  function groups(program: Program): number[][] {
    const { ir, layout } = compileToWasm(program);
    return ir.functions.flatMap((fn) => checkGroups(fn, layout).map((g) => g.pcs));
  }

  it('accesses through one base form a group; a redefined base, a call or another base splits it', () => {
    expect(groups(prog(`${launder}ldxb %r4, [%r2+1]\nldxb %r5, [%r2]\nmov %r0, %r4\nadd %r0, %r5\nexit`))).toEqual([[3, 4]]);
    // A store to the same region in between, and an access through another base, stay in the span
    // (here r1's two accesses form a group of their own first: groups do not overlap).
    expect(groups(prog(`${launder}ldxw %r4, [%r2+4]\nstxb [%r1+1], %r4\nstxh [%r2-2], %r4\nldxb %r0, [%r2]\nexit`))).toEqual([[0, 4], [5, 6]]);
    expect(groups(prog(`${launder}ldxw %r4, [%r2+4]\nstxb [%r10-1], %r4\nstxh [%r2-2], %r4\nldxb %r0, [%r2]\nexit`))).toEqual([[3, 5, 6]]);
    expect(groups(prog(`${launder}ldxb %r4, [%r2+1]\nadd %r2, 1\nldxb %r5, [%r2]\nmov %r0, %r5\nexit`))).toEqual([]);
    expect(groups(prog(`${launder}ldxb %r4, [%r2+1]\nmov %r6, %r2\ncall 5\nldxb %r5, [%r6]\nldxb %r0, [%r6+3]\nexit`))).toEqual([[6, 7]]);
    // A load into the base ends the group after it (its own address uses the old value).
    expect(groups(prog(`${launder}ldxb %r4, [%r2+1]\nldxdw %r2, [%r2]\nldxb %r0, [%r2]\nexit`))).toEqual([[3, 4]]);
  });

  it('each access of a group at every position around mem\'s end: the first in program order faults', () => {
    let faults = 0;
    let ok = 0;
    for (const order of [[1, 0], [0, 1], [0, 6, 2], [6, -1, 3]]) {
      const loads = order.map((off, k) => `ldxb %r${4 + k}, [%r2${off < 0 ? off : `+${off}`}]`).join('\n');
      const sum = order.map((_, k) => `add %r0, %r${4 + k}`).join('\n');
      const program = prog(`${launder}${loads}\nmov %r0, 0\n${sum}\nexit`);
      expect(groups(program)).toHaveLength(1);
      for (let len = 1; len <= 12; len++) {
        for (let delta = 0; delta < len; delta++) {
          const mem = Uint8Array.from({ length: len }, (_, i) => (i === 0 ? delta : 0x40 + i));
          if (sameAsInterpreter(program, mem).ok) ok++;
          else faults++;
        }
      }
    }
    expect(faults).toBeGreaterThan(50);
    expect(ok).toBeGreaterThan(50);
  });

  it('grouped stores into mem; a pointer laundered into a read-only section faults where the interpreter does', () => {
    const stores = prog(`${launder}stb [%r2+2], 7\nsth [%r2], 9\nldxdw %r0, [%r2]\nexit`);
    expect(groups(stores)).toEqual([[3, 4, 5]]);
    const outcomes = new Set<boolean>();
    for (let delta = 0; delta < 12; delta++) {
      outcomes.add(sameAsInterpreter(stores, Uint8Array.from({ length: 10 }, (_, i) => (i === 0 ? delta : i))).ok);
    }
    expect([...outcomes].sort()).toEqual([false, true]);
    const rodata: Program = {
      ...prog('lddw %r2, 0\nldxb %r3, [%r1]\nadd %r2, %r3\nldxb %r0, [%r2+1]\nldxb %r4, [%r2]\nstb [%r2+1], 1\nstb [%r2], 2\nexit'),
      data: [{ name: '.rodata', bytes: Uint8Array.from([5, 6, 7, 8]), writable: false }],
      relocs: [{ slot: 0, section: 0, addend: 0 }],
    };
    expect(groups(rodata)[0]).toEqual(expect.arrayContaining([4, 5]));
    expect(sameAsInterpreter(rodata, Uint8Array.from([0]))).toMatchObject({ ok: false, fault: { kind: 'permission', pc: 6 } });
    expect(sameAsInterpreter(rodata, Uint8Array.from([3]))).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', pc: 4 } });
  });

  it('grouped checks inside unrolled loop copies: a fault at either access of any copy', () => {
    // fletcher32's shape: two byte loads per iteration through a pointer that advances by 2.
    for (const [first, second] of [[1, 0], [0, 1]]) {
      const pairs = prog(`
        mov %r0, 0
      l:
        ldxb %r3, [%r1+${first}]
        lsh32 %r3, 8
        ldxb %r4, [%r1+${second}]
        or32 %r3, %r4
        add32 %r0, %r3
        add %r1, 2
        ja l`);
      expect(groups(pairs)).toEqual([[1, 3]]);
      expect(unrolled(commands(pairs, {}))[0].copies).toBe(8);
      for (let len = 1; len <= 20; len++) {
        const mem = Uint8Array.from({ length: len }, (_, i) => 3 * i + 1);
        // An odd length leaves one byte for the last pair: the access at +1 faults, first or second.
        const pc = len % 2 === 0 || first === 1 ? 1 : 3;
        expect(sameAsInterpreter(pairs, mem)).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', pc } });
        everyBudget(pairs, mem, {}, `pairs ${first},${second} len ${len}`);
      }
    }
  });
});

describe('counted loops', () => {
  /** The count guard of each guarded loop (undefined: the copies keep every exit test). */
  const countGuards = (cmds: Cmd[]): ({ w: number; below: number } | undefined)[] =>
    cmds.flatMap((c) => (c.op === 'loop' && c.guard !== undefined ? [c.count === undefined ? undefined : { w: c.count.w, below: c.count.below }] : []));
  const knownIfs = (cmds: Cmd[]): number => cmds.filter((c) => c.op === 'if' && c.known !== undefined).length;

  const loop = (dec: string, test: string): Program => prog(`
    ldxw %r6, [%r1]
    mov %r0, 0
    mov %r3, 1
  l:
    add %r0, %r3
    add %r3, %r0
    ${dec}
    ${test}
    exit`);

  it('copies before the last lose the counter\'s exit test, behind a guard on the counter', () => {
    const c64 = commands(loop('sub %r6, 1', 'jne %r6, 0, l'), { facts: 'none' });
    expect(countGuards(c64)).toEqual([{ w: 64, below: 7 }]);
    expect(knownIfs(c64)).toBe(7);
    const c32 = commands(loop('add32 %r6, -1', 'jne32 %r6, 0, l'), { facts: 'none' });
    expect(countGuards(c32)).toEqual([{ w: 32, below: 7 }]);
    // Not counted: a second exit, a second write of the counter, a compare with something else.
    const twoExits = prog('ldxw %r6, [%r1]\nmov %r0, 0\nl:\nadd %r0, 3\njgt %r0, 100, out\nsub %r6, 1\njne %r6, 0, l\nout:\nexit');
    expect(countGuards(commands(twoExits, { facts: 'none' }))).toEqual([undefined]);
    expect(countGuards(commands(loop('sub %r6, 1\nor %r6, 0', 'jne %r6, 0, l'), { facts: 'none' }))).toEqual([undefined]);
    expect(countGuards(commands(loop('sub %r6, 1', 'jne %r6, 1, l'), { facts: 'none' }))).toEqual([undefined]);
  });

  it('every count around the group size and every budget end as the IR interpreter ends', () => {
    let budgetFaults = 0;
    for (const [dec, test] of [['sub %r6, 1', 'jne %r6, 0, l'], ['add32 %r6, -1', 'jne32 %r6, 0, l']]) {
      const p = loop(dec, test);
      for (let n = 1; n <= 26; n++) {
        const mem = le32(n);
        sameAsInterpreter(p, mem, { facts: 'none' });
        budgetFaults += everyBudget(p, mem, { facts: 'none' }, `${test} n = ${n}`);
      }
      // n = 0: the counter wraps, so the loop runs until the budget ends it, in the fast copy too.
      const compiled = compileToWasm(p, { facts: 'none' });
      const inst = instantiateWasm(p, compiled, conformanceHelpers());
      for (const budget of [4999, 5000, 5001, 5002]) {
        const want = evalIr(compiled.ir, { mem: le32(0), helpers: conformanceHelpers(), program: p, budget });
        expect(want).toMatchObject({ ok: false, fault: { kind: 'budget' } });
        expect(inst.run({ mem: le32(0), budget })).toEqual(want);
      }
      // A 32-bit counter with upper bits set: only its low half counts.
      sameAsInterpreter(p, Uint8Array.from([...le32(5), 0, 0, 0, 1]), { facts: 'none' });
    }
    expect(budgetFaults).toBeGreaterThan(2 * 26 * 4);
  });
});

describe('halfword loads', () => {
  /** How many 16-bit loads the module's code holds (the merged byte pairs). */
  async function halfwordLoads(program: Program): Promise<number> {
    const wabt = await (await import('wabt')).default();
    const m = wabt.readWasm(compileToWasm(program).bytes, { multi_value: true, sign_extension: true, mutable_globals: true });
    return (m.toText({}).match(/i64\.load16_u/g) ?? []).length;
  }
  const launder = 'ldxb %r3, [%r1]\nmov %r2, %r1\nadd %r2, %r3\n';

  it('two byte loads or-ed into a little-endian halfword become one load, in either order, at either width', async () => {
    const shapes = [
      ['ldxb %r4, [%r2+2]', 'lsh32 %r4, 8', 'ldxb %r5, [%r2+1]', 'or32 %r4, %r5'],
      ['ldxb %r5, [%r2+1]', 'ldxb %r4, [%r2+2]', 'lsh %r4, 8', 'or %r4, %r5'],
      ['ldxb %r4, [%r2+2]', 'lsh %r4, 8', 'ldxb %r5, [%r2+1]', 'or32 %r4, %r5'],
    ];
    for (const shape of shapes) {
      // The low byte dead (overwritten next), or read afterwards.
      for (const tail of ['mov %r5, 0\nmov %r0, %r4', 'mov %r0, %r4\nlsh %r0, 8\nadd %r0, %r5']) {
        const p = prog(`${launder}${shape.join('\n')}\n${tail}\nexit`);
        // The checked copy keeps its byte loads; the covered copy has one halfword load.
        expect(await halfwordLoads(p)).toBe(1);
        let faults = 0;
        for (let len = 1; len <= 8; len++) {
          for (let delta = 0; delta < len; delta++) {
            const mem = Uint8Array.from({ length: len }, (_, i) => (i === 0 ? delta : 0x31 * i + 7));
            if (!sameAsInterpreter(p, mem).ok) faults++;
          }
        }
        expect(faults).toBeGreaterThan(5);
      }
    }
  });

  it('big-endian pairs, signed bytes, other shifts and a base redefined between stay byte loads', async () => {
    const not = [
      'ldxb %r4, [%r2+1]\nlsh32 %r4, 8\nldxb %r5, [%r2+2]\nor32 %r4, %r5',
      'ldxb %r4, [%r2+2]\nlsh32 %r4, 16\nldxb %r5, [%r2+1]\nor32 %r4, %r5',
      'ldxb %r4, [%r2+2]\nlsh32 %r4, 8\nldxb %r5, [%r2+1]\nxor32 %r4, %r5',
      'ldxb %r2, [%r2+2]\nlsh32 %r2, 8\nldxb %r5, [%r2+1]\nor32 %r2, %r5\nmov %r4, %r2',
    ];
    for (const body of not) {
      const p = prog(`${launder}${body}\nmov %r0, %r4\nexit`);
      expect(await halfwordLoads(p)).toBe(0);
      for (let len = 1; len <= 6; len++) sameAsInterpreter(p, Uint8Array.from({ length: len }, (_, i) => (i === 0 ? len - 1 : 0x55 + i)));
    }
  });

  it('proven stack bytes merge too', async () => {
    const p = prog('stw [%r10-4], 0x1234abcd\nldxb %r4, [%r10-2]\nlsh32 %r4, 8\nldxb %r5, [%r10-3]\nor32 %r4, %r5\nmov %r0, %r4\nexit');
    expect(await halfwordLoads(p)).toBe(1);
    expect(sameAsInterpreter(p, undefined)).toMatchObject({ ok: true, r0: 0x34abn });
  });
});
