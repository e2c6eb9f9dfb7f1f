// Versioned loops of the Wasm back end: an innermost loop that walks memory through a pointer (or
// a base plus a scaled index) gets a copy entered behind one range test at loop entry, in which the
// walk's accesses run unchecked. The test must imply that every access of every iteration the loop
// can run before its counted exit is in bounds (and writable for stores); when it fails, the
// original loop runs with all its checks, so a fault is the interpreter's: same pc, kind, address.
// Every sweep below compares against the reference interpreter (and, for budgets, the IR
// interpreter on the very IR that was lowered), at each trip count and start around the region's end.
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { evalIr } from '../compiler/ir/eval.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { loopVersions } from '../backends/wasm/lower.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';

const prog = (text: string): Program => rawProgram(assemble(text), 'test');

function sameAsInterpreter(program: Program, mem: Uint8Array | undefined, opts: WasmCompileOptions = {}): RunResult {
  const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem });
  const got = instantiateWasm(program, compileToWasm(program, opts), conformanceHelpers()).run({ mem });
  if (want.ok) expect(got).toMatchObject({ ok: true, r0: want.r0 });
  // An endless run: compiled code charges a subset of the interpreter's count (compiler/ir/ir.ts),
  // so both run out, at pcs of their own.
  else if (want.fault.kind === 'budget') expect(got).toMatchObject({ ok: false, fault: { kind: 'budget' } });
  else expect(got).toMatchObject({ ok: false, fault: want.fault });
  return got;
}

/** Every budget from 0 to one past what the whole run charges: wasm ends exactly as evalIr. */
function everyBudget(program: Program, mem: Uint8Array, opts: WasmCompileOptions, label: string): void {
  const helpers = conformanceHelpers();
  const compiled = compileToWasm(program, opts);
  const inst = instantiateWasm(program, compiled, helpers);
  const full = evalIr(compiled.ir, { mem, helpers, program, budget: Infinity });
  for (let budget = 0; budget <= full.steps + 1; budget++) {
    const want = evalIr(compiled.ir, { mem, helpers, program, budget });
    expect({ label, budget, ...inst.run({ mem, budget }) }).toEqual({ label, budget, ...want });
  }
}

function versions(program: Program, opts: WasmCompileOptions = {}): ReturnType<typeof loopVersions> {
  const { ir, layout } = compileToWasm(program, opts);
  return ir.functions.flatMap((fn) => loopVersions(fn, layout));
}

/** mem = [n (u32), start (u32), then len - 8 bytes of data]. */
function memOf(len: number, n: number, start: number): Uint8Array {
  const mem = Uint8Array.from({ length: len }, (_, i) => (i * 37 + 11) & 0xff);
  new DataView(mem.buffer).setUint32(0, n >>> 0, true);
  new DataView(mem.buffer).setUint32(4, start >>> 0, true);
  return mem;
}

/** Runs every n in [0, maxN] and start in [0, len + 4) with and without facts; returns (ok, faults). */
function sweep(program: Program, len: number, maxN: number): { ok: number; faults: number } {
  let ok = 0;
  let faults = 0;
  for (let n = 0; n <= maxN; n++) {
    for (let start = 0; start < len + 4; start++) {
      const mem = memOf(len, n, start);
      for (const opts of [{}, { facts: 'none' }] as WasmCompileOptions[]) {
        if (sameAsInterpreter(program, mem, opts).ok) ok++;
        else faults++;
      }
    }
  }
  return { ok, faults };
}

// r2 = mem + start (the verifier cannot place it: every access through r2 is checked), r6 = n.
const prologue = 'ldxw %r6, [%r1]\nldxw %r7, [%r1+4]\nmov %r2, %r1\nadd %r2, %r7\nmov %r0, 0\n';

