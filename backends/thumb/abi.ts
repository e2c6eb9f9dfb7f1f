// The calling contract between generated Thumb code and the device runtime (runtime/cortex-m/fc):
// where each field of the run state lives, the ARM registers the code reserves, the status codes
// the code returns. runtime/cortex-m/fc/fc.h defines the same numbers (FC_OFF_*, FC_STATUS_*); a
// test reads fc.h and compares, so the two sides cannot drift apart. IMAGE.md explains the design.
//
// While generated code runs, sp points at the run state (fc_jit_state_t), so every field is one
// `ldr/str Rt, [sp, #off]`; the native stack for calls into C grows down below it.
import { FAULT_CODES } from '../../runtime/errors.js';

/** Byte offsets of the run-state fields, from sp. */
export const OFF = {
  EXIT_LR: 0, // return address into the entry trampoline
  SAVED_SP: 4, // the trampoline's sp (the runtime restores it)
  BUDGET: 8, // remaining budget units (uint32)
  DEPTH: 12, // local-call depth (0 in the entry function)
  R10: 16, // eBPF r10 (virtual) of the current frame
  FP_PHYS: 20, // physical address of r10 - 512 (the current frame's lowest byte)
  HELPER_FN: 24, // int fc_dispatch(state, id_lo, id_hi)
  DIV64_FN: 28, // void fc_div64(state, op): tmp[0..1] = tmp[0..1] op tmp[2..3]
  FAULT_SITE: 32, // return address of the `bl` that reported the fault
  FAULT_ADDR_LO: 36,
  FAULT_ADDR_HI: 40,
  FAULT_INFO: 44, // access size | write << 8 | has-address << 9
  NREGIONS: 48,
  PRIMASK: 52, // PRIMASK saved around a 64-bit atomic
  TMP: 56, // 4 words: operands and result of 64-bit division
  REGIONS: 80,
  REGS: 592, // eBPF register file: two words (lo, hi) per IR register
  FRAMES: 1104, // local-call frames
  SIZE: 1616,
} as const;

export const MAX_REGIONS = 16;
export const REGION_SIZE = 32;
/** Region entry fields: vbase, host, delta (= host - vbase), flags, cnt[size class]. */
export const REGION = { VBASE: 0, HOST: 4, DELTA: 8, FLAGS: 12, CNT: 16 } as const;
export const REGION_WRITABLE = 1;
export const MAX_VREGS = 64;
export const FRAME_SIZE = 64;
/** Frame fields: r6-r9 (lo, hi) at 0..31, then the return address. */
export const FRAME = { SAVED: 0, RET: 40 } as const;

/** 64-bit division operations of the runtime's div64 routine (RFC 9669 rules in C). */
export const DIV64_OP = { udiv: 0, urem: 1, sdiv: 2, srem: 3 } as const;

/** Status values the code returns in r0 (0 = success; faults use FAULT_CODES). */
export const STATUS = {
  OK: 0,
  ...FAULT_CODES,
  /** Internal: a helper asked to stop the program with r0 (never returned by fc_run). */
  STOP: 0x100,
} as const;

/** FAULT_INFO bits. */
export const INFO_WRITE = 1 << 8;
export const INFO_HAS_ADDR = 1 << 9;

/** Offset of register `r`'s half (0 = lo, 1 = hi) in the state. */
export function slotOf(reg: number, half: 0 | 1): number {
  return OFF.REGS + reg * 8 + half * 4;
}

/** Offset of region `i`'s field. */
export function regionField(i: number, field: number): number {
  return OFF.REGIONS + i * REGION_SIZE + field;
}

/** Size class of an access: 1 -> 0, 2 -> 1, 4 -> 2, 8 -> 3. */
export function sizeClass(size: 1 | 2 | 4 | 8): number {
  return size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
}
