// The passes' working form of the IR: every instruction a fixed-size record of int32 fields in one
// Int32Array, every block a record of its instruction range and terminator in another. The object
// IR (ir.ts) stays the contract between the front end and the back ends; the pipeline converts it
// to this form once, runs every pass on it and converts back once. Why: the passes read every
// instruction several times, and on objects of fourteen shapes each read was a megamorphic property
// lookup, each environment a bigint array; on int records they are array loads.
// Passes never insert instructions (they replace, rewrite or delete), so a block's instructions
// stay inside the range the conversion gave them: deleting moves the range's start forward.
import type { AtomicOp } from '../opcodes.js';
import type { Access, BinOp, Block, Cond, Inst, IrFunction, IrModule, Operand, Terminator } from './ir.js';

export interface FlatFunction {
  name: string;
  start: number;
  maxReg: number;
  /** Index of the function's first block record; its blocks are b0 .. b0 + nb - 1 (local ids 0 .. nb - 1). */
  b0: number;
  nb: number;
}

export interface FlatModule {
  /** The module the records came from (origin, data, helpers; its functions are not read again). */
  src: IrModule;
  fns: FlatFunction[];
  /** Instruction records, IS words each. */
  ins: Int32Array;
  /** Block records, BS words each (targets are local block ids). */
  blk: Int32Array;
  /** Region names, by the index an access record holds. */
  regions: string[];
  /** Each function's CFG facts (passes/flow.ts), while no pass has changed its edges; undefined: to compute. */
  cfg: (Cfg | undefined)[];
  /** Storage of the CFG facts: cfgBuf[0 .. cfgTop) is taken. */
  cfgBuf: Int32Array;
  cfgTop: number;
}

/**
 * Components, reachability and predecessors of one function's blocks, as offsets into `a` (so a
 * pass reads them without a typed array per list). Components are sinks first: every successor of
 * a block lies in the block's own component or an earlier one, so a backward dataflow solves them
 * in this order, and a forward one in the opposite order, iterating only inside cyclic components.
 * Component k's blocks are a[blocks + a[start + k] .. blocks + a[start + k + 1]), in reverse order
 * of discovery by a depth-first walk from block 0: walked backwards, every block but the first
 * comes after one of its predecessors. Components 0 .. reach-1 are those reachable from block 0.
 */
export interface Cfg {
  a: Int32Array;
  count: number;
  reach: number;
  blocks: number;
  start: number;
  /** a[cyclic + k] = 1: component k has a cycle (more than one block, or a block its own successor). */
  cyclic: number;
  /** a[reachable + b] = 1: block b is reachable from block 0. */
  reachable: number;
  /** a[comp + b]: the component of block b. */
  comp: number;
  /** Predecessors of block b (each once, in block order, unreachable ones included): a[plist + a[pstart + b] .. plist + a[pstart + b + 1]). */
  pstart: number;
  plist: number;
}

// ---- instruction records ----
export const IS = 16;
export const I_OP = 0, I_PC = 1, I_DST = 2;
/** Width of mov/bin/neg/ext; size of load/store/atomic; bits of bswap. */
export const I_W = 3;
/** mov/neg/ext/bswap src, bin a, memory base, callx reg. */
export const I_A = 4;
/** The second operand (bin b, store value, atomic src): I_BK 1 when it is an immediate. */
export const I_BK = 5, I_B = 6;
/** bin operation, ext bits, atomic operation. */
export const I_SUB = 7;
/** Memory offset; const lo; addr section; call id; calllocal func; budget cost. */
export const I_K1 = 8;
/** const hi; addr offset. */
export const I_K2 = 9;
/** ext/load signed, atomic fetch (1: true). */
export const I_FLAG = 10;
/** Access: verdict (V_CHECK, V_PROVEN), region index (-1: none), covering pc (-1: none). */
export const I_VERD = 11, I_REG = 12, I_COV = 13;
/** hiDead: 0 undefined, 1 true, 2 false. */
export const I_HID = 14;

