// The Wasm back end's speed paths, each against an oracle that does not share its shortcuts:
// - budget charging: pending charges settled once per merge, guarded fast copies of innermost loops
//   whose blocks charge without checks, and folded triangles charging under a select. Every budget
//   from 0 past what a run needs must end exactly as the IR interpreter ends on the same IR: the
//   same r0 or fault (kind, pc, message) and the same budget charged;
// - triangles folded into selects compute what the branches computed, on edge values;
// - checked accesses with the eBPF offset in the memarg, and the inline region search when the
//   guessed region misses: the same result or fault (address, size, message) as the interpreter;
// - the run_i32 entry and the run record agree with `run` and the exported globals; data sections
//   come with the module as data segments.
import { describe, expect, it, afterAll } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { evalIr } from '../compiler/ir/eval.js';
import { parseIr } from '../compiler/ir/text.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { loadVerified } from '../runtime/container.js';
import { EXPORT_RUN, EXPORT_RUN_I32, GLOBAL, RUN_RECORD_OFFSET } from '../backends/wasm/abi.js';
import { lowerModule } from '../backends/wasm/lower.js';
import { structureFunction, type Cmd } from '../backends/wasm/structure.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { Interpreter } from '../runtime/interp.js';
import { compileToWasm, instantiateWasm, type WasmCompileOptions } from '../runtime/wasm-engine.js';
import { PROGRAMS, sourcePath } from '../bench/programs.js';
import { compileBpf, removeScratch } from './support/clang.js';
import { generateProgram } from './support/progen.js';

afterAll(() => removeScratch());

const prog = (text: string): Program => rawProgram(assemble(text), 'test');

/** Budgets worth trying for a run that charges `total`: the small ones, the edges, and a spread. */
function budgets(total: number, spread: number): number[] {
  const set = new Set<number>([0, 1, 2, 3, 5, 7, total - 2, total - 1, total, total + 1]);
  for (let k = 1; k < spread; k++) set.add(Math.floor((total * k) / spread) + (k % 3));
  return [...set].filter((b) => b >= 0).sort((a, b) => a - b);
}

/** Runs `program` with every budget of `budgets(...)`: the wasm engine ends as evalIr does on the lowered IR. */
function sweep(program: Program, mem: Uint8Array | undefined, opts: WasmCompileOptions, label: string, spread = 24): { runs: number; budgetFaults: number } {
  const helpers = conformanceHelpers();
  const compiled = compileToWasm(program, opts);
  const inst = instantiateWasm(program, compiled, helpers);
  const full = evalIr(compiled.ir, { mem, helpers, program, budget: Infinity });
  let runs = 0;
  let budgetFaults = 0;
  for (const budget of budgets(full.steps, spread)) {
    const want: RunResult = evalIr(compiled.ir, { mem, helpers, program, budget });
    const got = inst.run({ mem, budget });
    expect({ label, budget, ...got }).toEqual({ label, budget, ...want });
    runs++;
    if (!want.ok && want.fault.kind === 'budget') budgetFaults++;
  }
  return { runs, budgetFaults };
}

/** The structured commands the lowering emits for every function of a program (the options lower.ts passes). */
function commands(program: Program, opts: WasmCompileOptions = {}): Cmd[] {
  const { ir } = compileToWasm(program, opts);
  const out: Cmd[] = [];
  for (const fn of ir.functions) {
    const charges = fn.blocks.some((b) => b.insts.some((i) => i.op === 'budget'));
    out.push(...structureFunction(fn, { foldable: () => true, fastLoops: charges }).cmds);
  }
  return out;
}

