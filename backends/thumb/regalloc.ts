// Which eBPF register halves live in ARM registers. Every IR register has two 32-bit halves, each
// with a slot in the run state (abi.ts); the hottest halves also get a home register among r0-r9,
// chosen by static mention counts weighted by loop depth (8x per level). The mapping is global to
// the module: local calls share one register file (the callee sees the caller's values, as in the
// interpreter), and r6-r9 are saved and restored around calls by the call sequence itself.
//
// A half counts only where it is read or written: ALU32 code mentions only low halves, and a
// definition marked hiDead does not write its upper half, so 32-bit code does not waste homes.
import type { BinOp, Block, Inst, IrFunction, IrModule, Operand, Terminator } from '../../compiler/ir/ir.js';
import { FRAME_REG as R10 } from '../../compiler/ir/ir.js';
import { MAX_VREGS } from './abi.js';

export interface HalfRef {
  reg: number;
  half: 0 | 1;
}

export interface Allocation {
  /** Home ARM register of a half, by `reg * 2 + half`; absent = lives in its state slot only. */
  homes: Map<number, number>;
  /** Halves known wherever they are read (known.ts): never stored, never homed. */
  eliminated: ReadonlySet<number>;
  /** ARM register holding the remaining budget while the code runs (when the module charges any). */
  budgetReg?: number;
  /** Number of IR registers (slots reserved in the state). */
  nregs: number;
  /** Loop depth of each block, per function. */
  depth: number[][];
  /** Homes per loop (single-function modules): each loop gets its own hottest halves. */
  regions?: RegionHomes;
}

/**
 * Each loop of function 0 is a region with its own homes, holding the blocks of the loop that no
 * inner loop holds; the blocks outside every loop (region 0) use `Allocation.homes`. A loop's
 * homes are its hottest halves, preferring those of the enclosing region and their registers.
 * Edges between regions move the halves live across them whose homes differ (lower.ts), which
 * happens once per entry to a loop and once per exit.
 */
export interface RegionHomes {
  /** Region of each block: 0 outside every loop, else 1 + its innermost loop (parents first). */
  of: number[];
  /** Homes of each region (index 0 = `Allocation.homes`). */
  homes: Array<Map<number, number>>;
}

/** ARM registers that may hold halves, in the order the hottest halves take them. */
export const HOME_REGS: readonly number[] = [4, 5, 6, 7, 0, 1, 2, 3, 8, 9];

/**
 * The budget's register when a module charges budget: callee-saved under AAPCS (helpers and the
 * division routine keep it), and a high register, which costs the homes least (most narrow
 * encodings want r0-r7).
 */
export const BUDGET_REG = 9;

/** Registers AAPCS lets a C call clobber, among the homes. */
export const CALLER_SAVED_HOMES: ReadonlySet<number> = new Set([0, 1, 2, 3]);

export class AllocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AllocationError';
  }
}

export const halfKey = (reg: number, half: 0 | 1): number => reg * 2 + half;

/** 64-bit operations whose low half depends on low halves only. */
/** Operations whose low 32 bits depend only on their operands' low halves (alu64.ts lowers them so when the high half is dead). */
export const LOW_ONLY: ReadonlySet<BinOp> = new Set<BinOp>(['add', 'sub', 'mul', 'and', 'or', 'xor', 'shl']);

function opRegs(b: Operand): number[] {
  return 'reg' in b ? [b.reg] : [];
}

/** The halves an instruction reads or writes (a half may appear twice: both count). */
export function instHalves(inst: Inst): HalfRef[] {
  const out: HalfRef[] = [];
  const lo = (r: number): void => {
    out.push({ reg: r, half: 0 });
  };
  const both = (r: number): void => {
    out.push({ reg: r, half: 0 }, { reg: r, half: 1 });
  };
  const def = (d: { dst: number; hiDead?: boolean }): void => {
    lo(d.dst);
    if (!d.hiDead) out.push({ reg: d.dst, half: 1 });
  };
  switch (inst.op) {
    case 'const':
    case 'addr':
      def(inst);
      break;
    case 'mov':
    case 'neg':
      // With a dead upper half only the low one is read (alu64.ts).
      (inst.w === 64 && !inst.hiDead ? both : lo)(inst.src);
      def(inst);
      break;
    case 'ext':
      lo(inst.src); // every extension reads at most 32 bits
      def(inst);
      break;
    case 'bswap':
      (inst.bits === 64 ? both : lo)(inst.src);
      def(inst);
      break;
    case 'bin': {
      const shift = inst.bin === 'shl' || inst.bin === 'lshr' || inst.bin === 'ashr';
      const wide = inst.w === 64 && !(inst.hiDead === true && LOW_ONLY.has(inst.bin));
      (wide ? both : lo)(inst.a);
      for (const r of opRegs(inst.b)) (wide && !shift ? both : lo)(r);
      def(inst);
      break;
    }
    case 'load':
      both(inst.base);
      def(inst);
      break;
    case 'store':
      both(inst.base);
      for (const r of opRegs(inst.value)) (inst.size === 8 ? both : lo)(r);
      break;
    case 'atomic':
      both(inst.base);
      (inst.size === 8 ? both : lo)(inst.src);
      if (inst.aop === 'cmpxchg') (inst.size === 8 ? both : lo)(0);
      break;
    case 'call':
    case 'callx':
    case 'calllocal':
      if (inst.op === 'callx') both(inst.reg);
      both(0);
      break;
    case 'budget':
      break;
  }
  return out.filter((h) => h.reg !== R10);
}