export const OP_CONST = 0, OP_ADDR = 1, OP_MOV = 2, OP_BIN = 3, OP_NEG = 4, OP_EXT = 5, OP_BSWAP = 6, OP_LOAD = 7;
export const OP_STORE = 8, OP_ATOMIC = 9, OP_CALL = 10, OP_CALLX = 11, OP_CALLLOCAL = 12, OP_BUDGET = 13;
/** Operations below this one define I_DST. */
export const DEF_END = 8;
/** Operations below this one are pure definitions. */
export const PURE_END = 7;
const OP_NAMES: readonly Inst['op'][] = ['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap', 'load', 'store', 'atomic', 'call', 'callx', 'calllocal', 'budget'];
const OP_INDEX: ReadonlyMap<string, number> = new Map(OP_NAMES.map((n, k) => [n, k]));

export const BIN_NAMES: readonly BinOp[] = ['add', 'sub', 'mul', 'udiv', 'sdiv', 'urem', 'srem', 'and', 'or', 'xor', 'shl', 'lshr', 'ashr'];
export const B_ADD = 0, B_SUB = 1, B_MUL = 2, B_UDIV = 3, B_SDIV = 4, B_UREM = 5, B_SREM = 6, B_AND = 7, B_OR = 8, B_XOR = 9, B_SHL = 10, B_LSHR = 11, B_ASHR = 12;
export const BIN_INDEX: ReadonlyMap<string, number> = new Map(BIN_NAMES.map((n, k) => [n, k]));
export const COND_NAMES: readonly Cond[] = ['eq', 'ne', 'ugt', 'uge', 'ult', 'ule', 'sgt', 'sge', 'slt', 'sle', 'set'];
export const C_EQ = 0, C_NE = 1, C_UGT = 2, C_UGE = 3, C_ULT = 4, C_ULE = 5, C_SGT = 6, C_SGE = 7, C_SLT = 8, C_SLE = 9, C_SET = 10;
export const COND_INDEX: ReadonlyMap<string, number> = new Map(COND_NAMES.map((n, k) => [n, k]));
export const ATOMIC_NAMES: readonly AtomicOp[] = ['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg'];
export const A_CMPXCHG = 5;
export const ATOMIC_INDEX: ReadonlyMap<string, number> = new Map(ATOMIC_NAMES.map((n, k) => [n, k]));
export const V_CHECK = 0, V_PROVEN = 1;

// ---- block records ----
export const BS = 12;
/** First instruction record and instruction count. */
export const B_FIRST = 0, B_LEN = 1;
export const T_OP = 2, T_PC = 3;
/** br condition; fault kind. */
export const T_COND = 4;
export const T_W = 5, T_A = 6, T_BK = 7, T_B = 8;
/** jump target, br then; br else. */
export const T_THEN = 9, T_ELSE = 10;
export const TOP_JUMP = 0, TOP_BR = 1, TOP_RET = 2, TOP_FAULT = 3;
const FAULT_KINDS: readonly Extract<Terminator, { op: 'fault' }>['kind'][] = ['out-of-bounds', 'permission'];

// ---- storage ----
// One pair of buffers serves every conversion (a JIT compiles one module at a time); a second
// FlatModule made while the first is in use gets its own buffers.
let insPool: Int32Array = new Int32Array(IS * 4096);
let blkPool: Int32Array = new Int32Array(BS * 1024);
let cfgPool: Int32Array = new Int32Array(1024);
let poolOwner: FlatModule | undefined;

/** Gives the shared buffers back (the module must not be used afterwards). */
export function releaseFlat(fm: FlatModule): void {
  if (poolOwner === fm) poolOwner = undefined;
}

