// The abstract state at one program point: what each register holds (nothing yet, a scalar, or a
// pointer into a named region with an offset range), what the tracked stack bytes hold, and the
// relational facts (zone and affine equalities) between register values / pointer offsets and the
// symbolic mem length. Relations on a register always talk about its scalar value or, for a
// pointer, its offset; they are forgotten whenever that meaning changes.
import { Affine } from './affine.js';
import {
  join as joinNum, leq as leqNum, equal as equalNum, sync, top, widen as widenNum, type Num,
} from './interval.js';
import { LIMIT, Zone } from './zone.js';

export type Kind = 'uninit' | 'scalar' | 'ptr';

export interface Val {
  readonly kind: Kind;
  /** Region index (pointers; see AnalysisRegion in absint.ts); scalars: -1, or MIXED. */
  readonly region: number;
  /** The value (scalar) or the offset from the region's base (pointer; frame-relative for the stack). */
  readonly n: Num;
}

/** Eight stack bytes: which have been written, and a value stored whole at `at` (if any). */
export interface Slot {
  /** Bit i: byte i of the slot has been written on every path. */
  readonly init: number;
  readonly val?: { readonly at: number; readonly size: number; readonly v: Val };
}

/** Bounds and constants of the registers as doubles, with the register values they describe. */
export interface Derived {
  readonly vals: readonly Val[];
  readonly lo: readonly number[];
  readonly hi: readonly number[];
  /** Bit r: register r holds one known value (lo[r] === hi[r], within 2^50) the relations can use. */
  readonly consts: number;
}

/**
 * Widening thresholds: stack pointers also stop at the frame boundaries (where accesses change
 * frames); other values climbing through those would only take more rounds.
 */
export interface Thresholds {
  readonly values: readonly bigint[];
  readonly stack: readonly bigint[];
  /**
   * Per register (when given): the thresholds for its value or non-stack offset, in place of
   * `values` (a loop counter need not climb through the constants other counters compare with).
   */
  readonly regs?: readonly (readonly bigint[])[];
}

/** The region index of the stack (pointers into it widen with the frame boundaries). */
export const STACK_REGION = 0;

/** Register variables 0..10, then the symbolic mem length. */
export const LEN = 11;
export const NVARS = 12;

const TOP64 = top(64);
export const UNINIT: Val = { kind: 'uninit', region: -1, n: TOP64 };
export const SCALAR_TOP: Val = { kind: 'scalar', region: -1, n: top(64) };

/**
 * The region of a scalar that may be a difference of addresses in two regions (r10 - r1): adding
 * it to a pointer into one region can land in the other, so the sum has no known region.
 */
export const MIXED = -2;
export const MIXED_TOP: Val = { kind: 'scalar', region: MIXED, n: top(64) };

export const scalar = (n: Num): Val => ({ kind: 'scalar', region: -1, n });
export const pointer = (region: number, n: Num): Val => ({ kind: 'ptr', region, n });

export class State {
  /** r0..r10, then the mem length (always a scalar). */
  regs: Val[];
  /**
   * Slot i holds frame-relative offsets [-512 + 8i, -512 + 8i + 8). Never changed in place (a
   * store builds a new array), so clones share it.
   */
  stack: (Slot | undefined)[];
  /** Possibly shared with clones: read freely, change only through `wzone()`. */
  zone: Zone;
  aff: Affine;
  /** Cached facts about `regs` (see derived()); valid only while the registers are the same. */
  derived?: Derived;
  private zoneShared = false;

  constructor(regs: Val[], stack: (Slot | undefined)[], zone: Zone, aff: Affine) {
    this.regs = regs;
    this.stack = stack;
    this.zone = zone;
    this.aff = aff;
  }

  /** A copy; the zone is copied lazily, by whichever of the two changes it first. */
  clone(): State {
    const c = new State(this.regs.slice(), this.stack, this.zone, this.aff);
    c.derived = this.derived;
    this.zoneShared = true;
    c.zoneShared = true;
    return c;
  }

  /** The zone, safe to change in place. */
  wzone(): Zone {
    if (this.zoneShared) {
      this.zone = this.zone.clone();
      this.zoneShared = false;
    }
    return this.zone;
  }

