// Abstract interpretation of a structurally valid program (in the spirit of PREVAIL and the Linux
// verifier): for every load, store and atomic it decides whether the access is in bounds and
// permitted on every path (proven), faults on every path (rejected at load time), or needs a
// runtime check; and it proves some loops terminate so that they need no budget check.
//
// Domains, per register: kind (uninitialised, scalar, pointer into a named region), numeric
// bounds (signed and unsigned intervals with known bits; the value of a scalar, the offset of a
// pointer), per stack byte: written or not plus whole spilled values, and between registers and
// the symbolic mem length: a zone (x - y <= c) and affine equalities (p + 2n = c). Relations are
// recorded only for operations proven not to wrap, so they hold over the integers.
//
// Functions are analysed per call site (the stack is at most 8 frames deep and recursion is
// rejected), results cached by entry state. Loops are solved by chaotic iteration in reverse
// postorder with widening at targets of retreating edges (with thresholds: the constants that the
// branches of that cycle compare with), then one descending pass that records the facts. A block
// outside loops whose inputs that pass leaves unchanged is not run again: what it recorded while
// ascending is replayed. Everything is bounded, so analysis terminates on any program; a program
// too large to analyse in the work budget gets no proofs (all accesses checked). Values that no
// fact can depend on (a backward relevance pass finds them: accumulators, stored values nobody
// loads into an address) are kept as unknown, so they neither cost work nor keep loops iterating.
//
// Stack offsets in facts are relative to the frame pointer r10 of the function doing the access
// (its own frame is [-512, 0), its callers' frames are above 0): a function is entered at different
// depths, so region-base offsets would differ from call to call.
import { disasmInsn } from '../disasm.js';
import type { Classified, Insn, JmpOp } from '../opcodes.js';
import type { Program } from '../program.js';
import { FIRST_REGION_BASE, PAGE } from '../../runtime/regions.js';
import { MAX_CALL_DEPTH, STACK_FRAME, STACK_SIZE } from '../../runtime/layout.js';
import { Affine } from './affine.js';
import { buildCfg, jumpTarget, type Cfg } from './cfg.js';
import { dominates, functionGraph, type FunctionGraph } from './dominators.js';
import type { AccessFact, ProgramFacts, Verdict } from './facts.js';
import {
  binary, bswap, clearCaches, constant, isConst, join as joinNum, NEGATE, neg, refine, sext, top, trunc, urange,
  zext, meet, type BinaryOp, type Cond, type Num,
} from './interval.js';
import {
  bounds, joinStates, LEN, MIXED, MIXED_TOP, NVARS, pointer, reduce, scalar, SCALAR_TOP, STACK_REGION, State, stateEqual, stateLeq,
  UNINIT, widenStates, type Slot, type Thresholds, type Val,
} from './state.js';
import { checkStructure, VerifyError, type Diagnostic } from './structural.js';
import { Zone } from './zone.js';

export interface AnalysisRegion {
  name: string;
  /** Size in bytes when known (for 'mem': the input size; otherwise unknown). */
  size?: number;
  writable: boolean;
}

export interface AnalysisOptions {
  /** Data sections and host regions with their sizes; 'mem' with its size when known. */
  regions: AnalysisRegion[];
  /** Size of the mem input (overrides a size given for 'mem' in `regions`). */
  memSize?: number;
  /** Helper ids the runtime provides: a call returns an unknown scalar in r0 and clobbers r1-r5. */
  helpers: ReadonlySet<number>;
  /** Most iterations a loop may run to count as bounded (default 2^20). */
  maxBoundedTrips?: number;
}

export interface AnalysisResult {
  facts: ProgramFacts;
  diagnostics: Diagnostic[];
}

/** Runs the structural verifier, then the analysis; throws VerifyError on any problem. */
export function verifyProgram(program: Program, opts: AnalysisOptions): ProgramFacts {
  const structural = checkStructure(program, { helpers: opts.helpers });
  if (structural.length > 0) throw new VerifyError(structural);
  const { facts, diagnostics } = analyze(program, opts);
  if (diagnostics.length > 0) throw new VerifyError(diagnostics);
  return facts;
}

/**
 * Facts and load-time rejections for a program that passed the structural verifier (on other
 * programs it still terminates, but its verdicts mean nothing).
 */
export function analyze(program: Program, opts: AnalysisOptions): AnalysisResult {
  // Values interned by earlier analyses would only take memory.
  clearCaches();
  const a = new Analyzer(program, opts);
  try {
    a.run();
  } catch (e) {
    if (!(e instanceof GiveUp)) throw e;
    return { facts: a.givenUp(), diagnostics: [] };
  }
  return a.result();
}

// ---- internals ----

const STACK = STACK_REGION;
const MEM = 1;
const FP = 10;
const WIDEN_DELAY = 0;
const MAX_REDUCED_VISITS = 12;
const MAX_WORK = 3_000_000;
const DEFAULT_MAX_TRIPS = 1 << 20;
const SLOTS_PER_FRAME = STACK_FRAME / 8;
const STACK_LO = -STACK_FRAME;
const MEM_MAX = 0xffffffff;
/** Relevance masks: bit r for register r, and one bit for the contents of memory. */
const REL_MEM = 1 << 11;
const REL_FP = 1 << FP;
/** r1-r5 (helper and local-call arguments) and r0-r5 (what a call defines or clobbers). */
const REL_ARGS = 0x3e;
const REL_CALL = 0x3f;
const REL_ALL = 0xfff;

interface RegionInfo {
  name: string;
  size?: number;
  writable: boolean;
}

class GiveUp extends Error {}

const COND_OF: Record<JmpOp, Cond> = {
  jeq: 'eq', jne: 'ne', jgt: 'ugt', jge: 'uge', jlt: 'ult', jle: 'ule',
  jsgt: 'sgt', jsge: 'sge', jslt: 'slt', jsle: 'sle', jset: 'set',
};
const BIN_OF: Partial<Record<string, BinaryOp>> = {
  add: 'add', sub: 'sub', mul: 'mul', div: 'udiv', sdiv: 'sdiv', mod: 'umod', smod: 'smod',
  or: 'or', and: 'and', lsh: 'lsh', rsh: 'rsh', xor: 'xor', arsh: 'arsh',
};

/** What one access was found to be in one context. */
interface Access {
  verdict: Verdict;
  region?: string;
  offset?: { min: number; max: number };
  /** Built only when recorded (most judgements during the ascending passes are thrown away). */
  reason: () => string;
  rule?: 'always-faults' | 'write-readonly';
}

interface Ctx {
  fn: number;
  depth: number;
  record: boolean;
  graph: FunctionGraph;
  exit?: State;
  /** When set, what recording would do is appended here (to be replayed by the descending pass). */
  capture?: Effect[];
}

/** Something a transfer did besides computing states: a fact, a diagnostic, an exit state. */
type Effect =
  | { k: 'note'; i: number; acc: Access; size: number; write: boolean }
  | { k: 'diag'; i: number; rule: string; text: string }
  | { k: 'add'; i: number; n: Num }
  | { k: 'exit'; s: State }
  /** A local call: recording it records the callee for that entry state (from its cache). */
  | { k: 'call'; fn: number; entry: State; depth: number };

/** One analysed call: the callee's ascending phase, its exit state, whether its facts are in. */
interface CallResult {
  entry: State;
  exit: State | undefined;
  recorded: boolean;
  /** What the descending pass would have recorded (kept while not recorded yet), to replay. */
  effects?: Effect[];
}

/** A block transferred exactly once in the ascending phase: the states it read and what it did. */
interface Once {
  /** The entry state (entry block only), then the state on each incoming edge, by predecessor. */
  inputs: (State | undefined)[];
  effects: Effect[];
}

/** The ascending phase's result: states on edges (key: to * blocks + from), blocks run once. */
interface Ascent {
  edge: Map<number, State>;
  once: Map<number, Once>;
}

class Analyzer {
  private readonly prog: Program;
  private readonly opts: AnalysisOptions;
  private readonly cfg: Cfg;
  private readonly cls: (Classified | undefined)[];
  private readonly regions: RegionInfo[];
  private readonly relocAt = new Map<number, number>();
  private readonly thresholds: Thresholds;
  private readonly graphs = new Map<number, FunctionGraph>();
  private readonly cache = new Map<number, CallResult[]>();
  private readonly facts = new Map<number, AccessFact>();
  private readonly diags = new Map<string, Diagnostic>();
  /** Per add/sub-immediate slot: the destination's value before it, over all recorded visits. */
  private readonly addInfo = new Map<number, Num>();
  private readonly memSize?: number;
  private work = 0;
  /**
   * Per slot: what the facts may still depend on after the instruction there (see relevance()).
   * A register outside it holds a value no fact can observe: the analysis keeps it as unknown.
   */
  private readonly relAfter: Uint16Array;
  /** Per block: the same at its start. */
  private readonly relIn: Uint16Array;
  /** Per slot: 1 where the instruction only computes a faint register (it is not run). */
  private readonly faintDef: Uint8Array;
  /** Per function: the same at its entry (for the arguments and the caller's memory). */
  private readonly relEntry: number[];

