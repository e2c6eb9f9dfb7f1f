// Memory accesses: address translation from container addresses (what eBPF registers hold, the
// same numbers the interpreter uses) to physical ones, with the inline bounds check for accesses
// the verifier could not prove. Regions sit at fixed container addresses (runtime/layout.ts: only
// the context's end depends on the input), so the inline check compares against compile-time
// bases and the run-time table of counts:
//
//   upper half == 0, (ea - vbase) <u cnt[size]    (cnt = len - size + 1, or 0 when len < size)
//
// Any failure goes to the slow path, which looks the address up in every region (a pointer may
// have left its usual region for another one) and either resumes or reports the fault with the
// address, the size and the eBPF pc. Accesses the verifier proved are translated with the
// region's delta and no check; r10-relative accesses within the current frame need neither.
import type { Inst, IrFunction, Reg } from '../../compiler/ir/ir.js';
import { FRAME_REG as R10 } from '../../compiler/ir/ir.js';
import type { ProgramFacts } from '../../compiler/verify/facts.js';
import type { DataSection } from '../../compiler/program.js';
import { STACK_SIZE } from '../../runtime/layout.js';
import { layoutRegions } from '../../runtime/regions.js';
import { INFO_HAS_ADDR, INFO_WRITE, OFF, REGION, regionField, sizeClass, STATUS } from './abi.js';
import type { Label } from './asm-buffer.js';
import type { SharedLabels } from './calls.js';
import * as E from './encode.js';
import { dpImmOr, ldrState, LR, strState, type Emitter } from './emitter.js';
import { knownHalf, transfer as knownTransfer, type KnownState } from './known.js';
import { successors } from './regalloc.js';

export interface RegionInfo {
  name: string;
  index: number;
  vbase: number;
  /** Length when fixed at compile time (undefined for the context memory). */
  len?: number;
  writable: boolean;
}

/** Where an access's bytes are: [rn, #off] or [rn, rm]. */
export interface Addr {
  rn: number;
  rm?: number;
  off: number;
}

export type MemInst = Extract<Inst, { op: 'load' | 'store' | 'atomic' }>;

/**
 * An unproven access's part in a group of accesses through one unmodified base in a block
 * (lower.ts): the first tests the union of their ranges once, in the region `region`, and
 * branches to `slow` (the whole group's code again with a check per access) when the test fails;
 * after it, every access of the group is translated as a proven one.
 */
export type GroupRole =
  | { kind: 'lead'; region: number; at: number; size: 1 | 2 | 4 | 8; slow: Label; onBranch: (cached: Array<[number, number]>) => void }
  | { kind: 'member'; region: number };

const UNKNOWN = -1;

/** The container's regions as the image sees them: stack, the data sections, the context last. */
export function regionLayout(data: readonly DataSection[]): RegionInfo[] {
  const specs = [
    { name: 'stack', bytes: new Uint8Array(STACK_SIZE), writable: true },
    ...data.map((d) => ({ name: d.name, bytes: d.bytes, writable: d.writable })),
    { name: 'mem', bytes: new Uint8Array(0), writable: true },
  ];
  return layoutRegions(specs).map((r, index) => ({
    name: r.name,
    index,
    vbase: r.base,
    len: index === specs.length - 1 ? undefined : r.bytes.length,
    writable: r.writable,
  }));
}

/**
 * A guess, per register, of the region a pointer points into, for accesses the verifier left
 * unattributed: r1 starts as the context, `addr` names a section, constants fall where they
 * point, pointer arithmetic keeps the region. Only the inline check's choice depends on it: a wrong
 * guess costs the slow path, never correctness.
 */
export class RegionGuess {
  private readonly entry: Int16Array[];

  constructor(fn: IrFunction, isEntry: boolean, private readonly regions: readonly RegionInfo[], nregs: number) {
    const n = fn.blocks.length;
    this.entry = fn.blocks.map(() => new Int16Array(nregs).fill(UNKNOWN));
    const reached = new Uint8Array(n);
    if (n === 0) return;
    if (isEntry) this.entry[0][1] = regions.length - 1;
    reached[0] = 1;
    const work = [0];
    while (work.length > 0) {
      const b = work.pop() as number;
      const state = this.entry[b].slice();
      for (const inst of fn.blocks[b].insts) this.transfer(state, inst);
      for (const s of successors(fn.blocks[b].term)) {
        if (s < 0 || s >= n) continue;
        const into = this.entry[s];
        let changed = false;
        if (!reached[s]) {
          into.set(state);
          reached[s] = 1;
          changed = true;
        } else {
          for (let r = 0; r < nregs; r++) {
            if (into[r] !== UNKNOWN && into[r] !== state[r]) {
              into[r] = UNKNOWN;
              changed = true;
            }
          }
        }
        if (changed) work.push(s);
      }
    }
  }

