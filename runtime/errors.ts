// Run outcomes shared by every engine (interpreter, Wasm, Thumb): the same fault kinds and the
// same numeric codes, so a program ends the same way whichever engine runs it.

export type FaultKind =
  | 'out-of-bounds' // access outside every region, or straddling a region's end
  | 'permission' // write to a read-only region
  | 'budget' // instruction budget exhausted
  | 'unknown-helper' // call or callx of an id no helper is registered for
  | 'helper' // a helper refused its arguments
  | 'call-depth' // local calls nested deeper than the stack allows
  | 'invalid'; // an instruction the engine cannot execute (only reachable without verification)

/** Stable numeric codes (device runtime, Wasm module ABI, exit statuses). 0 means success. */
export const FAULT_CODES: Record<FaultKind, number> = {
  'out-of-bounds': 1,
  permission: 2,
  budget: 3,
  'unknown-helper': 4,
  helper: 5,
  'call-depth': 6,
  invalid: 7,
};

/** The words a fault message starts with: `out of bounds at instruction 3 (...)`. */
export const FAULT_TITLE: Record<FaultKind, string> = {
  'out-of-bounds': 'out of bounds',
  permission: 'permission denied',
  budget: 'budget exhausted',
  'unknown-helper': 'unknown helper',
  helper: 'helper failed',
  'call-depth': 'call depth exceeded',
  invalid: 'invalid instruction',
};

export interface Fault {
  kind: FaultKind;
  /** Slot index of the faulting instruction. */
  pc: number;
  /** User-facing text: names the instruction, and for memory faults the address, size and nearest region. */
  message: string;
  addr?: bigint;
  size?: number;
}

export type RunResult =
  | { ok: true; r0: bigint; steps: number }
  | { ok: false; fault: Fault; steps: number };

/** Thrown by a helper to stop the program with a `helper` fault. */
export class HelperError extends Error {}
