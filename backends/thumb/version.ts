// Loop versioning (compiler/ir/loops.ts finds the loops and what their entry test covers): every
// innermost loop that walks memory through checked accesses gets a second copy, entered through a
// test block placed on its way in. The test checks once that every access it covers, in every
// iteration the loop can run before its counted exit, lies in the region the access's inline check
// compares against; the copy then translates those accesses as proven ones (through the region's
// delta), and a failed test enters the original loop, which checks each access, so a fault keeps
// the interpreter's kind, pc and address.
//
// Innermost loops with budget charges and a counted exit get the same treatment for the budget: the
// test also requires the budget left to cover (m + 1) iterations of the sum of the loop's charges
// (each block runs at most once per iteration, so that sum bounds one iteration's), and the copy's
// charges become plain subtractions with no test and no branch. Every block still subtracts its own
// charge, so the budget is exact at every instruction and a fault elsewhere reports the steps the
// interpreter would; a loop the budget may not cover runs the original, which checks each charge.
//
// The copy is made in the IR before any analysis of the lowering runs (known halves, region
// guesses, liveness, homes, cache words): it is two sibling loops to all of them, the copy's
// covered accesses marked proven in their region. The test block has no instructions and a
// placeholder `br set r10, -1` (r10 is never a home, `set` refines nothing), which lower.ts
// replaces with the test (`emitVersionTest`). The test reads registers the placeholder does not
// name; `testReads` lists them so lower.ts can drop a loop whose test would read a half that is
// neither known at the test nor kept where it lives (then its value there could be stale).
import type { BlockId, Inst, IrFunction, IrModule } from '../../compiler/ir/ir.js';
import { innermostLoops, loopCfg, tripCount, versionPlan, type InnermostLoop, type LoopCfg, type RangeTest, type TripCount } from '../../compiler/ir/loops.js';
import { REGION, regionField, sizeClass } from './abi.js';
import type { Label } from './asm-buffer.js';
import type { RegionInfo } from './checks.js';
import * as E from './encode.js';
import { dpImmOr, LR, type Emitter } from './emitter.js';
import { halfKey } from './regalloc.js';

/** One versioned loop of a function, in the block numbering of the versioned module. */
export interface VersionedLoop {
  /** The test block (placed right before the copy). */
  test: BlockId;
  /** Header of the copy the test enters when it passes. */
  copy: BlockId;
  /** Header of the original loop, entered when it fails. */
  original: BlockId;
  /** The loop's header in the module before versioning (what `versionLoops`' `keep` names). */
  source: BlockId;
  count: TripCount | undefined;
  /** Region ids are indices into the image's regions (checks.ts regionLayout). */
  tests: RangeTest[];
  /** eBPF pcs of the accesses the copy runs unchecked. */
  pcs: number[];
  /** Sum of the loop's budget charges when the test covers the budget (the copy's charges are then unchecked), else 0. */
  charge: number;
}

export interface VersionedModule {
  module: IrModule;
  /** Per function: its versioned loops by test block. */
  loops: Array<Map<BlockId, VersionedLoop>>;
  /**
   * `origin` extended to the copies' instructions: `f0.v2.5` for the copy of `f0.b2.5`, so that
   * listings and tests tell the copies apart.
   */
  origin: Map<Inst, string>;
  /** Per function, each block's name for listings: `b<id>` of the block it was (or is), `v<id>` for a copy, `t<header>` for a test. */
  names: string[][];
  /** The copies' `budget` instructions the entry test pays for: lowered as a subtraction without a test. */
  unchecked: ReadonlySet<Inst>;
}

/** Largest loop (IR instructions) that gets a copy: the copy doubles its code. */
const MAX_LOOP_INSTS = 400;

type MemInst = Extract<Inst, { op: 'load' | 'store' | 'atomic' }>;

/**
 * `regionOf(fi, inst)`: the region index the access's inline check compares against, or -1 when
 * it has none a test can vouch for (proven, frame or atomic accesses, writes into read-only
 * regions). `keep(fi, header)`: whether the loop with that header (original numbering) may be
 * versioned.
 */
