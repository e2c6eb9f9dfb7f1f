// IR -> Wasm binary module, in one pass per function with femtojit's own encoder (no text, no
// optimizer: this is the host's JIT path). The module follows abi.ts:
//
// - Each IR function is a Wasm function (r0..r9, fp) -> (r0..r5) with its registers as i64
//   locals. eBPF has one register file: a callee starts with its caller's r0..r9 and its caller
//   continues with the callee's r0..r5 (r6..r9 are restored), exactly as the interpreter behaves,
//   so a program reading a "clobbered" register still agrees with it. A local call passes
//   fp - 512 (the callee's r10); the call-depth limit is a compare on fp, since the interpreter's
//   depth is (stack top - fp) / 512.
// - 32-bit operations use i32 arithmetic (wrap, op, extend_u), which is also what makes their
//   upper halves zero. Division and remainder branch around Wasm's traps (x/0, INT_MIN/-1) with the
//   RFC 9669 results; shift counts are masked by Wasm exactly as eBPF masks them.
// - Memory accesses go through checks.ts. Atomics become plain load/op/store: an instance runs
//   one program on one thread, so nothing can observe the difference.
// - Faults, budget exhaustion and a helper's request to stop record the ABI's status/fault record
//   and return on the spot; a caller that sees a non-zero status after a call returns the same
//   way, so a run unwinds to `run` without a single Wasm trap.
// - The budget is an exported global, cached in a local by functions that charge it and written
//   back around calls and at the exits. Charges are subtracted lazily (see `pending`), checks are
//   skipped in the guarded fast copies of loops (structure.ts), and triangles fold into selects;
//   none of this moves a fault or changes the amount charged (test/wasm-lowering.test.ts sweeps
//   budgets against the IR interpreter).
// - Non-negative eBPF offsets go into the memarg offset (checks.ts says why that is exact).
// - Checked accesses through one unmodified base register in a block share one range test
//   (`CheckGroup`): when the union of their bytes lies in the region they all guess, none of their
//   own checks could fail; otherwise the same instructions run again with every check, so the
//   access that faults, and its pc and address, are the interpreter's.
// - Two byte loads that or a little-endian halfword together (`halfwordPair`) become one 16-bit
//   load when neither needs a check there (proven, or covered by a passed group test); the low
//   byte's register is still written unless the block overwrites it before reading it.
// - A counted loop's unrolled copies (structure.ts `countedExit`) skip the counter's exit test
//   before the last copy: the group's guard also tests the counter.
// - A versioned loop copy (structure.ts `version`) starts with one entry test over each walk's
//   whole swept range (`version` below); in its copies the accesses it covers run unchecked.
// - `run` zeroes the few stack bytes a run can write when the caller asks (`zeroStack`): cheaper
//   than the host's fill, whose fixed cost is that of a whole small run.
// - A `block` entered by one branch alone takes that branch's pending charge in with it (`joins`),
//   so the unrolled copies of a fast loop subtract their charges once per group.
// - The IR's 32-bit values stay in i64 locals, wrapped and extended around i32 operations: V8's
//   optimizing tier removes those pairs (wrap of extend, and x64's implicit zero-extension), so
//   i32 shadow locals would buy nothing after tier-up.
import type { Access, BinOp, Block, BlockId, Cond, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../../compiler/ir/ir.js';
import { FAULT_CODES } from '../../runtime/errors.js';
import { MAX_CALL_DEPTH, STACK_FRAME, STACK_SIZE } from '../../runtime/layout.js';
import { layoutRegions, type RegionSpec } from '../../runtime/regions.js';
import {
  EXPORT_MEMORY, EXPORT_RUN, EXPORT_RUN_I32, GLOBAL, IMPORT_HELPER, IMPORT_MODULE, REGION_ENTRY_BYTES,
  REGION_RUNTIME_SIZED, REGION_TABLE_OFFSET, REGION_WRITABLE, REG_DUMP_OFFSET, RUN_RECORD_OFFSET,
} from './abi.js';
import { MemoryChecks, type ModuleRegion } from './checks.js';
import type { CodeSnapshot, FunctionBuilder, ValType } from './encode.js';
import { ModuleBuilder } from './module.js';
import { Op, PAGE_SIZE } from './opcodes.js';
import { structureFunction, type Cmd, type RangeTest, type TripCount } from './structure.js';

/** A host region the module reserves room for (its contents are supplied per run). */
export interface HostRegionDecl {
  name: string;
  size: number;
  writable: boolean;
}

export interface LowerOptions {
  /** Host regions, laid out after the data sections as runtime/layout.ts does. */
  hostRegions?: readonly HostRegionDecl[];
  /** Module name for the name section. */
  name?: string;
  /** Emit the name section (function names in engine stack traces; default true). */
  names?: boolean;
  /**
   * Stack bytes `run` zeroes itself before the program starts, as linear-memory addresses
   * [start, end) (widened to 8-byte words; at most MODULE_ZERO_MAX_BYTES): what the host would
   * otherwise zero between runs, for a fraction of a host-side fill's fixed cost.
   */
  zeroStack?: { start: number; end: number };
  /**
   * Give loops their extra copies (default true): the guarded fast copy of innermost loops that
   * charge the budget (with its unrolling) and the versioned copy behind an entry range test
   * (structure.ts `fastLoops`, `regionOf`). False emits each block once: the baseline tier's
   * lowering, which compiles several times faster for slower loops; the budget charged, results
   * and faults are the same either way.
   */
  loopCopies?: boolean;
  /** moduleLayout(m, hostRegions), when the caller has it already. */
  layout?: ModuleLayout;
}

/** Largest stack range `run` zeroes with straight-line stores (beyond, the host's fill is cheaper). */
export const MODULE_ZERO_MAX_BYTES = 512;

/** Where the module expects everything (virtual address = linear-memory offset). */
export interface ModuleLayout {
  /** stack, data sections, host regions, mem (size -1: known per run). */
  regions: ModuleRegion[];
  stackBase: number;
  stackTop: number;
  dataBase: number[];
  hostBase: number[];
  memBase: number;
  /** Pages the memory starts with: everything below mem. */
  initialPages: number;
}

export interface LoweredModule {
  bytes: Uint8Array<ArrayBuffer>;
  layout: ModuleLayout;
  /** Names of the IR functions that needed the dispatcher (irreducible control flow). */
  irreducible: string[];
}

const STACK_STAND_IN = new Uint8Array(STACK_SIZE);
const EMPTY = new Uint8Array(0);

/** Layout of a module's regions: the same addresses containerLayout gives any run. */
export function moduleLayout(m: Pick<IrModule, 'data'>, hostRegions: readonly HostRegionDecl[] = []): ModuleLayout {
  // layoutRegions only reads the specs' lengths: shared stand-ins instead of fresh zeroed buffers.
  const specs: RegionSpec[] = [{ name: 'stack', bytes: STACK_STAND_IN, writable: true }];
  for (const s of m.data) specs.push({ name: s.name, bytes: s.bytes, writable: s.writable });
  for (const h of hostRegions) specs.push({ name: h.name, bytes: new Uint8Array(h.size), writable: h.writable });
  specs.push({ name: 'mem', bytes: EMPTY, writable: true });
  const laid = layoutRegions(specs);
  const regions: ModuleRegion[] = laid.map((r) => ({ name: r.name, base: r.base, size: r.bytes.length, writable: r.writable }));
  const mem = regions[regions.length - 1];
  mem.size = -1;
  const nData = m.data.length;
  return {
    regions,
    stackBase: regions[0].base,
    stackTop: regions[0].base + STACK_SIZE,
    dataBase: regions.slice(1, 1 + nData).map((r) => r.base),
    hostBase: regions.slice(1 + nData, 1 + nData + hostRegions.length).map((r) => r.base),
    memBase: mem.base,
    initialPages: Math.ceil(mem.base / PAGE_SIZE),
  };
}

// Global indices, in the order lower() adds them.
const G_BUDGET = 0;
const G_MEM_LEN = 1;
const G_STATUS = 2;
const G_FAULT_PC = 3;
const G_FAULT_ADDR = 4;
const G_FAULT_SIZE = 5;
const G_MEM_LIM = [8, 9, 10, 11];

const HELPER_FUNC = 0;
const LOG2_SIZE: Record<1 | 2 | 4 | 8, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

/** The check groups (see CheckGroup) the lowering forms in one IR function, by member pcs (for tests and listings). */
export function checkGroups(fn: IrFunction, layout: ModuleLayout): { block: number; pcs: number[] }[] {
  const checks = new MemoryChecks(layout.regions, { status: 0, faultPc: 0, faultAddr: 0, faultSize: 0, memLim: [0, 0, 0, 0] }, 0);
  return fn.blocks.flatMap((b) => findGroups(b.insts, checks).map((g) => ({ block: b.id, pcs: [...g.members].map((i) => i.pc) })));
}

/** The versioned loops the lowering forms in one IR function: entry tests, trip count, covered pcs (for tests and listings). */
export function loopVersions(fn: IrFunction, layout: ModuleLayout): { count: TripCount | undefined; tests: readonly RangeTest[]; pcs: number[] }[] {
  const checks = new MemoryChecks(layout.regions, { status: 0, faultPc: 0, faultAddr: 0, faultSize: 0, memLim: [0, 0, 0, 0] }, 0);
  const { cmds } = structureFunction(fn, { regionOf: (i) => regionIdOf(checks, i) });
  return cmds.flatMap((c) => (c.op === 'version' ? [{ count: c.count, tests: c.tests, pcs: [...c.covered].map((i) => i.pc).sort((x, y) => x - y) }] : []));
}

/** The region id structure.ts versions a loop's accesses by: the region of the access's inline compare (-1: none). */
function regionIdOf(checks: MemoryChecks, i: Inst): number {
  if (i.op !== 'load' && i.op !== 'store' && i.op !== 'atomic') return -1;
  const r = checks.guessOf(i.access, i.base, i.op !== 'load');
  return r === undefined ? -1 : checks.regions.indexOf(r);
}

/** Lowers an IR module to Wasm bytes. Throws (RangeError / WasmEncodeError) only on malformed IR. */
export function lowerModule(m: IrModule, opts: LowerOptions = {}): LoweredModule {
  if (m.functions.length === 0) throw new RangeError(`${m.origin}: the IR module has no functions`);
  const layout = opts.layout ?? moduleLayout(m, opts.hostRegions);
  const mb = new ModuleBuilder({ name: opts.name ?? m.origin, names: opts.names ?? true });
  mb.importFunction(IMPORT_MODULE, IMPORT_HELPER, HELPER_PARAMS, I64_RESULT, 'helper');
  mb.setMemory({ min: layout.initialPages, max: 65536, export: EXPORT_MEMORY });
  mb.addGlobal({ type: 'i64', mutable: true, init: 0, export: GLOBAL.budget, name: 'budget' });
  mb.addGlobal({ type: 'i64', mutable: true, init: -1, export: GLOBAL.memLen, name: 'mem_len' });
  mb.addGlobal({ type: 'i32', mutable: true, init: 0, export: GLOBAL.status, name: 'status' });
  mb.addGlobal({ type: 'i32', mutable: true, init: 0, export: GLOBAL.faultPc, name: 'fault_pc' });
  mb.addGlobal({ type: 'i64', mutable: true, init: 0, export: GLOBAL.faultAddr, name: 'fault_addr' });
  mb.addGlobal({ type: 'i32', mutable: true, init: 0, export: GLOBAL.faultSize, name: 'fault_size' });
  mb.addGlobal({ type: 'i32', mutable: false, init: layout.memBase, export: GLOBAL.memBase, name: 'mem_base' });
  mb.addGlobal({ type: 'i32', mutable: false, init: layout.stackBase, export: GLOBAL.stackBase, name: 'stack_base' });
  for (const s of [1, 2, 4, 8]) mb.addGlobal({ type: 'i64', mutable: true, init: 0, name: `mem_lim${s}` });

  const nFuncs = m.functions.length;
  const firstFunc = 1; // after the helper import
  const runIndex = firstFunc + nFuncs;
  const checks = new MemoryChecks(
    layout.regions,
    { status: G_STATUS, faultPc: G_FAULT_PC, faultAddr: G_FAULT_ADDR, faultSize: G_FAULT_SIZE, memLim: G_MEM_LIM },
    runIndex + 2, // after run and run_i32
  );
  const ctx: Ctx = { m, layout, checks, firstFunc, loopCopies: opts.loopCopies ?? true };
  const irreducible: string[] = [];
  const built: FunctionBuilder[] = [];
  m.functions.forEach((fn, i) => {
    let insts = 0;
    for (const b of fn.blocks) insts += b.insts.length + 1;
    const fb = mb.addFunction(`${i}:${fn.name}`, PARAMS, RESULTS, { capacity: 256 + insts * BYTES_PER_INST });
    built.push(fb);
    if (new FunctionLowering(ctx, fn, fb).lower()) irreducible.push(fn.name);
  });
  built.push(emitRun(mb, layout, firstFunc, opts.zeroStack), emitRunI32(mb, runIndex), ...checks.emitFindFunctions(mb));
  mb.addData(REGION_TABLE_OFFSET, regionTable(layout));
  // The data sections' initial bytes (zeros need no segment: memory starts zeroed).
  m.data.forEach((d, i) => {
    let n = d.bytes.length;
    while (n > 0 && d.bytes[n - 1] === 0) n--;
    if (n > 0) mb.addData(layout.dataBase[i], d.bytes.subarray(0, n));
  });
  // Everything before the code depends on these alone (the globals, exports and types added above).
  const bytes = mb.build(`${layout.initialPages},${layout.memBase},${layout.stackBase},${nFuncs},${checks.findCount}`);
  // The functions' code is in `bytes` now: their buffers serve the next module.
  for (const fb of built) fb.release();
  return { bytes, layout, irreducible };
}

/** A generous average of body bytes per IR instruction (checked accesses and fault exits included). */
const BYTES_PER_INST = 40;

/** r0..r9, fp. */
const PARAMS: readonly ValType[] = new Array<ValType>(11).fill('i64');
const FP_PARAM = 10;
/** r0..r5. */
const RESULTS: readonly ValType[] = new Array<ValType>(6).fill('i64');
// The other signatures, made once.
const HELPER_PARAMS: readonly ValType[] = ['i32', 'i64', 'i64', 'i64', 'i64', 'i64'];
const RUN_I32_PARAMS: readonly ValType[] = ['i32', 'i32', 'i32'];
const NO_PARAMS: readonly ValType[] = [];
const I64_RESULT: readonly ValType[] = ['i64'];
const I32_RESULT: readonly ValType[] = ['i32'];

interface Ctx {
  m: IrModule;
  layout: ModuleLayout;
  checks: MemoryChecks;
  firstFunc: number;
  loopCopies: boolean;
}

/** The last region table made, and the regions it was made for (most modules have the same). */
let lastTable: { regions: ModuleRegion[]; bytes: Uint8Array } | undefined;

/** The informative region table in the control area below the first region (abi.ts). */
function regionTable(layout: ModuleLayout): Uint8Array {
  const rs = layout.regions;
  const last = lastTable;
  if (last !== undefined && last.regions.length === rs.length && last.regions.every((r, i) => r.base === rs[i].base && r.size === rs[i].size && r.writable === rs[i].writable)) {
    return last.bytes;
  }
  const bytes = makeRegionTable(layout);
  lastTable = { regions: rs.map((r) => ({ ...r })), bytes };
  return bytes;
}

function makeRegionTable(layout: ModuleLayout): Uint8Array {
  const room = Math.floor((RUN_RECORD_OFFSET - REGION_TABLE_OFFSET - 4) / REGION_ENTRY_BYTES);
  if (layout.regions.length > room) {
    throw new RangeError(`the program has ${layout.regions.length} regions; a Wasm module's region table holds at most ${room}`);
  }
  const bytes = new Uint8Array(4 + layout.regions.length * REGION_ENTRY_BYTES);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, layout.regions.length, true);
  layout.regions.forEach((r, i) => {
    const at = 4 + i * REGION_ENTRY_BYTES;
    v.setUint32(at, r.base, true);
    v.setUint32(at + 4, Math.max(0, r.size), true);
    v.setUint32(at + 8, (r.writable ? REGION_WRITABLE : 0) | (r.size < 0 ? REGION_RUNTIME_SIZED : 0), true);
  });
  return bytes;
}

