// The Wasm back end end to end: the conformance suite on the wasm engine, every way a run can end
// (each fault kind, at the interpreter's pc with the interpreter's message), the sandbox (the host's
// buffers and regions outside the module untouched), structured control flow including an
// irreducible graph, the module layout against runtime/layout.ts, and the AOT output (wabt-valid,
// and still the same results after binaryen's -O).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import wabtInit from 'wabt';
import { runTestText } from '../cli/conformance.js';
import { assemble } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr } from '../compiler/ir/eval.js';
import { parseIr } from '../compiler/ir/text.js';
import { programOfTest } from '../compiler/load.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { compileWasmAot } from '../backends/wasm/aot.js';
import { GLOBAL, STATUS_STOPPED } from '../backends/wasm/abi.js';
import { lowerModule, moduleLayout } from '../backends/wasm/lower.js';
import { structureFunction } from '../backends/wasm/structure.js';
import type { Engine } from '../runtime/engine.js';
import { FAULT_CODES, HelperError, type Fault, type RunResult } from '../runtime/errors.js';
import { conformanceHelpers, HelperRegistry, type HelperDef } from '../runtime/helpers.js';
import { Interpreter, MAX_CALL_DEPTH, STACK_FRAME } from '../runtime/interp.js';
import { containerLayout } from '../runtime/layout.js';
import type { RegionSpec } from '../runtime/regions.js';
import { compileToWasm, instantiateWasm, WasmInstance, wasmEngine, WasmRunError, type CompiledWasm } from '../runtime/wasm-engine.js';
import { CONFORMANCE_NEGATIVE, CONFORMANCE_TESTS, dataFiles } from './support/paths.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Wabt;
beforeAll(async () => {
  wabt = await wabtInit();
});

const STACK_BASE = 0x10000;
const STACK_TOP = STACK_BASE + MAX_CALL_DEPTH * STACK_FRAME;
const MEM_BASE = 0x12000;

const prog = (text: string): Program => rawProgram(assemble(text), 'test');

interface BothOptions {
  mem?: Uint8Array;
  budget?: number;
  helpers?: HelperRegistry;
  regions?: () => RegionSpec[];
}

/** Runs a program on the interpreter and on the wasm engine; returns both results. */
function both(p: Program | string, opts: BothOptions = {}): { interp: RunResult; wasm: RunResult } {
  const program = typeof p === 'string' ? prog(p) : p;
  const helpers = opts.helpers ?? conformanceHelpers();
  const interp = new Interpreter(program, { helpers }).run({ mem: opts.mem, budget: opts.budget, regions: opts.regions?.() });
  const regions = opts.regions?.();
  const compiled = compileToWasm(program, { hostRegions: regions?.map((r) => ({ name: r.name, size: r.bytes.length, writable: r.writable })) });
  const wasm = instantiateWasm(program, compiled, helpers).run({ mem: opts.mem, budget: opts.budget, regions });
  return { interp, wasm };
}

function faultOf(r: RunResult): Fault {
  if (r.ok) throw new Error(`expected a fault, got r0 = 0x${r.r0.toString(16)}`);
  return r.fault;
}

/** Both engines fault alike: kind, pc, message, address and size. Returns the wasm fault. */
function sameFault(p: Program | string, opts: BothOptions = {}): Fault {
  const { interp, wasm } = both(p, opts);
  const fi = faultOf(interp);
  const fw = faultOf(wasm);
  expect(fw).toEqual(fi);
  return fw;
}

function sameResult(p: Program | string, opts: BothOptions = {}): bigint {
  const { interp, wasm } = both(p, opts);
  if (!interp.ok) throw new Error(`the interpreter faulted: ${interp.fault.message}`);
  expect(wasm).toMatchObject({ ok: true, r0: interp.r0 });
  return interp.r0;
}

// ---------------------------------------------------------------------------------------------

