// The state a lowering pass threads through every IR instruction: the code buffer, where each
// eBPF register half lives (regalloc.ts), the scratch registers free inside the current
// instruction, the cold stubs that go after the function, and the fault sites (the return address
// of every `bl` into a fault or lookup routine, mapped to the eBPF pc the runtime reports).
//
// ARM registers: r0-r9 are homes of register halves, r10-r12 and lr are scratch within one IR
// instruction (nothing lives in them across instructions), sp points at the run state.
import { FRAME_REG as R10 } from '../../compiler/ir/ir.js';
import { AsmBuffer, type Label } from './asm-buffer.js';
import * as E from './encode.js';
import { OFF, slotOf } from './abi.js';
import { knownHalf, knownRange, type KnownState } from './known.js';
import { halfKey, type Allocation } from './regalloc.js';

export interface Site {
  /** Bound right after the `bl`: its offset is the return address the runtime sees. */
  label: Label;
  pc: number;
}

/**
 * How one block used the cache registers, recorded by the first of lowerModule's two passes
 * (cache-flow.ts turns it into the words each block may assume on entry).
 */
export interface CacheUse {
  /** Words the block loaded into a register before anything else overwrote that register. */
  wanted: Map<number, number>;
  /** Cache registers the block overwrites (as scratch, or by forgetting). */
  clobbered: Set<number>;
  /** What the cache registers held at the end of the block, after its terminator. */
  exit: Map<number, number>;
}

export interface Mark {
  label: Label;
  pc: number;
  /** Index of the IR instruction in its block (-1 for the terminator), for listings. */
  what: string;
}

/** r12, lr, r11, r10: the order instructions take scratch registers in. */
export const SCRATCH: readonly number[] = [12, 14, 11, 10];
export const IP = 12;
export const LR = 14;
/** Scratch registers that may keep run-state words from one access to the next, in order of preference. */
export const CACHE_REGS: readonly number[] = [11, 10];


export class LoweringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoweringError';
  }
}

export class Emitter {
  readonly buf = new AsmBuffer();
  readonly sites: Site[] = [];
  readonly marks: Mark[] = [];
  private cold: Array<() => void> = [];
  private free: number[] = [...SCRATCH];
  /**
   * Run-state words that scratch registers still hold (r10/r11 only: region counts, hosts,
   * deltas, the frame pointer), so that consecutive accesses load them once. Any hand-out of the
   * register as scratch forgets it; so do block labels, calls and anything that binds a label.
   */
  private cached = new Map<number, number>();
  /** When each cache register's word was last used, to pick the one to replace. */
  private used = new Map<number, number>();
  private clock = 0;
  /** The current block's record (first pass only). */
  recording?: CacheUse;
  /** What is known about the register halves before the instruction being lowered (known.ts). */
  known: KnownState = new Float64Array(0);

  /**
   * Upper bounds of low halves defined earlier in the block (known.ts lowHalfRange), also of
   * halves whose register has no range because its upper half was left unwritten (hiDead).
   */
  loMax = new Map<number, number>();

  /** The homes of the block being lowered (its region's, regalloc.ts RegionHomes). */
  homes: ReadonlyMap<number, number>;

  constructor(readonly alloc: Allocation) {
    this.homes = alloc.homes;
  }

  /**
   * The register whose value the Z flag describes (set by the flag-setting instruction that
   * computed it), while only plain moves into other registers have been emitted since: a compare of
   * it with 0 for (in)equality can use the flags as they are.
   */
  private zero: number | undefined;

  emit(hws: E.Halfwords): void {
    if (this.zero !== undefined) {
      // MOV Rd, Rm (T1, 0x46xx) leaves the flags alone.
      const hw = hws.length === 1 ? hws[0] : -1;
      const rd = ((hw >> 4) & 8) | (hw & 7);
      if ((hw & 0xff00) !== 0x4600 || rd === this.zero) this.zero = undefined;
    }
    this.buf.emit(hws);
  }

  /** Notes that the instruction just emitted set Z from the value it wrote to `r`. */
  setsZero(r: number): void {
    this.zero = r;
  }

