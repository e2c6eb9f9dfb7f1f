// Pieces several commands share: reading the program argument, picking an engine and helpers.
import { UsageError, value, type ParsedArgs } from '../args.js';
import type { Io } from '../command.js';
import { ENGINES, engineNames, type Engine } from '../../runtime/engine.js';
import { defaultHelpers as runtimeHelpers, type HelperRegistry } from '../../runtime/helpers.js';
import { LoadError } from '../../compiler/program.js';

export const ENGINE_OPTION = { name: 'engine', value: 'E', help: `engine to run on: ${engineNames().join(', ')} (default interp)` };

export function pickEngine(p: ParsedArgs): Engine {
  const name = value(p, 'engine') ?? 'interp';
  const engine = ENGINES.get(name);
  if (!engine) throw new UsageError(`unknown engine '${name}' (known: ${engineNames().join(', ')})`);
  return engine;
}

/** The femto-container helper set (printf, memcpy, key-value stores, clocks, unwind). */
export function defaultHelpers(): HelperRegistry {
  return runtimeHelpers();
}

/** Reads a program file; a missing or unreadable file is a load error (exit 2), not a crash. */
export function readInput(io: Io, path: string): Uint8Array {
  try {
    return io.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoadError(`${path}: cannot read (${code ?? (e as Error).message})`);
  }
}
