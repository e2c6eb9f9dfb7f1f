// eBPF -> IR: one IrFunction per reachable function (the entry first, then the others in slot
// order), one IR block per reachable basic block, every instruction lowered one to one with its slot
// as `pc`. The verifier's facts become access verdicts and the set of loops that need no budget;
// without facts every access is checked and every loop is budgeted.
//
// Functions and blocks are those of compiler/verify/cfg.ts (functions start at slot 0, the entry
// and every local-call target; blocks start at function starts, jump targets and after jumps and
// exits), rebuilt here in flat typed arrays with every slot classified once: the JIT runs this on
// every program it compiles, and the verifier's object graph costs as much as all the passes.
// Precondition: the program passed verifyStructure (so every slot decodes, targets are valid and no
// reachable path runs off a function). A violated precondition is an IrBuildError, not a crash.
import { callTarget, insnLength, jumpTarget } from '../verify/cfg.js';
import type { AccessFact, ProgramFacts } from '../verify/facts.js';
import { classify, isInvalid, type Classified, type Insn, type Invalid } from '../opcodes.js';
import type { DataReloc, Program } from '../program.js';
import { immediateDominators } from './loops.js';
import { WorkArrays } from './scratch.js';
import { BIN_OF_ALU, COND_OF_JMP, type IrModule } from './ir.js';
import {
  allocFlat, ATOMIC_INDEX, B_FIRST, B_LEN, BIN_INDEX, BS, COND_INDEX, functionsOf, I_A, I_B, I_BK, I_COV, I_DST, I_FLAG, I_K1, I_K2, I_OP, I_PC,
  I_REG, I_SUB, I_VERD, I_W, IS, OP_ADDR, OP_ATOMIC, OP_BIN, OP_BSWAP, OP_BUDGET, OP_CALL, OP_CALLLOCAL, OP_CALLX, OP_CONST, OP_EXT, OP_LOAD,
  OP_MOV, OP_NEG, OP_STORE, regionOf, releaseFlat, T_A, T_B, T_BK, T_COND, T_ELSE, T_OP, T_PC, T_THEN, T_W, TOP_BR, TOP_JUMP, TOP_RET,
  V_CHECK, V_PROVEN, type FlatModule,
} from './flat.js';

/** The program breaks a precondition of the builder (it did not pass the structural verifier). */
export class IrBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IrBuildError';
  }
}

/** The program's functions and basic blocks (ids in slot order), as flat arrays. */
interface Graph {
  /** Classification of each instruction start (undefined: second slot of an lddw). */
  cls: (Classified | Invalid | undefined)[];
  fnStart: number[];
  /** Block id of each function's first block; fnFirstBlock[fnCount] = block count. */
  fnFirstBlock: number[];
  fnOfSlot: Int32Array;
  blockOfSlot: Int32Array;
  bStart: number[];
  bLast: number[];
  /** Slot just past the block (an lddw counts both slots). */
  bEnd: number[];
  /** Fall-through successor and jump successor (-1: none; the jump one is -1 when it equals the first). */
  bFall: Int32Array;
  bJump: Int32Array;
  /** The last instruction continues past the end of its function. */
  bFallsOff: Int32Array;
  reachable: Int32Array;
  fnReachable: Int32Array;
  /** Index of the entry function (-1: the entry slot is not an instruction start). */
  entry: number;
}

interface Ctx {
  prog: Program;
  g: Graph;
  facts: ProgramFacts | undefined;
  /** Graph function index -> IR function index (-1: not lowered). */
  irFn: Int32Array;
  helpers: number[];
  /** lddw slot -> its data relocation. */
  relocs: Map<number, DataReloc> | undefined;
  /** The records being written: next instruction record and next block record. */
  fm: FlatModule;
  regionIndex: Map<string, number> | undefined;
  p: number;
  q: number;
}

// Arrays reused from one build to the next (one slot per array; see scratch.ts WorkArrays).
const work = new WorkArrays(32);

// The verifier's CFG reads instructions the same way: one definition of lengths and targets.
const lengthAt = insnLength;
const jumpTargetOf = (insn: Insn, i: number, c: Classified): number => jumpTarget(insn, i, c) ?? -1;
const callTargetOf = (insn: Insn, i: number, c: Classified): number => callTarget(insn, i, c) ?? -1;

