// What is known at compile time about the registers at each program point: halves with a known
// value, and an unsigned range per register. The upper half of anything a 32-bit operation, a
// narrow unsigned load or a zero extension defined is 0, and so is that of a loop counter compared
// with a length: eBPF code is full of such values kept in 64-bit registers. The lowering uses the
// knowledge to drop work on 32-bit ARM: a 64-bit compare of values whose upper halves are known and
// equal is one CMP, an add of them one ADDS, an AND with a zero upper half needs no upper
// instruction, a multiply of two zero-extended values is one UMULL, a pointer with a zero upper
// half needs no upper-half check. A half known at every place it is read needs no storage at all:
// it is `eliminated` (its writes are dropped, its reads become constants) and takes no home.
//
// The analysis is forward, per function: constant propagation over halves (meet = agree or
// unknown) and intervals over registers as unsigned 64-bit numbers (exact below 2^53, unbounded
// above; join = hull, widened after a few rounds through thresholds, then narrowed), refined on the edges of
// conditional branches (i < n bounds i by n's range). At the entry of the program r1 and r2 have
// zero upper halves (the device's context address and length are 32-bit numbers); a local callee
// starts with nothing known. A definition marked hiDead leaves its upper half unwritten: unknown.
//
// Every region lies in [0x10000, 0xf0000000) (the device runtime refuses a larger context, as
// runtime/cortex-m/fc fc_run documents), so r1 and r2 start below 0xf0000000, and once an access
// through a base register has been performed the base lies in that window too (shifted by the
// offset): a pointer walking a region keeps a zero upper half and needs neither ADC nor SBCS.
import type { Cond, Inst, IrFunction, Operand, Terminator } from '../../compiler/ir/ir.js';
import { FRAME_REG as R10 } from '../../compiler/ir/ir.js';
import { evalBin, evalExt, immValue } from '../../compiler/ir/eval.js';
import { halfKey, naturalLoops, successors } from './regalloc.js';

/**
 * Per half key (`reg * 2 + half`): the half's value as an int32, or NaN when unknown; then, from
 * `2 * nregs` on, each register's unsigned range as [min, max] (max = Infinity: unbounded).
 */
export type KnownState = Float64Array;

const U = Number.NaN;
const INF = Number.POSITIVE_INFINITY;
const TWO32 = 0x1_0000_0000;
/** Container addresses of every region: [ADDR_MIN, ADDR_END). */
const ADDR_MIN = 0x1_0000;
const ADDR_END = 0xf000_0000;
const EXACT = 2 ** 53;
/** Rounds of growth at a block's entry before its ranges are widened. */
const WIDEN_AFTER = 3;
const NARROW_ROUNDS = 4;
/** Where widened upper bounds stop before giving up (then Infinity). */
const THRESHOLDS: readonly number[] = [0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff];

const has = (v: number): boolean => v === v;

const lo32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const hi32 = (v: bigint): number => Number(BigInt.asIntN(32, v >> 32n));

function regsOf(s: KnownState): number {
  return s.length >> 2;
}

/** A fresh state with nothing known (ranges unbounded). */
function blank(nregs: number): KnownState {
  const s = new Float64Array(nregs * 4).fill(U);
  for (let r = 0; r < nregs; r++) setRange(s, r, 0, INF);
  return s;
}

function rangeOf(s: KnownState, reg: number): [number, number] {
  const n = regsOf(s);
  if (reg >= n) return [0, INF];
  return [s[2 * n + 2 * reg], s[2 * n + 2 * reg + 1]];
}

function setRange(s: KnownState, reg: number, min: number, max: number): void {
  const n = regsOf(s);
  if (reg >= n) return;
  // Beyond 2^53 nothing is exact: unbounded (the lower bound stays, arithmetic that may wrap
  // passes 0 itself, see `fit`).
  const exact = max < EXACT;
  s[2 * n + 2 * reg] = Math.min(Math.max(0, min), EXACT);
  s[2 * n + 2 * reg + 1] = exact ? max : INF;
}

/** The known halves and ranges of each block's entry in one function, and the transfer through instructions. */
export class KnownHalves {
  private readonly entry: KnownState[];
  private readonly reached: Uint8Array;
  private readonly size: number;