/** A module with room for `insts` instruction and `blocks` block records, all zero. */
export function allocFlat(src: IrModule, insts: number, blocks: number): FlatModule {
  let ins: Int32Array, blk: Int32Array;
  if (poolOwner === undefined) {
    if (insPool.length < insts * IS) insPool = new Int32Array(Math.max(2 * insPool.length, insts * IS));
    if (blkPool.length < blocks * BS) blkPool = new Int32Array(Math.max(2 * blkPool.length, blocks * BS));
    ins = insPool;
    blk = blkPool;
    ins.fill(0, 0, insts * IS);
    blk.fill(0, 0, blocks * BS);
  } else {
    ins = new Int32Array(Math.max(1, insts) * IS);
    blk = new Int32Array(Math.max(1, blocks) * BS);
  }
  const own = poolOwner === undefined;
  const fm: FlatModule = { src, fns: [], ins, blk, regions: [], cfg: [], cfgBuf: own ? cfgPool : new Int32Array(1024), cfgTop: 0 };
  if (own) poolOwner = fm;
  return fm;
}

/** n words of CFG storage (zeroed): the buffer and the offset. */
export function cfgAlloc(fm: FlatModule, n: number): number {
  if (fm.cfgTop + n > fm.cfgBuf.length) {
    // Facts already handed out keep the old buffer.
    fm.cfgBuf = new Int32Array(Math.max(2 * fm.cfgBuf.length, 2 * n));
    fm.cfgTop = 0;
    if (poolOwner === fm) cfgPool = fm.cfgBuf;
  }
  const at = fm.cfgTop;
  fm.cfgTop += n;
  fm.cfgBuf.fill(0, at, at + n);
  return at;
}

// ---- objects -> records ----

function putOperand(a: Int32Array, p: number, o: Operand): void {
  if ('reg' in o) {
    a[p] = 0;
    a[p + 1] = o.reg;
  } else {
    a[p] = 1;
    a[p + 1] = o.imm;
  }
}

function putAccess(fm: FlatModule, regionIndex: Map<string, number>, p: number, acc: Access): void {
  const ins = fm.ins;
  ins[p + I_VERD] = acc.verdict === 'proven' ? V_PROVEN : V_CHECK;
  ins[p + I_REG] = acc.region === undefined ? -1 : regionOf(fm, regionIndex, acc.region);
  ins[p + I_COV] = acc.coveredBy === undefined ? -1 : acc.coveredBy;
}

export function regionOf(fm: FlatModule, index: Map<string, number>, name: string): number {
  let k = index.get(name);
  if (k === undefined) {
    k = fm.regions.length;
    fm.regions.push(name);
    index.set(name, k);
  }
  return k;
}

function putInst(fm: FlatModule, regionIndex: Map<string, number>, p: number, i: Inst): void {
  const a = fm.ins;
  a[p + I_OP] = OP_INDEX.get(i.op) ?? OP_BUDGET;
  a[p + I_PC] = i.pc;
  switch (i.op) {
    case 'const': a[p + I_K1] = i.lo; a[p + I_K2] = i.hi; break;
    case 'addr': a[p + I_K1] = i.section; a[p + I_K2] = i.offset; break;
    case 'mov': a[p + I_W] = i.w; a[p + I_A] = i.src; break;
    case 'bin': a[p + I_W] = i.w; a[p + I_A] = i.a; a[p + I_SUB] = BIN_INDEX.get(i.bin) ?? 0; putOperand(a, p + I_BK, i.b); break;
    case 'neg': a[p + I_W] = i.w; a[p + I_A] = i.src; break;
    case 'ext': a[p + I_W] = i.w; a[p + I_A] = i.src; a[p + I_SUB] = i.bits; a[p + I_FLAG] = i.signed ? 1 : 0; break;
    case 'bswap': a[p + I_W] = i.bits; a[p + I_A] = i.src; break;
    case 'load':
      a[p + I_W] = i.size; a[p + I_A] = i.base; a[p + I_K1] = i.off; a[p + I_FLAG] = i.signed ? 1 : 0;
      putAccess(fm, regionIndex, p, i.access);
      break;
    case 'store':
      a[p + I_W] = i.size; a[p + I_A] = i.base; a[p + I_K1] = i.off; putOperand(a, p + I_BK, i.value);
      putAccess(fm, regionIndex, p, i.access);
      break;
    case 'atomic':
      a[p + I_W] = i.size; a[p + I_A] = i.base; a[p + I_K1] = i.off; a[p + I_B] = i.src;
      a[p + I_SUB] = ATOMIC_INDEX.get(i.aop) ?? 0; a[p + I_FLAG] = i.fetch ? 1 : 0;
      putAccess(fm, regionIndex, p, i.access);
      break;
    case 'call': a[p + I_K1] = i.id; break;
    case 'callx': a[p + I_A] = i.reg; break;
    case 'calllocal': a[p + I_K1] = i.func; break;
    case 'budget': a[p + I_K1] = i.cost; break;
  }
  if (a[p + I_OP] < DEF_END) {
    const d = i as Inst & { dst: number; hiDead?: boolean };
    a[p + I_DST] = d.dst;
    const hd = d.hiDead;
    a[p + I_HID] = hd === undefined ? 0 : hd ? 1 : 2;
  }
}