/**
 * run() -> i64: status := 0, mem's limits and table entry from mem_len, then the entry function
 * with r1 = mem's address (0 without mem), r2 = its length, the others 0, r10 = the stack top.
 */
function emitRun(mb: ModuleBuilder, layout: ModuleLayout, entry: number, zero: LowerOptions['zeroStack']): FunctionBuilder {
  const fb = mb.addFunction('run', NO_PARAMS, I64_RESULT, { export: EXPORT_RUN });
  const x = fb.addLocal('i64');
  // The same in every module with this layout: emitted once.
  const key = `${layout.stackBase},${layout.stackTop},${layout.memBase},${layout.regions.length},${entry},${zero?.start},${zero?.end}`;
  const known = RUN_CODE.get(key);
  if (known !== undefined) return fb.append(known);
  if (zero !== undefined) {
    const start = Math.max(layout.stackBase, zero.start & ~7);
    const end = Math.min(layout.stackTop, (zero.end + 7) & ~7);
    if (end - start > MODULE_ZERO_MAX_BYTES) throw new RangeError(`run zeroes at most ${MODULE_ZERO_MAX_BYTES} stack bytes (asked for ${end - start})`);
    for (let at = start; at < end; at += 8) fb.i32Const(0).i64Const(0).i64Store(at);
  }
  fb.i32Const(0).globalSet(G_STATUS).i32Const(0).globalSet(G_FAULT_SIZE);
  [1, 2, 4, 8].forEach((s, i) => {
    // lim = max(0, len - s + 1); len = -1 (no mem) gives 0 for every size.
    fb.globalGet(G_MEM_LEN).i64Const(s - 1).i64Sub().localTee(x);
    fb.i64Const(0).localGet(x).i64Const(0).i64GtS().select().globalSet(G_MEM_LIM[i]);
  });
  const memEntry = REGION_TABLE_OFFSET + 4 + (layout.regions.length - 1) * REGION_ENTRY_BYTES;
  fb.i32Const(memEntry).globalGet(G_MEM_LIM[0]).i64Store32(4, 0);
  fb.i64Const(0); // r0
  fb.globalGet(G_MEM_LEN).i64Const(0).i64LtS().if('i64').i64Const(0).else().i64Const(layout.memBase).end();
  fb.globalGet(G_MEM_LEN).i64Const(0).i64LtS().if('i64').i64Const(0).else().globalGet(G_MEM_LEN).end();
  for (let r = 3; r <= 9; r++) fb.i64Const(0);
  fb.i64Const(layout.stackTop).call(entry);
  for (let r = 1; r <= 5; r++) fb.drop();
  remember(RUN_CODE, key, fb.snapshot());
  return fb;
}