/**
 * classify, remembered per instruction shape. What classify's verdict depends on, for every form
 * but three, is the opcode, src and whether dst, off and imm are zero, which fit in 15 bits; the
 * three are ALU operations with a nonzero off (signed division, movsx) and byte swaps, whose off or
 * imm value counts, and atomics, whose imm names the operation. Only valid verdicts are kept (an
 * invalid one names field values).
 */
const classified: (Classified | undefined)[] = new Array<Classified | undefined>(1 << 15).fill(undefined);

function classifyCached(insn: Insn): Classified | Invalid {
  const code = insn.code;
  const cls = code & 7;
  const alu = cls === 4 || cls === 7;
  if ((alu && (insn.off !== 0 || (code & 0xf0) === 0xd0)) || (cls === 3 && (code & 0xe0) === 0xc0) || insn.src > 15 || insn.src < 0) return classify(insn);
  const key = code | (insn.src << 8) | (insn.dst === 0 ? 0 : 1 << 12) | (insn.imm === 0 ? 0 : 1 << 13) | (insn.off === 0 ? 0 : 1 << 14);
  const hit = classified[key];
  if (hit !== undefined) return hit;
  const c = classify(insn);
  if (!isInvalid(c)) classified[key] = c;
  return c;
}

function buildGraph(prog: Program): Graph {
  const { insns } = prog;
  const n = insns.length;
  const cls: (Classified | Invalid | undefined)[] = new Array<Classified | Invalid | undefined>(n).fill(undefined);
  const isStart = work.get(0, n + 1);
  for (let i = 0; i < n; i += lengthAt(insns, i)) {
    isStart[i] = 1;
    cls[i] = classifyCached(insns[i]);
  }
  const valid = (t: number): boolean => t >= 0 && t < n && isStart[t] === 1;
  // 1: leader, 3: function start (and leader).
  const lead = work.get(1, n + 1);
  if (n > 0) lead[0] = 3;
  const entryOk = valid(prog.entry);
  if (entryOk) lead[prog.entry] = 3;
  for (let i = 0; i < n; i++) {
    const c = cls[i];
    if (c === undefined || isInvalid(c)) continue;
    const call = callTargetOf(insns[i], i, c);
    if (valid(call)) lead[call] = 3;
    if (c.form === 'ja' || c.form === 'jcond' || c.form === 'exit') {
      const jump = jumpTargetOf(insns[i], i, c);
      if (valid(jump) && lead[jump] === 0) lead[jump] = 1;
      const next = i + lengthAt(insns, i);
      if (next < n && lead[next] === 0) lead[next] = 1;
    }
  }
  const fnStart: number[] = [];
  const fnFirstBlock: number[] = [];
  const fnOfSlot = work.get(2, n);
  const blockOfSlot = work.get(3, n, -1);
  const bStart: number[] = [], bLast: number[] = [], bEnd: number[] = [];
  for (let i = 0; i < n;) {
    if (lead[i] === 3 || fnStart.length === 0) {
      fnStart.push(i);
      fnFirstBlock.push(bStart.length);
    }
    const start = i;
    let last = i;
    do {
      last = i;
      i += lengthAt(insns, i);
    } while (i < n && lead[i] === 0);
    const id = bStart.length;
    blockOfSlot.fill(id, start, Math.min(i, n));
    fnOfSlot.fill(fnStart.length - 1, start, Math.min(i, n));
    bStart.push(start);
    bLast.push(last);
    bEnd.push(i);
  }
  const nb = bStart.length;
  fnFirstBlock.push(nb);
  const bFall = work.get(4, nb, -1);
  const bJump = work.get(5, nb, -1);
  const bFallsOff = work.get(6, nb);
  for (let f = 0; f < fnStart.length; f++) {
    const fnEnd = fnStart[f + 1] ?? n;
    for (let b = fnFirstBlock[f]; b < fnFirstBlock[f + 1]; b++) {
      const last = bLast[b];
      const c = cls[last];
      const ok = c !== undefined && !isInvalid(c);
      if (!ok || (c.form !== 'ja' && c.form !== 'exit')) {
        if (bEnd[b] < fnEnd) bFall[b] = blockOfSlot[bEnd[b]];
        else bFallsOff[b] = 1;
      }
      const jump = ok ? jumpTargetOf(insns[last], last, c) : -1;
      if (valid(jump) && blockOfSlot[jump] !== bFall[b]) bJump[b] = blockOfSlot[jump];
    }
  }
  const g: Graph = {
    cls, fnStart, fnFirstBlock, fnOfSlot, blockOfSlot, bStart, bLast, bEnd, bFall, bJump, bFallsOff,
    reachable: work.get(7, nb), fnReachable: work.get(8, fnStart.length), entry: entryOk ? fnOfSlot[prog.entry] : -1,
  };
  markReachable(prog, g, valid);
  return g;
}