export function versionLoops(
  m: IrModule, origin: ReadonlyMap<Inst, string>, regions: readonly RegionInfo[],
  regionOf: (fi: number, inst: Inst) => number, keep: (fi: number, header: BlockId) => boolean = () => true,
): VersionedModule {
  const out = new Map(origin);
  const unchecked = new Set<Inst>();
  const loops: Array<Map<BlockId, VersionedLoop>> = [];
  const names: string[][] = [];
  const functions = m.functions.map((f, fi) => {
    const found = new Map<BlockId, VersionedLoop>();
    loops.push(found);
    const blockNames = f.blocks.map((b) => `b${b.id}`);
    names.push(blockNames);
    return versionFunction(f, fi, regions, (inst) => regionOf(fi, inst), (h) => keep(fi, h), out, found, blockNames, unchecked);
  });
  return { module: { ...m, functions }, loops, origin: out, names, unchecked };
}

interface Planned {
  header: BlockId;
  blocks: BlockId[];
  body: Uint8Array;
  count: TripCount | undefined;
  tests: RangeTest[];
  covered: ReadonlySet<Inst>;
  charge: number;
}

function versionFunction(
  f: IrFunction, fi: number, regions: readonly RegionInfo[], regionOf: (i: Inst) => number, keep: (h: BlockId) => boolean,
  origin: Map<Inst, string>, found: Map<BlockId, VersionedLoop>, names: string[], unchecked: Set<Inst>,
): IrFunction {
  const cfg = loopCfg(f);
  const planned: Planned[] = [];
  for (const loop of innermostLoops(f, cfg)) {
    let insts = 0;
    for (const b of loop.blocks) insts += f.blocks[b].insts.length;
    if (insts > MAX_LOOP_INSTS || !keep(loop.header)) continue;
    const plan = versionPlan(f, cfg, loop.body, loop.blocks, loop.header, regionOf);
    let charge = 0;
    for (const b of loop.blocks) for (const i of f.blocks[b].insts) if (i.op === 'budget') charge += i.cost;
    const count = charge > 0 ? countedExit(f, cfg, loop) : undefined;
    if (count === undefined) charge = 0;
    if (plan === undefined && charge === 0) continue;
    planned.push({
      header: loop.header, blocks: loop.blocks, body: loop.body, count: charge > 0 ? count : plan?.count,
      tests: plan?.tests ?? [], covered: plan?.covered ?? new Set(), charge,
    });
  }
  if (planned.length === 0) return f;
  // New order: each loop's test block and copy right before the loop's first block.
  const n = f.blocks.length;
  const before = new Map<BlockId, Planned>();
  for (const p of planned) before.set(p.blocks[0], p);
  const newOf = new Int32Array(n);
  const testOf = new Map<Planned, number>();
  const copyOf = new Map<Planned, Int32Array>();
  const headerOf = new Map<BlockId, Planned>();
  let next = 0;
  for (let b = 0; b < n; b++) {
    const p = before.get(b);
    if (p !== undefined) {
      testOf.set(p, next++);
      const ids = new Int32Array(n).fill(-1);
      for (const x of p.blocks) ids[x] = next++;
      copyOf.set(p, ids);
      headerOf.set(p.header, p);
    }
    newOf[b] = next++;
  }
  // Edges into a versioned header from outside its loop go to its test.
  const target = (from: Planned | undefined, t: BlockId, inCopy: boolean): BlockId => {
    if (from !== undefined && from.body[t]) return inCopy ? copyOf.get(from)![t] : newOf[t];
    const p = headerOf.get(t);
    return p !== undefined ? testOf.get(p)! : newOf[t];
  };
  const ownerOf = new Map<BlockId, Planned>();
  for (const p of planned) for (const b of p.blocks) ownerOf.set(b, p);
  const blocks: IrFunction['blocks'] = new Array(next);
  const retarget = (b: BlockId, inCopy: boolean): IrFunction['blocks'][number]['term'] => {
    const t = f.blocks[b].term;
    const owner = ownerOf.get(b);
    if (t.op === 'jump') return { ...t, target: target(owner, t.target, inCopy) };
    if (t.op === 'br') return { ...t, then: target(owner, t.then, inCopy), else: target(owner, t.else, inCopy) };
    return { ...t };
  };
  const named = new Array<string>(next);
  for (let b = 0; b < n; b++) {
    const id = newOf[b];
    blocks[id] = { id, insts: f.blocks[b].insts, term: retarget(b, false) };
    named[id] = `b${b}`;
  }
  for (const p of planned) {
    const ids = copyOf.get(p)!;
    const pcs: number[] = [];
    for (const b of p.blocks) {
      const id = ids[b];
      const insts = f.blocks[b].insts.map((inst, ii): Inst => {
        const copy: Inst = p.covered.has(inst) ? provenIn(inst as MemInst, regions[regionOf(inst)].name) : { ...inst };
        if (p.covered.has(inst)) pcs.push(inst.pc);
        if (copy.op === 'budget' && p.charge > 0) unchecked.add(copy);
        origin.set(copy, (origin.get(inst) ?? `f${fi}.b${b}.${ii}`).replace(/^(f\d+\.)b/, '$1v'));
        return copy;
      });
      blocks[id] = { id, insts, term: retarget(b, true) };
      named[id] = `v${b}`;
    }
    const test = testOf.get(p)!;
    const pc = f.blocks[p.header].insts[0]?.pc ?? f.blocks[p.header].term.pc;
    blocks[test] = { id: test, insts: [], term: { op: 'br', pc, cond: 'set', w: 32, a: 10, b: { imm: -1 }, then: ids[p.header], else: newOf[p.header] } };
    named[test] = `t${p.header}`;
    found.set(test, { test, copy: ids[p.header], original: newOf[p.header], source: p.header, count: p.count, tests: p.tests, pcs: pcs.sort((x, y) => x - y), charge: p.charge });
  }
  names.length = 0;
  names.push(...named);
  return { ...f, blocks };
}