  /** The zone, to be held by another state too (both copy it before changing it). */
  sharedZone(): Zone {
    this.zoneShared = true;
    return this.zone;
  }

  /** Takes a zone another state holds too. */
  shareZone(z: Zone): void {
    this.zone = z;
    this.zoneShared = true;
  }

  /** Replaces the zone with one no other state holds. */
  setZone(z: Zone): void {
    this.zone = z;
    this.zoneShared = false;
  }

  /** Forget every relation of variable x. */
  forgetRel(x: number): void {
    if (this.zone.mentions(x)) this.wzone().forget(x);
    this.aff = this.aff.forget(x);
  }

  setReg(r: number, v: Val): void {
    this.regs[r] = v;
    this.forgetRel(r);
  }
}

/** Bit r: register r means the same kind of thing in a and b (else its relations go, in both). */
function alignKinds(a: State, b: State): number {
  let same = 0;
  for (let r = 0; r < NVARS; r++) {
    const x = a.regs[r], y = b.regs[r];
    if (x.kind !== 'uninit' && x.kind === y.kind && x.region === y.region) same |= 1 << r;
  }
  return same;
}

function joinVal(x: Val, y: Val, widenWith?: Thresholds, r = -1): Val {
  if (x === y) return x;
  if (x.kind === 'uninit' && y.kind === 'uninit') return UNINIT;
  if (x.kind !== y.kind || x.region !== y.region || x.kind === 'uninit') {
    // A scalar that may be a difference of addresses stays one: joined with any scalar it keeps its
    // value range, and adding it to a pointer must never claim the pointer's region.
    if ((x.region === MIXED || y.region === MIXED) && x.kind === 'scalar' && y.kind === 'scalar') {
      return { kind: 'scalar', region: MIXED, n: widenWith ? widenNum(x.n, y.n, valuesFor(widenWith, r)) : joinNum(x.n, y.n) };
    }
    return x.region === MIXED || y.region === MIXED ? MIXED_TOP : SCALAR_TOP;
  }
  // A join of equal values is either one (widening may still tighten an unsynced value: not here).
  if (widenWith === undefined && equalNum(x.n, y.n)) return x;
  const n = widenWith ? widenNum(x.n, y.n, x.kind === 'ptr' && x.region === STACK_REGION ? widenWith.stack : valuesFor(widenWith, r)) : joinNum(x.n, y.n);
  return { kind: x.kind, region: x.region, n };
}

/** The thresholds for register r (r < 0: a stack slot). */
function valuesFor(t: Thresholds, r: number): readonly bigint[] {
  return r >= 0 && t.regs !== undefined ? t.regs[r] : t.values;
}

function valLeq(x: Val, y: Val): boolean {
  if (x === y) return true;
  if (y.kind === 'scalar' && (y.region === MIXED || x.region !== MIXED) && equalNum(y.n, SCALAR_TOP.n)) return true;
  if (x.kind === 'scalar' && y.kind === 'scalar' && y.region === MIXED) return leqNum(x.n, y.n);
  if (x.kind !== y.kind || x.region !== y.region) return false;
  return x.kind === 'uninit' || leqNum(x.n, y.n);
}

function joinSlot(x: Slot | undefined, y: Slot | undefined, widenWith?: Thresholds): Slot | undefined {
  if (x === y) return x;
  if (x === undefined || y === undefined) return undefined;
  const init = x.init & y.init;
  if (init === 0) return undefined;
  const a = x.val, b = y.val;
  if (widenWith === undefined && x.init === y.init && (a === b || (a !== undefined && b !== undefined && a.at === b.at && a.size === b.size && (a.v === b.v || (a.v.kind === b.v.kind && a.v.region === b.v.region && a.v.kind !== 'uninit' && equalNum(a.v.n, b.v.n)))))) return x;
  if (a && b && a.at === b.at && a.size === b.size) {
    const v = joinVal(a.v, b.v, widenWith);
    return { init, val: { at: a.at, size: a.size, v } };
  }
  return { init };
}

