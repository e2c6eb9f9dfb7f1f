// The abstract domains of the verifier, each checked against brute force: known bits (tnum) and
// bounded integers at small widths, where every concrete value can be enumerated; branch
// refinement on every condition; the zone's closure; affine equalities; and widening reaching a
// fixpoint on ever-growing inputs.
import { describe, expect, it } from 'vitest';
import { Affine } from '../compiler/verify/affine.js';
import {
  binary, clearCaches, constant, contains, decide, evalBinary, evalCond, join, meet, refine, sext, sync, top, trunc, urange,
  widen, zext, bswap, neg, type BinaryOp, type Cond, type Num,
} from '../compiler/verify/interval.js';
import { mask, tadd, tand, tcontains, tmul, tor, tsub, txor, tunion, tintersect, tlsh, trsh, tarsh, type Tnum } from '../compiler/verify/tnum.js';
import { Zone } from '../compiler/verify/zone.js';
import { bounds, NVARS, scalar, State, UNINIT, type Slot, type Val } from '../compiler/verify/state.js';

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const values = (w: number): bigint[] => Array.from({ length: 1 << w }, (_, i) => BigInt(i));
const gamma = (n: Num): bigint[] => values(n.w).filter((x) => contains(n, x));

function allTnums(w: number): Tnum[] {
  const out: Tnum[] = [];
  const count = 3 ** w;
  for (let k = 0; k < count; k++) {
    let v = 0n, m = 0n, r = k;
    for (let b = 0; b < w; b++) {
      const d = r % 3;
      r = Math.floor(r / 3);
      if (d === 1) v |= 1n << BigInt(b);
      if (d === 2) m |= 1n << BigInt(b);
    }
    out.push({ v, m });
  }
  return out;
}
const tgamma = (w: number, t: Tnum): bigint[] => values(w).filter((x) => tcontains(t, x));

/** Abstract values at width w: every unsigned range, some with extra known bits or signed bounds. */
function nums(w: number, n: number, seed: number): Num[] {
  const r = rng(seed);
  const out: Num[] = [top(w)];
  const max = (1 << w) - 1;
  while (out.length < n) {
    const a = Math.floor(r() * (max + 1));
    const b = Math.floor(r() * (max + 1));
    let x: Num | undefined = urange(w, BigInt(Math.min(a, b)), BigInt(Math.max(a, b)));
    if (r() < 0.3) {
      const v = values(w)[Math.floor(r() * (max + 1))];
      const m = BigInt(Math.floor(r() * (max + 1)));
      x = sync({ ...x, t: { v: v & ~m, m: m & mask(w) } });
    }
    if (x !== undefined && r() < 0.3) x = meet(x, { ...top(w), smin: BigInt(Math.floor(r() * (max + 1)) - (1 << (w - 1))) });
    if (x !== undefined) out.push(x);
  }
  return out;
}

describe('tnum operations are sound (exhaustive at width 3, sampled at width 5)', () => {
  const ops: [string, (w: number, a: Tnum, b: Tnum) => Tnum, (x: bigint, y: bigint, w: number) => bigint][] = [
    ['add', tadd, (x, y, w) => (x + y) & mask(w)],
    ['sub', tsub, (x, y, w) => (x - y) & mask(w)],
    ['mul', tmul, (x, y, w) => (x * y) & mask(w)],
    ['and', (_w, a, b) => tand(a, b), (x, y) => x & y],
    ['or', (_w, a, b) => tor(a, b), (x, y) => x | y],
    ['xor', (_w, a, b) => txor(a, b), (x, y) => x ^ y],
    ['union', (_w, a, b) => tunion(a, b), (x) => x],
  ];
  it.each(ops)('%s', (_name, op, concrete) => {
    for (const w of [3]) {
      const ts = allTnums(w);
      for (const a of ts) {
        for (const b of ts) {
          const r = op(w, a, b);
          for (const x of tgamma(w, a)) for (const y of tgamma(w, b)) expect(tcontains(r, concrete(x, y, w))).toBe(true);
        }
      }
    }
    const r5 = rng(5);
    const ts5 = allTnums(5);
    for (let k = 0; k < 300; k++) {
      const a = ts5[Math.floor(r5() * ts5.length)];
      const b = ts5[Math.floor(r5() * ts5.length)];
      const r = op(5, a, b);
      for (const x of tgamma(5, a)) for (const y of tgamma(5, b)) expect(tcontains(r, concrete(x, y, 5))).toBe(true);
    }
  });
  it('shifts and intersection', () => {
    const w = 4;
    for (const a of allTnums(w)) {
      for (let s = 0; s < w; s++) {
        const l = tlsh(w, a, s), rr = trsh(a, s), ar = tarsh(w, a, s);
        for (const x of tgamma(w, a)) {
          expect(tcontains(l, (x << BigInt(s)) & mask(w))).toBe(true);
          expect(tcontains(rr, x >> BigInt(s))).toBe(true);
          const sx = x >= 8n ? x - 16n : x;
          expect(tcontains(ar, (sx >> BigInt(s)) & mask(w))).toBe(true);
        }
      }
      for (const b of allTnums(w)) {
        const both = tgamma(w, a).filter((x) => tcontains(b, x));
        const m = tintersect(a, b);
        if (both.length === 0) expect(m).toBeUndefined();
        else for (const x of both) expect(m !== undefined && tcontains(m, x)).toBe(true);
      }
    }
  });
});

