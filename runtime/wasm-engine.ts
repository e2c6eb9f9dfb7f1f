// The Wasm engine: the host's hot-path JIT. A program is compiled once (front end to IR, the
// verifier's facts when given, IR passes, lowering with femtojit's own encoder), instantiated once,
// and run many times; each run fills the regions in the instance's memory, sets the budget and
// mem_len globals, calls `run`, and reads r0 or the fault record (backends/wasm/abi.ts).
//
// It ends every run as the interpreter does: same r0, same fault kind and pc, and the same fault
// message (titles, disassembly, RegionTable.describe over views of the instance's memory).
// `steps` is the budget charged (the IR's rule: only blocks of unproven loops are charged).
// Nothing here is Node-only: the engine runs in browsers too (test/wasm-browser.test.ts).
import { disasmInsn } from '../compiler/disasm.js';
import { classify, isInvalid } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import {
  FAULT_WRITE, GLOBAL, EXPORT_MEMORY, EXPORT_RUN_I32, IMPORT_HELPER, IMPORT_MODULE, KIND_OF_CODE, REG_DUMP_OFFSET,
  RUN_RECORD_OFFSET, STATUS_OK, STATUS_STOPPED,
} from '../backends/wasm/abi.js';
import { compileToWasm, type CompiledWasm } from '../backends/wasm/compile.js';
import type { Engine, Runnable } from './engine.js';
import { FAULT_CODES, FAULT_TITLE, HelperError, type Fault, type RunResult } from './errors.js';
import { regionHelperContext, type HelperContext, type HelperRegistry } from './helpers.js';
import { MAX_CALL_DEPTH, STACK_FRAME } from './layout.js';
import { RegionTable, type Region, type RegionSpec } from './regions.js';

export interface WasmRunOptions {
  mem?: Uint8Array;
  /** Instruction budget; Infinity turns it off. */
  budget?: number;
  /** Contents of the host regions declared at compile time, in order; writable ones are copied back. */
  regions?: RegionSpec[];
}

/** A run option that does not fit the compiled module (e.g. host regions other than declared). */
export class WasmRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmRunError';
  }
}

export { compileToWasm, type CompiledWasm, type WasmCompileOptions, type WasmCompileStats } from '../backends/wasm/compile.js';

export const DEFAULT_BUDGET = 100_000_000;
/** Budgets from here up (Infinity included) turn the budget off: the module compares unsigned. */
const MAX_BUDGET = 2 ** 63;
const TWO_32 = 2 ** 32;
const CALLX = 0x8d;
const NO_REGIONS: readonly RegionSpec[] = [];

// The interpreter's titles (runtime/interp.ts keeps its table private).
interface Exports {
  memory: WebAssembly.Memory;
  /** abi.ts EXPORT_RUN_I32: no BigInt crosses the boundary on the way in. */
  run: (memLen: number, budgetLo: number, budgetHi: number) => number;
  status: WebAssembly.Global;
  faultPc: WebAssembly.Global;
  faultAddr: WebAssembly.Global;
  faultSize: WebAssembly.Global;
}

function exportsOf(instance: WebAssembly.Instance): Exports {
  const e = instance.exports;
  const g = (name: string): WebAssembly.Global => {
    const v = e[name];
    if (!(v instanceof WebAssembly.Global)) throw new WasmRunError(`the module does not export the global '${name}'`);
    return v;
  };
  const memory = e[EXPORT_MEMORY];
  const run = e[EXPORT_RUN_I32];
  if (!(memory instanceof WebAssembly.Memory)) throw new WasmRunError(`the module does not export '${EXPORT_MEMORY}'`);
  if (typeof run !== 'function') throw new WasmRunError(`the module does not export '${EXPORT_RUN_I32}'`);
  return {
    memory,
    run: run as Exports['run'],
    status: g(GLOBAL.status),
    faultPc: g(GLOBAL.faultPc),
    faultAddr: g(GLOBAL.faultAddr),
    faultSize: g(GLOBAL.faultSize),
  };
}

/**
 * One instance of a compiled program: run it any number of times. Made by instantiateWasm (sync)
 * or instantiateWasmAsync (what a browser's main thread needs for modules over a few KiB).
 */