function slotLeq(x: Slot | undefined, y: Slot | undefined): boolean {
  if (x === y || y === undefined) return true;
  if (x === undefined) return false;
  if ((y.init & ~x.init) !== 0) return false;
  if (!y.val) return true;
  return !!x.val && x.val.at === y.val.at && x.val.size === y.val.size && valLeq(x.val.v, y.val.v);
}

const EXACT_N = 2 ** 50;
const BIG_LIMIT = BigInt(LIMIT);
const NEG_BIG_LIMIT = -BIG_LIMIT;

/** Registers holding one known value (that the relations can use), with that value. */
function constants(s: State): Map<number, number> {
  const d = derived(s);
  const out = new Map<number, number>();
  for (let r = 0; r < NVARS; r++) if ((d.consts & (1 << r)) !== 0) out.set(r, d.lo[r]);
  return out;
}

/**
 * Register facts as doubles, computed once per set of register values: a state keeps them with
 * the values they came from (clones share them), and they are recomputed when any register was
 * replaced since (values are immutable, so identity tells).
 */
function derived(s: State): Derived {
  const c = s.derived;
  const regs = s.regs;
  if (c !== undefined) {
    let same = true;
    for (let r = 0; r < NVARS; r++) if (c.vals[r] !== regs[r]) { same = false; break; }
    if (same) return c;
  }
  // Registers whose value objects are unchanged keep their bounds (values are immutable).
  const lo: number[] = new Array<number>(NVARS), hi: number[] = new Array<number>(NVARS);
  let consts = 0;
  for (let r = 0; r < NVARS; r++) {
    const v = regs[r];
    if (c !== undefined && c.vals[r] === v) {
      lo[r] = c.lo[r];
      hi[r] = c.hi[r];
    } else if (v.kind === 'uninit' || v.n === TOP64) {
      lo[r] = -Infinity; hi[r] = Infinity;
      continue;
    } else {
      const { smin, smax } = v.n;
      lo[r] = smin >= NEG_BIG_LIMIT ? Number(smin) : -Infinity;
      hi[r] = smax <= BIG_LIMIT ? Number(smax) : Infinity;
    }
    // lo = hi only for a known value (bounds within 2^52 convert exactly).
    if (lo[r] === hi[r] && lo[r] >= -EXACT_N && lo[r] <= EXACT_N) consts |= 1 << r;
  }
  const d: Derived = { vals: regs.slice(), lo, hi, consts };
  s.derived = d;
  return d;
}

/**
 * The relations of s made explicit for a join: known constants become equalities and differences,
 * so that joining {p = 0, n = 180} with {p = 2, n = 179} yields p + 2n = 360. Undefined when no
 * register in `same` (a bit mask) is a known constant: then `mods` is untouched and s.aff stands.
 */
function explicit(s: State, same: number, head: boolean, other: State | undefined, mods: number[]): Affine | undefined {
  let aff = s.aff;
  const { lo, hi, consts } = derived(s);
  if ((consts & same) === 0) return undefined;
  const otherVars = other === undefined ? 0 : varsOf(other.aff);
  // Differences of constants tighten the zone directly (no re-closure): joins stay sound, just
  // less tight. They go to `mods` (bound by bound minima over s.zone), not into a copy of the zone.
  for (let x = 0; x < NVARS; x++) {
    if ((consts & same & (1 << x)) === 0) continue;
    const cx = lo[x];
    // A constant against any bounded variable: x - y <= cx - min(y), y - x <= max(y) - cx.
    for (let y = 0; y < NVARS; y++) {
      if (y === x || (same & (1 << y)) === 0) continue;
      if (lo[y] !== -Infinity) {
        const v = cx - lo[y], k = x * NVARS + y;
        if (v < mods[k] && Math.abs(v) <= LIMIT) mods[k] = v;
      }
      if (hi[y] !== Infinity) {
        const v = hi[y] - cx, k = y * NVARS + x;
        if (v < mods[k] && Math.abs(v) <= LIMIT) mods[k] = v;
      }
    }
    // Needed where the other side relates x; at a loop head also where the sides differ (that is
    // where new equations come from); a constant both sides agree on stays known as an interval.
    const o = other?.regs[x].n;
    // cx is exact (|cx| <= 2^50), so comparing as doubles is exact.
    const agreed = o !== undefined && o.smin === o.smax && Number(o.smin) === cx;
    const want = (otherVars & (1 << x)) !== 0 || (head && !agreed);
    if (!want || hasUnitRow(aff, x, cx)) continue;
    aff = aff.add(UNIT_ROW[x], cx) ?? aff;
  }
  return aff;
}