describe('conformance suite on the wasm engine', () => {
  const files = dataFiles(CONFORMANCE_TESTS);
  it('has all 313 tests', () => expect(files).toHaveLength(313));
  it.each(files.map((f) => [basename(f), f]))('%s passes', async (_name, f) => {
    const o = await runTestText(basename(f, '.data'), readFileSync(f, 'utf8'), wasmEngine, conformanceHelpers());
    expect(o.why).toBe('');
    expect(o.pass).toBe(true);
  });

  it('ends every test as the IR interpreter does on the IR it lowered, charged budget included', () => {
    for (const f of files) {
      const test = parseDataFile(readFileSync(f, 'utf8'));
      const program = programOfTest(test, basename(f));
      const compiled = compileToWasm(program);
      const want = evalIr(compiled.ir, { mem: test.mem, helpers: conformanceHelpers(), program });
      const got = instantiateWasm(program, compiled, conformanceHelpers()).run({ mem: test.mem });
      expect({ f, ...got }).toEqual({ f, ...want });
    }
  });
});

describe('negative conformance files', () => {
  const files = dataFiles(CONFORMANCE_NEGATIVE).filter((f) => /^-- error/m.test(readFileSync(f, 'utf8')));
  it('has the files that expect an error', () => expect(files.length).toBeGreaterThanOrEqual(50));
  it.each(files.map((f) => [basename(f), f]))('%s is refused', async (_name, f) => {
    const o = await runTestText(basename(f, '.data'), readFileSync(f, 'utf8'), wasmEngine, conformanceHelpers());
    expect(o.pass).toBe(true);
    expect(o.why).not.toBe('');
    expect(o.why).not.toMatch(/internal error/);
  });
});

