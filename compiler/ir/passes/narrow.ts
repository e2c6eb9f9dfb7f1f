// Narrowing: what lets a 32-bit target spend one instruction on an ALU32-shaped operation.
// 1. Forward, "upper half known zero" facts (meet over predecessors): a 64-bit and/or/xor/udiv/
//    urem/lshr/mov or an unsigned compare whose operands have zero upper halves computes exactly
//    what its 32-bit form computes (a result with a zero upper half), so it is rewritten to it.
// 2. Backward, liveness of upper halves: a definition whose upper half is never read before being
//    overwritten is marked hiDead, and a 64-bit add/sub/mul/and/or/xor/neg/mov (or shl by a
//    constant below 32) marked so becomes its 32-bit form: the low halves agree.
// Recomputes every hiDead mark, so it should run last.
import type { Block, Inst, IrFunction, IrModule, Operand, Terminator } from '../ir.js';
import { resetScratch, scratch } from '../scratch.js';
import { copyWords, flow, halfWords, has, hiLive, isDef, set, solveScc, transferInst, transferTerm, unionSuccs, unset, wordsFor, writeSpan, type Flow, type InPlacePass, type Sccs } from './util.js';

/** Registers with a zero upper half, as a bit set over register numbers (one Int32Array word per 32). */
type HiZero = Int32Array;
const FP = 10;

const EQUALITY_CONDS = new Set(['eq', 'ne', 'ugt', 'uge', 'ult', 'ule', 'set']);
const NARROW_IF_DEAD = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor']);

function isZ(z: HiZero, o: Operand): boolean {
  return 'reg' in o ? has(z, o.reg) : o.imm >= 0;
}

/**
 * Whether the result of a definition has a zero upper half, given the facts before it. hiDead marks
 * are not looked at: this runs before the pass recomputes them, as if none were set.
 */
function resultHiZero(z: HiZero, i: Inst, m: IrModule): boolean {
  switch (i.op) {
    case 'const': return i.hi === 0;
    case 'addr': return i.offset >= 0 && i.offset <= (m.data[i.section]?.bytes.length ?? -1);
    case 'mov': case 'neg': return i.w === 32 || (i.op === 'mov' && has(z, i.src));
    case 'ext': return i.w === 32 || !i.signed;
    case 'bswap': return i.bits !== 64;
    case 'load': return i.size < 8 && !i.signed;
    case 'bin': {
      if (i.w === 32) return true;
      const a = has(z, i.a);
      const b = isZ(z, i.b);
      switch (i.bin) {
        case 'and': return a || b;
        case 'or': case 'xor': return a && b;
        case 'udiv': case 'urem': return a;
        case 'lshr': return a || ('imm' in i.b && (i.b.imm & 63) >= 32);
        default: return false;
      }
    }
    default: return false;
  }
}

/** Narrows an instruction (in place) to the 32-bit form that computes the same 64-bit value, if any. */
function narrowByZeros(z: HiZero, i: Inst): void {
  if (i.op === 'mov') {
    if (i.w === 64 && has(z, i.src)) i.w = 32;
    return;
  }
  if (i.op !== 'bin' || i.w !== 64) return;
  const a = has(z, i.a);
  const b = isZ(z, i.b);
  switch (i.bin) {
    case 'and': if (a || b) i.w = 32; break;
    case 'or': case 'xor': case 'udiv': case 'urem': if (a && b) i.w = 32; break;
    case 'lshr': if (a && 'imm' in i.b && (i.b.imm & 63) < 32) i.w = 32; break;
    default: break;
  }
}

function narrowTerm(z: HiZero, t: Terminator): void {
  if (t.op === 'br' && t.w === 64 && EQUALITY_CONDS.has(t.cond) && has(z, t.a) && isZ(z, t.b)) t.w = 32;
}

function stepZ(z: HiZero, i: Inst, m: IrModule): void {
  const def = isDef(i);
  const zero = def && resultHiZero(z, i, m);
  for (let span = writeSpan(i), r = span >> 3, end = r + (span & 7); r < end; r++) unset(z, r);
  if (def && zero) set(z, i.dst);
  // A 32-bit atomic fetch zero-extends the old value; calllocal restores r10 (and r6-r9).
  if (i.op === 'atomic' && i.size === 4 && (i.fetch || i.aop === 'cmpxchg')) set(z, i.aop === 'cmpxchg' ? 0 : i.src);
}

/**
 * The zero-upper-half facts (a greatest fixpoint, as in constant folding: components in
 * topological order, loops iterated first), narrowing each reachable block once its facts on
 * entry are final.
 */
