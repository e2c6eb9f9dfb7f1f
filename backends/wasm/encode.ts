// The Wasm code emitter: one method per instruction the back end uses, writing straight into a
// growable byte buffer, plus a structured-control tracker. The tracker makes the back end's
// mistakes (unbalanced `end`, a branch past the outermost label, an unknown local, an alignment the
// instruction cannot have) fail here, naming the function and the instruction, instead of surfacing
// later as an opaque engine validation error. Type checking of the operand stack is left to the
// engine: it would cost a stack model per instruction on the JIT path.
import { ByteWriter, WasmEncodeError } from './leb128.js';
import { BLOCK_TYPE, IS_MEMORY_ACCESS, NATURAL_ALIGN, OP_NAME, Op, OpFC, PLAIN_OPS, VAL_TYPE } from './opcodes.js';
import type { BlockType, ValType } from './opcodes.js';

export type { BlockType, ValType } from './opcodes.js';
export { WasmEncodeError } from './leb128.js';

/** Code a builder wrote (`snapshot`), with what it refers to, for another builder to `append`. */
export interface CodeSnapshot {
  readonly bytes: Uint8Array;
  readonly insns: number;
  readonly maxFuncRef: number;
  readonly maxGlobalRef: number;
  readonly maxTypeRef: number;
  readonly usesMemory: boolean;
  readonly usesTable: boolean;
  readonly globalsSet: readonly number[];
}

/** A run of consecutive locals of one type, as the code section declares them. */
export interface LocalRun {
  type: ValType;
  count: number;
}

// Control frame kinds; the function body itself is the outermost frame (a branch target too).
const FRAME_FUNC = 0;
const FRAME_BLOCK = 1;
const FRAME_LOOP = 2;
const FRAME_IF = 3;
const FRAME_ELSE = 4;
const FRAME_NAME = ['function body', 'block', 'loop', 'if', 'else'];

const TWO_63 = 1n << 63n;
const TWO_64 = 1n << 64n;

/**
 * Body buffers of released builders (`release`), for the next ones: on the JIT path, allocating a
 * fresh buffer per function and growing it are a large part of a small module's compile time.
 */
const FREE_BODIES: Uint8Array<ArrayBuffer>[] = [];
const FREE_BODIES_MAX = 8;

/** The smallest free buffer that holds `capacity` bytes, else the largest (it grows). */
function takeBody(capacity: number): Uint8Array<ArrayBuffer> | undefined {
  let best = -1;
  for (let i = 0; i < FREE_BODIES.length; i++) {
    const n = FREE_BODIES[i].length;
    if (best < 0) best = i;
    else {
      const m = FREE_BODIES[best].length;
      if (n >= capacity ? m < capacity || n < m : m < capacity && n > m) best = i;
    }
  }
  if (best < 0) return undefined;
  const b = FREE_BODIES[best];
  FREE_BODIES[best] = FREE_BODIES[FREE_BODIES.length - 1];
  FREE_BODIES.pop();
  return b;
}
/** A buffer grown past this by a large function is let go, not kept. */
const FREE_BODY_MAX_BYTES = 1 << 21;

/** Appends src[0, n) to `out` (room reserved): a loop for short runs, where a subarray view and `set` cost more than the copy. */
function copyBytes(src: Uint8Array, n: number, out: ByteWriter): void {
  const dst = out.bytes;
  const at = out.length;
  if (n <= 64) for (let i = 0; i < n; i++) dst[at + i] = src[i];
  else dst.set(src.subarray(0, n), at);
  out.length = at + n;
}

export class FunctionBuilder {
  /** The instruction bytes written so far (without the locals declaration). */
  readonly body: ByteWriter;
  readonly locals: LocalRun[] = [];

  // What the body refers to outside itself: the module checks these when it is built.
  maxFuncRef = -1;
  maxGlobalRef = -1;
  maxTypeRef = -1;
  usesMemory = false;
  usesTable = false;
  readonly globalsSet = new Set<number>();

