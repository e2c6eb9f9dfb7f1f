// The module ABI of femtojit's Wasm back end, as constants: what a lowered module imports and
// exports, where its control data lives in linear memory, and what its status codes mean. The
// lowering (lower.ts), the host engine (runtime/wasm-engine.ts) and ABI.md all follow this file;
// ABI.md is the prose version for hosts written in other languages.
//
// In short: one memory whose offsets ARE the container's virtual addresses (runtime/layout.ts), so
// a pointer is used as is once checked; the first 64 KiB (below the first region) hold the
// region table and the fault record's register dump and is outside every region, so no program
// access can reach it. A run ends in `run`'s return: `status` says how (0 = exit, 1..7 =
// FAULT_CODES, STATUS_STOPPED = a helper stopped it); nothing ends with a Wasm trap.
import { FAULT_CODES, type FaultKind } from '../../runtime/errors.js';

/** Module and field of the single helper import: (id: i32, r1..r5: i64) -> i64. */
export const IMPORT_MODULE = 'env';
export const IMPORT_HELPER = 'helper';

/** Exports. */
export const EXPORT_MEMORY = 'memory';
/** run() -> i64: runs the program once; the result is r0 when `status` is 0 or STATUS_STOPPED. */
export const EXPORT_RUN = 'run';
/**
 * run_i32(mem_len: i32, budget_lo: i32, budget_hi: i32) -> i32 status: `run` for hosts where
 * i64 values are costly to pass (JavaScript: each global access or i64 result is a BigInt). It
 * sets `mem_len` (0xffffffff: no mem, else the unsigned length) and `budget` (hi:lo), runs, writes
 * r0 and the budget charged to the run record and returns `status`.
 */
export const EXPORT_RUN_I32 = 'run_i32';

/** Exported globals (mutable unless noted). */
export const GLOBAL = {
  /** i64, host sets before each run: instructions the run may charge; the module counts it down. */
  budget: 'budget',
  /** i64, host sets before each run: byte length of `mem`, or -1 for a run without mem. */
  memLen: 'mem_len',
  /** i32, set by the module: 0 while running / after a normal exit, else why the run ended. */
  status: 'status',
  /** i32: slot of the faulting instruction (also of the current helper call while in the helper). */
  faultPc: 'fault_pc',
  /** i64: memory faults: the 64-bit address; unknown helper from callx: the full register value. */
  faultAddr: 'fault_addr',
  /** i32: memory faults: access size in bytes, plus FAULT_WRITE when the access writes. */
  faultSize: 'fault_size',
  /** i32, immutable: virtual address (= linear-memory offset) of the `mem` region. */
  memBase: 'mem_base',
  /** i32, immutable: virtual address of the stack region (its top is stack_base + STACK_SIZE). */
  stackBase: 'stack_base',
} as const;

/** Added to fault_size when the faulting access is a write. */
export const FAULT_WRITE = 0x100;

/** `status` after a helper asked to end the run (the unwind helper): `run` returned its r0. */
export const STATUS_STOPPED = 0x100;
/** `status` values 1..7 are runtime/errors.ts FAULT_CODES. */
export const STATUS_OK = 0;

/**
 * The control area below the first region (0x0..0xffff), in bytes. The region table is informative for hosts (the module's checks use
 * constants baked in at compile time and the mem_len global): u32 count, then per region
 * { base u32, size u32, flags u32 } with REGION_WRITABLE / REGION_RUNTIME_SIZED; `run` writes
 * mem's size there. A host reads region names from ABI.md's order: stack, data sections, host
 * regions, mem.
 */
export const REGION_TABLE_OFFSET = 0x100;
export const REGION_ENTRY_BYTES = 12;
export const REGION_WRITABLE = 1;
export const REGION_RUNTIME_SIZED = 2;
/** r0..r10 as 11 little-endian u64, written by a `fault` terminator (a path the verifier proved faulting). */
export const REG_DUMP_OFFSET = 0xff00;
/** The run record run_i32 writes: r0 (u64) at +0, the budget charged (u64) at +8. */
export const RUN_RECORD_OFFSET = 0xfe00;
export const RUN_RECORD_BYTES = 16;

/** Fault kind of a status code. */
export const KIND_OF_CODE: ReadonlyMap<number, FaultKind> = new Map(
  (Object.entries(FAULT_CODES) as [FaultKind, number][]).map(([k, c]) => [c, k]),
);
