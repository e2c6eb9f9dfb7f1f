// Scratch memory for the IR builder and passes: views into one growing Int32Array, handed out in
// order and all given back at once. V8 allocates a typed array over 64 bytes outside the heap, at
// about ten times the cost of a view: for a program of a few dozen slots that fixed cost was most
// of the time the builder and passes took.
// Rule: a caller resets at the start of a unit of work (buildIr, one function of one pass) and
// keeps no view past it; nothing that resets may run while views of an outer unit are in use.

let buf = new Int32Array(1 << 14);
let top = 0;

/** Gives every view back. */
export function resetScratch(): void {
  top = 0;
}

/** A view of n words, each set to `fill` (views from before stay valid when the buffer grows). */
export function scratch(n: number, fill = 0): Int32Array {
  if (top + n > buf.length) {
    buf = new Int32Array(Math.max(2 * buf.length, 2 * n));
    top = 0;
  }
  const v = buf.subarray(top, top + n);
  top += n;
  v.fill(fill);
  return v;
}
