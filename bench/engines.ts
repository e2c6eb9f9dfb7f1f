// What the harness runs a benchmark on. Three families:
// - host eBPF engines run the clang BPF object in this process: every engine of runtime/engine.ts's
//   ENGINES map that runs on the host (bench/host-engines.ts; the Wasm JIT and AOT get adapters
//   that time their compile stages separately), the rest through `hostEbpfEngine` here;
// - reference engines compile the same C source directly: gcc -O2 (`native`, the baseline and the
//   checksum oracle) and clang-19 wasm32 (`clang-wasm32`, the ceiling for femtojit's Wasm back end,
//   run in this very V8);
// - device engines run on the emulated Cortex-M4 and report exact instruction counts
//   (bench/device-engines.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Program } from '../compiler/program.js';
import type { Engine, Runnable } from '../runtime/engine.js';
import type { RunResult } from '../runtime/errors.js';
import type { HelperRegistry } from '../runtime/helpers.js';
import { measure, type Batch, type Timing, type TimingOptions } from './measure.js';
import type { BenchProgram } from './programs.js';
import { buildNative, compileWasm, missingTool, runNative, WASM_CLANG, wasmArgs, GCC, run, ToolError } from './toolchain.js';

export interface Measurement {
  /** r0 / the C function's result, as an unsigned 64-bit value. */
  checksum: bigint;
  /** Building the runnable from source (gcc, clang): reference engines only. */
  compileMs?: number;
  /** Engine preparation of a loaded program (JIT compile, decode) or Wasm compile + instantiate. */
  prepareMs?: number;
  /** femtojit's own compile of the loaded program with its facts, to the first runnable code: median ms. */
  jitMs?: number;
  /** The verifier's analysis at load that yields the facts jitMs compiles with (not in jitMs), median ms. */
  analysisMs?: number;
  /** V8 compile + instantiate of a Wasm module (the first one of these bytes), ms. */
  instantiateMs?: number;
  /** Size of the target code: Thumb code, a native function, a Wasm module (the one the timed runs used). */
  codeBytes?: number;
  /**
   * A tiering engine's tier-up, off the path to a ready instance: which module the timed runs
   * used ('optimized' for any length, 'sized' for the run's length) and what compiling it cost
   * (analysis for the length, compile, V8), ms.
   */
  tierUp?: { target: string; analysisMs: number; compileMs: number; instantiateMs: number };
  /** eBPF instructions executed per run, when the engine counts them. */
  steps?: number;
  /** Device engines: instructions per run from the board's exact counter. */
  deviceInsns?: number;
  /** Absent when only the checksum was asked for. */
  timing?: Timing;
}

export interface EbpfBenchEngine {
  name: string;
  description: string;
  /** Timed in this process (device engines implement DeviceBenchEngine instead). */
  where: 'host';
  /** Why this engine cannot run on this machine, or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  /**
   * Runs `program` with `input` as its context: once for the checksum, then timed when `timing` is
   * given. `mutates`: the program writes its context (bench/programs.ts), so every run needs a fresh
   * copy; an engine that can run on a context resident in its memory skips the copy otherwise, as
   * the clang-wasm32 driver does.
   */
  measure(program: Program, helpers: HelperRegistry, input: Uint8Array, timing?: TimingOptions, mutates?: boolean): Promise<Measurement>;
}

export interface ReferenceContext {
  input: Uint8Array;
  /** The input written to a file, for engines in another process. */
  inputPath: string;
  workDir: string;
}

export interface ReferenceEngine {
  name: string;
  description: string;
  /** Why this engine cannot run here; `workDir` is scratch space for probing the tools. */
  unavailable(workDir: string): Promise<string | undefined>;
  measure(p: BenchProgram, ctx: ReferenceContext, timing?: TimingOptions): Promise<Measurement>;
}

/** An engine ran but did not produce an answer (fault, trap, bad output); the message says why. */
export class EngineFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineFailure';
  }
}

/** Far above any benchmark's needs, but still a bound: a looping program faults instead of hanging. */
export const BENCH_BUDGET = 1_000_000_000;

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const hex = (v: bigint): string => `0x${v.toString(16)}`;

// Messages leave out the engine and program: the harness prefixes both.
function answer(r: RunResult): bigint {
  if (!r.ok) throw new EngineFailure(`${r.fault.kind} fault at slot ${r.fault.pc}: ${r.fault.message}`);
  return u64(r.r0);
}

/**
 * Checks the first run of a prepared program and, with `timing`, times `run` on it. Engines copy
 * `mem` for each run (the interpreter's documented convention), so programs that write their
 * context see the same input every time.
 */
export async function timeRunnable(runnable: Runnable, input: Uint8Array, timing: TimingOptions | undefined, base: Measurement = { checksum: 0n }): Promise<Measurement> {
  const opts = { mem: input, budget: BENCH_BUDGET };
  const first = await runnable.run(opts);
  const checksum = answer(first);
  const result: Measurement = { ...base, checksum, steps: first.steps };
  if (!timing) return result;
  const check = (r: RunResult, i: number): void => {
    const got = answer(r);
    if (got !== checksum) throw new EngineFailure(`run ${i} returned ${hex(got)}, the first run ${hex(checksum)}`);
  };
  const rest = async (pending: Promise<RunResult>, from: number, n: number): Promise<void> => {
    check(await pending, from);
    for (let i = from + 1; i < n; i++) check(await runnable.run(opts), i);
  };
  const batch: Batch = (n) => {
    for (let i = 0; i < n; i++) {
      const r = runnable.run(opts);
      if (r instanceof Promise) return rest(r, i, n);
      check(r, i);
    }
  };
  result.timing = await measure(batch, timing);
  return result;
}