  /** The guesses at the start of block `b` (a fresh copy to thread through the block). */
  at(b: number): Int16Array {
    return this.entry[b].slice();
  }

  transfer(s: Int16Array, inst: Inst): void {
    switch (inst.op) {
      case 'mov':
        s[inst.dst] = s[inst.src];
        return;
      case 'bin':
        if (inst.bin === 'add' || inst.bin === 'sub') {
          const b = 'reg' in inst.b ? s[inst.b.reg] : UNKNOWN;
          const a = s[inst.a];
          s[inst.dst] = a !== UNKNOWN && b === UNKNOWN ? a : inst.bin === 'add' && a === UNKNOWN ? b : UNKNOWN;
        } else s[inst.dst] = UNKNOWN;
        return;
      case 'addr':
        s[inst.dst] = 1 + inst.section;
        return;
      case 'const':
        s[inst.dst] = inst.hi === 0 ? this.regionAt(inst.lo >>> 0) : UNKNOWN;
        return;
      case 'call':
      case 'callx':
        s[0] = UNKNOWN;
        return;
      case 'calllocal':
        for (let r = 0; r <= 5; r++) s[r] = UNKNOWN;
        return;
      case 'atomic':
        if (inst.aop === 'cmpxchg') s[0] = UNKNOWN;
        else if (inst.fetch) s[inst.src] = UNKNOWN;
        return;
      case 'store':
      case 'budget':
        return;
      default:
        s[inst.dst] = UNKNOWN;
    }
  }

  private regionAt(a: number): number {
    for (const r of this.regions) {
      if (a >= r.vbase && (r.len === undefined || a < r.vbase + r.len)) return r.index;
    }
    return UNKNOWN;
  }
}

/** What decides how an access is checked. */
export type RegionContext = Pick<AccessContext, 'regions' | 'byName' | 'facts'>;

export interface AccessContext {
  regions: readonly RegionInfo[];
  byName: ReadonlyMap<string, number>;
  L: SharedLabels;
  /** The verifier's facts by slot, when the IR came with them (offset ranges the IR does not carry). */
  facts?: ProgramFacts;
}

/**
 * True when the verifier bounded the access's offset inside a region that is not the stack: the
 * pointer is then that region's base plus a small offset on every path, so its upper half is 0
 * and only the (run-time) upper bound needs checking.
 */
function upperHalfZero(ctx: RegionContext, inst: MemInst, region: RegionInfo): boolean {
  const f = ctx.facts?.access.get(inst.pc);
  if (f === undefined || f.offset === undefined || f.region !== region.name || region.name === 'stack') return false;
  return f.offset.min >= 0 && f.offset.max + region.vbase < 0x1_0000_0000;
}

export function regionsByName(regions: readonly RegionInfo[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of regions) if (!m.has(r.name)) m.set(r.name, r.index);
  return m;
}

/** Lookup argument in r10: size class * 4 | write << 4. */
const lookupArg = (size: 1 | 2 | 4 | 8, write: boolean): number => sizeClass(size) * 4 | (write ? 16 : 0);

/** The register holding a half: its home, or `into` loaded from the slot (0 for r10's upper half). */
function raw(e: Emitter, reg: Reg, half: 0 | 1, into: number): number {
  const h = e.kv(reg, half) === undefined ? e.home(reg, half) : undefined;
  if (h !== undefined) return h;
  e.read(reg, half, into);
  return into;
}

/**
 * Puts the 64-bit effective address in r12 (lo) : r11 (hi), the lookup argument in r10, and calls
 * the lookup routine, which returns r11 = host base, r12 = offset in the region (or reports the
 * fault and never returns).
 */
