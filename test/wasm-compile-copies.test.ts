// Loop copies emitted from one recording (lower.ts `Template`): a block emitted several times (the
// unrolled, fast and versioned copies of a loop) is lowered once and copied, with the constants that
// depend on the budget charge pending at its entry written anew. These programs put every such
// constant in copied blocks (budget checks, the charge written back when a check fails or a local
// call is refused, the charge settled before a local call) and run every budget: the module must end
// as the IR interpreter does on the lowered IR, charge for charge.
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { evalIr } from '../compiler/ir/eval.js';
import type { Inst } from '../compiler/ir/ir.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { loopVersions } from '../backends/wasm/lower.js';
import { structureFunction } from '../backends/wasm/structure.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';

const prog = (text: string): Program => rawProgram(assemble(text), 'copies');

/** Every budget from 0 to one past the whole run's charge; returns how many runs ran out of budget. */
function everyBudget(program: Program, mem: Uint8Array, opts: WasmCompileOptions, label: string): number {
  const helpers = conformanceHelpers();
  const compiled = compileToWasm(program, opts);
  const inst = instantiateWasm(program, compiled, helpers);
  const full = evalIr(compiled.ir, { mem, helpers, program, budget: Infinity });
  let outOfBudget = 0;
  for (let budget = 0; budget <= full.steps + 1; budget++) {
    const want = evalIr(compiled.ir, { mem, helpers, program, budget });
    expect({ label, budget, ...inst.run({ mem, budget }) }).toEqual({ label, budget, ...want });
    if (!want.ok && want.fault.kind === 'budget') outOfBudget++;
  }
  return outOfBudget;
}

/** How many times the lowering emits a block of the entry function, at most (its checked loads guess mem). */
function maxCopies(program: Program, opts: WasmCompileOptions): number {
  const { ir, layout } = compileToWasm(program, opts);
  const fn = ir.functions[0];
  const mem = layout.regions.length - 1;
  const fastLoops = fn.blocks.some((b) => b.insts.some((i) => i.op === 'budget'));
  const regionOf = (i: Inst): number => (i.op === 'load' && i.access.verdict !== 'proven' ? mem : -1);
  const { cmds } = structureFunction(fn, { fastLoops, regionOf });
  const n = new Map<number, number>();
  for (const c of cmds) if (c.op === 'code') n.set(c.block, (n.get(c.block) ?? 0) + 1);
  return Math.max(...n.values());
}

/** mem = [n (u32), start (u32), then bytes]. */
function memOf(len: number, n: number, start: number): Uint8Array {
  const mem = Uint8Array.from({ length: len }, (_, i) => (i * 29 + 3) & 0xff);
  new DataView(mem.buffer).setUint32(0, n >>> 0, true);
  new DataView(mem.buffer).setUint32(4, start >>> 0, true);
  return mem;
}

// r7 = mem + start walks two bytes per iteration, r6 counts down: a versioned loop (its loads are
// checked: the verifier cannot place r7).
const walk = (body: string): Program => prog(`ldxw %r6, [%r1]
  ldxw %r7, [%r1+4]
  add %r7, %r1
  mov %r0, 0
  and %r6, 15
  jeq %r6, 0, out
  l:
    ldxb %r3, [%r7]
    ldxb %r4, [%r7+1]
    add %r0, %r3
    ${body}
    add %r0, %r4
    add %r7, 2
    sub %r6, 1
    jne %r6, 0, l
  out:
    exit
  f:
    add %r0, 1
    exit`);

describe('copied loop blocks charge and fault as the interpreter', () => {
  it('a walk with a local call in its body: settled charges and refused calls in every copy', () => {
    const p = walk('call local f');
    expect(loopVersions(compileToWasm(p).ir.functions[0], compileToWasm(p).layout)).toHaveLength(1);
    // Proven bounded with the facts (no charges); charged without them.
    let outOfBudget = 0;
    for (const opts of [{}, { facts: 'none' }] as WasmCompileOptions[]) {
      expect(maxCopies(p, opts)).toBeGreaterThan(1);
      for (const [n, start] of [[5, 8], [9, 20], [3, 27]]) {
        outOfBudget += everyBudget(p, memOf(32, n, start), opts, `call n=${n} start=${start} ${opts.facts ?? 'facts'}`);
      }
    }
    expect(outOfBudget).toBeGreaterThan(20);
  });

  it('a walk without calls: unrolled fast copies, checks that fail mid-copy', () => {
    const p = walk('xor %r0, %r3');
    let outOfBudget = 0;
    for (const opts of [{}, { facts: 'none' }] as WasmCompileOptions[]) {
      expect(maxCopies(p, opts)).toBeGreaterThan(4);
      // start 27: the walk leaves mem (32 bytes) part way, so some copy's check fails.
      for (const [n, start] of [[15, 8], [7, 27], [1, 30]]) {
        outOfBudget += everyBudget(p, memOf(32, n, start), opts, `walk n=${n} start=${start} ${opts.facts ?? 'facts'}`);
      }
    }
    expect(outOfBudget).toBeGreaterThan(10);
  });
});