describe('faults end the run as on the interpreter', () => {
  const mem8 = { mem: new Uint8Array(8) };

  it('out of bounds before, after and straddling mem', () => {
    expect(sameFault('ldxb %r0, [%r1-1]\nexit', mem8)).toMatchObject({ kind: 'out-of-bounds', pc: 0, addr: BigInt(MEM_BASE - 1), size: 1 });
    expect(sameFault('ldxw %r0, [%r1+8]\nexit', mem8)).toMatchObject({ kind: 'out-of-bounds', addr: BigInt(MEM_BASE + 8), size: 4 });
    const straddle = sameFault('mov %r0, 0\nstxdw [%r1+4], %r0\nexit', mem8);
    expect(straddle).toMatchObject({ kind: 'out-of-bounds', pc: 1, size: 8 });
    expect(straddle.message).toContain('crosses the end of mem');
    // The last byte is fine; one more is not.
    expect(sameResult('ldxb %r0, [%r1+7]\nexit', { mem: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x5a]) })).toBe(0x5an);
  });

  it('an address with its upper half set, or wrapped below zero, misses every region', () => {
    const f = sameFault('lddw %r2, 0x100000000\nadd %r2, %r1\nldxb %r0, [%r2]\nexit', mem8);
    expect(f).toMatchObject({ kind: 'out-of-bounds', pc: 3, addr: 0x100000000n + BigInt(MEM_BASE) });
    expect(sameFault('mov %r2, 0\nldxb %r0, [%r2-1]\nexit').addr).toBe((1n << 64n) - 1n);
    expect(sameFault('mov32 %r2, -1\nldxb %r0, [%r2+8193]\nexit').addr).toBe(0x100002000n);
  });

  it('no mem at all: r1 = 0 and every mem-like access faults', () => {
    expect(sameResult('mov %r0, %r1\nadd %r0, %r2\nexit')).toBe(0n);
    sameFault('ldxb %r0, [%r1]\nexit');
    // An empty mem still has its address.
    expect(sameResult('mov %r0, %r1\nexit', { mem: new Uint8Array(0) })).toBe(BigInt(MEM_BASE));
    sameFault('ldxb %r0, [%r1]\nexit', { mem: new Uint8Array(0) });
  });

  it('below the deepest stack frame', () => {
    const text = `mov %r1, ${MAX_CALL_DEPTH - 2}\ncall local f\nexit\nf:\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nexit\nstb [%r10-${STACK_FRAME + 1}], 1\nexit`;
    expect(sameFault(text)).toMatchObject({ kind: 'out-of-bounds', pc: 7, addr: BigInt(STACK_BASE - 1) });
  });

  const rodata = (text: string): Program => ({
    ...prog(text),
    data: [{ name: '.rodata', bytes: Uint8Array.from([1, 2, 3, 4]), writable: false }],
    relocs: [{ slot: 0, section: 0, addend: 0 }],
  });

  it('writing .rodata is a permission fault, reading it is fine', () => {
    expect(sameResult(rodata('lddw %r2, 0\nldxb %r0, [%r2+3]\nexit'))).toBe(4n);
    const f = sameFault(rodata('lddw %r2, 0\nldxb %r0, [%r2+1]\nstb [%r2+1], 1\nexit'));
    expect(f).toMatchObject({ kind: 'permission', pc: 3, size: 1 });
    expect(f.message).toContain('to read-only region .rodata');
    expect(sameFault(rodata('lddw %r2, 0\nmov %r3, 1\nlock add32 [%r2], %r3\nexit')).kind).toBe('permission');
  });

  it('writing a read-only host region is a permission fault', () => {
    const regions = (): RegionSpec[] => [{ name: 'config', bytes: Uint8Array.from([7, 7, 7, 7]), writable: false }];
    // config sits between the stack and mem: at 0x12000, mem at 0x14000.
    expect(sameResult('lddw %r2, 0x12000\nldxw %r0, [%r2]\nexit', { regions })).toBe(0x07070707n);
    expect(sameFault('lddw %r2, 0x12000\nstw [%r2], 1\nexit', { regions })).toMatchObject({ kind: 'permission', pc: 2 });
  });

  it('budget: an endless loop ends with a budget fault at the loop, with the budget charged', () => {
    const { interp, wasm } = both('ja -1\nexit', { budget: 1000 });
    expect(faultOf(wasm)).toEqual(faultOf(interp));
    expect(faultOf(wasm)).toMatchObject({ kind: 'budget', pc: 0 });
    expect(wasm.steps).toBe(1000);
    // A bigger loop: same kind; the wasm engine charges only the loop's blocks.
    const big = both('mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit', { budget: 100_000 });
    expect(faultOf(big.wasm).kind).toBe('budget');
    expect(faultOf(big.interp).kind).toBe('budget');
    expect(big.wasm.steps).toBeLessThanOrEqual(100_000);
    // A budget of exactly what the loop charges is enough.
    // (Without the verifier's facts: it proves this loop bounded, and proven loops are not charged.)
    const loop = prog('mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 10, l\nexit');
    expect(instantiateWasm(loop, compileToWasm(loop), conformanceHelpers()).run({ budget: 0 })).toMatchObject({ ok: true, r0: 10n, steps: 0 });
    const exact = instantiateWasm(loop, compileToWasm(loop, { facts: 'none' }), conformanceHelpers());
    expect(exact.run({ budget: 20 })).toEqual({ ok: true, r0: 10n, steps: 20 });
    expect(faultOf(exact.run({ budget: 19 }))).toMatchObject({ kind: 'budget', pc: 1 });
    expect(exact.run({ budget: Infinity })).toMatchObject({ ok: true, r0: 10n, steps: 20 });
  });

  it('call depth: one frame deeper than the stack holds', () => {
    const nest = (n: number): string => `mov %r1, ${n}\ncall local f\nexit\nf:\njeq %r1, 0, +2\nsub %r1, 1\ncall local f\nmov %r0, %r10\nexit`;
    expect(sameResult(nest(MAX_CALL_DEPTH - 2))).toBe(BigInt(STACK_TOP - STACK_FRAME));
    expect(sameFault(nest(MAX_CALL_DEPTH - 1))).toMatchObject({ kind: 'call-depth', pc: 5 });
    expect(sameFault('call local f\nexit\nf:\ncall local f\nexit').kind).toBe('call-depth');
  });

  it('local calls share the register file as the interpreter does (the lowering, without IR passes)', () => {
    // The callee sees the caller's r6 and r0; the caller sees the callee's r1..r5; r6..r9 are restored.
    // (The IR passes treat r1-r5 as dead after a call, as the IR contract allows, so this program,
    // which reads "clobbered" registers, is compiled without them.)
    const p = prog('mov %r0, 100\nmov %r6, 6\ncall local f\nadd %r0, %r1\nadd %r0, %r5\nadd %r0, %r6\nexit\nf:\nadd %r0, %r6\nmov %r1, 1000\nmov %r5, 20000\nmov %r6, 0\nexit');
    const want = new Interpreter(p).run();
    expect(want).toMatchObject({ ok: true, r0: 100n + 6n + 1000n + 20000n + 6n });
    expect(instantiateWasm(p, compileToWasm(p, { optimize: false }), conformanceHelpers()).run()).toMatchObject({ ok: true, r0: 21112n });
    expect(sameResult('mov %r1, 3\nmov %r5, 4\ncall local f\nadd %r0, %r1\nexit\nf:\nmov %r0, %r5\nlsh %r0, 4\nexit')).toBe(0x43n);
  });

  it('unknown helper: call with an unregistered id, callx with a small and a 64-bit id', () => {
    expect(sameFault('mov %r0, 0\ncall 99\nexit')).toMatchObject({ kind: 'unknown-helper', pc: 1 });
    expect(sameFault('mov %r3, 77\ncallx %r3\nexit').message).toContain('0x4d (from %r3)');
    expect(sameFault('lddw %r3, 0x100000005\ncallx %r3\nexit').message).toContain('0x100000005 (from %r3)');
    expect(sameResult('mov %r1, 7\nmov %r2, 5\ncallx %r2\nexit')).toBe(7n);
  });

  const copyHelpers = (): HelperRegistry => new HelperRegistry().register({
    id: 2, name: 'copy', call: (ctx, dst, src, len) => { ctx.write(dst, ctx.read(src, Number(len))); return 0n; },
  });

  it('helpers: arguments, memory through the checked context, HelperError as a helper fault', () => {
    const seen: bigint[] = [];
    const probe = new HelperRegistry().register({ id: 1, name: 'probe', call: (_c, a, b, c, d, e) => { seen.push(a, b, c, d, e); return -2n; } });
    const text = 'mov %r1, -1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nadd %r0, %r1\nadd %r0, %r5\nexit';
    expect(sameResult(text, { helpers: probe })).toBe(BigInt.asUintN(64, -2n - 1n + 5n));
    expect(seen.slice(0, 5)).toEqual([BigInt.asUintN(64, -1n), 2n, 3n, 4n, 5n]);
    const mem = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(sameResult('mov %r2, %r1\nmov %r1, %r10\nsub %r1, 8\nmov %r3, 8\ncall 2\nldxdw %r0, [%r10-8]\nexit', { helpers: copyHelpers(), mem })).toBe(0x0807060504030201n);
    const f = sameFault('mov %r2, %r1\nmov %r1, %r10\nmov %r3, 9\ncall 2\nexit', { helpers: copyHelpers(), mem: new Uint8Array(8) });
    expect(f).toMatchObject({ kind: 'helper', pc: 3 });
    const strict: HelperDef = { id: 3, name: 'strict', call: () => { throw new HelperError('bad flags'); } };
    expect(sameFault('call 3\nexit', { helpers: new HelperRegistry().register(strict) }).message).toBe('helper failed at instruction 0 (call 3): strict: bad flags');
  });

  it('a helper bug is not swallowed', () => {
    const buggy = new HelperRegistry().register({ id: 3, name: 'buggy', call: () => { throw new TypeError('bug'); } });
    const p = prog('call 3\nexit');
    expect(() => instantiateWasm(p, compileToWasm(p), buggy).run()).toThrow(TypeError);
  });

  it('the unwind helper stops the run from inside nested calls', () => {
    const { interp, wasm } = both('call local f\nmov %r0, 5\nexit\nf:\ncall local g\nmov %r0, 6\nexit\ng:\nmov %r1, 0\ncall 5\nmov %r0, 7\nexit');
    expect(interp).toMatchObject({ ok: true, r0: 0n });
    expect(wasm).toMatchObject({ ok: true, r0: 0n });
  });

  it('a path the IR marks as always faulting reports the access from the register dump', () => {
    // Hand-written IR: the load at pc 1 is a `fault` terminator (as the verifier would prove).
    const p = prog('mov %r2, 5\nldxw %r0, [%r2+3]\nexit');
    const ir = parseIr('origin "t"\nfunction main (start 0) {\nb0:\n  r2 = const 0x5 ; @0\n  fault out-of-bounds ; @1\n}\n');
    const compiled: CompiledWasm = { ...compileToWasm(p), bytes: lowerModule(ir).bytes, ir };
    const r = instantiateWasm(p, compiled, conformanceHelpers()).run();
    expect(faultOf(r)).toEqual(faultOf(new Interpreter(p).run()));
  });
});