/** Reachable blocks: from the entry function's first block through successors and local calls. */
function markReachable(prog: Program, g: Graph, valid: (t: number) => boolean): void {
  if (g.entry < 0) return;
  const todo: number[] = [];
  const visit = (b: number): void => {
    if (b < 0 || g.reachable[b] === 1) return;
    g.reachable[b] = 1;
    todo.push(b);
  };
  const enter = (f: number): void => {
    if (g.fnReachable[f] === 1) return;
    g.fnReachable[f] = 1;
    visit(g.fnFirstBlock[f]);
  };
  enter(g.entry);
  for (let b = todo.pop(); b !== undefined; b = todo.pop()) {
    visit(g.bFall[b]);
    visit(g.bJump[b]);
    for (let i = g.bStart[b]; i <= g.bLast[b]; i++) {
      const c = g.cls[i];
      if (c === undefined || isInvalid(c) || c.form !== 'call' || c.local !== true) continue;
      const t = callTargetOf(prog.insns[i], i, c);
      if (valid(t)) enter(g.fnOfSlot[t]);
    }
  }
}

/** The builder's IR as records (flat.ts): what the pipeline works on. Give it back with releaseFlat. */
export function buildFlat(program: Program, facts?: ProgramFacts): FlatModule {
  const g = buildGraph(program);
  if (g.entry < 0) throw new IrBuildError(`${program.origin}: the entry point ${program.entry} is not an instruction start`);
  const order = [g.entry];
  for (let f = 0; f < g.fnStart.length; f++) if (g.fnReachable[f] === 1 && f !== g.entry) order.push(f);
  const irFn = work.get(9, g.fnStart.length, -1);
  order.forEach((f, i) => { irFn[f] = i; });
  let relocs: Map<number, DataReloc> | undefined;
  if (program.relocs.length > 0) {
    relocs = new Map();
    // The first relocation of a slot wins.
    for (const r of program.relocs) if (!relocs.has(r.slot)) relocs.set(r.slot, r);
  }
  const helpers: number[] = [];
  const src: IrModule = { functions: [], data: program.data, helpers, origin: program.origin };
  // At most one record per slot, plus a budget charge per block.
  const nb = g.bStart.length;
  const fm = allocFlat(src, program.insns.length + nb, nb);
  const ctx: Ctx = { prog: program, g, facts, irFn, helpers, relocs, fm, regionIndex: undefined, p: 0, q: 0 };
  try {
    for (const f of order) buildFunction(ctx, f);
  } catch (e) {
    releaseFlat(fm);
    throw e;
  }
  helpers.sort((x, y) => x - y);
  return fm;
}

export function buildIr(program: Program, facts?: ProgramFacts): IrModule {
  const fm = buildFlat(program, facts);
  const m = fm.src;
  m.functions = functionsOf(fm);
  releaseFlat(fm);
  return m;
}

function fail(ctx: Ctx, slot: number, what: string): never {
  throw new IrBuildError(`${ctx.prog.origin}: instruction ${slot}: ${what} (the program must pass the structural verifier first)`);
}

function functionName(prog: Program, start: number, isEntry: boolean): string {
  for (const sym of prog.functions) if (sym.start === start) return sym.name;
  return isEntry ? 'main' : `fn_${start}`;
}

function buildFunction(ctx: Ctx, fnIndex: number): void {
  const { g } = ctx;
  // Reachable blocks in slot order: local index -> block id, and back (-1: not in this function
  // or unreachable). The function's first block is its entry, so it lands at index 0.
  const first = g.fnFirstBlock[fnIndex], end = g.fnFirstBlock[fnIndex + 1];
  const ids: number[] = [];
  for (let b = first; b < end; b++) if (g.reachable[b] === 1) ids.push(b);
  const local = work.get(10, end - first, -1);
  ids.forEach((b, i) => { local[b - first] = i; });
  const localOf = (b: number): number => (b >= first && b < end ? local[b - first] : -1);
  const budgeted = budgetedBlocks(ctx, ids, localOf);
  ctx.fm.fns.push({ name: functionName(ctx.prog, g.fnStart[fnIndex], fnIndex === g.entry), start: g.fnStart[fnIndex], maxReg: 10, b0: ctx.q, nb: ids.length });
  for (let i = 0; i < ids.length; i++) buildBlock(ctx, ids[i], localOf, budgeted !== undefined && budgeted[i] === 1);
}