function forward(f: IrFunction, m: IrModule, fl: Flow): void {
  const { sc, reachable, preds: ps } = fl;
  const words = wordsFor(Math.max(10, f.maxReg) + 1);
  const n = f.blocks.length;
  const outZ = scratch(n * words);
  const evaluated = scratch(n);
  // r10 is a stack address and every region lies below 4 GiB; r1 (mem address) and r2 (its length) too at the entry.
  const entryZ = scratch(words);
  set(entryZ, FP);
  if (f === m.functions[0]) {
    set(entryZ, 1);
    set(entryZ, 2);
  }
  const z = scratch(words);
  const inZ = (id: number): void => {
    let first = true;
    if (id === 0) {
      z.set(entryZ);
      first = false;
    }
    for (let j = ps.start[id]; j < ps.start[id + 1]; j++) {
      const p = ps.list[j];
      if (reachable[p] === 0 || evaluated[p] === 0) continue;
      const o = p * words;
      if (first) {
        for (let w = 0; w < words; w++) z[w] = outZ[o + w];
        first = false;
      } else for (let w = 0; w < words; w++) z[w] &= outZ[o + w];
    }
    if (first) z.fill(0);
  };
  /** Records z as the block's exit facts; true when they changed. */
  const record = (id: number): boolean => {
    let changed = evaluated[id] === 0;
    evaluated[id] = 1;
    for (let w = 0, o = id * words; w < words; w++) {
      if (outZ[o + w] !== z[w]) {
        outZ[o + w] = z[w];
        changed = true;
      }
    }
    return changed;
  };
  for (let k = sc.reach - 1; k >= 0; k--) {
    const from = sc.start[k], to = sc.start[k + 1];
    if (sc.cyclic[k] === 1) {
      for (let changed = true; changed;) {
        changed = false;
        for (let j = to - 1; j >= from; j--) {
          const id = sc.blocks[j];
          inZ(id);
          for (const i of f.blocks[id].insts) stepZ(z, i, m);
          if (record(id)) changed = true;
        }
      }
    }
    for (let j = to - 1; j >= from; j--) {
      const id = sc.blocks[j];
      const b = f.blocks[id];
      inZ(id);
      for (const i of b.insts) {
        narrowByZeros(z, i);
        stepZ(z, i, m);
      }
      narrowTerm(z, b.term);
      record(id);
    }
  }
}

/** Marks a definition whose upper half is dead, and narrows it (in place) when that allows. */
function markHiDead(i: Inst & { hiDead?: boolean }): void {
  i.hiDead = true;
  if ((i.op === 'mov' || i.op === 'neg') && i.w === 64) i.w = 32;
  else if (i.op === 'bin' && i.w === 64) {
    if (NARROW_IF_DEAD.has(i.bin)) i.w = 32;
    else if (i.bin === 'shl' && 'imm' in i.b && (i.b.imm & 63) < 32) i.w = 32;
  }
}

/**
 * Sets every hiDead mark of a block (marking dead upper halves, clearing the others), walking back
 * from the live-out set in `live` (left as the live-in).
 */
function markBlock(b: Block, live: Int32Array): void {
  transferTerm(b.term, live);
  for (let k = b.insts.length - 1; k >= 0; k--) {
    const i = b.insts[k];
    if (isDef(i)) {
      if (!hiLive(live, i.dst)) markHiDead(i);
      else if (i.hiDead !== undefined) i.hiDead = undefined;
    }
    // Marking does not change what the instruction reads (a narrowed form reads the same halves).
    transferInst(i, live);
  }
}

/**
 * Liveness of upper halves, every block (reachable or not), components sinks first: a block
 * outside any loop is marked as its liveness is computed; a loop is solved first.
 */
function backward(f: IrFunction, sc: Sccs): void {
  const words = halfWords(f);
  const inn = scratch(f.blocks.length * words);
  const out = scratch(f.blocks.length * words);
  const live = scratch(words);
  for (let k = 0; k < sc.count; k++) {
    if (sc.cyclic[k] === 0) {
      const id = sc.blocks[sc.start[k]];
      unionSuccs(f.blocks[id].term, inn, words, live);
      markBlock(f.blocks[id], live);
      copyWords(inn, id * words, live, 0, words);
      continue;
    }
    solveScc(f, sc, k, inn, out, words, live);
    for (let j = sc.start[k]; j < sc.start[k + 1]; j++) {
      const id = sc.blocks[j];
      copyWords(live, 0, out, id * words, words);
      markBlock(f.blocks[id], live);
    }
  }
}

function narrowFunction(f: IrFunction, m: IrModule): void {
  resetScratch();
  const fl = flow(f);
  forward(f, m, fl);
  backward(f, fl.sc);
}

export const narrowInPlace: InPlacePass = (m: IrModule): void => {
  for (const f of m.functions) narrowFunction(f, m);
};