describe('the sandbox', () => {
  it('leaves the caller\'s mem buffer and a read-only canary region beside mem untouched', () => {
    const mem = Uint8Array.from({ length: 64 }, (_, i) => i);
    const before = mem.slice();
    const canaryBytes = Uint8Array.from({ length: 32 }, () => 0xcc);
    const regions = (): RegionSpec[] => [{ name: 'canary', bytes: canaryBytes, writable: false }];
    // Fill mem with 0xff, then try to write just before mem (into the gap above the canary) and into the canary.
    const fill = 'mov %r3, 0\nl:\nmov %r4, %r1\nadd %r4, %r3\nstb [%r4], 0xff\nadd %r3, 1\njlt %r3, %r2, l';
    expect(sameResult(`${fill}\nldxb %r0, [%r1+63]\nexit`, { mem, regions })).toBe(0xffn);
    expect(sameFault(`${fill}\nstb [%r1-1], 1\nexit`, { mem, regions }).kind).toBe('out-of-bounds');
    expect(sameFault(`${fill}\nlddw %r5, 0x12000\nstb [%r5+31], 1\nexit`, { mem, regions }).kind).toBe('permission');
    expect(sameFault(`${fill}\nlddw %r5, 0x12000\nstb [%r5+32], 1\nexit`, { mem, regions }).kind).toBe('out-of-bounds');
    expect(mem).toEqual(before);
    expect(canaryBytes.every((b) => b === 0xcc)).toBe(true);
  });

  it('writable host regions are the host\'s memory: the program\'s writes come back, as on the interpreter', () => {
    const iBytes = new Uint8Array(8);
    const wBytes = new Uint8Array(8);
    const p = prog('lddw %r2, 0x12000\nstw [%r2+4], 0x5a5a\nmov %r0, 1\nexit');
    new Interpreter(p).run({ regions: [{ name: 'out', bytes: iBytes, writable: true }] });
    const inst = instantiateWasm(p, compileToWasm(p, { hostRegions: [{ name: 'out', size: 8, writable: true }] }), conformanceHelpers());
    expect(inst.run({ regions: [{ name: 'out', bytes: wBytes, writable: true }] })).toMatchObject({ ok: true, r0: 1n });
    expect(wBytes).toEqual(iBytes);
    expect([...wBytes]).toEqual([0, 0, 0, 0, 0x5a, 0x5a, 0, 0]);
    expect(() => inst.run({ regions: [] })).toThrow(WasmRunError);
    expect(() => inst.run({ regions: [{ name: 'out', bytes: new Uint8Array(9), writable: true }] })).toThrow(/compiled for out \(8 bytes, writable\)/);
  });

  it('every run starts afresh: data sections, the stack, and mem of any size', () => {
    const p: Program = {
      ...prog('lddw %r2, 0\nldxw %r0, [%r2]\nldxw %r3, [%r10-4]\nadd %r0, %r3\nadd %r0, %r2\nstw [%r2], 100\nstw [%r10-4], 1000\nadd %r0, %r2\nexit'),
      data: [{ name: '.data', bytes: Uint8Array.from([1, 0, 0, 0]), writable: true }],
      relocs: [{ slot: 0, section: 0, addend: 0 }],
    };
    const inst = instantiateWasm(p, compileToWasm(p), conformanceHelpers());
    const first = inst.run();
    expect(inst.run()).toEqual(first);
    expect(first).toMatchObject({ ok: true, r0: (new Interpreter(p).run() as { r0: bigint }).r0 });
    // mem grows the instance's memory when needed, and a smaller mem afterwards is bounded by its own size.
    const q = prog('mov %r0, %r2\nmov %r4, %r1\nadd %r4, 65535\nldxb %r3, [%r4]\nexit');
    const qi = instantiateWasm(q, compileToWasm(q), conformanceHelpers());
    expect(qi.run({ mem: new Uint8Array(1 << 20) })).toMatchObject({ ok: true, r0: 1n << 20n });
    expect(faultOf(qi.run({ mem: new Uint8Array(16) }))).toEqual(faultOf(new Interpreter(q).run({ mem: new Uint8Array(16) })));
  });

  it('never traps: the status global says how a run ended', () => {
    const p = prog('mov %r1, 0\ncall 5\nexit');
    const inst = instantiateWasm(p, compileToWasm(p), conformanceHelpers());
    expect(inst.run()).toMatchObject({ ok: true, r0: 0n });
    expect(STATUS_STOPPED).not.toBe(0);
    expect(Object.values(FAULT_CODES)).not.toContain(STATUS_STOPPED);
  });
});

