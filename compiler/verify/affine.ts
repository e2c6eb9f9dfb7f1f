// Affine equalities between variables (Karr's domain): rows a . x = c with integer coefficients,
// kept in reduced row-echelon form. It captures what zones cannot: a pointer and a counter moving
// with different strides (p += 2, n -= 1 gives p + 2n = const), and three-variable sums
// (q = p + i). Equalities hold over the integers (the analysis only records one when it proved the
// operation did not wrap), so rational elimination is sound. Entries stay exact doubles: a row
// whose numbers grow past 2^50 is dropped, which only loses information.

const MAX = 2 ** 50;

/** Scratch coefficients for upperBound() (never escapes it). */
let LP: number[] = [];

/** One equation: coefficients for variables 0..n-1, then the constant at index n. */
export type Row = readonly number[];

export class Affine {
  readonly n: number;
  /** Rows in echelon order of their pivots (first nonzero coefficient, made positive, gcd 1). */
  readonly rows: readonly Row[];

  constructor(n: number, rows: readonly Row[] = []) {
    this.n = n;
    this.rows = rows;
  }

  /** Adds the equation sum(coef[i] * x_i) = c; undefined when it contradicts the others. */
  add(coef: readonly number[], c: number): Affine | undefined {
    const row = [...coef, c];
    return this.with(row);
  }

  /** Adds one row (coefficients then constant). */
  with(row: number[]): Affine | undefined {
    const n = this.n;
    let r: number[] | undefined = row;
    for (const e of this.rows) {
      const p = pivot(e, n);
      if (r[p] !== 0) r = combine(r, e, p);
      if (r === undefined) return this; // too large to keep: drop the new equation
    }
    const norm = normalize(r, n);
    if (norm === 'zero') return this;
    if (norm === 'false') return undefined;
    const p = pivot(norm, n);
    // Eliminating p from a row keeps its pivot (norm is zero in every other row's pivot column,
    // and a row is zero before its own pivot): the order stays, norm goes in at its pivot.
    const out: Row[] = [];
    let placed = false;
    for (const e of this.rows) {
      if (!placed && pivot(e, n) > p) { out.push(norm); placed = true; }
      if (e[p] === 0) { out.push(e); continue; }
      const c = combine(e.slice(), norm, p);
      if (c === undefined) continue;
      const ne = normalize(c, n);
      if (ne !== 'zero' && ne !== 'false') out.push(ne);
    }
    if (!placed) out.push(norm);
    return new Affine(n, out);
  }

  /** Drops every equation involving x (projects it out). */
  forget(x: number): Affine {
    const n = this.n;
    // The row with the smallest coefficient of x (the first of those) eliminates x from the others.
    let use: Row | undefined;
    let count = 0;
    for (const e of this.rows) {
      if (e[x] === 0) continue;
      count++;
      if (use === undefined || Math.abs(e[x]) < Math.abs(use[x])) use = e;
    }
    if (use === undefined) return this;
    // One equation alone can always be met by choosing x: the others are the projection (and,
    // as a subset of an echelon system, already one).
    if (count === 1) return new Affine(n, this.rows.filter((e) => e !== use));
    const out: Row[] = [];
    for (const e of this.rows) {
      if (e === use) continue;
      if (e[x] === 0) { out.push(e); continue; }
      const c = combine(e.slice(), use, x);
      if (c === undefined) continue;
      const ne = normalize(c, n);
      if (ne !== 'zero' && ne !== 'false') out.push(ne);
    }
    return rebuild(n, out);
  }