/** Adapts an engine of the ENGINES map: prepare once, then time `run` on the same Runnable. */
export function hostEbpfEngine(engine: Engine): EbpfBenchEngine {
  return {
    name: engine.name,
    description: engine.description,
    where: 'host',
    unavailable: async () => undefined,
    async measure(program, helpers, input, timing) {
      const t0 = performance.now();
      const runnable: Runnable = await engine.prepare(program, helpers);
      const prepareMs = performance.now() - t0;
      return timeRunnable(runnable, input, timing, { checksum: 0n, prepareMs });
    },
  };
}

const NATIVE: ReferenceEngine = {
  name: 'native',
  description: 'gcc -O2, called from a generated C driver timed with clock_gettime(CLOCK_MONOTONIC)',
  unavailable: () => missingTool(GCC.command),
  async measure(p, ctx, timing) {
    const exe = await buildNative(p, ctx.workDir);
    const out = await runNative(
      exe.value,
      ctx.inputPath,
      timing && { minSampleNs: timing.minSampleMs * 1e6, samples: timing.samples, warmupNs: timing.warmupMs * 1e6 },
    );
    const result: Measurement = { checksum: out.checksum, compileMs: exe.ms };
    if (timing && out.nsPerRun !== undefined && out.iterations !== undefined && out.samplesNs !== undefined) {
      result.timing = { nsPerRun: out.nsPerRun, iterations: out.iterations, samplesNs: out.samplesNs };
    }
    return result;
  },
};

type Wasm32Entry = (ptr: number, len: bigint) => bigint;

/** Where the input goes: the start of the heap, which nothing in a -nostdlib module uses. */
function heapBase(instance: WebAssembly.Instance): number {
  const g = instance.exports.__heap_base;
  const v = g instanceof WebAssembly.Global ? Number(g.value) : 0x10000;
  return Math.ceil(v / 16) * 16;
}

const CLANG_WASM32: ReferenceEngine = {
  name: 'clang-wasm32',
  description: `clang-19 ${wasmArgs('NAME').join(' ')}, run in this process's V8`,
  async unavailable(workDir) {
    const missing = await missingTool(WASM_CLANG);
    if (missing) return missing;
    // The linker is the part most likely to be absent: link a one-function module to find out.
    try {
      const src = join(workDir, 'wasm-probe.c');
      writeFileSync(src, 'int probe(int x) { return x + 1; }\n');
      await run(WASM_CLANG, [...wasmArgs('probe'), src, '-o', `${src}.wasm`]);
      return undefined;
    } catch (e) {
      return e instanceof ToolError ? e.message.split('\n').slice(-1)[0] : String(e);
    }
  },
  async measure(p, ctx, timing) {
    const built = await compileWasm(p, ctx.workDir);
    const t0 = performance.now();
    const module = await WebAssembly.compile(built.value);
    const instance = await WebAssembly.instantiate(module, {});
    const prepareMs = performance.now() - t0;
    const memory = instance.exports.memory;
    const entry = instance.exports[p.name];
    if (!(memory instanceof WebAssembly.Memory) || typeof entry !== 'function') {
      throw new EngineFailure(`${p.name}.wasm does not export both memory and ${p.name}`);
    }
    const fn = entry as Wasm32Entry;
    const at = heapBase(instance);
    const need = at + ctx.input.length - memory.buffer.byteLength;
    if (need > 0) memory.grow(Math.ceil(need / 65536));
    const bytes = new Uint8Array(memory.buffer);
    const len = BigInt(ctx.input.length);
    bytes.set(ctx.input, at);
    const checksum = u64(fn(at, len));
    const result: Measurement = { checksum, compileMs: built.ms, prepareMs, instantiateMs: prepareMs, codeBytes: built.value.length };
    if (!timing) return result;
    const input = ctx.input;
    // The export returns a signed i64: compare against that, so the hot loop does no conversion.
    const signed = BigInt.asIntN(64, checksum);
    const disagree = (i: number, got: bigint): EngineFailure =>
      new EngineFailure(`run ${i} returned ${hex(u64(got))}, the first run ${hex(checksum)}`);
    const batch: Batch = p.mutates
      ? (n) => {
          for (let i = 0; i < n; i++) {
            bytes.set(input, at);
            const got = fn(at, len);
            if (got !== signed) throw disagree(i, got);
          }
        }
      : (n) => {
          for (let i = 0; i < n; i++) {
            const got = fn(at, len);
            if (got !== signed) throw disagree(i, got);
          }
        };
    result.timing = await measure(batch, timing);
    return result;
  },
};

/** In column order: the baseline first. */
export const REFERENCE_ENGINES: readonly ReferenceEngine[] = [NATIVE, CLANG_WASM32];
