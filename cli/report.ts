// Turning errors into what a user reads: known failures (bad input, refused programs, bad usage)
// get their message alone; anything else is a femtojit bug and keeps its stack.
import { LoadError } from '../compiler/program.js';
import { VerifyError } from '../compiler/verify/structural.js';
import { HelperError } from '../runtime/errors.js';
import { UsageError } from './args.js';

/** Exit statuses: the contract scripts rely on. */
export const EXIT = {
  ok: 0,
  /** conformance: at least one test failed */
  failed: 1,
  /** the program was refused: load, assembly or verification error */
  refused: 2,
  /** the program ran and faulted: bounds, budget, helper, ... */
  fault: 3,
  usage: 64,
  internal: 70,
} as const;

export function isUserError(e: unknown): e is Error {
  return e instanceof LoadError || e instanceof VerifyError || e instanceof UsageError || e instanceof HelperError;
}

export function describeError(e: unknown): string {
  if (isUserError(e)) return e.message;
  if (e instanceof Error) return `internal error: ${e.stack ?? e.message}`;
  return `internal error: ${String(e)}`;
}

/** `0x2a`: lowercase hex without leading zeros, as `run` prints r0. */
export function hex64(v: bigint): string {
  return `0x${BigInt.asUintN(64, v).toString(16)}`;
}

/** Hex bytes as written in `-- mem` sections and plugin arguments: `01 02 ab`, `0102ab`, `0x01,0x02`. */
export function parseHexBytes(text: string, what: string): Uint8Array {
  const cleaned = text.replace(/0x/gi, ' ').replace(/[\s,]+/g, ' ').trim();
  if (cleaned === '') return new Uint8Array(0);
  const tokens = cleaned.split(' ');
  const bytes: number[] = [];
  for (const t of tokens) {
    if (!/^[0-9a-f]+$/i.test(t) || t.length % 2 !== 0) throw new UsageError(`${what}: '${t}' is not a sequence of hex bytes`);
    for (let i = 0; i < t.length; i += 2) bytes.push(parseInt(t.slice(i, i + 2), 16));
  }
  return Uint8Array.from(bytes);
}
