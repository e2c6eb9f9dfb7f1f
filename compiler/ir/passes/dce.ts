// Dead code elimination: deletes pure definitions whose destination is never read (liveness over
// register halves, repeated until nothing changes), 64-bit self-moves, and blocks unreachable from
// the function's entry (the rest are renumbered in order, so block ids stay dense).
// Never deleted: loads, stores and atomics (they can fault), calls (effects; they read r1-r5),
// budget charges. Keeps hiDead marks (deleting code only makes more upper halves dead, so a correct
// mark stays correct).
import type { Block, IrFunction, IrModule } from '../ir.js';
import { resetScratch, scratch } from '../scratch.js';
import { copyWords, anyLive, halfWords, isDef, PURE_OPS, rpo, sccs, solveScc, transferInst, transferTerm, unionSuccs, type InPlacePass } from './util.js';

function removeUnreachable(f: IrFunction): void {
  const order = rpo(f);
  if (order.length === f.blocks.length) return;
  const keep = order.sort((a, b) => a - b);
  const renumber = scratch(f.blocks.length);
  keep.forEach((old, i) => { renumber[old] = i; });
  f.blocks = keep.map((old, i) => {
    const b = f.blocks[old];
    const t = b.term;
    if (t.op === 'jump') t.target = renumber[t.target];
    else if (t.op === 'br') {
      t.then = renumber[t.then];
      t.else = renumber[t.else];
    }
    b.id = i;
    return b;
  });
}

/**
 * Deletes the dead definitions of one block, walking back from the live-out set in `live` (which
 * ends up as the block's live-in over the kept code); true when something was deleted.
 */
function sweepBlock(b: Block, live: Int32Array): boolean {
  transferTerm(b.term, live);
  const insts = b.insts;
  // Kept instructions are compacted towards the end, in place.
  let w = insts.length;
  for (let k = insts.length - 1; k >= 0; k--) {
    const i = insts[k];
    if (PURE_OPS.has(i.op) && isDef(i) && (!anyLive(live, i.dst) || (i.op === 'mov' && i.w === 64 && i.src === i.dst))) continue;
    transferInst(i, live);
    insts[--w] = i;
  }
  if (w === 0) return false;
  insts.splice(0, w);
  return true;
}

/**
 * Deleting a dead definition never makes anything else live, and keeps every other dead
 * definition dead, so the code left once nothing is dead is the same whatever the order of
 * deletion: this one solves the CFG's strongly connected components sinks first, deleting what is
 * dead in each until nothing is, so that a component's live-in is final before its predecessors
 * use it. An acyclic block needs a single backward walk; a loop is re-solved after each deletion.
 */
function dceFunction(f: IrFunction): void {
  resetScratch();
  removeUnreachable(f);
  const words = halfWords(f);
  const sc = sccs(f);
  const inn = scratch(f.blocks.length * words);
  const out = scratch(f.blocks.length * words);
  const live = scratch(words);
  for (let k = 0; k < sc.count; k++) {
    if (sc.cyclic[k] === 0) {
      const id = sc.blocks[sc.start[k]];
      const b = f.blocks[id];
      unionSuccs(b.term, inn, words, live);
      sweepBlock(b, live);
      copyWords(inn, id * words, live, 0, words);
      continue;
    }
    for (;;) {
      solveScc(f, sc, k, inn, out, words, live);
      let deleted = false;
      for (let j = sc.start[k]; j < sc.start[k + 1]; j++) {
        const id = sc.blocks[j];
        copyWords(live, 0, out, id * words, words);
        if (sweepBlock(f.blocks[id], live)) deleted = true;
      }
      if (!deleted) break;
    }
  }
}

export const dceInPlace: InPlacePass = (m: IrModule): void => {
  for (const f of m.functions) dceFunction(f);
};
