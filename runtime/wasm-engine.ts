// The Wasm engine: the host's hot-path JIT. A program is compiled once (front end to IR, the
// verifier's facts when given, IR passes, lowering with femtojit's own encoder), instantiated once,
// and run many times; each run fills the regions in the instance's memory, sets the budget and
// mem_len globals, calls `run`, and reads r0 or the fault record (backends/wasm/abi.ts).
//
// It ends every run as the interpreter does: same r0, same fault kind and pc, and the same fault
// message (titles, disassembly, RegionTable.describe over views of the instance's memory).
// `steps` is the budget charged (the IR's rule: only blocks of unproven loops are charged).
// Nothing here is Node-only: the engine runs in browsers too (test/wasm-browser.test.ts).
//
// Tiers. Like V8's Liftoff -> TurboFan, the JIT starts on code that is quick to make and moves to
// code that is quick to run. The engine (`wasmEngine.prepare`) instantiates a baseline module
// (compileToWasm tier 'baseline': no IR passes, each block lowered once, several times faster to
// compile); on its `tierUpRuns`th run (default 2, the same mark as a steady length) the instance
// compiles optimised code and switches to it, in one of two forms:
// - sized, when the run's length L has come `steadyRuns` runs in a row and the verifier's facts for
//   exactly L prove more accesses safe than the generic ones (fixed-offset reads of a header, loops
//   whose bound is a constant rather than r2): a module with the facts for L, entered only by runs
//   of length L. Runs of other lengths stay on the baseline module, and after `tierUpRuns` more of
//   them the generic module tiers up too;
// - otherwise the optimised module for any length, which replaces the baseline one for good.
// An instance made from an optimised module (compileToWasm's default, `specializeFor`) has only the
// sized tier's policy: after `steadyRuns` runs in a row with one length L it compiles the sized
// module for L, if L proves more. Another length replaces L only after `replaceRuns` runs in a row
// with it (hysteresis), and at most `maxCompiles` sized compiles are tried; a length that proves no
// more is declined for good. `{ tierUp: false, specialize: false }` keeps every run on one module.
//
// Every tier is instantiated in the first instance's linear memory (the later modules import it;
// their layout is checked identical), so the resident context and the regions stay where they
// are across a switch. The one dispatch (`enter`) checks a module's own length against the run's
// before entering: sized code never runs with another length. All tiers are compiled with the same
// facts for their bounded loops (the sized facts take the generic ones' boundedBackEdges), and the
// IR's budget charges do not depend on the passes or the lowering's loop copies: `steps` and
// budget faults do not depend on the tier (test/wasm-tier.test.ts checks it against the
// interpreter across switches).
import { disasmInsn } from '../compiler/disasm.js';
import { classify, isInvalid } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import {
  FAULT_WRITE, GLOBAL, EXPORT_MEMORY, EXPORT_RUN_I32, IMPORT_HELPER, IMPORT_MODULE, KIND_OF_CODE, REG_DUMP_OFFSET,
  RUN_RECORD_OFFSET, STATUS_OK, STATUS_STOPPED,
} from '../backends/wasm/abi.js';
import { compileToWasm, IMPORT_MEMORY, sizedFacts, type CompiledWasm, type WasmTier } from '../backends/wasm/compile.js';
import type { AccessFact, ProgramFacts } from '../compiler/verify/facts.js';
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

