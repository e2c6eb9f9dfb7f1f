// Program -> Wasm module bytes: the front end (IR builder with the verifier's facts when given),
// the IR passes, then the lowering. Shared by the JIT engine (runtime/wasm-engine.ts) and the AOT output (aot.ts).
import { frontEnd, programFacts } from '../../compiler/frontend.js';
import type { IrModule } from '../../compiler/ir/ir.js';
import { buildOptimizedIr } from '../../compiler/ir/pipeline.js';
import type { Program } from '../../compiler/program.js';
import { noFacts, type ProgramFacts } from '../../compiler/verify/facts.js';
import { IMPORT_MODULE } from './abi.js';
import { lowerModule, moduleLayout, MODULE_ZERO_MAX_BYTES, type HostRegionDecl, type ModuleLayout } from './lower.js';
import { importDefinedMemory } from './module.js';

/** The baseline tier's IR passes: none (see WasmTier). */
const BASELINE_PASSES: readonly string[] = [];

/**
 * 'optimized': the full IR pipeline (DEFAULT_PASSES) and the lowering's loop copies (guarded fast
 * copies, unrolling, versioned copies behind entry range tests): the fastest code. 'baseline': no
 * IR passes and each block lowered once (check groups kept): 1.5-5x faster to compile, loops
 * slower; what the JIT runs first (runtime/wasm-engine.ts tiers up from it). No passes rather than
 * JIT_PASSES: on the benchmark programs their code ran no faster once V8 had optimised it, and
 * they cost a third of the baseline's compile. Both tiers charge the same budget (the builder's
 * charges, which no pass or loop copy changes) and end every run alike: same r0, fault kind, pc
 * and address, same steps.
 */
export type WasmTier = 'baseline' | 'optimized';

export interface WasmCompileOptions {
  /**
   * The verifier's facts: proven accesses lose their checks, known regions get one-range checks,
   * proven loops lose their budget charges. Default 'analyze': run the abstract interpreter (for
   * any mem size); 'none': check every access and charge every loop.
   */
  facts?: ProgramFacts | 'analyze' | 'none';
  /** Helper ids the runtime provides (for the analysis; default: the ids the program calls). */
  helpers?: ReadonlySet<number>;
  /** Run the IR passes (compiler/ir/pipeline.ts) before lowering (default true). */
  optimize?: boolean;
  /** Emit the Wasm name section (default false: the JIT path does not need it; AOT output sets it). */
  names?: boolean;
  /** Host regions every run will supply (names, sizes and writability are fixed at compile time). */
  hostRegions?: readonly HostRegionDecl[];
  /**
   * The mem length every run of this module will have. With facts 'analyze' the analysis assumes
   * exactly this length (sizedFacts); given facts are taken as computed for it. The module is then
   * only correct for runs whose mem has this length: whoever runs it must enforce that (the JIT's
   * sized tier, runtime/wasm-engine.ts, does it at its one dispatch). Recorded in `memSize`.
   */
  memSize?: number;
  /**
   * Import the linear memory as `env.memory` (same limits, still exported as `memory`) instead of
   * defining it, so that the module can run in another instance's memory: the JIT's sized tier
   * shares the generic instance's memory this way. Default false (AOT output and other hosts get
   * the ABI's defined memory).
   */
  importMemory?: boolean;
  /** Which code to make (WasmTier; default 'optimized'). */
  tier?: WasmTier;
}

export interface WasmCompileStats {
  /** eBPF instruction slots compiled. */
  insns: number;
  /** Program -> module bytes, in milliseconds (front end, passes, lowering, encoding). */
  compileMs: number;
  /** Functions compiled through the dispatcher (irreducible control flow). */
  irreducible: string[];
}

export interface CompiledWasm {
  bytes: Uint8Array<ArrayBuffer>;
  layout: ModuleLayout;
  ir: IrModule;
  /** The facts the module was compiled with (noFacts() for facts 'none'). */
  facts: ProgramFacts;
  /** Where the facts came from: 'none' asks for every check, so no tier may add facts. */
  factsFrom: 'analyze' | 'given' | 'none';
  /** The only mem length the module may run with (WasmCompileOptions.memSize), undefined: any. */
  memSize: number | undefined;
  /** The memory is imported as `env.memory` (WasmCompileOptions.importMemory). */
  memoryImported: boolean;
  /** The code it holds (WasmCompileOptions.tier). */
  tier: WasmTier;
  hostRegions: readonly HostRegionDecl[];
  stats: WasmCompileStats;
  /**
   * The stack bytes a run can write, as linear-memory addresses [start, end), or undefined when it
   * writes none: every store and atomic is proven to go to another region and no helper is called
   * (a helper may write anywhere writable). Only these bytes need zeroing between runs; the rest
   * of the stack stays as instantiation left it, zero.
   */
  stackWritten: StackRange | undefined;
  /**
   * Whether the module's `run` zeroes `stackWritten` itself at its start (a small range: cheaper
   * than any host-side fill), so the host has nothing to restore on the stack.
   */
  moduleZeroesStack: boolean;
}