/** `run` and `run_i32` bodies by what they depend on (see emitRun, emitRunI32). */
const RUN_CODE = new Map<string, CodeSnapshot>();
const RUN_I32_CODE = new Map<number, CodeSnapshot>();
const RUN_CODE_MAX = 64;

function remember<K>(cache: Map<K, CodeSnapshot>, key: K, code: CodeSnapshot): void {
  if (cache.size >= RUN_CODE_MAX) cache.clear();
  cache.set(key, code);
}

/** run_i32(mem_len, budget_lo, budget_hi) -> status (abi.ts EXPORT_RUN_I32). */
function emitRunI32(mb: ModuleBuilder, run: number): FunctionBuilder {
  const fb = mb.addFunction('run_i32', RUN_I32_PARAMS, I32_RESULT, { export: EXPORT_RUN_I32 });
  const initial = fb.addLocal('i64');
  const known = RUN_I32_CODE.get(run);
  if (known !== undefined) return fb.append(known);
  fb.localGet(0).i32Const(-1).i32Eq().if('i64').i64Const(-1).else().localGet(0).i64ExtendI32U().end().globalSet(G_MEM_LEN);
  fb.localGet(2).i64ExtendI32U().i64Const(32).i64Shl().localGet(1).i64ExtendI32U().i64Or().localTee(initial).globalSet(G_BUDGET);
  fb.i32Const(0).call(run).i64Store(RUN_RECORD_OFFSET, 0);
  fb.i32Const(0).localGet(initial).globalGet(G_BUDGET).i64Sub().i64Store(RUN_RECORD_OFFSET + 8, 0);
  fb.globalGet(G_STATUS);
  remember(RUN_I32_CODE, run, fb.snapshot());
  return fb;
}

// Wasm opcodes of the IR's binary operations that map one to one, per width.
const BIN64: Partial<Record<BinOp, number>> = {
  add: Op.I64Add, sub: Op.I64Sub, mul: Op.I64Mul, and: Op.I64And, or: Op.I64Or, xor: Op.I64Xor,
  shl: Op.I64Shl, lshr: Op.I64ShrU, ashr: Op.I64ShrS,
};
const BIN32: Partial<Record<BinOp, number>> = {
  add: Op.I32Add, sub: Op.I32Sub, mul: Op.I32Mul, and: Op.I32And, or: Op.I32Or, xor: Op.I32Xor,
  shl: Op.I32Shl, lshr: Op.I32ShrU, ashr: Op.I32ShrS,
};
const CMP64: Record<Exclude<Cond, 'set'>, number> = {
  eq: Op.I64Eq, ne: Op.I64Ne, ugt: Op.I64GtU, uge: Op.I64GeU, ult: Op.I64LtU, ule: Op.I64LeU,
  sgt: Op.I64GtS, sge: Op.I64GeS, slt: Op.I64LtS, sle: Op.I64LeS,
};
const CMP32: Record<Exclude<Cond, 'set'>, number> = {
  eq: Op.I32Eq, ne: Op.I32Ne, ugt: Op.I32GtU, uge: Op.I32GeU, ult: Op.I32LtU, ule: Op.I32LeU,
  sgt: Op.I32GtS, sge: Op.I32GeS, slt: Op.I32LtS, sle: Op.I32LeS,
};
/** Loads by size and signedness: [unsigned, signed]. */
const LOAD: Record<1 | 2 | 4 | 8, readonly [number, number]> = {
  1: [Op.I64Load8U, Op.I64Load8S],
  2: [Op.I64Load16U, Op.I64Load16S],
  4: [Op.I64Load32U, Op.I64Load32S],
  8: [Op.I64Load, Op.I64Load],
};
const STORE: Record<1 | 2 | 4 | 8, number> = { 1: Op.I64Store8, 2: Op.I64Store16, 4: Op.I64Store32, 8: Op.I64Store };
const ATOMIC64: Record<'add' | 'or' | 'and' | 'xor', number> = { add: Op.I64Add, or: Op.I64Or, and: Op.I64And, xor: Op.I64Xor };