  private numLocals: number;
  private insns = 0;
  private depth = 1;
  private readonly frameKind: number[] = [FRAME_FUNC];
  private readonly frameType: number[] = [BLOCK_TYPE.empty];
  private readonly frameStart: number[] = [0];
  private header: ByteWriter | null = null;
  private released = false;

  constructor(
    readonly name: string,
    /** Index in the module's function index space (imports first). */
    readonly index: number,
    readonly typeIndex: number,
    readonly params: readonly ValType[],
    readonly results: readonly ValType[],
    /** Expected body size in bytes: growing the buffer costs an allocation and a copy each time. */
    capacity = 256,
  ) {
    this.numLocals = params.length;
    const pooled = takeBody(capacity);
    if (pooled === undefined) this.body = new ByteWriter(capacity);
    else {
      this.body = new ByteWriter(0);
      this.body.bytes = pooled;
      if (pooled.length < capacity) this.body.reserve(capacity);
    }
  }

  /**
   * Hands the body's buffer on to later builders: for the owner of a module that is built (its
   * bytes written out) and done with. The builder cannot be used afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    const b = this.body.bytes;
    this.body.bytes = new Uint8Array(0);
    this.body.length = 0;
    if (FREE_BODIES.length < FREE_BODIES_MAX && b.length <= FREE_BODY_MAX_BYTES) FREE_BODIES.push(b);
  }

  /** Instructions emitted so far. */
  get instructionCount(): number {
    return this.insns;
  }

  /** Labels a branch may currently target (depths 0 .. labelDepth-1). */
  get labelDepth(): number {
    return this.depth;
  }

  /** Params plus declared locals. */
  get localCount(): number {
    return this.numLocals;
  }

  /** Declares `count` locals of `type`; returns the index of the first. May be called at any time. */
  addLocal(type: ValType, count = 1): number {
    if (VAL_TYPE[type] === undefined) this.fail(`local type '${String(type)}' is not i32 or i64`);
    if (count >>> 0 !== count || count === 0) this.fail(`local count ${count} is not a positive integer`);
    if (this.header) this.fail('locals added after the function was finished');
    const first = this.numLocals;
    const last = this.locals[this.locals.length - 1];
    if (last && last.type === type) last.count += count;
    else this.locals.push({ type, count });
    this.numLocals += count;
    return first;
  }

  // ---- control ----------------------------------------------------------------------------------

  unreachable(): this {
    return this.op(Op.Unreachable);
  }
  nop(): this {
    return this.op(Op.Nop);
  }
  block(type: BlockType = 'empty'): this {
    return this.open(Op.Block, FRAME_BLOCK, type);
  }
  loop(type: BlockType = 'empty'): this {
    return this.open(Op.Loop, FRAME_LOOP, type);
  }
  if(type: BlockType = 'empty'): this {
    return this.open(Op.If, FRAME_IF, type);
  }

  else(): this {
    const top = this.depth - 1;
    if (top < 0 || this.frameKind[top] !== FRAME_IF) {
      this.failAt(Op.Else, `has no matching if (innermost open: ${this.describeTop()})`);
    }
    this.op(Op.Else);
    this.frameKind[top] = FRAME_ELSE;
    return this;
  }

  end(): this {
    const top = this.depth - 1;
    if (top < 0) this.failAt(Op.End, 'has no open block to close: the function body is already closed');
    if (this.frameKind[top] === FRAME_IF && this.frameType[top] !== BLOCK_TYPE.empty) {
      this.failAt(Op.End, `closes an if with a result (opened at instruction ${this.frameStart[top]}) that has no else`);
    }
    this.op(Op.End);
    this.depth = top;
    // pop(), not `length = top`: truncating through the length setter is a slow runtime call.
    this.frameKind.pop();
    this.frameType.pop();
    this.frameStart.pop();
    return this;
  }

