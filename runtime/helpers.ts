// Helper functions a program can call by id (`call imm`, `callx %rN`). Helpers see memory only
// through a checked context, so a bad pointer from the program becomes a `helper` fault rather than
// an escape from the sandbox.
import type { RegionTable } from './regions.js';

export interface HelperContext {
  regions: RegionTable;
  /** A copy of `size` bytes at `addr`; throws HelperError when they are not all readable. */
  read(addr: bigint, size: number): Uint8Array;
  /** Stores `bytes` at `addr`; throws HelperError when they are not all writable. */
  write(addr: bigint, bytes: Uint8Array): void;
}

/** The new r0, or r0 plus a request to end the program right away. */
export type HelperResult = bigint | { r0: bigint; stop: true };

export interface HelperDef {
  id: number;
  name: string;
  call(ctx: HelperContext, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): HelperResult;
}

export class HelperRegistry {
  private readonly byId = new Map<number, HelperDef>();

  register(def: HelperDef): this {
    this.byId.set(def.id, def);
    return this;
  }

  get(id: number): HelperDef | undefined {
    return this.byId.get(id);
  }

  /** name -> id, for loaders resolving `call` by symbol name. */
  names(): Map<string, number> {
    return new Map([...this.byId.values()].map((d) => [d.name, d.id]));
  }

  ids(): Set<number> {
    return new Set(this.byId.keys());
  }
}

/**
 * bpf_conformance's helper 5: returns its argument, and a zero argument unwinds the whole program
 * with r0 = 0 (the suite uses it to abort from inside nested calls).
 */
export const UNWIND: HelperDef = {
  id: 5,
  name: 'unwind',
  call: (_ctx, r1) => (BigInt.asUintN(64, r1) === 0n ? { r0: 0n, stop: true } : r1),
};

/** Exactly the helpers the conformance suite needs. */
export function conformanceHelpers(): HelperRegistry {
  return new HelperRegistry().register(UNWIND);
}

/** What the CLI offers by default; the same set until host helpers exist. */
export function defaultHelpers(): HelperRegistry {
  return conformanceHelpers();
}