  /**
   * `r10`: the frame pointer's value throughout the function, when fixed (the entry function runs
   * at depth 0 unless something calls it). `ctxBase`: the context's container address, when known
   * (r1 is then that or 0, and r2 at most what is left below ADDR_END).
   */
  constructor(private readonly fn: IrFunction, isEntry: boolean, nregs: number, r10?: number, ctxBase?: number) {
    const n = fn.blocks.length;
    this.size = Math.max(nregs, 11);
    this.entry = fn.blocks.map(() => blank(this.size));
    this.reached = new Uint8Array(n);
    if (n === 0) return;
    const start = blank(this.size);
    if (isEntry) {
      const base = ctxBase !== undefined && ctxBase < ADDR_END ? ctxBase : ADDR_END;
      for (const r of [1, 2]) start[halfKey(r, 1)] = 0;
      setRange(start, 1, 0, base);
      setRange(start, 2, 0, ADDR_END - (ctxBase !== undefined && ctxBase < ADDR_END ? ctxBase : 0));
    }
    if (r10 !== undefined) start[halfKey(R10, 0)] = r10 | 0;
    this.entry[0] = start;
    this.reached[0] = 1;
    // Growth with widening: entries only get less precise, so this ends. Widening happens only at
    // loop heads (every cycle has one), and the pending block first in reverse postorder goes
    // next, so that a loop settles before the code after it sees its exits: a block after a loop
    // is never widened by the loop's passing states (which would lose loop invariants for good).
    const rounds = new Uint16Array(n);
    const heads = new Set(naturalLoops(fn).map((l) => l.head));
    const order = reversePostorder(fn);
    const pending = new Set<number>([0]);
    while (pending.size > 0) {
      let b = -1;
      for (const x of pending) if (b < 0 || order[x] < order[b]) b = x;
      pending.delete(b);
      for (const [t, out] of this.outs(b)) {
        const into = this.entry[t];
        if (!this.reached[t]) {
          into.set(out);
          this.reached[t] = 1;
          pending.add(t);
          continue;
        }
        if (joinInto(into, out, heads.has(t) && ++rounds[t] > WIDEN_AFTER)) pending.add(t);
      }
    }
    // Narrowing: recomputing every entry from its predecessors keeps a sound state and recovers the
    // bounds the branches give back after widening (i < n at a loop's back edge). Entries are
    // updated in place, so a bound travels around a loop in one round.
    const preds: number[][] = fn.blocks.map(() => []);
    fn.blocks.forEach((blk, i) => {
      for (const t of new Set(successors(blk.term))) if (t >= 0 && t < n) preds[t].push(i);
    });
    for (let round = 0; round < NARROW_ROUNDS; round++) {
      let changed = false;
      for (let b = 0; b < n; b++) {
        if (!this.reached[b]) continue;
        let fresh: KnownState | undefined = b === 0 ? start.slice() : undefined;
        for (const p of preds[b]) {
          if (!this.reached[p]) continue;
          for (const [t, out] of this.outs(p)) {
            if (t !== b) continue;
            if (fresh === undefined) fresh = out.slice();
            else joinInto(fresh, out, false);
          }
        }
        // No feasible edge left: keep the state (sound, merely imprecise).
        if (fresh === undefined) continue;
        const next = meetNarrow(this.entry[b], fresh);
        if (!sameState(next, this.entry[b])) {
          this.entry[b] = next;
          changed = true;
        }
      }
      if (!changed) break;
    }
  }

  /** Each successor with the state on the edge to it (refined by the branch condition). */
  private outs(b: number): Array<[number, KnownState]> {
    const block = this.fn.blocks[b];
    const state = this.entry[b].slice();
    for (const inst of block.insts) transfer(state, inst);
    const n = this.fn.blocks.length;
    const t = block.term;
    if (t.op !== 'br') return successors(t).filter((x) => x >= 0 && x < n).map((x) => [x, state]);
    const out: Array<[number, KnownState]> = [];
    if (t.then === t.else) return t.then >= 0 && t.then < n ? [[t.then, state]] : [];
    const copies = copiesAtEnd(block.insts);
    for (const [target, taken] of [[t.then, true], [t.else, false]] as const) {
      if (target < 0 || target >= n) continue;
      const s = state.slice();
      if (!refine(s, t, taken)) continue;
      // Registers the block copied from (or to) a compared register are bounded alike.
      for (const r of [t.a, ...('reg' in t.b ? [t.b.reg] : [])]) {
        const [min, max] = rangeOf(s, r);
        for (const c of copies.get(r) ?? []) {
          const [cmin, cmax] = rangeOf(s, c);
          setRange(s, c, Math.max(min, cmin), Math.min(max, cmax));
        }
      }
      out.push([target, s]);
    }
    return out;
  }

