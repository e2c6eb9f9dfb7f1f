// CFG -> Wasm structured control flow. Reducible graphs (everything clang emits) follow Ramsey's
// "Beyond Relooper" (ICFP 2022): walk the dominator tree; a block's dominator-tree children that
// are merge nodes (two or more forward predecessors) are placed after it, each closing a `block`
// that forward branches leave; loop headers open a `loop` that back edges continue; every other
// successor is emitted inline at its branch. Code order is reverse postorder, so each forward
// branch leaves an enclosing `block` and each back edge targets an enclosing `loop`.
// An irreducible graph (possible in untrusted input) becomes a dispatcher: a `loop` around a
// `br_table` over a label local, each block ending by setting the label and continuing the loop.
//
// A triangle, a two-way branch one of whose arms is a block reached only from it that jumps on to
// the other arm's target, becomes a `fold` when the caller says the arm can run branch-free (eBPF
// has no select, so clang spells every `c ? a : b` that way; an unpredictable one costs a
// mispredicted branch per run through it, where clang's own wasm32 output has a `select`).
//
// An innermost loop that charges the budget and makes no local calls can get a second, guarded
// copy (`fastLoops`): block { loop(guard K) { fast copy } } loop { the original }, where K is what
// one iteration can charge at most (every block of the loop once). The fast copy starts each
// iteration with `budget >= K` or leaves for the original, which picks up at the same header with
// the same state; while the guard holds no block of the loop can run out, so the fast copy's loop
// blocks charge without checking and every fault still happens where it would have. The loop
// then has one exit test less per block, which is what lets V8 keep it tight. A small loop's fast
// copy is unrolled (`unrollFactor`): k copies of the range under one guard of k * K, copies
// 1..k-1 each inside a `block` that their back edges leave to fall into the next copy, the last
// one's back edges continuing the loop; every copy keeps its own exits, so a run may leave after
// any of them, and each block still charges exactly what it ran. When the loop's one exit is a
// test of a counter it decrements once per iteration (`countedExit`), the guard also requires the
// counter to outlast the group's first k-1 copies, and those copies' exit tests become constants.
//
// An innermost loop that walks memory gets a versioned copy in front (`regionOf`, `versionPlan`):
// block { version; block { loop(guard) { k covered copies } } loop { one covered copy } }, then the
// fast copy and the original as above. `version` tests once, at loop entry, that every access
// through each walk (a pointer advanced by a constant, a base plus a scaled induction register, or
// a pointer the loop does not change) of every iteration the loop can run before its counted exit
// (`tripCount`) lies in the region its inline check compares against; then those accesses need no
// check in the covered copies. A failed test leaves for the fast copy or the original, which run
// every check, so a fault is still the interpreter's. Without a budget guard, a counted loop's
// covered copies are grouped under the counter's guard alone; the single covered copy runs the
// iterations a group cannot (the last few, or those near the end of the budget, with their charges
// checked).
//
// The result is a flat command list for lower.ts to emit; br depths count only these frames, so
// the caller may wrap the whole list in frames of its own. Iterative throughout: a long chain of
// blocks must not exhaust the JS stack.
import type { BlockId, Inst, IrFunction } from '../../compiler/ir/ir.js';
import { immediateDominators, versionPlan, writes, type RangeTest, type TripCount, type VersionPlan } from '../../compiler/ir/loops.js';

export type { RangeTest, TripCount, VersionPlan } from '../../compiler/ir/loops.js';

