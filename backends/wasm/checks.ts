// Bounds checks of the Wasm back end. Every region lives in linear memory at its virtual address,
// so a checked access needs no translation, only a decision. An access is valid when its 64-bit
// address A has a zero upper half and [A, A + size) lies inside one region (and the region is
// writable for writes); per region that is one unsigned compare:
//     A - base  <u  lim(size) = max(0, regionSize - size + 1)
// which also rejects A below the base and any A with upper bits set (the subtraction wraps high).
//
// - 'proven': no check; the address is the low half plus the offset.
// - 'check' with a known region: the inline compare against that region only. Its failure is not
//   yet a fault (the flat address space lets an out-of-range pointer land in another region, and
//   the interpreter allows that), so it goes on to the full search, which faults if nothing
//   fits. The inline compare is also used, with a guessed region, when the region is unknown:
//   the stack for r10-based accesses, else mem.
// - The full search: compares over every other region, mem first, inline after the failed guess
//   (so the hot path holds no call), or, for modules with many regions, a call of
//   $find_<size>_<r|w>, which returns the address, or records the fault (kind, pc, address,
//   size) and returns 0 (never a valid address: regions start at 0x10000) so the caller unwinds.
//
// Static regions compare against constants; mem's limits live in globals that `run` computes
// from mem_len, because mem's size is only known per run.
import type { Access, Reg } from '../../compiler/ir/ir.js';
import { FAULT_CODES } from '../../runtime/errors.js';
import { FAULT_WRITE } from './abi.js';
import type { FunctionBuilder, ValType } from './encode.js';
import type { ModuleBuilder } from './module.js';

/** A region as the module sees it; mem has `size` -1 (known per run only). */
export interface ModuleRegion {
  name: string;
  base: number;
  size: number;
  writable: boolean;
}

/** Globals the checks read and the fault record they write (module-wide indices). */
export interface CheckGlobals {
  status: number;
  faultPc: number;
  faultAddr: number;
  faultSize: number;
  /** mem's lim(size) for sizes 1, 2, 4, 8, by log2 of the size. */
  memLim: readonly number[];
}

const LOG2: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };
/** Up to this many regions a failed guess searches inline; beyond, it calls a search function. */
const INLINE_SEARCH_MAX_REGIONS = 6;
/** find_*(address, pc) -> linear-memory address. */
const FIND_PARAMS: readonly ValType[] = ['i64', 'i32'];
const FIND_RESULTS: readonly ValType[] = ['i32'];

export class MemoryChecks {
  /** Function index of each search variant ((log2 size) * 2 + write), -1 until first used. */
  private readonly findIndex = new Int32Array(8).fill(-1);
  private readonly findOrder: number[] = [];
  private readonly byName = new Map<string, ModuleRegion>();
  private readonly stack: ModuleRegion;
  private readonly mem: ModuleRegion;
  /** mem first: most unpredicted accesses go there. */
  private readonly searchOrder: readonly ModuleRegion[];

  constructor(
    readonly regions: readonly ModuleRegion[],
    private readonly globals: CheckGlobals,
    /** Function index the first search variant will get (they are added after everything else). */
    private readonly firstFindIndex: number,
  ) {
    for (const r of regions) if (!this.byName.has(r.name)) this.byName.set(r.name, r);
    this.stack = regions[0];
    this.mem = regions[regions.length - 1];
    this.searchOrder = [this.mem, ...regions.filter((r) => r !== this.mem)];
  }