  /** The known halves at the start of block `b` (a fresh copy to thread through the block). */
  at(b: number): KnownState {
    return this.entry[b].slice();
  }

  reachable(b: number): boolean {
    return this.reached[b] === 1;
  }

  get function(): IrFunction {
    return this.fn;
  }

  get registers(): number {
    return this.size;
  }
}

/** Each block's position in reverse postorder from the entry (unreached blocks last). */
function reversePostorder(fn: IrFunction): Int32Array {
  const n = fn.blocks.length;
  const order = new Int32Array(n).fill(n);
  const seen = new Uint8Array(n);
  const post: number[] = [];
  const stack: Array<{ b: number; i: number }> = n > 0 ? [{ b: 0, i: 0 }] : [];
  if (n > 0) seen[0] = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const succ = successors(fn.blocks[top.b].term);
    if (top.i < succ.length) {
      const s = succ[top.i++];
      if (s >= 0 && s < n && !seen[s]) {
        seen[s] = 1;
        stack.push({ b: s, i: 0 });
      }
    } else {
      post.push(top.b);
      stack.pop();
    }
  }
  post.reverse().forEach((b, i) => (order[b] = i));
  return order;
}

/** For each register, the others equal to it at the end of the block through 64-bit moves in it. */
function copiesAtEnd(insts: readonly Inst[]): Map<number, number[]> {
  const same = new Map<number, number>();
  const root = (r: number): number => same.get(r) ?? r;
  for (const inst of insts) {
    if (!('dst' in inst)) {
      if (inst.op === 'call' || inst.op === 'callx' || inst.op === 'calllocal' || inst.op === 'atomic') same.clear();
      continue;
    }
    const d = inst.dst;
    const src = inst.op === 'mov' && inst.w === 64 && !inst.hiDead ? root(inst.src) : undefined;
    // d changes: whatever was a copy of d is no longer.
    for (const [k, v] of [...same]) if (v === d || k === d) same.delete(k);
    if (src !== undefined && src !== d) same.set(d, src);
  }
  const out = new Map<number, number[]>();
  for (const [k, v] of same) {
    const group = [k, v, ...[...same].filter(([, w]) => w === v).map(([x]) => x)];
    for (const r of group) {
      const others = group.filter((x) => x !== r);
      out.set(r, [...new Set([...(out.get(r) ?? []), ...others])]);
    }
  }
  return out;
}

/** Joins `from` into `into` (widening ranges when asked); true when `into` changed. */
function joinInto(into: KnownState, from: KnownState, widen: boolean): boolean {
  const n = regsOf(into);
  let changed = false;
  for (let k = 0; k < 2 * n; k++) {
    if (has(into[k]) && into[k] !== from[k]) {
      into[k] = U;
      changed = true;
    }
  }
  for (let r = 0; r < n; r++) {
    const i = 2 * n + 2 * r;
    let min = Math.min(into[i], from[i]);
    let max = Math.max(into[i + 1], from[i + 1]);
    if (widen) {
      if (min < into[i]) min = 0;
      // Widening to the next threshold first keeps counters of nested loops below 2^32.
      if (max > into[i + 1]) max = THRESHOLDS.find((t) => t >= max) ?? INF;
    }
    if (min !== into[i] || max !== into[i + 1]) {
      into[i] = min;
      into[i + 1] = max;
      changed = true;
    }
  }
  return changed;
}

function sameState(a: KnownState, b: KnownState): boolean {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k] && !(a[k] !== a[k] && b[k] !== b[k])) return false;
  return true;
}

/** A narrowing step: the recomputed state, but never wider than the current one. */
function meetNarrow(cur: KnownState, fresh: KnownState): KnownState {
  const n = regsOf(cur);
  const out = cur.slice();
  for (let k = 0; k < 2 * n; k++) if (!has(out[k]) && has(fresh[k])) out[k] = fresh[k];
  for (let r = 0; r < n; r++) {
    const i = 2 * n + 2 * r;
    out[i] = Math.max(cur[i], fresh[i]);
    out[i + 1] = Math.min(cur[i + 1], fresh[i + 1]);
    if (out[i] > out[i + 1]) {
      out[i] = cur[i];
      out[i + 1] = cur[i + 1];
    }
  }
  return out;
}