  br(depth: number): this {
    this.checkDepth(Op.Br, depth);
    return this.opU32(Op.Br, depth);
  }
  brIf(depth: number): this {
    this.checkDepth(Op.BrIf, depth);
    return this.opU32(Op.BrIf, depth);
  }

  brTable(depths: ArrayLike<number>, defaultDepth: number): this {
    for (let i = 0; i < depths.length; i++) this.checkDepth(Op.BrTable, depths[i]);
    this.checkDepth(Op.BrTable, defaultDepth);
    this.op(Op.BrTable);
    const w = this.body;
    w.writeU32(depths.length);
    for (let i = 0; i < depths.length; i++) w.writeU32(depths[i]);
    w.writeU32(defaultDepth);
    return this;
  }

  return(): this {
    return this.op(Op.Return);
  }

  call(funcIndex: number): this {
    this.checkIndex(Op.Call, funcIndex, 'function index');
    if (funcIndex > this.maxFuncRef) this.maxFuncRef = funcIndex;
    return this.opU32(Op.Call, funcIndex);
  }

  callIndirect(typeIndex: number, tableIndex = 0): this {
    this.checkIndex(Op.CallIndirect, typeIndex, 'type index');
    if (tableIndex !== 0) this.failAt(Op.CallIndirect, `table ${tableIndex}: modules have at most one table`);
    if (typeIndex > this.maxTypeRef) this.maxTypeRef = typeIndex;
    this.usesTable = true;
    this.opU32(Op.CallIndirect, typeIndex);
    this.body.u8(0);
    return this;
  }

  drop(): this {
    return this.op(Op.Drop);
  }
  select(): this {
    return this.op(Op.Select);
  }

  // ---- variables --------------------------------------------------------------------------------

  localGet(index: number): this {
    this.checkLocal(Op.LocalGet, index);
    return this.opU32(Op.LocalGet, index);
  }
  localSet(index: number): this {
    this.checkLocal(Op.LocalSet, index);
    return this.opU32(Op.LocalSet, index);
  }
  localTee(index: number): this {
    this.checkLocal(Op.LocalTee, index);
    return this.opU32(Op.LocalTee, index);
  }

  globalGet(index: number): this {
    this.checkIndex(Op.GlobalGet, index, 'global index');
    if (index > this.maxGlobalRef) this.maxGlobalRef = index;
    return this.opU32(Op.GlobalGet, index);
  }
  globalSet(index: number): this {
    this.checkIndex(Op.GlobalSet, index, 'global index');
    if (index > this.maxGlobalRef) this.maxGlobalRef = index;
    this.globalsSet.add(index);
    return this.opU32(Op.GlobalSet, index);
  }

  // ---- constants --------------------------------------------------------------------------------

  /** Any 32-bit pattern: an int32 or a uint32 (0xffffffff is -1). */
  i32Const(v: number): this {
    if ((v | 0) !== v && v >>> 0 !== v) this.failAt(Op.I32Const, `${v} is not a 32-bit integer`);
    this.op(Op.I32Const);
    this.body.writeS32(v | 0);
    return this;
  }

  /** Any 64-bit pattern: a bigint in [-2^63, 2^64-1] or a safe-integer number. */
  i64Const(v: bigint | number): this {
    if (typeof v === 'number') {
      if ((v | 0) === v) {
        this.op(Op.I64Const);
        this.body.writeS32(v);
        return this;
      }
      if (!Number.isSafeInteger(v)) this.failAt(Op.I64Const, `${v} is not a safe integer; pass a bigint`);
      v = BigInt(v);
    }
    if (v < -TWO_63 || v >= TWO_64) this.failAt(Op.I64Const, `${v} does not fit in 64 bits`);
    this.op(Op.I64Const);
    this.body.s64(v);
    return this;
  }