function putTerm(a: Int32Array, q: number, t: Terminator): void {
  a[q + T_PC] = t.pc;
  switch (t.op) {
    case 'jump': a[q + T_OP] = TOP_JUMP; a[q + T_THEN] = t.target; break;
    case 'br':
      a[q + T_OP] = TOP_BR; a[q + T_COND] = COND_INDEX.get(t.cond) ?? 0; a[q + T_W] = t.w; a[q + T_A] = t.a;
      putOperand(a, q + T_BK, t.b);
      a[q + T_THEN] = t.then; a[q + T_ELSE] = t.else;
      break;
    case 'ret': a[q + T_OP] = TOP_RET; break;
    case 'fault': a[q + T_OP] = TOP_FAULT; a[q + T_COND] = t.kind === 'permission' ? 1 : 0; break;
  }
}

/** The module as records (the module is only read). */
export function flatten(m: IrModule): FlatModule {
  let insts = 0, blocks = 0;
  for (const f of m.functions) {
    blocks += f.blocks.length;
    for (const b of f.blocks) insts += b.insts.length;
  }
  const fm = allocFlat(m, insts, blocks);
  const regionIndex = new Map<string, number>();
  let p = 0, q = 0;
  for (const f of m.functions) {
    fm.fns.push({ name: f.name, start: f.start, maxReg: f.maxReg, b0: q / BS, nb: f.blocks.length });
    for (const b of f.blocks) {
      fm.blk[q + B_FIRST] = p / IS;
      fm.blk[q + B_LEN] = b.insts.length;
      for (const i of b.insts) {
        putInst(fm, regionIndex, p, i);
        p += IS;
      }
      putTerm(fm.blk, q, b.term);
      q += BS;
    }
  }
  return fm;
}

// ---- records -> objects ----
// Objects are built with the fields (and field order) of passes/util.ts cloneInst, so every
// instruction of one operation has one shape.

const HID: readonly (boolean | undefined)[] = [undefined, true, false];

function operandAt(a: Int32Array, p: number): Operand {
  return a[p] === 1 ? { imm: a[p + 1] } : { reg: a[p + 1] };
}

function accessAt(fm: FlatModule, p: number): Access {
  const a = fm.ins;
  const r = a[p + I_REG], c = a[p + I_COV];
  return { verdict: a[p + I_VERD] === V_PROVEN ? 'proven' : 'check', region: r < 0 ? undefined : fm.regions[r], coveredBy: c < 0 ? undefined : c };
}