/** The operand's range as an unsigned 64-bit number (an immediate is sign-extended). */
function operandRange(s: KnownState, b: Operand): [number, number] {
  if ('imm' in b) {
    const v = b.imm | 0;
    return v >= 0 ? [v, v] : [EXACT, INF];
  }
  return rangeOf(s, b.reg);
}

/** The 32-bit view of an operand: its low half's range when the whole value is below 2^32. */
function range32(s: KnownState, b: Operand): [number, number] | undefined {
  if ('imm' in b) return [b.imm >>> 0, b.imm >>> 0];
  const [min, max] = rangeOf(s, b.reg);
  return max < TWO32 ? [min, max] : undefined;
}

/**
 * Narrows the ranges of a branch's operands for the edge where its condition is `taken`; false
 * when no value can take the edge. Only conditions that compare the values as unsigned 64-bit
 * numbers refine (a 32-bit or signed compare does when both values are known to be below 2^32).
 */
function refine(s: KnownState, t: Extract<Terminator, { op: 'br' }>, taken: boolean): boolean {
  let a: [number, number] | undefined;
  let b: [number, number] | undefined;
  if (t.w === 64) {
    a = rangeOf(s, t.a);
    b = operandRange(s, t.b);
    const signedOk = a[1] < 2 ** 63 && b[1] < 2 ** 63;
    if (!signedOk && (t.cond === 'sgt' || t.cond === 'sge' || t.cond === 'slt' || t.cond === 'sle')) return true;
  } else {
    a = range32(s, { reg: t.a });
    b = range32(s, t.b);
    if (a === undefined || b === undefined) return true;
    if ((t.cond === 'sgt' || t.cond === 'sge' || t.cond === 'slt' || t.cond === 'sle') && (a[1] >= 2 ** 31 || b[1] >= 2 ** 31)) return true;
  }
  const cond = taken ? t.cond : NEGATE[t.cond];
  if (cond === undefined) return true;
  let [amin, amax] = a;
  let [bmin, bmax] = b;
  switch (cond) {
    case 'ult':
    case 'slt':
      amax = Math.min(amax, bmax - 1);
      bmin = Math.max(bmin, amin + 1);
      break;
    case 'ule':
    case 'sle':
      amax = Math.min(amax, bmax);
      bmin = Math.max(bmin, amin);
      break;
    case 'ugt':
    case 'sgt':
      amin = Math.max(amin, bmin + 1);
      bmax = Math.min(bmax, amax - 1);
      break;
    case 'uge':
    case 'sge':
      amin = Math.max(amin, bmin);
      bmax = Math.min(bmax, amax);
      break;
    case 'eq':
      amin = bmin = Math.max(amin, bmin);
      amax = bmax = Math.min(amax, bmax);
      break;
    case 'ne':
      if (bmin === bmax && bmin < EXACT) {
        if (amin === bmin) amin++;
        if (amax === bmin) amax--;
      }
      break;
    default:
      return true;
  }
  if (amin > amax || bmin > bmax) return false;
  // Infinity stays unbounded; a finite result below 2^53 is exact.
  setRange(s, t.a, amin, amax);
  if ('reg' in t.b) setRange(s, t.b.reg, bmin, bmax);
  return true;
}

const NEGATE: Partial<Record<Cond, Cond>> = {
  eq: 'ne', ne: 'eq', ult: 'uge', uge: 'ult', ule: 'ugt', ugt: 'ule', slt: 'sge', sge: 'slt', sle: 'sgt', sgt: 'sle',
};

/** The value of a half in a state (undefined when unknown; r10's upper half is always 0). */
export function knownHalf(s: KnownState, reg: number, half: 0 | 1): number | undefined {
  if (reg === R10 && half === 1) return 0;
  const k = halfKey(reg, half);
  if (k >= 2 * regsOf(s)) return undefined;
  if (has(s[k])) return s[k];
  return half === 1 && rangeOf(s, reg)[1] < TWO32 ? 0 : undefined;
}

/** The register's unsigned range [min, max] (max = Infinity: unbounded). */
export function knownRange(s: KnownState, reg: number): [number, number] {
  return rangeOf(s, reg);
}