function termHalves(t: Terminator): HalfRef[] {
  if (t.op !== 'br') return t.op === 'ret' ? [{ reg: 0, half: 0 }, { reg: 0, half: 1 }] : [];
  const regs = [t.a, ...opRegs(t.b)];
  const out: HalfRef[] = [];
  for (const r of regs) {
    if (r === R10) continue;
    out.push({ reg: r, half: 0 });
    if (t.w === 64) out.push({ reg: r, half: 1 });
  }
  return out;
}

export function successors(t: Terminator): number[] {
  if (t.op === 'jump') return [t.target];
  if (t.op === 'br') return [t.then, t.else];
  return [];
}

/** Natural loops: each back edge's header and the blocks of its loop (found by DFS back edges). */
export function naturalLoops(fn: IrFunction): Array<{ head: number; body: Set<number> }> {
  const n = fn.blocks.length;
  const preds: number[][] = fn.blocks.map(() => []);
  fn.blocks.forEach((b: Block) => {
    for (const s of successors(b.term)) if (s >= 0 && s < n) preds[s].push(b.id);
  });
  const state = new Uint8Array(n); // 0 unvisited, 1 on stack, 2 done
  const backEdges: Array<[number, number]> = [];
  const stack: Array<{ b: number; i: number }> = [];
  if (n > 0) {
    stack.push({ b: 0, i: 0 });
    state[0] = 1;
  }
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const succ = successors(fn.blocks[top.b].term);
    if (top.i < succ.length) {
      const s = succ[top.i++];
      if (s < 0 || s >= n) continue;
      if (state[s] === 1) backEdges.push([top.b, s]);
      else if (state[s] === 0) {
        state[s] = 1;
        stack.push({ b: s, i: 0 });
      }
    } else {
      state[top.b] = 2;
      stack.pop();
    }
  }
  return backEdges.map(([from, head]) => {
    const body = new Set<number>([head]);
    const work = [from];
    while (work.length > 0) {
      const b = work.pop() as number;
      if (body.has(b)) continue;
      body.add(b);
      for (const p of preds[b]) work.push(p);
    }
    return { head, body };
  });
}

/** Loop depth of every block: the number of natural loops containing it. */
export function loopDepths(fn: IrFunction): number[] {
  const depth = new Array<number>(fn.blocks.length).fill(0);
  for (const { body } of naturalLoops(fn)) for (const b of body) depth[b]++;
  return depth;
}

/**
 * Adds each block's mentions, weighted by loop depth: the lowered code's (`mentions`, liveness.ts
 * loweredMentions) when given, else the IR's.
 */
function blockWeights(
  f: IrFunction, d: number[], eliminated: ReadonlySet<number>, weight: Map<number, number>, only?: (b: number) => boolean,
  mentions?: readonly number[][],
): void {
  for (const b of f.blocks) {
    if (only !== undefined && !only(b.id)) continue;
    const w = 8 ** Math.min(d[b.id], 6);
    const add = (k: number): void => {
      if (eliminated.has(k)) return;
      weight.set(k, (weight.get(k) ?? 0) + w);
    };
    const listed = mentions?.[b.id];
    if (listed !== undefined) {
      listed.forEach(add);
      continue;
    }
    const addRef = (h: HalfRef): void => add(halfKey(h.reg, h.half));
    for (const inst of b.insts) instHalves(inst).forEach(addRef);
    termHalves(b.term).forEach(addRef);
  }
}

/** Heaviest first; ties go to the lower key so that the result is deterministic. */
const rank = (weight: Map<number, number>): number[] => [...weight.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0]).map(([k]) => k);