// ---- budget placement ----

/**
 * Which blocks charge the budget (see "Budget:" in ir.ts), by local index; undefined: none.
 * A back edge is a jump to a block at or before the jump's own block (in slot order, which is also
 * local order). One is bounded when its slot is in the facts' boundedBackEdges and its target is
 * the one successor of its block that dominates it: the verifier bounds natural loops only (a
 * header that dominates its latches) and records a latch by its slot, so a latch whose other
 * successor also dominates it cannot say which loop was proven and counts as unbounded.
 * Charged: the source block of every unbounded back edge, and every block of its slot-range loop
 * (the target plus the blocks between target and source that reach the source without passing the
 * target) that lies outside every proven natural loop.
 */
function budgetedBlocks(ctx: Ctx, ids: readonly number[], localOf: (b: number) => number): Int32Array | undefined {
  const { g, facts } = ctx;
  const n = ids.length;
  const succ = work.get(11, 2 * n);
  let backEdges = 0, boundedSlots = 0;
  const bounded = facts?.boundedBackEdges;
  for (let u = 0; u < n; u++) {
    const b = ids[u];
    const s0 = g.bFall[b] < 0 ? -1 : localOf(g.bFall[b]);
    const s1 = g.bJump[b] < 0 ? -1 : localOf(g.bJump[b]);
    succ[2 * u] = s0;
    succ[2 * u + 1] = s1;
    if ((s0 >= 0 && s0 <= u) || (s1 >= 0 && s1 <= u)) backEdges++;
    if (bounded !== undefined && bounded.size > 0 && bounded.has(g.bLast[b])) boundedSlots++;
  }
  if (backEdges === 0) return undefined;
  const pr = predecessors(succ, n);
  // latchOf[u]: the header of the proven loop u closes (-1: none).
  const latchOf = work.get(12, n, -1);
  let dom: Dominators | undefined;
  if (boundedSlots > 0 && bounded !== undefined) {
    dom = dominators(succ, pr, n);
    for (let u = 0; u < n; u++) {
      if (!bounded.has(g.bLast[ids[u]])) continue;
      const s0 = succ[2 * u], s1 = succ[2 * u + 1];
      const d0 = s0 >= 0 && dom.dominates(s0, u), d1 = s1 >= 0 && dom.dominates(s1, u);
      if (d0 !== d1) latchOf[u] = d0 ? s0 : s1;
    }
  }
  const charged = work.get(13, n);
  // stamp[w] = k + 1 while walking the loop of back edge number k.
  const stamp = work.get(14, n);
  const inRange = work.get(15, n);
  const todo: number[] = [];
  let unbounded = 0;
  for (let u = 0; u < n; u++) {
    for (let k = 0; k < 2; k++) {
      const v = succ[2 * u + k];
      if (v < 0 || v > u || latchOf[u] === v) continue;
      unbounded++;
      charged[u] = 1;
      const mark = 2 * u + k + 1;
      stamp[v] = mark;
      inRange[v] = 1;
      todo.push(u);
      for (let w = todo.pop(); w !== undefined; w = todo.pop()) {
        if (stamp[w] === mark) continue;
        stamp[w] = mark;
        inRange[w] = 1;
        for (let j = pr.start[w]; j < pr.start[w + 1]; j++) {
          const p = pr.list[j];
          if (p >= v && p <= u && stamp[p] !== mark) todo.push(p);
        }
      }
    }
  }
  if (unbounded === 0) return undefined;
  // Blocks of the proven loops (natural loops: the header and whatever reaches a latch without
  // passing it) are charged only as the source of an unbounded back edge.
  const inProven = work.get(16, n);
  if (dom !== undefined) {
    const header = work.get(17, n);
    for (let u = 0; u < n; u++) if (latchOf[u] >= 0) header[latchOf[u]] = 1;
    stamp.fill(0, 0, n);
    for (let h = 0; h < n; h++) {
      if (header[h] === 0) continue;
      const mark = h + 1;
      stamp[h] = mark;
      inProven[h] = 1;
      for (let j = pr.start[h]; j < pr.start[h + 1]; j++) if (dom.dominates(h, pr.list[j])) todo.push(pr.list[j]);
      for (let w = todo.pop(); w !== undefined; w = todo.pop()) {
        if (stamp[w] === mark) continue;
        stamp[w] = mark;
        inProven[w] = 1;
        for (let j = pr.start[w]; j < pr.start[w + 1]; j++) if (stamp[pr.list[j]] !== mark) todo.push(pr.list[j]);
      }
    }
  }
  for (let w = 0; w < n; w++) if (inRange[w] === 1 && inProven[w] === 0) charged[w] = 1;
  return charged;
}

