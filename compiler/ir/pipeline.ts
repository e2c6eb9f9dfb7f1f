// The optimisation pipeline: named passes run in order. The passes work on the record form of the
// IR (flat.ts): optimizeIr converts the module once, runs the passes on the records and converts
// back once, into the module itself when told it may consume it (what the front end does with the
// builder's fresh output), else into a new module. PASSES offers each pass as a pure function. In
// debug mode (the default under tests, or FEMTOJIT_DEBUG=1) the validator runs after every pass, so
// a pass that breaks the IR contract is named at once instead of surfacing as a wrong back-end result.
import type { Program } from '../program.js';
import type { ProgramFacts } from '../verify/facts.js';
import { buildFlat } from './build.js';
import type { IrModule } from './ir.js';
import { blocksOf, flatten, functionsOf, releaseFlat, writeBack, type FlatModule } from './flat.js';
import { checkMergeFlat } from './passes/checkmerge.js';
import { constFoldFlat } from './passes/constfold.js';
import { copyPropFlat } from './passes/copyprop.js';
import { dceFlat } from './passes/dce.js';
import { narrowFlat } from './passes/narrow.js';
import type { Pass } from './passes/util.js';
import { validateIr } from './validate.js';

export interface OptimizeOptions {
  /** Pass names in order (default DEFAULT_PASSES). */
  passes?: readonly string[];
  /** Validate after every pass (default: FEMTOJIT_DEBUG=1 or running under vitest). */
  validate?: boolean;
  /**
   * The caller gives the module up: its functions get the optimised blocks and it is returned
   * (what the front end does with the builder's fresh output). Default false: the input is left
   * untouched and a new module is returned.
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

/** A pass over the record form: rewrites the records it is given. */
type FlatPass = (fm: FlatModule) => void;

const FLAT: ReadonlyMap<string, FlatPass> = new Map([
  ['constfold', constFoldFlat],
  ['copyprop', copyPropFlat],
  ['dce', dceFlat],
  ['checkmerge', checkMergeFlat],
  ['narrow', narrowFlat],
]);

/** A new module: m's fields with the records' functions (m is untouched). */
function moduleOf(fm: FlatModule, m: IrModule): IrModule {
  return { ...m, helpers: [...m.helpers], functions: fm.fns.map((f, k) => ({ ...m.functions[k], blocks: blocksOf(fm, f) })) };
}

const pure = (p: FlatPass): Pass => (m) => {
  const fm = flatten(m);
  try {
    p(fm);
    return moduleOf(fm, m);
  } finally {
    releaseFlat(fm);
  }
};

/** Every pass by name, as a pure function (the input module is untouched). */
export const PASSES: ReadonlyMap<string, Pass> = new Map([...FLAT].map(([name, p]) => [name, pure(p)]));

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

/** Read once, when the module loads: process.env is a slow getter, and the JIT asks on every compile. */
const DEBUG_DEFAULT: boolean = (() => {
  const env = typeof process === 'undefined' ? undefined : process.env;
  return env?.FEMTOJIT_DEBUG === '1' || env?.VITEST !== undefined;
})();

const debugDefault = (): boolean => DEBUG_DEFAULT;

function passesNamed(names: readonly string[]): FlatPass[] {
  return names.map((name) => {
    const pass = FLAT.get(name);
    if (pass === undefined) throw new IrPassError(`unknown IR pass '${name}' (known: ${[...FLAT.keys()].join(', ')})`);
    return pass;
  });
}

/** Runs the passes on the records; `m` names the module in messages and holds its data sections. */
function runPasses(fm: FlatModule, m: IrModule, names: readonly string[], passes: readonly FlatPass[], validate: boolean): void {
  for (let k = 0; k < passes.length; k++) {
    passes[k](fm);
    if (validate) {
      const problems = validateIr({ ...m, functions: functionsOf(fm) });
      if (problems.length > 0) throw new IrPassError(`${m.origin}: the IR is invalid after pass '${names[k]}':\n  ${problems.join('\n  ')}`);
    }
  }
}

export function optimizeIr(m: IrModule, opts: OptimizeOptions = {}): IrModule {
  const names = opts.passes ?? DEFAULT_PASSES;
  const passes = passesNamed(names);
  const fm = flatten(m);
  try {
    runPasses(fm, m, names, passes, opts.validate ?? debugDefault());
    if (opts.consume !== true) return moduleOf(fm, m);
    writeBack(fm, m);
    return m;
  } finally {
    releaseFlat(fm);
  }
}

/**
 * optimizeIr(buildIr(program, facts), { ...opts, consume: true }) without the builder's objects:
 * the builder's records go to the passes as they are (what the front end runs on every compile).
 */
export function buildOptimizedIr(program: Program, facts: ProgramFacts | undefined, opts: Omit<OptimizeOptions, 'consume'> = {}): IrModule {
  const names = opts.passes ?? DEFAULT_PASSES;
  const passes = passesNamed(names);
  const fm = buildFlat(program, facts);
  try {
    runPasses(fm, fm.src, names, passes, opts.validate ?? debugDefault());
    fm.src.functions = functionsOf(fm);
    return fm.src;
  } finally {
    releaseFlat(fm);
  }
}