/**
 * The loop tree of `fn`: per loop (parents before children) its blocks, header depth and parent
 * (0 = none), and each block's innermost loop (0 outside every loop); undefined when two loops
 * overlap without nesting or the entry block is in a loop.
 */
function loopTree(fn: IrFunction): { of: number[]; loops: Array<{ body: Set<number>; parent: number }> } | undefined {
  const byHead = new Map<number, Set<number>>();
  for (const { head, body } of naturalLoops(fn)) {
    const all = byHead.get(head) ?? new Set<number>();
    for (const b of body) all.add(b);
    byHead.set(head, all);
  }
  // Larger bodies first: a loop's parent is then always numbered before it.
  const bodies = [...byHead.entries()].sort((x, y) => y[1].size - x[1].size || x[0] - y[0]).map(([, b]) => b);
  const loops: Array<{ body: Set<number>; parent: number }> = [];
  const of = new Array<number>(fn.blocks.length).fill(0);
  for (const [i, body] of bodies.entries()) {
    const id = i + 1;
    // Every block already claimed must be claimed by one loop that holds all of this one.
    let parent = -1;
    for (const b of body) {
      const p = of[b];
      if (parent === -1) parent = p;
      else if (p !== parent) return undefined;
    }
    if (parent > 0 && ![...body].every((b) => loops[parent - 1].body.has(b))) return undefined;
    loops.push({ body, parent: Math.max(parent, 0) });
    for (const b of body) of[b] = id;
  }
  return of[0] === 0 && loops.length > 0 ? { of, loops } : undefined;
}

/**
 * `mentions[f][b]`: the halves block b of function f touches as lowered (liveness.ts
 * loweredMentions); without them the IR's mentions (instHalves) weigh the homes.
 */
export function allocate(
  m: IrModule, eliminated: ReadonlySet<number> = new Set(), maxHomes = HOME_REGS.length, mentions?: readonly (readonly number[][])[],
): Allocation {
  let maxReg = 10;
  for (const f of m.functions) maxReg = Math.max(maxReg, f.maxReg);
  const nregs = maxReg + 1;
  if (nregs > MAX_VREGS) {
    throw new AllocationError(`the IR uses ${nregs} registers; the device runtime holds at most ${MAX_VREGS}`);
  }
  const weight = new Map<number, number>();
  const depth: number[][] = [];
  for (const [fi, f] of m.functions.entries()) {
    const d = loopDepths(f);
    depth.push(d);
    blockWeights(f, d, eliminated, weight, undefined, mentions?.[fi]);
  }
  const budgeted = m.functions.some((f) => f.blocks.some((b) => b.insts.some((i) => i.op === 'budget')));
  const regs = budgeted ? HOME_REGS.filter((r) => r !== BUDGET_REG) : HOME_REGS;
  const count = Math.min(maxHomes, regs.length);
  const homes = new Map<number, number>();
  rank(weight).slice(0, count).forEach((k, i) => homes.set(k, regs[i]));
  const alloc: Allocation = { homes, nregs, depth, eliminated, budgetReg: budgeted ? BUDGET_REG : undefined };
  const f = m.functions[0];
  const tree = m.functions.length === 1 ? loopTree(f) : undefined;
  if (tree === undefined) return alloc;
  const { of, loops } = tree;
  const regionHomes = [homes];
  for (const [i, loop] of loops.entries()) {
    const parent = regionHomes[loop.parent];
    const w = new Map<number, number>();
    blockWeights(f, depth[0], eliminated, w, (b) => loop.body.has(b), mentions?.[0]);
    // A half the enclosing code keeps in a register costs a move on every way in and out of the
    // loop if it loses it: worth a store and a load at the depth the loop is entered from.
    const head = Math.min(...[...loop.body].map((b) => depth[0][b]));
    const stay = 2 * 8 ** Math.min(Math.max(head - 1, 0), 6);
    for (const k of parent.keys()) w.set(k, (w.get(k) ?? 0) + stay);
    const chosen = rank(w).slice(0, count);
    // A half keeps its register where it can, so that fewer halves move on the way in and out.
    const map = new Map<number, number>();
    for (const k of chosen) {
      const r = parent.get(k);
      if (r !== undefined) map.set(k, r);
    }
    const spare = regs.filter((r) => ![...map.values()].includes(r));
    for (const k of chosen) if (!map.has(k)) map.set(k, spare.shift() as number);
    regionHomes[i + 1] = map;
  }
  alloc.regions = { of, homes: regionHomes };
  return alloc;
}