/** Predecessor lists (each predecessor once) in one array: those of w are list[start[w] .. start[w + 1]). */
interface Preds {
  start: Int32Array;
  list: Int32Array;
}

function predecessors(succ: Int32Array, n: number): Preds {
  const start = work.get(18, n + 1);
  for (let k = 0; k < 2 * n; k++) if (succ[k] >= 0) start[succ[k] + 1]++;
  for (let w = 0; w < n; w++) start[w + 1] += start[w];
  const fill = work.get(19, n);
  for (let w = 0; w < n; w++) fill[w] = start[w];
  const list = work.get(20, start[n]);
  for (let k = 0; k < 2 * n; k++) if (succ[k] >= 0) list[fill[succ[k]]++] = k >> 1;
  return { start, list };
}

interface Dominators {
  /** a dominates b (both reachable from block 0; false when either is not). */
  dominates(a: number, b: number): boolean;
}

/** Dominators from block 0 (loops.ts immediateDominators), with constant-time queries. */
function dominators(succ: Int32Array, pr: Preds, n: number): Dominators {
  const ord = work.get(21, n, -1);
  const rpo = work.get(22, n);
  const stack = work.get(23, n), next = work.get(24, n);
  const seen = work.get(25, n);
  let sp = 0, post = n;
  stack[sp++] = 0;
  seen[0] = 1;
  while (sp > 0) {
    const v = stack[sp - 1];
    if (next[v] < 2) {
      const s = succ[2 * v + next[v]++];
      if (s >= 0 && seen[s] === 0) {
        seen[s] = 1;
        stack[sp++] = s;
      }
    } else {
      rpo[--post] = v;
      sp--;
    }
  }
  const first = post;
  for (let k = first; k < n; k++) ord[rpo[k]] = k;
  const idom = immediateDominators(rpo.subarray(first, n), ord, pr.list, pr.start, n);
  // Pre-order numbers and subtree sizes of the dominator tree answer a query in constant time.
  const childStart = work.get(27, n + 1);
  for (let b = 1; b < n; b++) if (idom[b] >= 0 && b !== 0) childStart[idom[b] + 1]++;
  for (let b = 0; b < n; b++) childStart[b + 1] += childStart[b];
  const fill = work.get(28, n);
  for (let w = 0; w < n; w++) fill[w] = childStart[w];
  const children = work.get(29, childStart[n]);
  for (let b = 1; b < n; b++) if (idom[b] >= 0) children[fill[idom[b]]++] = b;
  const pre = work.get(30, n, -1), size = work.get(31, n);
  let counter = 0;
  sp = 0;
  stack[sp++] = 0;
  next.fill(0, 0, n);
  pre[0] = counter++;
  while (sp > 0) {
    const v = stack[sp - 1];
    const c = childStart[v] + next[v];
    if (c < childStart[v + 1]) {
      next[v]++;
      const w = children[c];
      pre[w] = counter++;
      stack[sp++] = w;
    } else {
      size[v] = counter - pre[v];
      sp--;
    }
  }
  return { dominates: (a, b) => pre[a] >= 0 && pre[b] >= 0 && pre[a] <= pre[b] && pre[b] < pre[a] + size[a] };
}

// ---- lowering ----

