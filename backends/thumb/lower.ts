// IR -> ARMv7-M Thumb-2, over each function's blocks in order (Liftoff-style): every IR
// instruction becomes a short fixed sequence over the register halves' homes (regalloc.ts), with
// slow paths and fault calls moved after the function. The module is lowered twice: the first pass
// only records how blocks use the cache registers (cache-flow.ts), so that the second can keep
// region words in them around loops; edges between blocks carry what the target needs (cache
// words, halves moving between the homes of different loops). Before any of that, innermost loops
// that walk memory get an unchecked copy behind an entry range test (version.ts). The code is
// position independent: data addresses come from the run state's region table, runtime routines
// from its function pointers.
// The image entry is at offset 0; abi.ts and IMAGE.md give the contract with the device runtime.
import type { Block, Inst, IrFunction, IrModule, Terminator } from '../../compiler/ir/ir.js';
import type { ProgramFacts } from '../../compiler/verify/facts.js';
import { MAX_REGIONS, OFF, slotOf } from './abi.js';
import type { Label } from './asm-buffer.js';
import type { DataRange } from './disasm.js';
import { lowerBin, lowerBswap, lowerCompare, lowerConst, lowerExt, lowerMov, lowerNeg } from './alu64.js';
import { emitCalleeEntry, emitShared, lowerHelperCall, lowerLocalCall, sharedLabels, type SharedLabels } from './calls.js';
import {
  emitLookup, foldAddress, lowerAtomic, lowerLoad, lowerStore, readsBaseHi, regionLayout, RegionGuess, regionsByName,
  groupAccesses, type AccessContext, type AccessGroup, type GroupRole, type MemInst, type RegionInfo, type Via,
} from './checks.js';
import * as E from './encode.js';
import { dpImmOr, ldrState, strState, Emitter, LoweringError, type CacheUse } from './emitter.js';
import { entryWords, type CacheWords } from './cache-flow.js';
import { eliminable, knownHalf, KnownHalves, lowHalfRange, transfer as knownTransfer, type KnownState } from './known.js';
import { addressFolds, deadDefinitions, deadUpperHalves, liveInHalves, loweredMentions, sinkCopies } from './liveness.js';
import { STACK_SIZE } from '../../runtime/layout.js';
import { allocate, naturalLoops, type Allocation } from './regalloc.js';
import { emitVersionTest, testReads, versionLoops, type VersionedLoop, type VersionedModule } from './version.js';

export interface CodeMark {
  offset: number;
  pc: number;
  /** Function index, block id and instruction index ('t' = terminator) of the IR it came from. */
  where: string;
}

export interface LoweredModule {
  code: Uint8Array;
  /** Byte ranges of code holding data (none today; kept for listings). */
  data: DataRange[];
  /** Offset of the image entry (always 0). */
  entry: number;
  /** Return addresses of fault-reporting calls (offset of the instruction after the `bl`) -> eBPF pc, sorted. */
  sites: Array<{ offset: number; pc: number }>;
  /** Where each IR instruction's code starts, in code order. */
  marks: CodeMark[];
  /** Offset of each function's body. */
  functions: number[];
  regions: RegionInfo[];
  alloc: Allocation;
  /** Loops versioned for memory (version.ts): function, header in the IR given, pcs of the accesses the copy runs unchecked. */
  versions: Array<{ fn: number; header: number; pcs: number[] }>;
  /** Loops whose copy charges budget without tests (version.ts): function, header in the IR given, the charges' sum the entry test covers per iteration. */
  budgetGuards: Array<{ fn: number; header: number; charge: number }>;
}

export { LoweringError } from './emitter.js';

interface FunctionLabels {
  callEntry: Label;
  body: Label;
}

/**
 * `addr` as the constant it is here (section addresses are fixed at compile time), so that
 * known.ts folds arithmetic on it like any other constant.
 */