describe('module layout and structure', () => {
  it('puts every region where containerLayout puts it', () => {
    const p: Program = { ...prog('exit'), data: [{ name: '.rodata', bytes: new Uint8Array(5000), writable: false }, { name: '.bss', bytes: new Uint8Array(3), writable: true }] };
    const host = [{ name: 'h', bytes: new Uint8Array(70000), writable: true }];
    const c = containerLayout(p, new Uint8Array(10), host);
    const m = moduleLayout(p, host.map((h) => ({ name: h.name, size: h.bytes.length, writable: h.writable })));
    expect(m.regions.map((r) => [r.name, r.base, r.writable])).toEqual(c.regions.map((r) => [r.name, r.base, r.writable]));
    expect(m.regions.map((r) => r.size)).toEqual([...c.regions.slice(0, -1).map((r) => r.bytes.length), -1]);
  });

  it('structures reducible graphs without a dispatcher: nested loops, merges, early exits', () => {
    const text = `mov %r0, 0
mov %r3, 0
outer:
mov %r4, 0
inner:
jset %r4, 1, odd
add %r0, %r4
ja next
odd:
sub %r0, 1
next:
add %r4, 1
jeq %r4, 7, skip
jlt %r4, 10, inner
skip:
add %r3, 1
jlt %r3, 5, outer
exit`;
    const ir = buildIr(prog(text));
    const shape = structureFunction(ir.functions[0]);
    expect(shape.irreducible).toBe(false);
    expect(shape.cmds.filter((c) => c.op === 'loop')).toHaveLength(2);
    expect(shape.cmds.some((c) => c.op === 'table')).toBe(false);
    // Every reachable block's code appears exactly once.
    const codes = shape.cmds.filter((c) => c.op === 'code').map((c) => (c.op === 'code' ? c.block : -1));
    expect(codes.sort((a, b) => a - b)).toEqual(shape.order.slice().sort((a, b) => a - b));
    sameResult(text);
  });

  // Two ways into a cycle: A <-> B, entered at A or at B depending on the input.
  const irreducible = `ldxb %r2, [%r1]
mov %r0, 1
jset %r2, 1, b
a:
mul %r0, 3
sub %r2, 1
jeq %r2, 0, done
b:
add %r0, 5
sub %r2, 1
jne %r2, 0, a
done:
exit`;

  it('compiles an irreducible graph through the dispatcher, with the interpreter\'s results', () => {
    const p = prog(irreducible);
    expect(structureFunction(buildIr(p).functions[0]).irreducible).toBe(true);
    expect(compileToWasm(p).stats.irreducible).toEqual(['main']);
    for (let n = 1; n <= 9; n++) sameResult(p, { mem: Uint8Array.from([n]) });
    // n = 0 wraps around 2^64 times: both engines run out of budget (each charging its own way).
    const { interp, wasm } = both(p, { mem: Uint8Array.from([0]), budget: 1000 });
    expect(faultOf(interp).kind).toBe('budget');
    expect(faultOf(wasm).kind).toBe('budget');
  });

  it('the module validates with wabt and exports the ABI', () => {
    const bytes = compileToWasm(prog(irreducible)).bytes;
    const m = wabt.readWasm(bytes, { readDebugNames: true, mutable_globals: true, sign_extension: true, multi_value: true });
    try {
      m.validate();
      const text = m.toText({});
      for (const name of ['memory', 'run', ...Object.values(GLOBAL)]) expect(text).toContain(`(export "${name}"`);
      expect(text).toContain('(import "env" "helper"');
      expect(text).toContain('br_table');
    } finally {
      m.destroy();
    }
  });
});