export type Cmd =
  | { op: 'block' }
  /**
   * `guard`: the fast copy's loop: each iteration first leaves for the frame outside unless the
   * budget holds `guard` (and, with `count`, unless the loop's counter lets the group run whole);
   * `count` alone: only the counter's test.
   */
  | { op: 'loop'; guard?: number; count?: CountGuard }
  | { op: 'end' }
  /**
   * The block's instructions (not its terminator); `unchecked`: its charge cannot run out (fast copy);
   * `covered`: accesses a passed version test proved in bounds (versioned copy), which need no check.
   */
  | { op: 'code'; block: BlockId; unchecked?: boolean; covered?: ReadonlySet<Inst> }
  /**
   * The entry test of a versioned loop copy: `br depth` unless every access of every iteration the
   * loop can run before its counted exit lies in its region (see `versionPlan`).
   */
  | { op: 'version'; count: TripCount | undefined; tests: readonly RangeTest[]; covered: ReadonlySet<Inst>; depth: number }
  /** The condition of the block's `br` terminator, then `if`; `known`: the condition's value here (the counter's test in an unrolled copy that cannot exit). */
  | { op: 'if'; block: BlockId; known?: boolean }
  | { op: 'else' }
  | { op: 'br'; depth: number }
  /** The block's `ret` or `fault` terminator (leaves the function). */
  | { op: 'exit'; block: BlockId }
  /** Dispatcher: the label local := the condition of the block's `br` ? then : else, then `br depth`. */
  | { op: 'dispatchBr'; block: BlockId; then: number; else: number; depth: number }
  /** Dispatcher: the label local := value, then `br depth`. */
  | { op: 'dispatchJump'; value: number; depth: number }
  /** Dispatcher: br_table over the label local. */
  | { op: 'table'; depths: number[] }
  /**
   * After the code of `block`: run the code of `arm` exactly when `block`'s `br` condition is
   * `onThen`, without branching; control then goes on to `arm`'s target (the commands that follow
   * treat `block` as a `jump` there).
   */
  | { op: 'fold'; block: BlockId; arm: BlockId; onThen: boolean; unchecked?: boolean };

/**
 * The counter of a counted loop's group of unrolled copies: the group runs whole unless
 * (reg - 1) mod 2^w <u below, i.e. the counter, decremented once per iteration and tested against
 * zero, reaches zero within the first `below` copies.
 */
export interface CountGuard {
  reg: number;
  w: 32 | 64;
  below: number;
}

export interface StructureOptions {
  /**
   * The region a checked access's inline compare tries first, as an id (-1: none can pass, or the
   * access is proven). With it, innermost loops that walk memory get a versioned copy (`version`).
   */
  regionOf?: (i: Inst) => number;
  /** Whether a block may be folded into its predecessor's branch (see `fold`). */
  foldable?: (block: BlockId) => boolean;
  /** Give innermost loops that charge the budget a guarded fast copy (see above). */
  fastLoops?: boolean;
}

export interface Shape {
  cmds: Cmd[];
  /** The function needed the dispatcher (a retreating edge whose target does not dominate its source). */
  irreducible: boolean;
  /** Blocks reachable from the entry, in reverse postorder. */
  order: BlockId[];
}

interface Analysis {
  order: BlockId[];
  /** Reverse-postorder number, -1 when unreachable. */
  rpo: Int32Array;
  idom: Int32Array;
  loopHeader: Uint8Array;
  merge: Uint8Array;
  /** Per block: the arm folded into its branch (see `fold`), or -1. */
  fold: Int32Array;
  preds: Int32Array;
  predStart: Int32Array;
  irreducible: boolean;
}