/** The tiering policy (see the header). */
export interface WasmTierOptions {
  /**
   * Replace a baseline module (compileToWasm's tier 'baseline') with optimised code once it has
   * served `tierUpRuns` runs (default true; false: the baseline module serves every run a sized
   * tier does not). `{ tierUp: false, specialize: false }` keeps every run on the module given.
   */
  tierUp?: boolean;
  /** Runs on the baseline module that make it tier up (default 2: the second run is optimised). */
  tierUpRuns?: number;
  /** Compile a tier for a steady mem length (default true; false: every run on the generic module). */
  specialize?: boolean;
  /** Specialise for this length right away (a host that knows its hook's context size). */
  specializeFor?: number;
  /** Runs in a row with one length that make it steady when no tier exists (default 2). */
  steadyRuns?: number;
  /** Runs in a row with another length that make it replace the tier's length (default 16). */
  replaceRuns?: number;
  /** Most sized compiles tried over the instance's life, declined ones included (default 4); then the last tier stays. */
  maxCompiles?: number;
  /**
   * 'sync': the run that triggers a tier-up compiles the new module and runs on it (Node, workers).
   * 'async': that run and the next ones run on the module they had, the new one is compiled in a
   * later task and used once ready (browsers' main threads; await `tierSettled()` to wait for it).
   * Default: 'sync' for instantiateWasm, 'async' for instantiateWasmAsync.
   */
  compile?: 'sync' | 'async';
}

/** One tier-up compile (sized, or the generic module's optimised code): what it cost and what came of it. */
export interface WasmTierCompile {
  /** 'sized': a module for mem of exactly `len` bytes; 'optimized': the optimised module for any length. */
  target: 'sized' | 'optimized';
  /** The sized tier's length; -1 for target 'optimized'. */
  len: number;
  /** The analysis for this length (programFacts with mem's size), ms; 0 for 'optimized' (it reuses the facts). */
  analysisMs: number;
  /** Front end, passes, lowering, encoding (analysis excluded), ms. */
  compileMs: number;
  /** V8's compile + instantiate, ms. */
  instantiateMs: number;
  /** The module's size in bytes (0 when none was made). */
  codeBytes: number;
  /** Accesses proven safe: by this module's facts, and by the generic module's facts. */
  proven: number;
  provenGeneric: number;
  /** 'used', or why the tier was not installed. */
  outcome: string;
}

export interface WasmTierStats {
  /** The code of the module that serves any length: 'baseline' until it tiers up. */
  genericTier: WasmTier;
  /** The length the sized tier serves, undefined without one. */
  sizedLen: number | undefined;
  /** Runs on the module for any length (baseline and optimised). */
  genericRuns: number;
  /** Of those, runs on the baseline module. */
  baselineRuns: number;
  sizedRuns: number;
  compiles: WasmTierCompile[];
}

/** A run option that does not fit the compiled module (e.g. host regions other than declared). */
export class WasmRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmRunError';
  }
}

export { compileToWasm, type CompiledWasm, type WasmCompileOptions, type WasmCompileStats, type WasmTier } from '../backends/wasm/compile.js';

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

/** A module instantiated in the instance's memory: the generic one (baseline or optimised), or one sized for `len`. */
interface Tier {
  compiled: CompiledWasm;
  exp: Exports;
  /** The only mem length it may run with (compiled.memSize), -2 for any. */
  len: number;
  runs: number;
}

const ANY_LEN = -2;

/**
 * One instance of a compiled program: run it any number of times. Made by instantiateWasm (sync)
 * or instantiateWasmAsync (what a browser's main thread needs for modules over a few KiB).
 */