export class WasmInstance implements Runnable {
  private exp: Exports | undefined;
  /** Views of the instance's memory, renewed when it grows (growing detaches the old buffer). */
  private bytes: Uint8Array = new Uint8Array(0);
  private words = new Uint32Array(0);
  private view = new DataView(new ArrayBuffer(0));
  /** The data sections a run can change (read-only ones keep their data segments' bytes). */
  private readonly restore: { bytes: Uint8Array; at: number }[];
  /** Per run: the mem length (-1 without mem), the table for helpers and fault messages. */
  private memLen = -1;
  private table: RegionTable | undefined;
  /** Detail of a fault the helper import detected (unknown id, HelperError). */
  private hostDetail = '';
  /** The current run's host regions. */
  private host: readonly RegionSpec[] = NO_REGIONS;
  /** The last r0 returned, and its halves (-1: none yet). */
  private lastLo = -1;
  private lastHi = -1;
  private lastR0 = 0n;

  constructor(
    readonly program: Program,
    readonly compiled: CompiledWasm,
    readonly helpers: HelperRegistry,
  ) {
    this.restore = program.data.flatMap((d, i) => (d.writable ? [{ bytes: d.bytes, at: compiled.layout.dataBase[i] }] : []));
  }

  /** The import object for this instance's module. */
  imports(): WebAssembly.Imports {
    return {
      [IMPORT_MODULE]: { [IMPORT_HELPER]: (id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => this.helper(id, r1, r2, r3, r4, r5) },
    };
  }

  /** Binds the Wasm instance made from `imports()`. */
  attach(instance: WebAssembly.Instance): this {
    this.exp = exportsOf(instance);
    return this;
  }

  private get x(): Exports {
    if (this.exp === undefined) throw new WasmRunError('the program was run before its Wasm instance was attached');
    return this.exp;
  }

  // The per-run path: everything here is paid on every run of a program that may take well under
  // a microsecond, so no BigInt and no global access unless the run faults.
  run(opts: WasmRunOptions = {}): RunResult {
    const mem = opts.mem;
    const memLen = mem === undefined ? -1 : mem.length;
    this.prepare(memLen, opts.regions);
    if (mem !== undefined) this.bytes.set(mem, this.compiled.layout.memBase);
    return this.enter(memLen, opts.budget);
  }

  /**
   * The zero-copy path's first half: a view of the instance's memory where the run's `mem` of
   * `len` bytes lives. The caller writes the context there once; `runResident(len)` then runs on
   * whatever those bytes hold, without copying anything in. A program that writes its context
   * changes these bytes (the caller rewrites them when it wants a fresh input). The view stays
   * valid until a run needs more memory (a longer `mem`), which detaches it.
   */
  contextView(len: number): Uint8Array {
    if (!(Number.isSafeInteger(len) && len >= 0)) throw new RangeError(`context length must be a non-negative integer (is ${len})`);
    const base = this.compiled.layout.memBase;
    const end = base + len;
    if (end > this.bytes.length) this.ensureMemory(end);
    return this.bytes.subarray(base, end);
  }

  /**
   * run({ mem }) with mem = the `len` bytes at contextView(len), as they are now (not copied in,
   * so not restored either). Everything else is as `run`: the stack, data sections and host
   * regions are restored, the budget charged afresh.
   */
  runResident(len: number, opts: Omit<WasmRunOptions, 'mem'> = {}): RunResult {
    if (!(Number.isSafeInteger(len) && len >= 0)) throw new RangeError(`context length must be a non-negative integer (is ${len})`);
    this.prepare(len, opts.regions);
    return this.enter(len, opts.budget);
  }

  /** Restores what a run may have changed and makes room for `memLen` bytes of mem (-1: none). */
  private prepare(memLen: number, regions: RegionSpec[] | undefined): void {
    const { layout } = this.compiled;
    this.host = this.compiled.hostRegions.length === 0 && (regions === undefined || regions.length === 0)
      ? NO_REGIONS
      : this.hostRegions(regions ?? NO_REGIONS);
    this.memLen = memLen;
    const end = layout.memBase + (memLen < 0 ? 0 : memLen);
    if (end > this.bytes.length) this.ensureMemory(end);
    const u8 = this.bytes;
    const dirty = this.compiled.stackWritten;
    // A small range the module zeroes itself: a host-side fill costs more to call than to run.
    if (dirty !== undefined && !this.compiled.moduleZeroesStack) u8.fill(0, dirty.start, dirty.end);
    const restore = this.restore;
    for (let i = 0; i < restore.length; i++) u8.set(restore[i].bytes, restore[i].at);
    const host = this.host;
    for (let i = 0; i < host.length; i++) u8.set(host[i].bytes, layout.hostBase[i]);
  }

  /** Runs with the memory prepared; reads the run record or the fault. */
  private enter(memLen: number, budgetOpt: number | undefined): RunResult {
    const budget = budgetOpt ?? DEFAULT_BUDGET;
    if (!(budget >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${budget})`);
    this.table = undefined;
    this.hostDetail = '';
    const initial = budget >= MAX_BUDGET ? MAX_BUDGET : Math.floor(budget);
    // Not `initial % TWO_32`: a float modulo is a call out of V8's generated code (fmod).
    const hi = Math.floor(initial / TWO_32);
    const status = this.x.run(memLen, initial - hi * TWO_32, hi);
    const words = this.words;
    const rec = RUN_RECORD_OFFSET >> 2;
    const steps = words[rec + 2] + words[rec + 3] * TWO_32;
    // Host regions are the host's memory: hand back what the program wrote there.
    const host = this.host;
    if (host.length > 0) {
      const { layout } = this.compiled;
      for (let i = 0; i < host.length; i++) {
        const h = host[i];
        if (h.writable) h.bytes.set(this.bytes.subarray(layout.hostBase[i], layout.hostBase[i] + h.bytes.length));
      }
    }
    if (status === STATUS_OK || status === STATUS_STOPPED) {
      // A BigInt costs an allocation; programs often return the same value run after run.
      const lo = words[rec];
      const hi = words[rec + 1];
      if (lo !== this.lastLo || hi !== this.lastHi) {
        this.lastLo = lo;
        this.lastHi = hi;
        this.lastR0 = this.view.getBigUint64(RUN_RECORD_OFFSET, true);
      }
      return { ok: true, r0: this.lastR0, steps };
    }
    return { ok: false, fault: this.fault(status, budget), steps };
  }

  private hostRegions(regions: readonly RegionSpec[]): readonly RegionSpec[] {
    const want = this.compiled.hostRegions;
    const same = regions.length === want.length && regions.every((r, i) => r.name === want[i].name && r.bytes.length === want[i].size && r.writable === want[i].writable);
    if (!same) {
      const show = (rs: readonly { name: string; size: number; writable: boolean }[]): string =>
        rs.length === 0 ? 'none' : rs.map((r) => `${r.name} (${r.size} bytes, ${r.writable ? 'writable' : 'read-only'})`).join(', ');
      throw new WasmRunError(
        `host regions do not match the compiled module: compiled for ${show(want)}, given ${show(regions.map((r) => ({ name: r.name, size: r.bytes.length, writable: r.writable })))}`,
      );
    }
    return regions;
  }

  private ensureMemory(end: number): void {
    const memory = this.x.memory;
    const have = memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / 65536);
      try {
        memory.grow(pages);
      } catch {
        throw new WasmRunError(`cannot grow the instance's memory to ${end} bytes for this run's mem`);
      }
    }
    if (this.bytes.buffer !== memory.buffer) {
      this.bytes = new Uint8Array(memory.buffer);
      this.words = new Uint32Array(memory.buffer);
      this.view = new DataView(memory.buffer);
    }
  }

  /** The run's regions as views of the instance's memory (helpers and fault messages). */
  private regionTable(): RegionTable {
    if (this.table === undefined) {
      const regions: Region[] = this.compiled.layout.regions.map((r) => {
        const size = r.size < 0 ? Math.max(0, this.memLen) : r.size;
        return { name: r.name, base: r.base, writable: r.writable, bytes: this.bytes.subarray(r.base, r.base + size) };
      });
      // Without mem the run has no mem region at all (as containerLayout lays it out).
      if (this.memLen < 0) regions.pop();
      this.table = new RegionTable(regions);
    }
    return this.table;
  }

  private helperContext(): HelperContext {
    return regionHelperContext(() => this.regionTable());
  }

  /** The helper import: the interpreter's call semantics, faults reported through `status`. */
  private helper(id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): bigint {
    const x = this.x;
    const pc = x.faultPc.value as number;
    const insn = this.program.insns[pc];
    const fromReg = insn !== undefined && insn.code === CALLX ? insn.dst : -1;
    const def = this.helpers.get(fromReg >= 0 ? id >>> 0 : id);
    if (def === undefined) {
      const shown = fromReg >= 0 ? `0x${(id >>> 0).toString(16)} (from %r${fromReg})` : `${id}`;
      this.hostDetail = `no helper is registered with id ${shown}`;
      x.status.value = FAULT_CODES['unknown-helper'];
      return 0n;
    }
    const u = (v: bigint): bigint => BigInt.asUintN(64, v);
    try {
      const res = def.call(this.helperContext(), u(r1), u(r2), u(r3), u(r4), u(r5));
      if (typeof res === 'bigint') return BigInt.asIntN(64, res);
      x.status.value = STATUS_STOPPED;
      return BigInt.asIntN(64, res.r0);
    } catch (e) {
      if (!(e instanceof HelperError)) throw e;
      this.hostDetail = `${def.name}: ${e.message}`;
      x.status.value = FAULT_CODES.helper;
      return 0n;
    }
  }

  private fault(status: number, budget: number): Fault {
    const kind = KIND_OF_CODE.get(status);
    const x = this.x;
    const pc = x.faultPc.value as number;
    if (kind === undefined) {
      return { kind: 'invalid', pc, message: `the module ended with an unknown status ${status} at instruction ${pc}` };
    }
    const insns = this.program.insns;
    const text = pc >= 0 && pc < insns.length ? disasmInsn(insns, pc) : 'end of program';
    const fault: Fault = { kind, pc, message: '' };
    let detail: string;
    switch (kind) {
      case 'out-of-bounds':
      case 'permission': {
        const access = this.faultAccess(pc);
        if (access === undefined) {
          detail = 'this path always faults (proven by the verifier)';
          break;
        }
        detail = this.regionTable().describe(access.addr, access.size, access.write);
        fault.addr = access.addr;
        fault.size = access.size;
        break;
      }
      case 'budget':
        detail = `executed ${budget} instructions without exiting`;
        break;
      case 'call-depth':
        detail = `a call nested ${MAX_CALL_DEPTH + 1} frames deep; the stack holds ${MAX_CALL_DEPTH} frames of ${STACK_FRAME} bytes`;
        break;
      case 'unknown-helper':
        detail = this.hostDetail !== ''
          ? this.hostDetail
          : `no helper is registered with id 0x${BigInt.asUintN(64, x.faultAddr.value as bigint).toString(16)} (from %r${insns[pc]?.dst ?? '?'})`;
        break;
      default:
        detail = this.hostDetail;
    }
    fault.message = `${FAULT_TITLE[kind]} at instruction ${pc} (${text}): ${detail}`;
    return fault;
  }

  /**
   * The faulting access: from the fault record after a failed check, or, for a path the verifier
   * proved faulting, from the instruction and the register dump.
   */
  private faultAccess(pc: number): { addr: bigint; size: number; write: boolean } | undefined {
    const x = this.x;
    const info = x.faultSize.value as number;
    if (info !== 0) {
      return { addr: BigInt.asUintN(64, x.faultAddr.value as bigint), size: info & 0xff, write: (info & FAULT_WRITE) !== 0 };
    }
    const insn = this.program.insns[pc];
    if (insn === undefined) return undefined;
    const c = classify(insn);
    if (isInvalid(c) || (c.form !== 'ldx' && c.form !== 'st' && c.form !== 'stx' && c.form !== 'atomic') || c.size === undefined) return undefined;
    const base = c.form === 'ldx' ? insn.src : insn.dst;
    const dump = new DataView(this.bytes.buffer, REG_DUMP_OFFSET, 11 * 8);
    const addr = BigInt.asUintN(64, dump.getBigUint64(base * 8, true) + BigInt(insn.off));
    return { addr, size: c.size, write: c.form !== 'ldx' };
  }
}

/** Compiles (V8) and instantiates a compiled program, synchronously (Node, workers). */
export function instantiateWasm(program: Program, compiled: CompiledWasm, helpers: HelperRegistry): WasmInstance {
  const inst = new WasmInstance(program, compiled, helpers);
  return inst.attach(new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), inst.imports()));
}

/** The same, asynchronously (browsers refuse synchronous compiles of larger modules on the main thread). */
export async function instantiateWasmAsync(program: Program, compiled: CompiledWasm, helpers: HelperRegistry): Promise<WasmInstance> {
  const inst = new WasmInstance(program, compiled, helpers);
  const module = await WebAssembly.compile(compiled.bytes);
  return inst.attach(await WebAssembly.instantiate(module, inst.imports()));
}

export const wasmEngine: Engine = {
  name: 'wasm',
  description: 'sandboxed WebAssembly (femtojit JIT: IR -> Wasm, one instance per program)',
  prepare: (program, helpers) => instantiateWasmAsync(program, compileToWasm(program), helpers),
};