  constructor(prog: Program, opts: AnalysisOptions) {
    this.prog = prog;
    this.opts = opts;
    this.cfg = buildCfg(prog);
    this.cls = this.cfg.cls;
    const memSpec = opts.regions.find((r) => r.name === 'mem');
    this.memSize = opts.memSize ?? memSpec?.size;
    this.regions = [
      { name: 'stack', size: STACK_SIZE, writable: true },
      { name: 'mem', size: this.memSize, writable: true },
      ...prog.data.map((d) => ({ name: d.name, size: d.bytes.length, writable: d.writable })),
      ...opts.regions.filter((r) => r.name !== 'mem' && !prog.data.some((d) => d.name === r.name)),
    ];
    for (const r of prog.relocs) this.relocAt.set(r.slot, r.section);
    this.thresholds = this.collectThresholds();
    this.relAfter = new Uint16Array(prog.insns.length + 2);
    this.relIn = new Uint16Array(this.cfg.blocks.length);
    this.faintDef = new Uint8Array(prog.insns.length + 2);
    this.relEntry = new Array<number>(this.cfg.functions.length).fill(0);
    if (this.cfg.entry >= 0) this.relevance();
  }

  run(): void {
    const entryFn = this.cfg.entry;
    if (entryFn < 0) return;
    const s = this.entryState();
    this.analyzeFn(entryFn, s, 0, true);
    this.findBoundedLoops();
  }

  result(): AnalysisResult {
    const access = new Map<number, AccessFact>();
    for (const b of this.cfg.blocks) {
      if (!b.reachable) continue;
      for (let i = b.start; i <= b.last; i++) {
        const c = this.cls[i];
        if (c === undefined || !isMemory(c)) continue;
        const f = this.facts.get(i);
        access.set(i, f ?? {
          slot: i, verdict: 'check', size: c.size ?? 8, write: c.form !== 'ldx',
          reason: 'no analysed path reaches this instruction',
        });
      }
    }
    const facts: ProgramFacts = { access, boundedBackEdges: this.bounded, assumedSizes: this.assumed() };
    const diagnostics = [...this.diags.values()].sort((x, y) => x.index - y.index);
    return { facts, diagnostics };
  }

  givenUp(): ProgramFacts {
    const access = new Map<number, AccessFact>();
    for (const b of this.cfg.blocks) {
      if (!b.reachable) continue;
      for (let i = b.start; i <= b.last; i++) {
        const c = this.cls[i];
        if (c === undefined || !isMemory(c)) continue;
        access.set(i, { slot: i, verdict: 'check', size: c.size ?? 8, write: c.form !== 'ldx', reason: 'the program is too large to analyse within the work limit' });
      }
    }
    return { access, boundedBackEdges: new Set(), assumedSizes: this.assumed() };
  }