// Typed arrays throughout: this runs once per function on the JIT path.
function analyze(fn: IrFunction, foldable: ((block: BlockId) => boolean) | undefined): Analysis {
  const n = fn.blocks.length;
  // Successors as two slots per block (-1: none); a br whose arms agree has one.
  const succ = new Int32Array(2 * n).fill(-1);
  const target = (b: number, v: number): number => {
    if (!(Number.isInteger(v) && v >= 0 && v < n)) throw new RangeError(`${fn.name}: block ${b} branches to block ${v}, which does not exist`);
    return v;
  };
  for (let b = 0; b < n; b++) {
    const t = fn.blocks[b].term;
    if (t.op === 'jump') succ[2 * b] = target(b, t.target);
    else if (t.op === 'br') {
      succ[2 * b] = target(b, t.then);
      if (t.else !== t.then) succ[2 * b + 1] = target(b, t.else);
    }
  }
  // Iterative DFS postorder from the entry.
  const post = new Int32Array(n);
  let nPost = 0;
  const seen = new Uint8Array(n);
  const stack = new Int32Array(n);
  const next = new Uint8Array(n);
  let sp = 0;
  stack[sp++] = 0;
  seen[0] = 1;
  while (sp > 0) {
    const b = stack[sp - 1];
    if (next[b] < 2) {
      const s = succ[2 * b + next[b]++];
      if (s >= 0 && seen[s] === 0) {
        seen[s] = 1;
        stack[sp++] = s;
      }
    } else {
      post[nPost++] = b;
      sp--;
    }
  }
  const order: BlockId[] = new Array<BlockId>(nPost);
  const rpo = new Int32Array(n).fill(-1);
  for (let i = 0; i < nPost; i++) {
    const b = post[nPost - 1 - i];
    order[i] = b;
    rpo[b] = i;
  }

  // Predecessors of reachable blocks, compressed: preds[predStart[b] .. predStart[b + 1]).
  const predStart = new Int32Array(n + 1);
  for (const b of order) for (let k = 2 * b; k < 2 * b + 2; k++) if (succ[k] >= 0) predStart[succ[k] + 1]++;
  for (let b = 0; b < n; b++) predStart[b + 1] += predStart[b];
  const preds = new Int32Array(predStart[n]);
  const fill = predStart.slice(0, n);
  for (const b of order) for (let k = 2 * b; k < 2 * b + 2; k++) if (succ[k] >= 0) preds[fill[succ[k]]++] = b;

  const idom = immediateDominators(order, rpo, preds, predStart, n);

  const loopHeader = new Uint8Array(n);
  const forwardIn = new Int32Array(n);
  let irreducible = false;
  for (const u of order) {
    for (let k = 2 * u; k < 2 * u + 2; k++) {
      const v = succ[k];
      if (v < 0) continue;
      if (rpo[v] > rpo[u]) {
        forwardIn[v]++;
        continue;
      }
      // Retreating edge: a back edge only if v dominates u.
      let x = u;
      while (rpo[x] > rpo[v]) x = idom[x];
      if (x === v) loopHeader[v] = 1;
      else irreducible = true;
    }
  }
  // Triangles to fold: the arm's edge into the join is then gone, which may leave the join with a
  // single forward predecessor (emitted inline, no `block` needed).
  const fold = new Int32Array(n).fill(-1);
  if (foldable !== undefined && !irreducible) {
    for (const x of order) {
      const t = fn.blocks[x].term;
      if (t.op !== 'br' || t.then === t.else) continue;
      for (const [arm, other] of [[t.then, t.else], [t.else, t.then]]) {
        const at = fn.blocks[arm].term;
        const single = predStart[arm + 1] - predStart[arm] === 1;
        if (arm !== x && single && !loopHeader[arm] && rpo[arm] > rpo[x] && at.op === 'jump' && at.target === other && foldable(arm)) {
          fold[x] = arm;
          if (rpo[other] > rpo[arm]) forwardIn[other]--;
          break;
        }
      }
    }
  }
  const merge = new Uint8Array(n);
  for (const b of order) if (forwardIn[b] >= 2) merge[b] = 1;
  return { order, rpo, idom, loopHeader, merge, fold, preds, predStart, irreducible };
}

// Frame kinds on the structuring stack; `node` is the block a frame belongs to.
const F_LOOP = 0; // continued by back edges to `node`
const F_BLOCK = 1; // followed by `node`: forward branches to it leave this frame
const F_IF = 2;

// Work items of the iterative translation.
const T_TREE = 0;
const T_WITHIN = 1;
const T_END = 2;
const T_ELSE = 3;
const T_BRANCH = 4;
const T_LOOP_END = 5;

/** Largest loop (instructions, tails included) that gets a fast copy: the copy doubles its code. */
const FAST_LOOP_MAX_INSTS = 600;

