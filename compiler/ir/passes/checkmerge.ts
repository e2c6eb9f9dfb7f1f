// Check merging: an access whose bytes lie inside the bytes of an earlier access through the same,
// unmodified base register needs no check of its own. If the earlier access went through (checked
// or proven), its bytes are in one region — writable, if it wrote — so this one's are too; if it
// faulted, this one never runs. Reads are covered by any earlier access, writes only by earlier
// writes (a passing read says nothing about write permission). The covered access becomes
// 'proven' with `coveredBy` naming the covering access's pc. Exact: no fault moves or disappears.
// Facts flow through a block and on into a successor whose only predecessor it is.
// Keeps hiDead marks.
import {
  B_FIRST, B_LEN, BS, I_A, I_COV, I_K1, I_OP, I_PC, I_REG, I_VERD, I_W, IS, OP_ATOMIC, OP_LOAD, OP_STORE, V_CHECK, V_PROVEN,
  type FlatModule,
} from '../flat.js';
import { WorkArrays } from '../scratch.js';
import { cfgOf, rpo, writeSpan } from './flow.js';

// A fact ("passed" access) is FS words: base register, lo, hi (bytes base+lo .. base+hi), wrote, pc, region.
const FS = 6;
const F_BASE = 0, F_LO = 1, F_HI = 2, F_WRITE = 3, F_PC = 4, F_REGION = 5;

/** Fact lists: each block's exit facts are a range of one growing pool; the block being merged works at its end. */
let pool = new Int32Array(FS * 256);

function reserve(words: number): void {
  if (pool.length < words) {
    const grown = new Int32Array(Math.max(2 * pool.length, words));
    grown.set(pool);
    pool = grown;
  }
}

/**
 * Merges the block record at q given its facts on entry at pool[at .. at + count * FS); returns
 * the count of its exit facts (left in place).
 */
function mergeBlock(fm: FlatModule, q: number, at: number, count: number): number {
  const { ins, blk } = fm;
  for (let p = blk[q + B_FIRST] * IS, end = p + blk[q + B_LEN] * IS; p < end; p += IS) {
    const op = ins[p + I_OP];
    if (op === OP_LOAD || op === OP_STORE || op === OP_ATOMIC) {
      const write = op !== OP_LOAD;
      const base = ins[p + I_A], lo = ins[p + I_K1], hi = lo + ins[p + I_W];
      let c = -1;
      if (ins[p + I_VERD] === V_CHECK) {
        for (let k = 0; k < count; k++) {
          const o = at + k * FS;
          if (pool[o + F_BASE] === base && pool[o + F_LO] <= lo && hi <= pool[o + F_HI] && (pool[o + F_WRITE] === 1 || !write)) {
            c = o;
            break;
          }
        }
      }
      if (c >= 0) {
        ins[p + I_VERD] = V_PROVEN;
        ins[p + I_COV] = pool[c + F_PC];
        if (pool[c + F_REGION] >= 0) ins[p + I_REG] = pool[c + F_REGION];
      } else {
        const o = at + count * FS;
        reserve(o + FS);
        pool[o + F_BASE] = base;
        pool[o + F_LO] = lo;
        pool[o + F_HI] = hi;
        pool[o + F_WRITE] = write ? 1 : 0;
        pool[o + F_PC] = ins[p + I_PC];
        pool[o + F_REGION] = ins[p + I_REG];
        count++;
      }
    }
    // After the access: a def of a base register (a load into its own base included) ends its facts.
    if (count === 0) continue;
    for (let span = writeSpan(ins, p), r = span >> 3, e = r + (span & 7); r < e; r++) {
      let kept = 0;
      for (let k = 0; k < count; k++) {
        const o = at + k * FS;
        if (pool[o + F_BASE] === r) continue;
        if (kept !== k) pool.copyWithin(at + kept * FS, o, o + FS);
        kept++;
      }
      count = kept;
    }
  }
  return count;
}

const work = new WorkArrays(2);

function checkMergeFunction(fm: FlatModule, fk: number): void {
  const f = fm.fns[fk];
  const c = cfgOf(fm, fk);
  const a = c.a;
  const { order, count: nr } = rpo(fm, f);
  // Exit facts of each block: pool offset and count (-1: not merged yet).
  const outAt = work.get(0, f.nb), outCount = work.get(1, f.nb, -1);
  let top = 0;
  for (let j = 0; j < nr; j++) {
    const id = order[j];
    const ps = a[c.pstart + id];
    const single = a[c.pstart + id + 1] - ps === 1 && id !== 0 ? a[c.plist + ps] : -1;
    let count = 0;
    if (single >= 0 && outCount[single] > 0) {
      count = outCount[single];
      reserve(top + count * FS);
      pool.copyWithin(top, outAt[single], outAt[single] + count * FS);
    }
    count = mergeBlock(fm, (f.b0 + id) * BS, top, count);
    outAt[id] = top;
    outCount[id] = count;
    top += count * FS;
  }
}

export function checkMergeFlat(fm: FlatModule): void {
  for (let k = 0; k < fm.fns.length; k++) checkMergeFunction(fm, k);
}