/** Writes the verifier's verdict on the access at `slot` into the record at p. */
function putAccess(ctx: Ctx, p: number, slot: number): void {
  const fact: AccessFact | undefined = ctx.facts?.access.get(slot);
  const ins = ctx.fm.ins;
  // 'fault' is not expected (the verifier rejects such programs); a runtime check faults the same way.
  ins[p + I_VERD] = fact !== undefined && fact.verdict === 'proven' ? V_PROVEN : V_CHECK;
  ins[p + I_COV] = -1;
  if (fact === undefined || fact.region === undefined) ins[p + I_REG] = -1;
  else {
    ctx.regionIndex ??= new Map();
    ins[p + I_REG] = regionOf(ctx.fm, ctx.regionIndex, fact.region);
  }
}

function buildBlock(ctx: Ctx, b: number, localOf: (b: number) => number, budget: boolean): void {
  const { g, fm } = ctx;
  const { insns } = ctx.prog;
  const ins = fm.ins, blk = fm.blk;
  const q = ctx.q * BS;
  ctx.q++;
  const firstRecord = ctx.p;
  let count = 0;
  let ended = false;
  const start = g.bStart[b], last = g.bLast[b];
  const blockAt = (slot: number): number => {
    const t = slot >= 0 && slot < insns.length ? localOf(g.blockOfSlot[slot]) : -1;
    if (t < 0) fail(ctx, slot, `target slot ${slot} is not in a reachable block of the function`);
    return t;
  };
  // The charge comes first; its cost (the block's instruction count) is filled in at the end.
  const charge = budget ? ctx.p++ * IS : -1;
  if (charge >= 0) {
    ins[charge + I_OP] = OP_BUDGET;
    ins[charge + I_PC] = start;
  }
  for (let i = start; i <= last; i += lengthAt(insns, i)) {
    count++;
    const insn = insns[i];
    const c = g.cls[i];
    if (c === undefined) fail(ctx, i, 'not an instruction start');
    if (isInvalid(c)) fail(ctx, i, `invalid instruction: ${c.error}`);
    switch (c.form) {
      case 'exit':
        blk[q + T_OP] = TOP_RET;
        blk[q + T_PC] = i;
        ended = true;
        break;
      case 'ja':
        blk[q + T_OP] = TOP_JUMP;
        blk[q + T_PC] = i;
        blk[q + T_THEN] = blockAt(jumpTargetOf(insn, i, c));
        ended = true;
        break;
      case 'jcond':
        blk[q + T_OP] = TOP_BR;
        blk[q + T_PC] = i;
        blk[q + T_COND] = COND_INDEX.get(COND_OF_JMP[c.jmp ?? 'jeq']) ?? 0;
        blk[q + T_W] = c.wide ? 64 : 32;
        blk[q + T_A] = insn.dst;
        blk[q + T_BK] = c.srcReg ? 0 : 1;
        blk[q + T_B] = c.srcReg ? insn.src : insn.imm;
        blk[q + T_THEN] = blockAt(jumpTargetOf(insn, i, c));
        blk[q + T_ELSE] = blockAt(i + 1);
        ended = true;
        break;
      default:
        lower(ctx, insn, i, c, ctx.p++ * IS);
    }
    if (ended && i !== last) fail(ctx, i, 'a block ends in the middle');
  }
  if (!ended) {
    if (g.bFallsOff[b] === 1 || g.bFall[b] < 0) fail(ctx, last, 'execution can run off the end of the function');
    blk[q + T_OP] = TOP_JUMP;
    blk[q + T_PC] = last;
    blk[q + T_THEN] = blockAt(g.bEnd[b]);
  }
  if (charge >= 0) ins[charge + I_K1] = count;
  blk[q + B_FIRST] = firstRecord;
  blk[q + B_LEN] = ctx.p - firstRecord;
}