function callLookup(e: Emitter, ctx: AccessContext, inst: MemInst, region: RegionInfo | undefined): void {
  const { base, off, size, pc } = inst;
  const write = inst.op !== 'load';
  // An upper half that is known, or that the verifier proved 0, is never read (liveness.ts relies on it).
  const hiKnown = e.kv(base, 1) ?? (region !== undefined && upperHalfZero(ctx, inst, region) ? 0 : undefined);
  const hi = (): void => {
    if (hiKnown !== undefined) e.emit(E.loadConst(11, hiKnown, { preserveFlags: true }));
    else e.hi(base, 11);
  };
  if (off !== 0) {
    e.emit(E.loadConst(10, off | 0));
    e.lo(base, 12);
    e.emit(E.adds(12, 12, 10));
    hi();
    e.emit(E.adc(11, 11, 10, { type: 'asr', amount: 31 }));
  } else {
    e.lo(base, 12);
    hi();
  }
  e.emit(E.loadConst(10, lookupArg(size, write)));
  e.blSite(ctx.L.lookup, pc);
}

/** Brings an [rn, #off] address into the range of LDR/STR immediates (through r12, taken by the caller). */
function fitOffset(e: Emitter, a: Addr, extra: number): Addr {
  if (a.rm !== undefined) return a;
  if (a.off >= -255 && a.off + extra <= 4095) return a;
  dpImmOr(e, 'add', false, 12, a.rn, a.off);
  return { rn: 12, off: 0 };
}

/**
 * An access whose base the preceding `X = add R, K` (dropped, liveness.ts addressFolds) would
 * have computed: the address is R's low half plus `extra`.
 */
export interface Via {
  reg: Reg;
  extra: number;
}

/**
 * Whether `add` (right before `next`, its only reader) can be folded into the access: `next` is
 * proven in a named region (only the base's low half matters, and no slow path needs the full
 * address) and one operand's low half is known here.
 */
export function foldAddress(e: Emitter, ctx: RegionContext, add: Extract<Inst, { op: 'bin' }>, next: MemInst): Via | undefined {
  const v = next.access;
  if (v.verdict !== 'proven' || v.region === undefined || !ctx.byName.has(v.region) || next.op === 'atomic') return undefined;
  const ka = e.kv(add.a, 0);
  const kb = 'imm' in add.b ? add.b.imm | 0 : e.kv(add.b.reg, 0);
  if (ka === undefined && kb !== undefined) return add.a === R10 ? undefined : { reg: add.a, extra: kb };
  if (kb === undefined && ka !== undefined && 'reg' in add.b && add.b.reg !== R10) return { reg: add.b.reg, extra: ka };
  return undefined;
}

/**
 * One memory access: computes its address, checking it when needed, and calls `perform` with it
 * (the load or store itself, which reads values and writes destinations through homes and
 * scratch). The region's host base (or its delta, or the frame pointer) and its count stay cached
 * in r10/r11, so that the next access to the region (in the block, or around a loop) loads neither. A failed inline
 * check goes to a cold stub that looks the address up (or faults), performs the access there,
 * restores the cached words and resumes after the access: the hot path has no join.
 */