  /**
   * Emits code leaving an i32 address on the stack for a load or store whose memarg offset is the
   * returned value: the address plus that offset is the checked address of (base + off). A
   * non-negative `off` goes into the memarg (V8 folds it into the addressing mode, and the hot
   * path is then the base's low half alone); that is exact because every region starts above
   * 0x10000 > any eBPF offset, so an address that passed has base = address - off >= 0 and the
   * memarg's unwrapped 33-bit sum is the address itself.
   * On failure the code records the fault and calls `leave` to emit what ends the run from there.
   * `scratch` is an i64 local, `addr` an i32 local.
   */
  address(
    fb: FunctionBuilder,
    baseLocal: number,
    off: number,
    size: 1 | 2 | 4 | 8,
    write: boolean,
    access: Access,
    pc: number,
    scratch: number,
    addr: number,
    leave: () => void,
    baseReg: Reg,
  ): number {
    const memarg = off >= 0 ? off : 0;
    if (access.verdict === 'proven') {
      fb.localGet(baseLocal).i32WrapI64();
      if (off < 0) fb.i32Const(off).i32Add();
      return memarg;
    }
    const known = access.region !== undefined ? this.byName.get(access.region) : undefined;
    const guess = known ?? (baseReg === 10 ? this.stack : this.mem);
    if (write && !guess.writable) {
      // Never valid in the guessed region: straight to the search, which names the fault.
      fb.localGet(baseLocal);
      if (off !== 0) fb.i64Const(off).i64Add();
      fb.localSet(scratch);
      this.search(fb, scratch, size, write, pc, memarg, addr, leave, undefined);
      return memarg;
    }
    // t = A - base; t <u lim ? (address) : search(A)
    fb.localGet(baseLocal).i64Const(off - guess.base).i64Add().localTee(scratch);
    this.lim(fb, guess, size);
    fb.i64LtU().if('i32');
    if (off >= 0) fb.localGet(baseLocal).i32WrapI64();
    else {
      fb.localGet(scratch).i32WrapI64();
      if (guess.base !== 0) fb.i32Const(guess.base).i32Add();
    }
    fb.else();
    fb.localGet(scratch).i64Const(guess.base).i64Add().localSet(scratch);
    this.search(fb, scratch, size, write, pc, memarg, addr, leave, guess);
    fb.end();
    return memarg;
  }

  /**
   * The region a checked access's inline compare tries first, or undefined when it has none that
   * can pass (a write guessed into a read-only region goes straight to the search). Accesses that
   * share it can share one range test (see `groupTest`).
   */
  guessOf(access: Access, baseReg: Reg, write: boolean): ModuleRegion | undefined {
    if (access.verdict === 'proven') return undefined;
    const known = access.region !== undefined ? this.byName.get(access.region) : undefined;
    const guess = known ?? (baseReg === 10 ? this.stack : this.mem);
    return write && !guess.writable ? undefined : guess;
  }

  /** Whether a range of `len` bytes can lie in `region` at all (mem's size is only known per run). */
  static fits(region: ModuleRegion, len: number): boolean {
    return region.size < 0 || region.size >= len;
  }

  /** Whether `region` is mem, whose limits are per run. */
  isMem(region: ModuleRegion): boolean {
    return region === this.mem;
  }

  /**
   * Pushes an i32: whether [base + off, base + off + len) lies in `region` (a zero upper half
   * included), the test that covers every access of a group at once: each access inside that range
   * would pass its own inline compare against the same region. For mem, `memLimLocal` holds
   * max(0, mem_len - len + 1) (the function computes it on entry).
   */
  groupTest(fb: FunctionBuilder, baseLocal: number, off: number, len: number, region: ModuleRegion, memLimLocal: number): void {
    fb.localGet(baseLocal).i64Const(off - region.base).i64Add();
    if (region === this.mem) fb.localGet(memLimLocal);
    else fb.i64Const(Math.max(0, region.size - len + 1));
    fb.i64LtU();
  }