export function structureFunction(fn: IrFunction, opts: StructureOptions = {}): Shape {
  const a = analyze(fn, opts.foldable);
  if (a.irreducible) return { cmds: dispatcher(fn, a), irreducible: true, order: a.order };

  const { rpo, idom, loopHeader, merge, fold } = a;
  const n = fn.blocks.length;
  // Merge-node children of each block in the dominator tree as linked lists, highest RPO number
  // first (the outermost `block`, whose code comes last).
  const firstKid = new Int32Array(n).fill(-1);
  const nextKid = new Int32Array(n).fill(-1);
  for (let i = 1; i < a.order.length; i++) {
    const b = a.order[i];
    if (merge[b]) {
      nextKid[b] = firstKid[idom[b]];
      firstKid[idom[b]] = b;
    }
  }

  const cmds: Cmd[] = [];
  const loopStart = new Int32Array(n).fill(-1);
  const loopEnd = new Int32Array(n).fill(-1);
  const frameKind: number[] = [];
  const frameNode: number[] = [];
  // Where each block's open loop and block frames are on the stack (-1: none open): a block has at
  // most one of each, and a deep nest of merges would make a search per branch quadratic.
  const framePos = [new Int32Array(n).fill(-1), new Int32Array(n).fill(-1)];
  const open = (kind: number, node: number): void => {
    if (kind !== F_IF) framePos[kind][node] = frameKind.length;
    frameKind.push(kind);
    frameNode.push(node);
  };
  const close = (): void => {
    const kind = frameKind.pop()!;
    const node = frameNode.pop()!;
    if (kind !== F_IF) framePos[kind][node] = -1;
  };
  const depthOf = (kind: number, node: number): number => {
    const at = framePos[kind][node];
    if (at < 0) throw new Error(`${fn.name}: no enclosing frame for block ${node} (structuring bug)`);
    return frameKind.length - 1 - at;
  };

  // Work stack of (tag, x, y) triples, popped last-in first-out.
  const work: number[] = [T_TREE, 0, 0];
  const push = (tag: number, x: number, y: number): void => {
    work.push(tag, x, y);
  };
  while (work.length > 0) {
    const y = work.pop()!;
    const x = work.pop()!;
    const tag = work.pop()!;
    switch (tag) {
      case T_TREE:
        if (loopHeader[x]) {
          loopStart[x] = cmds.length;
          cmds.push({ op: 'loop' });
          open(F_LOOP, x);
          push(T_LOOP_END, x, 0);
        }
        push(T_WITHIN, x, firstKid[x]);
        break;
      case T_WITHIN: {
        // y: the next merge child to open a block for, -1 when all are open.
        if (y >= 0) {
          cmds.push({ op: 'block' });
          open(F_BLOCK, y);
          push(T_TREE, y, 0);
          push(T_END, 0, 0);
          push(T_WITHIN, x, nextKid[y]);
          break;
        }
        cmds.push({ op: 'code', block: x });
        const t = fn.blocks[x].term;
        if (t.op === 'jump' || (t.op === 'br' && t.then === t.else)) {
          push(T_BRANCH, x, t.op === 'jump' ? t.target : t.then);
        } else if (t.op === 'br' && fold[x] >= 0) {
          const arm = fold[x];
          cmds.push({ op: 'fold', block: x, arm, onThen: arm === t.then });
          push(T_BRANCH, x, arm === t.then ? t.else : t.then);
        } else if (t.op === 'br') {
          cmds.push({ op: 'if', block: x });
          open(F_IF, x);
          push(T_END, 0, 0);
          push(T_BRANCH, x, t.else);
          push(T_ELSE, 0, 0);
          push(T_BRANCH, x, t.then);
        } else {
          cmds.push({ op: 'exit', block: x });
        }
        break;
      }
      case T_LOOP_END:
        loopEnd[x] = cmds.length;
        cmds.push({ op: 'end' });
        close();
        break;
      case T_END:
        cmds.push({ op: 'end' });
        close();
        break;
      case T_ELSE:
        cmds.push({ op: 'else' });
        break;
      case T_BRANCH:
        if (rpo[y] <= rpo[x]) cmds.push({ op: 'br', depth: depthOf(F_LOOP, y) });
        else if (merge[y]) cmds.push({ op: 'br', depth: depthOf(F_BLOCK, y) });
        else push(T_TREE, y, 0);
        break;
    }
  }
  const out = opts.fastLoops || opts.regionOf !== undefined ? withLoopCopies(fn, a, cmds, loopStart, loopEnd, opts) : cmds;
  return { cmds: out, irreducible: false, order: a.order };
}

/** Budget charged by a block's instructions, or -1 when it makes a local call (the callee charges the same budget). */
function blockCharge(fn: IrFunction, b: BlockId): number {
  let cost = 0;
  for (const i of fn.blocks[b].insts) {
    if (i.op === 'calllocal') return -1;
    if (i.op === 'budget') cost += i.cost;
  }
  return cost;
}