/** Lowers one IR function into its FunctionBuilder. */
class FunctionLowering {
  private readonly regLocal: Int32Array;
  private readonly fp = FP_PARAM;
  private readonly t: number; // i64 scratch
  private readonly t2: number; // i64 scratch
  private readonly a: number; // i32 scratch
  private readonly a2: number; // i32 scratch
  private readonly label: number; // dispatcher label (i32)
  private readonly sel: number; // condition of a folded triangle (i32)
  private readonly memLim: Int32Array; // i64 locals caching G_MEM_LIM, -1 when unused
  private readonly bud: number; // cached budget (i64), -1 when the function charges none
  private readonly exitDepth = (): number => this.fb.labelDepth - 2;
  private readonly abandon = (): void => this.leave(false);
  /**
   * Budget charged by the blocks on the way here but not yet subtracted from `bud`: a compile-time
   * constant, because every block reached with some still pending has one predecessor (the code
   * emitted just before it). Each block's check compares `bud` against pending + its own cost,
   * which is exactly the original check on the subtracted value, and the subtraction itself
   * happens once per edge into a merge or loop header (and before calls and exits). In a loop of
   * several blocks, that makes the budget's dependency chain one subtraction per iteration
   * instead of one per block, and the checks independent of each other.
   */
  private pending = 0;
  private reachable = true;
  /** Emitting a block of a fast loop copy: its charges cannot run out (structure.ts). */
  private unchecked = false;
  /** Per open frame: the pending charge where an `if` began (its else arm starts there), else -1. */
  private readonly frames: number[] = [];
  /**
   * Per open frame: for a `block` that exactly one branch enters and nothing falls into (`joins`),
   * the pending charge that branch carried in (CARRY_OPEN until it is emitted); else NO_CARRY. The
   * code after such a block starts with that charge still pending, instead of subtracting it at
   * the branch: in a loop's unrolled copies, that leaves one subtraction per group of copies.
   */
  private readonly carry: number[] = [];
  private carryable: Uint8Array = new Uint8Array(0);
  /** Per block: its check groups (see `findGroups`), in order. */
  private readonly groups: (readonly CheckGroup[])[];
  /** i64 locals holding mem's limit for a group's range length, by that length. */
  private readonly groupLim = new Map<number, number>();
  /** The accesses a passed group test covers while its span is emitted: they need no check. */
  private covered: ReadonlySet<Inst> | undefined;
  /** The accesses a passed version test covers in the block being emitted (structure.ts `versionPlan`). */
  private loopCovered: ReadonlySet<Inst> | undefined;
  /** Per block: how many `code` commands emit it (one emitted more than once is kept as a `Template`). */
  private uses: Int32Array = new Int32Array(0);
  /** Per block: its templates, one per (unchecked, loopCovered) it was emitted with. */
  private templates: (Template[] | undefined)[] = [];
  /** The template being recorded (while a block's code is emitted the first time). */
  private rec: Recorder | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly fn: IrFunction,
    private readonly fb: FunctionBuilder,
  ) {
    const maxReg = Math.max(10, fn.maxReg);
    this.regLocal = new Int32Array(maxReg + 1);
    for (let r = 0; r <= 9; r++) this.regLocal[r] = r;
    const first = fb.addLocal('i64', maxReg - 9); // r10, temporaries
    for (let r = 10; r <= maxReg; r++) this.regLocal[r] = first + (r - 10);
    this.t = fb.addLocal('i64');
    this.t2 = fb.addLocal('i64');
    let charges = false;
    for (const b of fn.blocks) for (const i of b.insts) if (i.op === 'budget') charges = true;
    this.bud = charges ? fb.addLocal('i64') : -1;
    this.a = fb.addLocal('i32');
    this.a2 = fb.addLocal('i32');
    this.label = fb.addLocal('i32');
    this.sel = fb.addLocal('i32');
    // mem's limits, by log2 of the access size, for the sizes this function's checks compare.
    this.memLim = new Int32Array(4).fill(-1);
    for (const b of fn.blocks) {
      for (const i of b.insts) {
        if ((i.op === 'load' || i.op === 'store' || i.op === 'atomic') && MemoryChecks.needsMemLimit(i.access)) {
          const k = LOG2_SIZE[i.size];
          if (this.memLim[k] < 0) this.memLim[k] = fb.addLocal('i64');
        }
      }
    }
    this.groups = fn.blocks.map((b) => findGroups(b.insts, ctx.checks));
    for (const gs of this.groups) {
      for (const g of gs) if (ctx.checks.isMem(g.region) && !this.groupLim.has(g.len)) this.groupLim.set(g.len, fb.addLocal('i64'));
    }
  }

  /** Returns whether the function needed the dispatcher. */
  lower(): boolean {
    const { fb, fn } = this;
    if (fn.blocks.length === 0) throw new RangeError(`${fn.name}: function has no blocks`);
    fn.blocks.forEach((b, i) => {
      if (b.id !== i) throw new RangeError(`${fn.name}: blocks[${i}] has id ${b.id}`);
    });
    const copies = this.ctx.loopCopies;
    const shape = structureFunction(fn, { foldable: this.foldable, fastLoops: copies && this.bud >= 0, regionOf: copies ? this.regionOf : undefined });
    fb.localGet(this.fp).localSet(this.regLocal[10]);
    if (this.bud >= 0) fb.globalGet(G_BUDGET).localSet(this.bud);
    for (let k = 0; k < 4; k++) if (this.memLim[k] >= 0) fb.globalGet(G_MEM_LIM[k]).localSet(this.memLim[k]);
    for (const [len, local] of this.groupLim) {
      // max(0, mem_len - len + 1) from lim(1) = max(0, mem_len).
      fb.globalGet(G_MEM_LIM[0]).i64Const(len - 1).i64Sub().localTee(local);
      fb.i64Const(0).localGet(local).i64Const(0).i64GtS().select().localSet(local);
    }
    this.ctx.checks.memLimLocals = this.memLim;
    fb.block(); // the exit of `ret` (faults and stops return where they happen: see leave())
    this.carryable = joins(shape.cmds);
    this.uses = new Int32Array(fn.blocks.length);
    for (const c of shape.cmds) if (c.op === 'code') this.uses[c.block]++;
    for (let k = 0; k < shape.cmds.length; k++) this.cmd(shape.cmds[k], k);
    if (this.reachable) this.settle();
    fb.end();
    if (this.bud >= 0) fb.localGet(this.bud).globalSet(G_BUDGET);
    for (let r = 0; r <= 5; r++) fb.localGet(r);
    return shape.irreducible;
  }

  private cmd(c: Cmd, at: number): void {
    const fb = this.fb;
    switch (c.op) {
      case 'block':
        this.frames.push(-1);
        this.carry.push(this.carryable[at] === 1 ? CARRY_OPEN : NO_CARRY);
        fb.block();
        break;
      case 'loop':
        // Entered from before and by back edges: nothing may be pending at its header.
        this.settle();
        this.frames.push(-1);
        this.carry.push(NO_CARRY);
        fb.loop();
        const guard = this.bud >= 0 ? c.guard : undefined;
        if (guard !== undefined || c.count !== undefined) {
          const budget = guard !== undefined;
          if (guard !== undefined) fb.localGet(this.bud).i64Const(guard).i64LtU();
          if (c.count !== undefined) {
            // ... or the counter would reach zero before the group's last copy (structure.ts).
            const r = this.reg(c.count.reg);
            if (c.count.w === 64) fb.localGet(r).i64Const(1).i64Sub().i64Const(c.count.below).i64LtU();
            else fb.localGet(r).i32WrapI64().i32Const(1).i32Sub().i32Const(c.count.below).i32LtU();
            if (budget) fb.i32Or();
          }
          fb.brIf(1);
          this.enter(1);
        }
        break;
      case 'if':
        if (c.known === undefined) this.cond(this.fn.blocks[c.block].term);
        else fb.i32Const(c.known ? 1 : 0);
        this.frames.push(this.pending);
        this.carry.push(NO_CARRY);
        fb.if();
        break;
      case 'else':
        if (this.reachable) this.settle();
        fb.else();
        this.pending = this.frames[this.frames.length - 1];
        this.reachable = true;
        break;
      case 'end': {
        // What follows an `end` can be reached from several places, unless one branch alone enters.
        const carried = this.carry.pop()!;
        if (this.reachable) this.settle();
        fb.end();
        this.frames.pop();
        this.pending = carried >= 0 ? carried : 0;
        this.reachable = true;
        break;
      }
      case 'br':
        if (!this.enter(c.depth)) this.settle();
        fb.br(c.depth);
        this.reachable = false;
        break;
      case 'code':
        this.unchecked = c.unchecked === true;
        this.loopCovered = c.covered;
        this.blockCode(c.block);
        this.unchecked = false;
        this.loopCovered = undefined;
        break;
      case 'version':
        if (!this.enter(c.depth)) this.settle();
        this.version(c.count, c.tests);
        fb.i32Eqz().brIf(c.depth);
        break;
      case 'exit':
        this.exit(this.fn.blocks[c.block].term);
        this.reachable = false;
        break;
      case 'table':
        this.settle();
        fb.localGet(this.label).brTable(c.depths, c.depths.length - 1);
        this.reachable = false;
        break;
      case 'dispatchJump':
        this.settle();
        fb.i32Const(c.value).localSet(this.label).br(c.depth);
        this.reachable = false;
        break;
      case 'fold':
        this.fold(c.block, c.arm, c.onThen, c.unchecked === true);
        break;
      case 'dispatchBr':
        this.settle();
        fb.i32Const(c.then).i32Const(c.else);
        this.cond(this.fn.blocks[c.block].term);
        fb.select().localSet(this.label).br(c.depth);
        this.reachable = false;
        break;
    }
  }

  /**
   * A branch to the frame at `depth` is about to be emitted: whether it carries the pending charge
   * in (the frame's only way in), so it needs no settling.
   */
  private enter(depth: number): boolean {
    const f = this.carry.length - 1 - depth;
    if (f < 0 || this.carry[f] !== CARRY_OPEN) return false;
    this.carry[f] = this.pending;
    return true;
  }

  /** Subtracts the pending charge from `bud`. */
  private settle(): void {
    this.hole(H_SETTLE, this.pending);
    if (this.pending !== 0 && this.bud >= 0) this.fb.localGet(this.bud).i64Const(this.pending).i64Sub().localSet(this.bud);
    this.holeEnd();
    if (this.rec !== undefined) this.rec.relative = false;
    this.pending = 0;
  }

  /**
   * A block's code. The unrolled, fast and versioned copies of a loop emit its blocks many times
   * over, and a block's bytes depend only on the block, `unchecked`, `loopCovered` and the charge
   * pending on entry; the pending charge only shows in a few constants (`Template`). So the first
   * emission is recorded and the others copy its bytes, writing just those constants anew.
   */
  private blockCode(b: BlockId): void {
    const list = this.templates[b];
    if (list !== undefined) {
      for (const t of list) {
        if (t.unchecked === this.unchecked && t.covered === this.loopCovered) {
          this.replay(t);
          return;
        }
      }
    }
    const block = this.fn.blocks[b];
    if (this.uses[b] < 2) {
      this.code(block);
      return;
    }
    const fb = this.fb;
    const rec: Recorder = { p0: this.pending, relative: true, pieces: [], from: fb.body.length, insns: fb.instructionCount };
    this.rec = rec;
    this.code(block);
    this.rec = undefined;
    rec.pieces.push(rec.from, fb.body.length, fb.instructionCount - rec.insns, H_NONE, 0);
    const t: Template = { unchecked: this.unchecked, covered: this.loopCovered, pieces: rec.pieces, outRelative: rec.relative, out: rec.relative ? this.pending - rec.p0 : this.pending };
    if (list === undefined) this.templates[b] = [t];
    else list.push(t);
  }

  private replay(t: Template): void {
    const fb = this.fb;
    const p = this.pending;
    const pieces = t.pieces;
    for (let k = 0; k < pieces.length; k += 5) {
      fb.repeat(pieces[k], pieces[k + 1], pieces[k + 2]);
      const v = p + pieces[k + 4];
      switch (pieces[k + 3]) {
        case H_CONST:
          fb.i64Const(v);
          break;
        case H_SUB:
          if (v !== 0) fb.i64Const(v).i64Sub();
          break;
        case H_SETTLE:
          if (v !== 0 && this.bud >= 0) fb.localGet(this.bud).i64Const(v).i64Sub().localSet(this.bud);
          break;
      }
    }
    this.pending = t.outRelative ? p + t.out : t.out;
  }

  /** While recording, and while the pending charge is still relative to the block's entry: the bytes about to be written depend on `value` (see `Template`). */
  private hole(kind: number, value: number): void {
    const rec = this.rec;
    if (rec === undefined || !rec.relative) return;
    const fb = this.fb;
    rec.pieces.push(rec.from, fb.body.length, fb.instructionCount - rec.insns, kind, value - rec.p0);
  }

  private holeEnd(): void {
    const rec = this.rec;
    if (rec === undefined || !rec.relative) return;
    rec.from = this.fb.body.length;
    rec.insns = this.fb.instructionCount;
  }

  private code(b: Block): void {
    const insts = b.insts;
    const groups = this.groups[b.id];
    let k = 0;
    for (const g of groups) {
      this.range(insts, k, g.start);
      const loop = this.loopCovered;
      if (loop !== undefined && [...g.members].every((i) => loop.has(i))) {
        // A passed version test covers the whole group already.
        this.range(insts, g.start, g.end);
        k = g.end;
        continue;
      }
      // One range test for the group; when it fails, the span again with every check in place, so
      // the first access that faults is the one the interpreter faults at.
      const fb = this.fb;
      this.ctx.checks.groupTest(fb, this.reg(g.base), g.off, g.len, g.region, this.groupLim.get(g.len) ?? -1);
      fb.if();
      this.covered = g.members;
      this.range(insts, g.start, g.end);
      this.covered = undefined;
      fb.else();
      this.range(insts, g.start, g.end);
      fb.end();
      k = g.end;
    }
    this.range(insts, k, insts.length);
  }

  /** Emits insts[from, to), two byte loads that form one little-endian halfword as one load. */
  private range(insts: readonly Inst[], from: number, to: number): void {
    for (let k = from; k < to; k++) {
      const pair = k + 4 <= to ? halfwordPair(insts, k) : undefined;
      if (pair !== undefined && this.unchecked16(pair.lo) && this.unchecked16(pair.hi)) {
        this.halfword(pair, insts, k + 4);
        k += 3;
      } else this.inst(insts[k]);
    }
  }

  /** Whether a load runs without a check here (proven, or covered by the passed group test). */
  private unchecked16(i: LoadInst): boolean {
    return i.access.verdict === 'proven' || this.isCovered(i);
  }

  private isCovered(i: Inst): boolean {
    return this.covered?.has(i) === true || this.loopCovered?.has(i) === true;
  }

  private readonly regionOf = (i: Inst): number => regionIdOf(this.ctx.checks, i);

  /**
   * Pushes an i32: whether every walk of a versioned loop stays inside its region for as many
   * iterations as the loop can run (structure.ts `RangeTest`, `TripCount`). With m the iterations
   * after the first and T = P0 + lo - base (64-bit, wrapping), a walk of step s > 0 sweeps
   * [T, T + m*s + len) relative to the base, one of step -d sweeps [T - m*d, T + len); with T and m
   * first bounded by the region's size S < 2^32 and |s| <= 2^24, no sum or product below wraps.
   */
  private version(count: TripCount | undefined, tests: readonly RangeTest[]): void {
    const fb = this.fb;
    const m = this.t;
    const T = this.t2;
    let terms = 0;
    const term = (): void => {
      if (terms++ > 0) fb.i32And();
    };
    if (count !== undefined && tests.some((x) => x.step !== 0)) {
      const c = this.reg(count.reg);
      const bound = count.bound;
      if (count.w === 64) {
        const b = (): void => void ('reg' in bound ? fb.localGet(this.reg(bound.reg)) : fb.i64Const(bound.imm | 0));
        if (count.up) b();
        fb.localGet(c);
        if (!count.up) b();
        fb.i64Sub().i64Const(1).i64Sub().localSet(m);
        if (count.strict) {
          fb.localGet(c);
          b();
          if (count.up) fb.i64LtU();
          else fb.i64GtU();
          term();
        }
      } else {
        const b = (): void => void ('reg' in bound ? fb.localGet(this.reg(bound.reg)).i32WrapI64() : fb.i32Const(bound.imm | 0));
        if (count.up) b();
        fb.localGet(c).i32WrapI64();
        if (!count.up) b();
        fb.i32Sub().i32Const(1).i32Sub().i64ExtendI32U().localSet(m);
        if (count.strict) {
          fb.localGet(c).i32WrapI64();
          b();
          if (count.up) fb.i32LtU();
          else fb.i32GtU();
          term();
        }
      }
    }
    const checks = this.ctx.checks;
    for (const x of tests) {
      const region = checks.regions[x.region];
      if (region === undefined) throw new RangeError(`${this.fn.name}: a versioned loop tests region ${x.region}, which does not exist`);
      const size = (): void => {
        if (!checks.isMem(region)) fb.i64Const(region.size);
        else if (this.memLim[0] >= 0) fb.localGet(this.memLim[0]);
        else fb.globalGet(G_MEM_LIM[0]);
      };
      fb.localGet(this.reg(x.base));
      if (x.index !== undefined) {
        fb.localGet(this.reg(x.index.reg));
        if (x.index.shift !== 0) fb.i64Const(x.index.shift).i64Shl();
        fb.i64Add();
      }
      fb.i64Const(x.lo - region.base).i64Add().localTee(T);
      size();
      fb.i64LeU();
      term();
      if (x.step !== 0) {
        fb.localGet(m);
        size();
        fb.i64LeU();
        term();
      }
      if (x.step > 0) {
        fb.localGet(T).localGet(m);
        if (x.step !== 1) fb.i64Const(x.step).i64Mul();
        fb.i64Add().i64Const(x.len).i64Add();
      } else {
        if (x.step < 0) {
          fb.localGet(m);
          if (x.step !== -1) fb.i64Const(-x.step).i64Mul();
          fb.localGet(T).i64LeU();
          term();
        }
        fb.localGet(T).i64Const(x.len).i64Add();
      }
      size();
      fb.i64LeU();
      term();
    }
    if (terms === 0) fb.i32Const(1);
  }

  /**
   * dst = the halfword at base + off with one 16-bit load (Wasm memory is little-endian, as eBPF's
   * byte order here is), and the low byte's register as before unless it is dead (`deadAfter`).
   */
  private halfword(p: HalfwordPair, insts: readonly Inst[], after: number): void {
    const fb = this.fb;
    const base = this.reg(p.lo.base);
    const emitWord = (): void => {
      fb.localGet(base).i32WrapI64();
      if (p.lo.off < 0) fb.i32Const(p.lo.off).i32Add();
      fb.memAccess(Op.I64Load16U, p.lo.off >= 0 ? p.lo.off : 0, 0).localSet(this.reg(p.dst));
    };
    const lowByteLive = !deadAfter(insts, after, p.lo.dst);
    // The load that redefines the base register goes last (halfwordPair rules out the other order).
    if (p.hiFirst) {
      emitWord();
      if (lowByteLive) this.inst(p.lo);
    } else {
      if (lowByteLive) this.inst(p.lo);
      emitWord();
    }
  }

  private exit(t: Terminator): void {
    const fb = this.fb;
    if (t.op === 'fault') {
      // Dump r0..r10 so the host can name the address this instruction would have accessed.
      for (let r = 0; r <= 10; r++) fb.i32Const(0).localGet(this.regLocal[r]).i64Store(REG_DUMP_OFFSET + r * 8, 0);
      this.recordFault(FAULT_CODES[t.kind], t.pc);
      this.leave(false);
      return;
    }
    this.settle();
    fb.br(this.exitDepth());
  }

  /**
   * Ends the run from here (status already set): writes the budget back and returns r0 (a
   * helper's or a callee's result, which a stopped run ends with) or 0, and zeros for r1..r5,
   * which nobody reads after a non-zero status. A return, not a branch to the common exit: a
   * branch would merge every register into the exit from every check, and those merges cost the
   * hot path (V8 keeps all of them alive and in registers across each check).
   */
  private leave(keepR0: boolean): void {
    const fb = this.fb;
    if (this.bud >= 0) {
      fb.localGet(this.bud);
      this.hole(H_SUB, this.pending);
      if (this.pending !== 0) fb.i64Const(this.pending).i64Sub();
      this.holeEnd();
      fb.globalSet(G_BUDGET);
    }
    if (keepR0) fb.localGet(this.regLocal[0]);
    else fb.i64Const(0);
    for (let r = 1; r <= 5; r++) fb.i64Const(0);
    fb.return();
  }

  /** Pushes the i32 condition of a `br` terminator. */
  private cond(t: Terminator): void {
    if (t.op !== 'br') throw new RangeError(`${this.fn.name}: expected a br terminator at pc ${t.pc}`);
    const fb = this.fb;
    if (t.w === 64) {
      fb.localGet(this.reg(t.a));
      this.operand64(t.b);
      if (t.cond === 'set') fb.i64And().i64Const(0).i64Ne();
      else fb.plain(CMP64[t.cond]);
    } else {
      fb.localGet(this.reg(t.a)).i32WrapI64();
      this.operand32(t.b);
      if (t.cond === 'set') fb.i32And().i32Const(0).i32Ne();
      else fb.plain(CMP32[t.cond]);
    }
  }

  private reg(r: Reg): number {
    if (!(r >= 0 && r < this.regLocal.length)) {
      throw new RangeError(`${this.fn.name}: register ${r} is above maxReg ${this.fn.maxReg}`);
    }
    return this.regLocal[r];
  }

  private operand64(b: Operand): void {
    if ('reg' in b) this.fb.localGet(this.reg(b.reg));
    else this.fb.i64Const(b.imm | 0);
  }

  private operand32(b: Operand): void {
    if ('reg' in b) this.fb.localGet(this.reg(b.reg)).i32WrapI64();
    else this.fb.i32Const(b.imm | 0);
  }

  private recordFault(code: number, pc: number): void {
    this.fb.i32Const(code).globalSet(G_STATUS).i32Const(pc).globalSet(G_FAULT_PC);
  }

  /** Pushes the i64 value a pure register definition computes. */
  private value(i: PureInst): void {
    const fb = this.fb;
    switch (i.op) {
      case 'const':
        fb.i64ConstParts(i.lo, i.hi);
        return;
      case 'addr': {
        const base = this.ctx.layout.dataBase[i.section];
        if (base === undefined) throw new RangeError(`${this.fn.name}: pc ${i.pc} refers to data section ${i.section}, which does not exist`);
        fb.i64Const(base + i.offset);
        return;
      }
      case 'mov':
        fb.localGet(this.reg(i.src));
        if (i.w === 32) fb.i32WrapI64().i64ExtendI32U();
        return;
      case 'neg':
        if (i.w === 64) fb.i64Const(0).localGet(this.reg(i.src)).i64Sub();
        else fb.i32Const(0).localGet(this.reg(i.src)).i32WrapI64().i32Sub().i64ExtendI32U();
        return;
      case 'bin':
        this.bin(i.bin, i.w, i.a, i.b);
        return;
      case 'ext':
        this.ext(i.signed, i.bits, i.w, this.reg(i.src));
        return;
      case 'bswap':
        this.bswap(i.bits, this.reg(i.src));
        return;
    }
  }

  /**
   * Whether `block` can run under a condition without branching (structure.ts `fold`): at most
   * FOLD_MAX_INSTS pure definitions without division (nothing that can fault or touch memory),
   * after at most a budget charge in first place.
   */
  private readonly foldable = (block: number): boolean => {
    const insts = this.fn.blocks[block].insts;
    let n = 0;
    for (let k = 0; k < insts.length; k++) {
      const i = insts[k];
      if (i.op === 'budget' && k === 0) continue;
      if (!(i.op in PURE_OPS) || (i.op === 'bin' && isDiv(i.bin)) || ++n > FOLD_MAX_INSTS) return false;
    }
    return true;
  };

  /**
   * A folded triangle: `arm`'s charge and definitions take effect only when the branch would have
   * gone there (each register keeps its old value through a select otherwise); its budget fault
   * stays exact: it happens, at its pc, only on that path.
   */
  private fold(block: number, arm: number, onThen: boolean, unchecked: boolean): void {
    const fb = this.fb;
    const c = this.sel;
    this.cond(this.fn.blocks[block].term);
    if (!onThen) fb.i32Eqz();
    fb.localSet(c);
    for (const i of this.fn.blocks[arm].insts) {
      if (i.op === 'budget') {
        // Settles what is pending with the arm's charge when it runs: one subtraction.
        if (!unchecked) {
          fb.localGet(this.bud).i64Const(this.pending + i.cost).i64LtU().localGet(c).i32And().if();
          this.recordFault(FAULT_CODES.budget, i.pc);
          this.leave(false);
          fb.end();
        }
        fb.localGet(this.bud).i64Const(this.pending + i.cost).i64Const(this.pending).localGet(c).select().i64Sub().localSet(this.bud);
        this.pending = 0;
        continue;
      }
      const d = i as PureInst;
      const dst = this.reg(d.dst);
      this.value(d);
      fb.localGet(dst).localGet(c).select().localSet(dst);
    }
  }

  private inst(i: Inst): void {
    const fb = this.fb;
    switch (i.op) {
      case 'const':
      case 'addr':
      case 'mov':
      case 'neg':
      case 'bin':
      case 'ext':
      case 'bswap':
        this.value(i);
        fb.localSet(this.reg(i.dst));
        return;
      case 'load': {
        const at = this.address(i.base, i.off, i.size, false, i);
        fb.memAccess(LOAD[i.size][i.signed ? 1 : 0], at, 0).localSet(this.reg(i.dst));
        return;
      }
      case 'store': {
        const at = this.address(i.base, i.off, i.size, true, i);
        this.operand64(i.value);
        fb.memAccess(STORE[i.size], at, 0);
        return;
      }
      case 'atomic':
        this.atomic(i);
        return;
      case 'call':
        fb.i32Const(i.pc).globalSet(G_FAULT_PC).i32Const(i.id | 0);
        this.helperCall();
        return;
      case 'callx': {
        // An id with upper bits set can name no helper: fault here, with the whole value recorded.
        const r = this.reg(i.reg);
        fb.localGet(r).i64Const(32).i64ShrU().i64Const(0).i64Ne().if();
        fb.localGet(r).globalSet(G_FAULT_ADDR);
        this.recordFault(FAULT_CODES['unknown-helper'], i.pc);
        this.leave(false);
        fb.end();
        fb.i32Const(i.pc).globalSet(G_FAULT_PC).localGet(r).i32WrapI64();
        this.helperCall();
        return;
      }
      case 'calllocal':
        this.callLocal(i.func, i.pc);
        return;
      case 'budget':
        this.budget(i.cost, i.pc);
        return;
    }
  }

  /** Pushes a op b of width w (an i64). */
  private bin(op: BinOp, w: 32 | 64, a: Reg, b: Operand): void {
    const fb = this.fb;
    const ra = this.reg(a);
    if (w === 64) {
      const simple = BIN64[op];
      if (simple !== undefined) {
        fb.localGet(ra);
        this.operand64(b);
        fb.plain(simple);
        return;
      }
      if (!isDiv(op)) throw new RangeError(`${this.fn.name}: unknown binary operation '${op}'`);
      this.division64(op, ra, b);
      return;
    }
    const simple = BIN32[op];
    if (simple !== undefined) {
      fb.localGet(ra).i32WrapI64();
      this.operand32(b);
      fb.plain(simple).i64ExtendI32U();
      return;
    }
    if (!isDiv(op)) throw new RangeError(`${this.fn.name}: unknown binary operation '${op}'`);
    this.division32(op, ra, b);
    fb.i64ExtendI32U();
  }

  // RFC 9669: x/0 = 0, x%0 = x, INT_MIN/-1 = INT_MIN (= 0 - x), INT_MIN%-1 = 0 (Wasm's rem_s
  // already gives 0 there without trapping; only div_s traps).
  private division64(op: DivOp, ra: number, b: Operand): void {
    const fb = this.fb;
    if ('imm' in b) {
      const k = b.imm | 0;
      if (k === 0) {
        if (op === 'udiv' || op === 'sdiv') fb.i64Const(0);
        else fb.localGet(ra);
        return;
      }
      if (k === -1 && op === 'sdiv') {
        fb.i64Const(0).localGet(ra).i64Sub();
        return;
      }
      fb.localGet(ra).i64Const(k).plain(DIV64[op]);
      return;
    }
    const rb = this.reg(b.reg);
    fb.localGet(rb).i64Eqz().if('i64');
    if (op === 'udiv' || op === 'sdiv') fb.i64Const(0);
    else fb.localGet(ra);
    fb.else();
    if (op === 'sdiv') {
      fb.localGet(rb).i64Const(-1).i64Eq().if('i64');
      fb.i64Const(0).localGet(ra).i64Sub();
      fb.else();
      fb.localGet(ra).localGet(rb).i64DivS();
      fb.end();
    } else {
      fb.localGet(ra).localGet(rb).plain(DIV64[op]);
    }
    fb.end();
  }

  /** Pushes the i32 result. */
  private division32(op: DivOp, ra: number, b: Operand): void {
    const fb = this.fb;
    if ('imm' in b) {
      const k = b.imm | 0;
      if (k === 0) {
        if (op === 'udiv' || op === 'sdiv') fb.i32Const(0);
        else fb.localGet(ra).i32WrapI64();
        return;
      }
      if (k === -1 && op === 'sdiv') {
        fb.i32Const(0).localGet(ra).i32WrapI64().i32Sub();
        return;
      }
      fb.localGet(ra).i32WrapI64().i32Const(k).plain(DIV32[op]);
      return;
    }
    const rb = this.a2;
    fb.localGet(this.reg(b.reg)).i32WrapI64().localTee(rb).i32Eqz().if('i32');
    if (op === 'udiv' || op === 'sdiv') fb.i32Const(0);
    else fb.localGet(ra).i32WrapI64();
    fb.else();
    if (op === 'sdiv') {
      fb.localGet(rb).i32Const(-1).i32Eq().if('i32');
      fb.i32Const(0).localGet(ra).i32WrapI64().i32Sub();
      fb.else();
      fb.localGet(ra).i32WrapI64().localGet(rb).i32DivS();
      fb.end();
    } else {
      fb.localGet(ra).i32WrapI64().localGet(rb).plain(DIV32[op]);
    }
    fb.end();
  }

  private ext(signed: boolean, bits: 8 | 16 | 32, w: 32 | 64, src: number): void {
    const fb = this.fb;
    fb.localGet(src);
    if (!signed || (bits === 32 && w === 32)) {
      if (bits === 32) fb.i32WrapI64().i64ExtendI32U();
      else fb.i64Const(bits === 8 ? 0xff : 0xffff).i64And();
      return;
    }
    if (w === 64) {
      fb.plain(bits === 8 ? Op.I64Extend8S : bits === 16 ? Op.I64Extend16S : Op.I64Extend32S);
      return;
    }
    fb.i32WrapI64().plain(bits === 8 ? Op.I32Extend8S : Op.I32Extend16S).i64ExtendI32U();
  }

  private bswap(bits: 16 | 32 | 64, src: number): void {
    const fb = this.fb;
    const x = this.a;
    if (bits === 16) {
      fb.localGet(src).i32WrapI64().localTee(x).i32Const(0xff).i32And().i32Const(8).i32Shl();
      fb.localGet(x).i32Const(8).i32ShrU().i32Const(0xff).i32And().i32Or().i64ExtendI32U();
      return;
    }
    if (bits === 32) {
      fb.localGet(src).i32WrapI64().localSet(x);
      this.bswap32(x);
      fb.i64ExtendI32U();
      return;
    }
    // Swap each half, then exchange the halves.
    fb.localGet(src).i32WrapI64().localSet(x);
    this.bswap32(x);
    fb.i64ExtendI32U().i64Const(32).i64Shl();
    fb.localGet(src).i64Const(32).i64ShrU().i32WrapI64().localSet(x);
    this.bswap32(x);
    fb.i64ExtendI32U().i64Or();
  }

  /** Pushes the byte swap of i32 local x: (rotl(x, 8) & 0x00ff00ff) | (rotr(x, 8) & 0xff00ff00). */
  private bswap32(x: number): void {
    this.fb.localGet(x).i32Const(8).i32Rotl().i32Const(0x00ff00ff).i32And();
    this.fb.localGet(x).i32Const(8).i32Rotr().i32Const(0xff00ff00).i32And().i32Or();
  }

  /** Pushes the i32 address operand; returns the memarg offset to use with it. */
  private address(base: Reg, off: number, size: 1 | 2 | 4 | 8, write: boolean, i: Inst & { access: Access }): number {
    const access = this.isCovered(i) ? COVERED : i.access;
    return this.ctx.checks.address(this.fb, this.reg(base), off, size, write, access, i.pc, this.t, this.a, this.abandon, base);
  }

  private atomic(i: Extract<Inst, { op: 'atomic' }>): void {
    const fb = this.fb;
    const addr = this.a2;
    const old = this.t2;
    const src = this.reg(i.src);
    const r0 = this.regLocal[0];
    const at = this.address(i.base, i.off, i.size, true, i);
    fb.localSet(addr);
    const load = i.size === 8 ? Op.I64Load : Op.I64Load32U;
    const store = i.size === 8 ? Op.I64Store : Op.I64Store32;
    fb.localGet(addr).memAccess(load, at, 0).localSet(old);
    switch (i.aop) {
      case 'cmpxchg':
        // if (old == r0) *p = src; r0 = old (compared and returned at the access width)
        fb.localGet(old).localGet(r0);
        if (i.size === 4) fb.i64Const(0xffffffff).i64And();
        fb.i64Eq().if().localGet(addr).localGet(src).memAccess(store, at, 0).end();
        fb.localGet(old).localSet(r0);
        return;
      case 'xchg':
        fb.localGet(addr).localGet(src).memAccess(store, at, 0);
        fb.localGet(old).localSet(src);
        return;
      default:
        fb.localGet(addr).localGet(old).localGet(src).plain(ATOMIC64[i.aop]).memAccess(store, at, 0);
        if (i.fetch) fb.localGet(old).localSet(src);
    }
  }

  /** [id: i32] on the stack: calls the helper import, r0 := result, unwinds when status is set. */
  private helperCall(): void {
    const fb = this.fb;
    for (let r = 1; r <= 5; r++) fb.localGet(this.regLocal[r]);
    fb.call(HELPER_FUNC).localSet(this.regLocal[0]);
    fb.globalGet(G_STATUS).if();
    this.leave(true);
    fb.end();
  }

  private callLocal(func: number, pc: number): void {
    const fb = this.fb;
    if (!(func >= 0 && func < this.ctx.m.functions.length)) {
      throw new RangeError(`${this.fn.name}: pc ${pc} calls function ${func}, which does not exist`);
    }
    // depth + 1 >= MAX_CALL_DEPTH with depth = (top - fp) / STACK_FRAME
    const limit = this.ctx.layout.stackTop - (MAX_CALL_DEPTH - 2) * STACK_FRAME;
    fb.localGet(this.fp).i64Const(limit).i64LtU().if();
    this.recordFault(FAULT_CODES['call-depth'], pc);
    this.leave(false);
    fb.end();
    this.settle();
    if (this.bud >= 0) fb.localGet(this.bud).globalSet(G_BUDGET);
    for (let r = 0; r <= 9; r++) fb.localGet(r);
    fb.localGet(this.fp).i64Const(STACK_FRAME).i64Sub();
    fb.call(this.ctx.firstFunc + func);
    for (let r = 5; r >= 0; r--) fb.localSet(r);
    if (this.bud >= 0) fb.globalGet(G_BUDGET).localSet(this.bud);
    fb.globalGet(G_STATUS).if();
    this.leave(true);
    fb.end();
  }

  /** Faults unless `bud` covers what is pending plus `cost`; then `cost` is pending too. */
  private budget(cost: number, pc: number): void {
    const fb = this.fb;
    if (!(Number.isSafeInteger(cost) && cost >= 0)) throw new RangeError(`${this.fn.name}: pc ${pc} charges ${cost}, not a budget cost`);
    if (this.unchecked) {
      this.pending += cost;
      return;
    }
    fb.localGet(this.bud);
    this.hole(H_CONST, this.pending + cost);
    fb.i64Const(this.pending + cost);
    this.holeEnd();
    fb.i64LtU().if();
    this.recordFault(FAULT_CODES.budget, pc);
    this.leave(false);
    fb.end();
    this.pending += cost;
  }
}

