// The eBPF engines timed in this process: every host engine of runtime/engine.ts's ENGINES map, with
// the Wasm JIT's compile split into femtojit's own compile (Program -> module bytes) and V8's compile +
// instantiate, plus the Wasm AOT output optimised by binaryen (-O) run through the same host glue.
// Engines that run on the board (`thumb`, the device interpreter) are measured by
// bench/device-engines.ts instead: their wall time here would be QEMU's.
import { programFacts } from '../compiler/frontend.js';
import type { Program } from '../compiler/program.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import { compileWasmAot } from '../backends/wasm/aot.js';
import { ENGINES } from '../runtime/engine.js';
import { compileToWasm, instantiateWasm } from '../runtime/wasm-engine.js';
import { DEVICE_ENGINE_NAMES } from './device-engines.js';
import type { WasmInstance } from '../runtime/wasm-engine.js';
import { BENCH_BUDGET, EngineFailure, hostEbpfEngine, timeRunnable, type EbpfBenchEngine, type Measurement } from './engines.js';
import { measure, medianMs, type Batch, type TimingOptions } from './measure.js';

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** femtojit's compile, repeated for a stable figure once timing is asked for. */
async function jitTime<T>(timing: TimingOptions | undefined, first: number, compile: () => T, warmup = 0): Promise<number> {
  if (!timing || timing.compileRepeats <= 1) return first;
  for (let i = 0; i < warmup; i++) await compile();
  return medianMs(timing.compileRepeats, compile);
}

/**
 * Compiles of the same program before the JIT's compile is timed: a host runtime compiles many
 * programs, so its compiler's own code runs warm (optimised by V8); the first compiles in a fresh
 * process also pay for V8 compiling femtojit itself.
 */
const JIT_WARMUP = 20;

/**
 * Times a Wasm instance the way the clang-wasm32 driver times its module: the context written into
 * linear memory once (contextView) and run in place (runResident), rewritten before every run only
 * for a program that writes it. The first run goes through `run` (copying), as a host would start.
 */
async function timeWasm(inst: WasmInstance, input: Uint8Array, timing: TimingOptions | undefined, mutates: boolean, base: Measurement): Promise<Measurement> {
  const first = await timeRunnable(inst, input, undefined, base);
  if (!timing) return first;
  const view = inst.contextView(input.length);
  view.set(input);
  const opts = { budget: BENCH_BUDGET };
  const check = (i: number): void => {
    const r = inst.runResident(input.length, opts);
    if (!r.ok || BigInt.asUintN(64, r.r0) !== first.checksum) {
      throw new EngineFailure(`resident run ${i} returned ${r.ok ? `0x${BigInt.asUintN(64, r.r0).toString(16)}` : `a ${r.fault.kind} fault`}, the first run 0x${first.checksum.toString(16)}`);
    }
  };
  const batch: Batch = mutates
    ? (n) => {
        for (let i = 0; i < n; i++) {
          view.set(input);
          check(i);
        }
      }
    : (n) => {
        for (let i = 0; i < n; i++) check(i);
      };
  return { ...first, timing: await measure(batch, timing) };
}

/**
 * The `wasm` engine of ENGINES, prepared step by step so that each step is timed on its own. A
 * container is verified once when it is loaded (runtime/container.ts), and that analysis yields the
 * facts; the JIT then compiles the loaded program with them (IR passes, lowering, encoding), and V8
 * compiles and instantiates the module. `jitMs` is the JIT's part alone, `analysisMs` the load's
 * analysis, timed apart. V8 caches nothing between different module bytes, so the instantiate time
 * is that of a first compile.
 */
