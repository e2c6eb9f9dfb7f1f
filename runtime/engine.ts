// The engines a container can run on, behind one interface, so the CLI, the conformance runner
// and the benchmarks treat the interpreter and the compiled back ends alike.
import type { Program } from '../compiler/program.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import type { RunResult } from './errors.js';
import type { HelperRegistry } from './helpers.js';
import { deviceInterpEngine } from './device-engine.js';
import { Interpreter } from './interp.js';
import type { RegionSpec } from './regions.js';
import { thumbEngine } from './thumb-engine.js';
import { wasmEngine } from './wasm-engine.js';

export interface EngineRunOptions {
  mem?: Uint8Array;
  budget?: number;
  /** Host regions (engines that compile may need them declared at compile time). */
  regions?: RegionSpec[];
}

/** A program prepared (compiled, for a compiling engine) once and run many times. */
export interface Runnable {
  run(opts?: EngineRunOptions): RunResult | Promise<RunResult>;
}

export interface Engine {
  name: string;
  description: string;
  /**
   * `facts`: what the verifier proved when the container was loaded (runtime/container.ts
   * loadVerified, with the same helpers), so that a compiling engine does not analyse the program
   * a second time; without them it analyses the program itself.
   */
  prepare(program: Program, helpers: HelperRegistry, facts?: ProgramFacts): Runnable | Promise<Runnable>;
}

const interp: Engine = {
  name: 'interp',
  description: 'reference interpreter (the semantic oracle)',
  prepare: (program, helpers) => new Interpreter(program, { helpers }),
};

export const ENGINES: ReadonlyMap<string, Engine> = new Map([interp, wasmEngine, thumbEngine, deviceInterpEngine].map((e) => [e.name, e]));

export function engineNames(): string[] {
  return [...ENGINES.keys()];
}