const NO_CARRY = -1;
const CARRY_OPEN = -2;

/**
 * A block's code as first emitted, for copies: `pieces` holds, flat, per piece (from, to, insns,
 * hole, k): body bytes [from, to) of `insns` instructions to copy, then a hole, whose bytes depend
 * on the charge pending there, the entry's pending P plus k: H_CONST is i64.const P+k (a budget
 * check's bound), H_SUB subtracts P+k unless 0 (a run ending), H_SETTLE settles P+k (before a local
 * call; after it, the pending charge no longer depends on P and nothing is a hole). `out`: the
 * charge pending after the block (P + out when `outRelative`).
 */
interface Template {
  unchecked: boolean;
  covered: ReadonlySet<Inst> | undefined;
  pieces: number[];
  outRelative: boolean;
  out: number;
}

interface Recorder {
  p0: number;
  relative: boolean;
  pieces: number[];
  /** Where the current piece starts (body bytes, instructions). */
  from: number;
  insns: number;
}

const H_NONE = 0;
const H_CONST = 1;
const H_SUB = 2;
const H_SETTLE = 3;

/**
 * Per command index: 1 for a `block` exactly one branch enters (a loop's guard counts as a branch
 * to the frame around the loop) and whose end nothing falls into. Liveness follows the commands'
 * structure: code after br/exit/table/dispatch is dead until an `else` or an `end` that something
 * reaches.
 */