function access(e: Emitter, ctx: AccessContext, inst: MemInst, guess: number, perform: (a: Addr) => void, via?: Via, group?: GroupRole): void {
  const { base, off, access: verdict } = inst;
  const size = inst.size;
  const write = inst.op !== 'load';
  e.scope(() => {
    e.take(12);
    if (group !== undefined) {
      const region = ctx.regions[group.region];
      if (group.kind === 'lead') {
        // (ea + at - vbase) <u cnt[size] covers every access of the group (lower.ts groupAccesses).
        emitSubConst(e, raw(e, base, 0, 12), region.vbase, group.at);
        e.emit(E.cmp(12, e.cacheWord(regionField(region.index, REGION.CNT + 4 * sizeClass(group.size)))));
        const hiKnown = e.kv(base, 1);
        if (hiKnown === undefined && !upperHalfZero(ctx, inst, region)) {
          e.scope(() => {
            const t = e.take(LR);
            e.emit(E.sbcsImm(t, raw(e, base, 1, t), 0));
          });
        }
        e.buf.bcond(hiKnown !== undefined && hiKnown !== 0 ? 'al' : 'hs', group.slow);
        group.onBranch(e.cachedState());
      }
      const delta = e.cacheWord(regionField(region.index, REGION.DELTA));
      const lo = raw(e, base, 0, 12);
      if (off === 0 && size !== 8) {
        perform({ rn: delta, rm: lo, off: 0 });
        return;
      }
      e.emit(E.add(12, delta, lo));
      perform(fitOffset(e, { rn: 12, off }, size));
      return;
    }
    // Within the current frame: r10 - 512 <= ea and ea + size <= r10, whatever the call depth.
    if (base === R10 && ((off >= -512 && off + size <= 0) || (verdict.verdict === 'proven' && verdict.region === 'stack'))) {
      const fp = e.cacheWord(OFF.FP_PHYS);
      perform(fitOffset(e, { rn: fp, off: off + 512 }, size));
      return;
    }
    const named = verdict.region !== undefined ? ctx.byName.get(verdict.region) : undefined;
    if (verdict.verdict === 'proven' && named !== undefined && via !== undefined) {
      // [host + R, #(extra + off - vbase)], or through the delta when that offset is small.
      const r = raw(e, via.reg, 0, 12);
      const fromHost = (via.extra + off - ctx.regions[named].vbase) | 0;
      const fromDelta = (via.extra + off) | 0;
      const fits = (k: number): boolean => k >= -255 && k + (size === 8 ? 4 : 0) <= 4095;
      if (fromHost === 0 && size !== 8) {
        perform({ rn: e.cacheWord(regionField(named, REGION.HOST)), rm: r, off: 0 });
        return;
      }
      const useHost = fits(fromHost) || !fits(fromDelta);
      const word = e.cacheWord(regionField(named, useHost ? REGION.HOST : REGION.DELTA));
      e.emit(E.add(12, word, r));
      perform(fitOffset(e, { rn: 12, off: useHost ? fromHost : fromDelta }, size));
      return;
    }
    if (verdict.verdict === 'proven' && named !== undefined) {
      const delta = e.cacheWord(regionField(named, REGION.DELTA));
      const lo = raw(e, base, 0, 12);
      // [delta, lo] when there is no offset: the addition happens in the access itself.
      if (off === 0 && size !== 8) {
        perform({ rn: delta, rm: lo, off: 0 });
        return;
      }
      e.emit(E.add(12, delta, lo));
      perform(fitOffset(e, { rn: 12, off }, size));
      return;
    }
    const idx = named ?? (guess >= 0 ? guess : undefined);
    const region = idx !== undefined ? ctx.regions[idx] : undefined;
    if (region === undefined || (write && !region.writable)) {
      e.forget();
      for (const r of [10, 11]) e.take(r);
      callLookup(e, ctx, inst, undefined);
      perform({ rn: 11, rm: 12, off: 0 });
      return;
    }
    const slow = e.buf.label(`slow_${inst.pc}`);
    const resume = e.buf.label(`resume_${inst.pc}`);
    const lo = raw(e, base, 0, 12);
    emitSubConst(e, lo, region.vbase, off);
    const cntOff = regionField(region.index, REGION.CNT + 4 * sizeClass(size));
    const hostOff = regionField(region.index, REGION.HOST);
    e.emit(E.cmp(12, e.cacheWord(cntOff)));
    const hiKnown = e.kv(base, 1);
    if (hiKnown === undefined && !upperHalfZero(ctx, inst, region)) {
      // (hi : ea - vbase) - (0 : cnt) borrows exactly when hi == 0 and ea - vbase < cnt.
      e.scope(() => {
        const t = e.take(LR);
        e.emit(E.sbcsImm(t, raw(e, base, 1, t), 0));
      });
    }
    // A known nonzero upper half is never in a region: always the slow path (which faults).
    e.buf.bcond(hiKnown !== undefined && hiKnown !== 0 ? 'al' : 'hs', slow);
    // [delta, ea] is the same byte as [host, ea - vbase]: use whichever word is at hand.
    const deltaOff = regionField(region.index, REGION.DELTA);
    if (off === 0 && lo !== 12 && e.holds(deltaOff) && !e.holds(hostOff)) perform({ rn: e.cacheWord(deltaOff), rm: lo, off: 0 });
    else perform({ rn: e.cacheWord(hostOff), rm: 12, off: 0 });
    e.buf.bind(resume);
    const keep = e.cachedState();
    e.addCold(() => {
      e.buf.bind(slow);
      for (const r of [10, 11, 12]) e.take(r);
      callLookup(e, ctx, inst, region);
      perform({ rn: 11, rm: 12, off: 0 });
      for (const [r, at] of keep) ldrState(e, r, at);
      e.buf.b(resume);
    });
  });
}