/** x_r as a coefficient vector, for each r (shared: never changed). */
const UNIT_ROW: readonly (readonly number[])[] = Array.from({ length: NVARS }, (_, r) => Object.freeze(Array.from({ length: NVARS }, (_, j) => (j === r ? 1 : 0))));

/** Whether aff holds the equation x = c. */
function hasUnitRow(aff: Affine, x: number, c: number): boolean {
  for (const r of aff.rows) {
    if (r[x] !== 1 || r[NVARS] !== c) continue;
    let only = true;
    for (let j = 0; j < NVARS; j++) if (j !== x && r[j] !== 0) { only = false; break; }
    if (only) return true;
  }
  return false;
}

/**
 * Affine.upperBound of sign * x_x (a unit vector), with the same arithmetic in the same order: for
 * a unit vector only x itself can be eliminated, so each row gives one bound, computed in one pass.
 */
function unitUpper(rows: readonly (readonly number[])[], x: number, sign: number, lo: readonly number[], hi: readonly number[]): number {
  let best = 0 + sign * (sign > 0 ? hi[x] : lo[x]);
  for (const e of rows) {
    const ex = e[x];
    if (ex === 0) continue;
    const s = ex > 0 ? 1 : -1;
    const ev = ex * s;
    // The row solved for x: every other variable with coefficient -sign * e[j] * s.
    let sum = 0;
    let inf = false;
    for (let j = 0; j < NVARS; j++) {
      if (j === x) continue;
      const c = -sign * e[j] * s;
      if (c === 0) continue;
      sum += c > 0 ? c * hi[j] : c * lo[j];
      if (sum === Infinity || Number.isNaN(sum)) { inf = true; break; }
    }
    if (inf || !Number.isSafeInteger(sum)) continue;
    const num = sum + sign * e[NVARS] * s;
    if (!Number.isSafeInteger(num)) continue;
    const bound = Math.floor(num / ev);
    if (bound < best) best = bound;
  }
  return best;
}

/** Scratch bound minima for explicit() (all Infinity between uses). */
const MODS_A: number[] = new Array<number>(NVARS * NVARS).fill(Infinity);
const MODS_B: number[] = new Array<number>(NVARS * NVARS).fill(Infinity);

/**
 * Join (or widening); `head`: at a loop head, where constants also become equalities (the
 * affine join is what finds p + 2n = c; elsewhere it would only cost time).
 */
function varsOf(aff: Affine): number {
  let out = 0;
  for (const r of aff.rows) for (let j = 0; j < NVARS; j++) if (r[j] !== 0) out |= 1 << j;
  return out;
}