function joins(cmds: readonly Cmd[]): Uint8Array {
  const out = new Uint8Array(cmds.length);
  const start: number[] = [];
  const kind: number[] = [];
  const brs: number[] = [];
  const thenLive: number[] = [];
  let live = true;
  for (let i = 0; i < cmds.length; i++) {
    const c = cmds[i];
    switch (c.op) {
      case 'block':
      case 'loop':
      case 'if':
        start.push(i);
        kind.push(c.op === 'block' ? 0 : c.op === 'loop' ? 1 : 2);
        brs.push(0);
        thenLive.push(-1);
        if (c.op === 'loop' && (c.guard !== undefined || c.count !== undefined) && brs.length >= 2) brs[brs.length - 2]++;
        break;
      case 'else':
        thenLive[thenLive.length - 1] = live ? 1 : 0;
        live = true;
        break;
      case 'end': {
        const k = kind.pop()!;
        const s = start.pop()!;
        const n = brs.pop()!;
        const t = thenLive.pop()!;
        if (k === 0) {
          if (n === 1 && !live) out[s] = 1;
          live = live || n > 0;
        } else if (k === 2) live = live || t !== 0;
        break;
      }
      case 'br':
        if (c.depth < brs.length) brs[brs.length - 1 - c.depth]++;
        live = false;
        break;
      case 'version':
        if (c.depth < brs.length) brs[brs.length - 1 - c.depth]++;
        break;
      case 'exit':
      case 'table':
      case 'dispatchJump':
      case 'dispatchBr':
        // The dispatcher's branches go to loops; they never carry a charge in.
        live = false;
        break;
    }
  }
  return out;
}