describe('every IR operation lowers as the IR interpreter evaluates it', () => {
  const VALUES: [number, number][] = [
    [0, 0], [1, 0], [-1, -1], [-1, 0], [0x7fffffff, 0], [-0x80000000, -1], [0, -0x80000000], [-1, 0x7fffffff],
    [5, 0], [-7, -1], [0x12345678, 0x9abcdef0 | 0], [0x80, 0], [0x8000, 0], [63, 0], [33, 0], [-0x80000000, 0],
  ];
  const IMMS = [0, 1, -1, 7, -7, 31, 32, 63, 64, -0x80000000, 0x7fffffff, 0x8000];
  const BIN_OPS = ['add', 'sub', 'mul', 'udiv', 'sdiv', 'urem', 'srem', 'and', 'or', 'xor', 'shl', 'lshr', 'ashr'] as const;
  const OUT = 0x12000; // the host region right after the stack

  /** Runs IR text on both and compares the `out` region, where every result is stored. */
  function check(body: string[], results: number): void {
    const text = `origin "ops"\nfunction main (start 0) {\nb0:\n  r9 = const 0x${OUT.toString(16)} ; @0\n${body.join('\n')}\n  r0 = const 0x0 ; @0\n  ret ; @0\n}\n`;
    const ir = parseIr(text);
    const size = results * 8;
    const want = new Uint8Array(size);
    const got = new Uint8Array(size);
    const p = prog('exit');
    const evaluated = evalIr(ir, { regions: [{ name: 'out', bytes: want, writable: true }] });
    expect(evaluated.ok).toBe(true);
    const hostRegions = [{ name: 'out', size, writable: true }];
    const compiled: CompiledWasm = { ...compileToWasm(p, { hostRegions }), bytes: lowerModule(ir, { hostRegions }).bytes, ir };
    expect(instantiateWasm(p, compiled, conformanceHelpers()).run({ regions: [{ name: 'out', bytes: got, writable: true }] }).ok).toBe(true);
    expect(got).toEqual(want);
  }
  const hex = (lo: number, hi: number): string => `0x${((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16)}`;

  it.each([32, 64])('binary operations, width %i, register and immediate operands', (w) => {
    const body: string[] = [];
    let k = 0;
    const store = (): void => void body.push(`  store.64 r9+${8 * k++}, r4 [check out] ; @0`);
    for (const op of BIN_OPS) {
      for (const [alo, ahi] of VALUES) {
        body.push(`  r2 = const ${hex(alo, ahi)} ; @0`);
        for (const [blo, bhi] of VALUES) {
          body.push(`  r3 = const ${hex(blo, bhi)} ; @0`, `  r4 = ${op}.${w} r2, r3 ; @0`);
          store();
        }
        for (const imm of IMMS) {
          body.push(`  r4 = ${op}.${w} r2, ${imm} ; @0`);
          store();
        }
      }
    }
    check(body, k);
  });

  it('unary operations, extensions, byte swaps, moves, temporaries and hiDead definitions', () => {
    const body: string[] = [];
    let k = 0;
    const unary = ['neg.32', 'neg.64', 'mov.32', 'mov.64', 'bswap16', 'bswap32', 'bswap64'];
    for (const signed of ['s', 'z']) for (const bits of [8, 16, 32]) for (const w of [32, 64]) if (!(signed === 's' && bits === 32 && w === 32)) unary.push(`${signed}ext${bits}.${w}`);
    for (const [lo, hi] of VALUES) {
      body.push(`  r12 = const ${hex(lo, hi)} ; @0`);
      for (const u of unary) {
        body.push(`  r11 = ${u} r12 ; @0`, `  store.64 r9+${8 * k++}, r11 [check out] ; @0`);
        // A hiDead definition: only its low half is stored.
        body.push(`  r4.lo = ${u} r12 ; @0`, `  store.32 r9+${8 * k++}, r4 [check out] ; @0`);
      }
    }
    check(body, k);
  });
});

