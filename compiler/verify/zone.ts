// Difference-bound matrices (the zone domain): constraints x_i - x_j <= c between variables (the
// eBPF registers and the symbolic mem length). Kept closed (shortest paths), so joins are
// pointwise maxima and queries read one entry. Bounds are exact integers held in doubles: a bound
// whose magnitude exceeds 2^52 is dropped (weaker, so still sound) and sums never lose precision.

export const LIMIT = 2 ** 52;

export class Zone {
  readonly n: number;
  /**
   * d[i * n + j] bounds x_i - x_j; Infinity: no constraint. A plain array, not a Float64Array:
   * zones are copied at every branch and join, and V8 copies and collects small plain arrays of
   * doubles far faster than typed arrays (each of which owns an ArrayBuffer).
   */
  readonly d: number[];

  constructor(n: number, d?: number[]) {
    this.n = n;
    if (d) {
      this.d = d;
    } else {
      this.d = new Array<number>(n * n).fill(Infinity);
      for (let i = 0; i < n; i++) this.d[i * n + i] = 0;
    }
  }

  clone(): Zone {
    return new Zone(this.n, this.d.slice());
  }

  hasConstraints(): boolean {
    const { n, d } = this;
    // The diagonal (every n + 1 entries) is always 0: test the runs between its entries.
    for (let i = 0; i < n; i++) {
      const base = i * (n + 1);
      for (let k = base + 1; k <= base + n && k < d.length; k++) if (d[k] !== Infinity) return true;
    }
    return false;
  }

  get(i: number, j: number): number {
    return this.d[i * this.n + j];
  }

  /** Whether some constraint involves x. */
  mentions(x: number): boolean {
    const { n, d } = this;
    for (let k = 0; k < n; k++) if (k !== x && (d[x * n + k] !== Infinity || d[k * n + x] !== Infinity)) return true;
    return false;
  }

  forget(x: number): void {
    const { n, d } = this;
    for (let k = 0; k < n; k++) {
      if (k === x) continue;
      d[x * n + k] = Infinity;
      d[k * n + x] = Infinity;
    }
  }

  /** x := y + c (y may be x). */
  assignPlus(x: number, y: number, c: number): void {
    const { n, d } = this;
    if (!(Math.abs(c) <= LIMIT)) { this.forget(x); return; }
    if (x === y) {
      for (let k = 0; k < n; k++) {
        if (k === x) continue;
        d[x * n + k] = clamp(d[x * n + k] + c);
        d[k * n + x] = clamp(d[k * n + x] - c);
      }
      return;
    }
    this.forget(x);
    for (let k = 0; k < n; k++) {
      if (k === x) continue;
      d[x * n + k] = clamp(c + d[y * n + k]);
      d[k * n + x] = clamp(d[k * n + y] - c);
    }
    d[x * n + y] = c;
    d[y * n + x] = -c;
  }

  /** Adds x - y <= c and restores closure; false when the constraints became unsatisfiable. */
  addConstraint(x: number, y: number, c: number): boolean {
    const { n, d } = this;
    if (x === y) return c >= 0;
    if (!(Math.abs(c) <= LIMIT) || c >= d[x * n + y]) return true;
    if (c + d[y * n + x] < 0) return false;
    for (let i = 0; i < n; i++) {
      const ix = d[i * n + x];
      if (ix === Infinity) continue;
      for (let j = 0; j < n; j++) {
        const v = ix + c + d[y * n + j];
        if (v < d[i * n + j] && Math.abs(v) <= LIMIT) d[i * n + j] = v;
      }
    }
    for (let i = 0; i < n; i++) if (d[i * n + i] < 0) return false;
    return true;
  }

  /** Full closure (after widening). False when unsatisfiable. */
  close(): boolean {
    const { n, d } = this;
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < n; i++) {
        const ik = d[i * n + k];
        if (ik === Infinity) continue;
        for (let j = 0; j < n; j++) {
          const v = ik + d[k * n + j];
          if (v < d[i * n + j] && Math.abs(v) <= LIMIT) d[i * n + j] = v;
        }
      }
    }
    for (let i = 0; i < n; i++) if (d[i * n + i] < 0) return false;
    return true;
  }

  join(o: Zone): Zone {
    const a = this.d, b = o.d;
    const out = a.slice();
    for (let i = 0; i < out.length; i++) if (b[i] > out[i]) out[i] = b[i];
    return new Zone(this.n, out);
  }

  /** Keeps the constraints that still hold (standard zone widening). */
  widen(next: Zone): Zone {
    const a = this.d, b = next.d;
    const out = a.slice();
    for (let i = 0; i < out.length; i++) if (b[i] > a[i]) out[i] = Infinity;
    return new Zone(this.n, out);
  }

  leq(o: Zone): boolean {
    for (let i = 0; i < this.d.length; i++) if (this.d[i] > o.d[i]) return false;
    return true;
  }
}

function clamp(v: number): number {
  return Math.abs(v) <= LIMIT ? v : Infinity;
}