function combine(a: State, b: State, widenWith: Thresholds | undefined, head: boolean): State {
  const same = alignKinds(a, b);
  // Away from loop heads, a constant only becomes an equation where the other side relates it.
  const ea = explicit(a, same, head, b, MODS_A), eb = explicit(b, same, head, a, MODS_B);
  let aa = ea ?? a.aff, ab = eb ?? b.aff;
  for (let r = 0; r < NVARS; r++) {
    if ((same & (1 << r)) !== 0) continue;
    aa = aa.forget(r); ab = ab.forget(r);
  }
  const regs = new Array<Val>(NVARS);
  for (let r = 0; r < NVARS; r++) regs[r] = joinVal(a.regs[r], b.regs[r], widenWith, r);
  // Stacks are never changed in place, so one array on both sides is its own join, and a join
  // that gives back every slot of a is a itself (which keeps later identity checks cheap).
  let stack = a.stack;
  if (a.stack !== b.stack) {
    const sa = a.stack, sb = b.stack;
    let copy: (Slot | undefined)[] | undefined;
    for (let i = 0; i < sa.length; i++) {
      const j = joinSlot(sa[i], sb[i], widenWith);
      if (copy === undefined && j !== sa[i]) copy = sa.slice(0, i);
      if (copy !== undefined) copy.push(j);
    }
    if (copy !== undefined) stack = copy;
  }
  // Zone join (or widening) of the zones tightened by explicit(), in one pass; the relations of
  // registers whose meanings differ are dropped from the result (as from both sides before).
  const da = a.zone.d, db = b.zone.d;
  // A copy (then overwritten) keeps the elements kind of zone arrays: plain doubles, not holey.
  const out = da.slice();
  const len = da.length;
  if (ea !== undefined || eb !== undefined) {
    for (let k = 0; k < len; k++) {
      let x = da[k], y = db[k];
      if (MODS_A[k] < x) x = MODS_A[k];
      if (MODS_B[k] < y) y = MODS_B[k];
      out[k] = widenWith ? (y <= x ? x : Infinity) : (x > y ? x : y);
    }
  } else if (widenWith) {
    for (let k = 0; k < len; k++) if (!(db[k] <= da[k])) out[k] = Infinity;
  } else if (da !== db) {
    for (let k = 0; k < len; k++) if (db[k] > da[k]) out[k] = db[k];
  }
  for (let r = 0; r < NVARS; r++) {
    if ((same & (1 << r)) !== 0) continue;
    for (let k = 0; k < NVARS; k++) {
      if (k === r) continue;
      out[r * NVARS + k] = Infinity;
      out[k * NVARS + r] = Infinity;
    }
  }
  if (ea !== undefined) MODS_A.fill(Infinity);
  if (eb !== undefined) MODS_B.fill(Infinity);
  // A result zone equal to a's is a's (states on edges stay smaller, and later checks cheaper).
  let sameZone = true;
  for (let k = 0; k < len; k++) if (out[k] !== da[k]) { sameZone = false; break; }
  const res = new State(regs, stack, sameZone ? a.zone : new Zone(NVARS, out), aa.join(ab));
  if (sameZone) res.shareZone(a.sharedZone());
  return res;
}

export function joinStates(a: State, b: State, head = false): State {
  return combine(a, b, undefined, head);
}

/** Widening; the zone is left unclosed, since closing it would bring dropped bounds back forever. */
export function widenStates(old: State, next: State, thresholds: Thresholds): State {
  return combine(old, next, thresholds, true);
}

function valEqual(x: Val, y: Val): boolean {
  return x === y || (x.kind === y.kind && x.region === y.region && equalNum(x.n, y.n));
}

function slotEqual(x: Slot | undefined, y: Slot | undefined): boolean {
  if (x === y) return true;
  if (x === undefined || y === undefined || x.init !== y.init) return false;
  const a = x.val, b = y.val;
  if (a === b) return true;
  return a !== undefined && b !== undefined && a.at === b.at && a.size === b.size && valEqual(a.v, b.v);
}

/** The same abstract state, component by component (so every transfer gives the same result). */
export function stateEqual(a: State, b: State): boolean {
  if (a === b) return true;
  for (let r = 0; r < NVARS; r++) if (!valEqual(a.regs[r], b.regs[r])) return false;
  if (a.stack !== b.stack) {
    if (a.stack.length !== b.stack.length) return false;
    for (let i = 0; i < a.stack.length; i++) if (!slotEqual(a.stack[i], b.stack[i])) return false;
  }
  const za = a.zone.d, zb = b.zone.d;
  if (za !== zb) for (let i = 0; i < za.length; i++) if (za[i] !== zb[i]) return false;
  return a.aff === b.aff || a.aff.equals(b.aff);
}