/** The command list with a versioned copy and a guarded fast copy in front of every eligible innermost loop. */
function withLoopCopies(fn: IrFunction, a: Analysis, cmds: Cmd[], loopStart: Int32Array, loopEnd: Int32Array, opts: StructureOptions): Cmd[] {
  const n = fn.blocks.length;
  const { rpo, preds, predStart, loopHeader } = a;
  const inLoop = new Int32Array(n).fill(-1); // the header whose body was last collected
  // The loop being looked at, marked while it is (one array for all: a function may have hundreds).
  const mark = new Uint8Array(n);
  // Per block, the copied loop it belongs to (copied loops are innermost, so disjoint), or -1.
  const owner = new Int32Array(n).fill(-1);
  const copies: { id: number; header: BlockId; start: number; end: number; guard: number; k: number; counted: CountedExit | undefined; plan: VersionPlan | undefined }[] = [];
  for (const h of a.order) {
    if (!loopHeader[h] || loopStart[h] < 0) continue;
    // The natural loop: everything that reaches a back edge into h without passing through h.
    const body: number[] = [h];
    inLoop[h] = h;
    for (let k = predStart[h]; k < predStart[h + 1]; k++) {
      const u = preds[k];
      if (rpo[u] >= rpo[h] && inLoop[u] !== h) {
        inLoop[u] = h;
        body.push(u);
      }
    }
    for (let i = 1; i < body.length; i++) {
      const b = body[i];
      for (let k = predStart[b]; k < predStart[b + 1]; k++) {
        const p = preds[k];
        if (inLoop[p] !== h) {
          inLoop[p] = h;
          body.push(p);
        }
      }
    }
    let guard = 0;
    let eligible = true;
    let calls = false;
    for (const b of body) {
      const c = blockCharge(fn, b);
      if (b !== h && loopHeader[b]) eligible = false;
      if (c < 0) calls = true;
      else guard += c;
    }
    if (!eligible) continue;
    // The copied range must hold this loop only (its tails are copied too) and stay small.
    const start = loopStart[h];
    const end = loopEnd[h];
    let insts = 0;
    for (let i = start + 1; i < end && eligible; i++) {
      const c = cmds[i];
      if (c.op === 'loop') eligible = false;
      else if (c.op === 'code') insts += fn.blocks[c.block].insts.length;
    }
    if (!eligible || insts > FAST_LOOP_MAX_INSTS) continue;
    // In block order: the analyses below visit blocks in that order.
    const list = body.slice().sort((x, y) => x - y);
    let bodyInsts = 0;
    for (const b of list) {
      mark[b] = 1;
      bodyInsts += fn.blocks[b].insts.length;
    }
    const fast = opts.fastLoops === true && !calls && guard > 0;
    const plan = opts.regionOf !== undefined ? versionPlan(fn, a, mark, list, h, opts.regionOf) : undefined;
    if (fast || plan !== undefined) {
      const k = unrollFactor(bodyInsts, insts);
      const counted = k > 1 ? countedExit(fn, a, mark, list, h) : undefined;
      const id = copies.length;
      for (const b of list) owner[b] = id;
      copies.push({ id, header: h, start, end, guard: fast ? guard : 0, k, counted, plan });
    }
    for (const b of list) mark[b] = 0;
  }
  if (copies.length === 0) return cmds;
  copies.sort((x, y) => x.start - y.start);
  const out: Cmd[] = [];
  // Commands are never changed once made: copies share them (one per branch depth, one per block variant).
  const brs: Cmd[] = [];
  const br = (depth: number): Cmd => (brs[depth] ??= { op: 'br', depth });
  const codeCmds = new Map<ReadonlySet<Inst> | undefined, Cmd[]>();
  let at = 0;
  for (const c of copies) {
    const inBody = (b: BlockId): boolean => owner[b] === c.id;
    for (; at < c.start; at++) out.push(cmds[at]);
    const fast = c.guard > 0;
    const { k, counted } = c;
    // Without a budget guard, only a counted loop's copies can be grouped (under the counter's guard).
    const kv = fast || counted !== undefined ? k : 1;
    /**
     * loop(guard) { kk copies of the range }, `outer` frames inside the range's original place. Copies
     * 1..kk-1 sit each in a `block` that their back edges leave, falling into the next copy; the last
     * one's back edges continue the loop (and its guard). Branches out of the range cross the extra
     * frames too. `guarded`: the budget guard (the copies' charges cannot run out).
     */
    const emitLoop = (kk: number, guarded: boolean, covered: ReadonlySet<Inst> | undefined, outer: number): void => {
      const count: CountGuard | undefined = kk > 1 && counted !== undefined ? { reg: counted.reg, w: counted.w, below: kk - 1 } : undefined;
      const loop: Cmd = { op: 'loop' };
      if (guarded) loop.guard = c.guard * kk;
      if (count !== undefined) loop.count = count;
      out.push(loop);
      for (let copy = 1; copy <= kk; copy++) {
        const last = copy === kk;
        if (!last) out.push({ op: 'block' });
        const extra = (last ? 0 : 1) + outer;
        let level = 1;
        for (let i = c.start + 1; i < c.end; i++) {
          const cmd = cmds[i];
          switch (cmd.op) {
            case 'block':
            case 'loop':
              level++;
              out.push(cmd);
              break;
            case 'if':
              level++;
              // The counter guard ruled out an exit before the last copy.
              out.push(count !== undefined && counted !== undefined && !last && cmd.block === counted.block ? { ...cmd, known: !counted.exitOnThen } : cmd);
              break;
            case 'end':
              level--;
              out.push(cmd);
              break;
            case 'br':
              out.push(cmd.depth >= level ? br(cmd.depth + extra) : cmd);
              break;
            case 'code':
              if (!inBody(cmd.block)) out.push(cmd);
              else {
                let list = codeCmds.get(covered);
                if (list === undefined) codeCmds.set(covered, (list = []));
                const slot = 2 * cmd.block + (guarded ? 1 : 0);
                let x = list[slot];
                if (x === undefined) {
                  const made: Cmd = { op: 'code', block: cmd.block };
                  if (guarded) made.unchecked = true;
                  if (covered !== undefined) made.covered = covered;
                  list[slot] = x = made;
                }
                out.push(x);
              }
              break;
            case 'fold':
              out.push(guarded && inBody(cmd.block) ? { ...cmd, unchecked: true } : cmd);
              break;
            default:
              out.push(cmd);
          }
        }
        if (!last) out.push({ op: 'end' });
      }
      out.push({ op: 'end' });
    };
    const plan = c.plan;
    if (plan !== undefined) {
      // block { version; block { loop(guard) { kv copies } } loop { one copy } }: all covered. The
      // grouped copies leave for the single one where their guard fails (budget, or the counter's
      // last iterations), which goes on with the version test's guarantee and checks its charges.
      out.push({ op: 'block' }, { op: 'version', count: plan.count, tests: plan.tests, covered: plan.covered, depth: 0 });
      if (fast || kv > 1) {
        out.push({ op: 'block' });
        emitLoop(kv, fast, plan.covered, 2);
        out.push({ op: 'end' });
      }
      emitLoop(1, false, plan.covered, 1);
      out.push({ op: 'end' });
    }
    if (fast) {
      out.push({ op: 'block' });
      emitLoop(k, true, undefined, 1);
      out.push({ op: 'end' });
    }
  }
  for (; at < cmds.length; at++) out.push(cmds[at]);
  return out;
}