  /** i64.const from its low and high 32-bit halves (as an eBPF `lddw` carries it): no BigInt. */
  i64ConstParts(lo: number, hi: number): this {
    this.op(Op.I64Const);
    this.body.s64Parts(lo, hi);
    return this;
  }

  // ---- plain numeric instructions (no immediates) -----------------------------------------------

  /** Any opcode without immediates that leaves the control structure alone (see PLAIN_OPS). */
  plain(code: number): this {
    if (!(code >= 0 && code <= 0xff) || PLAIN_OPS[code] !== 1) {
      this.fail(`opcode 0x${code.toString(16)} takes immediates or changes control structure; use its own method`);
    }
    return this.op(code);
  }

  i32Eqz(): this { return this.op(Op.I32Eqz); }
  i32Eq(): this { return this.op(Op.I32Eq); }
  i32Ne(): this { return this.op(Op.I32Ne); }
  i32LtS(): this { return this.op(Op.I32LtS); }
  i32LtU(): this { return this.op(Op.I32LtU); }
  i32GtS(): this { return this.op(Op.I32GtS); }
  i32GtU(): this { return this.op(Op.I32GtU); }
  i32LeS(): this { return this.op(Op.I32LeS); }
  i32LeU(): this { return this.op(Op.I32LeU); }
  i32GeS(): this { return this.op(Op.I32GeS); }
  i32GeU(): this { return this.op(Op.I32GeU); }
  i32Clz(): this { return this.op(Op.I32Clz); }
  i32Ctz(): this { return this.op(Op.I32Ctz); }
  i32Popcnt(): this { return this.op(Op.I32Popcnt); }
  i32Add(): this { return this.op(Op.I32Add); }
  i32Sub(): this { return this.op(Op.I32Sub); }
  i32Mul(): this { return this.op(Op.I32Mul); }
  i32DivS(): this { return this.op(Op.I32DivS); }
  i32DivU(): this { return this.op(Op.I32DivU); }
  i32RemS(): this { return this.op(Op.I32RemS); }
  i32RemU(): this { return this.op(Op.I32RemU); }
  i32And(): this { return this.op(Op.I32And); }
  i32Or(): this { return this.op(Op.I32Or); }
  i32Xor(): this { return this.op(Op.I32Xor); }
  i32Shl(): this { return this.op(Op.I32Shl); }
  i32ShrS(): this { return this.op(Op.I32ShrS); }
  i32ShrU(): this { return this.op(Op.I32ShrU); }
  i32Rotl(): this { return this.op(Op.I32Rotl); }
  i32Rotr(): this { return this.op(Op.I32Rotr); }

  i64Eqz(): this { return this.op(Op.I64Eqz); }
  i64Eq(): this { return this.op(Op.I64Eq); }
  i64Ne(): this { return this.op(Op.I64Ne); }
  i64LtS(): this { return this.op(Op.I64LtS); }
  i64LtU(): this { return this.op(Op.I64LtU); }
  i64GtS(): this { return this.op(Op.I64GtS); }
  i64GtU(): this { return this.op(Op.I64GtU); }
  i64LeS(): this { return this.op(Op.I64LeS); }
  i64LeU(): this { return this.op(Op.I64LeU); }
  i64GeS(): this { return this.op(Op.I64GeS); }
  i64GeU(): this { return this.op(Op.I64GeU); }
  i64Clz(): this { return this.op(Op.I64Clz); }
  i64Ctz(): this { return this.op(Op.I64Ctz); }
  i64Popcnt(): this { return this.op(Op.I64Popcnt); }
  i64Add(): this { return this.op(Op.I64Add); }
  i64Sub(): this { return this.op(Op.I64Sub); }
  i64Mul(): this { return this.op(Op.I64Mul); }
  i64DivS(): this { return this.op(Op.I64DivS); }
  i64DivU(): this { return this.op(Op.I64DivU); }
  i64RemS(): this { return this.op(Op.I64RemS); }
  i64RemU(): this { return this.op(Op.I64RemU); }
  i64And(): this { return this.op(Op.I64And); }
  i64Or(): this { return this.op(Op.I64Or); }
  i64Xor(): this { return this.op(Op.I64Xor); }
  i64Shl(): this { return this.op(Op.I64Shl); }
  i64ShrS(): this { return this.op(Op.I64ShrS); }
  i64ShrU(): this { return this.op(Op.I64ShrU); }
  i64Rotl(): this { return this.op(Op.I64Rotl); }
  i64Rotr(): this { return this.op(Op.I64Rotr); }