  private assumed(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.memSize !== undefined) out.mem = this.memSize;
    for (const r of this.regions.slice(2 + this.prog.data.length)) if (r.size !== undefined) out[r.name] = r.size;
    return out;
  }

  private readonly bounded = new Set<number>();

  // ---- states ----

  private entryState(): State {
    const regs: Val[] = new Array<Val>(NVARS).fill(UNINIT);
    const len = this.memSize !== undefined ? constant(64, BigInt(this.memSize)) : urange(64, 0n, BigInt(MEM_MAX));
    regs[1] = pointer(MEM, constant(64, 0n));
    regs[2] = scalar(len);
    regs[FP] = pointer(STACK, constant(64, 0n));
    regs[LEN] = scalar(len);
    const zone = new Zone(NVARS);
    zone.addConstraint(2, LEN, 0);
    zone.addConstraint(LEN, 2, 0);
    const row = new Array<number>(NVARS).fill(0);
    row[2] = 1;
    row[LEN] = -1;
    const aff = new Affine(NVARS).add(row, 0) ?? new Affine(NVARS);
    return new State(regs, new Array<Slot | undefined>(SLOTS_PER_FRAME).fill(undefined), zone, aff);
  }

  private graph(fn: number): FunctionGraph {
    let g = this.graphs.get(fn);
    if (g === undefined) {
      g = functionGraph(this.cfg, fn);
      this.graphs.set(fn, g);
    }
    return g;
  }

  // ---- relevance ----

  /**
   * Which values the facts can depend on, backwards from what they read: bases of accesses,
   * operands of branches (they decide reachability and refine), arguments of helpers, and values
   * that flow into those (through registers, memory and calls). Add/sub-immediate destinations on
   * cycles count too (termination facts read their values). Anything else (an accumulator nobody
   * compares or dereferences) is faint: the analysis forgets it, which is sound (less is known)
   * and costs no fact, while its ever-growing ranges would keep loops iterating and states unequal.
   * Calls are summarised per function: its exit needs what any call site needs after the call.
   */
  private relevance(): void {
    const fns = this.cfg.functions;
    const relExit = new Array<number>(fns.length).fill(0);
    const callers = new Map<number, number[]>();
    for (const f of fns) for (const cs of f.calls) {
      const l = callers.get(cs.callee);
      if (l === undefined) callers.set(cs.callee, [f.id]);
      else l.push(f.id);
    }
    // Callees first (recursion is rejected, so this settles quickly): a function is redone when
    // what its exit or one of its callees' entries needs grew.
    const dirty = new Set<number>();
    for (let k = fns.length - 1; k >= 0; k--) if (fns[k].reachable) dirty.add(k);
    while (dirty.size > 0) {
      const fn: number = dirty.values().next().value ?? 0;
      dirty.delete(fn);
      const e = this.relevanceOf(fn, relExit[fn]);
      if (e !== this.relEntry[fn]) {
        this.relEntry[fn] = e;
        for (const c of callers.get(fn) ?? []) if (fns[c].reachable) dirty.add(c);
      }
      for (const cs of fns[fn].calls) {
        const need = this.relAfter[cs.slot] & (1 | REL_MEM);
        if ((relExit[cs.callee] | need) !== relExit[cs.callee] && fns[cs.callee].reachable) {
          relExit[cs.callee] |= need;
          dirty.add(cs.callee);
        }
      }
    }
  }

  /** Backward fixpoint over one function (a worklist in postorder); returns what its entry needs. */
  private relevanceOf(fn: number, atExit: number): number {
    const g = this.graph(fn);
    const blocks = this.cfg.blocks;
    const insns = this.prog.insns;
    const cyclic = new Set<number>();
    for (const c of g.cycleOf.values()) for (const b of c) cyclic.add(b);
    const starts: number[] = [];
    // Popped from the end: reverse postorder pushed means postorder popped.
    const work: number[] = [...g.rpo];
    const queued = new Set<number>(work);
    while (work.length > 0) {
      const b = work.pop() ?? 0;
      queued.delete(b);
      const blk = blocks[b];
      let R = 0;
      for (const succ of blk.succs) if (g.order.has(succ)) R |= this.relIn[succ];
      starts.length = 0;
      for (let i = blk.start; i <= blk.last; i += this.cls[i]?.form === 'lddw' ? 2 : 1) starts.push(i);
      const cyc = cyclic.has(b);
      for (let k = starts.length - 1; k >= 0; k--) {
        const i = starts[k];
        const c = this.cls[i];
        if (c === undefined) { R = REL_ALL; continue; }
        if (c.form === 'exit') R = atExit;
        R |= REL_FP;
        this.relAfter[i] = R;
        const pure = c.form === 'alu' || c.form === 'neg' || c.form === 'end' || c.form === 'lddw';
        const counter = cyc && c.form === 'alu' && !c.srcReg && (c.alu === 'add' || c.alu === 'sub');
        this.faintDef[i] = pure && !counter && (R & (1 << insns[i].dst)) === 0 ? 1 : 0;
        const callee = c.form === 'call' && c.local ? this.relEntry[this.cfg.fnOfSlot[i + 1 + insns[i].imm]] ?? REL_ALL : 0;
        R = relBefore(R, insns[i], c, cyc, callee);
      }
      R |= REL_FP;
      if (R !== this.relIn[b]) {
        this.relIn[b] = R;
        for (const p of blk.preds) if (g.order.has(p) && !queued.has(p)) { queued.add(p); work.push(p); }
      }
    }
    return this.relIn[g.rpo[0]];
  }

  // ---- fixpoint ----

  /** The state after the function returns (join over its exits), or undefined if it never does. */
  private analyzeFn(fn: number, entry: State, depth: number, record: boolean, capture?: Effect[]): State | undefined {
    return this.descend(fn, entry, depth, record, this.ascend(fn, entry, depth), capture);
  }

  /**
   * Ascending phase: chaotic iteration with a worklist ordered by reverse postorder, widening at
   * loop heads, up to a post-fixpoint. Also keeps, for each block transferred exactly once (most
   * code outside loops), its input edges and the effects its transfer would have recorded.
   */
  private ascend(fn: number, entry: State, depth: number): Ascent {
    const graph = this.graph(fn);
    const ctx: Ctx = { fn, depth, record: false, graph };
    const blocks = this.cfg.blocks;
    const entryBlock = graph.rpo[0];
    const nb = blocks.length;
    const inState = new Map<number, State>();
    const edge = new Map<number, State>();
    const visits = new Map<number, number>();
    const once = new Map<number, Once>();
    const entryOf = (b: number): State | undefined => (b === entryBlock ? entry : undefined);
    const pending = new Set<number>([entryBlock]);
    while (pending.size > 0) {
      let b = -1;
      let best = Infinity;
      for (const x of pending) {
        const o = graph.order.get(x) ?? Infinity;
        if (o < best) { best = o; b = x; }
      }
      pending.delete(b);
      const preds = blocks[b].preds;
      let s = gatherEdges(b, preds, nb, entryOf(b), graph.wideningPoints.has(b), edge);
      if (s === undefined) continue;
      const old = inState.get(b);
      if (old !== undefined) {
        once.delete(b);
        if (stateLeq(s, old)) continue;
        if (graph.wideningPoints.has(b)) {
          const v = (visits.get(b) ?? 0) + 1;
          visits.set(b, v);
          s = v > WIDEN_DELAY ? widenStates(old, s, this.thresholdsAt(graph, b)) : joinStates(old, s, true);
        } else {
          s = joinStates(old, s);
        }
      }
      s = s.clone();
      // Reduction after widening could undo it forever; late visits of a loop head skip it.
      // (A block with one predecessor gets an already reduced state.)
      if (preds.length > 1 && (visits.get(b) ?? 0) <= MAX_REDUCED_VISITS && !reduce(s)) continue;
      inState.set(b, s);
      if (old === undefined) {
        const effects: Effect[] = [];
        once.set(b, { inputs: inputsOf(b, preds, nb, edge, entryOf(b)), effects });
        ctx.capture = effects;
      }
      this.transfer(ctx, b, s.clone(), edge);
      ctx.capture = undefined;
      for (const succ of blocks[b].succs) if (graph.order.has(succ)) pending.add(succ);
    }
    // Inputs recorded before a predecessor changed its edge again no longer describe the block.
    for (const [b, o] of once) if (!sameInputs(o.inputs, inputsOf(b, blocks[b].preds, nb, edge, entryOf(b)))) once.delete(b);
    return { edge, once };
  }

  /**
   * Descending phase: recompute each block from its predecessors without widening; every iterate
   * is still a sound invariant, usually a tighter one. This pass records. A block whose input
   * edges are the very states of its only ascending transfer has the same outputs: its recorded
   * effects are replayed instead of running it again; recomputed edges equal to the old ones
   * keep the old objects so that this holds downstream too (after a loop that narrowing did not
   * change, the rest of the function is not re-run).
   */
  private descend(fn: number, entry: State, depth: number, record: boolean, asc: Ascent, capture?: Effect[]): State | undefined {
    const graph = this.graph(fn);
    const ctx: Ctx = { fn, depth, record, graph, capture };
    const blocks = this.cfg.blocks;
    const entryBlock = graph.rpo[0];
    const nb = blocks.length;
    // The ascent is not used again: its edges are updated in place.
    const edge = asc.edge;
    for (const b of graph.rpo) {
      const preds = blocks[b].preds;
      const e = b === entryBlock ? entry : undefined;
      const o = asc.once.get(b);
      if (o !== undefined && sameInputs(o.inputs, inputsOf(b, preds, nb, edge, e))) {
        this.replay(ctx, o.effects);
        continue;
      }
      const s0 = gatherEdges(b, preds, nb, e, graph.wideningPoints.has(b), edge);
      if (s0 === undefined) {
        for (const succ of blocks[b].succs) edge.delete(succ * nb + b);
        continue;
      }
      const s = s0.clone();
      if (preds.length > 1 && !reduce(s)) {
        for (const succ of blocks[b].succs) edge.delete(succ * nb + b);
        continue;
      }
      this.transfer(ctx, b, s, edge, true);
    }
    return ctx.exit;
  }

  /** Runs block b on s and stores the states on its outgoing edges (keeping equal old ones). */
  private transfer(ctx: Ctx, b: number, s: State, edge: Map<number, State>, keepEqual = false): void {
    const outs = this.runBlock(ctx, b, s);
    const nb = this.cfg.blocks.length;
    for (const succ of this.cfg.blocks[b].succs) {
      const k = succ * nb + b;
      const o = outs.get(succ);
      if (o === undefined) { edge.delete(k); continue; }
      forgetFaint(o, this.relIn[succ]);
      if (keepEqual) {
        const old = edge.get(k);
        if (old !== undefined && stateEqual(old, o)) continue;
      }
      edge.set(k, o);
    }
  }

  /** Does what a captured transfer did to the recorded facts and the function's exit state. */
  private replay(ctx: Ctx, effects: readonly Effect[]): void {
    for (const f of effects) {
      if (f.k === 'exit') ctx.exit = ctx.exit === undefined ? f.s : joinStates(ctx.exit, f.s);
      ctx.capture?.push(f);
    }
    if (ctx.record) this.record(effects);
  }

  /** Records what captured transfers would have recorded, in their order. */
  private record(effects: readonly Effect[]): void {
    for (const f of effects) {
      switch (f.k) {
        case 'note': this.note(f.i, f.acc, f.size, f.write); break;
        case 'diag': this.diag(f.i, f.rule, f.text); break;
        case 'add': this.recordAdd(f.i, f.n); break;
        case 'call': this.call(f.fn, f.entry, f.depth, true); break;
        case 'exit': break;
      }
    }
  }

  /** Runs one block; returns the state on each outgoing edge that can be taken. */
  private runBlock(ctx: Ctx, b: number, s: State): Map<number, State> {
    const blk = this.cfg.blocks[b];
    const out = new Map<number, State>();
    const insns = this.prog.insns;
    let cur: State | undefined = s;
    for (let i = blk.start; i <= blk.last && cur !== undefined; i++) {
      const c = this.cls[i];
      if (c === undefined) return out;
      if (++this.work > MAX_WORK) throw new GiveUp();
      if (i === blk.last && (c.form === 'jcond' || c.form === 'ja' || c.form === 'exit')) break;
      if (this.faintDef[i] === 1) {
        const insn = insns[i];
        const ptrs = c.form === 'lddw' ? this.relocAt.has(i) : c.form === 'alu' && (isTopPtr(cur.regs[insn.dst]) || (c.srcReg && isTopPtr(cur.regs[insn.src])));
        cur.setReg(insn.dst, ptrs ? MIXED_TOP : SCALAR_TOP);
      } else {
        cur = this.step(ctx, i, insns[i], c, cur);
        if (c.form === 'call' && cur !== undefined && (this.relAfter[i] & 1) === 0) cur.setReg(0, SCALAR_TOP);
      }
      if (c.form === 'lddw') i++;
    }
    if (cur === undefined) return out;
    const i = blk.last;
    const c = this.cls[i];
    if (c === undefined) return out;
    const fallNext = blk.end < this.cfg.functions[blk.fn].end ? this.cfg.blockOfSlot[blk.end] : -1;
    if (c.form === 'exit') {
      ctx.exit = ctx.exit === undefined ? cur : joinStates(ctx.exit, cur);
      ctx.capture?.push({ k: 'exit', s: cur });
      return out;
    }
    if (c.form === 'ja') {
      const t = jumpTarget(insns[i], i, c);
      if (t !== undefined) out.set(this.cfg.blockOfSlot[t], cur);
      return out;
    }
    if (c.form === 'jcond') {
      const t = jumpTarget(insns[i], i, c);
      const tb = t === undefined ? -1 : this.cfg.blockOfSlot[t];
      const taken = this.branch(cur, insns[i], c, true);
      const fall = this.branch(cur, insns[i], c, false);
      // Both edges can lead to the same block (a jump to the next slot).
      if (tb === fallNext) {
        const both = taken && fall ? joinStates(taken, fall) : taken ?? fall;
        if (both) out.set(tb, both);
        return out;
      }
      if (taken && tb >= 0) out.set(tb, taken);
      if (fall && fallNext >= 0) out.set(fallNext, fall);
      return out;
    }
    if (fallNext >= 0) out.set(fallNext, cur);
    return out;
  }

  // ---- instructions ----

  private step(ctx: Ctx, i: number, insn: Insn, c: Classified, s: State): State | undefined {
    switch (c.form) {
      case 'alu': {
        if ((ctx.record || ctx.capture) && !c.srcReg && (c.alu === 'add' || c.alu === 'sub')) this.effect(ctx, { k: 'add', i, n: s.regs[insn.dst].n });
        // A result computed from a possible difference of addresses (other than a move of something
        // else over it) may still be one: it must never become an offset into one region.
        const move = c.alu === 'mov' || c.alu === 'movsx';
        const mixed = (!move && s.regs[insn.dst].region === MIXED) || (c.srcReg && s.regs[insn.src].region === MIXED);
        this.alu(s, insn, c);
        const d = s.regs[insn.dst];
        if (mixed && d.kind === 'scalar' && d.region !== MIXED) s.regs[insn.dst] = { kind: 'scalar', region: MIXED, n: d.n };
        return s;
      }
      case 'neg': {
        const d = s.regs[insn.dst];
        const n = c.wide ? neg(d.n) : zext(neg(trunc(d.n, 32)), 64);
        const exact = c.wide && d.kind === 'scalar' && d.n.smin > top(64).smin;
        const old = s.aff;
        s.setReg(insn.dst, scalar(d.kind === 'scalar' ? n : c.wide ? top(64) : zext(top(32), 64)));
        if (exact) {
          // x := -x: scale by -1 (an affine map the equalities can follow).
          s.aff = old.assign(insn.dst, unitCoef(insn.dst, -1), 0);
        }
        return s;
      }
      case 'end': {
        const d = s.regs[insn.dst];
        const bits = insn.imm;
        if (c.end === 'le' && bits === 64) return s; // identity on a little-endian machine
        const base = d.kind === 'scalar' ? d.n : top(64);
        const n = c.end === 'le' ? zext(trunc(base, bits), 64) : bswap(base, bits);
        s.setReg(insn.dst, scalar(n));
        return s;
      }
      case 'lddw': {
        const section = this.relocAt.get(i);
        const value = (BigInt.asUintN(32, BigInt(this.prog.insns[i + 1]?.imm ?? 0)) << 32n) | BigInt.asUintN(32, BigInt(insn.imm));
        if (section !== undefined) {
          const addend = this.prog.relocs.find((r) => r.slot === i)?.addend ?? 0;
          s.setReg(insn.dst, pointer(2 + section, constant(64, BigInt(addend))));
        } else {
          s.setReg(insn.dst, scalar(constant(64, value)));
        }
        return s;
      }
      case 'ldx': case 'st': case 'stx': case 'atomic':
        return this.memory(ctx, i, insn, c, s);
      case 'call':
        if (c.local) return this.localCall(ctx, i, insn, s);
        return this.helperCall(s);
      case 'callx':
        return this.helperCall(s);
      default:
        return s;
    }
  }

  private alu(s: State, insn: Insn, c: Classified): void {
    const d = insn.dst;
    const D = s.regs[d];
    const S: Val = c.srcReg ? s.regs[insn.src] : scalar(constant(64, BigInt(insn.imm)));
    const op = c.alu ?? 'mov';
    if (c.wide) {
      this.alu64(s, d, D, S, op, c, c.srcReg ? insn.src : -1, insn);
      return;
    }
    // ALU32: operate on the low halves, zero-extend the result.
    const a = D.kind === 'scalar' ? trunc(D.n, 32) : top(32);
    const b = S.kind === 'scalar' ? trunc(S.n, 32) : top(32);
    let r: Num;
    if (op === 'mov') r = b;
    else if (op === 'movsx') r = sext(trunc(b, c.signExtend ?? 32), 32);
    else r = binary(BIN_OF[op] ?? 'add', a, b);
    const n = zext(r, 64);
    const exactMov = op === 'mov' && S.kind === 'scalar' && S.n.umax <= 0xffffffffn && c.srcReg;
    const addK = (op === 'add' || op === 'sub') && !c.srcReg && D.kind === 'scalar' ? BigInt(op === 'add' ? insn.imm : -insn.imm) : undefined;
    const exactAdd = addK !== undefined && D.n.umax <= 0xffffffffn && D.n.umin + addK >= 0n && D.n.umax + addK <= 0xffffffffn;
    if (exactAdd && addK !== undefined) {
      s.regs[d] = scalar(n);
      this.relAddConst(s, d, d, Number(addK));
      return;
    }
    s.setReg(d, scalar(n));
    if (exactMov) this.relAddConst(s, d, insn.src, 0);

  }

  /** x := y + k in both relational domains (the caller proved it exact). */
  private relAddConst(s: State, x: number, y: number, k: number): void {
    s.wzone().assignPlus(x, y, k);
    const coef = UNIT_COEF[y];
    if (x !== y) s.aff = s.aff.forget(x);
    s.aff = s.aff.assign(x, coef, k);
  }

  private alu64(s: State, d: number, D: Val, S: Val, op: string, c: Classified, src: number, insn: Insn): void {
    const M63 = 2n ** 63n;
    const noOverflow = (lo: bigint, hi: bigint): boolean => lo >= -M63 && hi < M63;
    if (op === 'mov') {
      s.regs[d] = S;
      if (src < 0) s.forgetRel(d);
      else if (S.kind === 'uninit') s.forgetRel(d);
      else if (src !== d) this.relAddConst(s, d, src, 0);
      return;
    }
    if (op === 'movsx') {
      const b = S.kind === 'scalar' ? S.n : top(64);
      s.setReg(d, scalar(sext(trunc(b, c.signExtend ?? 64), 64)));
      return;
    }
    if (op === 'add' || op === 'sub') {
      const sub = op === 'sub';
      // Which operand carries the region (pointer +/- scalar, scalar + pointer, pointer - pointer).
      let res: Val;
      const mixed = D.region === MIXED || S.region === MIXED;
      if (mixed && (D.kind === 'ptr' || S.kind === 'ptr')) res = MIXED_TOP;
      else if (D.kind === 'ptr' && S.kind === 'scalar') res = pointer(D.region, binary(op, D.n, S.n));
      else if (!sub && D.kind === 'scalar' && S.kind === 'ptr') res = pointer(S.region, binary('add', D.n, S.n));
      else if (sub && D.kind === 'ptr' && S.kind === 'ptr' && D.region === S.region) res = scalar(binary('sub', D.n, S.n));
      else if (sub && D.kind === 'ptr' && S.kind === 'ptr') res = MIXED_TOP;
      else if (D.kind === 'scalar' && S.kind === 'scalar') res = mixed ? { kind: 'scalar', region: MIXED, n: binary(op, D.n, S.n) } : scalar(binary(op, D.n, S.n));
      else res = SCALAR_TOP;
      const tracked = res !== SCALAR_TOP && res !== MIXED_TOP && D.kind !== 'uninit' && S.kind !== 'uninit';
      const lo = sub ? D.n.smin - S.n.smax : D.n.smin + S.n.smin;
      const hi = sub ? D.n.smax - S.n.smin : D.n.smax + S.n.smax;
      const exact = tracked && noOverflow(lo, hi);
      if (!exact) { s.setReg(d, res); return; }
      const sConst = S.kind === 'scalar' && isConst(S.n) && S.n.smin >= -(2n ** 50n) && S.n.smin <= 2n ** 50n;
      if (sConst) {
        s.regs[d] = res;
        this.relAddConst(s, d, d, Number(sub ? -S.n.smin : S.n.smin));
        return;
      }
      const dConst = !sub && isConst(D.n) && D.n.smin >= -(2n ** 50n) && D.n.smin <= 2n ** 50n;
      if (dConst && src >= 0 && src !== d) {
        s.regs[d] = res;
        this.relAddConst(s, d, src, Number(D.n.smin));
        return;
      }
      s.regs[d] = res;
      if (s.zone.mentions(d)) s.wzone().forget(d);
      if (src >= 0 && src !== d) {
        const coef = new Array<number>(NVARS).fill(0);
        coef[d] = 1;
        coef[src] = sub ? -1 : 1;
        s.aff = s.aff.assign(d, coef, 0);
      } else {
        s.aff = s.aff.forget(d);
      }
      return;
    }
    const bop = BIN_OF[op];
    if (D.kind === 'scalar' && S.kind === 'scalar' && isConst(S.n) && !c.srcReg) {
      const k = S.n.umin;
      const bits = D.n.t.v | D.n.t.m;
      // x | k and x ^ k on bits x never has add k; x & k keeping every bit x may have is a move.
      if ((op === 'or' || op === 'xor') && (bits & k) === 0n && k <= 2n ** 50n) {
        s.regs[d] = scalar(binary(op, D.n, S.n));
        this.relAddConst(s, d, d, Number(k));
        return;
      }
      if (op === 'and' && (bits & ~k) === 0n) return;
      // x >> k, x & k, x / k, x % k of a non-negative x never exceed x: keep x's upper bounds.
      const shrinks = (op === 'rsh' || (op === 'and' && k < 2n ** 63n) || ((op === 'div' || op === 'mod') && k > 0n));
      if (shrinks && D.n.smin >= 0n) {
        const z = s.zone.clone();
        s.setReg(d, scalar(binary(bop ?? 'rsh', D.n, S.n)));
        s.setZone(keepUpper(z, d));
        return;
      }
      // x & -2^j rounds down: x - (2^j - 1) <= result <= x, for values that stay non-negative.
      const low = -BigInt.asIntN(64, k);
      if (op === 'and' && low > 0n && low <= 2n ** 20n && (low & (low - 1n)) === 0n && D.n.smin >= 0n && D.n.smax < 2n ** 52n) {
        const old = s.zone.clone();
        const n = binary('and', D.n, S.n);
        s.setReg(d, scalar(n));
        // Relate the new value to the old one through a copy in the zone (the old value is gone).
        s.setZone(roundDown(old, d, Number(low) - 1));
        return;
      }
    }
    if (D.kind !== 'scalar' || S.kind !== 'scalar' || bop === undefined) {
      s.setReg(d, SCALAR_TOP);
      return;
    }
    const n = binary(bop, D.n, S.n);
    // x := k * x (mul or left shift by a constant) keeps the equalities when nothing overflows.
    let scale: bigint | undefined;
    if (isConst(S.n) && op === 'mul') scale = S.n.smin;
    if (isConst(S.n) && op === 'lsh' && S.n.umin < 62n) scale = 1n << S.n.umin;
    if (scale !== undefined && scale !== 0n && scale >= -(2n ** 20n) && scale <= 2n ** 20n
      && noOverflow(D.n.smin * scale < D.n.smax * scale ? D.n.smin * scale : D.n.smax * scale, D.n.smin * scale > D.n.smax * scale ? D.n.smin * scale : D.n.smax * scale)) {
      const old = s.aff;
      s.setReg(d, scalar(n));
      s.aff = old.assign(d, unitCoef(d, Number(scale)), 0);
      return;
    }
    s.setReg(d, scalar(n));
  }

  // ---- branches ----

  /** The state on one edge of a conditional jump, or undefined when that edge cannot be taken. */
  private branch(s0: State, insn: Insn, c: Classified, taken: boolean): State | undefined {
    const cond0 = COND_OF[c.jmp ?? 'jeq'];
    const cond = taken ? cond0 : NEGATE[cond0];
    const s = s0.clone();
    const x = insn.dst;
    const y = c.srcReg ? insn.src : -1;
    const A = s.regs[x];
    const B: Val = y >= 0 ? s.regs[y] : scalar(constant(64, BigInt(insn.imm)));
    const numeric = (A.kind === 'scalar' && B.kind === 'scalar') || (A.kind === 'ptr' && B.kind === 'ptr' && A.region === B.region);
    if (!numeric) return s;
    const ptrs = A.kind === 'ptr';
    // Pointers into one region compare like their offsets while addresses cannot wrap.
    const safePtr = (v: Val): boolean => v.n.smin >= -BigInt(FIRST_REGION_BASE) && v.n.smax <= 0x100000000n;
    if (ptrs && cond !== 'eq' && cond !== 'ne' && !(safePtr(A) && safePtr(B))) return s;
    // A 32-bit compare of pointers sees the low halves of addresses, not offsets; jset sees bits.
    if (ptrs && (cond0 === 'set' || !c.wide)) return s;
    let an: Num, bn: Num;
    if (c.wide) {
      const r = refine(cond, A.n, B.n);
      if (r === undefined) return undefined;
      [an, bn] = r;
    } else {
      const r = refine(cond, trunc(A.n, 32), trunc(B.n, 32));
      if (r === undefined) return undefined;
      const a2 = withLow(A.n, r[0]);
      const b2 = withLow(B.n, r[1]);
      if (a2 === undefined || b2 === undefined) return undefined;
      [an, bn] = [a2, b2];
    }
    s.regs[x] = { ...A, n: an };
    if (y >= 0) s.regs[y] = { ...B, n: bn };
    // Relations: valid where the compared quantities mean the same as signed integers.
    const small = (n: Num): boolean => n.umax < 2n ** 31n;
    const relOk = c.wide ? true : small(an) && small(bn);
    let relAdded = false;
    if (relOk && y >= 0 && y !== x) {
      const unsignedOk = ptrs || (an.umax < 2n ** 63n && bn.umax < 2n ** 63n);
      const z = s.wzone();
      let ok = true;
      switch (cond) {
        case 'eq': {
          ok = z.addConstraint(x, y, 0) && z.addConstraint(y, x, 0);
          const row = new Array<number>(NVARS).fill(0);
          row[x] = 1;
          row[y] = -1;
          const aff = s.aff.add(row, 0);
          if (aff === undefined) return undefined;
          s.aff = aff;
          break;
        }
        case 'ult': if (unsignedOk) ok = z.addConstraint(x, y, -1); break;
        case 'ule': if (unsignedOk) ok = z.addConstraint(x, y, 0); break;
        case 'ugt': if (unsignedOk) ok = z.addConstraint(y, x, -1); break;
        case 'uge': if (unsignedOk) ok = z.addConstraint(y, x, 0); break;
        case 'slt': ok = z.addConstraint(x, y, -1); break;
        case 'sle': ok = z.addConstraint(x, y, 0); break;
        case 'sgt': ok = z.addConstraint(y, x, -1); break;
        case 'sge': ok = z.addConstraint(y, x, 0); break;
        default: break;
      }
      if (!ok) return undefined;
      relAdded = true;
    } else if (relOk && y < 0 && cond === 'eq' && isConst(bn) && bn.smin >= -(2n ** 50n) && bn.smin <= 2n ** 50n) {
      const aff = s.aff.add(unitCoef(x, 1), Number(bn.smin));
      if (aff === undefined) return undefined;
      s.aff = aff;
      relAdded = true;
    }
    // A narrowed register or a new relation can tighten the registers related to it.
    if ((relAdded || related(s, x) || (y >= 0 && related(s, y))) && !reduce(s)) return undefined;
    return s;
  }

  // ---- calls ----

  private helperCall(s: State): State {
    // A helper may write through any argument that can address the stack.
    const maybeStack = [1, 2, 3, 4, 5].some((r) => {
      const v = s.regs[r];
      return (v.kind === 'ptr' && v.region === STACK) || (v.kind === 'scalar' && mayAddressStack(v.n, 0));
    });
    if (maybeStack) havocStack(s);
    s.setReg(0, SCALAR_TOP);
    for (let r = 1; r <= 5; r++) s.setReg(r, UNINIT);
    return s;
  }

  private localCall(ctx: Ctx, i: number, insn: Insn, s: State): State | undefined {
    const target = i + 1 + insn.imm;
    const callee = this.cfg.fnOfSlot[target];
    if (ctx.depth + 1 >= MAX_CALL_DEPTH) return undefined; // faults with call-depth at run time
    const shift = (v: Val, by: number): Val => (v.kind === 'ptr' && v.region === STACK ? pointer(STACK, binary('add', v.n, constant(64, BigInt(by)))) : v);
    // Callee view: its frame below, the caller's frames (shifted up by one frame) above.
    const regs: Val[] = new Array<Val>(NVARS).fill(UNINIT);
    for (let r = 1; r <= 5; r++) regs[r] = shift(s.regs[r], STACK_FRAME);
    regs[FP] = pointer(STACK, constant(64, 0n));
    regs[LEN] = s.regs[LEN];
    const stack: (Slot | undefined)[] = [...new Array<Slot | undefined>(SLOTS_PER_FRAME).fill(undefined), ...s.stack.map((sl) => shiftSlot(sl, STACK_FRAME))];
    const zone = new Zone(NVARS);
    let aff = s.aff;
    for (const r of [0, 6, 7, 8, 9, FP]) aff = aff.forget(r);
    const keep = [1, 2, 3, 4, 5, LEN];
    const shiftOf = (r: number): number => (s.regs[r].kind === 'ptr' && s.regs[r].region === STACK ? STACK_FRAME : 0);
    for (const a of keep) {
      for (const b of keep) {
        if (a === b) continue;
        const v = s.zone.get(a, b);
        if (v !== Infinity) zone.addConstraint(a, b, v + shiftOf(a) - shiftOf(b));
      }
    }
    for (const r of keep) if (shiftOf(r) !== 0) aff = aff.assign(r, unitCoef(r, 1), STACK_FRAME);
    const need = this.relEntry[callee] ?? REL_ALL;
    const entry = new State(regs, (need & REL_MEM) !== 0 ? stack : stack.map(valueless), zone, aff);
    forgetFaint(entry, need);
    const exit = this.call(callee, entry, ctx.depth + 1, ctx.record);
    ctx.capture?.push({ k: 'call', fn: callee, entry, depth: ctx.depth + 1 });
    if (exit === undefined) return undefined;
    const after = s.clone();
    const r0 = exit.regs[0];
    after.setReg(0, r0.kind === 'scalar' ? r0 : SCALAR_TOP);
    for (let r = 1; r <= 5; r++) after.setReg(r, UNINIT);
    after.stack = exit.stack.slice(SLOTS_PER_FRAME).map((sl) => shiftSlot(sl, -STACK_FRAME));
    return after;
  }

  /**
   * The callee's exit state for one entry state. Cached by entry state: the analysis is shared by
   * the analysing and the recording visits of a call site; a first visit that does not record
   * keeps what its descending pass would have recorded, and the recording visit replays that.
   */
  private call(fn: number, entry: State, depth: number, record: boolean): State | undefined {
    const k = fn * (MAX_CALL_DEPTH + 1) + depth;
    let seen = this.cache.get(k);
    if (seen === undefined) {
      seen = [];
      this.cache.set(k, seen);
    }
    // Few distinct entry states per function and depth; equal ones are found by comparing states.
    let hit = seen.find((c) => stateEqual(c.entry, entry));
    if (hit === undefined) {
      const effects: Effect[] | undefined = record ? undefined : [];
      hit = { entry, exit: this.analyzeFn(fn, entry, depth, record, effects), recorded: record, effects };
      seen.push(hit);
      return hit.exit;
    }
    if (record && !hit.recorded) {
      hit.recorded = true;
      this.record(hit.effects ?? []);
      hit.effects = undefined;
    }
    return hit.exit;
  }

  // ---- memory ----

  private memory(ctx: Ctx, i: number, insn: Insn, c: Classified, s: State): State | undefined {
    const size = c.size ?? 8;
    const write = c.form !== 'ldx';
    const baseReg = c.form === 'ldx' ? insn.src : insn.dst;
    const base = s.regs[baseReg];
    const acc = this.judge(ctx, s, baseReg, base, insn.off, size, write && c.form !== 'atomic' ? 'write' : c.form === 'atomic' ? 'rmw' : 'read');
    if (ctx.record || ctx.capture) this.effect(ctx, { k: 'note', i, acc, size, write });
    if (acc.verdict === 'fault') return undefined;
    const onStack = base.kind === 'ptr' && base.region === STACK;
    const lo = base.n.smin + BigInt(insn.off);
    const hi = base.n.smax + BigInt(insn.off);
    const frameTop = BigInt(STACK_FRAME * ctx.depth);
    const exact = onStack && lo === hi && lo >= BigInt(STACK_LO) && hi + BigInt(size) <= frameTop;
    if (onStack && (c.form === 'ldx' || c.form === 'atomic')) {
      const uninit = this.stackUninit(s, lo, hi, size, frameTop);
      if (uninit && (ctx.record || ctx.capture)) {
        this.effect(ctx, { k: 'diag', i, rule: 'uninit-stack', text: `reads stack bytes at r10${fmtRange(lo, hi + BigInt(size) - 1n)} that are not written on every path to this instruction` });
      }
    }
    switch (c.form) {
      case 'ldx': {
        if ((this.relAfter[i] & (1 << insn.dst)) === 0) {
          s.setReg(insn.dst, exact ? MIXED_TOP : SCALAR_TOP);
          return s;
        }
        let v: Val | undefined;
        if (exact) v = readSlot(s, Number(lo), size);
        if (v === undefined) v = scalar(zext(top(size * 8), 64));
        if (c.signExtend && v.kind === 'scalar') v = scalar(sext(trunc(v.n, size * 8), 64));
        s.setReg(insn.dst, v);
        return s;
      }
      case 'st': case 'stx': {
        const val: Val = c.form === 'st' ? scalar(constant(64, BigInt(insn.imm))) : s.regs[insn.src];
        if (onStack) writeStack(s, lo, hi, size, exact ? val : undefined, frameTop, (this.relAfter[i] & REL_MEM) !== 0);
        else if (base.kind !== 'ptr' && mayAddressStack(base.n, insn.off)) havocStack(s);
        return s;
      }
      case 'atomic': {
        if (onStack) writeStack(s, lo, hi, size, undefined, frameTop);
        else if (base.kind !== 'ptr' && mayAddressStack(base.n, insn.off)) havocStack(s);
        const old = scalar(zext(top(size * 8), 64));
        if (c.atomic === 'cmpxchg') s.setReg(0, old);
        else if (c.fetch) s.setReg(insn.src, old);
        return s;
      }
      default:
        return s;
    }
  }

  private stackUninit(s: State, lo: bigint, hi: bigint, size: number, frameTop: bigint): boolean {
    const from = lo, to = hi + BigInt(size);
    // Only judged when every byte the access may touch is in the tracked frames.
    if (from < BigInt(STACK_LO) || to > frameTop || to - from > 4096n) return false;
    for (let o = Number(from); o < Number(to); o++) {
      const k = o - STACK_LO;
      const sl = s.stack[k >> 3];
      if (sl === undefined || (sl.init & (1 << (k & 7))) === 0) return true;
    }
    return false;
  }

  /** The verdict on one access in one state. */
  private judge(ctx: Ctx, s: State, baseReg: number, base: Val, off: number, size: number, mode: 'read' | 'write' | 'rmw'): Access {
    const write = mode !== 'read';
    if (base.kind !== 'ptr') {
      return { verdict: 'check', reason: () => `the base r${baseReg} is not a known pointer (an integer address is checked at run time)` };
    }
    const region = this.regions[base.region];
    const z = BigInt(size);
    let lo = base.n.smin + BigInt(off);
    let hi = base.n.smax + BigInt(off);
    // Affine equalities can bound an offset the intervals lost (a pointer moving with a counter).
    const { lo: blo, hi: bhi } = bounds(s);
    if (mentioned(s.aff, baseReg)) {
      const unit = SCRATCH;
      unit[baseReg] = 1;
      const ub = s.aff.upperBound(unit, blo, bhi);
      if (ub !== Infinity && BigInt(ub) + BigInt(off) < hi) hi = BigInt(ub) + BigInt(off);
      unit[baseReg] = -1;
      const lb = -s.aff.upperBound(unit, blo, bhi);
      if (lb !== -Infinity && BigInt(lb) + BigInt(off) > lo) lo = BigInt(lb) + BigInt(off);
      unit[baseReg] = 0;
    }
    const offset = lo >= -(2n ** 52n) && hi <= 2n ** 52n ? { min: Number(lo), max: Number(hi) } : undefined;
    const name = region.name;
    let rLo: bigint, endMin: bigint, endMax: bigint;
    let symbolic = false;
    if (base.region === STACK) {
      rLo = -BigInt(STACK_SIZE - STACK_FRAME * ctx.depth);
      endMin = endMax = BigInt(STACK_FRAME * ctx.depth);
    } else if (base.region === MEM) {
      rLo = 0n;
      const len = s.regs[LEN].n;
      endMin = len.umin;
      endMax = len.umax;
      // x - len <= c from the zone or the equalities proves the end symbolically.
      const zc = s.zone.get(baseReg, LEN);
      let ac = Infinity;
      if (s.aff.rows.length > 0) {
        const L = SCRATCH;
        L[baseReg] = 1;
        L[LEN] = -1;
        ac = s.aff.upperBound(L, blo, bhi);
        L[baseReg] = 0;
        L[LEN] = 0;
      }
      const rel = Math.min(zc, ac);
      if (rel !== Infinity && BigInt(rel) + BigInt(off) + z <= 0n) symbolic = true;
    } else if (region.size !== undefined) {
      rLo = 0n;
      endMin = endMax = BigInt(region.size);
    } else {
      rLo = 0n;
      endMin = 0n;
      endMax = 2n ** 64n;
    }
    const where = (): string => `${name}${fmtRange(lo, hi)}`;
    const inBounds = lo >= rLo && (hi + z <= endMin || symbolic);
    const permitted = !write || region.writable;
    if (inBounds && permitted) {
      const why = (): string => base.region === STACK ? 'inside the stack'
        : symbolic && !(hi + z <= endMin) ? `offset + ${size} <= mem length on every path (bounded by comparisons with the length)`
          : `inside ${name} (${endMin} bytes${base.region === MEM ? ', the given mem size' : ''})`;
      return { verdict: 'proven', region: name, offset, reason: () => `${where()}: ${why()}` };
    }
    const below = lo >= rLo - BigInt(PAGE) && hi < rLo;
    const above = lo + z > endMax && hi < endMin + BigInt(PAGE);
    if (below || above) {
      return { verdict: 'fault', region: name, offset, rule: 'always-faults', reason: () => `${where()}: ${size}-byte access is outside ${name} on every path` };
    }
    if (write && !region.writable && lo >= rLo - BigInt(PAGE) && hi < endMin + BigInt(PAGE)) {
      return { verdict: 'fault', region: name, offset, rule: 'write-readonly', reason: () => `${where()}: writes the read-only region ${name}` };
    }
    const memSize = this.memSize;
    const why = (): string => {
      if (!permitted) return `may write the read-only region ${name}`;
      if (base.region === MEM && memSize === undefined && lo >= 0n) return 'the mem size is unknown and no comparison with the length bounds the offset';
      if (hi - lo > 2n ** 40n) return 'the offset is unbounded';
      if (base.region === STACK) return 'may be outside the stack';
      return `may be outside ${name} (${region.size === undefined && base.region !== MEM ? 'size unknown' : base.region === MEM ? `length ${endMin === endMax ? endMin : `${endMin}..${endMax}`}` : `${endMin} bytes`})`;
    };
    return { verdict: 'check', region: name, offset, reason: () => `${where()}: ${why()}` };
  }

  // ---- recording ----

  /** Records now (the recording pass) or keeps for a later replay (ascending capture). */
  private effect(ctx: Ctx, f: Effect): void {
    if (ctx.capture !== undefined) ctx.capture.push(f);
    if (!ctx.record) return;
    switch (f.k) {
      case 'note': this.note(f.i, f.acc, f.size, f.write); break;
      case 'diag': this.diag(f.i, f.rule, f.text); break;
      case 'add': this.recordAdd(f.i, f.n); break;
      case 'exit': break;
    }
  }

  private note(i: number, a: Access, size: number, write: boolean): void {
    const sz = size as 1 | 2 | 4 | 8;
    const old = this.facts.get(i);
    if (old === undefined) {
      this.facts.set(i, { slot: i, verdict: a.verdict, region: a.region, offset: a.offset, size: sz, write, reason: a.reason() });
      if (a.rule) this.ruleOf.set(i, a.rule);
      return;
    }
    const region = old.region === a.region ? old.region : undefined;
    const offset = region !== undefined && old.offset && a.offset
      ? { min: Math.min(old.offset.min, a.offset.min), max: Math.max(old.offset.max, a.offset.max) } : undefined;
    const verdict: Verdict = old.verdict === a.verdict ? old.verdict : 'check';
    const reason = old.verdict === a.verdict ? old.reason : old.verdict === 'check' ? old.reason : a.verdict === 'check' ? a.reason() : 'faults on some paths only';
    this.facts.set(i, { slot: i, verdict, region, offset, size: sz, write, reason });
  }

  private readonly ruleOf = new Map<number, string>();

  private diag(i: number, rule: string, text: string): void {
    const k = `${i}:${rule}`;
    if (this.diags.has(k)) return;
    const disasm = disasmInsn(this.prog.insns, i);
    this.diags.set(k, { index: i, disasm, rule, message: `instruction ${i} (${disasm}): ${text}` });
  }

  /** Turns final 'fault' verdicts into diagnostics (called once all contexts are recorded). */
  private faultDiagnostics(): void {
    for (const [i, f] of this.facts) {
      if (f.verdict !== 'fault') continue;
      const rule = this.ruleOf.get(i) ?? 'always-faults';
      this.diag(i, rule, rule === 'write-readonly' ? `${f.reason} (rejected: the write always fails)` : `${f.reason} (rejected: it always faults)`);
    }
  }

  // ---- loops ----

  /**
   * A loop is bounded when some register is changed in it only by one add of a nonzero constant
   * that runs on every iteration (its block dominates every latch) and that the analysis proved
   * never wraps: the register then moves strictly monotonically inside a bounded range, and the
   * number of iterations is at most that range divided by the step.
   */
  private findBoundedLoops(): void {
    this.faultDiagnostics();
    const maxTrips = BigInt(this.opts.maxBoundedTrips ?? DEFAULT_MAX_TRIPS);
    for (const g of this.graphs.values()) {
      for (const loop of g.loops) {
        const defs = new Map<number, number[]>();
        for (const b of loop.body) {
          const blk = this.cfg.blocks[b];
          for (let i = blk.start; i <= blk.last; i++) {
            const c = this.cls[i];
            if (c === undefined) continue;
            for (const r of regWrites(this.prog.insns[i], c)) {
              const l = defs.get(r);
              if (l === undefined) defs.set(r, [i]);
              else l.push(i);
            }
          }
        }
        let ok = false;
        for (const [, slots] of defs) {
          if (slots.length !== 1) continue;
          const j = slots[0];
          const c = this.cls[j];
          const insn = this.prog.insns[j];
          if (c === undefined || c.form !== 'alu' || c.srcReg || (c.alu !== 'add' && c.alu !== 'sub')) continue;
          const jb = this.cfg.blockOfSlot[j];
          if (!loop.latches.every((l) => dominates(g, jb, l))) continue;
          const before = this.addInfo.get(j);
          if (before === undefined) continue;
          const k = BigInt(c.alu === 'add' ? insn.imm : -insn.imm);
          if (k === 0n) continue;
          const n = c.wide ? before : trunc(before, 32);
          const M = c.wide ? 2n ** 64n - 1n : 0xffffffffn;
          const noWrap = k > 0n ? n.umax + k <= M : n.umin + k >= 0n;
          if (!noWrap) continue;
          const trips = (n.umax - n.umin) / (k > 0n ? k : -k) + 2n;
          if (trips <= maxTrips) { ok = true; break; }
        }
        if (ok) for (const l of loop.latches) this.bounded.add(this.cfg.blocks[l].last);
      }
    }
  }

  /**
   * Thresholds that never depend on the loop: 0, +-1, the ends of the 32- and 64-bit ranges, the
   * region sizes (each with its neighbours); for stack pointers also the frame boundaries.
   */
  private collectThresholds(): Thresholds {
    const set = new Set<bigint>([0n, 1n, -1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n - 1n, -(2n ** 63n), BigInt(MEM_MAX)]);
    const add = (s: Set<bigint>, v: bigint): void => { s.add(v - 1n); s.add(v); s.add(v + 1n); };
    const stack = new Set(set);
    for (const r of this.regions) if (r.size !== undefined) { add(stack, BigInt(r.size)); if (r.name !== 'stack') add(set, BigInt(r.size)); }
    for (let k = -1; k <= MAX_CALL_DEPTH; k++) add(stack, BigInt(STACK_FRAME * k));
    this.regThresholds = sortBig(set).filter((v) => v !== 1n && v !== -1n);
    return { values: sortBig(set), stack: sortBig(stack) };
  }

  /**
   * The fixed thresholds for registers on a cycle, without +-1: a counter from 0 would stop at 1
   * first (one more round of the loop, and of every loop inside it); a register that does stop
   * there is compared with 0 or 1 on the cycle, which brings them back.
   */
  private regThresholds: readonly bigint[] = [];

  /**
   * The widening thresholds at loop head b: the fixed ones plus the constants that branches on
   * the cycles through b compare with (and their neighbours). A value that grows around a loop
   * can only be stopped by a branch on that loop: constants from elsewhere would only make
   * widening climb through them one at a time. A register gets only the constants compared with
   * it or with registers computed from it on the cycle (in nested loops the outer counter would
   * otherwise stop at each of the inner loop's bounds, the inner loop settling again each time);
   * stack slots and stack pointers get them all.
   */
  private thresholdsAt(graph: FunctionGraph, b: number): Thresholds {
    const cycle = graph.cycleOf.get(b);
    if (cycle === undefined) return this.thresholds;
    let t = this.cycleThresholds.get(cycle);
    if (t === undefined) {
      t = this.cycleThresholdsOf(cycle);
      this.cycleThresholds.set(cycle, t);
    }
    return t;
  }

  private cycleThresholdsOf(cycle: readonly number[]): Thresholds {
    const all: bigint[] = [];
    const per: bigint[][] = [];
    // Registers linked by a register operand on the cycle (either way) share their constants.
    const root = Array.from({ length: NVARS }, (_, r) => r);
    const find = (r: number): number => {
      while (root[r] !== r) r = root[r] = root[root[r]];
      return r;
    };
    for (const x of cycle) {
      const blk = this.cfg.blocks[x];
      for (let i = blk.start; i <= blk.last; i++) {
        const c = this.cls[i];
        if (c === undefined) continue;
        const insn = this.prog.insns[i];
        if (c.form === 'jcond' && !c.srcReg) {
          const v = BigInt(insn.imm);
          all.push(v - 1n, v, v + 1n);
          (per[insn.dst] ??= []).push(v - 1n, v, v + 1n);
        } else if (c.form === 'alu' && c.srcReg) {
          root[find(insn.dst)] = find(insn.src);
        }
      }
    }
    const byRoot: bigint[][] = [];
    for (let r = 0; r < NVARS; r++) {
      const l = per[r];
      if (l !== undefined) (byRoot[find(r)] ??= []).push(...l);
    }
    const merged: (readonly bigint[])[] = [];
    const regs: (readonly bigint[])[] = [];
    for (let r = 0; r < NVARS; r++) {
      const k = find(r);
      regs.push(merged[k] ??= withValues(this.regThresholds, byRoot[k] ?? []));
    }
    return { values: withValues(this.thresholds.values, all), stack: withValues(this.thresholds.stack, all), regs };
  }

  private readonly cycleThresholds = new Map<readonly number[], Thresholds>();

  /** Records the value an add/sub of a constant starts from (for termination facts). */
  private recordAdd(i: number, n: Num): void {
    const old = this.addInfo.get(i);
    this.addInfo.set(i, old === undefined ? n : joinNum(old, n));
  }
}