/** A loop whose every exit is one block's test of a counter it decrements (see `countedExit`). */
interface CountedExit {
  block: BlockId;
  reg: number;
  w: 32 | 64;
  /** The exit is the `br`'s then arm (cond eq), else its else arm (cond ne). */
  exitOnThen: boolean;
}

/**
 * A loop (blocks marked in `body`, header h) is counted when exactly one block E leaves it, by
 * `br eq|ne C, 0` right after `C = add C, -1` at the same width, E dominates every back edge's
 * source (so each iteration runs E once), and nothing else in the loop writes C. Then with c the
 * counter at the header, iteration j of a group exits at E only if c = j (mod 2^w): a group of k
 * copies entered with (c - 1) >=u k - 1 cannot leave before its last copy.
 */
function countedExit(fn: IrFunction, a: Analysis, body: Uint8Array, list: readonly BlockId[], h: BlockId): CountedExit | undefined {
  let exit = -1;
  for (const b of list) {
    const t = fn.blocks[b].term;
    const leaves = t.op === 'ret' || t.op === 'fault'
      || (t.op === 'jump' && !body[t.target])
      || (t.op === 'br' && (!body[t.then] || !body[t.else]));
    if (!leaves) continue;
    if (exit >= 0 || t.op !== 'br') return undefined;
    exit = b;
  }
  if (exit < 0 || a.fold[exit] >= 0) return undefined;
  const t = fn.blocks[exit].term;
  if (t.op !== 'br' || !('imm' in t.b) || t.b.imm !== 0 || (t.cond !== 'eq' && t.cond !== 'ne')) return undefined;
  const exitOnThen = !body[t.then];
  if (exitOnThen === !body[t.else] || exitOnThen !== (t.cond === 'eq')) return undefined;
  const c = t.a;
  // The decrement: the last definition of C in E, and the only one in the loop.
  const insts = fn.blocks[exit].insts;
  let dec = -1;
  for (const b of list) {
    const list = fn.blocks[b].insts;
    for (let k = 0; k < list.length; k++) {
      if (!writes(list[k], c)) continue;
      if (b !== exit || dec >= 0) return undefined;
      dec = k;
    }
  }
  const d = dec >= 0 ? insts[dec] : undefined;
  const minusOne = d?.op === 'bin' && 'imm' in d.b && ((d.bin === 'add' && d.b.imm === -1) || (d.bin === 'sub' && d.b.imm === 1));
  if (d === undefined || d.op !== 'bin' || !minusOne || d.a !== c || d.w !== t.w) return undefined;
  // E dominates every latch.
  for (let k = a.predStart[h]; k < a.predStart[h + 1]; k++) {
    let u = a.preds[k];
    if (!body[u]) continue;
    while (u !== exit && u !== h) u = a.idom[u];
    if (u !== exit) return undefined;
  }
  return { block: exit, reg: c, w: t.w, exitOnThen };
}

