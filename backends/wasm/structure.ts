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

/**
 * A counted loop's trip count: the counter `reg` (width w) steps by +1 (`up`) or -1 once per
 * iteration and the loop goes on while it differs from `bound` (or, `strict`, while it is below the
 * bound (up) or above it (down)). Entered with counter c, at most m + 1 iterations run, where
 * m = (bound - c - 1) mod 2^w (up) or (c - bound - 1) mod 2^w (down); `strict` loops also need
 * c <u bound (up) or c >u bound (down) at entry for that.
 */
export interface TripCount {
  reg: number;
  w: 32 | 64;
  up: boolean;
  bound: { reg: number } | { imm: number };
  strict: boolean;
}

/**
 * One walk's entry test: the walk's pointer at iteration t (t = 0 .. m) is P0 + t * step, with
 * P0 = base (+ (index << shift)) at entry; every covered access through it touches bytes inside
 * [P + lo, P + lo + len) of some such P (step 0: a pointer the loop does not change). All of them
 * lie in `region` (the one their inline checks compare against) when the whole swept range does.
 */
export interface RangeTest {
  base: number;
  index?: { reg: number; shift: number };
  lo: number;
  len: number;
  step: number;
  /** Region id as `regionOf` gives it. */
  region: number;
}

/** A versioned loop: its entry tests and the accesses they cover. */
export interface VersionPlan {
  count: TripCount | undefined;
  tests: RangeTest[];
  covered: ReadonlySet<Inst>;
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

  // Cooper, Harvey, Kennedy: "A Simple, Fast Dominance Algorithm".
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 1; i < nPost; i++) {
      const b = order[i];
      let d = -1;
      for (let k = predStart[b]; k < predStart[b + 1]; k++) {
        let p = preds[k];
        if (idom[p] === -1) continue;
        if (d === -1) {
          d = p;
          continue;
        }
        while (p !== d) {
          while (rpo[p] > rpo[d]) p = idom[p];
          while (rpo[d] > rpo[p]) d = idom[d];
        }
      }
      if (d !== idom[b]) {
        idom[b] = d;
        changed = true;
      }
    }
  }

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

/** Whether an instruction may write register r (a helper call writes r0; an atomic fetch its source, cmpxchg r0). */
function writes(i: Inst, r: number): boolean {
  if ('dst' in i) return i.dst === r;
  if (i.op === 'call' || i.op === 'callx' || i.op === 'calllocal') return r <= 5;
  if (i.op === 'atomic') return (i.fetch && i.src === r) || (i.aop === 'xchg' && i.src === r) || (i.aop === 'cmpxchg' && r === 0);
  return false;
}

/** The condition under which a `br` goes to its else arm. */
const NEGATE: Record<string, string> = { eq: 'ne', ne: 'eq', ult: 'uge', uge: 'ult', ugt: 'ule', ule: 'ugt' };
/** Largest step (bytes per iteration, either sign) a walk may take: keeps the entry test's products far from 2^64. */
const MAX_STEP = 1 << 24;
/** Largest shift of an index a walk accepts. */
const MAX_SHIFT = 8;

/**
 * The loop's counted exit for versioning: a block E that dominates every latch (so each completed
 * iteration ran it once) and leaves the loop by `br` on C against B, right after C's only write in
 * the loop, `C = C +- 1` at the compare's width, with B an immediate or a register the loop does not
 * write. Other exits may exist: iterations that leave early run fewer accesses.
 */
function tripCount(
  fn: IrFunction, a: Analysis, body: Uint8Array, list: readonly BlockId[], h: BlockId, written: Uint8Array,
  nWrites: Int32Array, lastBlock: Int32Array, lastInst: readonly (Inst | undefined)[],
): TripCount | undefined {
  for (const e of list) {
    const t = fn.blocks[e].term;
    if (t.op !== 'br' || body[t.then] === body[t.else]) continue;
    const goOn = body[t.then] ? t.cond : NEGATE[t.cond];
    if (goOn === undefined) continue;
    const c = t.a;
    if ('reg' in t.b && (written[t.b.reg] || t.b.reg === c)) continue;
    // C's only write in the loop is an instruction of E.
    if (!(c >= 0 && c < nWrites.length) || nWrites[c] !== 1 || lastBlock[c] !== e) continue;
    const site = lastInst[c];
    if (site === undefined || site.op !== 'bin' || site.a !== c || site.w !== t.w || !('imm' in site.b)) continue;
    const step = site.bin === 'add' ? site.b.imm : site.bin === 'sub' ? -site.b.imm : 0;
    if (step !== 1 && step !== -1) continue;
    const up = step === 1;
    if (!(goOn === 'ne' || (up && goOn === 'ult') || (!up && goOn === 'ugt'))) continue;
    let latches = true;
    for (let k = a.predStart[h]; k < a.predStart[h + 1] && latches; k++) {
      if (body[a.preds[k]] && !dominates(a, e, a.preds[k])) latches = false;
    }
    if (!latches) continue;
    return { reg: c, w: t.w, up, bound: 'reg' in t.b ? { reg: t.b.reg } : { imm: t.b.imm }, strict: goOn !== 'ne' };
  }
  return undefined;
}

