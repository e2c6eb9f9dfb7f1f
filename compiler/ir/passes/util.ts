// What the passes share: register reads (transferInst, at half-register granularity) and writes
// (writeSpan) of each instruction, CFG walks and components, cloning, and liveness over register
// halves. One place per fact, so the passes cannot disagree about what an instruction touches.
//
// Speed matters here (the Wasm JIT runs every pass on every program it compiles), so the dataflow
// works on dense bit sets in typed arrays, walks blocks without allocating, and passes rewrite the
// module they are given in place (`InPlacePass`); the pipeline copies the input once.
// Rule that keeps in-place rewriting safe: a pass may assign fields of an Inst or Terminator, or
// replace it in its block, but never mutates an Operand or Access object (it assigns a new one):
// a shallow copy of every instruction is then a private copy.
import type { Access, Block, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';
import { scratch } from '../scratch.js';

/** A pure pass: returns a new module, the input is untouched. */
export type Pass = (m: IrModule) => IrModule;
/** A pass that rewrites the module it is given (its instructions may be replaced or assigned to). */
export type InPlacePass = (m: IrModule) => void;

/** Pure definitions: no effect but their destination; deleting an unread one is safe. */
export const PURE_OPS: ReadonlySet<Inst['op']> = new Set(['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap']);
/** 64-bit operations whose low result half depends only on the operands' low halves. */
export const LOW_ONLY_BIN: ReadonlySet<string> = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor', 'shl']);
export const SHIFT_BIN: ReadonlySet<string> = new Set(['shl', 'lshr', 'ashr']);

/**
 * The registers an instruction writes in full, as one number (callers need no array): the first
 * register times 8 plus how many consecutive registers. A definition writes dst, an atomic fetch
 * its src, cmpxchg r0, and a call is taken to clobber r0-r5 (r1-r5 are dead after it).
 * Walk it with `for (let r = span >> 3, end = r + (span & 7); r < end; r++)`.
 */
export function writeSpan(i: Inst): number {
  switch (i.op) {
    case 'store': case 'budget': return 0;
    case 'atomic': return i.aop === 'cmpxchg' ? 1 : i.fetch ? i.src * 8 + 1 : 0;
    case 'call': case 'callx': case 'calllocal': return 6;
    default: return i.dst * 8 + 1;
  }
}

/** Successor count and successors of a terminator, without allocating. */
function succCount(t: Terminator): number {
  return t.op === 'jump' ? 1 : t.op === 'br' ? (t.then === t.else ? 1 : 2) : 0;
}
function succAt(t: Terminator, k: number): number {
  if (t.op === 'jump') return t.target;
  return k === 0 ? (t as Extract<Terminator, { op: 'br' }>).then : (t as Extract<Terminator, { op: 'br' }>).else;
}

/** Predecessor lists in one array: those of block b are list[start[b] .. start[b + 1]), each once, in block order. */
export interface Preds {
  start: Int32Array;
  list: Int32Array;
}

/** Predecessors of every block (unreachable ones included), in scratch memory. */
export function preds(f: IrFunction): Preds {
  const n = f.blocks.length;
  const start = scratch(n + 1);
  for (const b of f.blocks) {
    const t = b.term;
    for (let k = 0, c = succCount(t); k < c; k++) start[succAt(t, k) + 1]++;
  }
  for (let k = 0; k < n; k++) start[k + 1] += start[k];
  const fill = scratch(n);
  fill.set(start.subarray(0, n));
  const list = scratch(start[n]);
  for (const b of f.blocks) {
    const t = b.term;
    for (let k = 0, c = succCount(t); k < c; k++) {
      const s = succAt(t, k);
      list[fill[s]++] = b.id;
    }
  }
  return { start, list };
}

/** The instruction defines `dst`: what `'dst' in i` asks, without `in` (slow on many object shapes). */
export function isDef(i: Inst): i is Extract<Inst, { dst: Reg }> {
  switch (i.op) {
    case 'store': case 'atomic': case 'call': case 'callx': case 'calllocal': case 'budget': return false;
    default: return true;
  }
}

/** Reachable blocks in reverse post-order from blocks[0]. */
export function rpo(f: IrFunction): number[] {
  const n = f.blocks.length;
  const seen = scratch(n);
  const post: number[] = [];
  const stackId = scratch(n);
  const stackNext = scratch(n);
  let sp = 1;
  seen[0] = 1;
  while (sp > 0) {
    const id = stackId[sp - 1];
    const t = f.blocks[id].term;
    const k = stackNext[sp - 1];
    if (k < succCount(t)) {
      stackNext[sp - 1] = k + 1;
      const s = succAt(t, k);
      if (!seen[s]) {
        seen[s] = 1;
        stackId[sp] = s;
        stackNext[sp] = 0;
        sp++;
      }
    } else {
      post.push(id);
      sp--;
    }
  }
  return post.reverse();
}

const cloneOperand = (o: Operand): Operand => ('reg' in o ? { reg: o.reg } : { imm: o.imm });
const cloneAccess = (a: Access): Access => ({ verdict: a.verdict, region: a.region, coveredBy: a.coveredBy });

/**
 * A copy of an instruction that shares nothing with it, built field by field so that every copy of
 * one operation has one shape (property access stays fast). A definition's copy always has a
 * `hiDead` property (undefined when unmarked): marking it later assigns instead of adding a property.
 */
export function cloneInst(i: Inst): Inst {
  switch (i.op) {
    case 'const': return { op: 'const', pc: i.pc, dst: i.dst, hiDead: i.hiDead, lo: i.lo, hi: i.hi };
    case 'addr': return { op: 'addr', pc: i.pc, dst: i.dst, hiDead: i.hiDead, section: i.section, offset: i.offset };
    case 'mov': return { op: 'mov', pc: i.pc, dst: i.dst, hiDead: i.hiDead, w: i.w, src: i.src };
    case 'bin': return { op: 'bin', pc: i.pc, dst: i.dst, hiDead: i.hiDead, bin: i.bin, w: i.w, a: i.a, b: cloneOperand(i.b) };
    case 'neg': return { op: 'neg', pc: i.pc, dst: i.dst, hiDead: i.hiDead, w: i.w, src: i.src };
    case 'ext': return { op: 'ext', pc: i.pc, dst: i.dst, hiDead: i.hiDead, signed: i.signed, bits: i.bits, w: i.w, src: i.src };
    case 'bswap': return { op: 'bswap', pc: i.pc, dst: i.dst, hiDead: i.hiDead, bits: i.bits, src: i.src };
    case 'load':
      return { op: 'load', pc: i.pc, dst: i.dst, hiDead: i.hiDead, size: i.size, signed: i.signed, base: i.base, off: i.off, access: cloneAccess(i.access) };
    case 'store':
      return { op: 'store', pc: i.pc, size: i.size, base: i.base, off: i.off, value: cloneOperand(i.value), access: cloneAccess(i.access) };
    case 'atomic':
      return { op: 'atomic', pc: i.pc, aop: i.aop, size: i.size, fetch: i.fetch, base: i.base, off: i.off, src: i.src, access: cloneAccess(i.access) };
    case 'call': return { op: 'call', pc: i.pc, id: i.id };
    case 'callx': return { op: 'callx', pc: i.pc, reg: i.reg };
    case 'calllocal': return { op: 'calllocal', pc: i.pc, func: i.func };
    case 'budget': return { op: 'budget', pc: i.pc, cost: i.cost };
  }
}

export function cloneTerm(t: Terminator): Terminator {
  switch (t.op) {
    case 'jump': return { op: 'jump', pc: t.pc, target: t.target };
    case 'br': return { op: 'br', pc: t.pc, cond: t.cond, w: t.w, a: t.a, b: cloneOperand(t.b), then: t.then, else: t.else };
    case 'ret': return { op: 'ret', pc: t.pc };
    case 'fault': return { op: 'fault', pc: t.pc, kind: t.kind };
  }
}

/** A deep copy of the functions (data sections are shared: passes never change them). */
export function cloneModule(m: IrModule): IrModule {
  return {
    ...m,
    helpers: [...m.helpers],
    functions: m.functions.map((f) => ({
      ...f,
      blocks: f.blocks.map((b): Block => ({ id: b.id, insts: b.insts.map(cloneInst), term: cloneTerm(b.term) })),
    })),
  };
}

/** Applies `fn` to a fresh copy of every function. */
export function mapFunctions(m: IrModule, fn: (f: IrFunction, m: IrModule) => void): IrModule {
  const out = cloneModule(m);
  for (const f of out.functions) fn(f, out);
  return out;
}

/** Removes hiDead marks (assigning undefined: deleting a property is slow in V8). */
export function clearHiDead(b: Block): void {
  for (const i of b.insts) if (isDef(i) && i.hiDead !== undefined) i.hiDead = undefined;
}

// ---- bit sets ----
// A set of small numbers as `words` 32-bit words; many sets of one function share one Int32Array
// (set k at offset k * words). Register sets over halves use bit 2r for the low half of r and bit
// 2r+1 for its upper half.

/** Words per set for bits 0..bits-1. */
export const wordsFor = (bits: number): number => Math.max(1, (bits + 31) >>> 5);

/** Words per register-half set of a function (registers 0..maxReg). */
export const halfWords = (f: IrFunction): number => wordsFor(2 * (Math.max(10, f.maxReg) + 1));

export function has(s: Int32Array, bit: number): boolean {
  return (s[bit >>> 5] & (1 << (bit & 31))) !== 0;
}
export function set(s: Int32Array, bit: number): void {
  s[bit >>> 5] |= 1 << (bit & 31);
}
export function unset(s: Int32Array, bit: number): void {
  s[bit >>> 5] &= ~(1 << (bit & 31));
}

/** Kills both halves of r. */
function kill(live: Int32Array, r: Reg): void {
  live[r >>> 4] &= ~(3 << ((2 * r) & 31));
}
/** Reads r's low half, and its upper half when `hi`. */
function use(live: Int32Array, r: Reg, hi: boolean): void {
  live[r >>> 4] |= (hi ? 3 : 1) << ((2 * r) & 31);
}
function useOperand(live: Int32Array, o: Operand, hi: boolean): void {
  if ('reg' in o) use(live, o.reg, hi);
}
export const hiLive = (live: Int32Array, r: Reg): boolean => (live[r >>> 4] & (2 << ((2 * r) & 31))) !== 0;
export const anyLive = (live: Int32Array, r: Reg): boolean => (live[r >>> 4] & (3 << ((2 * r) & 31))) !== 0;

/**
 * One instruction, backwards over a half set: kill what it writes, add what it reads. Whether the
 * upper half of its result is live decides what some operations read: without it, an operation
 * whose low half needs only low halves (mov, neg, add, sub, mul, and, or, xor, shl) reads only those.
 */
export function transferInst(i: Inst, live: Int32Array): void {
  switch (i.op) {
    case 'const': case 'addr':
      kill(live, i.dst);
      return;
    case 'mov': case 'neg': {
      const dstHi = hiLive(live, i.dst);
      kill(live, i.dst);
      use(live, i.src, i.w === 64 && dstHi);
      return;
    }
    case 'ext':
      kill(live, i.dst);
      use(live, i.src, false);
      return;
    case 'bswap':
      kill(live, i.dst);
      use(live, i.src, i.bits === 64);
      return;
    case 'bin': {
      const dstHi = hiLive(live, i.dst);
      kill(live, i.dst);
      if (i.w === 32) {
        use(live, i.a, false);
        useOperand(live, i.b, false);
      } else {
        const aHi = LOW_ONLY_BIN.has(i.bin) ? dstHi : true;
        use(live, i.a, aHi);
        useOperand(live, i.b, SHIFT_BIN.has(i.bin) ? false : aHi);
      }
      return;
    }
    case 'load':
      kill(live, i.dst);
      use(live, i.base, true);
      return;
    case 'store':
      use(live, i.base, true);
      useOperand(live, i.value, i.size === 8);
      return;
    case 'atomic':
      if (i.aop === 'cmpxchg') kill(live, 0);
      else if (i.fetch) kill(live, i.src);
      use(live, i.base, true);
      use(live, i.src, i.size === 8);
      if (i.aop === 'cmpxchg') use(live, 0, i.size === 8);
      return;
    // r1-r5 survive a helper call unchanged in every engine, so only r0 is killed there.
    case 'callx':
      kill(live, 0);
      use(live, i.reg, true);
      for (let r = 1; r <= 5; r++) use(live, r, true);
      return;
    case 'call': case 'calllocal':
      kill(live, 0);
      for (let r = 1; r <= 5; r++) use(live, r, true);
      return;
    case 'budget':
      return;
  }
}

/** A terminator's reads, added to a half set. */
export function transferTerm(t: Terminator, live: Int32Array): void {
  if (t.op === 'br') {
    use(live, t.a, t.w === 64);
    useOperand(live, t.b, t.w === 64);
  } else if (t.op === 'ret') use(live, 0, true);
}

/**
 * Strongly connected components of a function's CFG (every block, reachable or not), sinks first:
 * every successor of a block lies in the block's own component or an earlier one, so a backward
 * dataflow solves them in this order, and a forward one in the opposite order, iterating only
 * inside cyclic components. Component k's blocks are blocks[start[k] .. start[k + 1]), in reverse
 * order of discovery by a depth-first walk from blocks[0]: walked backwards, every block but the
 * first comes after one of its predecessors.
 */
export interface Sccs {
  count: number;
  /** Components 0 .. reach-1 are those reachable from blocks[0]. */
  reach: number;
  blocks: Int32Array;
  start: Int32Array;
  /** The component has a cycle (more than one block, or a block that is its own successor). */
  cyclic: Int32Array;
}

/** Scratch for sccs (grown as needed; sccs does not call itself). */
let sccWork = new Int32Array(0);

/** Tarjan's algorithm, iterative (no recursion depth limit on long chains of blocks). */
export function sccs(f: IrFunction): Sccs {
  const blocks = f.blocks;
  const n = blocks.length;
  if (sccWork.length < 6 * n) sccWork = new Int32Array(Math.max(6 * n, 1024));
  // index at [0, n) (-1: not visited), low at [n, 2n), the component stack at [2n, 3n), the walk's
  // blocks and next successor at [3n, 4n) and [4n, 5n), on-stack flags at [5n, 6n).
  const ws = sccWork;
  ws.fill(-1, 0, n);
  ws.fill(0, 5 * n, 6 * n);
  const LOW = n, STACK = 2 * n, CALL_ID = 3 * n, CALL_NEXT = 4 * n, ON = 5 * n;
  const out = scratch(n);
  const start = scratch(n + 1);
  const cyclic = scratch(n);
  let sp = 0, counter = 0, emitted = 0, count = 0, reach = 0;
  for (let root = 0; root < n; root++) {
    if (ws[root] >= 0) continue;
    let csp = 0;
    ws[root] = ws[LOW + root] = counter++;
    ws[STACK + sp++] = root;
    ws[ON + root] = 1;
    ws[CALL_ID + csp] = root;
    ws[CALL_NEXT + csp++] = 0;
    while (csp > 0) {
      const v = ws[CALL_ID + csp - 1];
      const t = blocks[v].term;
      const k = ws[CALL_NEXT + csp - 1];
      if (k < succCount(t)) {
        ws[CALL_NEXT + csp - 1] = k + 1;
        const w = succAt(t, k);
        if (ws[w] < 0) {
          ws[w] = ws[LOW + w] = counter++;
          ws[STACK + sp++] = w;
          ws[ON + w] = 1;
          ws[CALL_ID + csp] = w;
          ws[CALL_NEXT + csp++] = 0;
        } else if (ws[ON + w] === 1 && ws[w] < ws[LOW + v]) ws[LOW + v] = ws[w];
        continue;
      }
      csp--;
      if (ws[LOW + v] === ws[v]) {
        start[count] = emitted;
        let w: number;
        do {
          w = ws[STACK + --sp];
          ws[ON + w] = 0;
          out[emitted++] = w;
        } while (w !== v);
        let selfLoop = false;
        for (let j = 0, c = succCount(t); j < c; j++) if (succAt(t, j) === v) selfLoop = true;
        cyclic[count] = emitted - start[count] > 1 || selfLoop ? 1 : 0;
        count++;
      }
      if (csp > 0) {
        const parent = ws[CALL_ID + csp - 1];
        if (ws[LOW + v] < ws[LOW + parent]) ws[LOW + parent] = ws[LOW + v];
      }
    }
    if (root === 0) reach = count;
  }
  start[count] = emitted;
  return { count, reach, blocks: out, start, cyclic };
}

/** to[toOff ..] := from[fromOff ..], `words` words (a loop: TypedArray#set and subarray cost more for a word or two). */
export function copyWords(to: Int32Array, toOff: number, from: Int32Array, fromOff: number, words: number): void {
  for (let w = 0; w < words; w++) to[toOff + w] = from[fromOff + w];
}

/** live := the union of the live-in sets of t's successors. */
export function unionSuccs(t: Terminator, inn: Int32Array, words: number, live: Int32Array): void {
  live.fill(0);
  for (let k = 0, c = succCount(t); k < c; k++) {
    const s = succAt(t, k) * words;
    for (let w = 0; w < words; w++) live[w] |= inn[s + w];
  }
}

/** Live-in of block b (into `live`) from its live-out (in `live`). */
function transferBlock(b: Block, live: Int32Array): void {
  transferTerm(b.term, live);
  const insts = b.insts;
  for (let k = insts.length - 1; k >= 0; k--) transferInst(insts[k], live);
}

/**
 * Solves the liveness of component k to its least fixpoint, given the final live-in sets of the
 * components solved before it: writes the live-in of its blocks to `inn` and, when given, their
 * live-out to `out`.
 */
export function solveScc(f: IrFunction, sc: Sccs, k: number, inn: Int32Array, out: Int32Array | undefined, words: number, live: Int32Array): void {
  const from = sc.start[k], to = sc.start[k + 1];
  for (let j = from; j < to; j++) for (let w = 0, o = sc.blocks[j] * words; w < words; w++) inn[o + w] = 0;
  for (let changed = true; changed;) {
    changed = false;
    for (let j = from; j < to; j++) {
      const id = sc.blocks[j];
      const b = f.blocks[id];
      unionSuccs(b.term, inn, words, live);
      if (out !== undefined) copyWords(out, id * words, live, 0, words);
      transferBlock(b, live);
      for (let w = 0, o = id * words; w < words; w++) {
        if (inn[o + w] !== live[w]) {
          inn[o + w] = live[w];
          changed = true;
        }
      }
    }
    if (sc.cyclic[k] === 0) break;
  }
}

/** What the forward dataflows need: components, reachability from blocks[0], predecessors. */
export interface Flow {
  sc: Sccs;
  reachable: Int32Array;
  preds: Preds;
}

export function flow(f: IrFunction): Flow {
  const sc = sccs(f);
  const reachable = scratch(f.blocks.length);
  for (let j = 0; j < sc.start[sc.reach]; j++) reachable[sc.blocks[j]] = 1;
  return { sc, reachable, preds: preds(f) };
}