/** The loop's counted exit (loops.ts tripCount), whether or not the loop walks memory. */
function countedExit(f: IrFunction, cfg: LoopCfg, loop: InnermostLoop): TripCount | undefined {
  const nRegs = Math.max(11, f.maxReg + 1);
  const written = new Uint8Array(nRegs);
  const nWrites = new Int32Array(nRegs);
  const lastBlock = new Int32Array(nRegs);
  const lastInst: (Inst | undefined)[] = new Array<Inst | undefined>(nRegs);
  const wrote = (r: number, i: Inst, b: number): void => {
    if (!(r >= 0 && r < nRegs)) return;
    written[r] = 1;
    nWrites[r]++;
    lastBlock[r] = b;
    lastInst[r] = i;
  };
  for (const b of loop.blocks) {
    for (const i of f.blocks[b].insts) {
      if ('dst' in i) wrote(i.dst, i, b);
      else if (i.op === 'call' || i.op === 'callx' || i.op === 'calllocal') for (let r = 0; r <= 5; r++) wrote(r, i, b);
      else if (i.op === 'atomic') {
        const src = i.fetch || i.aop === 'xchg' ? i.src : -1;
        if (src >= 0) wrote(src, i, b);
        if (i.aop === 'cmpxchg' && src !== 0) wrote(0, i, b);
      }
    }
  }
  return tripCount(f, cfg, loop.body, loop.blocks, loop.header, written, nWrites, lastBlock, lastInst);
}

function provenIn(inst: MemInst, region: string): Inst {
  return { ...inst, access: { verdict: 'proven', region } };
}

/** The halves (by `halfKey`) the entry test of `v` reads. */
export function testReads(v: VersionedLoop): number[] {
  const out: number[] = [];
  const both = (r: number): void => {
    out.push(halfKey(r, 0), halfKey(r, 1));
  };
  if (v.count !== undefined && (v.charge > 0 || v.tests.some((x) => x.step !== 0))) {
    const regs = [v.count.reg, ...('reg' in v.count.bound ? [v.count.bound.reg] : [])];
    for (const r of regs) (v.count.w === 64 ? both : (x: number) => out.push(halfKey(x, 0)))(r);
  }
  for (const x of v.tests) {
    both(x.base);
    if (x.index !== undefined) both(x.index.reg);
  }
  return out.filter((k) => k >> 1 !== 10);
}

/** A register holding a half: its home, or `into` loaded (or set to the known value). */
function raw(e: Emitter, reg: number, half: 0 | 1, into: number): number {
  const h = e.kv(reg, half) === undefined && e.live(reg, half) ? e.home(reg, half) : undefined;
  if (h !== undefined) return h;
  e.read(reg, half, into);
  return into;
}