/** Accesses of one block checked together (`GroupRole`): instruction indices and the union test. */
export interface AccessGroup {
  first: number;
  last: number;
  region: number;
  /** The union test checks `size` bytes from base + `at`, which hold every access's bytes. */
  at: number;
  size: 1 | 2 | 4 | 8;
}

const UNION_SIZES: ReadonlyArray<1 | 2 | 4 | 8> = [1, 2, 4, 8];

/**
 * Unproven loads and stores of a block through one base that nothing between them modifies, in
 * one region, whose bytes lie within 8 bytes of each other: each group (two accesses or more, by
 * instruction index) is tested once (`GroupRole`). Groups do not overlap, and their spans hold
 * only instructions that keep the cache registers (`usable`) and no other unproven access.
 */
export function groupAccesses(
  ctx: RegionContext, insts: readonly Inst[], guess: Int16Array, known: KnownState, original: readonly Inst[],
  opts: { usable: (inst: Inst) => boolean; transfer: (s: Int16Array, inst: Inst) => void },
): Map<number, AccessGroup> {
  const out = new Map<number, AccessGroup>();
  let open: { base: Reg; region: number; members: number[]; lo: number; hi: number } | undefined;
  const close = (): void => {
    if (open !== undefined && open.members.length > 1) {
      const size = UNION_SIZES.find((z) => z >= (open as { hi: number; lo: number }).hi - (open as { lo: number }).lo) as 1 | 2 | 4 | 8;
      const g: AccessGroup = { first: open.members[0], last: open.members[open.members.length - 1], region: open.region, at: open.hi - size, size };
      for (const i of open.members) out.set(i, g);
    }
    open = undefined;
  };
  insts.forEach((inst, i) => {
    const unproven = (inst.op === 'load' || inst.op === 'store' || inst.op === 'atomic') && inst.access.verdict !== 'proven';
    if (unproven) {
      const mem = inst as MemInst;
      const named = mem.access.region !== undefined ? ctx.byName.get(mem.access.region) : undefined;
      const g = mem.base < guess.length ? guess[mem.base] : -1;
      const idx = named ?? (g >= 0 ? g : undefined);
      const region = idx !== undefined ? ctx.regions[idx] : undefined;
      const hiKnown = knownHalf(known, mem.base, 1);
      const ok = mem.op !== 'atomic' && mem.base !== R10 && opts.usable(inst) && region !== undefined &&
        (mem.op === 'load' || region.writable) && (hiKnown === undefined || hiKnown === 0);
      if (!ok || idx === undefined) close();
      else {
        const lo = Math.min(open?.lo ?? mem.off, mem.off);
        const hi = Math.max(open?.hi ?? mem.off + mem.size, mem.off + mem.size);
        if (open !== undefined && open.base === mem.base && open.region === idx && hi - lo <= 8) {
          open.members.push(i);
          open.lo = lo;
          open.hi = hi;
        } else {
          close();
          open = { base: mem.base, region: idx, members: [i], lo: mem.off, hi: mem.off + mem.size };
        }
        // A load into its own base ends the group with it.
        if (mem.op === 'load' && mem.dst === mem.base) close();
      }
    } else if (!opts.usable(inst) || ('dst' in inst && open !== undefined && inst.dst === open.base)) close();
    opts.transfer(guess, inst);
    knownTransfer(known, original[i] ?? inst);
  });
  close();
  return out;
}

/**
 * Whether the code of a memory access reads its base register's upper half (in line or in its slow
 * path): only checks do, and not when the half is known or the verifier proved it 0. Mirrors
 * `access`; liveness.ts drops writes of upper halves nothing reads.
 */
export function readsBaseHi(ctx: RegionContext, inst: MemInst, known: KnownState, guess: number): boolean {
  const { base, access: verdict } = inst;
  if (base === R10) return false;
  if (knownHalf(known, base, 1) !== undefined) return false;
  const named = verdict.region !== undefined ? ctx.byName.get(verdict.region) : undefined;
  if (verdict.verdict === 'proven' && named !== undefined) return false;
  const idx = named ?? (guess >= 0 ? guess : undefined);
  const region = idx !== undefined ? ctx.regions[idx] : undefined;
  return region === undefined || !upperHalfZero(ctx, inst, region);
}

/** An encoding, or undefined when the operands do not encode. */
function tryEncode(f: () => E.Halfwords): E.Halfwords | undefined {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    return undefined;
  }
}