describe('budget charging stays exact on every speed path', () => {
  const loaded = PROGRAMS.map((p) => {
    const obj = compileBpf(sourcePath(p), { clang: 'clang', mcpu: 'v3' });
    return { p, program: loadVerified(obj, `${p.name}.v3.o`, { entry: p.name, helpers: conformanceHelpers() }).program };
  });

  it('the benchmark programs have guarded fast loops and folded triangles (so the sweeps below cover them)', () => {
    let guarded = 0;
    let folds = 0;
    let unchecked = 0;
    for (const { program } of loaded) {
      for (const c of commands(program)) {
        if (c.op === 'loop' && c.guard !== undefined) guarded++;
        if (c.op === 'fold') folds++;
        if (c.op === 'code' && c.unchecked) unchecked++;
      }
    }
    expect(guarded).toBeGreaterThanOrEqual(8);
    expect(folds).toBeGreaterThanOrEqual(4);
    expect(unchecked).toBeGreaterThan(guarded);
  });

  it.each(PROGRAMS.map((p) => [p.name]))('%s: every budget ends as the IR interpreter ends', (name) => {
    const { p, program } = loaded.find((l) => l.p.name === name)!;
    const mem = p.input();
    const a = sweep(program, mem, {}, `${name} (facts)`);
    const b = sweep(program, mem, { facts: 'none' }, `${name} (no facts)`, 12);
    expect(a.budgetFaults + b.budgetFaults).toBeGreaterThan(a.runs / 2);
  }, 120_000);

  it('generated programs without facts (every loop charged; calls, helpers and faults included)', () => {
    let faults = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const { program, mem } = generateProgram(seed);
      faults += sweep(program, mem, { facts: 'none' }, `seed ${seed}`, 8).budgetFaults;
    }
    expect(faults).toBeGreaterThan(300);
  }, 240_000);

  it('a loop whose iterations charge differently per path, with a local call in a second loop', () => {
    // Loop 1 (fast-copied): a triangle and a diamond per iteration; loop 2 calls a function,
    // so it keeps its checks; the callee charges its own loop.
    const text = `
      mov %r6, 0
      mov %r0, 0
      jeq %r1, 1, t
    a:
      mov %r3, %r6
      and %r3, 3
      jeq %r3, 0, +1
      add %r0, 7
      jgt %r3, 1, +2
      add %r0, 1
      ja +1
      mul %r0, 3
      add %r6, 1
      jlt %r6, 40, a
    t:
      mov %r9, %r0
      mov %r7, 0
    b:
      mov %r1, %r7
      call local f
      add %r9, %r0
      add %r7, 1
      jlt %r7, 5, b
      mov %r0, %r9
      exit
    f:
      mov %r2, 0
    c:
      add %r2, 1
      jlt %r2, %r1, c
      mov %r0, %r2
      exit`;
    const program = prog(text);
    const cmds = commands(program, { facts: 'none' });
    expect(cmds.filter((c) => c.op === 'loop' && c.guard !== undefined)).toHaveLength(2); // loop a and callee loop c
    expect(cmds.some((c) => c.op === 'fold')).toBe(true);
    // The run charges a few hundred: this tries nearly every budget up to that.
    const r = sweep(program, undefined, { facts: 'none' }, 'mixed loops', 400);
    expect(r.budgetFaults).toBeGreaterThan(300);
  });
});

describe('folded triangles compute what the branches computed', () => {
  // r0 = (a COND b) ? x : y in every condition and width, on edge values, through the IR
  // interpreter (branches) and the wasm engine (selects).
  const conds = ['jeq', 'jne', 'jgt', 'jge', 'jlt', 'jle', 'jsgt', 'jsge', 'jslt', 'jsle', 'jset'];
  const edges = [0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn];
  it('every condition at both widths', () => {
    let folded = 0;
    for (const cond of conds) {
      for (const w of ['', '32']) {
        const text = `
          ldxdw %r2, [%r1]
          ldxdw %r3, [%r1+8]
          lddw %r0, 0x1122334455667788
          j${cond.slice(1)}${w} %r2, %r3, +2
          mov32 %r0, %r2
          add %r0, -5
          exit`;
        const program = prog(text);
        const cmds = commands(program);
        if (cmds.some((c) => c.op === 'fold')) folded++;
        const compiled = compileToWasm(program);
        const inst = instantiateWasm(program, compiled, conformanceHelpers());
        for (const a of edges) {
          for (const b of edges) {
            const mem = new Uint8Array(16);
            const v = new DataView(mem.buffer);
            v.setBigUint64(0, a, true);
            v.setBigUint64(8, b, true);
            const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem });
            expect({ cond, w, a, b, r: inst.run({ mem }) }).toEqual({ cond, w, a, b, r: { ...want, steps: 0 } });
          }
        }
      }
    }
    expect(folded).toBe(conds.length * 2);
  });

  it('an arm of several definitions, each reading the ones before it (hiDead and 32-bit ones too)', () => {
    const m = parseIr(`origin "fold"
function f (start 0) {
b0:
  r2 = load.u64 r1+0 [proven mem]   ; @0
  r3 = load.u64 r1+8 [proven mem]   ; @1
  r0 = const 0x5                    ; @2
  br.slt.64 r2, r3, b1, b2          ; @3
b1:
  r4.lo = add.32 r2, 9              ; @4
  r0 = mul.64 r4, r3                ; @5
  r3 = sext8.64 r0                  ; @6
  r0 = xor.32 r0, r3                ; @7
  jump b2                           ; @8
b2:
  r0 = add.64 r0, r3                ; @9
  ret                               ; @10
}`);
    const cmds = structureFunction(m.functions[0], { foldable: () => true }).cmds;
    expect(cmds.filter((c) => c.op === 'fold')).toHaveLength(1);
    const lowered = lowerModule(m);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(lowered.bytes), { env: { helper: () => 0n } });
    const memory = instance.exports.memory as WebAssembly.Memory;
    const runI32 = instance.exports[EXPORT_RUN_I32] as (len: number, lo: number, hi: number) => number;
    for (const a of edges) {
      for (const b of edges) {
        if (memory.buffer.byteLength < lowered.layout.memBase + 16) memory.grow(1);
        const view = new DataView(memory.buffer);
        view.setBigUint64(lowered.layout.memBase, a, true);
        view.setBigUint64(lowered.layout.memBase + 8, b, true);
        const mem = new Uint8Array(memory.buffer.slice(lowered.layout.memBase, lowered.layout.memBase + 16));
        const want = evalIr(m, { mem });
        expect(runI32(16, 1000, 0)).toBe(0);
        expect({ a, b, r0: view.getBigUint64(RUN_RECORD_OFFSET, true) }).toEqual({ a, b, r0: want.ok ? want.r0 : -1n });
      }
    }
  });
});