// ---- helpers ----

/** Join of the entry state (if any) and the states on the incoming edges. */
function gatherEdges(b: number, preds: readonly number[], nb: number, entry: State | undefined, head: boolean, edge: ReadonlyMap<number, State>): State | undefined {
  let s = entry;
  for (const p of preds) {
    const e = edge.get(b * nb + p);
    if (e !== undefined) s = s === undefined ? e : joinStates(s, e, head);
  }
  return s;
}

function inputsOf(b: number, preds: readonly number[], nb: number, edge: ReadonlyMap<number, State>, entry: State | undefined): (State | undefined)[] {
  const out: (State | undefined)[] = [entry];
  for (const p of preds) out.push(edge.get(b * nb + p));
  return out;
}

function sameInputs(a: readonly (State | undefined)[], b: readonly (State | undefined)[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sortBig(set: ReadonlySet<bigint>): bigint[] {
  return [...set].sort(cmpBig);
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted `base` with `extra` merged in (no duplicates); `base` itself when nothing is new. */
function withValues(base: readonly bigint[], extra: bigint[]): readonly bigint[] {
  if (extra.length === 0) return base;
  extra.sort(cmpBig);
  const out: bigint[] = [];
  let i = 0;
  for (let j = 0; j <= extra.length; j++) {
    const v = j < extra.length ? extra[j] : undefined;
    while (i < base.length && (v === undefined || base[i] <= v)) {
      if (out.length === 0 || out[out.length - 1] !== base[i]) out.push(base[i]);
      i++;
    }
    if (v !== undefined && (out.length === 0 || out[out.length - 1] !== v)) out.push(v);
  }
  return out.length === base.length ? base : out;
}

function isMemory(c: Classified): boolean {
  return c.form === 'ldx' || c.form === 'st' || c.form === 'stx' || c.form === 'atomic';
}

/** Coefficients for one query (all zero between uses). */
const SCRATCH: number[] = new Array<number>(NVARS).fill(0);

function mentioned(aff: Affine, x: number): boolean {
  for (const r of aff.rows) if (r[x] !== 0) return true;
  return false;
}

/** x_r as a coefficient vector, for each r: shared, so never changed. */
const UNIT_COEF: readonly (readonly number[])[] = Array.from({ length: NVARS }, (_, r) => Object.freeze(unitCoef(r, 1)));

function unitCoef(r: number, v: number): number[] {
  const a = new Array<number>(NVARS).fill(0);
  a[r] = v;
  return a;
}

function fmtRange(lo: bigint, hi: bigint): string {
  const f = (v: bigint): string => (v < 0n ? `${v}` : `+${v}`);
  return lo === hi ? f(lo) : `[${f(lo)}, ${f(hi)}]`.replace('[+', '[').replace(', +', ', ');
}

/** Replaces the low 32 bits' knowledge of a 64-bit value with a refined 32-bit view. */
function withLow(n: Num, low: Num): Num | undefined {
  if (n.umax <= 0xffffffffn) return meet(n, zext(low, 64));
  const hiKnown = (n.t.m >> 32n) === 0n;
  if (hiKnown) {
    const H = n.t.v >> 32n << 32n;
    return meet(n, urange(64, H | low.umin, H | low.umax));
  }
  const t = { v: (n.t.v & ~0xffffffffn) | low.t.v, m: (n.t.m & ~0xffffffffn) | low.t.m };
  return meet(n, { ...top(64), t });
}

/** A scalar used as an address (plus off) could land in the stack region. */
function mayAddressStack(n: Num, off: number): boolean {
  const lo = n.umin + BigInt(off), hi = n.umax + BigInt(off);
  if (lo < 0n || hi >= 2n ** 64n) return true;
  return hi >= BigInt(FIRST_REGION_BASE) && lo < BigInt(FIRST_REGION_BASE + STACK_SIZE);
}

/**
 * The zone after x := x rounded down to a multiple of (mask + 1): every other variable's bound
 * against old x turns into a bound against new x, loosened by up to `mask` on one side.
 */
function roundDown(z: Zone, x: number, mask: number): Zone {
  const out = z.clone();
  const n = z.n;
  for (let k = 0; k < n; k++) {
    if (k === x) continue;
    // new - k <= old - k; k - new <= k - old + mask.
    out.d[x * n + k] = z.get(x, k);
    const v = z.get(k, x) + mask;
    out.d[k * n + x] = Math.abs(v) <= 2 ** 52 ? v : Infinity;
  }
  return out;
}

/** The zone after x shrank (new x <= old x): bounds on x from above stay, from below go. */
function keepUpper(z: Zone, x: number): Zone {
  const out = z.clone();
  for (let k = 0; k < z.n; k++) if (k !== x) out.d[k * z.n + x] = Infinity;
  return out;
}

/** Whether any relation mentions variable x. */
function related(s: State, x: number): boolean {
  for (const r of s.aff.rows) if (r[x] !== 0) return true;
  return s.zone.mentions(x);
}

/**
 * Registers r0-r9 outside `need` become unknown scalars (uninitialised ones stay so), unless a
 * relation links them with a needed one in a way the intervals do not already say: through a
 * faint register the relations can still bound the others (in p = q + r, r <= x + 3 the faint q
 * links p and x). A known value is first substituted into the equalities.
 */
function forgetFaint(s: State, need: number): void {
  for (let r = 0; r < FP; r++) {
    if ((need & (1 << r)) !== 0) continue;
    const v = s.regs[r];
    if (v.kind === 'uninit' || v === SCALAR_TOP || v === MIXED_TOP || linked(s, r, need)) continue;
    const { lo, hi } = bounds(s);
    if (lo[r] === hi[r] && Math.abs(lo[r]) <= 2 ** 50 && s.aff.rows.some((row) => row[r] !== 0)) s.aff = s.aff.add(UNIT_COEF[r], lo[r]) ?? s.aff;
    s.setReg(r, isTopPtr(v) ? MIXED_TOP : SCALAR_TOP);
  }
}

/**
 * Whether forgetting v needs the top that also covers pointers (a faint register is never used
 * as an address, but its unknown value should still not claim to be a plain integer).
 */
function isTopPtr(v: Val): boolean {
  return v.kind === 'ptr' || v.region === MIXED;
}

/**
 * Whether a relation says more about x and a needed register (or r10, or the mem length) than
 * their intervals: a zone bound tighter than the intervals give, or an equation (unless x is known).
 */
function linked(s: State, x: number, need: number): boolean {
  const keep = need | REL_FP | (1 << LEN);
  const d = s.zone.d;
  const { lo, hi } = bounds(s);
  for (let k = 0; k < NVARS; k++) {
    if (k === x || (keep & (1 << k)) === 0) continue;
    const a = d[x * NVARS + k], b = d[k * NVARS + x];
    if (a !== Infinity && !(hi[x] - lo[k] <= a)) return true;
    if (b !== Infinity && !(hi[k] - lo[x] <= b)) return true;
  }
  if (lo[x] === hi[x] && Math.abs(lo[x]) <= 2 ** 50) return false;
  for (const row of s.aff.rows) {
    if (row[x] === 0) continue;
    for (let k = 0; k < NVARS; k++) if (k !== x && row[k] !== 0 && (keep & (1 << k)) !== 0) return true;
  }
  return false;
}

function valueless(sl: Slot | undefined): Slot | undefined {
  return sl === undefined || sl.val === undefined ? sl : { init: sl.init };
}

function havocStack(s: State): void {
  s.stack = s.stack.map((sl) => (sl === undefined || sl.val === undefined ? sl : { init: sl.init }));
}

function shiftSlot(sl: Slot | undefined, by: number): Slot | undefined {
  if (sl === undefined || sl.val === undefined) return sl;
  const v = sl.val.v;
  if (v.kind !== 'ptr' || v.region !== STACK) return sl;
  return { init: sl.init, val: { ...sl.val, v: pointer(STACK, binary('add', v.n, constant(64, BigInt(by)))) } };
}

function readSlot(s: State, o: number, size: number): Val | undefined {
  const k = o - STACK_LO;
  const sl = s.stack[k >> 3];
  const at = k & 7;
  if (sl === undefined || sl.val === undefined || at + size > 8) return undefined;
  const { val } = sl;
  if (val.at === at && val.size === size) return val.v;
  if (val.at === at && val.size === 8 && size < 8 && val.v.kind === 'scalar') return scalar(zext(trunc(val.v.n, size * 8), 64));
  return undefined;
}

/** `remember`: keep the stored value (else only which bytes are written: nothing reads it). */
function writeStack(s: State, lo: bigint, hi: bigint, size: number, val: Val | undefined, frameTop: bigint, remember = true): void {
  const from = lo < BigInt(STACK_LO) ? BigInt(STACK_LO) : lo;
  const to = hi + BigInt(size) > frameTop ? frameTop : hi + BigInt(size);
  if (from >= to) return;
  const stack = s.stack.slice();
  const first = Number(from) - STACK_LO;
  const last = Number(to) - STACK_LO - 1;
  if (val !== undefined) {
    // One exact location: the bytes become written; a value stored whole is remembered.
    for (let k = first; k <= last; k++) {
      const idx = k >> 3;
      const sl = stack[idx];
      stack[idx] = { init: (sl?.init ?? 0) | (1 << (k & 7)) };
    }
    for (let idx = first >> 3; idx <= last >> 3; idx++) {
      const sl = stack[idx];
      const old = s.stack[idx];
      if (sl !== undefined && old?.val !== undefined) {
        // Keep a previous value that the write did not touch.
        const a = old.val.at, b = old.val.at + old.val.size;
        const wa = Math.max(first, idx * 8) - idx * 8, wb = Math.min(last + 1, idx * 8 + 8) - idx * 8;
        if (b <= wa || a >= wb) stack[idx] = { init: sl.init, val: old.val };
      }
    }
    const at = first & 7;
    if (remember && (first >> 3) === (last >> 3) && at % size === 0) {
      const stored = size === 8 ? val : val.kind === 'scalar' ? scalar(zext(trunc(val.n, size * 8), 64)) : undefined;
      if (stored !== undefined) stack[first >> 3] = { init: stack[first >> 3]?.init ?? 0, val: { at, size, v: stored } };
    }
  } else {
    for (let idx = first >> 3; idx <= last >> 3; idx++) {
      const sl = stack[idx];
      if (sl?.val !== undefined) stack[idx] = { init: sl.init };
    }
  }
  s.stack = stack;
}

/** What is relevant before an instruction, given what is relevant after it (see relevance()). */
function relBefore(R: number, insn: Insn, c: Classified, cyclic: boolean, callee: number): number {
  const d = 1 << insn.dst;
  const s = 1 << insn.src;
  switch (c.form) {
    case 'alu': {
      const counter = cyclic && !c.srcReg && (c.alu === 'add' || c.alu === 'sub');
      if ((R & d) === 0 && !counter) return R;
      const move = c.alu === 'mov' || c.alu === 'movsx';
      return (move ? R & ~d : R | d) | (c.srcReg ? s : 0);
    }
    case 'neg': case 'end': return R;
    case 'lddw': return R & ~d;
    case 'ldx': return ((R & d) !== 0 ? (R & ~d) | REL_MEM : R) | s;
    case 'st': return R | d;
    case 'stx': return R | d | ((R & REL_MEM) !== 0 ? s : 0);
    case 'atomic': return R | d | s | REL_MEM | (c.atomic === 'cmpxchg' ? 1 : 0);
    case 'jcond': return R | d | (c.srcReg ? s : 0);
    case 'ja': case 'exit': return R;
    case 'call': return c.local ? (R & ~REL_CALL) | (callee & (REL_ARGS | REL_MEM)) | (R & REL_MEM) : (R & ~REL_CALL) | REL_ARGS;
    case 'callx': return (R & ~REL_CALL) | REL_ARGS | d;
    default: return REL_ALL;
  }
}

/** Registers an instruction may change. */
function regWrites(insn: Insn, c: Classified): number[] {
  switch (c.form) {
    case 'alu': case 'neg': case 'end': case 'lddw': case 'ldx': return [insn.dst];
    case 'atomic': return c.atomic === 'cmpxchg' ? [0] : c.fetch ? [insn.src] : [];
    case 'call': case 'callx': return [0, 1, 2, 3, 4, 5];
    default: return [];
  }
}