function withAddresses(m: IrModule): IrModule {
  const regions = regionLayout(m.data);
  return {
    ...m,
    functions: m.functions.map((f) => ({
      ...f,
      blocks: f.blocks.map((b) => ({
        ...b,
        insts: b.insts.map((i): Inst => {
          if (i.op !== 'addr') return i;
          const r = regions[1 + i.section];
          if (i.section < 0 || i.section >= m.data.length || r === undefined) {
            throw new LoweringError(`instruction ${i.pc}: data section ${i.section} does not exist`);
          }
          const v = r.vbase + i.offset;
          return { op: 'const', pc: i.pc, dst: i.dst, lo: v | 0, hi: Math.floor(v / 0x1_0000_0000) | 0, ...(i.hiDead ? { hiDead: true } : {}) };
        }),
      })),
    })),
  };
}

export interface LowerOptions {
  /** Give innermost loops that walk memory a copy without checks behind an entry test (version.ts); default true. */
  version?: boolean;
}

/** `facts`: the verifier's facts the IR was built with, for offset ranges the IR does not carry. */
export function lowerModule(source: IrModule, facts?: ProgramFacts, opts: LowerOptions = {}): LoweredModule {
  // Copies at the ends of loop bodies move to the loops' exits (liveness.ts sinkCopies).
  const sunk = sinkCopies(withAddresses(source));
  const m0 = sunk.module;
  if (m0.functions.length === 0) throw new LoweringError(`${m0.origin}: the module has no functions`);
  if (m0.data.length > MAX_REGIONS - 2) {
    throw new LoweringError(`${m0.origin}: ${m0.data.length} data sections; the device runtime holds at most ${MAX_REGIONS - 2}`);
  }
  // Temporaries live per activation in the IR's semantics, but in one register file here: refuse
  // the combination rather than let a callee clobber a caller's temporary.
  const temps = m0.functions.some((f) => f.maxReg > 10);
  const calls = m0.functions.some((f) => f.blocks.some((b) => b.insts.some((i) => i.op === 'calllocal')));
  if (temps && calls) throw new LoweringError(`${m0.origin}: IR temporaries (registers above r10) together with local calls are not supported`);
  let nregs = 11;
  for (const f of m0.functions) nregs = Math.max(nregs, f.maxReg + 1);
  const regions = regionLayout(m0.data);
  const byName = regionsByName(regions);
  const regionOf = checkedRegions(m0, regions, byName, nregs);
  // Innermost loops walking memory get a checked and an unchecked copy (version.ts). A loop whose
  // entry test would read a half that is not where it lives there is not versioned.
  const dropped = new Set<string>();
  for (;;) {
    const v = versionLoops(m0, sunk.origin, regions, (fi, inst) => regionOf[fi].get(inst) ?? -1, (fi, h) => opts.version !== false && !dropped.has(`${fi}:${h}`));
    const a = analyse(v.module, facts, regions, byName, nregs);
    const bad = unavailableTests(v, a, nregs);
    if (bad.length > 0) {
      for (const [fi, h] of bad) dropped.add(`${fi}:${h}`);
      continue;
    }
    const { m, lowered, known, guesses, skipped, folds, groupsOf, alloc, live } = a;
    // Two passes: the first records how blocks use the cache registers, the second lets loops keep
    // their region words in them (cache-flow.ts).
    const first = emitModule(m, lowered, facts, regions, alloc, known, guesses, live, skipped, folds, v.origin, groupsOf, v.loops, v.names, v.unchecked);
    const plan = lowered.functions.map((f, fi) => entryWords(f, first.uses[fi]));
    const out = emitModule(m, lowered, facts, regions, alloc, known, guesses, live, skipped, folds, v.origin, groupsOf, v.loops, v.names, v.unchecked, plan).result;
    const all = v.loops.flatMap((ls, fi) => [...ls.values()].map((l) => ({ fn: fi, l })));
    out.versions = all.filter(({ l }) => l.pcs.length > 0).map(({ fn, l }) => ({ fn, header: l.source, pcs: l.pcs }));
    out.budgetGuards = all.filter(({ l }) => l.charge > 0).map(({ fn, l }) => ({ fn, header: l.source, charge: l.charge }));
    return out;
  }
}

