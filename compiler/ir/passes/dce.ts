// Dead code elimination: deletes pure definitions whose destination is never read (liveness over
// register halves, repeated until nothing changes), 64-bit self-moves, and blocks unreachable from
// the function's entry (the rest are renumbered in order, so block ids stay dense).
// Never deleted: loads, stores and atomics (they can fault), calls (effects; they read r1-r5),
// budget charges. Keeps hiDead marks (deleting code only makes more upper halves dead, so a correct
// mark stays correct).
import {
  B_FIRST, B_LEN, BS, I_A, I_DST, I_OP, I_W, IS, OP_MOV, PURE_END, T_ELSE, T_OP, T_THEN, TOP_BR, TOP_JUMP,
  type FlatModule,
} from '../flat.js';
import { WorkArrays } from '../scratch.js';
import { anyLive, cfgOf, copyWords, halfWords, invalidateCfg, solveScc, transferInst, transferTerm, unionSuccs } from './flow.js';

const work = new WorkArrays(4);

/** Drops the blocks of function k that block 0 does not reach, renumbering the rest in order. */
function removeUnreachable(fm: FlatModule, k: number): void {
  const f = fm.fns[k];
  const c = cfgOf(fm, k);
  const a = c.a;
  if (a[c.start + c.reach] === f.nb) return;
  const renumber = work.get(0, f.nb);
  let count = 0;
  for (let b = 0; b < f.nb; b++) if (a[c.reachable + b] === 1) renumber[b] = count++;
  const blk = fm.blk, base = f.b0 * BS;
  for (let b = 0; b < f.nb; b++) {
    if (a[c.reachable + b] === 0) continue;
    const from = base + b * BS, to = base + renumber[b] * BS;
    if (from !== to) blk.copyWithin(to, from, from + BS);
    const op = blk[to + T_OP];
    if (op === TOP_JUMP) blk[to + T_THEN] = renumber[blk[to + T_THEN]];
    else if (op === TOP_BR) {
      blk[to + T_THEN] = renumber[blk[to + T_THEN]];
      blk[to + T_ELSE] = renumber[blk[to + T_ELSE]];
    }
  }
  f.nb = count;
  invalidateCfg(fm, k);
}

/**
 * Deletes the dead definitions of the block record at q, walking back from the live-out set in
 * `live` (which ends up as the block's live-in over the kept code); true when something was deleted.
 */
function sweepBlock(fm: FlatModule, q: number, live: Int32Array): boolean {
  const { ins, blk } = fm;
  transferTerm(blk, q, live);
  const first = blk[q + B_FIRST], len = blk[q + B_LEN];
  // Kept records are compacted towards the end of the block's range, in place.
  let w = first + len;
  for (let k = first + len - 1; k >= first; k--) {
    const p = k * IS;
    const op = ins[p + I_OP];
    if (op < PURE_END) {
      const d = ins[p + I_DST];
      if (!anyLive(live, d) || (op === OP_MOV && ins[p + I_W] === 64 && ins[p + I_A] === d)) continue;
    }
    transferInst(ins, p, live);
    if (--w !== k) ins.copyWithin(w * IS, p, p + IS);
  }
  if (w === first) return false;
  blk[q + B_FIRST] = w;
  blk[q + B_LEN] = first + len - w;
  return true;
}

/**
 * Deleting a dead definition never makes anything else live, and keeps every other dead
 * definition dead, so the code left once nothing is dead is the same whatever the order of
 * deletion: this one solves the CFG's strongly connected components sinks first, deleting what is
 * dead in each until nothing is, so that a component's live-in is final before its predecessors
 * use it. An acyclic block needs a single backward walk; a loop is re-solved after each deletion.
 */
function dceFunction(fm: FlatModule, fk: number): void {
  removeUnreachable(fm, fk);
  const f = fm.fns[fk];
  const words = halfWords(f);
  const c = cfgOf(fm, fk);
  const a = c.a;
  const inn = work.get(1, f.nb * words);
  const out = work.get(2, f.nb * words);
  const live = work.get(3, words);
  const blk = fm.blk, base = f.b0 * BS;
  for (let k = 0; k < c.count; k++) {
    const from = c.blocks + a[c.start + k], to = c.blocks + a[c.start + k + 1];
    if (a[c.cyclic + k] === 0) {
      const id = a[from];
      const q = base + id * BS;
      unionSuccs(blk, q, inn, words, live);
      sweepBlock(fm, q, live);
      copyWords(inn, id * words, live, 0, words);
      continue;
    }
    for (;;) {
      solveScc(fm, f, c, k, inn, out, words, live);
      let deleted = false;
      for (let j = from; j < to; j++) {
        const id = a[j];
        copyWords(live, 0, out, id * words, words);
        if (sweepBlock(fm, base + id * BS, live)) deleted = true;
      }
      if (!deleted) break;
    }
  }
}

export function dceFlat(fm: FlatModule): void {
  for (let k = 0; k < fm.fns.length; k++) dceFunction(fm, k);
}