  /** True when Z describes `r`'s current value (see `setsZero`). */
  zeroOf(r: number): boolean {
    return this.zero === r;
  }

  /** Forgets what the flags describe (labels other code branches to). */
  flagsUnknown(): void {
    this.zero = undefined;
  }

  /** Home register of a half, if it has one. */
  home(reg: number, half: 0 | 1): number | undefined {
    return reg === R10 ? undefined : this.homes.get(halfKey(reg, half));
  }

  /** An upper bound of the low half's unsigned value here (Infinity when none is known). */
  loBound(reg: number): number {
    const k = this.kv(reg, 0);
    if (k !== undefined) return k >>> 0;
    const [, max] = knownRange(this.known, reg);
    return Math.min(max, this.loMax.get(reg) ?? Number.POSITIVE_INFINITY);
  }

  /** The half's value when known at compile time here. */
  kv(reg: number, half: 0 | 1): number | undefined {
    return knownHalf(this.known, reg, half);
  }

  /** False for a half nothing reads without knowing its value: writing it is wasted work. */
  live(reg: number, half: 0 | 1): boolean {
    return reg === R10 || !this.alloc.eliminated.has(halfKey(reg, half));
  }

  // ---- scratch ----

  /** A scratch register free until `release()` (the end of the IR instruction). */
  tmp(): number {
    const r = this.free.shift();
    if (r === undefined) throw new LoweringError('internal: out of scratch registers');
    this.clobber(r);
    return r;
  }

  /** Takes a specific scratch register (fails when another part of the sequence holds it). */
  take(r: number): number {
    this.claim(r);
    this.clobber(r);
    return r;
  }

  private clobber(r: number): void {
    this.cached.delete(r);
    if (CACHE_REGS.includes(r)) this.recording?.clobbered.add(r);
  }

  /** Takes a scratch register keeping what it caches (the caller reads it, or reloads it). */
  private claim(r: number): void {
    const i = this.free.indexOf(r);
    if (i < 0) throw new LoweringError(`internal: scratch register r${r} is already in use`);
    this.free.splice(i, 1);
  }

  /** Takes scratch `r` holding the run-state word at `off`: loaded unless it already holds it. */
  stateIn(r: number, off: number): number {
    const hit = this.cached.get(r) === off;
    this.claim(r);
    if (!hit) {
      this.emit(E.loadStore('ldr', r, E.SP, off));
      this.cached.set(r, off);
      const rec = this.recording;
      if (rec !== undefined && !rec.clobbered.has(r) && !rec.wanted.has(r)) rec.wanted.set(r, off);
    }
    this.used.set(r, ++this.clock);
    return r;
  }

  /**
   * A free cache register holding the run-state word at `off`: the one that already holds it, else
   * an empty one, else the one whose word was used least recently (loaded then).
   */
  cacheWord(off: number): number {
    const free = CACHE_REGS.filter((r) => this.free.includes(r));
    const pick = free.find((r) => this.cached.get(r) === off) ?? free.find((r) => !this.cached.has(r)) ??
      [...free].sort((a, b) => (this.used.get(a) ?? 0) - (this.used.get(b) ?? 0))[0];
    if (pick === undefined) throw new LoweringError('internal: no free cache register');
    return this.stateIn(pick, off);
  }

  /** True when a cache register holds the run-state word at `off`. */
  holds(off: number): boolean {
    return [...this.cached.values()].includes(off);
  }

  /** Makes the cache registers hold `words` (loading what they lack), e.g. on the way into a loop. */
  provide(words: ReadonlyMap<number, number>): void {
    for (const [r, off] of words) {
      if (this.cached.get(r) === off) continue;
      this.emit(E.loadStore('ldr', r, E.SP, off));
      this.cached.set(r, off);
    }
  }

  /** Takes the cache registers to hold `words` without loading them (code jumped to from where they did). */
  assume(words: ReadonlyArray<readonly [number, number]>): void {
    this.cached.clear();
    for (const [r, off] of words) this.cached.set(r, off);
  }