export function stateLeq(a: State, b: State): boolean {
  for (let r = 0; r < NVARS; r++) if (!valLeq(a.regs[r], b.regs[r])) return false;
  if (a.stack !== b.stack) for (let i = 0; i < a.stack.length; i++) if (!slotLeq(a.stack[i], b.stack[i])) return false;
  // Relations only matter where b keeps the register's meaning.
  for (let r = 0; r < NVARS; r++) {
    if (a.regs[r].kind !== b.regs[r].kind || a.regs[r].region !== b.regs[r].region) {
      for (let k = 0; k < NVARS; k++) {
        if (k !== r && (b.zone.get(r, k) !== Infinity || b.zone.get(k, r) !== Infinity)) return false;
      }
    }
  }
  let init = 0;
  for (let r = 0; r < NVARS; r++) if (a.regs[r].kind !== 'uninit') init |= 1 << r;
  const ea = explicit(a, init, false, undefined, MODS_A);
  const da = a.zone.d, db = b.zone.d;
  let zoneLeq = true;
  for (let k = 0; k < da.length; k++) {
    const x = MODS_A[k] < da[k] ? MODS_A[k] : da[k];
    if (x > db[k]) { zoneLeq = false; break; }
  }
  if (ea !== undefined) MODS_A.fill(Infinity);
  return zoneLeq && (b.aff.rows.length === 0 || a.aff.leq(b.aff, constants(a)));
}

/**
 * Signed bounds of variable i as doubles (infinite when unknown or beyond exact range). Shared:
 * callers must not change the arrays.
 */
export function bounds(s: State): { readonly lo: readonly number[]; readonly hi: readonly number[] } {
  return derived(s);
}

/**
 * Tightens every register's bounds with what the relations imply (zone: x <= y + c; affine:
 * x = combination of others). Returns false when the state turned out to be empty.
 */
export function reduce(s: State): boolean {
  const rows = s.aff.rows;
  const d = s.zone.d;
  // Only variables in some zone constraint can be tightened by it (and tighten others).
  let inZone = 0;
  for (let x = 0; x < NVARS; x++) {
    const row = x * NVARS;
    for (let y = 0; y < NVARS; y++) if (y !== x && d[row + y] !== Infinity) inZone |= (1 << x) | (1 << y);
  }
  if (rows.length === 0 && inZone === 0) return true;
  const { lo, hi } = bounds(s);
  const nlo = lo.slice(), nhi = hi.slice();
  const regs = s.regs;
  for (let x = 0; x < NVARS; x++) {
    if (regs[x].kind === 'uninit' || (inZone & (1 << x)) === 0) continue;
    const row = x * NVARS;
    let up = nhi[x], dn = nlo[x];
    for (let y = 0; y < NVARS; y++) {
      if (y === x || (inZone & (1 << y)) === 0 || regs[y].kind === 'uninit') continue;
      const u = d[row + y]; // x - y <= u
      if (u !== Infinity && hi[y] !== Infinity) { const v = hi[y] + u; if (v < up) up = v; }
      const w = d[y * NVARS + x]; // y - x <= w
      if (w !== Infinity && lo[y] !== -Infinity) { const v = lo[y] - w; if (v > dn) dn = v; }
    }
    nhi[x] = up;
    nlo[x] = dn;
  }
  if (rows.length > 0) {
    for (let x = 0; x < NVARS; x++) {
      if (regs[x].kind === 'uninit') continue;
      let any = false;
      for (const r of rows) if (r[x] !== 0) { any = true; break; }
      if (!any) continue;
      nhi[x] = Math.min(nhi[x], unitUpper(rows, x, 1, lo, hi));
      nlo[x] = Math.max(nlo[x], -unitUpper(rows, x, -1, lo, hi));
    }
  }
  for (let x = 0; x < NVARS; x++) {
    if (nlo[x] === lo[x] && nhi[x] === hi[x]) continue;
    const v = s.regs[x];
    const smin = nlo[x] === -Infinity ? v.n.smin : BigInt(nlo[x]);
    const smax = nhi[x] === Infinity ? v.n.smax : BigInt(nhi[x]);
    const n = sync({ ...v.n, smin: smin > v.n.smin ? smin : v.n.smin, smax: smax < v.n.smax ? smax : v.n.smax });
    if (n === undefined) return false;
    s.regs[x] = { kind: v.kind, region: v.region, n };
  }
  return true;
}