describe('bounded integers are sound against brute force', () => {
  const OPS: BinaryOp[] = ['add', 'sub', 'mul', 'udiv', 'umod', 'sdiv', 'smod', 'and', 'or', 'xor', 'lsh', 'rsh', 'arsh'];
  it.each(OPS)('%s at width 4', (op) => {
    const ns = nums(4, 70, op.length * 7 + 1);
    for (const a of ns) {
      const ga = gamma(a);
      for (const b of ns) {
        const r = binary(op, a, b);
        for (const x of ga) for (const y of gamma(b)) {
          if (!contains(r, evalBinary(op, 4, x, y))) {
            throw new Error(`${op}: ${x} ${y} -> ${evalBinary(op, 4, x, y)} not in [${r.umin},${r.umax}] s[${r.smin},${r.smax}]`);
          }
        }
      }
    }
  });
  it('constants fold exactly, and sync never loses a value', () => {
    for (const x of values(4)) for (const y of values(4)) {
      expect(binary('add', constant(4, x), constant(4, y))).toEqual(constant(4, (x + y) & 15n));
    }
    for (const n of nums(4, 200, 99)) {
      const s = sync(n);
      for (const x of values(4)) if (contains(n, x)) expect(s !== undefined && contains(s, x)).toBe(true);
    }
  });
  it('sync neither loses nor adds a value at widths 32 and 64 (where it computes on doubles)', () => {
    const r = rng(7);
    const big = (bits: number): bigint => BigInt(Math.floor(r() * 2 ** Math.min(bits, 30))) << BigInt(Math.max(0, bits - 30));
    let checked = 0;
    for (const w of [32, 64]) {
      const M = mask(w);
      for (let k = 0; k < 400; k++) {
        // Unsigned bounds below 2^31 (the fast path), signed bounds and known bits of every kind.
        const a = big(31), b = big(31);
        const umin = a < b ? a : b, umax = a < b ? b : a;
        const smin = [umin, -(1n << BigInt(w - 1)), umin + big(4), -big(20)][k % 4];
        const smax = [umax, (1n << BigInt(w - 1)) - 1n, umax - big(4), big(40)][(k >> 2) % 4];
        const m = [M, big(31), big(31) | (M ^ 0xffffffffn), 0xffn][(k >> 4) % 4] & M;
        const v = (k % 3 === 0 ? big(31) : 0n) & ~m & M;
        const n: Num = { w, umin, umax, smin, smax, t: { v, m } };
        const res = sync(n);
        for (let j = 0; j < 40; j++) {
          const x = j < 2 ? [umin, umax][j] : umin + BigInt(Math.floor(r() * Number(umax - umin + 1n)));
          const inN = contains(n, x);
          const inS = res !== undefined && contains(res, x);
          expect(inS, `${w}-bit ${x} in ${JSON.stringify(n, (_k, y) => (typeof y === 'bigint' ? String(y) : y))}`).toBe(inN);
          if (inN) checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
  it('join contains both, meet exactly their common values', () => {
    const ns = nums(4, 60, 3);
    for (const a of ns) for (const b of ns) {
      const j = join(a, b);
      for (const x of gamma(a).concat(gamma(b))) expect(contains(j, x)).toBe(true);
      const m = meet(a, b);
      for (const x of gamma(a)) if (contains(b, x)) expect(m !== undefined && contains(m, x)).toBe(true);
    }
  });
  it('truncation, zero- and sign-extension, negation and byte swaps', () => {
    for (const a of nums(8, 150, 11)) {
      const t = trunc(a, 4);
      const z = zext(t, 8);
      const s = sext(t, 8);
      const n = neg(a);
      const sw = bswap(a, 8);
      for (const x of gamma(a)) {
        const low = x & 15n;
        expect(contains(t, low)).toBe(true);
        expect(contains(z, low)).toBe(true);
        expect(contains(s, (low >= 8n ? low - 16n : low) & 255n)).toBe(true);
        expect(contains(n, (-x) & 255n)).toBe(true);
        expect(contains(sw, x)).toBe(true); // one byte: a swap is the identity
      }
    }
  });
  it('shares equal values and memoised results, and stays exact after the caches are dropped', () => {
    const r = rng(11);
    for (let k = 0; k < 200; k++) {
      const x = BigInt(Math.floor(r() * 256)), y = BigInt(Math.floor(r() * 256));
      const op = (['add', 'sub', 'mul', 'udiv', 'umod', 'sdiv', 'smod', 'and', 'or', 'xor', 'lsh', 'rsh', 'arsh'] as const)[k % 13];
      const a = urange(8, x < y ? x : y, x < y ? y : x);
      const b = constant(8, BigInt(Math.floor(r() * 8)));
      const first = binary(op, a, b);
      // Equal operands built separately give the very same result object.
      expect(binary(op, urange(8, x < y ? x : y, x < y ? y : x), constant(8, b.umin))).toBe(first);
      expect(join(first, a)).toBe(join(first, urange(8, a.umin, a.umax)));
      clearCaches();
      const again = binary(op, a, b);
      expect(again).toEqual(first);
    }
    expect(constant(64, 5n)).toBe(constant(64, 5n));
    expect(sync({ ...top(64) })).toBe(top(64));
  });
  it('keeps precision where it matters', () => {
    expect(binary('and', top(8), constant(8, 0x0fn)).umax).toBe(15n);
    expect(binary('rsh', urange(8, 0n, 200n), constant(8, 3n)).umax).toBe(25n);
    expect(binary('umod', top(8), constant(8, 10n)).umax).toBe(9n);
    expect(binary('add', urange(8, 10n, 20n), constant(8, 5n))).toMatchObject({ umin: 15n, umax: 25n });
  });
});

describe('branch refinement on every condition', () => {
  const CONDS: Cond[] = ['eq', 'ne', 'ult', 'ule', 'ugt', 'uge', 'slt', 'sle', 'sgt', 'sge', 'set', 'nset'];
  it.each([4, 6])('is sound at width %i', (w) => {
    const ns = nums(w, w === 4 ? 50 : 20, w);
    for (const cond of CONDS) {
      for (const a of ns) for (const b of ns) {
        const r = refine(cond, a, b);
        let any = false;
        for (const x of gamma(a)) for (const y of gamma(b)) {
          if (!evalCond(cond, w, x, y)) continue;
          any = true;
          if (r === undefined || !contains(r[0], x) || !contains(r[1], y)) {
            throw new Error(`${cond} at width ${w}: ${x} ${y} lost`);
          }
        }
        if (!any && r !== undefined) {
          // Allowed (an interval cannot always see it), but a decided condition must agree.
          expect(decide(cond, a, b)).not.toBe(true);
        }
      }
    }
  });
  it('narrows both sides', () => {
    const [a, b] = refine('ult', top(8), constant(8, 10n)) ?? [];
    expect(a?.umax).toBe(9n);
    expect(b?.umin).toBe(10n);
    expect(refine('ugt', constant(8, 3n), urange(8, 5n, 9n))).toBeUndefined();
    const [c] = refine('ne', urange(8, 0n, 10n), constant(8, 0n)) ?? [];
    expect(c?.umin).toBe(1n);
    const [s] = refine('sge', top(8), constant(8, 0n)) ?? [];
    expect(s).toMatchObject({ smin: 0n, umax: 127n });
    const [bit] = refine('set', urange(8, 0n, 15n), constant(8, 8n)) ?? [];
    expect(bit?.umin).toBe(8n);
    expect(decide('eq', constant(8, 1n), constant(8, 1n))).toBe(true);
  });
});

describe('zone (difference bounds)', () => {
  it('closes transitively and detects contradictions', () => {
    const z = new Zone(4);
    expect(z.addConstraint(0, 1, 1)).toBe(true); // x0 - x1 <= 1
    expect(z.addConstraint(1, 2, 2)).toBe(true); // x1 - x2 <= 2
    expect(z.get(0, 2)).toBe(3);
    z.assignPlus(3, 0, 5); // x3 = x0 + 5
    expect(z.get(3, 2)).toBe(8);
    expect(z.get(0, 3)).toBe(-5);
    expect(z.clone().addConstraint(2, 0, -4)).toBe(false); // x2 - x0 <= -4 contradicts x0 - x2 <= 3
  });
  it('joins to the weaker bound, widens away unstable bounds, orders by inclusion', () => {
    const a = new Zone(3), b = new Zone(3);
    a.addConstraint(0, 1, 1);
    b.addConstraint(0, 1, 4);
    b.addConstraint(1, 2, 0);
    const j = a.join(b);
    expect(j.get(0, 1)).toBe(4);
    expect(j.get(1, 2)).toBe(Infinity);
    expect(a.leq(j) && b.leq(j)).toBe(true);
    expect(j.leq(a)).toBe(false);
    expect(a.widen(b).get(0, 1)).toBe(Infinity);
    expect(b.widen(a).get(0, 1)).toBe(4);
  });
  it('matches brute force on random constraint sets', () => {
    const r = rng(42);
    for (let k = 0; k < 200; k++) {
      const z = new Zone(3);
      const cons: [number, number, number][] = [];
      let ok = true;
      for (let c = 0; c < 4; c++) {
        const i = Math.floor(r() * 3), j = Math.floor(r() * 3), v = Math.floor(r() * 9) - 4;
        if (i === j) continue;
        cons.push([i, j, v]);
        ok = z.addConstraint(i, j, v) && ok;
      }
      const pts: number[][] = [];
      for (let a = -6; a <= 6; a++) for (let b = -6; b <= 6; b++) pts.push([0, a, b]);
      const sat = pts.filter((p) => cons.every(([i, j, v]) => p[i] - p[j] <= v));
      if (!ok) { expect(sat).toEqual([]); continue; }
      for (const p of sat) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(p[i] - p[j]).toBeLessThanOrEqual(z.get(i, j));
    }
  });
});

describe('abstract states', () => {
  it('clones share a zone until one of them changes it', () => {
    const regs = new Array<Val>(NVARS).fill(UNINIT);
    const a = new State(regs, new Array<Slot | undefined>(64).fill(undefined), new Zone(NVARS), new Affine(NVARS));
    a.wzone().addConstraint(1, 2, 5);
    const b = a.clone();
    expect(b.zone).toBe(a.zone);
    b.wzone().addConstraint(1, 2, 3);
    expect(a.zone.get(1, 2)).toBe(5);
    expect(b.zone.get(1, 2)).toBe(3);
    a.forgetRel(1);
    expect(a.zone.get(1, 2)).toBe(Infinity);
    expect(b.zone.get(1, 2)).toBe(3);
    expect(b.zone.mentions(2) && !a.zone.mentions(2)).toBe(true);
  });
  it('caches register bounds only for the register values they came from', () => {
    const regs = new Array<Val>(NVARS).fill(UNINIT);
    regs[3] = scalar(urange(64, 2n, 9n));
    const s = new State(regs, new Array<Slot | undefined>(64).fill(undefined), new Zone(NVARS), new Affine(NVARS));
    expect(bounds(s).hi[3]).toBe(9);
    s.regs[3] = scalar(constant(64, 4n));
    expect([bounds(s).lo[3], bounds(s).hi[3]]).toEqual([4, 4]);
    const c = s.clone();
    c.setReg(3, scalar(urange(64, 0n, 100n)));
    expect([bounds(c).hi[3], bounds(s).hi[3]]).toEqual([100, 4]);
  });
});

describe('affine equalities', () => {
  it('finds p + 2n = 360 from two states of a strided loop and bounds p with it', () => {
    const s1 = new Affine(3).add([1, 0, 0], 0)?.add([0, 1, 0], 180);
    const s2 = new Affine(3).add([1, 0, 0], 2)?.add([0, 1, 0], 179);
    const j = s1!.join(s2!);
    expect(j.rows).toEqual([[1, 2, 0, 360]]);
    // n in [1, 180]  =>  p <= 358
    expect(j.upperBound([1, 0, 0], [-Infinity, 1, -Infinity], [Infinity, 180, Infinity])).toBe(358);
  });
  it('follows x := x + c, x := x + y, scaling, and forgets', () => {
    let a = new Affine(3).add([1, -1, 0], 0)!; // x0 = x1
    a = a.assign(0, [1, 0, 0], 4); // x0 := x0 + 4
    expect(a.rows).toEqual([[1, -1, 0, 4]]);
    a = a.assign(0, [1, 0, 1], 0); // x0 := x0 + x2
    expect(a.rows).toEqual([[1, -1, -1, 4]]);
    a = a.assign(1, [0, 2, 0], 0); // x1 := 2 x1
    expect(a.rows).toEqual([[2, -1, -2, 8]]);
    expect(a.forget(2).rows).toEqual([]);
    expect(new Affine(2).add([1, 0], 1)?.add([1, 0], 2)).toBeUndefined();
    expect(new Affine(2).add([2, 0], 1)).toBeUndefined(); // 2x = 1 has no integer solution
  });
  it('keeps the echelon form whatever the order equations come in, and projects exactly', () => {
    const r = rng(11);
    for (let k = 0; k < 200; k++) {
      // Equations through one integer point P, so the system is consistent.
      const P = Array.from({ length: 5 }, () => Math.floor(r() * 21) - 10);
      const eqs = Array.from({ length: 1 + Math.floor(r() * 4) }, () => Array.from({ length: 5 }, () => (r() < 0.5 ? 0 : Math.floor(r() * 7) - 3)));
      const build = (order: number[][]): Affine => order.reduce((a, e) => a.add(e, e.reduce((s, c, j) => s + c * P[j], 0)) ?? a, new Affine(5));
      const a = build(eqs), b = build([...eqs].reverse());
      expect(b.rows).toEqual(a.rows); // the reduced echelon form of a row space is unique
      const pivots = a.rows.map((row) => row.findIndex((v) => v !== 0));
      expect(pivots).toEqual([...pivots].sort((x, y) => x - y));
      for (let x = 0; x < 5; x++) {
        const f = a.forget(x);
        // x is gone, P still satisfies every equation, and the projection follows from the system.
        for (const row of f.rows) {
          expect(row[x]).toBe(0);
          expect(row.slice(0, 5).reduce((s, c, j) => s + c * P[j], 0)).toBe(row[5]);
        }
        expect(a.leq(f)).toBe(true);
        // Every equation of a without x is kept.
        for (const row of a.rows) if (row[x] === 0) expect(f.leq(new Affine(5, [row]))).toBe(true);
      }
    }
  });
  it('orders by implication', () => {
    const a = new Affine(2).add([1, 0], 3)!.add([0, 1], 4)!;
    const b = new Affine(2).add([1, 1], 7)!;
    expect(a.leq(b)).toBe(true);
    expect(b.leq(a)).toBe(false);
    expect(new Affine(2).leq(b, new Map([[0, 3], [1, 4]]))).toBe(true);
  });
});

describe('widening', () => {
  it('reaches a fixpoint on an ever-growing sequence in a bounded number of steps', () => {
    const thresholds = [0n, 10n, 100n, 2n ** 63n - 1n];
    let cur: Num = constant(64, 0n);
    let changes = 0;
    for (let k = 1; k < 1000; k++) {
      const next = join(cur, urange(64, 0n, BigInt(k * k)));
      const w = widen(cur, next, thresholds);
      if (w.umax !== cur.umax || w.smax !== cur.smax || w.t.m !== cur.t.m) changes++;
      cur = w;
    }
    // Each change moves a bound to a further threshold (or the end): few changes, whatever the input.
    expect(changes).toBeLessThanOrEqual(thresholds.length + 2);
    expect(cur.umax).toBe(2n ** 63n - 1n); // the next threshold above every input
  });
  it('stops at a threshold when the bound stops there', () => {
    const w = widen(urange(64, 0n, 1n), urange(64, 0n, 2n), [0n, 9n, 2n ** 63n - 1n]);
    expect(w.umax).toBe(9n);
  });
});