  /** The part of `words` the cache registers do not hold now. */
  lacking(words: ReadonlyMap<number, number>): Map<number, number> {
    return new Map([...words].filter(([r, off]) => this.cached.get(r) !== off));
  }

  /** Starts a block whose cache registers hold `words` on every way in. */
  enterBlock(words: ReadonlyMap<number, number>, record?: CacheUse): void {
    this.zero = undefined;
    this.cached.clear();
    this.recording = record;
    for (const [r, off] of words) this.cached.set(r, off);
  }

  /** The cache registers' words now. */
  cacheNow(): Map<number, number> {
    return new Map(this.cached);
  }

  /** The state words the scratch registers hold now. */
  cachedState(): Array<[number, number]> {
    return [...this.cached.entries()];
  }

  /** Forgets every cached state word (at labels, calls, and around sequences that bind labels). */
  forget(): void {
    this.cached.clear();
    for (const r of CACHE_REGS) this.recording?.clobbered.add(r);
  }

  release(): void {
    this.free = [...SCRATCH];
  }

  /** Runs `fn`; scratch registers it takes are free again afterwards. */
  scope<T>(fn: () => T): T {
    const saved = [...this.free];
    try {
      return fn();
    } finally {
      this.free = saved;
    }
  }

  /** True when `r` is a scratch register (not a home): such a value may be overwritten in place. */
  isScratch(r: number): boolean {
    return SCRATCH.includes(r);
  }

  // ---- operands ----

  /** A register holding the half's current value: its home, or a scratch loaded from its slot. */
  read(reg: number, half: 0 | 1, into?: number): number {
    if (reg === R10) {
      const t = into ?? this.tmp();
      const v = this.kv(reg, half);
      if (v !== undefined) this.emit(E.loadConst(t, v, { preserveFlags: true }));
      else this.emit(E.loadStore('ldr', t, E.SP, OFF.R10));
      return t;
    }
    // A known half is read as its value, never from its home or slot: the code that would have
    // written it there may have been dropped (liveness.ts, known.ts `eliminable`).
    const k = this.kv(reg, half);
    if (k !== undefined || !this.live(reg, half)) {
      const t = into ?? this.tmp();
      // (0 in code no path reaches, where nothing is known)
      this.emit(E.loadConst(t, k ?? 0, { preserveFlags: true }));
      return t;
    }
    const h = this.home(reg, half);
    if (h !== undefined) {
      if (into !== undefined && into !== h) this.emit(E.mov(into, h));
      return into ?? h;
    }
    const t = into ?? this.tmp();
    this.emit(E.loadStore('ldr', t, E.SP, slotOf(reg, half)));
    return t;
  }

  lo(reg: number, into?: number): number {
    return this.read(reg, 0, into);
  }

  hi(reg: number, into?: number): number {
    return this.read(reg, 1, into);
  }

  /** Where to compute a half's new value: its home, or a scratch to `commit` afterwards. */
  dest(reg: number, half: 0 | 1): number {
    this.checkWritable(reg);
    return this.home(reg, half) ?? this.tmp();
  }

  /** Stores a computed half (from `r`) to its home or slot. */
  commit(reg: number, half: 0 | 1, r: number): void {
    this.checkWritable(reg);
    if (!this.live(reg, half)) return;
    const h = this.home(reg, half);
    if (h !== undefined) {
      if (h !== r) this.emit(E.mov(h, r));
    } else {
      this.emit(E.loadStore('str', r, E.SP, slotOf(reg, half)));
    }
  }

  /** Sets a half to a constant without touching flags unless `flagsFree`. */
  setConst(reg: number, half: 0 | 1, value: number, flagsFree = true): void {
    if (!this.live(reg, half)) return;
    const d = this.dest(reg, half);
    this.emit(E.loadConst(d, value | 0, { preserveFlags: !flagsFree }));
    this.commit(reg, half, d);
  }

  /** A register holding `value`: a new scratch. */
  constReg(value: number, flagsFree = false): number {
    const t = this.tmp();
    this.emit(E.loadConst(t, value | 0, { preserveFlags: !flagsFree }));
    return t;
  }