export interface StackRange {
  start: number;
  end: number;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Program -> Wasm module bytes (V8's compile not included). */
export function compileToWasm(program: Program, opts: WasmCompileOptions = {}): CompiledWasm {
  const t0 = now();
  const hostRegions = opts.hostRegions ?? [];
  const memSize = opts.memSize;
  if (memSize !== undefined && !(Number.isSafeInteger(memSize) && memSize >= 0 && memSize < 2 ** 32)) {
    throw new RangeError(`memSize must be a mem length in bytes, 0 to 2^32-1 (is ${memSize})`);
  }
  const factsFrom = opts.facts === 'none' ? 'none' : opts.facts === undefined || opts.facts === 'analyze' ? 'analyze' : 'given';
  const facts =
    opts.facts === 'none' ? noFacts()
    : typeof opts.facts === 'object' ? opts.facts
    : memSize !== undefined ? sizedFacts(program, memSize, { helpers: opts.helpers, hostRegions })
    : programFacts(program, { helpers: opts.helpers, hostRegions });
  const tier = opts.tier ?? 'optimized';
  if (tier !== 'optimized' && tier !== 'baseline') throw new RangeError(`tier must be 'baseline' or 'optimized' (is '${String(tier)}')`);
  const baseline = tier === 'baseline';
  // The baseline's empty pipeline has no pass to validate after: skip asking the environment.
  const ir = baseline && opts.optimize !== false
    ? buildOptimizedIr(program, facts, { passes: BASELINE_PASSES, validate: false })
    : frontEnd(program, facts, { optimize: opts.optimize });
  const layout = moduleLayout(ir, hostRegions);
  const written = stackWritten(ir, facts, layout);
  const moduleZeroesStack = written !== undefined && wordSpan(written) <= MODULE_ZERO_MAX_BYTES;
  const lowered = lowerModule(ir, { hostRegions, name: program.origin, names: opts.names ?? false, zeroStack: moduleZeroesStack ? written : undefined, loopCopies: !baseline, layout });
  const importMemory = opts.importMemory ?? false;
  return {
    bytes: importMemory ? importDefinedMemory(lowered.bytes, IMPORT_MODULE, IMPORT_MEMORY) : lowered.bytes,
    layout: lowered.layout,
    ir,
    facts,
    factsFrom,
    memSize,
    memoryImported: importMemory,
    tier,
    hostRegions,
    stats: { insns: program.insns.length, compileMs: now() - t0, irreducible: lowered.irreducible },
    stackWritten: written,
    moduleZeroesStack,
  };
}

/** The memory import's field name under `env` (WasmCompileOptions.importMemory). */
export const IMPORT_MEMORY = 'memory';

/**
 * The analysis's facts for runs whose mem is exactly `memSize` bytes: r2 and the mem region's size
 * are that constant, so most mem accesses are proven. Valid for that length only.
 */
export function sizedFacts(
  program: Program,
  memSize: number,
  opts: { helpers?: ReadonlySet<number>; hostRegions?: readonly HostRegionDecl[] } = {},
): ProgramFacts {
  return programFacts(program, { helpers: opts.helpers, hostRegions: opts.hostRegions, memSize });
}

/** Bytes of the 8-byte words that cover a range (what `run`'s zeroing stores). */
const wordSpan = (r: StackRange): number => ((r.end + 7) & ~7) - (r.start & ~7);

/**
 * The stack range a run can write. The entry function's stores with a known offset from its r10
 * (the verifier's facts) write below the stack top; anything else (a helper call, a callee's
 * frame, a pointer of unknown origin) may write the whole stack.
 */
function stackWritten(m: IrModule, facts: ProgramFacts, layout: ModuleLayout): StackRange | undefined {
  const top = layout.stackTop;
  const whole: StackRange = { start: layout.stackBase, end: top };
  let start = top;
  let end = top;
  for (let f = 0; f < m.functions.length; f++) {
    for (const b of m.functions[f].blocks) {
      for (const i of b.insts) {
        if (i.op === 'call' || i.op === 'callx') return whole;
        if (i.op !== 'store' && i.op !== 'atomic') continue;
        if (i.access.verdict === 'proven' && i.access.region !== undefined && i.access.region !== 'stack') continue;
        const fact = facts.access.get(i.pc);
        const at = fact?.offset;
        if (f !== 0 || i.access.region !== 'stack' || fact?.region !== 'stack' || at === undefined) return whole;
        start = Math.min(start, top + at.min);
        end = Math.max(end, top + at.max + i.size);
      }
    }
  }
  if (start >= end) return undefined;
  return { start: Math.max(layout.stackBase, start), end: Math.min(top, end) };
}
