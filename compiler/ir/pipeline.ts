// The optimisation pipeline: named passes run in order, each returning a new module. In debug mode
// (the default under tests, or FEMTOJIT_DEBUG=1) the validator runs after every pass, so a pass that
// breaks the IR contract is named at once instead of surfacing as a wrong back-end result.
import type { IrModule } from './ir.js';
import { checkMerge } from './passes/checkmerge.js';
import { constFold } from './passes/constfold.js';
import { copyProp } from './passes/copyprop.js';
import { dce } from './passes/dce.js';
import { narrow } from './passes/narrow.js';
import type { Pass } from './passes/util.js';
import { validateIr } from './validate.js';

export interface OptimizeOptions {
  /** Pass names in order (default DEFAULT_PASSES). */
  passes?: readonly string[];
  /** Validate after every pass (default: FEMTOJIT_DEBUG=1 or running under vitest). */
  validate?: boolean;
}

/** A pass left the module invalid, or an unknown pass was asked for. */
export class IrPassError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IrPassError';
  }
}

export const PASSES: ReadonlyMap<string, Pass> = new Map([
  ['constfold', constFold],
  ['copyprop', copyProp],
  ['dce', dce],
  ['checkmerge', checkMerge],
  ['narrow', narrow],
]);

/**
 * Constants first (they turn registers into immediates and branches into jumps), copies, constants
 * again on what copies exposed, then dead code, check merging on the final accesses, and narrowing
 * last because it computes hiDead marks that the other passes do not maintain.
 */
export const DEFAULT_PASSES: readonly string[] = ['constfold', 'copyprop', 'constfold', 'dce', 'checkmerge', 'narrow'];

function debugDefault(): boolean {
  const env = typeof process === 'undefined' ? undefined : process.env;
  return env?.FEMTOJIT_DEBUG === '1' || env?.VITEST !== undefined;
}

export function optimizeIr(m: IrModule, opts: OptimizeOptions = {}): IrModule {
  const names = opts.passes ?? DEFAULT_PASSES;
  const validate = opts.validate ?? debugDefault();
  let cur = m;
  for (const name of names) {
    const pass = PASSES.get(name);
    if (pass === undefined) throw new IrPassError(`unknown IR pass '${name}' (known: ${[...PASSES.keys()].join(', ')})`);
    cur = pass(cur);
    if (validate) {
      const problems = validateIr(cur);
      if (problems.length > 0) throw new IrPassError(`${m.origin}: the IR is invalid after pass '${name}':\n  ${problems.join('\n  ')}`);
    }
  }
  return cur;
}
