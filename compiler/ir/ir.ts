// femtojit's IR: what the front end hands both back ends. Target-neutral, typed, and close enough
// to eBPF that a one-pass back end (Liftoff-style) lowers it directly, while keeping what the
// verifier proved as explicit annotations:
//
// - Values live in 64-bit virtual registers: 0..10 are the eBPF registers (r10 is the read-only
//   frame pointer of the current function), 11 and up are temporaries that passes may introduce.
//   The IR is not SSA: back ends map registers to Wasm locals or ARM register pairs one to one.
//   Temporaries belong to one function activation: a calllocal preserves the caller's.
// - Every operation states its width. A 32-bit operation reads the low halves of its operands and
//   writes its result zero-extended to 64 bits (eBPF's ALU32 rule): that zero upper half is part of
//   the operation's meaning, not a guess a back end makes. `hiDead` on a definition says the upper
//   half is never read before being overwritten, so a back end may leave it unwritten.
// - Immediates are int32 and sign-extended to 64 bits for 64-bit operations (eBPF's rule); wider
//   constants use `const`.
// - Division and shifts follow RFC 9669, never the target's traps: x/0 = 0, x%0 = x, shift counts
//   masked to the width, INT_MIN/-1 = INT_MIN, INT_MIN%-1 = 0.
// - Every instruction keeps `pc`, the eBPF slot it came from, for faults and listings.
// - Memory operations carry the verifier's verdict; budget checks and faults are explicit.
// - Run state (as runtime/interp.ts): on entry r1 = address of mem (0 without), r2 = its length,
//   r10 = top of the entry frame; a helper may end the whole program (its result becomes r0).
// - Budget: `budget N` first in a block charges N = the block's eBPF instruction count (an lddw
//   counts once) at the block's start: a block that cannot be paid in full faults 'budget' at the
//   `budget` instruction's pc, before any of its instructions run. A back edge is a jump to a slot at
//   or before the jump (fall-through and forward jumps only raise the slot, so every cycle holds
//   one); it is bounded when the verifier proved the natural loop it closes (its slot is in
//   facts.boundedBackEdges, and its target is the one successor of its block that dominates the
//   block). The builder charges the source block of every unbounded back edge, and the other blocks
//   of its loop (the slot range from target to source) that lie outside every proven natural loop;
//   straight-line code and the blocks of proven loops are not charged. So an engine charges a subset
//   of what the interpreter counts, and `steps` of a compiled run is the amount charged.
//   Every run ends: in an endless run, take the lowest-slot block m among those it visits forever;
//   it re-enters m forever by back edges, charged unless bounded, and a bounded back edge into m is
//   a latch of m's proven loop. Entering that loop from outside means a back edge into m too, so the
//   run stays in the loop forever, taking its latches without bound, which the verifier's proof (a
//   bound on the iterations per entry) excludes. No reducibility is assumed: in an irreducible cycle
//   the edge into its lowest block is not a dominator back edge, so it never counts as bounded and
//   its source is charged.
// - Only code reachable from the entry is lowered; unreachable blocks and functions are dropped.
import type { AluOp as EbpfAluOp, AtomicOp, JmpOp } from '../opcodes.js';
import type { Verdict } from '../verify/facts.js';
import type { DataSection } from '../program.js';

export type Width = 32 | 64;
export type Reg = number;
/** The read-only frame pointer (eBPF r10) of the current function. */
export const FRAME_REG: Reg = 10;
export type BlockId = number;

/** Binary ALU operations; `mov`/`movsx` become `mov`/`ext`, eBPF's div/mod become udiv/urem. */
export type BinOp = 'add' | 'sub' | 'mul' | 'udiv' | 'sdiv' | 'urem' | 'srem' | 'and' | 'or' | 'xor' | 'shl' | 'lshr' | 'ashr';
/** Conditions of `br`, eBPF's jump conditions by their IR names. */
export type Cond = 'eq' | 'ne' | 'ugt' | 'uge' | 'ult' | 'ule' | 'sgt' | 'sge' | 'slt' | 'sle' | 'set';

/** Second operand: a register or an int32 immediate (sign-extended for 64-bit operations). */
export type Operand = { reg: Reg } | { imm: number };

export interface Access {
  verdict: Exclude<Verdict, 'fault'>;
  /** Region the pointer is known to point into; a check then compares against that region only. */
  region?: string;
  /**
   * Set (with verdict 'proven') by check merging: the pc of an earlier access (checked or proven)
   * on every path here, through the same unmodified base register, whose bytes include this
   * access's bytes (and which wrote, if this access writes): having gone through, it proves this
   * one. Informative only: back ends treat the access as any proven one.
   */
  coveredBy?: number;
}

interface Base {
  pc: number;
}
interface Def extends Base {
  dst: Reg;
  /** The upper 32 bits of dst are never read before being overwritten (set by a pass). */
  hiDead?: boolean;
}