/** A whole register's value, when both halves are known. */
function full(s: KnownState, reg: number): bigint | undefined {
  const l = knownHalf(s, reg, 0);
  const h = knownHalf(s, reg, 1);
  if (l === undefined || h === undefined) return undefined;
  return (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);
}

function operandHalf(s: KnownState, b: Operand, half: 0 | 1): number | undefined {
  if ('imm' in b) return half === 0 ? b.imm | 0 : (b.imm | 0) >> 31;
  return knownHalf(s, b.reg, half);
}

function operandFull(s: KnownState, b: Operand): bigint | undefined {
  return 'imm' in b ? immValue(b.imm) : full(s, b.reg);
}

function set(s: KnownState, reg: number, half: 0 | 1, v: number | undefined): void {
  if (reg === R10 || reg * 2 + half >= 2 * regsOf(s)) return;
  s[halfKey(reg, half)] = v === undefined ? U : v | 0;
}

function setFull(s: KnownState, reg: number, v: bigint | undefined, hiDead: boolean | undefined): void {
  set(s, reg, 0, v === undefined ? undefined : lo32(v));
  set(s, reg, 1, v === undefined || hiDead ? undefined : hi32(v));
}

/** The upper half a 64-bit binary operation leaves, from what is known about its operands. */
function binHi(s: KnownState, inst: Extract<Inst, { op: 'bin' }>): number | undefined {
  const ah = knownHalf(s, inst.a, 1);
  const bh = operandHalf(s, inst.b, 1);
  const count = 'imm' in inst.b ? inst.b.imm & 63 : undefined;
  switch (inst.bin) {
    case 'and':
      return ah === 0 || bh === 0 ? 0 : undefined;
    case 'or':
    case 'xor':
      return ah !== undefined && bh !== undefined ? (inst.bin === 'or' ? ah | bh : ah ^ bh) : undefined;
    case 'lshr':
      if (count !== undefined && count >= 32) return 0;
      return ah === 0 ? 0 : undefined;
    case 'shl':
      return count !== undefined && count >= 32 && knownHalf(s, inst.a, 0) === 0 ? 0 : undefined;
    case 'udiv':
    case 'urem':
      // Neither grows its dividend (and x % 0 = x).
      return ah === 0 ? 0 : undefined;
    case 'mul':
      return ah === 0 && bh === 0 && (knownHalf(s, inst.a, 0) === 0 || operandHalf(s, inst.b, 0) === 0) ? 0 : undefined;
    default:
      return undefined;
  }
}

const bits = (max: number): number => (max === INF ? INF : 2 ** Math.ceil(Math.log2(max + 1)) - 1);

/** A computed range that may have wrapped past 2^64 when its maximum is not exact. */
function fit(min: number, max: number): [number, number] {
  return max < EXACT ? [min, max] : [0, INF];
}

/** The range of a 64-bit binary operation's result, from its operands' (before the instruction). */
function binRange(s: KnownState, inst: Extract<Inst, { op: 'bin' }>): [number, number] {
  const [amin, amax] = rangeOf(s, inst.a);
  const imm = 'imm' in inst.b ? inst.b.imm | 0 : undefined;
  const [bmin, bmax] = operandRange(s, inst.b);
  const count = imm !== undefined ? imm & 63 : undefined;
  switch (inst.bin) {
    case 'add':
      if (imm !== undefined && imm < 0) return amin >= -imm ? [amin + imm, amax + imm] : [0, INF];
      return fit(amin + bmin, amax + bmax);
    case 'sub':
      if (imm !== undefined && imm < 0) return fit(amin - imm, amax - imm);
      return amin >= bmax ? [amin - bmax, amax - bmin] : [0, INF];
    case 'mul':
      return fit(amin * bmin, amax * bmax);
    case 'and':
      return [0, Math.min(amax, bmax)];
    case 'or':
    case 'xor':
      return [0, Math.max(bits(amax), bits(bmax))];
    case 'shl':
      return count !== undefined ? fit(amin * 2 ** count, amax * 2 ** count) : [0, INF];
    case 'lshr':
      return count !== undefined ? [Math.floor(amin / 2 ** count), Math.floor(amax / 2 ** count)] : [0, amax];
    case 'ashr':
      if (amax >= 2 ** 63) return [0, INF];
      return count !== undefined ? [Math.floor(amin / 2 ** count), Math.floor(amax / 2 ** count)] : [0, amax];
    case 'udiv':
      return [0, amax];
    case 'urem':
      return [0, bmin > 0 ? Math.min(amax, bmax - 1) : amax];
    default:
      return [0, INF];
  }
}