/** r12 = lo - (vbase - off): one instruction when the constant encodes, two when its parts do. */
function emitSubConst(e: Emitter, lo: number, vbase: number, off: number): void {
  if (lo === 12 && vbase === off) return;
  const k = (vbase - off) | 0;
  const one = tryEncode(() => E.subImm(12, lo, k));
  if (one !== undefined) {
    e.emit(one);
    return;
  }
  const first = tryEncode(() => E.addImm(12, lo, off));
  const second = tryEncode(() => E.subImm(12, 12, vbase));
  if (first !== undefined && second !== undefined) {
    e.emit(first);
    e.emit(second);
    return;
  }
  e.scope(() => {
    const t = e.tmp();
    e.emit(E.loadConst(t, k));
    e.emit(E.sub(12, lo, t));
  });
}

const LOAD_OP: Record<string, E.MemOp> = { u1: 'ldrb', u2: 'ldrh', u4: 'ldr', s1: 'ldrsb', s2: 'ldrsh', s4: 'ldr', u8: 'ldr', s8: 'ldr' };
const STORE_OP: Record<number, E.MemOp> = { 1: 'strb', 2: 'strh', 4: 'str', 8: 'str' };

function memOp(e: Emitter, op: E.MemOp, rt: number, a: Addr, extra = 0): void {
  if (a.rm !== undefined) e.emit(E.loadStoreReg(op, rt, a.rn, a.rm));
  else e.emit(E.loadStore(op, rt, a.rn, a.off + extra));
}

/** A single base register for two-word accesses: [rn, rm] becomes [r12, #0]. */
function single(e: Emitter, a: Addr): Addr {
  if (a.rm === undefined) return a;
  e.emit(E.add(12, a.rn, a.rm));
  return { rn: 12, off: 0 };
}

export function lowerLoad(e: Emitter, ctx: AccessContext, inst: Extract<Inst, { op: 'load' }>, guess: number, via?: Via, group?: GroupRole): void {
  const { dst, size } = inst;
  const op = LOAD_OP[`${inst.signed ? 's' : 'u'}${size}`];
  const halves: Array<0 | 1> = size === 8 && !inst.hiDead && e.live(dst, 1) ? [0, 1] : [0];
  const d = e.home(dst, 0) ?? LR;
  // A half without a home goes through lr to its slot inside the access, on both of its paths.
  access(e, ctx, inst, guess, (a0) => {
    const a = size === 8 ? single(e, a0) : a0;
    for (const half of halves) {
      e.scope(() => {
        const h = e.home(dst, half);
        const t = h ?? e.take(LR);
        memOp(e, half === 0 ? op : 'ldr', t, a, half * 4);
        if (h === undefined) e.commit(dst, half, t);
      });
    }
  }, via, group);
  if (size === 8 || inst.hiDead) return;
  e.scope(() => {
    if (d === LR) e.take(LR);
    if (!inst.signed) e.setConst(dst, 1, 0);
    else if (e.live(dst, 1)) {
      const hr = e.dest(dst, 1);
      e.emit(E.asrsImm(hr, d, 31));
      e.commit(dst, 1, hr);
    }
  });
}

export function lowerStore(e: Emitter, ctx: AccessContext, inst: Extract<Inst, { op: 'store' }>, guess: number, via?: Via, group?: GroupRole): void {
  const v = inst.value;
  access(e, ctx, inst, guess, (a0) => {
    const a = inst.size === 8 ? single(e, a0) : a0;
    // A constant whose halves are equal (0, -1) is materialised once for both.
    const same = 'imm' in v && inst.size === 8 && (v.imm | 0) === (v.imm | 0) >> 31;
    e.scope(() => {
      const shared = same ? e.constReg(v.imm | 0, true) : undefined;
      for (const half of inst.size === 8 ? ([0, 1] as const) : ([0] as const)) {
        e.scope(() => {
          const r = shared ?? ('imm' in v ? e.constReg(half === 0 ? v.imm | 0 : (v.imm | 0) >> 31, true) : e.read(v.reg, half));
          memOp(e, STORE_OP[inst.size], r, a, half * 4);
        });
      }
    });
  }, via, group);
}

type AtomicInst = Extract<Inst, { op: 'atomic' }>;

const ATOMIC_DP: Record<string, E.DpOp> = { add: 'add', or: 'orr', and: 'and', xor: 'eor' };