export function instAt(fm: FlatModule, p: number): Inst {
  const a = fm.ins;
  const pc = a[p + I_PC];
  switch (a[p + I_OP]) {
    case OP_CONST: return { op: 'const', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], lo: a[p + I_K1], hi: a[p + I_K2] };
    case OP_ADDR: return { op: 'addr', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], section: a[p + I_K1], offset: a[p + I_K2] };
    case OP_MOV: return { op: 'mov', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], w: a[p + I_W] === 32 ? 32 : 64, src: a[p + I_A] };
    case OP_BIN:
      return { op: 'bin', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], bin: BIN_NAMES[a[p + I_SUB]], w: a[p + I_W] === 32 ? 32 : 64, a: a[p + I_A], b: operandAt(a, p + I_BK) };
    case OP_NEG: return { op: 'neg', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], w: a[p + I_W] === 32 ? 32 : 64, src: a[p + I_A] };
    case OP_EXT:
      return { op: 'ext', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], signed: a[p + I_FLAG] === 1, bits: a[p + I_SUB] as 8 | 16 | 32, w: a[p + I_W] === 32 ? 32 : 64, src: a[p + I_A] };
    case OP_BSWAP: return { op: 'bswap', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], bits: a[p + I_W] as 16 | 32 | 64, src: a[p + I_A] };
    case OP_LOAD:
      return {
        op: 'load', pc, dst: a[p + I_DST], hiDead: HID[a[p + I_HID]], size: a[p + I_W] as 1 | 2 | 4 | 8, signed: a[p + I_FLAG] === 1,
        base: a[p + I_A], off: a[p + I_K1], access: accessAt(fm, p),
      };
    case OP_STORE:
      return { op: 'store', pc, size: a[p + I_W] as 1 | 2 | 4 | 8, base: a[p + I_A], off: a[p + I_K1], value: operandAt(a, p + I_BK), access: accessAt(fm, p) };
    case OP_ATOMIC:
      return {
        op: 'atomic', pc, aop: ATOMIC_NAMES[a[p + I_SUB]], size: a[p + I_W] === 4 ? 4 : 8, fetch: a[p + I_FLAG] === 1,
        base: a[p + I_A], off: a[p + I_K1], src: a[p + I_B], access: accessAt(fm, p),
      };
    case OP_CALL: return { op: 'call', pc, id: a[p + I_K1] };
    case OP_CALLX: return { op: 'callx', pc, reg: a[p + I_A] };
    case OP_CALLLOCAL: return { op: 'calllocal', pc, func: a[p + I_K1] };
    default: return { op: 'budget', pc, cost: a[p + I_K1] };
  }
}

function termAt(a: Int32Array, q: number): Terminator {
  const pc = a[q + T_PC];
  switch (a[q + T_OP]) {
    case TOP_JUMP: return { op: 'jump', pc, target: a[q + T_THEN] };
    case TOP_BR:
      return { op: 'br', pc, cond: COND_NAMES[a[q + T_COND]], w: a[q + T_W] === 32 ? 32 : 64, a: a[q + T_A], b: operandAt(a, q + T_BK), then: a[q + T_THEN], else: a[q + T_ELSE] };
    case TOP_RET: return { op: 'ret', pc };
    default: return { op: 'fault', pc, kind: FAULT_KINDS[a[q + T_COND]] };
  }
}

/** The blocks of one function as objects. */
export function blocksOf(fm: FlatModule, f: FlatFunction): Block[] {
  const blocks: Block[] = new Array<Block>(f.nb);
  const blk = fm.blk;
  for (let id = 0; id < f.nb; id++) {
    const q = (f.b0 + id) * BS;
    const first = blk[q + B_FIRST], len = blk[q + B_LEN];
    const insts: Inst[] = new Array<Inst>(len);
    for (let k = 0; k < len; k++) insts[k] = instAt(fm, (first + k) * IS);
    blocks[id] = { id, insts, term: termAt(blk, q) };
  }
  return blocks;
}

/** The functions as objects. */
export function functionsOf(fm: FlatModule): IrFunction[] {
  return fm.fns.map((f) => ({ name: f.name, start: f.start, blocks: blocksOf(fm, f), maxReg: f.maxReg }));
}

/** Writes the records back into `m` (its functions get new blocks; the module object stays). */
export function writeBack(fm: FlatModule, m: IrModule): void {
  for (let k = 0; k < fm.fns.length; k++) m.functions[k].blocks = blocksOf(fm, fm.fns[k]);
}