  i32WrapI64(): this { return this.op(Op.I32WrapI64); }
  i64ExtendI32S(): this { return this.op(Op.I64ExtendI32S); }
  i64ExtendI32U(): this { return this.op(Op.I64ExtendI32U); }
  i32Extend8S(): this { return this.op(Op.I32Extend8S); }
  i32Extend16S(): this { return this.op(Op.I32Extend16S); }
  i64Extend8S(): this { return this.op(Op.I64Extend8S); }
  i64Extend16S(): this { return this.op(Op.I64Extend16S); }
  i64Extend32S(): this { return this.op(Op.I64Extend32S); }

  // ---- memory -----------------------------------------------------------------------------------
  // `offset` is the constant added to the address operand; `align` is log2 of the promised
  // alignment, at most the access width (the default).

  /** Any load or store by opcode, for table-driven lowering. */
  memAccess(code: number, offset = 0, align: number = NATURAL_ALIGN[code & 0xff]): this {
    if (!(code >= 0 && code <= 0xff) || IS_MEMORY_ACCESS[code] !== 1) {
      this.fail(`opcode 0x${code.toString(16)} is not an integer load or store`);
    }
    return this.mem(code, offset, align);
  }

  i32Load(offset = 0, align = 2): this { return this.mem(Op.I32Load, offset, align); }
  i64Load(offset = 0, align = 3): this { return this.mem(Op.I64Load, offset, align); }
  i32Load8S(offset = 0, align = 0): this { return this.mem(Op.I32Load8S, offset, align); }
  i32Load8U(offset = 0, align = 0): this { return this.mem(Op.I32Load8U, offset, align); }
  i32Load16S(offset = 0, align = 1): this { return this.mem(Op.I32Load16S, offset, align); }
  i32Load16U(offset = 0, align = 1): this { return this.mem(Op.I32Load16U, offset, align); }
  i64Load8S(offset = 0, align = 0): this { return this.mem(Op.I64Load8S, offset, align); }
  i64Load8U(offset = 0, align = 0): this { return this.mem(Op.I64Load8U, offset, align); }
  i64Load16S(offset = 0, align = 1): this { return this.mem(Op.I64Load16S, offset, align); }
  i64Load16U(offset = 0, align = 1): this { return this.mem(Op.I64Load16U, offset, align); }
  i64Load32S(offset = 0, align = 2): this { return this.mem(Op.I64Load32S, offset, align); }
  i64Load32U(offset = 0, align = 2): this { return this.mem(Op.I64Load32U, offset, align); }
  i32Store(offset = 0, align = 2): this { return this.mem(Op.I32Store, offset, align); }
  i64Store(offset = 0, align = 3): this { return this.mem(Op.I64Store, offset, align); }
  i32Store8(offset = 0, align = 0): this { return this.mem(Op.I32Store8, offset, align); }
  i32Store16(offset = 0, align = 1): this { return this.mem(Op.I32Store16, offset, align); }
  i64Store8(offset = 0, align = 0): this { return this.mem(Op.I64Store8, offset, align); }
  i64Store16(offset = 0, align = 1): this { return this.mem(Op.I64Store16, offset, align); }
  i64Store32(offset = 0, align = 2): this { return this.mem(Op.I64Store32, offset, align); }