export const WASM_JIT: EbpfBenchEngine = {
  name: 'wasm',
  description: 'femtojit Wasm JIT (runtime/engine.ts `wasm`): the loaded program with its verifier facts -> the baseline tier (no IR passes, no loop copies) -> V8 compile + instantiate; on the second run it tiers up to the optimised module, specialised for the context length when that proves more (runtime/wasm-engine.ts); the timed runs use that module, with the context resident in its memory (`contextView`/`runResident`) and rewritten before each run only for programs that write it, as the clang-wasm32 driver does',
  where: 'host',
  unavailable: async () => (ENGINES.has('wasm') ? undefined : "runtime/engine.ts has no 'wasm' engine"),
  async measure(program, helpers, input, timing, mutates = true) {
    const a0 = performance.now();
    const facts = programFacts(program);
    const firstAnalysis = performance.now() - a0;
    // The path to a ready instance: the baseline tier, as wasmEngine.prepare compiles it.
    const compiled = compileToWasm(program, { facts, tier: 'baseline' });
    const jitMs = await jitTime(timing, compiled.stats.compileMs, () => compileToWasm(program, { facts, tier: 'baseline' }), JIT_WARMUP);
    const analysisMs = await jitTime(timing, firstAnalysis, () => programFacts(program));
    const t0 = performance.now();
    const runnable = instantiateWasm(program, compiled, helpers);
    const instantiateMs = performance.now() - t0;
    const m = await timeWasm(runnable, input, timing, mutates, {
      checksum: 0n, jitMs, analysisMs, instantiateMs, prepareMs: jitMs + instantiateMs, codeBytes: compiled.bytes.length,
    });
    // The timed runs ran on the module the tier-up installed (on the second run): its size and cost.
    const used = runnable.tierStats().compiles.filter((c) => c.outcome === 'used');
    const last = used[used.length - 1];
    if (last !== undefined) {
      m.codeBytes = last.codeBytes;
      m.tierUp = { target: last.target, analysisMs: last.analysisMs, compileMs: last.compileMs, instantiateMs: last.instantiateMs };
    }
    return m;
  },
};

/** The AOT compile as `femtojit compile --target wasm -O` does it after verification: JIT lowering, binaryen, wabt. */
async function aotBytes(program: Program, facts: ProgramFacts): Promise<Uint8Array<ArrayBuffer>> {
  const out = await compileWasmAot(program, { optimize: true, emit: 'wasm', facts });
  if (typeof out === 'string') throw new EngineFailure('compileWasmAot returned text for emit: wasm');
  return new Uint8Array(out);
}

/**
 * `femtojit compile --target wasm -O`: the JIT's module optimised by binaryen -O2 (and validated by
 * wabt), run by the JIT's own host glue. The optimiser keeps the ABI (backends/wasm/ABI.md: exports,
 * data segments, memory layout), so the layout of the unoptimised compile describes it.
 */
export const WASM_AOT: EbpfBenchEngine = {
  name: 'wasm-aot',
  description: 'femtojit Wasm AOT: the same module through binaryen -O2 (`compileWasmAot({optimize: true})`), run with the JIT engine\'s host glue (resident context, as `wasm`)',
  where: 'host',
  async unavailable() {
    // Loads both tools once, so the first program's compile time does not include loading them.
    try {
      await import('binaryen');
      await (await import('wabt')).default();
      return undefined;
    } catch (e) {
      return `binaryen/wabt cannot be loaded (${message(e)})`;
    }
  },
  async measure(program, helpers, input, timing, mutates = true) {
    const facts = programFacts(program);
    const t0 = performance.now();
    const bytes = await aotBytes(program, facts);
    const first = performance.now() - t0;
    const jitMs = await jitTime(timing, first, () => aotBytes(program, facts));
    // The same facts give the same layout, without analysing the program again.
    const layout = compileToWasm(program, { facts });
    const t1 = performance.now();
    // The binaryen output itself: no JIT tier may replace it.
    const runnable = instantiateWasm(program, { ...layout, bytes }, helpers, { specialize: false });
    const instantiateMs = performance.now() - t1;
    return timeWasm(runnable, input, timing, mutates, {
      checksum: 0n, jitMs, instantiateMs, prepareMs: jitMs + instantiateMs, codeBytes: bytes.length,
    });
  },
};

/**
 * In column order: ENGINES' host engines (the Wasm JIT replaced by its step-timed adapter, the AOT
 * output right after it); engines that run on the board are left to the device phase.
 */
export function hostEbpfEngines(): EbpfBenchEngine[] {
  const out: EbpfBenchEngine[] = [];
  for (const engine of ENGINES.values()) {
    if (DEVICE_ENGINE_NAMES.has(engine.name)) continue;
    if (engine.name === WASM_JIT.name) out.push(WASM_JIT, WASM_AOT);
    else out.push(hostEbpfEngine(engine));
  }
  return out;
}