export class WasmInstance implements Runnable {
  /** The module the current run entered (helpers and faults read its globals). */
  private exp: Exports | undefined;
  /** The module instantiated first (`compiled`): it owns the memory every other tier imports. */
  private home: Tier | undefined;
  /** The module for any length: `home`, or its optimised replacement after the tier-up. */
  private generic: Tier | undefined;
  private sized: Tier | undefined;
  /** The tier the last run entered (its stack range may be dirty when the next run switches). */
  private last: Tier | undefined;
  /** The sized policy is on (WasmTierOptions.specialize, and a module that may get a tier). */
  private readonly policy: boolean;
  /** The generic module is a baseline one still to tier up (cleared by the tier-up, or when it fails). */
  private upgrade: boolean;
  /** Runs on the baseline module since it was instantiated or last got a sized tier. */
  private baseRuns = 0;
  private readonly tierOpts: Required<Omit<WasmTierOptions, 'specializeFor'>>;
  private streakLen = -1;
  private streak = 0;
  /** Sized compiles tried (maxCompiles caps them). */
  private sizedCompiles = 0;
  /** Lengths whose sized compile was declined (no gain, layout differs, failed). */
  private readonly declined = new Set<number>();
  private readonly compiles: WasmTierCompile[] = [];
  private pending: Promise<void> | undefined;
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
    /** The module instantiated first (a baseline one, when the JIT tiers up from it). */
    readonly compiled: CompiledWasm,
    readonly helpers: HelperRegistry,
    tiers: WasmTierOptions = {},
  ) {
    this.restore = program.data.flatMap((d, i) => (d.writable ? [{ bytes: d.bytes, at: compiled.layout.dataBase[i] }] : []));
    this.tierOpts = {
      tierUp: (tiers.tierUp ?? true) && compiled.tier === 'baseline',
      tierUpRuns: Math.max(1, tiers.tierUpRuns ?? 2),
      // A module for one length, or one asked to check everything, gets no tier with other facts.
      specialize: (tiers.specialize ?? true) && compiled.memSize === undefined && compiled.factsFrom !== 'none',
      steadyRuns: Math.max(1, tiers.steadyRuns ?? 2),
      replaceRuns: Math.max(1, tiers.replaceRuns ?? 16),
      maxCompiles: tiers.maxCompiles ?? 4,
      compile: tiers.compile ?? 'sync',
    };
    this.policy = this.tierOpts.specialize;
    this.upgrade = this.tierOpts.tierUp;
  }

  /** The import object for this instance's module. */
  imports(): WebAssembly.Imports {
    const env: Record<string, WebAssembly.ImportValue> = {
      [IMPORT_HELPER]: (id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => this.helper(id, r1, r2, r3, r4, r5),
    };
    if (this.compiled.memoryImported) env[IMPORT_MEMORY] = new WebAssembly.Memory({ initial: this.compiled.layout.initialPages, maximum: 65536 });
    return { [IMPORT_MODULE]: env };
  }

  /** Binds the Wasm instance made from `imports()`. */
  attach(instance: WebAssembly.Instance): this {
    const exp = exportsOf(instance);
    this.exp = exp;
    this.home = { compiled: this.compiled, exp, len: this.compiled.memSize ?? ANY_LEN, runs: 0 };
    this.generic = this.home;
    return this;
  }

  /** Runs per tier, the sized tier's length, and every tier-up compile with its cost. */
  tierStats(): WasmTierStats {
    const home = this.home;
    const generic = this.generic;
    const homeRuns = home?.runs ?? 0;
    return {
      genericTier: generic?.compiled.tier ?? this.compiled.tier,
      sizedLen: this.sized?.len,
      genericRuns: homeRuns + (generic !== undefined && generic !== home ? generic.runs : 0),
      baselineRuns: this.compiled.tier === 'baseline' ? homeRuns : 0,
      sizedRuns: this.sized?.runs ?? 0,
      compiles: [...this.compiles],
    };
  }

  /** Resolves when no tier-up compile is under way (the 'async' policy compiles in a later task). */
  tierSettled(): Promise<void> {
    return this.pending ?? Promise.resolve();
  }

  /**
   * Compiles and installs the sized tier for `len` now, synchronously (what the policy does for a
   * steady length; `specializeFor` does it at instantiation). Returns what came of it.
   */
  specialize(len: number): WasmTierCompile {
    const job = this.sizedCompile(len);
    return job.compiled === undefined ? this.record(job) : this.instantiateSync(job, job.compiled);
  }

  /** The same with V8's compile and instantiate asynchronous. */
  async specializeAsync(len: number): Promise<WasmTierCompile> {
    const job = this.sizedCompile(len);
    return job.compiled === undefined ? this.record(job) : this.instantiateAsync(job, job.compiled);
  }

  /**
   * Replaces the baseline module for any length with optimised code now, synchronously (what the
   * tier-up does when no sized tier is the better choice). Returns what came of it; a module that
   * is optimised already gets nothing.
   */
  optimize(): WasmTierCompile {
    const job = this.optimizedCompile();
    return job.compiled === undefined ? this.record(job) : this.instantiateSync(job, job.compiled);
  }

  /** The same with V8's compile and instantiate asynchronous. */
  async optimizeAsync(): Promise<WasmTierCompile> {
    const job = this.optimizedCompile();
    return job.compiled === undefined ? this.record(job) : this.instantiateAsync(job, job.compiled);
  }

  private instantiateSync(job: TierJob, compiled: CompiledWasm): WasmTierCompile {
    const t0 = now();
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), this.tierImports());
    } catch (e) {
      return this.record({ ...job, why: `V8 refused the ${job.target} module: ${e instanceof Error ? e.message : String(e)}` }, now() - t0);
    }
    return this.install(instance, job, compiled, now() - t0);
  }

  private async instantiateAsync(job: TierJob, compiled: CompiledWasm): Promise<WasmTierCompile> {
    const t0 = now();
    let instance: WebAssembly.Instance;
    try {
      instance = await WebAssembly.instantiate(await WebAssembly.compile(compiled.bytes), this.tierImports());
    } catch (e) {
      return this.record({ ...job, why: `V8 refused the ${job.target} module: ${e instanceof Error ? e.message : String(e)}` }, now() - t0);
    }
    return this.install(instance, job, compiled, now() - t0);
  }

  private tierImports(): WebAssembly.Imports {
    return {
      [IMPORT_MODULE]: {
        [IMPORT_HELPER]: (id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => this.helper(id, r1, r2, r3, r4, r5),
        [IMPORT_MEMORY]: this.memory,
      },
    };
  }

  /** The analysis and compile for `len`, or why there is none. */
  private sizedCompile(len: number): TierJob {
    if (!(Number.isSafeInteger(len) && len >= 0 && len < TWO_32)) throw new RangeError(`a sized tier's length must be a mem length in bytes (is ${len})`);
    const home = this.compiled;
    const job: TierJob = { target: 'sized', len, analysisMs: 0, compileMs: 0, proven: 0, provenGeneric: countProven(home.facts) };
    if (home.memSize !== undefined) return { ...job, why: `the module is compiled for mem of ${home.memSize} bytes only` };
    if (home.factsFrom === 'none') return { ...job, why: 'the module was compiled to check every access (facts: none)' };
    this.sizedCompiles++;
    const t0 = now();
    const sized = sizedFacts(this.program, len, { hostRegions: home.hostRegions });
    job.analysisMs = now() - t0;
    const facts = mergeFacts(home.facts, sized);
    job.proven = countProven(facts);
    if (job.proven <= job.provenGeneric) return { ...job, why: 'this length proves no access the generic facts do not' };
    return this.tierCompile(job, { facts, memSize: len });
  }

  /** The optimised compile for any length, with the home module's facts, or why there is none. */
  private optimizedCompile(): TierJob {
    const home = this.compiled;
    const proven = countProven(home.facts);
    const job: TierJob = { target: 'optimized', len: -1, analysisMs: 0, compileMs: 0, proven, provenGeneric: proven };
    if (this.generic !== this.home || home.tier !== 'baseline') return { ...job, why: 'the module for any length is optimised already' };
    // The same facts (so the same budget charges), the same length restriction if any.
    return this.tierCompile(job, { facts: home.factsFrom === 'none' ? 'none' : home.facts, memSize: home.memSize });
  }

  private tierCompile(job: TierJob, opts: { facts: ProgramFacts | 'none'; memSize: number | undefined }): TierJob {
    const home = this.compiled;
    let compiled: CompiledWasm;
    try {
      compiled = compileToWasm(this.program, { ...opts, importMemory: true, hostRegions: home.hostRegions, tier: 'optimized' });
    } catch (e) {
      return { ...job, why: `the ${job.target} compile failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    job.compileMs = compiled.stats.compileMs;
    if (!sameLayout(compiled, home)) return { ...job, why: `the ${job.target} module lays its memory out differently` };
    return { ...job, compiled };
  }

  private record(job: TierJob, instantiateMs = 0): WasmTierCompile {
    const entry: WasmTierCompile = {
      target: job.target, len: job.len, analysisMs: job.analysisMs, compileMs: job.compileMs, instantiateMs, codeBytes: job.compiled?.bytes.length ?? 0,
      proven: job.proven, provenGeneric: job.provenGeneric, outcome: job.why ?? 'used',
    };
    this.compiles.push(entry);
    if (job.why !== undefined) {
      if (job.target === 'sized') this.declined.add(job.len);
      // No second try: the baseline module stays, under the sized policy alone.
      else this.upgrade = false;
    }
    return entry;
  }

  private install(instance: WebAssembly.Instance, job: TierJob, compiled: CompiledWasm, instantiateMs: number): WasmTierCompile {
    const exp = exportsOf(instance);
    if (exp.memory !== this.memory) return this.record({ ...job, why: `the ${job.target} module does not run in the generic instance's memory` }, instantiateMs);
    const tier: Tier = { compiled, exp, len: compiled.memSize ?? ANY_LEN, runs: 0 };
    if (job.target === 'sized') this.sized = tier;
    else {
      this.generic = tier;
      this.upgrade = false;
    }
    return this.record(job, instantiateMs);
  }

  private get genericTier(): Tier {
    if (this.generic === undefined) throw new WasmRunError('the program was run before its Wasm instance was attached');
    return this.generic;
  }

  /** Counts the streak of one mem length (runs without mem leave it as it is). */
  private count(memLen: number): void {
    if (memLen === this.streakLen) this.streak++;
    else {
      this.streakLen = memLen;
      this.streak = 1;
    }
  }

  /** The sized policy, once per run with mem off the sized tier: tiers up on a steady length. */
  private observe(memLen: number): void {
    this.count(memLen);
    const o = this.tierOpts;
    const sized = this.sized;
    if (sized !== undefined && sized.len === memLen) return;
    // Once, when the streak reaches the mark: a steady generic length costs one compare per run.
    if (this.streak !== (sized === undefined ? o.steadyRuns : o.replaceRuns)) return;
    if (this.pending !== undefined || this.sizedCompiles >= o.maxCompiles || this.declined.has(memLen)) return;
    if (o.compile === 'sync') {
      this.specialize(memLen);
      return;
    }
    // The run that asked goes on with the generic module; the tier is made in a later task.
    this.later(() => this.specializeAsync(memLen));
  }

  /**
   * The tier-up, once per run that is to enter the baseline module: on its `tierUpRuns`th run,
   * optimised code for a steady length (sized) when that length's facts prove more, else for any
   * length. After a sized tier-up, runs of other lengths count afresh towards the generic one.
   */
  private baselineRun(memLen: number): void {
    if (memLen >= 0) this.count(memLen);
    const o = this.tierOpts;
    if (++this.baseRuns !== o.tierUpRuns || this.pending !== undefined) return;
    const steady = this.policy && memLen >= 0 && this.sized === undefined && this.streakLen === memLen && this.streak >= o.steadyRuns
      && this.sizedCompiles < o.maxCompiles && !this.declined.has(memLen);
    if (o.compile === 'sync') {
      if (steady && this.specialize(memLen).outcome === 'used') this.baseRuns = 0;
      else this.optimize();
      return;
    }
    this.later(async () => {
      if (steady && (await this.specializeAsync(memLen)).outcome === 'used') this.baseRuns = 0;
      else await this.optimizeAsync();
    });
  }

  /** Runs a tier-up job in a later task (the 'async' policy); `tierSettled` waits for it. */
  private later(job: () => Promise<unknown>): void {
    this.pending = new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(job)
      .then(() => undefined, () => undefined)
      .finally(() => {
        this.pending = undefined;
      });
  }

  private get x(): Exports {
    if (this.exp === undefined) throw new WasmRunError('the program was run before its Wasm instance was attached');
    return this.exp;
  }

  /** The shared memory (the first instance's; every other tier imports it). */
  private get memory(): WebAssembly.Memory {
    if (this.home === undefined) throw new WasmRunError('the program was run before its Wasm instance was attached');
    return this.home.exp.memory;
  }

  // The per-run path: everything here is paid on every run of a program that may take well under
  // a microsecond, so no BigInt and no global access unless the run faults.
  run(opts: WasmRunOptions = {}): RunResult {
    const mem = opts.mem;
    const memLen = mem === undefined ? -1 : mem.length;
    const tier = this.prepare(memLen, opts.regions);
    if (mem !== undefined) this.bytes.set(mem, this.compiled.layout.memBase);
    return this.enter(tier, memLen, opts.budget);
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
    return this.enter(this.prepare(len, opts.regions), len, opts.budget);
  }

  /**
   * Restores what a run may have changed and makes room for `memLen` bytes of mem (-1: none);
   * returns the tier the run is for.
   */
  private prepare(memLen: number, regions: RegionSpec[] | undefined): Tier {
    const { layout } = this.compiled;
    this.host = this.compiled.hostRegions.length === 0 && (regions === undefined || regions.length === 0)
      ? NO_REGIONS
      : this.hostRegions(regions ?? NO_REGIONS);
    this.memLen = memLen;
    const end = layout.memBase + (memLen < 0 ? 0 : memLen);
    if (end > this.bytes.length) this.ensureMemory(end);
    let tier = this.sized;
    if (tier !== undefined && tier.len === memLen) {
      this.streakLen = memLen;
    } else {
      if (this.upgrade) this.baselineRun(memLen);
      else if (this.policy && memLen >= 0) this.observe(memLen);
      tier = this.sized !== undefined && this.sized.len === memLen ? this.sized : this.genericTier;
    }
    const u8 = this.bytes;
    const last = this.last;
    // Each module zeroes (or has zeroed) only the stack range it writes: on a switch, the range the
    // other module's last run wrote is the host's to clear.
    if (last !== undefined && last !== tier && last.compiled.stackWritten !== undefined) {
      u8.fill(0, last.compiled.stackWritten.start, last.compiled.stackWritten.end);
    }
    const dirty = tier.compiled.stackWritten;
    // A small range the module zeroes itself: a host-side fill costs more to call than to run.
    if (dirty !== undefined && !tier.compiled.moduleZeroesStack) u8.fill(0, dirty.start, dirty.end);
    const restore = this.restore;
    for (let i = 0; i < restore.length; i++) u8.set(restore[i].bytes, restore[i].at);
    const host = this.host;
    for (let i = 0; i < host.length; i++) u8.set(host[i].bytes, layout.hostBase[i]);
    return tier;
  }

  /** Runs with the memory prepared; reads the run record or the fault. */
  private enter(tier: Tier, memLen: number, budgetOpt: number | undefined): RunResult {
    const budget = budgetOpt ?? DEFAULT_BUDGET;
    if (!(budget >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${budget})`);
    this.table = undefined;
    this.hostDetail = '';
    const initial = budget >= MAX_BUDGET ? MAX_BUDGET : Math.floor(budget);
    // Not `initial % TWO_32`: a float modulo is a call out of V8's generated code (fmod).
    const hi = Math.floor(initial / TWO_32);
    // The one place runs enter a module: a module compiled for one mem length never sees another.
    if (tier.len !== ANY_LEN && tier.len !== memLen) {
      throw new WasmRunError(`the module is compiled for mem of exactly ${tier.len} bytes; this run's mem ${memLen < 0 ? 'is absent' : `has ${memLen} bytes`}`);
    }
    this.last = tier;
    tier.runs++;
    this.exp = tier.exp;
    const status = tier.exp.run(memLen, initial - hi * TWO_32, hi);
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
    const memory = this.memory;
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

/**
 * Compiles (V8) and instantiates a compiled program, synchronously (Node, workers). With
 * `specializeFor`, the sized tier for that length is compiled here too.
 */
export function instantiateWasm(program: Program, compiled: CompiledWasm, helpers: HelperRegistry, tiers: WasmTierOptions = {}): WasmInstance {
  const inst = new WasmInstance(program, compiled, helpers, tiers);
  inst.attach(new WebAssembly.Instance(new WebAssembly.Module(compiled.bytes), inst.imports()));
  if (tiers.specializeFor !== undefined && (tiers.specialize ?? true)) inst.specialize(tiers.specializeFor);
  return inst;
}

/** The same, asynchronously (browsers refuse synchronous compiles of larger modules on the main thread). */
export async function instantiateWasmAsync(program: Program, compiled: CompiledWasm, helpers: HelperRegistry, tiers: WasmTierOptions = {}): Promise<WasmInstance> {
  const inst = new WasmInstance(program, compiled, helpers, { compile: 'async', ...tiers });
  const module = await WebAssembly.compile(compiled.bytes);
  inst.attach(await WebAssembly.instantiate(module, inst.imports()));
  if (tiers.specializeFor !== undefined && (tiers.specialize ?? true)) await inst.specializeAsync(tiers.specializeFor);
  return inst;
}

/** Facts that hold for any mem length (a load's facts assuming one are not). */
const anyLength = (facts: ProgramFacts | undefined): ProgramFacts | undefined => (facts !== undefined && facts.assumedSizes.mem === undefined ? facts : undefined);

export const wasmEngine: Engine = {
  name: 'wasm',
  description: 'sandboxed WebAssembly (femtojit JIT: IR -> Wasm, one instance per program, baseline code first, optimised code from the second run, sized for a steady context length when that proves more)',
  prepare: (program, helpers, facts) => instantiateWasmAsync(program, compileToWasm(program, { facts: anyLength(facts), tier: 'baseline' }), helpers),
};

interface TierJob {
  target: 'sized' | 'optimized';
  len: number;
  analysisMs: number;
  compileMs: number;
  proven: number;
  provenGeneric: number;
  compiled?: CompiledWasm;
  /** Why there is no tier (undefined: there is one). */
  why?: string;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

const countProven = (facts: ProgramFacts): number => {
  let n = 0;
  for (const f of facts.access.values()) if (f.verdict === 'proven') n++;
  return n;
};

/**
 * The facts for the sized compile: per access the sized analysis's fact unless only the generic
 * one is proven (both hold at this length; widening can make either the sharper), and the generic
 * module's bounded loops, so that both modules charge the budget alike.
 */
function mergeFacts(generic: ProgramFacts, sized: ProgramFacts): ProgramFacts {
  const access = new Map<number, AccessFact>();
  for (const [slot, f] of sized.access) {
    const g = generic.access.get(slot);
    access.set(slot, f.verdict !== 'proven' && g?.verdict === 'proven' ? g : f);
  }
  return { access, boundedBackEdges: generic.boundedBackEdges, assumedSizes: sized.assumedSizes };
}

function sameLayout(a: CompiledWasm, b: CompiledWasm): boolean {
  const x = a.layout;
  const y = b.layout;
  return x.memBase === y.memBase && x.stackBase === y.stackBase && x.stackTop === y.stackTop && x.initialPages === y.initialPages
    && x.dataBase.length === y.dataBase.length && x.dataBase.every((v, i) => v === y.dataBase[i])
    && x.hostBase.length === y.hostBase.length && x.hostBase.every((v, i) => v === y.hostBase[i])
    && x.regions.length === y.regions.length
    && x.regions.every((r, i) => r.name === y.regions[i].name && r.base === y.regions[i].base && r.size === y.regions[i].size && r.writable === y.regions[i].writable);
}
