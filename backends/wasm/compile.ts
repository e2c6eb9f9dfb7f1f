// Program -> Wasm module bytes: the front end (IR builder with the verifier's facts when given),
// the IR passes, then the lowering. Shared by the JIT engine (runtime/wasm-engine.ts) and the AOT output (aot.ts).
import { frontEnd, programFacts } from '../../compiler/frontend.js';
import type { IrModule } from '../../compiler/ir/ir.js';
import type { Program } from '../../compiler/program.js';
import { noFacts, type ProgramFacts } from '../../compiler/verify/facts.js';
import { lowerModule, type HostRegionDecl, type ModuleLayout } from './lower.js';

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
  hostRegions: readonly HostRegionDecl[];
  stats: WasmCompileStats;
  /**
   * Whether a run can write the stack: false when every store and atomic is proven to go to
   * another region and no helper is called (a helper may write anywhere writable). A host that
   * knows this need not zero the stack between runs: it stays as instantiation left it, zero.
   */
  writesStack: boolean;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Program -> Wasm module bytes (V8's compile not included). */
export function compileToWasm(program: Program, opts: WasmCompileOptions = {}): CompiledWasm {
  const t0 = now();
  const hostRegions = opts.hostRegions ?? [];
  const facts =
    opts.facts === 'none' ? noFacts()
    : opts.facts === undefined || opts.facts === 'analyze' ? programFacts(program, { helpers: opts.helpers, hostRegions })
    : opts.facts;
  const ir = frontEnd(program, facts, { optimize: opts.optimize });
  const lowered = lowerModule(ir, { hostRegions, name: program.origin, names: opts.names ?? false });
  return {
    bytes: lowered.bytes,
    layout: lowered.layout,
    ir,
    hostRegions,
    stats: { insns: program.insns.length, compileMs: now() - t0, irreducible: lowered.irreducible },
    writesStack: writesStack(ir),
  };
}

function writesStack(m: IrModule): boolean {
  for (const f of m.functions) {
    for (const b of f.blocks) {
      for (const i of b.insts) {
        if (i.op === 'call' || i.op === 'callx') return true;
        if ((i.op === 'store' || i.op === 'atomic') && !(i.access.verdict === 'proven' && i.access.region !== undefined && i.access.region !== 'stack')) return true;
      }
    }
  }
  return false;
}
