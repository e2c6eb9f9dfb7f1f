// Loop analyses on the IR that both back ends use to version innermost loops: a loop that walks
// memory through checked accesses gets a second copy behind one entry range test, in which the
// accesses that test covers need no check of their own. This module finds the loops (natural
// loops of dominator back edges, innermost ones only), a loop's counted exit (`tripCount`: how many
// iterations can run before it, from the counter's value at entry) and the walks whose accesses a
// range test can cover (`versionPlan`). It decides nothing about code: each back end emits the
// entry test from the plan's terms with its own arithmetic and keeps the original loop, with all
// of its checks, for when the test fails. Iterative and linear in the loop's blocks (it runs on
// JIT paths).
import type { BlockId, Inst, IrFunction } from './ir.js';

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

/**
 * The control-flow facts the analyses need, over the blocks reachable from the entry: reverse
 * postorder numbers (-1: unreachable), immediate dominators (the entry is its own) and the
 * predecessors of block b as preds[predStart[b] .. predStart[b + 1]).
 */
export interface LoopCfg {
  rpo: Int32Array;
  idom: Int32Array;
  preds: Int32Array;
  predStart: Int32Array;
}

/** An innermost natural loop: its header and its blocks (ascending ids; `body` marks them). */
export interface InnermostLoop {
  header: BlockId;
  blocks: BlockId[];
  body: Uint8Array;
}

/** Whether an instruction may write register r (a helper call writes r0; an atomic fetch its source, cmpxchg r0). */
export function writes(i: Inst, r: number): boolean {
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
export function tripCount(
  fn: IrFunction, a: LoopCfg, body: Uint8Array, list: readonly BlockId[], h: BlockId, written: Uint8Array,
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

export function dominates(a: LoopCfg, x: BlockId, y: BlockId): boolean {
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
export function versionPlan(fn: IrFunction, a: LoopCfg, body: Uint8Array, list: readonly BlockId[], h: BlockId, regionOf: (i: Inst) => number): VersionPlan | undefined {
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

/** Successors of a block (a `br` whose arms agree has one). */
function succs(fn: IrFunction, b: BlockId): BlockId[] {
  const t = fn.blocks[b].term;
  if (t.op === 'jump') return [t.target];
  if (t.op === 'br') return t.then === t.else ? [t.then] : [t.then, t.else];
  return [];
}

/** Reverse postorder, predecessors and dominators of `fn` (Cooper, Harvey, Kennedy). Throws RangeError on a branch to a missing block. */
export function loopCfg(fn: IrFunction): LoopCfg {
  const n = fn.blocks.length;
  for (let b = 0; b < n; b++) {
    for (const s of succs(fn, b)) {
      if (!(Number.isInteger(s) && s >= 0 && s < n)) throw new RangeError(`${fn.name}: block ${b} branches to block ${s}, which does not exist`);
    }
  }
  const post: number[] = [];
  const seen = new Uint8Array(n);
  const stack: Array<[number, number]> = [];
  if (n > 0) {
    stack.push([0, 0]);
    seen[0] = 1;
  }
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const ss = succs(fn, top[0]);
    if (top[1] < ss.length) {
      const s = ss[top[1]++];
      if (seen[s] === 0) {
        seen[s] = 1;
        stack.push([s, 0]);
      }
    } else {
      post.push(top[0]);
      stack.pop();
    }
  }
  const order = post.reverse();
  const rpo = new Int32Array(n).fill(-1);
  order.forEach((b, i) => (rpo[b] = i));
  const predStart = new Int32Array(n + 1);
  for (const b of order) for (const s of succs(fn, b)) predStart[s + 1]++;
  for (let b = 0; b < n; b++) predStart[b + 1] += predStart[b];
  const preds = new Int32Array(predStart[n]);
  const fill = predStart.slice(0, n);
  for (const b of order) for (const s of succs(fn, b)) preds[fill[s]++] = b;
  const idom = immediateDominators(order, rpo, preds, predStart, n);
  return { rpo, idom, preds, predStart };
}

/**
 * Immediate dominators of the reachable blocks (block 0 the entry; -1 for unreachable ones), by
 * Cooper, Harvey and Kennedy's "A Simple, Fast Dominance Algorithm": `order` is the reverse
 * postorder of the reachable blocks, `rpo` each block's index in it, preds[predStart[b] ..
 * predStart[b + 1]) the reachable predecessors of b.
 */
export function immediateDominators(order: ArrayLike<number>, rpo: Int32Array, preds: Int32Array, predStart: Int32Array, n: number): Int32Array {
  const idom = new Int32Array(n).fill(-1);
  if (n > 0) idom[0] = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 1; i < order.length; i++) {
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
  return idom;
}

/**
 * The innermost natural loops of `fn`: a header h with back edges (from blocks h dominates), its
 * body everything that reaches a back edge without passing h, and no cycle inside the body that
 * avoids h (no inner loop, no irreducible cycle), so each iteration runs each block at most once,
 * as `versionPlan` assumes.
 */
export function innermostLoops(fn: IrFunction, cfg: LoopCfg = loopCfg(fn)): InnermostLoop[] {
  const { rpo, preds, predStart } = cfg;
  const n = fn.blocks.length;
  const out: InnermostLoop[] = [];
  const heads: BlockId[] = [];
  for (let h = 0; h < n; h++) {
    if (rpo[h] < 0) continue;
    for (let k = predStart[h]; k < predStart[h + 1]; k++) {
      if (rpo[preds[k]] >= rpo[h] && dominates(cfg, h, preds[k])) {
        heads.push(h);
        break;
      }
    }
  }
  for (const h of heads) {
    const body = new Uint8Array(n);
    body[h] = 1;
    const work: number[] = [];
    for (let k = predStart[h]; k < predStart[h + 1]; k++) {
      const u = preds[k];
      if (rpo[u] >= rpo[h] && dominates(cfg, h, u) && !body[u]) {
        body[u] = 1;
        work.push(u);
      }
    }
    while (work.length > 0) {
      const b = work.pop()!;
      for (let k = predStart[b]; k < predStart[b + 1]; k++) {
        const p = preds[k];
        if (!body[p]) {
          body[p] = 1;
          work.push(p);
        }
      }
    }
    // Within the body, every edge goes forward in reverse postorder except the back edges to h.
    let simple = true;
    const blocks: BlockId[] = [];
    for (let b = 0; b < n && simple; b++) {
      if (!body[b]) continue;
      blocks.push(b);
      for (const s of succs(fn, b)) if (body[s] && s !== h && rpo[s] <= rpo[b]) simple = false;
    }
    if (simple) out.push({ header: h, blocks, body });
  }
  return out;
}