/** Per function, the region each checked access's inline check compares against (version.ts `regionOf`). */
function checkedRegions(m: IrModule, regions: readonly RegionInfo[], byName: ReadonlyMap<string, number>, nregs: number): Array<Map<Inst, number>> {
  return m.functions.map((f, fi) => {
    const guess = new RegionGuess(f, fi === 0, regions, nregs);
    const out = new Map<Inst, number>();
    f.blocks.forEach((b, bi) => {
      const st = guess.at(bi);
      for (const inst of b.insts) {
        if ((inst.op === 'load' || inst.op === 'store') && inst.access.verdict !== 'proven' && inst.base !== 10) {
          const named = inst.access.region !== undefined ? byName.get(inst.access.region) : undefined;
          const g = inst.base < st.length ? st[inst.base] : -1;
          const idx = named ?? (g >= 0 ? g : undefined);
          const r = idx !== undefined ? regions[idx] : undefined;
          // A write into a read-only region stays checked (it faults 'permission' there).
          if (r !== undefined && (inst.op === 'load' || r.writable) && byName.get(r.name) === r.index) out.set(inst, r.index);
        }
        guess.transfer(st, inst);
      }
    });
    return out;
  });
}

interface Analysed {
  m: IrModule;
  lowered: IrModule;
  known: KnownHalves[];
  guesses: RegionGuess[];
  skipped: Set<Inst>;
  folds: Set<Inst>;
  groupsOf: Array<Array<Map<number, AccessGroup>>>;
  alloc: Allocation;
  live: Uint8Array[] | undefined;
  reader: (inst: MemInst, k: KnownState, g: number) => boolean;
}

function analyse(m: IrModule, facts: ProgramFacts | undefined, regions: RegionInfo[], byName: ReadonlyMap<string, number>, nregs: number): Analysed {
  const entryCalled = m.functions.some((f) => f.blocks.some((b) => b.insts.some((i) => i.op === 'calllocal' && i.func === 0)));
  const topOfStack = regions[0].vbase + STACK_SIZE;
  // An entry function that is also called locally starts from whatever its caller left in r1 and r2.
  const known = m.functions.map((f, fi) => new KnownHalves(f, fi === 0 && !entryCalled, nregs, fi === 0 && !entryCalled ? topOfStack : undefined, regions[regions.length - 1].vbase));
  const guesses = m.functions.map((f, fi) => new RegionGuess(f, fi === 0, regions, nregs));
  // Upper halves no code reads become hiDead (the known halves stay those of the original code,
  // which the lowering's constants are right for).
  const reader = (inst: MemInst, k: KnownState, g: number): boolean => readsBaseHi({ regions, byName, facts }, inst, k, g);
  // Marking an upper half dead can make more dead (an add whose upper half is dead reads only
  // low halves): a few rounds.
  let lowered: IrModule = m;
  for (let round = 0; round < 3; round++) {
    let more = false;
    lowered = {
      ...lowered,
      functions: lowered.functions.map((f, fi) => {
        const dead = deadUpperHalves(f, known[fi], guesses[fi], nregs, reader);
        if (dead.size > 0) more = true;
        return { ...f, blocks: f.blocks.map((b) => ({ ...b, insts: b.insts.map((i): Inst => (dead.has(i) ? ({ ...i, hiDead: true } as Inst) : i)) })) };
      }),
    };
    if (!more) break;
  }
  // Definitions nothing reads from where they live (liveness.ts deadDefinitions): not lowered.
  const skipped = new Set<Inst>();
  // Address additions an access may absorb (liveness.ts addressFolds).
  const folds = new Set<Inst>();
  lowered.functions.forEach((f, fi) => {
    for (const inst of deadDefinitions(f, known[fi], guesses[fi], nregs, reader)) skipped.add(inst);
    for (const inst of addressFolds(f, known[fi], guesses[fi], nregs, reader)) folds.add(inst);
  });
  const groupsOf = lowered.functions.map((f, fi) => loopSafeGroups(f, f.blocks.map((b, bi) =>
    groupAccesses({ regions, byName, facts }, b.insts, guesses[fi].at(bi), known[fi].at(bi), m.functions[fi].blocks[bi].insts, {
      usable: (inst) => keepsCache(inst) && !skipped.has(inst), transfer: (st, inst) => guesses[fi].transfer(st, inst),
    })), byName, (bi) => guesses[fi].at(bi), (st, inst) => guesses[fi].transfer(st, inst)));
  const mentions = lowered.functions.map((f, fi) => loweredMentions(f, known[fi], guesses[fi], nregs, reader, skipped, folds));
  const alloc = allocate(lowered, eliminable(known, nregs), undefined, mentions);
  const live = alloc.regions === undefined ? undefined : liveInHalves(lowered.functions[0], known[0], guesses[0], nregs, reader);
  return { m, lowered, known, guesses, skipped, folds, groupsOf, alloc, live, reader };
}