/**
 * The entry test: falls through when it passes, branches to `fail` otherwise; uses only scratch
 * registers. With m the iterations after the first (lr), each walk's start offset
 * T = P0 + lo - vbase must have a zero upper half and T <= S (the region's size: its length, or the
 * context's cnt[1] word); then with A = S - T, a walk of step s > 0 needs len <= A and
 * m * s <= A - len, one of step -d needs m * d <= T and len <= A, a fixed one len <= A. The
 * products are compared as m <= floor(X / s) (a shift, or UDIV), so nothing overflows: every
 * accessed byte lies in [T, T + m*s + len) or [T - m*d, T + len), inside [0, S].
 */
export function emitVersionTest(e: Emitter, regions: readonly RegionInfo[], count: TripCount | undefined, tests: readonly RangeTest[], fail: Label, charge = 0): void {
  e.scope(() => {
    if (count !== undefined && (charge > 0 || tests.some((x) => x.step !== 0))) {
      e.take(LR);
      emitIterations(e, count, fail);
      if (charge > 0) e.scope(() => emitBudgetFits(e, charge, fail));
    }
    for (const x of tests) {
      e.scope(() => emitRange(e, regions, x, fail));
    }
  });
  e.flagsUnknown();
}

/**
 * With lr = m: the budget left covers m + 1 iterations of `charge`, as m < floor(budget / charge)
 * (no product, so nothing wraps).
 */
function emitBudgetFits(e: Emitter, charge: number, fail: Label): void {
  const b = e.alloc.budgetReg;
  if (b === undefined) throw new RangeError('a loop charges budget in a module without a budget register');
  if ((charge & (charge - 1)) === 0) e.emit(charge === 1 ? E.cmp(LR, b) : E.cmp(LR, b, { type: 'lsr', amount: Math.log2(charge) }));
  else {
    const t = e.take(12);
    e.emit(E.loadConst(t, charge));
    e.emit(E.udiv(t, b, t));
    e.emit(E.cmp(LR, t));
  }
  e.buf.bcond('hs', fail);
}

/** lr = m = (bound - c - 1) (up) or (c - bound - 1) (down) at the counter's width; fails when m >= 2^32 or a strict loop would not start. */
function emitIterations(e: Emitter, count: TripCount, fail: Label): void {
  e.scope(() => {
    for (const r of [12, 11, 10]) e.take(r);
    const c = count.reg;
    const bound = count.bound;
    const bLo = 'reg' in bound ? raw(e, bound.reg, 0, 11) : (e.emit(E.loadConst(11, bound.imm | 0)), 11);
    const cLo = raw(e, c, 0, 12);
    const [xLo, yLo] = count.up ? [bLo, cLo] : [cLo, bLo];
    if (count.w === 32) {
      e.emit(E.subs(LR, xLo, yLo));
      // x - y borrows exactly when a strict loop would not run (x == y leaves m = 2^32 - 1, too large to pass).
      if (count.strict) e.buf.bcond('lo', fail);
      dpImmOr(e, 'sub', false, LR, LR, 1);
      return;
    }
    const hiOf = (r: number): number | undefined => e.kv(r, 1);
    const bHiKnown = 'reg' in bound ? hiOf(bound.reg) : (bound.imm | 0) >> 31;
    if (bHiKnown === 0 && hiOf(c) === 0) {
      // Both upper halves 0: m < 2^32 exactly when x > y (x == y or x < y leave m >= 2^64 - 2^32).
      e.emit(E.subs(LR, xLo, yLo));
      e.buf.bcond('ls', fail);
      dpImmOr(e, 'sub', false, LR, LR, 1);
      return;
    }
    // 64-bit: the difference in r12 (lo) : lr (hi); the operands' upper halves through r10/r11.
    e.emit(E.subs(12, xLo, yLo));
    const bHi = 'reg' in bound ? raw(e, bound.reg, 1, 11) : (e.emit(E.loadConst(11, (bound.imm | 0) >> 31, { preserveFlags: true })), 11);
    const cHi = raw(e, c, 1, 10);
    const [xHi, yHi] = count.up ? [bHi, cHi] : [cHi, bHi];
    e.emit(E.sbcs(LR, xHi, yHi));
    if (count.strict) e.buf.bcond('lo', fail);
    e.emit(E.subsImm(12, 12, 1));
    e.emit(E.sbcImm(LR, LR, 0));
    e.emit(E.cmpImm(LR, 0));
    e.buf.bcond('ne', fail);
    e.emit(E.mov(LR, 12));
  });
}

