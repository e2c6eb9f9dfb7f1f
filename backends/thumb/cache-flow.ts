// Which run-state words (region counts, hosts, deltas, the frame pointer) the cache registers may
// hold when a block starts, so that a loop's checked accesses load them once on the way in rather
// than on every iteration. lowerModule lowers each function twice: the first pass records how each
// block uses the cache registers (emitter.ts CacheUse), this forward analysis turns that into the
// words a block may assume, and the second pass assumes them, loading on any edge that lacks one
// (edges into a loop from outside it, which run once per entry to the loop).
//
// A block may assume a word in a register when every edge into it provides it, where edges into a
// loop header from outside the loop count as providing anything (they get the loads); a word is
// only worth assuming when the block, or a block after it with the register untouched in between,
// loads it.
import type { IrFunction } from '../../compiler/ir/ir.js';
import type { CacheUse } from './emitter.js';
import { CACHE_REGS } from './emitter.js';
import { naturalLoops, successors } from './regalloc.js';

/** Register -> run-state offset, per block. */
export type CacheWords = Map<number, number>;

/** The words each block of `fn` may assume in the cache registers on entry. */
export function entryWords(fn: IrFunction, uses: readonly CacheUse[]): CacheWords[] {
  const n = fn.blocks.length;
  const preds: number[][] = fn.blocks.map(() => []);
  fn.blocks.forEach((b) => {
    for (const s of successors(b.term)) if (s >= 0 && s < n && !preds[s].includes(b.id)) preds[s].push(b.id);
  });
  // Edges from outside a loop into its header can take loads.
  const inLoop = new Map<number, Set<number>>();
  for (const { head, body } of naturalLoops(fn)) {
    const all = inLoop.get(head) ?? new Set<number>();
    for (const b of body) all.add(b);
    inLoop.set(head, all);
  }
  const firm = (p: number, b: number): boolean => inLoop.get(b)?.has(p) ?? true;

  // Backward: the words worth having in each register on entry.
  const useful: CacheWords[] = uses.map((u) => new Map(u.wanted));
  for (let changed = true; changed; ) {
    changed = false;
    for (let b = n - 1; b >= 0; b--) {
      for (const s of successors(fn.blocks[b].term)) {
        if (s < 0 || s >= n) continue;
        for (const [r, off] of useful[s]) {
          if (uses[b].clobbered.has(r) || useful[b].has(r)) continue;
          useful[b].set(r, off);
          changed = true;
        }
      }
    }
  }

  // Forward, optimistic: undefined = not reached yet (assumes everything).
  const entry: Array<CacheWords | undefined> = new Array(n).fill(undefined);
  if (n > 0) entry[0] = new Map();
  const exit = (b: number): CacheWords | undefined => {
    const at = entry[b];
    if (at === undefined) return undefined;
    const out = new Map<number, number>();
    for (const r of CACHE_REGS) {
      const w = uses[b].exit.get(r) ?? (uses[b].clobbered.has(r) ? undefined : at.get(r));
      if (w !== undefined) out.set(r, w);
    }
    return out;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let b = 1; b < n; b++) {
      // undefined = every word (no firm predecessor reached yet).
      let meet: CacheWords | undefined;
      let reached = false;
      for (const p of preds[b]) {
        if (entry[p] === undefined) continue;
        reached = true;
        if (!firm(p, b)) continue;
        const o = exit(p) as CacheWords;
        meet = meet === undefined ? o : new Map([...meet].filter(([r, off]) => o.get(r) === off));
      }
      if (!reached) continue;
      const next = new Map([...(meet ?? useful[b])].filter(([r, off]) => useful[b].get(r) === off));
      const cur = entry[b];
      if (cur === undefined || cur.size !== next.size || [...next].some(([r, off]) => cur.get(r) !== off)) {
        entry[b] = next;
        changed = true;
      }
    }
  }
  return entry.map((w) => w ?? new Map());
}
