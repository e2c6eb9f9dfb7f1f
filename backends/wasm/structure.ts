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
// any of them, and each block still charges exactly what it ran.
//
// The result is a flat command list for lower.ts to emit; br depths count only these frames, so
// the caller may wrap the whole list in frames of its own. Iterative throughout: a long chain of
// blocks must not exhaust the JS stack.
import type { BlockId, IrFunction } from '../../compiler/ir/ir.js';

export type Cmd =
  | { op: 'block' }
  /** `guard`: the fast copy's loop: each iteration first leaves for the frame outside unless the budget holds `guard`. */
  | { op: 'loop'; guard?: number }
  | { op: 'end' }
  /** The block's instructions (not its terminator); `unchecked`: its charge cannot run out (fast copy). */
  | { op: 'code'; block: BlockId; unchecked?: boolean }
  /** The condition of the block's `br` terminator, then `if`. */
  | { op: 'if'; block: BlockId }
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

export interface StructureOptions {
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
  const depthOf = (kind: number, node: number): number => {
    for (let i = frameKind.length - 1; i >= 0; i--) {
      if (frameKind[i] === kind && frameNode[i] === node) return frameKind.length - 1 - i;
    }
    throw new Error(`${fn.name}: no enclosing frame for block ${node} (structuring bug)`);
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
          frameKind.push(F_LOOP);
          frameNode.push(x);
          push(T_LOOP_END, x, 0);
        }
        push(T_WITHIN, x, firstKid[x]);
        break;
      case T_WITHIN: {
        // y: the next merge child to open a block for, -1 when all are open.
        if (y >= 0) {
          cmds.push({ op: 'block' });
          frameKind.push(F_BLOCK);
          frameNode.push(y);
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
          frameKind.push(F_IF);
          frameNode.push(x);
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
        frameKind.pop();
        frameNode.pop();
        break;
      case T_END:
        cmds.push({ op: 'end' });
        frameKind.pop();
        frameNode.pop();
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
  const out = opts.fastLoops ? withFastLoops(fn, a, cmds, loopStart, loopEnd) : cmds;
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

/** The command list with a guarded fast copy in front of every eligible innermost loop. */
function withFastLoops(fn: IrFunction, a: Analysis, cmds: Cmd[], loopStart: Int32Array, loopEnd: Int32Array): Cmd[] {
  const n = fn.blocks.length;
  const { rpo, preds, predStart, loopHeader } = a;
  const inLoop = new Int32Array(n).fill(-1); // the header whose body was last collected
  const copies: { start: number; end: number; guard: number; body: Uint8Array; insts: number; bodyInsts: number }[] = [];
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
    for (const b of body) {
      const c = blockCharge(fn, b);
      if (c < 0 || (b !== h && loopHeader[b])) eligible = false;
      guard += c;
    }
    if (!eligible || guard === 0) continue;
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
    const mark = new Uint8Array(n);
    let bodyInsts = 0;
    for (const b of body) {
      mark[b] = 1;
      bodyInsts += fn.blocks[b].insts.length;
    }
    copies.push({ start, end, guard, body: mark, insts, bodyInsts });
  }
  if (copies.length === 0) return cmds;
  copies.sort((x, y) => x.start - y.start);
  const out: Cmd[] = [];
  let at = 0;
  for (const c of copies) {
    const body = c.body;
    for (; at < c.start; at++) out.push(cmds[at]);
    const k = unrollFactor(c.bodyInsts, c.insts);
    out.push({ op: 'block' }, { op: 'loop', guard: c.guard * k });
    // Copies 1..k-1 sit each in a `block` that their back edges leave, falling into the next copy;
    // the last one's back edges continue the loop (and its guard). Branches out of the range cross
    // the extra frames too.
    for (let copy = 1; copy <= k; copy++) {
      const last = copy === k;
      if (!last) out.push({ op: 'block' });
      const extra = last ? 1 : 2;
      let level = 1;
      for (let i = c.start + 1; i < c.end; i++) {
        const cmd = cmds[i];
        switch (cmd.op) {
          case 'block':
          case 'loop':
          case 'if':
            level++;
            out.push(cmd);
            break;
          case 'end':
            level--;
            out.push(cmd);
            break;
          case 'br':
            out.push({ op: 'br', depth: cmd.depth >= level ? cmd.depth + extra : cmd.depth });
            break;
          case 'code':
            out.push(body[cmd.block] ? { op: 'code', block: cmd.block, unchecked: true } : cmd);
            break;
          case 'fold':
            out.push(body[cmd.block] ? { ...cmd, unchecked: true } : cmd);
            break;
          default:
            out.push(cmd);
        }
      }
      if (!last) out.push({ op: 'end' });
    }
    out.push({ op: 'end' }, { op: 'end' });
  }
  for (; at < cmds.length; at++) out.push(cmds[at]);
  return out;
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