/** The range of a 32-bit binary operation's result. */
function binRange32(s: KnownState, inst: Extract<Inst, { op: 'bin' }>): [number, number] {
  const a = range32(s, { reg: inst.a });
  const b = range32(s, inst.b);
  const all: [number, number] = [0, TWO32 - 1];
  if (a === undefined || b === undefined) {
    if (inst.bin === 'and' && 'imm' in inst.b && inst.b.imm >= 0) return [0, inst.b.imm];
    if (inst.bin === 'lshr' && 'imm' in inst.b) return [0, Math.floor((TWO32 - 1) / 2 ** (inst.b.imm & 31))];
    return all;
  }
  const count = 'imm' in inst.b ? inst.b.imm & 31 : undefined;
  let r: [number, number];
  switch (inst.bin) {
    case 'add': r = [a[0] + b[0], a[1] + b[1]]; break;
    case 'sub': r = a[0] >= b[1] ? [a[0] - b[1], a[1] - b[0]] : all; break;
    case 'mul': r = [a[0] * b[0], a[1] * b[1]]; break;
    case 'and': r = [0, Math.min(a[1], b[1])]; break;
    case 'or': case 'xor': r = [0, Math.max(bits(a[1]), bits(b[1]))]; break;
    case 'shl': r = count !== undefined ? [a[0] * 2 ** count, a[1] * 2 ** count] : all; break;
    case 'lshr': r = count !== undefined ? [Math.floor(a[0] / 2 ** count), Math.floor(a[1] / 2 ** count)] : [0, a[1]]; break;
    case 'udiv': r = [0, a[1]]; break;
    case 'urem': r = [0, b[0] > 0 ? Math.min(a[1], b[1] - 1) : a[1]]; break;
    default: r = all;
  }
  return r[1] < TWO32 ? r : all;
}

/** The range an instruction gives its destination (computed before the instruction). */
function defRange(s: KnownState, inst: Inst): [number, number] {
  const all32: [number, number] = [0, TWO32 - 1];
  switch (inst.op) {
    case 'mov':
      if (inst.w === 64) return rangeOf(s, inst.src);
      return range32(s, { reg: inst.src }) ?? all32;
    case 'bin':
      return inst.w === 64 ? binRange(s, inst) : binRange32(s, inst);
    case 'ext':
      if (inst.signed && inst.w === 64) return [0, INF];
      return inst.signed || inst.bits === 32 ? all32 : [0, 2 ** inst.bits - 1];
    case 'bswap':
      return inst.bits === 64 ? [0, INF] : [0, 2 ** inst.bits - 1];
    case 'load':
      return inst.signed || inst.size === 8 ? [0, INF] : [0, 2 ** (8 * inst.size) - 1];
    case 'addr':
      return all32;
    case 'neg':
      return inst.w === 32 ? all32 : [0, INF];
    default:
      return [0, INF];
  }
}

/**
 * The unsigned range of the low half `inst` computes, from what is known before it (undefined
 * when unknown). Unlike the register's range after `inst`, it holds also when the definition is
 * hiDead: its upper half then stays unwritten, but the lowering still computes the low half.
 */
export function lowHalfRange(s: KnownState, inst: Inst): [number, number] | undefined {
  if (!('dst' in inst)) return undefined;
  const r = defRange(s, inst);
  return r[1] < TWO32 ? r : undefined;
}

/**
 * After an access through `base` + `off` completes (a failing one ends the program), the address
 * lies inside a region: the base's range narrows to the window, shifted by the offset.
 */
function accessed(s: KnownState, base: number, off: number, size: number): void {
  if (base === R10 || off <= -ADDR_MIN || off >= ADDR_MIN) return;
  const [min, max] = rangeOf(s, base);
  const lo = Math.max(min, ADDR_MIN - off);
  const hi = Math.min(max, ADDR_END - size - off);
  if (lo <= hi) setRange(s, base, lo, hi);
}