/**
 * The versioned loops (function, header before versioning) whose entry test reads a half that is
 * neither known at the test nor live into either copy: where such a half lives, its value may be
 * stale (an upper half no check reads is never written).
 */
function unavailableTests(v: VersionedModule, a: Analysed, nregs: number): Array<[number, number]> {
  const bad: Array<[number, number]> = [];
  v.loops.forEach((loops, fi) => {
    if (loops.size === 0) return;
    const liveIn = liveInHalves(a.lowered.functions[fi], a.known[fi], a.guesses[fi], nregs, a.reader);
    for (const l of loops.values()) {
      const s = a.known[fi].at(l.test);
      const ok = testReads(l).every((k) => {
        const reg = k >> 1;
        const half = (k & 1) as 0 | 1;
        if (knownHalf(s, reg, half) !== undefined) return true;
        return !a.alloc.eliminated.has(k) && (liveIn[l.copy][k] === 1 || liveIn[l.original][k] === 1);
      });
      if (!ok) bad.push([fi, l.source]);
    }
  });
  return bad;
}

function emitModule(
  m: IrModule, lowered: IrModule, facts: ProgramFacts | undefined, regions: RegionInfo[], alloc: Allocation,
  known: KnownHalves[], guesses: RegionGuess[], live: Uint8Array[] | undefined, skipped: ReadonlySet<Inst>, folds: ReadonlySet<Inst>,
  origin: ReadonlyMap<Inst, string>, groupsOf: Array<Array<Map<number, AccessGroup>>>, versions: ReadonlyArray<ReadonlyMap<number, VersionedLoop>>,
  names: readonly (readonly string[])[], unchecked: ReadonlySet<Inst>, plan?: CacheWords[][],
): { result: LoweredModule; uses: CacheUse[][] } {
  const e = new Emitter(alloc);
  const L = sharedLabels(e);
  const byName = regionsByName(regions);
  const ctx: AccessContext = { regions, byName, L, facts };
  const fl: FunctionLabels[] = m.functions.map((f, i) => ({ callEntry: e.buf.label(`f${i}_call`), body: e.buf.label(`f${i}_${f.name}`) }));
  const uses: CacheUse[][] = lowered.functions.map((f) => f.blocks.map(() => ({ wanted: new Map(), clobbered: new Set(), exit: new Map() })));
  emitShared(e, L, fl[0].body);
  emitLookup(e, L);
  lowered.functions.forEach((f, fi) => {
    e.buf.bind(fl[fi].callEntry);
    emitCalleeEntry(e);
    e.buf.bind(fl[fi].body);
    const guess = guesses[fi];
    const original = m.functions[fi];
    const labels = f.blocks.map((b) => e.buf.label(`f${fi}_b${b.id}`));
    const words = (id: number): CacheWords => plan?.[fi][id] ?? new Map();
    const homesOf = (id: number): ReadonlyMap<number, number> => {
      const rg = fi === 0 ? alloc.regions : undefined;
      return rg === undefined ? alloc.homes : rg.homes[rg.of[id]];
    };
    // What going to block `id` from here needs first: halves moved between homes, cache words.
    const edge = (id: number | 'exit'): (() => void) | undefined => {
      const to = id === 'exit' ? alloc.homes : homesOf(id);
      const from = e.homes;
      const lacking = id === 'exit' ? new Map<number, number>() : e.lacking(words(id));
      const needed = (k: number): boolean => (id === 'exit' ? k >> 1 === 0 : live?.[id][k] === 1);
      const moved = from === to ? [] : [...new Set([...from.keys(), ...to.keys()])].filter((k) => from.get(k) !== to.get(k) && needed(k)).sort((a, b) => a - b);
      if (moved.length === 0 && lacking.size === 0) return undefined;
      return () => {
        for (const k of moved) {
          const r = from.get(k);
          if (r !== undefined) strState(e, r, slotOf(k >> 1, (k & 1) as 0 | 1));
        }
        for (const k of moved) {
          const r = to.get(k);
          if (r !== undefined) ldrState(e, r, slotOf(k >> 1, (k & 1) as 0 | 1));
        }
        e.provide(lacking);
      };
    };
    f.blocks.forEach((b: Block, bi) => {
      if (b.id !== bi) throw new LoweringError(`${m.origin}: function ${f.name}: block ${bi} has id ${b.id}`);
      e.buf.bind(labels[bi]);
      e.enterBlock(words(bi), plan === undefined ? uses[fi][bi] : undefined);
      e.homes = homesOf(bi);
      e.loMax = new Map();
      const s = guess.at(bi);
      const k = known[fi].at(bi);
      e.known = k;
      // One instruction (also replayed in a group's cold path): returns the address fold it starts.
      const lowerAt = (inst: Inst, ii: number, st: Int16Array, kn: KnownState, via: Via | undefined, role?: GroupRole): Via | undefined => {
        // Sequences that bind labels or call out leave nothing cached behind them.
        const plain = keepsCache(inst);
        if (!plain) e.forget();
        const next = b.insts[ii + 1];
        const fold = folds.has(inst) && inst.op === 'bin' && next !== undefined && (next.op === 'load' || next.op === 'store')
          ? foldAddress(e, ctx, inst, next) : undefined;
        const before = original.blocks[bi].insts[ii];
        const range = lowHalfRange(kn, before);
        const lowered = fold === undefined && !skipped.has(inst);
        if (lowered && inst.op === 'budget' && unchecked.has(inst)) lowerPaidBudget(e, inst.cost);
        else if (lowered) lowerInst(e, ctx, m, inst, st, fl, L, via, role);
        if (!plain) e.forget();
        if ('dst' in inst) {
          if (lowered && range !== undefined) e.loMax.set(inst.dst, range[1]);
          else e.loMax.delete(inst.dst);
        } else if (inst.op !== 'store' && inst.op !== 'budget') e.loMax.clear();
        guess.transfer(st, inst);
        knownTransfer(kn, before);
        e.release();
        return fold;
      };
      const groups = groupsOf[fi][bi];
      let via: Via | undefined;
      let open: { g: AccessGroup; slow: Label; k: KnownState; s: Int16Array; lm: Map<number, number>; branch: Array<[number, number]> } | undefined;
      b.insts.forEach((inst, ii) => {
        e.mark(inst.pc, origin.get(original.blocks[bi].insts[ii]) ?? `f${fi}.${names[fi][bi]}.${ii}`);
        const g = groups.get(ii);
        let role: GroupRole | undefined;
        if (g !== undefined && g.first === ii) {
          const o = { g, slow: e.buf.label(`group_${inst.pc}`), k: k.slice(), s: s.slice(), lm: new Map(e.loMax), branch: [] as Array<[number, number]> };
          open = o;
          role = { kind: 'lead', region: g.region, at: g.at, size: g.size, slow: o.slow, onBranch: (c) => void (o.branch = c) };
        } else if (g !== undefined) role = { kind: 'member', region: g.region };
        via = lowerAt(inst, ii, s, k, via, role);
        if (open !== undefined && g !== undefined && g.last === ii) {
          // The cold path: the group's instructions again, each access checked on its own (so a
          // fault is the one the interpreter reports), then back with the hot path's cache words.
          const o = open;
          open = undefined;
          const resume = e.buf.here(`group_end_${inst.pc}`);
          e.flagsUnknown();
          const end = new Map(e.cachedState());
          e.addCold(() => {
            e.buf.bind(o.slow);
            e.assume(o.branch);
            const kk = o.k.slice();
            const ss = o.s.slice();
            e.known = kk;
            e.loMax = new Map(o.lm);
            let v: Via | undefined;
            for (let j = o.g.first; j <= o.g.last; j++) v = lowerAt(b.insts[j], j, ss, kk, v);
            e.provide(end);
            e.buf.b(resume);
          });
        }
      });
      e.mark(b.term.pc, `f${fi}.${names[fi][bi]}.t`);
      const version = versions[fi].get(bi);
      if (version !== undefined) lowerVersionTest(e, version, regions, labels, bi + 1, edge);
      else lowerTerm(e, b.term, bi + 1 < f.blocks.length ? bi + 1 : undefined, labels, L, f.blocks.length, edge);
      uses[fi][bi].exit = e.cacheNow();
      e.recording = undefined;
      e.release();
    });
    e.flushCold();
  });
  const asm = e.buf.finish();
  const result: LoweredModule = {
    code: asm.bytes,
    data: asm.data,
    entry: asm.offsetOf(L.entry),
    sites: e.sites.map((s) => ({ offset: asm.offsetOf(s.label), pc: s.pc })).sort((a, b) => a.offset - b.offset),
    marks: e.marks.map((mk) => ({ offset: asm.offsetOf(mk.label), pc: mk.pc, where: mk.what })),
    functions: fl.map((l) => asm.offsetOf(l.body)),
    regions,
    alloc,
    versions: [],
    budgetGuards: [],
  };
  return { result, uses };
}