describe('checked accesses: memarg offsets and the inline region search', () => {
  const rodata = (text: string): Program => ({
    ...prog(text),
    data: [{ name: '.rodata', bytes: Uint8Array.from({ length: 16 }, (_, i) => i + 1), writable: false }, { name: '.data', bytes: new Uint8Array(8), writable: true }],
    relocs: [{ slot: 0, section: 0, addend: 0 }, { slot: 2, section: 1, addend: 0 }],
  });

  function same(program: Program, mem?: Uint8Array): RunResult {
    const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({ mem });
    const got = instantiateWasm(program, compileToWasm(program), conformanceHelpers()).run({ mem });
    if (want.ok) expect(got).toMatchObject({ ok: true, r0: want.r0 });
    else expect(got).toMatchObject({ ok: false, fault: want.fault });
    return got;
  }

  it('every offset around mem\'s ends, loads and stores of each size, from pointers that the verifier cannot place', () => {
    let faults = 0;
    for (const size of ['b', 'h', 'w', 'dw']) {
      for (const delta of [-40, -9, -8, -1, 0, 1, 7, 8, 9, 16, 24]) {
        for (const off of [-32768, -16, -1, 0, 1, 15, 32767]) {
          // r2 = mem + delta * 1 (the multiply hides it from the verifier), then the access at off.
          const base = `ldxb %r3, [%r1]\nmul %r3, 0\nadd %r3, ${delta}\nmov %r2, %r1\nadd %r2, %r3\n`;
          const mem = Uint8Array.from({ length: 24 }, (_, i) => 0xa0 + i);
          const load = same(prog(`${base}ldx${size} %r0, [%r2${off < 0 ? off : `+${off}`}]\nexit`), mem);
          const store = same(prog(`${base}st${size} [%r2${off < 0 ? off : `+${off}`}], 0x5a\nldxdw %r0, [%r1]\nexit`), mem);
          faults += Number(!load.ok) + Number(!store.ok);
        }
      }
    }
    expect(faults).toBeGreaterThan(100);
  });

  it('a mem-guessed pointer that lands in the stack, .rodata or .data: read there, or fault naming the region', () => {
    // r2 = r10 - 8 laundered through mem so the verifier cannot tell it is the stack.
    const launder = 'ldxb %r3, [%r1]\nmul %r3, 0\n';
    expect(same(prog(`${launder}stdw [%r10-8], 77\nmov %r2, %r10\nadd %r2, %r3\nldxdw %r0, [%r2-8]\nexit`), new Uint8Array(4)))
      .toMatchObject({ ok: true, r0: 77n });
    // .rodata: readable, not writable (permission fault, with its address and size).
    const ro = rodata(`lddw %r2, 0\nlddw %r4, 0\n${launder}add %r2, %r3\nldxw %r0, [%r2+4]\nexit`);
    expect(same(ro, new Uint8Array(4))).toMatchObject({ ok: true, r0: 0x08070605n });
    const roWrite = same(rodata(`lddw %r2, 0\nlddw %r4, 0\n${launder}add %r2, %r3\nsth [%r2+14], 1\nexit`), new Uint8Array(4));
    expect(roWrite).toMatchObject({ ok: false, fault: { kind: 'permission', size: 2 } });
    // .data: writable; and one byte past it is in no region.
    expect(same(rodata(`lddw %r2, 0\nlddw %r4, 0\n${launder}add %r4, %r3\nstxdw [%r4], %r4\nldxdw %r0, [%r4]\nexit`), new Uint8Array(4)).ok).toBe(true);
    expect(same(rodata(`lddw %r2, 0\nlddw %r4, 0\n${launder}add %r4, %r3\nldxb %r0, [%r4+8]\nexit`), new Uint8Array(4)))
      .toMatchObject({ ok: false, fault: { kind: 'out-of-bounds', size: 1 } });
  });

  it('modules with many regions search through the module\'s search functions, with the same results', async () => {
    // 7 data sections: 9 regions with the stack and mem, past the inline search's limit.
    const data = Array.from({ length: 7 }, (_, k) => ({ name: `.d${k}`, bytes: Uint8Array.from({ length: 8 }, (_, i) => k * 16 + i), writable: k % 2 === 0 }));
    const launder = 'ldxb %r3, [%r1]\nmul %r3, 0\n';
    const many = (k: number, body: string): Program => ({
      ...prog(`lddw %r2, 0\n${launder}add %r2, %r3\n${body}\nexit`),
      data,
      relocs: [{ slot: 0, section: k, addend: 0 }],
    });
    const { compileWasmAot } = await import('../backends/wasm/aot.js');
    expect(String(await compileWasmAot(many(0, 'ldxb %r0, [%r2]'), { optimize: false, emit: 'wat' }))).toMatch(/call \$find_1_r/);
    let faults = 0;
    for (let k = 0; k < data.length; k++) {
      for (const body of ['ldxw %r0, [%r2+4]', 'ldxw %r0, [%r2+5]', 'stxb [%r2+7], %r3\nldxdw %r0, [%r2]', 'ldxb %r0, [%r2-1]', 'stxdw [%r2], %r2\nmov %r0, 1']) {
        if (!same(many(k, body), new Uint8Array(4)).ok) faults++;
      }
    }
    expect(faults).toBeGreaterThanOrEqual(data.length * 2);
  });

  it('positive offsets go into the memarg: proven and checked accesses alike', async () => {
    const text = 'ldxdw %r0, [%r1+16]\nldxw %r3, [%r1+4]\nadd %r0, %r3\nstxw [%r10-12], %r0\nldxw %r4, [%r10-12]\nadd %r0, %r4\nexit';
    const program = prog(text);
    const mem = Uint8Array.from({ length: 24 }, (_, i) => i * 3);
    expect(same(program, mem).ok).toBe(true);
    const { compileWasmAot } = await import('../backends/wasm/aot.js');
    const wat = String(await compileWasmAot(program, { optimize: false, emit: 'wat' }));
    expect(wat).toMatch(/i64\.load offset=16/);
    expect(wat).toMatch(/i64\.load32_u offset=4/);
  });
});