/** The checks of one walk (see emitVersionTest); lr holds m when the walk moves. */
function emitRange(e: Emitter, regions: readonly RegionInfo[], x: RangeTest, fail: Label): void {
  const region = regions[x.region];
  if (region === undefined) throw new RangeError(`a versioned loop tests region ${x.region}, which does not exist`);
  e.take(12);
  const k = x.lo - region.vbase;
  if (x.index === undefined && e.kv(x.base, 1) === 0 && k < 0 && k > -0x8000_0000) {
    // A zero upper half: T = base - (vbase - lo) has a zero upper half exactly when this does not borrow.
    e.scope(() => {
      const lo = raw(e, x.base, 0, 12);
      const imm = tryEncode(() => E.subsImm(12, lo, -k));
      if (imm !== undefined) e.emit(imm);
      else {
        const t = e.take(10);
        e.emit(E.loadConst(t, -k));
        e.emit(E.subs(12, lo, t));
      }
      e.buf.bcond('lo', fail);
    });
  } else emitStart(e, x, k, fail);
  emitBounds(e, region, x, fail);
}

/** r12 = T, computed in 64 bits (r11 the upper half, which must be 0). */
function emitStart(e: Emitter, x: RangeTest, k: number, fail: Label): void {
  e.scope(() => {
    e.take(11);
    e.take(10);
    if (x.index !== undefined) {
      const s = x.index.shift;
      e.read(x.index.reg, 0, 12);
      e.read(x.index.reg, 1, 11);
      if (s > 0) {
        e.emit(E.lslImm(11, 11, s));
        e.emit(E.dpReg('orr', false, 11, 11, 12, { type: 'lsr', amount: 32 - s }));
        e.emit(E.lslImm(12, 12, s));
      }
      e.emit(E.adds(12, 12, raw(e, x.base, 0, 10)));
      e.emit(E.adc(11, 11, raw(e, x.base, 1, 10)));
    } else {
      e.read(x.base, 0, 12);
      e.read(x.base, 1, 11);
    }
    e.emit(E.loadConst(10, k | 0));
    e.emit(E.adds(12, 12, 10));
    e.emit(E.adcImm(11, 11, k < 0 ? -1 : 0));
    e.emit(E.cmpImm(11, 0));
    e.buf.bcond('ne', fail);
  });
}

/** With T in r12: T <= S, then the walk's sweep within [0, S] (see emitVersionTest). */
function emitBounds(e: Emitter, region: RegionInfo, x: RangeTest, fail: Label): void {
  let size: number;
  if (region.len !== undefined) {
    size = e.take(11);
    e.emit(E.loadConst(11, region.len | 0));
  } else size = e.cacheWord(regionField(region.index, REGION.CNT + 4 * sizeClass(1)));
  e.emit(E.cmp(12, size));
  e.buf.bcond('hi', fail);
  const tmp = e.tmp();
  const d = Math.abs(x.step);
  /** lr <= floor(r12 / d), else fail. */
  const iterationsFit = (): void => {
    if (d === 1) e.emit(E.cmp(LR, 12));
    else if ((d & (d - 1)) === 0) e.emit(E.cmp(LR, 12, { type: 'lsr', amount: Math.log2(d) }));
    else {
      e.emit(E.loadConst(tmp, d));
      e.emit(E.udiv(tmp, 12, tmp));
      e.emit(E.cmp(LR, tmp));
    }
    e.buf.bcond('hi', fail);
  };
  if (x.step < 0) iterationsFit();
  e.emit(E.sub(12, size, 12));
  // A = S - T >= len (as A - len for a forward walk, which then bounds its iterations).
  const imm = tryEncode(() => (x.step > 0 ? E.subsImm(12, 12, x.len) : E.cmpImm(12, x.len)));
  if (imm !== undefined) e.emit(imm);
  else {
    e.emit(E.loadConst(tmp, x.len));
    e.emit(x.step > 0 ? E.subs(12, 12, tmp) : E.cmp(12, tmp));
  }
  e.buf.bcond('lo', fail);
  if (x.step > 0) iterationsFit();
}

function tryEncode(f: () => E.Halfwords): E.Halfwords | undefined {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    return undefined;
  }
}