/**
 * Checked accesses through one base register inside one block, tested together: from the first
 * member to the last (the span), the base is not redefined (a member load may redefine it last:
 * its own address uses the old value) and nothing runs that could end the run other than through
 * a check (no call, no budget charge); atomics stay out. Members guess the same region, so a range
 * test of [base + off, base + off + len) covering them all proves each of their inline compares
 * would pass. Other accesses in the span keep their own checks either way.
 */
interface CheckGroup {
  start: number;
  /** One past the last member. */
  end: number;
  members: ReadonlySet<Inst>;
  base: Reg;
  off: number;
  len: number;
  region: ModuleRegion;
}

/** Longest span a group duplicates (its code is emitted twice: covered, and checked). */
const GROUP_MAX_SPAN = 24;
const PROVEN: Access = { verdict: 'proven' };
const COVERED = PROVEN;
const ENDS_GROUP = { call: 1, callx: 1, calllocal: 1, budget: 1, atomic: 1 } as const;

/** A block's check groups of two or more members, in order, not overlapping. */
function findGroups(insts: readonly Inst[], checks: MemoryChecks): CheckGroup[] {
  const out: CheckGroup[] = [];
  const guess = (i: Inst): ModuleRegion | undefined =>
    i.op === 'load' || i.op === 'store' ? checks.guessOf(i.access, i.base, i.op === 'store') : undefined;
  for (let k = 0; k < insts.length; k++) {
    const first = insts[k];
    const region = guess(first);
    if (region === undefined || (first.op !== 'load' && first.op !== 'store')) continue;
    if (first.op === 'load' && first.dst === first.base) continue;
    const base = first.base;
    const members: Inst[] = [first];
    let lo = first.off;
    let hi = first.off + first.size;
    let end = k + 1;
    for (let j = k + 1; j < insts.length && j - k < GROUP_MAX_SPAN; j++) {
      const x = insts[j];
      if (x.op in ENDS_GROUP) break;
      if ((x.op === 'load' || x.op === 'store') && x.base === base && guess(x) === region) {
        const nlo = Math.min(lo, x.off);
        const nhi = Math.max(hi, x.off + x.size);
        if (!MemoryChecks.fits(region, nhi - nlo)) break;
        members.push(x);
        lo = nlo;
        hi = nhi;
        end = j + 1;
        if (x.op === 'load' && x.dst === base) break;
      } else if ('dst' in x && x.dst === base) break;
    }
    if (members.length < 2) continue;
    // A halfword's two byte loads ending the span take their shift and `or` in with them
    // (`halfwordPair`; both are register arithmetic, which the span may hold).
    for (let j = Math.max(k, end - 3); j < end; j++) {
      if (j + 4 > end && j + 4 <= insts.length && halfwordPair(insts, j) !== undefined) end = j + 4;
    }
    out.push({ start: k, end, members: new Set(members), base, off: lo, len: hi - lo, region });
    k = end - 1;
  }
  return out;
}

