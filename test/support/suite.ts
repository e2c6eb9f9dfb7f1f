// A conformance directory through the conformance runner (cli/conformance.ts) on any engine: what
// the engine tests compare, file by file, with the reference interpreter's outcomes.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { runTestText, type TestOutcome } from '../../cli/conformance.js';
import { ENGINES, type Engine } from '../../runtime/engine.js';
import type { HelperRegistry } from '../../runtime/helpers.js';
import { dataFiles } from './paths.js';

/** The reference interpreter, as the runner sees an engine. */
export const REFERENCE_ENGINE: Engine = ENGINES.get('interp') as Engine;

/** Every `.data` file of `dir` on `engine`, in file order (board engines batch the runs themselves). */
export function runSuite(dir: string, engine: Engine, helpers: HelperRegistry): Promise<TestOutcome[]> {
  return Promise.all(dataFiles(dir).map(async (f) => runTestText(basename(f), readFileSync(f, 'utf8'), engine, helpers)));
}