/**
 * Atomics. The physical address ends up in r12. Aligned 32-bit operations use an LDREX/STREX
 * loop; 64-bit ones (and unaligned 32-bit ones, which LDREX cannot do) run with interrupts masked
 * (PRIMASK saved and restored, so a caller that had them masked keeps them masked). Masking needs
 * privileged execution, which the runtime documents.
 */
export function lowerAtomic(e: Emitter, ctx: AccessContext, inst: AtomicInst, guess: number): void {
  e.forget();
  access(e, ctx, inst, guess, (a) => {
    if (a.rm !== undefined) e.emit(E.add(12, a.rn, a.rm));
    else dpImmOr(e, 'add', false, 12, a.rn, a.off);
  });
  e.forget();
  e.scope(() => {
    for (const r of [10, 11, 12, LR]) e.take(r);
    if (inst.size === 8) {
      masked(e, inst);
      return;
    }
    const done = e.buf.label(`atomic_done_${inst.pc}`);
    const unaligned = e.buf.label(`atomic_unaligned_${inst.pc}`);
    e.emit(E.tstImm(12, 3));
    e.buf.bcond('ne', unaligned);
    exclusive32(e, inst);
    e.buf.bind(done);
    e.addCold(() => {
      e.buf.bind(unaligned);
      for (const r of [10, 11, 12, LR]) e.take(r);
      masked(e, inst);
      e.buf.b(done);
    });
  });
  results(e, inst);
}

/** Old value in r11 (lo) and, for 64-bit, lr (hi); written to src or r0 afterwards. */
function results(e: Emitter, inst: AtomicInst): void {
  const target = inst.aop === 'cmpxchg' ? 0 : inst.fetch || inst.aop === 'xchg' ? inst.src : undefined;
  if (target === undefined) return;
  e.scope(() => {
    e.take(11);
    e.take(LR);
    e.commit(target, 0, 11);
    if (inst.size === 8) e.commit(target, 1, LR);
    else e.setConst(target, 1, 0);
  });
}

function exclusive32(e: Emitter, inst: AtomicInst): void {
  const loop = e.buf.here(`atomic_${inst.pc}`);
  const fail = e.buf.label(`cmpxchg_fail_${inst.pc}`);
  const after = e.buf.label(`atomic_after_${inst.pc}`);
  e.emit(E.ldrex(11, 12));
  let value: number;
  if (inst.aop === 'cmpxchg') {
    e.emit(E.cmp(11, raw(e, 0, 0, LR)));
    e.buf.bcond('ne', fail);
    value = raw(e, inst.src, 0, 10);
  } else if (inst.aop === 'xchg') {
    value = raw(e, inst.src, 0, 10);
  } else {
    const src = raw(e, inst.src, 0, 10);
    e.emit(E.dpReg(ATOMIC_DP[inst.aop], false, 10, 11, src));
    value = 10;
  }
  e.emit(E.strex(LR, value, 12));
  e.emit(E.cmpImm(LR, 0));
  e.buf.bcond('ne', loop);
  if (inst.aop === 'cmpxchg') {
    e.buf.b(after);
    e.buf.bind(fail);
    e.emit(E.clrex());
    e.buf.bind(after);
  }
}

function masked(e: Emitter, inst: AtomicInst): void {
  const wide = inst.size === 8;
  e.emit(E.mrs(10, 'primask'));
  strState(e, 10, OFF.PRIMASK);
  e.emit(E.cpsid('i'));
  e.emit(E.loadStore('ldr', 11, 12, 0));
  if (wide) e.emit(E.loadStore('ldr', LR, 12, 4));
  if (inst.aop === 'cmpxchg') {
    const skip = e.buf.label(`cmpxchg_skip_${inst.pc}`);
    e.emit(E.cmp(11, raw(e, 0, 0, 10)));
    e.buf.bcond('ne', skip);
    if (wide) {
      e.emit(E.cmp(LR, raw(e, 0, 1, 10)));
      e.buf.bcond('ne', skip);
    }
    e.emit(E.loadStore('str', raw(e, inst.src, 0, 10), 12, 0));
    if (wide) e.emit(E.loadStore('str', raw(e, inst.src, 1, 10), 12, 4));
    e.buf.bind(skip);
  } else if (inst.aop === 'xchg') {
    e.emit(E.loadStore('str', raw(e, inst.src, 0, 10), 12, 0));
    if (wide) e.emit(E.loadStore('str', raw(e, inst.src, 1, 10), 12, 4));
  } else {
    const op = ATOMIC_DP[inst.aop];
    // add carries from the low word into the high one; ldr/str leave the flags alone.
    e.emit(E.dpReg(op, true, 10, 11, raw(e, inst.src, 0, 10)));
    e.emit(E.loadStore('str', 10, 12, 0));
    if (wide) {
      const hiOp: E.DpOp = op === 'add' ? 'adc' : op;
      e.emit(E.dpReg(hiOp, false, 10, LR, raw(e, inst.src, 1, 10)));
      e.emit(E.loadStore('str', 10, 12, 4));
    }
  }
  ldrState(e, 10, OFF.PRIMASK);
  e.emit(E.msr('primask', 10));
}