  memorySize(): this {
    this.usesMemory = true;
    this.op(Op.MemorySize);
    this.body.u8(0);
    return this;
  }
  memoryGrow(): this {
    this.usesMemory = true;
    this.op(Op.MemoryGrow);
    this.body.u8(0);
    return this;
  }
  /** memory.copy (bulk memory): [dst, src, len] -> []. */
  memoryCopy(): this {
    this.usesMemory = true;
    this.op(Op.PrefixFC);
    this.body.writeU32(OpFC.MemoryCopy);
    this.body.u8x2(0, 0);
    return this;
  }
  /** memory.fill (bulk memory): [dst, byte, len] -> []. */
  memoryFill(): this {
    this.usesMemory = true;
    this.op(Op.PrefixFC);
    this.body.writeU32(OpFC.MemoryFill);
    this.body.u8(0);
    return this;
  }

  /**
   * Appends again the body bytes [from, to) this builder wrote earlier, which held `insns` whole
   * instructions with balanced structure (every block opened there closed there): a back end
   * emitting the same code twice copies it instead. Whatever those bytes refer to (functions,
   * globals, memory) was recorded when they were first written.
   */
  repeat(from: number, to: number, insns: number): this {
    const w = this.body;
    if (!(from >= 0 && from <= to && to <= w.length) || insns >>> 0 !== insns) {
      this.fail(`repeat of bytes [${from}, ${to}) (${insns} instructions): not a range of the ${w.length} bytes written`);
    }
    if (this.depth === 0 && to > from) this.afterEnd(w.bytes[from]);
    const n = to - from;
    w.reserve(n);
    w.bytes.copyWithin(w.length, from, to);
    w.length += n;
    this.insns += insns;
    return this;
  }

  /**
   * The body so far, which must have no open block, for `append` to another function with the same
   * locals: code that is the same in every module (the JIT's entry points) is emitted once.
   */
  snapshot(): CodeSnapshot {
    if (this.depth === 0) this.fail('snapshot after the end of the function body');
    if (this.depth !== 1) this.fail(`snapshot with ${this.depth - 1} block(s) open (innermost: ${this.describeTop()})`);
    return {
      bytes: this.body.toBytes(),
      insns: this.insns,
      maxFuncRef: this.maxFuncRef,
      maxGlobalRef: this.maxGlobalRef,
      maxTypeRef: this.maxTypeRef,
      usesMemory: this.usesMemory,
      usesTable: this.usesTable,
      globalsSet: [...this.globalsSet],
    };
  }

  /** Appends a snapshot's code (see `snapshot`), as if it had been emitted here instruction by instruction. */
  append(s: CodeSnapshot): this {
    if (this.depth === 0) this.afterEnd(s.bytes[0] ?? Op.Nop);
    const w = this.body;
    w.reserve(s.bytes.length);
    w.bytes.set(s.bytes, w.length);
    w.length += s.bytes.length;
    this.insns += s.insns;
    if (s.maxFuncRef > this.maxFuncRef) this.maxFuncRef = s.maxFuncRef;
    if (s.maxGlobalRef > this.maxGlobalRef) this.maxGlobalRef = s.maxGlobalRef;
    if (s.maxTypeRef > this.maxTypeRef) this.maxTypeRef = s.maxTypeRef;
    if (s.usesMemory) this.usesMemory = true;
    if (s.usesTable) this.usesTable = true;
    for (const g of s.globalsSet) this.globalsSet.add(g);
    return this;
  }

  // ---- completion -------------------------------------------------------------------------------

  /**
   * Closes the function: emits its final `end` if the back end has not, and checks that every
   * block is closed. Idempotent; the module calls it when built.
   */
  finish(): void {
    if (this.released) this.fail('used after release()');
    if (this.header) return;
    if (this.depth > 1) {
      this.fail(
        `${this.depth - 1} block(s) still open at the end of the function ` +
          `(innermost: ${this.describeTop()})`,
      );
    }
    if (this.depth === 1) this.end();
    const h = new ByteWriter(8 + this.locals.length * 6);
    h.writeU32(this.locals.length);
    for (const run of this.locals) {
      h.writeU32(run.count);
      h.u8(VAL_TYPE[run.type]);
    }
    this.header = h;
  }

