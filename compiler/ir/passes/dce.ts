// Dead code elimination: deletes pure definitions whose destination is never read (liveness over
// register halves, repeated until nothing changes), 64-bit self-moves, and blocks unreachable from
// the function's entry (the rest are renumbered in order, so block ids stay dense).
// Never deleted: loads, stores and atomics (they can fault), calls (effects; they read r1-r5),
// budget charges. Pure (returns a new module); keeps hiDead marks (deleting code only makes more
// upper halves dead, so a correct mark stays correct).
import type { Block, IrFunction, IrModule, Terminator } from '../ir.js';
import { both, liveOut, mapFunctions, PURE_OPS, rpo, termReads, addReads, transferInst } from './util.js';

function removeUnreachable(f: IrFunction): void {
  const order = rpo(f);
  const keep = [...order].sort((a, b) => a - b);
  if (keep.length === f.blocks.length) return;
  const renumber = new Map(keep.map((old, i) => [old, i]));
  const map = (id: number): number => renumber.get(id) as number;
  const retarget = (t: Terminator): Terminator => {
    switch (t.op) {
      case 'jump': return { ...t, target: map(t.target) };
      case 'br': return { ...t, then: map(t.then), else: map(t.else) };
      default: return t;
    }
  };
  f.blocks = keep.map((old, i): Block => ({ id: i, insts: f.blocks[old].insts, term: retarget(f.blocks[old].term) }));
}

/** One sweep; true when something was deleted. */
function sweep(f: IrFunction): boolean {
  const out = liveOut(f);
  let changed = false;
  for (const b of f.blocks) {
    let live = addReads(out[b.id], termReads(b.term));
    const kept = [];
    for (let k = b.insts.length - 1; k >= 0; k--) {
      const i = b.insts[k];
      const dead = PURE_OPS.has(i.op) && 'dst' in i && ((live & both(i.dst)) === 0n || (i.op === 'mov' && i.w === 64 && i.src === i.dst));
      if (dead) {
        changed = true;
        continue;
      }
      live = transferInst(i, live);
      kept.push(i);
    }
    b.insts = kept.reverse();
  }
  return changed;
}

function dceFunction(f: IrFunction): void {
  removeUnreachable(f);
  while (sweep(f));
}

export function dce(m: IrModule): IrModule {
  return mapFunctions(m, dceFunction);
}