describe('ahead-of-time output', () => {
  const aotEngine = (optimize: boolean): Engine => ({
    name: `wasm-aot${optimize ? '-O' : ''}`,
    description: 'AOT module on the wasm engine\'s host',
    prepare: async (program, helpers) => {
      const bytes = (await compileWasmAot(program, { optimize, emit: 'wasm' })) as Uint8Array<ArrayBuffer>;
      const compiled = { ...compileToWasm(program), bytes };
      const inst = new WasmInstance(program, compiled, helpers);
      return inst.attach(new WebAssembly.Instance(new WebAssembly.Module(bytes), inst.imports()));
    },
  });

  it('emits a module wabt validates, and wat text wabt parses back', async () => {
    const p = prog('mov %r0, 6\nmul %r0, 7\nexit');
    const bytes = await compileWasmAot(p, { optimize: false, emit: 'wasm' });
    expect(bytes).toBeInstanceOf(Uint8Array);
    const m = wabt.readWasm(bytes as Uint8Array, { mutable_globals: true, sign_extension: true, multi_value: true });
    m.validate();
    m.destroy();
    const wat = await compileWasmAot(p, { optimize: true, emit: 'wat' });
    expect(typeof wat).toBe('string');
    expect(wat).toMatch(/^\(module/);
    const back = wabt.parseWat('aot.wat', wat as string, { mutable_globals: true, sign_extension: true, multi_value: true });
    back.validate();
    back.destroy();
  });

  it('-O output gives the same results on the whole conformance suite', async () => {
    const engine = aotEngine(true);
    const files = dataFiles(CONFORMANCE_TESTS);
    for (const f of files) {
      const o = await runTestText(basename(f, '.data'), readFileSync(f, 'utf8'), engine, conformanceHelpers());
      expect({ f, why: o.why }).toEqual({ f, why: '' });
    }
  }, 120_000);

  it('-O output faults as the JIT module does', async () => {
    const engine = aotEngine(true);
    const cases = ['ldxb %r0, [%r1+8]\nexit', 'call local f\nexit\nf:\ncall local f\nexit', 'lddw %r3, 0x100000005\ncallx %r3\nexit', 'ja -1\nexit'];
    for (const text of cases) {
      const p = prog(text);
      const opts = { mem: new Uint8Array(8), budget: 500 };
      const aot = await (await engine.prepare(p, conformanceHelpers())).run(opts);
      const jit = instantiateWasm(p, compileToWasm(p), conformanceHelpers()).run(opts);
      expect(aot).toEqual(jit);
      const { kind, pc } = faultOf(new Interpreter(p).run(opts));
      expect(faultOf(aot)).toMatchObject({ kind, pc });
    }
  });
});