function dominates(a: Analysis, x: BlockId, y: BlockId): boolean {
  let u = y;
  while (a.rpo[u] > a.rpo[x]) u = a.idom[u];
  return u === x;
}

/** An induction register: written once in the loop, by `R = R + step` (64-bit) at insts[at] of `block`. */
interface Induction {
  step: number;
  block: BlockId;
  at: number;
}

/**
 * The walks of an innermost loop (blocks marked in `body`, header h) and the checked accesses
 * their entry tests cover. An access is covered when its base register B, at the access, is
 * - not written in the loop (step 0);
 * - an induction register P (`P += step`, once per iteration at most: an innermost loop's body runs
 *   each block at most once per iteration), so B = P_t + d with d in {0, step} (whether the
 *   increment ran before it in this iteration), P_t = P0 + t * step for some t <= the iterations
 *   before this one: t <= m;
 * - defined earlier in its own block as A + I or A + (I << s) (64-bit), with A not written in the
 *   loop and I an induction register: the same walk with P0 = A + (I0 << s) and step << s.
 * Accesses whose region is -1 (proven, or a write guessed into a read-only region) keep their checks.
 */
function versionPlan(fn: IrFunction, a: Analysis, body: Uint8Array, list: readonly BlockId[], h: BlockId, regionOf: (i: Inst) => number): VersionPlan | undefined {
  const nRegs = Math.max(11, fn.maxReg + 1);
  const written = new Uint8Array(nRegs);
  const nWrites = new Int32Array(nRegs);
  // Per register, the last write in the loop (block, instruction), for tripCount.
  const lastBlock = new Int32Array(nRegs);
  const lastInst: (Inst | undefined)[] = new Array<Inst | undefined>(nRegs);
  const ivs = new Map<number, Induction>();
  const wrote = (r: number, i: Inst, b: number, k: number): void => {
    if (!(r >= 0 && r < nRegs)) return;
    written[r] = 1;
    nWrites[r]++;
    lastBlock[r] = b;
    lastInst[r] = i;
    if (i.op === 'bin' && i.w === 64 && i.dst === r && i.a === r && 'imm' in i.b && (i.bin === 'add' || i.bin === 'sub')) {
      const step = i.bin === 'add' ? i.b.imm : -i.b.imm;
      if (Math.abs(step) <= MAX_STEP) ivs.set(r, { step, block: b, at: k });
    }
  };
  for (const b of list) {
    const insts = fn.blocks[b].insts;
    for (let k = 0; k < insts.length; k++) {
      // The registers `writes` says the instruction may write, each once.
      const i = insts[k];
      if ('dst' in i) wrote(i.dst, i, b, k);
      else if (i.op === 'call' || i.op === 'callx' || i.op === 'calllocal') for (let r = 0; r <= 5; r++) wrote(r, i, b, k);
      else if (i.op === 'atomic') {
        const src = i.fetch || i.aop === 'xchg' ? i.src : -1;
        if (src >= 0) wrote(src, i, b, k);
        if (i.aop === 'cmpxchg' && src !== 0) wrote(0, i, b, k);
      }
    }
  }
  for (const r of [...ivs.keys()]) if (nWrites[r] !== 1) ivs.delete(r);
  const count = tripCount(fn, a, body, list, h, written, nWrites, lastBlock, lastInst);
  // Blocks reachable from an increment's block within one iteration (never through h).
  const reachCache = new Map<BlockId, Uint8Array>();
  const reaches = (from: BlockId, to: BlockId): boolean => {
    let r = reachCache.get(from);
    if (r === undefined) {
      r = new Uint8Array(body.length);
      const stack = [from];
      while (stack.length > 0) {
        const b = stack.pop()!;
        const t = fn.blocks[b].term;
        const next = t.op === 'jump' ? [t.target] : t.op === 'br' ? [t.then, t.else] : [];
        for (const s of next) {
          if (body[s] && s !== h && !r[s]) {
            r[s] = 1;
            stack.push(s);
          }
        }
      }
      reachCache.set(from, r);
    }
    return r[to] === 1;
  };
  /** The increments an induction register may have had this iteration before insts[at] of block b. */
  const deltas = (iv: Induction, b: BlockId, at: number): number[] => {
    if (iv.block === b) return at > iv.at ? [iv.step] : [0];
    if (dominates(a, iv.block, b)) return [iv.step];
    if (!reaches(iv.block, b)) return [0];
    return [0, iv.step];
  };
  interface Walk {
    test: RangeTest;
    hi: number;
    members: Inst[];
  }
  const walks = new Map<string, Walk>();
  const add = (i: Inst & { off: number; size: number }, region: number, base: number, index: RangeTest['index'], step: number, rels: number[]): void => {
    if ((step !== 0 && count === undefined) || Math.abs(step) > MAX_STEP) return;
    const key = `${base}/${index?.reg ?? -1}/${index?.shift ?? 0}/${region}`;
    let w = walks.get(key);
    if (w === undefined) {
      w = { test: { base, index, lo: Infinity, len: 0, step, region }, hi: -Infinity, members: [] };
      walks.set(key, w);
    }
    for (const d of rels) {
      w.test.lo = Math.min(w.test.lo, d + i.off);
      w.hi = Math.max(w.hi, d + i.off + i.size);
    }
    w.members.push(i);
  };
  for (const b of list) {
    const insts = fn.blocks[b].insts;
    for (let k = 0; k < insts.length; k++) {
      const i = insts[k];
      if (i.op !== 'load' && i.op !== 'store' && i.op !== 'atomic') continue;
      const region = regionOf(i);
      if (region < 0) continue;
      const x = i.base;
      if (!written[x]) {
        add(i, region, x, undefined, 0, [0]);
        continue;
      }
      const iv = ivs.get(x);
      if (iv !== undefined) {
        add(i, region, x, undefined, iv.step, deltas(iv, b, k));
        continue;
      }
      // B = A + I or A + (I << s), defined earlier in this block.
      const d = lastDef(insts, k, x);
      if (d === undefined || d.inst.op !== 'bin' || d.inst.bin !== 'add' || d.inst.w !== 64 || !('reg' in d.inst.b)) continue;
      const [p, q] = [d.inst.a, d.inst.b.reg];
      const inv = !written[p] ? p : !written[q] ? q : -1;
      if (inv < 0 || p === x || q === x) continue;
      const other = inv === p ? q : p;
      let ivReg = other;
      let shift = 0;
      let at = d.at;
      if (!ivs.has(other)) {
        const s = lastDef(insts, d.at, other);
        if (s === undefined || s.inst.op !== 'bin' || s.inst.bin !== 'shl' || s.inst.w !== 64 || !('imm' in s.inst.b)) continue;
        if (s.inst.b.imm < 0 || s.inst.b.imm > MAX_SHIFT || s.inst.a === other) continue;
        ivReg = s.inst.a;
        shift = s.inst.b.imm;
        at = s.at;
      }
      const iv2 = ivs.get(ivReg);
      if (iv2 === undefined) continue;
      add(i, region, inv, { reg: ivReg, shift }, iv2.step * 2 ** shift, deltas(iv2, b, at).map((v) => v * 2 ** shift));
    }
  }
  const tests: RangeTest[] = [];
  const covered = new Set<Inst>();
  for (const w of walks.values()) {
    w.test.len = w.hi - w.test.lo;
    tests.push(w.test);
    for (const i of w.members) covered.add(i);
  }
  if (tests.length === 0) return undefined;
  return { count: tests.some((t) => t.step !== 0) ? count : undefined, tests, covered };
}

/** The last instruction before insts[before] that writes r, with its index. */
function lastDef(insts: readonly Inst[], before: number, r: number): { inst: Inst; at: number } | undefined {
  for (let k = before - 1; k >= 0; k--) if (writes(insts[k], r)) return { inst: insts[k], at: k };
  return undefined;
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
