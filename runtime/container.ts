// From bytes to a verified program ready for an engine: the path every command shares, so that
// nothing runs without passing the whole verifier (structural rules, then abstract interpretation:
// always-faulting accesses, uninitialised stack, writes to read-only data are refused here).
import { loadInput, type LoadedInput } from '../compiler/load.js';
import { verifyProgram } from '../compiler/verify/absint.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import type { HelperRegistry } from './helpers.js';

export interface ContainerOptions {
  entry?: string;
  helpers: HelperRegistry;
}

export interface VerifiedInput extends LoadedInput {
  /** What the verifier proved, for any context size. */
  facts: ProgramFacts;
}

export function loadVerified(bytes: Uint8Array, origin: string, opts: ContainerOptions): VerifiedInput {
  const input = loadInput(bytes, origin, { entry: opts.entry, helpers: opts.helpers.names() });
  const facts = verifyProgram(input.program, {
    regions: input.program.data.map((d) => ({ name: d.name, size: d.bytes.length, writable: d.writable })),
    helpers: opts.helpers.ids(),
  });
  return { ...input, facts };
}