export type Inst =
  /** dst = the 64-bit constant hi:lo (lo, hi as int32 bit patterns). */
  | (Def & { op: 'const'; lo: number; hi: number })
  /** dst = address of data section `section` (index into IrModule.data) + offset. */
  | (Def & { op: 'addr'; section: number; offset: number })
  /** dst = src (w 32: low half, zero-extended). */
  | (Def & { op: 'mov'; w: Width; src: Reg })
  /** dst = a OP b. */
  | (Def & { op: 'bin'; bin: BinOp; w: Width; a: Reg; b: Operand })
  /** dst = -src. */
  | (Def & { op: 'neg'; w: Width; src: Reg })
  /** dst = the low `bits` of src, sign- or zero-extended to w (then zero-extended to 64). */
  | (Def & { op: 'ext'; signed: boolean; bits: 8 | 16 | 32; w: Width; src: Reg })
  /** dst = byte-swapped low `bits` of src, zero-extended. */
  | (Def & { op: 'bswap'; bits: 16 | 32 | 64; src: Reg })
  /** dst = *(size *)(base + off), sign-extended when `signed`, else zero-extended. */
  | (Def & { op: 'load'; size: 1 | 2 | 4 | 8; signed: boolean; base: Reg; off: number; access: Access })
  /** *(size *)(base + off) = value (low `size` bytes). */
  | (Base & { op: 'store'; size: 1 | 2 | 4 | 8; base: Reg; off: number; value: Operand; access: Access })
  /**
   * Atomic read-modify-write of *(size *)(base + off) with src. fetch: src receives the old value
   * (zero-extended for size 4). cmpxchg: compares with r0, r0 receives the old value.
   */
  | (Base & { op: 'atomic'; aop: AtomicOp; size: 4 | 8; fetch: boolean; base: Reg; off: number; src: Reg; access: Access })
  /** r0 = helper(r1..r5); `id` fixed, or taken from register `reg` (callx). r1-r5 are dead afterwards. */
  | (Base & { op: 'call'; id: number })
  | (Base & { op: 'callx'; reg: Reg })
  /**
   * r0 = functions[func](r1..r5) with a fresh frame; r6-r9 and r10 preserved; r1-r5 dead afterwards.
   * The callee cannot read the caller's r0 or r6-r9 and the caller cannot read r1-r5 after the call
   * (the structural verifier's must-initialised rule rejects both), so passes may assume neither
   * happens; only unverified IR could tell the difference.
   */
  | (Base & { op: 'calllocal'; func: number })
  /** Charge `cost` instructions to the run's budget; fault 'budget' when it is exhausted. */
  | (Base & { op: 'budget'; cost: number });

export type Terminator =
  | (Base & { op: 'jump'; target: BlockId })
  /** if (a COND b) goto then else goto else; w 32 compares the low halves. */
  | (Base & { op: 'br'; cond: Cond; w: Width; a: Reg; b: Operand; then: BlockId; else: BlockId })
  /** Return r0 (from the entry function: the program's result). */
  | (Base & { op: 'ret' })
  /** Stop with a fault: a path the verifier proved always faults (names match runtime FaultKind). */
  | (Base & { op: 'fault'; kind: 'out-of-bounds' | 'permission' });

export interface Block {
  id: BlockId;
  insts: Inst[];
  term: Terminator;
}

export interface IrFunction {
  name: string;
  /** Slot of the function's first eBPF instruction. */
  start: number;
  /** blocks[i].id === i; blocks[0] is the entry. */
  blocks: Block[];
  /** Highest register number used (>= 10), so back ends can size register files. */
  maxReg: Reg;
}

export interface IrModule {
  /** functions[0] is the program's entry; calllocal refers to indices. */
  functions: IrFunction[];
  /** The program's data sections, in order (`addr` refers to them by index). */
  data: DataSection[];
  /** Helper ids the module calls with a fixed id (callx may call others at run time). */
  helpers: number[];
  origin: string;
}

/** eBPF names -> IR names, shared by the IR builder and tests. */
export const BIN_OF_ALU: Partial<Record<EbpfAluOp, BinOp>> = {
  add: 'add', sub: 'sub', mul: 'mul', div: 'udiv', sdiv: 'sdiv', mod: 'urem', smod: 'srem',
  and: 'and', or: 'or', xor: 'xor', lsh: 'shl', rsh: 'lshr', arsh: 'ashr',
};
export const COND_OF_JMP: Record<JmpOp, Cond> = {
  jeq: 'eq', jne: 'ne', jgt: 'ugt', jge: 'uge', jlt: 'ult', jle: 'ule',
  jsgt: 'sgt', jsge: 'sge', jslt: 'slt', jsle: 'sle', jset: 'set',
};