  /** Size of this function's code-section entry (locals + body), after finish(). */
  get entrySize(): number {
    return this.requireHeader().length + this.body.length;
  }

  /** Appends the code-section entry, size prefix included. */
  writeEntry(out: ByteWriter): void {
    const h = this.requireHeader();
    out.writeU32(h.length + this.body.length);
    out.reserve(h.length + this.body.length);
    copyBytes(h.bytes, h.length, out);
    copyBytes(this.body.bytes, this.body.length, out);
  }

  // ---- internals --------------------------------------------------------------------------------

  private op(code: number): this {
    if (this.depth === 0) this.afterEnd(code);
    this.insns++;
    this.body.u8(code);
    return this;
  }

  private opU32(code: number, imm: number): this {
    if (this.depth === 0) this.afterEnd(code);
    this.insns++;
    const w = this.body;
    w.u8(code);
    w.writeU32(imm);
    return this;
  }

  private open(code: number, kind: number, type: BlockType): this {
    const bt = BLOCK_TYPE[type];
    if (bt === undefined) this.failAt(code, `block type '${String(type)}' is not empty, i32 or i64`);
    this.op(code);
    this.body.u8(bt);
    const d = this.depth++;
    this.frameKind[d] = kind;
    this.frameType[d] = bt;
    this.frameStart[d] = this.insns - 1;
    return this;
  }

  private mem(code: number, offset: number, align: number): this {
    const natural = NATURAL_ALIGN[code];
    if (align >>> 0 !== align || align > natural) {
      this.failAt(code, `alignment 2^${align} is not allowed: at most the access width 2^${natural}`);
    }
    if (offset >>> 0 !== offset) this.failAt(code, `offset ${offset} is not in [0, 2^32-1]`);
    this.usesMemory = true;
    this.op(code);
    const w = this.body;
    w.writeU32(align);
    w.writeU32(offset);
    return this;
  }

  private checkDepth(code: number, depth: number): void {
    if (depth >>> 0 !== depth || depth >= this.depth) {
      this.failAt(
        code,
        `${depth}: branch depth out of range, ${this.depth} enclosing label(s) (valid depths 0..${this.depth - 1})`,
      );
    }
  }

  private checkLocal(code: number, index: number): void {
    if (index >>> 0 !== index || index >= this.numLocals) {
      this.failAt(
        code,
        `${index}: no such local (${this.params.length} param(s) + ${this.numLocals - this.params.length} local(s))`,
      );
    }
  }

  private checkIndex(code: number, index: number, what: string): void {
    if (index >>> 0 !== index) this.failAt(code, `${index}: ${what} is not a non-negative integer`);
  }

  private describeTop(): string {
    const top = this.depth - 1;
    if (top < 0) return 'none, the function body is closed';
    return `${FRAME_NAME[this.frameKind[top]]} opened at instruction ${this.frameStart[top]}`;
  }

  private afterEnd(code: number): never {
    return this.failAt(code, 'comes after the end of the function body');
  }

  private requireHeader(): ByteWriter {
    if (this.released) this.fail('used after release()');
    if (!this.header) this.fail('used before finish()');
    return this.header;
  }

  private failAt(code: number, what: string): never {
    const name = code === Op.PrefixFC ? 'memory bulk op' : OP_NAME[code] || `opcode 0x${code.toString(16)}`;
    return this.fail(`${name} at instruction ${this.insns}: ${what}`);
  }

  private fail(what: string): never {
    throw new WasmEncodeError(`wasm function '${this.name}' (#${this.index}): ${what}`);
  }
}
