// From bytes to a verified program ready for an engine: the path every command and test shares,
// so that nothing runs without passing the verifier first.
import { loadInput, type LoadedInput } from '../compiler/load.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import type { HelperRegistry } from './helpers.js';

export interface ContainerOptions {
  entry?: string;
  helpers: HelperRegistry;
}

export function loadVerified(bytes: Uint8Array, origin: string, opts: ContainerOptions): LoadedInput {
  const input = loadInput(bytes, origin, { entry: opts.entry, helpers: opts.helpers.names() });
  verifyStructure(input.program, { helpers: opts.helpers.ids() });
  return input;
}