  private checkWritable(reg: number): void {
    if (reg === R10) throw new LoweringError('r10 is read-only: the IR writes it');
  }

  // ---- control flow and sites ----

  /** `bl target` whose return address identifies eBPF instruction `pc` to the runtime. */
  blSite(target: Label, pc: number): void {
    this.buf.bl(target);
    const label = this.buf.here();
    this.sites.push({ label, pc });
  }

  /**
   * Queues code to place after the current function (slow paths, fault calls). It is lowered
   * later, with what was known at this point.
   */
  addCold(fn: () => void): void {
    const known = this.known.slice();
    const homes = this.homes;
    const loMax = new Map(this.loMax);
    this.cold.push(() => {
      this.known = known;
      this.homes = homes;
      this.loMax = loMax;
      fn();
    });
  }

  /** Emits the queued cold code; scratch state is independent for each stub. */
  flushCold(): void {
    const known = this.known;
    while (this.cold.length > 0) {
      const pending = this.cold;
      this.cold = [];
      for (const fn of pending) {
        this.zero = undefined;
        this.release();
        this.forget();
        fn();
      }
    }
    this.release();
    this.forget();
    this.known = known;
    this.homes = this.alloc.homes;
    this.loMax = new Map();
  }

  mark(pc: number, what: string): void {
    this.marks.push({ label: this.buf.here(), pc, what });
  }
}

/** Data-processing with an immediate, falling back to a scratch register when it does not encode. */
export function dpImmOr(e: Emitter, op: E.DpOp, setFlags: boolean, rd: number, rn: number, imm: number, opts?: E.EncodeOptions): void {
  try {
    e.emit(E.dpImm(op, setFlags, rd, rn, imm | 0, opts));
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    const t = e.constReg(imm, false);
    e.emit(E.dpReg(op, setFlags, rd, rn, t, undefined, opts));
  }
}

/**
 * Data-processing with an immediate whose flags nobody reads, in the fewest instructions found:
 * true when the last one set N and Z from the result.
 */
export function dpImmLoose(e: Emitter, op: E.DpOp, rd: number, rn: number, imm: number): boolean {
  const k = imm | 0;
  for (const setFlags of [true, false]) {
    const one = tryEncode(() => E.dpImm(op, setFlags, rd, rn, k));
    if (one !== undefined) {
      e.emit(one);
      return setFlags;
    }
  }
  if (op === 'and' && (k === 0xffff || k === 0xff)) {
    e.emit(E.extend(k === 0xff ? 'uxtb' : 'uxth', rd, rn));
    return false;
  }
  if ((op === 'add' || op === 'sub') && rd !== 13) {
    // Two modified immediates (or an ADDW/SUBW and one) when the constant splits into them.
    const u = k >>> 0;
    const parts = [u & 0xfff, u - (u & 0xfff)].map((x) => x >>> 0);
    const first = tryEncode(() => E.dpImm(op, false, rd, rn, parts[1] | 0));
    const second = tryEncode(() => E.dpImm(op, false, rd, rd, parts[0]));
    if (first !== undefined && second !== undefined && parts[0] !== 0) {
      e.emit(first);
      e.emit(second);
      return false;
    }
  }
  const t = e.constReg(k, true);
  e.emit(E.dpReg(op, false, rd, rn, t));
  return false;
}

function tryEncode(f: () => E.Halfwords): E.Halfwords | undefined {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    return undefined;
  }
}

/** CMP/TST with an immediate, through a scratch register when it does not encode. */
export function cmpImmOr(e: Emitter, op: E.CompareOp, rn: number, imm: number): void {
  try {
    e.emit(E.compareImm(op, rn, imm | 0));
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    const t = e.constReg(imm, false);
    e.emit(E.compare(op, rn, t));
  }
}

/** LDR/STR [sp, #off] shorthand for run-state fields. */
export function ldrState(e: Emitter, rt: number, off: number): void {
  e.emit(E.loadStore('ldr', rt, E.SP, off));
}

export function strState(e: Emitter, rt: number, off: number): void {
  e.emit(E.loadStore('str', rt, E.SP, off));
}