/**
 * A versioned loop's test block (version.ts): the test, then the copy on success; the original
 * loop on failure, through a stub that enters it as from nowhere in particular (it loads every
 * cache word the loop wants, since the test's branches leave at different points of its code).
 */
function lowerVersionTest(
  e: Emitter, v: VersionedLoop, regions: readonly RegionInfo[], labels: Label[], next: number, edge: (to: number | 'exit') => (() => void) | undefined,
): void {
  const fail = e.buf.label(`version_fail_${v.test}`);
  emitVersionTest(e, regions, v.count, v.tests, fail, v.charge);
  const pass = edge(v.copy);
  pass?.();
  if (v.copy !== next) e.buf.b(labels[v.copy]);
  const held = e.cachedState();
  e.assume([]);
  const enter = edge(v.original);
  e.assume(held);
  e.addCold(() => {
    e.buf.bind(fail);
    enter?.();
    e.buf.b(labels[v.original]);
  });
}

/**
 * The groups worth their union test inside loops: a loop's checks keep their region's words in
 * r10/r11 across iterations only while every check in it wants the same words, so a group stays
 * only where each unproven access of its region in its innermost loop belongs to a group of the
 * same size (the union test uses the count of that size and the delta; a single check the count
 * of its own size and the host).
 */
function loopSafeGroups(
  f: IrFunction, groups: Array<Map<number, AccessGroup>>, byName: ReadonlyMap<string, number>,
  guessAt: (b: number) => Int16Array, transfer: (s: Int16Array, inst: Inst) => void,
): Array<Map<number, AccessGroup>> {
  const loops = naturalLoops(f);
  if (loops.length === 0) return groups;
  // Innermost loop of each block: the smallest body holding it.
  const inner = f.blocks.map((b) => loops.filter((l) => l.body.has(b.id)).sort((x, y) => x.body.size - y.body.size)[0]);
  // Per loop and region: the group sizes, and whether an ungrouped unproven access uses it.
  const wants = new Map<Set<number>, Map<number, Set<number>>>();
  f.blocks.forEach((b, bi) => {
    const loop = inner[bi];
    if (loop === undefined) return;
    const st = guessAt(bi);
    b.insts.forEach((inst, ii) => {
      if ((inst.op === 'load' || inst.op === 'store' || inst.op === 'atomic') && inst.access.verdict !== 'proven') {
        const g = groups[bi].get(ii);
        const guess = inst.base < st.length ? st[inst.base] : -1;
        const region = g?.region ?? (inst.access.region !== undefined ? byName.get(inst.access.region) : undefined) ?? guess;
        const per = wants.get(loop.body) ?? new Map<number, Set<number>>();
        wants.set(loop.body, per);
        const sizes = per.get(region) ?? new Set<number>();
        per.set(region, sizes);
        sizes.add(g === undefined ? -1 : g.size);
      }
      transfer(st, inst);
    });
  });
  return groups.map((gs, bi) => {
    const loop = inner[bi];
    if (loop === undefined) return gs;
    return new Map([...gs].filter(([, g]) => (wants.get(loop.body)?.get(g.region)?.size ?? 1) === 1));
  });
}