  /**
   * The slow path: the 64-bit address A is in `scratch`; leaves A - memarg (an i32) on the stack,
   * or records the fault and branches to the exit. Inline compares when the module has few
   * regions, so the hot path around it holds no call (V8 would spill every value live across a
   * call, on the hot path too: it cannot know the call is rare); a call of the module's search
   * function otherwise.
   */
  private search(
    fb: FunctionBuilder, scratch: number, size: 1 | 2 | 4 | 8, write: boolean, pc: number, memarg: number,
    addr: number, leave: () => void, skip: ModuleRegion | undefined,
  ): void {
    if (this.regions.length > INLINE_SEARCH_MAX_REGIONS) {
      fb.localGet(scratch).i32Const(pc).call(this.findFunction(size, write));
      fb.localTee(addr).i32Eqz().if();
      leave();
      fb.end().localGet(addr);
      if (memarg !== 0) fb.i32Const(memarg).i32Sub();
      return;
    }
    const g = this.globals;
    const info = size | (write ? FAULT_WRITE : 0);
    const record = (code: number): void => {
      fb.i32Const(code).globalSet(g.status).i32Const(pc).globalSet(g.faultPc);
      fb.localGet(scratch).globalSet(g.faultAddr).i32Const(info).globalSet(g.faultSize);
    };
    fb.block('i32');
    // A region the guess already ruled out cannot match: skip it, unless a read-only guess was
    // skipped for a write (then it is the one that names the permission fault).
    for (const r of this.searchOrder) {
      if (r === skip) continue;
      fb.localGet(scratch).i64Const(r.base).i64Sub();
      this.lim(fb, r, size);
      fb.i64LtU().if();
      if (write && !r.writable) {
        record(FAULT_CODES.permission);
        leave();
      } else {
        fb.localGet(scratch).i32WrapI64();
        if (memarg !== 0) fb.i32Const(memarg).i32Sub();
        fb.br(1);
      }
      fb.end();
    }
    record(FAULT_CODES['out-of-bounds']);
    leave();
    fb.end();
  }

  /**
   * The current function's locals caching mem's limits (by log2 of the size, -1: read the global),
   * set by the lowering for the function it is emitting. The globals are fixed for a whole run, and
   * V8 keeps a local in a register where it reloads a global on every check inside a loop.
   */
  memLimLocals: Int32Array | undefined;

  /** Whether an access needs mem's limit for its size (so a function can cache it). */
  static needsMemLimit(access: Access): boolean {
    return access.verdict !== 'proven';
  }

  private lim(fb: FunctionBuilder, r: ModuleRegion, size: number): void {
    const cached = this.memLimLocals?.[LOG2[size]] ?? -1;
    if (r === this.mem && cached >= 0) fb.localGet(cached);
    else if (r === this.mem) fb.globalGet(this.globals.memLim[LOG2[size]]);
    else fb.i64Const(Math.max(0, r.size - size + 1));
  }

  private findFunction(size: number, write: boolean): number {
    const v = LOG2[size] * 2 + (write ? 1 : 0);
    if (this.findIndex[v] < 0) {
      this.findIndex[v] = this.firstFindIndex + this.findOrder.length;
      this.findOrder.push(v);
    }
    return this.findIndex[v];
  }

  /** How many find functions emitFindFunctions adds (the accesses lowered so far need). */
  get findCount(): number {
    return this.findOrder.length;
  }

  /** Adds the search functions used so far, in the order their indices were promised. */
  emitFindFunctions(mb: ModuleBuilder): FunctionBuilder[] {
    const g = this.globals;
    const added: FunctionBuilder[] = [];
    this.memLimLocals = undefined;
    for (const v of this.findOrder) {
      const size = 1 << (v >> 1);
      const write = (v & 1) === 1;
      const fb = mb.addFunction(`find_${size}_${write ? 'w' : 'r'}`, FIND_PARAMS, FIND_RESULTS);
      added.push(fb);
      const A = 0;
      const PC = 1;
      const info = size | (write ? FAULT_WRITE : 0);
      const record = (code: number): void => {
        fb.i32Const(code).globalSet(g.status);
        fb.localGet(PC).globalSet(g.faultPc);
        fb.localGet(A).globalSet(g.faultAddr);
        fb.i32Const(info).globalSet(g.faultSize);
      };
      for (const r of this.searchOrder) {
        fb.localGet(A).i64Const(r.base).i64Sub();
        this.lim(fb, r, size);
        fb.i64LtU().if();
        if (write && !r.writable) {
          record(FAULT_CODES.permission);
          fb.i32Const(0).return();
        } else {
          fb.localGet(A).i32WrapI64().return();
        }
        fb.end();
      }
      record(FAULT_CODES['out-of-bounds']);
      fb.i32Const(0);
    }
    return added;
  }
}