/**
 * How many iterations one guard test covers, by the loop's size: small bodies run several copies
 * back to back (each keeps its own exits), so the loop pays for its guard and back edge once per
 * group, as clang's unrolled loops do. The whole copied range (tails included) grows by the factor,
 * so that is capped too.
 */
function unrollFactor(bodyInsts: number, rangeInsts: number): number {
  for (const [max, k] of UNROLL) if (bodyInsts <= max && rangeInsts * k <= UNROLL_MAX_INSTS) return k;
  return 1;
}
/** (largest loop body in IR instructions, copies per guard), largest factor first. */
const UNROLL: readonly (readonly [number, number])[] = [[12, 8], [24, 4], [48, 2]];
/** Most IR instructions the copies of one loop's range may add up to. */
const UNROLL_MAX_INSTS = 256;

/**
 * loop { block_{k-1} { ... block_0 { br_table } code_0 } code_1 ... } over the reachable blocks in
 * reverse postorder (index k = position); after code_i the open frames are the loop and
 * block_{k-1}..block_{i+1}, so the loop is at depth k-1-i.
 */
function dispatcher(fn: IrFunction, a: Analysis): Cmd[] {
  const k = a.order.length;
  const index = new Int32Array(fn.blocks.length).fill(-1);
  a.order.forEach((b, i) => (index[b] = i));
  const cmds: Cmd[] = [{ op: 'loop' }];
  for (let i = 0; i < k; i++) cmds.push({ op: 'block' });
  cmds.push({ op: 'table', depths: Array.from({ length: k }, (_, i) => i) });
  for (let i = 0; i < k; i++) {
    cmds.push({ op: 'end' });
    const b = a.order[i];
    const loopDepth = k - 1 - i;
    cmds.push({ op: 'code', block: b });
    const t = fn.blocks[b].term;
    if (t.op === 'jump' || (t.op === 'br' && t.then === t.else)) {
      const target = index[t.op === 'jump' ? t.target : t.then];
      // The next block's code follows right after this one's frame closes.
      if (target !== i + 1) cmds.push({ op: 'dispatchJump', value: target, depth: loopDepth });
    } else if (t.op === 'br') {
      cmds.push({ op: 'dispatchBr', block: b, then: index[t.then], else: index[t.else], depth: loopDepth });
    } else {
      cmds.push({ op: 'exit', block: b });
    }
  }
  cmds.push({ op: 'end' });
  return cmds;
}