type LoadInst = Extract<Inst, { op: 'load' }>;

/**
 * Four instructions that assemble a little-endian halfword from two byte loads through one base:
 * `hi = load.u8 B+o+1; hi = shl hi, 8; lo = load.u8 B+o; hi = or hi, lo` (or the low byte's load
 * first). `dst` (= hi) ends up holding the halfword, zero-extended, at either width; `lo` its low byte.
 */
interface HalfwordPair {
  dst: Reg;
  lo: LoadInst;
  hi: LoadInst;
  hiFirst: boolean;
}

const isByteLoad = (i: Inst): i is LoadInst => i.op === 'load' && i.size === 1 && !i.signed;

function halfwordPair(insts: readonly Inst[], k: number): HalfwordPair | undefined {
  const [a, b, c, d] = [insts[k], insts[k + 1], insts[k + 2], insts[k + 3]];
  if (!isByteLoad(a) || d.op !== 'bin' || d.bin !== 'or') return undefined;
  let hi: LoadInst;
  let lo: LoadInst;
  let shl: Inst;
  const hiFirst = isByteLoad(c);
  if (hiFirst) {
    [hi, shl, lo] = [a, b, c];
    // The low byte's load reads the base after hi is defined.
    if (hi.dst === hi.base) return undefined;
  } else {
    if (!isByteLoad(b)) return undefined;
    [lo, hi, shl] = [a, b, c];
    if (lo.dst === lo.base) return undefined;
  }
  const x = hi.dst;
  const y = lo.dst;
  if (x === y || hi.base !== lo.base || hi.off !== lo.off + 1) return undefined;
  if (shl.op !== 'bin' || shl.bin !== 'shl' || shl.dst !== x || shl.a !== x || !('imm' in shl.b) || shl.b.imm !== 8) return undefined;
  const orsXY = d.dst === x && ((d.a === x && 'reg' in d.b && d.b.reg === y) || (d.a === y && 'reg' in d.b && d.b.reg === x));
  return orsXY ? { dst: x, lo, hi, hiFirst } : undefined;
}

/**
 * Whether register r is dead at insts[from]: redefined (without being read) in this block before
 * any instruction reads it. The end of the block counts as a read (the terminator or a successor).
 */
function deadAfter(insts: readonly Inst[], from: number, r: Reg): boolean {
  for (let k = from; k < insts.length; k++) {
    const i = insts[k];
    if (reads(i, r)) return false;
    if ('dst' in i && i.dst === r) return true;
  }
  return false;
}

const isReg = (o: Operand, r: Reg): boolean => 'reg' in o && o.reg === r;

/** Whether an instruction may read register r (calls: every register they pass, conservatively all). */
function reads(i: Inst, r: Reg): boolean {
  switch (i.op) {
    case 'const':
    case 'addr':
    case 'budget':
      return false;
    case 'mov':
    case 'neg':
    case 'ext':
    case 'bswap':
      return i.src === r;
    case 'bin':
      return i.a === r || isReg(i.b, r);
    case 'load':
      return i.base === r;
    case 'store':
      return i.base === r || isReg(i.value, r);
    case 'atomic':
      return i.base === r || i.src === r || r === 0;
    default:
      return true;
  }
}

/** Register definitions without side effects (that cannot fault either). */
type PureInst = Extract<Inst, { op: 'const' | 'addr' | 'mov' | 'neg' | 'bin' | 'ext' | 'bswap' }>;
const PURE_OPS = { const: 1, addr: 1, mov: 1, neg: 1, bin: 1, ext: 1, bswap: 1 } as const;
/** Longest arm a triangle folds: beyond, a predictable branch costs less than running both ways. */
const FOLD_MAX_INSTS = 4;

type DivOp = 'udiv' | 'sdiv' | 'urem' | 'srem';
const DIV64: Record<DivOp, number> = { udiv: Op.I64DivU, sdiv: Op.I64DivS, urem: Op.I64RemU, srem: Op.I64RemS };
const DIV32: Record<DivOp, number> = { udiv: Op.I32DivU, sdiv: Op.I32DivS, urem: Op.I32RemU, srem: Op.I32RemS };
const isDiv = (op: BinOp): op is DivOp => op in DIV64;