/** Lowers one instruction into the (zeroed) record at p. */
function lower(ctx: Ctx, insn: Insn, pc: number, c: Classified, p: number): void {
  const ins = ctx.fm.ins;
  const dst = insn.dst;
  ins[p + I_PC] = pc;
  ins[p + I_DST] = dst;
  switch (c.form) {
    case 'alu': {
      ins[p + I_W] = c.wide ? 64 : 32;
      if (c.alu === 'mov') {
        if (c.srcReg) {
          ins[p + I_OP] = OP_MOV;
          ins[p + I_A] = insn.src;
        } else {
          ins[p + I_OP] = OP_CONST;
          ins[p + I_K1] = insn.imm | 0;
          ins[p + I_K2] = c.wide ? insn.imm >> 31 : 0;
        }
        return;
      }
      if (c.alu === 'movsx') {
        ins[p + I_OP] = OP_EXT;
        ins[p + I_FLAG] = 1;
        ins[p + I_SUB] = c.signExtend ?? 32;
        ins[p + I_A] = insn.src;
        return;
      }
      const bin = BIN_OF_ALU[c.alu ?? 'add'];
      if (bin === undefined) fail(ctx, pc, `no IR operation for ${c.mnemonic}`);
      ins[p + I_OP] = OP_BIN;
      ins[p + I_SUB] = BIN_INDEX.get(bin) ?? 0;
      ins[p + I_A] = dst;
      ins[p + I_BK] = c.srcReg ? 0 : 1;
      ins[p + I_B] = c.srcReg ? insn.src : insn.imm;
      return;
    }
    case 'neg':
      ins[p + I_OP] = OP_NEG;
      ins[p + I_W] = c.wide ? 64 : 32;
      ins[p + I_A] = dst;
      return;
    case 'end': {
      const bits = insn.imm;
      ins[p + I_A] = dst;
      if (c.end !== 'le') {
        ins[p + I_OP] = OP_BSWAP;
        ins[p + I_W] = bits;
        return;
      }
      // Little-endian host order: le only truncates to the width (zero-extending), le64 does nothing.
      ins[p + I_W] = 64;
      if (bits === 64) ins[p + I_OP] = OP_MOV;
      else {
        ins[p + I_OP] = OP_EXT;
        ins[p + I_SUB] = bits;
      }
      return;
    }
    case 'lddw': {
      const reloc = ctx.relocs?.get(pc);
      if (reloc !== undefined) {
        ins[p + I_OP] = OP_ADDR;
        ins[p + I_K1] = reloc.section;
        ins[p + I_K2] = reloc.addend;
        return;
      }
      const second = ctx.prog.insns[pc + 1];
      if (second === undefined) fail(ctx, pc, 'lddw needs a second slot');
      ins[p + I_OP] = OP_CONST;
      ins[p + I_K1] = insn.imm | 0;
      ins[p + I_K2] = second.imm | 0;
      return;
    }
    case 'ldx':
      ins[p + I_OP] = OP_LOAD;
      ins[p + I_W] = c.size ?? 8;
      ins[p + I_FLAG] = c.signExtend !== undefined ? 1 : 0;
      ins[p + I_A] = insn.src;
      ins[p + I_K1] = insn.off;
      putAccess(ctx, p, pc);
      return;
    case 'st': case 'stx':
      ins[p + I_OP] = OP_STORE;
      ins[p + I_W] = c.size ?? 8;
      ins[p + I_A] = dst;
      ins[p + I_K1] = insn.off;
      ins[p + I_BK] = c.form === 'st' ? 1 : 0;
      ins[p + I_B] = c.form === 'st' ? insn.imm : insn.src;
      putAccess(ctx, p, pc);
      return;
    case 'atomic':
      ins[p + I_OP] = OP_ATOMIC;
      ins[p + I_SUB] = ATOMIC_INDEX.get(c.atomic ?? 'add') ?? 0;
      ins[p + I_W] = c.size === 4 ? 4 : 8;
      ins[p + I_FLAG] = c.fetch === true ? 1 : 0;
      ins[p + I_A] = dst;
      ins[p + I_K1] = insn.off;
      ins[p + I_B] = insn.src;
      putAccess(ctx, p, pc);
      return;
    case 'call': {
      if (c.local !== true) {
        if (!ctx.helpers.includes(insn.imm)) ctx.helpers.push(insn.imm);
        ins[p + I_OP] = OP_CALL;
        ins[p + I_K1] = insn.imm;
        return;
      }
      const { g } = ctx;
      const target = callTargetOf(insn, pc, c);
      const f = target >= 0 && target < ctx.prog.insns.length ? g.fnOfSlot[target] : -1;
      if (f < 0 || ctx.irFn[f] < 0 || g.fnStart[f] !== target) fail(ctx, pc, `local call target ${target} does not start a function`);
      ins[p + I_OP] = OP_CALLLOCAL;
      ins[p + I_K1] = ctx.irFn[f];
      return;
    }
    case 'callx':
      ins[p + I_OP] = OP_CALLX;
      ins[p + I_A] = dst;
      return;
    default:
      fail(ctx, pc, `unexpected ${c.form} inside a block`);
  }
}
