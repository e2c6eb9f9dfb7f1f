// The front end's one path from a loaded program to what a back end consumes: the verifier's facts
// (valid for any context size, since a compiled container serves every run) and the optimised IR.
// Both back ends and the engines call this instead of each re-deriving it.
import { buildIr } from './ir/build.js';
import type { IrModule } from './ir/ir.js';
import { buildOptimizedIr } from './ir/pipeline.js';
import { classify, isInvalid } from './opcodes.js';
import type { Program } from './program.js';
import { analyze, type AnalysisRegion } from './verify/absint.js';
import { noFacts, type ProgramFacts } from './verify/facts.js';

export interface FrontEndOptions {
  /** Helper ids the runtime provides; default: the ids the program calls. */
  helpers?: ReadonlySet<number>;
  /** Host regions the container will be given (their sizes are known at compile time). */
  hostRegions?: readonly AnalysisRegion[];
  /**
   * The context (mem) length every run will have, for code specialised to it; the engine must then
   * never enter that code with another length. Default: any length.
   */
  memSize?: number;
  /** The IR passes (default on); off gives the builder's IR as is. */
  optimize?: boolean;
  /** Which passes, in order (default DEFAULT_PASSES; JIT_PASSES is the cheaper choice). */
  passes?: readonly string[];
}

/** Helper ids a program calls with a fixed id. */
export function calledHelpers(program: Program): Set<number> {
  const ids = new Set<number>();
  for (const insn of program.insns) {
    const c = classify(insn);
    if (!isInvalid(c) && c.form === 'call' && !c.local) ids.add(insn.imm);
  }
  return ids;
}

/**
 * The abstract interpreter's facts for any context size (or for exactly `memSize`). A program the analysis cannot handle
 * (it gave up, or threw) gets no facts: every access checked and every loop budgeted, which is
 * always correct. Rejections are the loader's business (runtime/container.ts), not this one's.
 */
export function programFacts(program: Program, opts: FrontEndOptions = {}): ProgramFacts {
  try {
    return analyze(program, {
      regions: [
        ...program.data.map((d) => ({ name: d.name, size: d.bytes.length, writable: d.writable })),
        ...(opts.hostRegions ?? []),
      ],
      helpers: opts.helpers ?? calledHelpers(program),
      memSize: opts.memSize,
    }).facts;
  } catch {
    return noFacts();
  }
}

/** Program (+ facts, computed when not given) -> the IR a back end lowers. */
export function frontEnd(program: Program, facts: ProgramFacts = programFacts(program), opts: FrontEndOptions = {}): IrModule {
  // The same as optimizeIr(buildIr(program, facts), { consume: true }), minus the builder's objects.
  return opts.optimize === false ? buildIr(program, facts) : buildOptimizedIr(program, facts, { passes: opts.passes });
}