  /**
   * x := sum(coef[i] * x_i) + c. An update of x by itself plus other variables (coef[x] = 1) and a
   * scaling (x := k x + c) are substituted exactly; any other self-reference just forgets x.
   */
  assign(x: number, coef: readonly number[], c: number): Affine {
    const n = this.n;
    if (!this.rows.some((e) => e[x] !== 0) && coef[x] !== 0) {
      // x had no equations; x := k x + ... only gets one if it does not depend on itself.
      return this;
    }
    if (coef[x] === 1 && coef.every((v, j) => j === x || v === 0)) {
      // x := x + c: only constants change, the echelon form stays.
      const out: Row[] = [];
      for (const e of this.rows) {
        if (e[x] === 0) { out.push(e); continue; }
        const r = e.slice();
        r[n] += e[x] * c;
        if (Math.abs(r[n]) <= MAX) out.push(r);
        else return this.forget(x);
      }
      return new Affine(n, out);
    }
    if (coef[x] === 1) {
      // old x = new x - (rest + c): substitute into every row.
      const out: number[][] = [];
      for (const e of this.rows) {
        const a = e[x];
        if (a === 0) { out.push(e.slice()); continue; }
        const r = e.slice();
        for (let j = 0; j < n; j++) if (j !== x) r[j] -= a * coef[j];
        r[n] += a * c;
        if (r.every((v) => Math.abs(v) <= MAX)) out.push(r);
      }
      return rebuild(n, out);
    }
    const others = coef.some((v, j) => j !== x && v !== 0);
    if (coef[x] !== 0 && !others) {
      // x := k x + c: multiply each row by k, keep x's coefficient, fix the constant.
      const k = coef[x];
      const out: number[][] = [];
      for (const e of this.rows) {
        const a = e[x];
        if (a === 0) { out.push(e.slice()); continue; }
        const r = e.map((v, j) => (j === x ? v : v * k));
        r[n] = e[n] * k + a * c;
        if (r.every((v) => Math.abs(v) <= MAX)) out.push(r);
      }
      return rebuild(n, out);
    }
    const f = this.forget(x);
    if (coef[x] !== 0) return f;
    const row = coef.map((v) => -v);
    row[x] = 1;
    return f.add(row, c) ?? f;
  }

  /** Equations true in both (affine hull of the union): intersection of the row spaces. */
  join(o: Affine): Affine {
    // Both empty systems mean the same; returning one keeps identity checks cheap.
    if (this.rows.length === 0) return this;
    if (o.rows.length === 0) return o;
    if (this.equals(o)) return this;
    // One system's rows all among the other's: the intersection is the smaller system itself (and
    // since the reduced echelon form of a row space is unique, the same rows the general case gives).
    const fast = this.rows.length <= o.rows.length ? (rowsAmong(this.rows, o.rows) ? this : undefined) : (rowsAmong(o.rows, this.rows) ? o : undefined);
    if (fast !== undefined) return fast;
    const n = this.n;
    const w = n + 1;
    // Zassenhaus: [a | a] for rows of this, [b | 0] for rows of o; rows whose left half reduces
    // to zero span the intersection in their right half.
    const m: number[][] = [];
    for (const a of this.rows) m.push([...a, ...a]);
    for (const b of o.rows) m.push([...b, ...new Array<number>(w).fill(0)]);
    let rank = 0;
    for (let col = 0; col < 2 * w && rank < m.length; col++) {
      let p = -1;
      for (let i = rank; i < m.length; i++) if (m[i][col] !== 0) { p = i; break; }
      if (p < 0) continue;
      [m[rank], m[p]] = [m[p], m[rank]];
      for (let i = rank + 1; i < m.length; i++) {
        if (m[i][col] === 0) continue;
        const c = combine(m[i], m[rank], col);
        if (c === undefined) { m.splice(i, 1); i--; continue; }
        m[i] = reduceGcd(c);
      }
      rank++;
    }
    let out: Affine = new Affine(n);
    for (const r of m) {
      if (r.slice(0, w).some((v) => v !== 0)) continue;
      const right = r.slice(w);
      if (right.every((v) => v === 0)) continue;
      out = out.with(right) ?? out;
    }
    return out;
  }

  /**
   * Every equation of o follows from this one's, plus the known constant values `consts`
   * (variable -> value) that the equations are not required to repeat.
   */
  leq(o: Affine, consts?: ReadonlyMap<number, number>): boolean {
    const n = this.n;
    for (const b of o.rows) {
      let r: number[] | undefined = b.slice();
      for (const e of this.rows) {
        const p = pivot(e, n);
        if (r[p] !== 0) r = combine(r, e, p);
        if (r === undefined) return false;
      }
      let rest = r[n];
      for (let j = 0; j < n; j++) {
        if (r[j] === 0) continue;
        const c = consts?.get(j);
        if (c === undefined) return false;
        rest -= r[j] * c;
      }
      if (rest !== 0) return false;
    }
    return true;
  }

