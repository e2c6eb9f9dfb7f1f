// Scratch memory for the IR builder and passes. V8 allocates a typed array over 64 bytes outside
// the heap, at about ten times the cost of a view, and even a view costs tens of nanoseconds: for a
// program of a few dozen slots such fixed costs were most of the time the builder and passes took.
// So each module keeps its work arrays from one call to the next.
// Rule: nothing that uses a module's slots may run while that module's views of an outer unit of
// work are in use (the builder and passes are not re-entrant).

/**
 * Arrays a module reuses from one unit of work to the next, one per slot, so that a pass that runs
 * on a small function creates no typed array at all. `get(slot, n, fill)` returns an array of at
 * least n words (its length says nothing) with the first n set to `fill`; a slot's array is valid
 * until the same slot is asked for again.
 */
export class WorkArrays {
  private readonly arrays: Int32Array[];
  constructor(slots: number) {
    this.arrays = Array.from({ length: slots }, () => new Int32Array(64));
  }

  get(slot: number, n: number, fill = 0): Int32Array {
    let a = this.arrays[slot];
    if (a.length < n) {
      a = new Int32Array(Math.max(n, 2 * a.length));
      this.arrays[slot] = a;
    }
    a.fill(fill, 0, n);
    return a;
  }

  /** The slot's array with room for n words, keeping its contents (no fill). */
  keep(slot: number, n: number): Int32Array {
    let a = this.arrays[slot];
    if (a.length < n) {
      const grown = new Int32Array(Math.max(n, 2 * a.length));
      grown.set(a);
      a = grown;
      this.arrays[slot] = a;
    }
    return a;
  }
}