const PURE: ReadonlySet<Inst['op']> = new Set(['mov', 'bin', 'neg', 'ext', 'bswap']);

const CACHE_SAFE: ReadonlySet<Inst['op']> = new Set(['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap', 'load', 'store', 'budget']);
const DIVISIONS: ReadonlySet<string> = new Set(['udiv', 'sdiv', 'urem', 'srem']);

/** True for instructions whose code binds no label in line and calls nothing (64-bit division may). */
function keepsCache(inst: Inst): boolean {
  if (!CACHE_SAFE.has(inst.op)) return false;
  return !(inst.op === 'bin' && inst.w === 64 && DIVISIONS.has(inst.bin));
}

/** Sets dst to its value when known.ts computes it from known operands: true when done. */
function folded(e: Emitter, inst: Inst): boolean {
  if (!PURE.has(inst.op) || !('dst' in inst)) return false;
  const post = e.known.slice();
  knownTransfer(post, inst);
  const lo = knownHalf(post, inst.dst, 0);
  const hi = knownHalf(post, inst.dst, 1);
  if (lo === undefined || (hi === undefined && !inst.hiDead)) return false;
  lowerConst(e, inst.dst, lo, hi ?? 0, inst.hiDead);
  return true;
}

function lowerInst(
  e: Emitter, ctx: AccessContext, m: IrModule, inst: Inst, guess: Int16Array, fl: FunctionLabels[], L: SharedLabels, via?: Via, role?: GroupRole,
): void {
  const g = (reg: number): number => (reg < guess.length ? guess[reg] : -1);
  if (folded(e, inst)) return;
  switch (inst.op) {
    case 'const':
      lowerConst(e, inst.dst, inst.lo, inst.hi, inst.hiDead);
      return;
    case 'addr': {
      const r = ctx.regions[1 + inst.section];
      if (inst.section < 0 || inst.section >= m.data.length || r === undefined) {
        throw new LoweringError(`instruction ${inst.pc}: data section ${inst.section} does not exist`);
      }
      const v = r.vbase + inst.offset;
      lowerConst(e, inst.dst, v | 0, Math.floor(v / 0x1_0000_0000) | 0, inst.hiDead);
      return;
    }
    case 'mov':
      lowerMov(e, inst);
      return;
    case 'bin':
      lowerBin(e, inst);
      return;
    case 'neg':
      lowerNeg(e, inst);
      return;
    case 'ext':
      lowerExt(e, inst);
      return;
    case 'bswap':
      lowerBswap(e, inst);
      return;
    case 'load':
      lowerLoad(e, ctx, inst, g(inst.base), via, role);
      return;
    case 'store':
      lowerStore(e, ctx, inst, g(inst.base), via, role);
      return;
    case 'atomic':
      lowerAtomic(e, ctx, inst, g(inst.base));
      return;
    case 'call':
    case 'callx':
      lowerHelperCall(e, inst, L);
      return;
    case 'calllocal': {
      const target = fl[inst.func];
      if (target === undefined) throw new LoweringError(`instruction ${inst.pc}: local call to function ${inst.func}, which does not exist`);
      lowerLocalCall(e, inst, target.callEntry, L);
      return;
    }
    case 'budget':
      lowerBudget(e, inst.pc, inst.cost, L);
      return;
  }
}