  equals(o: Affine): boolean {
    if (this.rows.length !== o.rows.length) return false;
    return this.rows.every((r, i) => r.every((v, j) => v === o.rows[i][j]));
  }

  /**
   * An upper bound of sum(L[i] * x_i), given upper/lower bounds of each variable: the bound from
   * the variables' own ranges, improved by eliminating one variable with each equation.
   */
  upperBound(L: readonly number[], lo: readonly number[], hi: readonly number[]): number {
    const n = this.n;
    let best = linearUpper(L, lo, hi);
    for (const e of this.rows) {
      for (let v = 0; v < n; v++) {
        if (L[v] === 0 || e[v] === 0) continue;
        // e[v] * L = L[v] * e + L'   =>  L . x = (L' . x + L[v] * c) / e[v]
        const s = e[v] > 0 ? 1 : -1;
        const ev = e[v] * s;
        const Lp = LP.length === n ? LP : (LP = new Array<number>(n));
        for (let j = 0; j < n; j++) Lp[j] = ev * L[j] - L[v] * e[j] * s;
        const ub = linearUpper(Lp, lo, hi);
        if (ub === Infinity) continue;
        const num = ub + L[v] * e[n] * s;
        if (!Number.isSafeInteger(num)) continue;
        const bound = Math.floor(num / ev);
        if (bound < best) best = bound;
      }
    }
    return best;
  }
}

/** Whether every row of a equals some row of b. */
function rowsAmong(a: readonly Row[], b: readonly Row[]): boolean {
  for (const x of a) {
    let found = false;
    for (const y of b) {
      if (x === y) { found = true; break; }
      let eq = true;
      for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) { eq = false; break; }
      if (eq) { found = true; break; }
    }
    if (!found) return false;
  }
  return true;
}

function pivot(r: Row, n: number): number {
  for (let i = 0; i < n; i++) if (r[i] !== 0) return i;
  return n;
}

/** r - (r[p] / e[p]) e, scaled to stay integral; undefined when the numbers grow too large. */
function combine(r: number[], e: Row, p: number): number[] | undefined {
  const a = e[p];
  const b = r[p];
  const g = gcd(Math.abs(a), Math.abs(b));
  const ka = a / g;
  const kb = b / g;
  const out = new Array<number>(r.length);
  for (let i = 0; i < r.length; i++) {
    const v = ka * r[i] - kb * e[i];
    if (!(Math.abs(v) <= MAX)) return undefined;
    out[i] = v;
  }
  return reduceGcd(out);
}

function reduceGcd(r: number[]): number[] {
  let g = 0;
  for (const v of r) g = gcd(g, Math.abs(v));
  if (g > 1) for (let i = 0; i < r.length; i++) r[i] /= g;
  return r;
}

function normalize(r: number[], n: number): number[] | 'zero' | 'false' {
  const p = pivot(r, n);
  if (p === n) return r[n] === 0 ? 'zero' : 'false';
  let g = 0;
  for (let i = 0; i < n; i++) g = gcd(g, Math.abs(r[i]));
  // Integer coefficients with a gcd not dividing the constant: no integer solution.
  if (r[n] % g !== 0) return 'false';
  const s = r[p] < 0 ? -1 : 1;
  // A copy overwritten in place stays a packed array (map's closure call per entry costs more).
  const out = r.slice();
  for (let i = 0; i < out.length; i++) out[i] = (r[i] * s) / g + 0;
  return out;
}

function rebuild(n: number, rows: readonly Row[]): Affine {
  let out: Affine | undefined = new Affine(n);
  for (const r of rows) {
    const next: Affine | undefined = out.with(r.slice());
    if (next === undefined) return out; // cannot happen for equations of a satisfiable system
    out = next;
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function linearUpper(L: readonly number[], lo: readonly number[], hi: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < L.length; i++) {
    const c = L[i];
    if (c === 0) continue;
    s += c > 0 ? c * hi[i] : c * lo[i];
    if (s === Infinity || Number.isNaN(s)) return Infinity;
  }
  return Number.isSafeInteger(s) ? s : Infinity;
}