/** Updates `s` for the effect of one instruction. */
export function transfer(s: KnownState, inst: Inst): void {
  if (inst.op === 'load' || inst.op === 'store' || inst.op === 'atomic') accessed(s, inst.base, inst.off, inst.size);
  const range = 'dst' in inst ? defRange(s, inst) : undefined;
  transferHalves(s, inst);
  if (range !== undefined && 'dst' in inst) {
    const d = inst.dst;
    if (inst.hiDead) setRange(s, d, 0, INF);
    else {
      const l = has(s[halfKey(d, 0)]) ? s[halfKey(d, 0)] : undefined;
      const h = has(s[halfKey(d, 1)]) ? s[halfKey(d, 1)] : undefined;
      if (l !== undefined && h !== undefined && h >>> 0 < 2 ** 21) {
        const v = (h >>> 0) * TWO32 + (l >>> 0);
        setRange(s, d, v, v);
      } else setRange(s, d, range[0], range[1]);
    }
  }
  switch (inst.op) {
    case 'atomic': {
      const target = inst.aop === 'cmpxchg' ? 0 : inst.fetch || inst.aop === 'xchg' ? inst.src : undefined;
      if (target !== undefined) setRange(s, target, 0, inst.size === 4 ? TWO32 - 1 : INF);
      return;
    }
    case 'call':
    case 'callx':
      for (let r = 0; r <= 5; r++) setRange(s, r, 0, INF);
      return;
    case 'calllocal':
      for (let r = 0; r < regsOf(s); r++) if (r <= 5 || r > R10) setRange(s, r, 0, INF);
      return;
    default:
  }
}

function transferHalves(s: KnownState, inst: Inst): void {
  switch (inst.op) {
    case 'const':
      set(s, inst.dst, 0, inst.lo);
      set(s, inst.dst, 1, inst.hiDead ? undefined : inst.hi);
      return;
    case 'addr':
      // Section addresses depend on the layout; the lowering knows them, this analysis does not need to.
      set(s, inst.dst, 0, undefined);
      set(s, inst.dst, 1, inst.hiDead ? undefined : 0);
      return;
    case 'mov': {
      const l = knownHalf(s, inst.src, 0);
      const h = inst.w === 64 ? knownHalf(s, inst.src, 1) : 0;
      set(s, inst.dst, 0, l);
      set(s, inst.dst, 1, inst.hiDead ? undefined : h);
      return;
    }
    case 'bin': {
      const a = full(s, inst.a);
      const b = operandFull(s, inst.b);
      if (inst.w === 32) {
        const al = knownHalf(s, inst.a, 0);
        const bl = operandHalf(s, inst.b, 0);
        const v = al !== undefined && bl !== undefined ? lo32(evalBin(inst.bin, 32, BigInt(al), BigInt(bl))) : undefined;
        set(s, inst.dst, 0, v);
        set(s, inst.dst, 1, inst.hiDead ? undefined : 0);
        return;
      }
      if (a !== undefined && b !== undefined) {
        setFull(s, inst.dst, evalBin(inst.bin, 64, a, b), inst.hiDead);
        return;
      }
      const h = inst.hiDead ? undefined : binHi(s, inst);
      set(s, inst.dst, 0, undefined);
      set(s, inst.dst, 1, h);
      return;
    }
    case 'neg': {
      const a = inst.w === 64 ? full(s, inst.src) : undefined;
      const l = knownHalf(s, inst.src, 0);
      if (inst.w === 32) {
        set(s, inst.dst, 0, l === undefined ? undefined : -l | 0);
        set(s, inst.dst, 1, inst.hiDead ? undefined : 0);
        return;
      }
      setFull(s, inst.dst, a === undefined ? undefined : BigInt.asUintN(64, -a), inst.hiDead);
      return;
    }
    case 'ext': {
      const l = knownHalf(s, inst.src, 0);
      if (l !== undefined) {
        setFull(s, inst.dst, evalExt(inst.signed, inst.bits, inst.w, BigInt(l >>> 0)), inst.hiDead);
        return;
      }
      set(s, inst.dst, 0, undefined);
      set(s, inst.dst, 1, inst.hiDead || (inst.w === 64 && inst.signed) ? undefined : 0);
      return;
    }
    case 'bswap':
      set(s, inst.dst, 0, undefined);
      set(s, inst.dst, 1, inst.hiDead || inst.bits === 64 ? undefined : 0);
      return;
    case 'load':
      set(s, inst.dst, 0, undefined);
      set(s, inst.dst, 1, inst.hiDead || inst.size === 8 || inst.signed ? undefined : 0);
      return;
    case 'store':
    case 'budget':
      return;
    case 'atomic': {
      const target = inst.aop === 'cmpxchg' ? 0 : inst.fetch || inst.aop === 'xchg' ? inst.src : undefined;
      if (target === undefined) return;
      set(s, target, 0, undefined);
      set(s, target, 1, inst.size === 4 ? 0 : undefined);
      return;
    }
    case 'call':
    case 'callx':
      for (let r = 0; r <= 5; r++) {
        set(s, r, 0, undefined);
        set(s, r, 1, undefined);
      }
      return;
    case 'calllocal':
      // The callee may leave anything in r0-r5 (r6-r9 come back as they were) and in temporaries.
      for (let k = 0; k < 2 * regsOf(s); k++) if (k < 12 || k >= 22) s[k] = U;
      return;
  }
}