/** A charge the loop's entry test paid for (version.ts): the budget cannot run out here. */
function lowerPaidBudget(e: Emitter, cost: number): void {
  const reg = e.alloc.budgetReg;
  if (reg === undefined) throw new LoweringError(`a budget charge of ${cost} in a module without a budget register`);
  dpImmOr(e, 'sub', false, reg, reg, cost);
}

function lowerBudget(e: Emitter, pc: number, cost: number, L: SharedLabels): void {
  const fail = e.buf.label(`budget_fail_${pc}`);
  const reg = e.alloc.budgetReg;
  if (reg !== undefined) {
    // The budget lives in a register: subtract, and undo the charge on the (cold) failing path so
    // that the budget left is what evalIr reports.
    dpImmOr(e, 'sub', true, reg, reg, cost);
    e.buf.bcond('lo', fail);
    e.addCold(() => {
      e.buf.bind(fail);
      dpImmOr(e, 'add', false, reg, reg, cost);
      e.blSite(L.faultBudget, pc);
    });
    return;
  }
  const t = e.take(12);
  ldrState(e, t, OFF.BUDGET);
  dpImmOr(e, 'sub', true, t, t, cost);
  e.buf.bcond('lo', fail);
  strState(e, t, OFF.BUDGET);
  e.addCold(() => {
    e.buf.bind(fail);
    e.blSite(L.faultBudget, pc);
  });
}

