// What the verifier proves about a program, handed once to the IR builder so that no back end
// re-derives it. Indexed by instruction slot.

/**
 * The verdict on one load, store or atomic:
 * - proven: in bounds and permitted on every path; no runtime check.
 * - check: could not be proven; the back end inserts a check (against `region` when the pointer
 *   is known to point into that one region, against every region otherwise).
 * - fault: faults on every path that reaches it (the program is rejected at load time).
 */
export type Verdict = 'proven' | 'check' | 'fault';

export interface AccessFact {
  slot: number;
  verdict: Verdict;
  /** The region the pointer points into on every path, when known: 'stack', 'mem', a data section name, a host region name. */
  region?: string;
  /**
   * Access offset range, when known: bytes from the region's base, except for 'stack', where it is
   * relative to the accessing function's r10 (its own frame is [-512, 0), callers' frames above 0),
   * because one function runs at different call depths.
   */
  offset?: { min: number; max: number };
  size: 1 | 2 | 4 | 8;
  write: boolean;
  /** Why: shown by `femtojit verify --report`. */
  reason: string;
}

export interface ProgramFacts {
  /** One entry per reachable load/store/atomic slot. */
  access: Map<number, AccessFact>;
  /**
   * Back edges (slot of the jump that closes a loop) whose loop the analysis proved to terminate:
   * they need no budget check. Every other back edge gets one.
   */
  boundedBackEdges: Set<number>;
  /** Sizes the analysis assumed (inputs, echoed for reports): e.g. { mem: 360 }; absent = unknown. */
  assumedSizes: Record<string, number>;
}

/** Facts that prove nothing: every access checked, every loop budgeted. Correct for any program. */
export function noFacts(): ProgramFacts {
  return { access: new Map(), boundedBackEdges: new Set(), assumedSizes: {} };
}