/**
 * The lookup routine (shared): r12 = ea lo, r11 = ea hi, r10 = size class * 4 | write << 4,
 * lr = return. Returns r11 = host base of the region, r12 = ea - vbase; preserves r0-r9. On a
 * miss it reports out-of-bounds or permission through mem_fault with the address and size.
 */
export function emitLookup(e: Emitter, L: SharedLabels): void {
  const loop = e.buf.label('lookup_loop');
  const found = e.buf.label('lookup_found');
  const ok = e.buf.label('lookup_ok');
  const oobPop = e.buf.label('lookup_oob_pop');
  const permPop = e.buf.label('lookup_perm_pop');
  const oob = e.buf.label('lookup_oob');
  const saved = [0, 1, 2, 3, 4, LR];
  const pushed = saved.length * 4;
  e.buf.bind(L.lookup);
  e.emit(E.cmpImm(11, 0));
  e.buf.bcond('ne', oob);
  e.emit(E.push(saved));
  e.emit(E.loadStore('ldr', 0, E.SP, pushed + OFF.NREGIONS));
  e.emit(E.addImm(1, E.SP, pushed + OFF.REGIONS + REGION.CNT));
  e.emit(E.andImm(2, 10, 12));
  e.buf.bind(loop);
  e.buf.cbz(0, oobPop);
  e.emit(E.loadStore('ldr', 3, 1, REGION.VBASE - REGION.CNT));
  e.emit(E.sub(3, 12, 3));
  e.emit(E.loadStoreReg('ldr', 4, 1, 2));
  e.emit(E.cmp(3, 4));
  e.buf.bcond('lo', found);
  e.emit(E.addsImm(1, 1, 32));
  e.emit(E.subsImm(0, 0, 1));
  e.buf.b(loop);
  e.buf.bind(found);
  e.emit(E.tstImm(10, 16));
  e.buf.bcond('eq', ok);
  e.emit(E.loadStore('ldr', 4, 1, REGION.FLAGS - REGION.CNT));
  e.emit(E.tstImm(4, 1));
  e.buf.bcond('eq', permPop);
  e.buf.bind(ok);
  e.emit(E.loadStore('ldr', 11, 1, REGION.HOST - REGION.CNT));
  e.emit(E.mov(12, 3));
  e.emit(E.pop(saved));
  e.emit(E.bx(LR));
  e.buf.bind(permPop);
  e.emit(E.pop(saved));
  e.emit(E.movsImm(0, STATUS.permission));
  e.buf.b(L.memFault);
  e.buf.bind(oobPop);
  e.emit(E.pop(saved));
  e.buf.bind(oob);
  e.emit(E.movsImm(0, STATUS['out-of-bounds']));

  // mem_fault: r0 = status, lr = site, r12:r11 = address, r10 = lookup argument.
  e.buf.bind(L.memFault);
  strState(e, 12, OFF.FAULT_ADDR_LO);
  strState(e, 11, OFF.FAULT_ADDR_HI);
  e.emit(E.andImm(1, 10, 12));
  e.emit(E.lsrsImm(1, 1, 2));
  e.emit(E.movsImm(2, 1));
  e.emit(E.lsls(2, 2, 1));
  e.emit(E.tstImm(10, 16));
  e.emit(E.it('ne'));
  e.emit(E.orrImm(2, 2, INFO_WRITE, { inIT: true }));
  e.emit(E.orrImm(2, 2, INFO_HAS_ADDR));
  strState(e, 2, OFF.FAULT_INFO);
  e.buf.b(L.faultCommon);
}
