// The optimisation pipeline: named passes run in order. optimizeIr copies its input once (unless
// told it may consume it) and the passes rewrite that copy in place; PASSES offers each pass as a
// pure function for callers that want one alone. In debug mode
// (the default under tests, or FEMTOJIT_DEBUG=1) the validator runs after every pass, so a pass that
// breaks the IR contract is named at once instead of surfacing as a wrong back-end result.
import type { IrModule } from './ir.js';
import { checkMergeInPlace } from './passes/checkmerge.js';
import { constFoldInPlace } from './passes/constfold.js';
import { copyPropInPlace } from './passes/copyprop.js';
import { dceInPlace } from './passes/dce.js';
import { narrowInPlace } from './passes/narrow.js';
import { cloneModule, type InPlacePass, type Pass } from './passes/util.js';
import { validateIr } from './validate.js';

export interface OptimizeOptions {
  /** Pass names in order (default DEFAULT_PASSES). */
  passes?: readonly string[];
  /** Validate after every pass (default: FEMTOJIT_DEBUG=1 or running under vitest). */
  validate?: boolean;
  /**
   * The caller gives the module up: the passes rewrite it instead of a copy (what the front end
   * does with the builder's fresh output). Default false: the input is left untouched.
   */
  consume?: boolean;
}

/** A pass left the module invalid, or an unknown pass was asked for. */
export class IrPassError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IrPassError';
  }
}

const IN_PLACE: ReadonlyMap<string, InPlacePass> = new Map([
  ['constfold', constFoldInPlace],
  ['copyprop', copyPropInPlace],
  ['dce', dceInPlace],
  ['checkmerge', checkMergeInPlace],
  ['narrow', narrowInPlace],
]);

const pure = (p: InPlacePass): Pass => (m) => {
  const out = cloneModule(m);
  p(out);
  return out;
};

/** Every pass by name, as a pure function (the input module is untouched). */
export const PASSES: ReadonlyMap<string, Pass> = new Map([...IN_PLACE].map(([name, p]) => [name, pure(p)]));

/**
 * Constants first (they turn registers into immediates and branches into jumps), copies, constants
 * again on what copies exposed, then dead code, check merging on the final accesses, and narrowing
 * last because it computes hiDead marks that the other passes do not maintain.
 */
export const DEFAULT_PASSES: readonly string[] = ['constfold', 'copyprop', 'constfold', 'dce', 'checkmerge', 'narrow'];

/**
 * A cheaper pipeline for a JIT that must compile fast: constants (immediates, folded branches),
 * check merging and narrowing, which change the lowered code most, without the copy propagation,
 * second folding and dead code elimination that mostly shrink it (an optimising Wasm tier removes
 * dead code itself).
 */
export const JIT_PASSES: readonly string[] = ['constfold', 'checkmerge', 'narrow'];

function debugDefault(): boolean {
  const env = typeof process === 'undefined' ? undefined : process.env;
  return env?.FEMTOJIT_DEBUG === '1' || env?.VITEST !== undefined;
}

export function optimizeIr(m: IrModule, opts: OptimizeOptions = {}): IrModule {
  const names = opts.passes ?? DEFAULT_PASSES;
  const validate = opts.validate ?? debugDefault();
  const passes = names.map((name) => {
    const pass = IN_PLACE.get(name);
    if (pass === undefined) throw new IrPassError(`unknown IR pass '${name}' (known: ${[...IN_PLACE.keys()].join(', ')})`);
    return pass;
  });
  const cur = opts.consume === true ? m : cloneModule(m);
  for (const [k, pass] of passes.entries()) {
    const name = names[k];
    pass(cur);
    if (validate) {
      const problems = validateIr(cur);
      if (problems.length > 0) throw new IrPassError(`${m.origin}: the IR is invalid after pass '${name}':\n  ${problems.join('\n  ')}`);
    }
  }
  return cur;
}