function lowerTerm(
  e: Emitter, t: Terminator, next: number | undefined, labels: Label[], L: SharedLabels, nblocks: number,
  edge: (to: number | 'exit') => (() => void) | undefined,
): void {
  const target = (id: number): Label => {
    const l = labels[id];
    if (l === undefined || id < 0 || id >= nblocks) throw new LoweringError(`instruction ${t.pc}: branch to block ${id}, which does not exist`);
    return l;
  };
  const jump = (id: number): void => {
    edge(id)?.();
    if (id !== next) e.buf.b(target(id));
  };
  // A taken branch whose edge needs code goes through a stub after the function.
  const taken = (id: number, fix: (() => void) | undefined): Label => {
    if (fix === undefined) return target(id);
    const stub = e.buf.label(`edge_${t.pc}_${id}`);
    e.addCold(() => {
      e.buf.bind(stub);
      fix();
      e.buf.b(target(id));
    });
    return stub;
  };
  switch (t.op) {
    case 'jump':
      jump(t.target);
      return;
    case 'br': {
      if (t.then === t.else) {
        jump(t.then);
        return;
      }
      const cond = lowerCompare(e, t);
      if (cond === 'always' || cond === 'never') {
        jump(cond === 'always' ? t.then : t.else);
        return;
      }
      // Both computed before either emits: each starts from the state after the compare.
      const thenFix = edge(t.then);
      const elseFix = edge(t.else);
      if (t.then === next) {
        e.buf.bcond(E.invertCond(cond), taken(t.else, elseFix));
        thenFix?.();
        return;
      }
      e.buf.bcond(cond, taken(t.then, thenFix));
      elseFix?.();
      if (t.else !== next) e.buf.b(target(t.else));
      return;
    }
    case 'ret':
      // A known half of r0 may never have been stored (known.ts, liveness.ts): it is, now.
      for (const half of [0, 1] as const) {
        const v = e.kv(0, half);
        if (v === undefined) continue;
        const h = e.home(0, half);
        if (h !== undefined) e.emit(E.loadConst(h, v));
        else {
          e.scope(() => {
            const tmp = e.tmp();
            e.emit(E.loadConst(tmp, v));
            e.emit(E.loadStore('str', tmp, E.SP, slotOf(0, half)));
          });
        }
      }
      edge('exit')?.();
      e.buf.b(L.retCommon);
      return;
    case 'fault':
      e.blSite(t.kind === 'permission' ? L.faultPerm : L.faultOob, t.pc);
      return;
  }
}