describe('versioned loops', () => {
  // fletcher32's shape; `jeq` keeps n >= 1 so the verifier proves the loop bounded (no budget).
  const pairs = (guard: string): Program => prog(`${prologue}and %r6, 31\n${guard}
    l:
      ldxb %r3, [%r2]
      ldxb %r4, [%r2+1]
      lsh %r4, 8
      or %r3, %r4
      add %r0, %r3
      add %r2, 2
      sub %r6, 1
      jne %r6, 0, l
    out:
      exit`);

  it('a pointer walk with a counter: one entry test over the bytes each iteration touches', () => {
    const p = pairs('jeq %r6, 0, out');
    const v = versions(p);
    expect(v).toHaveLength(1);
    expect(v[0].count).toMatchObject({ reg: 6, w: 64, up: false, bound: { imm: 0 } });
    expect(v[0].tests).toEqual([expect.objectContaining({ base: 2, lo: 0, len: 2, step: 2 })]);
    expect(v[0].pcs).toEqual([7, 8]);
    // The proven loop charges nothing: its versioned copy has no budget guard, only the counter's.
    const { ir } = compileToWasm(p);
    const loopCharges = ir.functions[0].blocks.filter((b) => b.insts.some((i) => i.op === 'load')).flatMap((b) => b.insts.filter((i) => i.op === 'budget'));
    expect(loopCharges).toEqual([]);
  });

  it('every trip count and start around mem\'s end: in bounds runs, or the checked loop faults where the interpreter does', () => {
    for (const guard of ['jeq %r6, 0, out', '']) {
      const { ok, faults } = sweep(pairs(guard), 40, 22);
      expect(ok).toBeGreaterThan(300);
      expect(faults).toBeGreaterThan(300);
    }
  });

  it('a negative step with loads below and a store above the pointer', () => {
    const p = prog(`${prologue}and %r6, 15\njeq %r6, 0, out
      l:
        ldxw %r3, [%r2]
        ldxh %r4, [%r2-2]
        add %r0, %r3
        add %r0, %r4
        stb [%r2+3], 1
        sub %r2, 4
        sub %r6, 1
        jne %r6, 0, l
      out:
        exit`);
    const v = versions(p);
    expect(v).toHaveLength(1);
    expect(v[0].tests).toEqual([expect.objectContaining({ base: 2, lo: -2, len: 6, step: -4 })]);
    expect(v[0].pcs).toHaveLength(3);
    const { ok, faults } = sweep(p, 36, 12);
    expect(ok).toBeGreaterThan(100);
    expect(faults).toBeGreaterThan(100);
  });

  it('a base plus a scaled index counted up to a bound register, with `jlt` and with `jne`', () => {
    for (const test of ['jlt %r7, %r6, l', 'jne %r7, %r6, l']) {
      const p = prog(`ldxw %r6, [%r1]\nldxw %r7, [%r1+4]\nmov %r0, 0
        l:
          mov %r5, %r7
          lsh %r5, 2
          mov %r4, %r1
          add %r4, %r5
          ldxw %r3, [%r4]
          add %r0, %r3
          add %r7, 1
          ${test}
          exit`);
      const v = versions(p);
      expect(v).toHaveLength(1);
      expect(v[0].count).toMatchObject({ reg: 7, up: true, bound: { reg: 6 }, strict: test.startsWith('jlt') });
      expect(v[0].tests).toEqual([expect.objectContaining({ base: 1, index: { reg: 7, shift: 2 }, lo: 0, len: 4, step: 4 })]);
      // n is the bound, start the first index: the walk reads mem[4 * start ..].
      let ok = 0;
      let faults = 0;
      for (let n = 0; n <= 14; n++) {
        for (let start = 0; start <= 14; start++) {
          for (const opts of [{}, { facts: 'none' }] as WasmCompileOptions[]) {
            // Lengths on and off the walk's 4-byte grid.
            for (const len of [44, 47]) {
              if (sameAsInterpreter(p, memOf(len, n, start), opts).ok) ok++;
              else faults++;
            }
          }
        }
      }
      expect(ok).toBeGreaterThan(50);
      expect(faults).toBeGreaterThan(50);
    }
  });

  it('a pointer that advances on some iterations only: accesses before and after its increment', () => {
    const p = prog(`${prologue}and %r6, 31
jeq %r6, 0, out
      l:
        ldxb %r3, [%r2]
        jset %r3, 1, skip
        add %r2, 1
      skip:
        ldxb %r4, [%r2+1]
        add %r0, %r4
        sub %r6, 1
        jne %r6, 0, l
      out:
        exit`);
    const v = versions(p);
    expect(v).toHaveLength(1);
    // The second load sees the pointer before or after this iteration's increment.
    expect(v[0].tests).toEqual([expect.objectContaining({ base: 2, lo: 0, len: 3, step: 1 })]);
    const { ok, faults } = sweep(p, 30, 24);
    expect(ok).toBeGreaterThan(100);
    expect(faults).toBeGreaterThan(100);
  });

  it('the budget runs out in the versioned copy exactly where the IR interpreter says', () => {
    const p = pairs('');
    for (const [n, start] of [[9, 8], [16, 8], [17, 8], [3, 30]]) everyBudget(p, memOf(40, n, start), { facts: 'none' }, `n ${n} start ${start}`);
  });

  it('a wrapped counter (0 decremented) fails the entry test: the checked loop faults at mem\'s end', () => {
    const p = pairs('');
    for (const start of [8, 9, 20, 39]) {
      for (const opts of [{}, { facts: 'none' }] as WasmCompileOptions[]) {
        expect(sameAsInterpreter(p, memOf(40, 0, start), opts)).toMatchObject({ ok: false, fault: { kind: 'out-of-bounds' } });
      }
    }
    // A 32-bit counter: only its low half counts, and 0 wraps at 32 bits.
    const p32 = prog(`${prologue}
      l:
        ldxb %r3, [%r2]
        add %r0, %r3
        add %r2, 1
        add32 %r6, -1
        jne32 %r6, 0, l
        exit`);
    expect(versions(p32)[0].count).toMatchObject({ w: 32, up: false });
    for (const n of [0, 1, 5, 31, 32, 33, 0x100000005]) {
      const mem = memOf(40, n, 8);
      sameAsInterpreter(p32, mem);
      sameAsInterpreter(p32, mem, { facts: 'none' });
    }
  });

  it('a walk over read-only data: loads are covered, a store into it is not and faults with permission', () => {
    const rodata = (store: string): Program => ({
      ...prog(`lddw %r2, 0\nldxw %r6, [%r1]\nldxw %r7, [%r1+4]\nadd %r2, %r7\nmov %r0, 0
        l:
          ldxb %r3, [%r2]
          ${store}
          add %r0, %r3
          add %r2, 1
          sub %r6, 1
          jne %r6, 0, l
          exit`),
      data: [{ name: '.rodata', bytes: Uint8Array.from({ length: 12 }, (_, i) => i + 1), writable: false }],
      relocs: [{ slot: 0, section: 0, addend: 0 }],
    });
    const loads = rodata('');
    const v = versions(loads);
    expect(v).toHaveLength(1);
    expect(v[0].pcs).toHaveLength(1);
    let ok = 0;
    for (let n = 0; n <= 14; n++) {
      for (let start = 0; start <= 13; start++) {
        if (sameAsInterpreter(loads, memOf(8, n, start)).ok) ok++;
      }
    }
    expect(ok).toBeGreaterThan(50);
    const stores = rodata('stb [%r2], 7');
    // The store stays checked (a write guessed into a read-only region); the load is still covered.
    expect(versions(stores).flatMap((x) => x.pcs)).toHaveLength(1);
    for (const n of [1, 3]) {
      expect(sameAsInterpreter(stores, memOf(8, n, 2))).toMatchObject({ ok: false, fault: { kind: 'permission' } });
    }
  });
});