describe('the run_i32 entry and the module\'s data segments', () => {
  it('run_i32 and run agree: r0, status, the charged budget, mem_len, and fault_size reset between runs', () => {
    const program = prog('ldxb %r3, [%r1]\njeq %r3, 0, +3\nmov %r0, %r2\nadd %r0, 1\nexit\nldxb %r0, [%r1+100]\nexit');
    const compiled = compileToWasm(program, { facts: 'none' });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), { env: { helper: () => 0n } });
    const x = instance.exports;
    const memory = x.memory as WebAssembly.Memory;
    const runI32 = x[EXPORT_RUN_I32] as (len: number, lo: number, hi: number) => number;
    const run = x[EXPORT_RUN] as () => bigint;
    const g = (name: string): WebAssembly.Global => x[name] as WebAssembly.Global;
    const base = compiled.layout.memBase;
    memory.grow(1);
    const u8 = new Uint8Array(memory.buffer);
    // A faulting run first, so fault_size is set.
    u8[base] = 0;
    expect(runI32(8, 50, 0)).toBe(1);
    expect(g(GLOBAL.faultSize).value).toBe(1);
    expect(g(GLOBAL.faultAddr).value).toBe(BigInt(base + 100));
    u8[base] = 9;
    expect(runI32(8, 50, 0)).toBe(0);
    const view = new DataView(memory.buffer);
    expect(view.getBigUint64(RUN_RECORD_OFFSET, true)).toBe(9n);
    expect(g(GLOBAL.faultSize).value).toBe(0);
    expect(g(GLOBAL.memLen).value).toBe(8n);
    // The same through the globals.
    g(GLOBAL.memLen).value = 8n;
    g(GLOBAL.budget).value = 50n;
    expect(run()).toBe(9n);
    expect(g(GLOBAL.status).value).toBe(0);
    // No mem: 0xffffffff; r1 = r2 = 0, so the load faults at address 0.
    expect(runI32(-1, 50, 0)).toBe(1);
    expect(g(GLOBAL.memLen).value).toBe(-1n);
    expect(g(GLOBAL.faultAddr).value).toBe(0n);
  });

  it('run_i32 takes the budget as hi:lo halves and records what it charged', () => {
    const program = prog('mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 1000, l\nexit');
    const compiled = compileToWasm(program, { facts: 'none' });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), { env: { helper: () => 0n } });
    const runI32 = instance.exports[EXPORT_RUN_I32] as (len: number, lo: number, hi: number) => number;
    const budget = instance.exports[GLOBAL.budget] as WebAssembly.Global;
    const view = (): DataView => new DataView((instance.exports.memory as WebAssembly.Memory).buffer);
    expect(runI32(-1, 100_000, 0)).toBe(0);
    const charged = view().getBigUint64(RUN_RECORD_OFFSET + 8, true);
    expect(charged).toBeGreaterThan(1000n);
    expect(budget.value).toBe(100_000n - charged);
    // 2^32 + 5 (lo 5, hi 1), and 2^63 (hi 0x80000000 as an i32): the same charge.
    expect(runI32(-1, 5, 1)).toBe(0);
    expect(view().getBigUint64(RUN_RECORD_OFFSET + 8, true)).toBe(charged);
    expect(budget.value).toBe((1n << 32n) + 5n - charged);
    expect(runI32(-1, 0, -0x80000000)).toBe(0);
    expect(budget.value).toBe(BigInt.asIntN(64, (1n << 63n) - charged));
    // One less than the charge runs out.
    expect(runI32(-1, Number(charged) - 1, 0)).toBe(3);
  });

  it('budgets past 2^53 and Infinity charge the same as small ones on the engine', () => {
    const program = prog('mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 1000, l\nexit');
    const inst = instantiateWasm(program, compileToWasm(program, { facts: 'none' }), conformanceHelpers());
    const small = inst.run({ budget: 5000 });
    expect(small.ok).toBe(true);
    expect(small.steps).toBeGreaterThan(0);
    for (const budget of [2 ** 53 + 2, 2 ** 63, 2 ** 70, Infinity]) expect(inst.run({ budget })).toEqual(small);
    expect(inst.run({ budget: small.steps - 1 })).toMatchObject({ ok: false, fault: { kind: 'budget' } });
  });

  it('data sections are data segments of the module; read-only ones survive runs untouched, writable ones are restored', () => {
    const program: Program = {
      ...prog('lddw %r2, 0\nlddw %r3, 0\nldxdw %r0, [%r2]\nldxdw %r4, [%r3]\nadd %r0, %r4\nadd %r4, 1\nstxdw [%r3], %r4\nexit'),
      data: [
        { name: '.rodata', bytes: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]), writable: false },
        { name: '.data', bytes: Uint8Array.from([16, 0, 0, 0, 0, 0, 0, 0]), writable: true },
      ],
      relocs: [{ slot: 0, section: 0, addend: 0 }, { slot: 2, section: 1, addend: 0 }],
    };
    const compiled = compileToWasm(program);
    const raw = new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), { env: { helper: () => 0n } });
    const bytes = new Uint8Array((raw.exports.memory as WebAssembly.Memory).buffer);
    program.data.forEach((d, i) => expect(bytes.slice(compiled.layout.dataBase[i], compiled.layout.dataBase[i] + d.bytes.length)).toEqual(d.bytes));
    const inst = instantiateWasm(program, compiled, conformanceHelpers());
    const want = new Interpreter(program, { helpers: conformanceHelpers() }).run({});
    expect(want.ok).toBe(true);
    for (let k = 0; k < 3; k++) expect(inst.run({})).toMatchObject({ ok: true, r0: (want as { r0: bigint }).r0 });
  });
});