/** The halves an instruction reads as the IR defines it (r10 excluded), as [reg, half] pairs. */
export function readsOf(inst: Inst): Array<[number, 0 | 1]> {
  const out: Array<[number, 0 | 1]> = [];
  const lo = (r: number): void => void out.push([r, 0]);
  const both = (r: number): void => void out.push([r, 0], [r, 1]);
  const w = (wide: boolean, r: number): void => (wide ? both(r) : lo(r));
  switch (inst.op) {
    case 'const':
    case 'addr':
    case 'budget':
      break;
    case 'mov':
    case 'neg':
      w(inst.w === 64, inst.src);
      break;
    case 'ext':
      lo(inst.src);
      break;
    case 'bswap':
      w(inst.bits === 64, inst.src);
      break;
    case 'bin': {
      const shift = inst.bin === 'shl' || inst.bin === 'lshr' || inst.bin === 'ashr';
      w(inst.w === 64, inst.a);
      if ('reg' in inst.b) w(inst.w === 64 && !shift, inst.b.reg);
      break;
    }
    case 'load':
      both(inst.base);
      break;
    case 'store':
      both(inst.base);
      if ('reg' in inst.value) w(inst.size === 8, inst.value.reg);
      break;
    case 'atomic':
      both(inst.base);
      w(inst.size === 8, inst.src);
      if (inst.aop === 'cmpxchg') w(inst.size === 8, 0);
      break;
    case 'call':
      break;
    case 'callx':
      both(inst.reg);
      break;
    case 'calllocal':
      break;
  }
  return out.filter(([r]) => r !== R10);
}

function termReads(t: Terminator): Array<[number, 0 | 1]> {
  if (t.op !== 'br') return [];
  const out: Array<[number, 0 | 1]> = [];
  for (const r of [t.a, ...('reg' in t.b ? [t.b.reg] : [])]) {
    if (r === R10) continue;
    out.push([r, 0]);
    if (t.w === 64) out.push([r, 1]);
  }
  return out;
}

/**
 * Halves known wherever they are read, in the whole module: their writes can be dropped. Reads
 * that leave the lowering's view keep a half alive unless its value is known there too, in which
 * case the lowering writes the constant first: `ret` (r0), helper calls (r1-r5 go to their slots).
 * A local callee starts with nothing known, so whatever it reads stays.
 */
export function eliminable(analyses: readonly KnownHalves[], nregs: number): Set<number> {
  const unknownRead = new Uint8Array(nregs * 2);
  for (const a of analyses) {
    const f = a.function;
    f.blocks.forEach((b, bi) => {
      if (!a.reachable(bi)) return;
      const s = a.at(bi);
      const note = (reads: Array<[number, 0 | 1]>): void => {
        for (const [r, h] of reads) if (knownHalf(s, r, h) === undefined) unknownRead[halfKey(r, h)] = 1;
      };
      for (const inst of b.insts) {
        note(readsOf(inst));
        if (inst.op === 'call' || inst.op === 'callx') note([1, 2, 3, 4, 5].flatMap((r): Array<[number, 0 | 1]> => [[r, 0], [r, 1]]));
        transfer(s, inst);
      }
      note(termReads(b.term));
      if (b.term.op === 'ret') note([[0, 0], [0, 1]]);
    });
  }
  const out = new Set<number>();
  for (let k = 0; k < nregs * 2; k++) if (!unknownRead[k] && (k >> 1) !== R10) out.add(k);
  return out;
}
