// Narrowing: what lets a 32-bit target spend one instruction on an ALU32-shaped operation.
// 1. Forward, "upper half known zero" facts (meet over predecessors): a 64-bit and/or/xor/udiv/
//    urem/lshr/mov or an unsigned compare whose operands have zero upper halves computes exactly
//    what its 32-bit form computes (a result with a zero upper half), so it is rewritten to it.
// 2. Backward, liveness of upper halves: a definition whose upper half is never read before being
//    overwritten is marked hiDead, and a 64-bit add/sub/mul/and/or/xor/neg/mov (or shl by a
//    constant below 32) marked so becomes its 32-bit form: the low halves agree.
// Pure (returns a new module). Recomputes every hiDead mark, so it should run last.
import type { Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';
import { clearHiDead, hi, liveOut, mapFunctions, preds, rpo, termReads, addReads, transferInst, writes } from './util.js';

/** Registers with a zero upper half, as a bit set over register numbers. */
type HiZero = bigint;
const bit = (r: Reg): bigint => 1n << BigInt(r);
const FP = 10;

const EQUALITY_CONDS = new Set(['eq', 'ne', 'ugt', 'uge', 'ult', 'ule', 'set']);
const NARROW_IF_DEAD = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor']);

function isZ(z: HiZero, o: Operand): boolean {
  return 'reg' in o ? (z & bit(o.reg)) !== 0n : o.imm >= 0;
}

/** Whether the result of a definition has a zero upper half, given the facts before it. */
function resultHiZero(z: HiZero, i: Inst, m: IrModule): boolean {
  if ('hiDead' in i && i.hiDead === true) return false;
  switch (i.op) {
    case 'const': return i.hi === 0;
    case 'addr': return i.offset >= 0 && i.offset <= (m.data[i.section]?.bytes.length ?? -1);
    case 'mov': case 'neg': return i.w === 32 || (i.op === 'mov' && isZ(z, { reg: i.src }));
    case 'ext': return i.w === 32 || !i.signed;
    case 'bswap': return i.bits !== 64;
    case 'load': return i.size < 8 && !i.signed;
    case 'bin': {
      if (i.w === 32) return true;
      const a = isZ(z, { reg: i.a });
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

/** The 32-bit form of an instruction that computes the same 64-bit value, if any. */
function narrowByZeros(z: HiZero, i: Inst): Inst {
  if (i.op === 'mov' && i.w === 64 && isZ(z, { reg: i.src })) return { ...i, w: 32 };
  if (i.op !== 'bin' || i.w !== 64) return i;
  const a = isZ(z, { reg: i.a });
  const b = isZ(z, i.b);
  switch (i.bin) {
    case 'and': return a || b ? { ...i, w: 32 } : i;
    case 'or': case 'xor': case 'udiv': case 'urem': return a && b ? { ...i, w: 32 } : i;
    case 'lshr': return a && 'imm' in i.b && (i.b.imm & 63) < 32 ? { ...i, w: 32 } : i;
    default: return i;
  }
}

function narrowTerm(z: HiZero, t: Terminator): Terminator {
  if (t.op === 'br' && t.w === 64 && EQUALITY_CONDS.has(t.cond) && isZ(z, { reg: t.a }) && isZ(z, t.b)) return { ...t, w: 32 };
  return t;
}

function stepZ(z: HiZero, i: Inst, m: IrModule): HiZero {
  let out = z;
  const def = 'dst' in i ? resultHiZero(z, i, m) : false;
  for (const r of writes(i)) out &= ~bit(r);
  if ('dst' in i && def) out |= bit(i.dst);
  // A 32-bit atomic fetch zero-extends the old value; calllocal restores r10 (and r6-r9).
  if (i.op === 'atomic' && i.size === 4 && (i.fetch || i.aop === 'cmpxchg')) out |= bit(i.aop === 'cmpxchg' ? 0 : i.src);
  return out;
}

function forward(f: IrFunction, m: IrModule): void {
  const order = rpo(f);
  const ps = preds(f);
  const reachable = new Set(order);
  const outZ = new Map<number, HiZero>();
  // r10 is a stack address and every region lies below 4 GiB; r1 (mem address) and r2 (its length) too at the entry.
  const entryZ = f === m.functions[0] ? bit(1) | bit(2) | bit(FP) : bit(FP);
  const inZ = (id: number): HiZero => {
    let acc: HiZero | undefined = id === 0 ? entryZ : undefined;
    for (const p of ps[id]) {
      const z = reachable.has(p) ? outZ.get(p) : undefined;
      if (z !== undefined) acc = acc === undefined ? z : acc & z;
    }
    return acc ?? 0n;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const id of order) {
      let z = inZ(id);
      for (const i of f.blocks[id].insts) z = stepZ(z, i, m);
      if (outZ.get(id) !== z) {
        outZ.set(id, z);
        changed = true;
      }
    }
  }
  for (const id of order) {
    const b = f.blocks[id];
    let z = inZ(id);
    b.insts = b.insts.map((i) => {
      const n = narrowByZeros(z, i);
      z = stepZ(z, n, m);
      return n;
    });
    b.term = narrowTerm(z, b.term);
  }
}

function narrowIfDead(i: Inst): Inst {
  if (!('hiDead' in i) || i.hiDead !== true) return i;
  if ((i.op === 'mov' || i.op === 'neg') && i.w === 64) return { ...i, w: 32 };
  if (i.op === 'bin' && i.w === 64) {
    if (NARROW_IF_DEAD.has(i.bin)) return { ...i, w: 32 };
    if (i.bin === 'shl' && 'imm' in i.b && (i.b.imm & 63) < 32) return { ...i, w: 32 };
  }
  return i;
}

function backward(f: IrFunction): void {
  const out = liveOut(f);
  for (const b of f.blocks) {
    let live = addReads(out[b.id], termReads(b.term));
    for (let k = b.insts.length - 1; k >= 0; k--) {
      let i = b.insts[k];
      if ('dst' in i && (live & hi(i.dst)) === 0n) i = narrowIfDead({ ...i, hiDead: true });
      b.insts[k] = i;
      live = transferInst(i, live);
    }
  }
}

function narrowFunction(f: IrFunction, m: IrModule): void {
  for (const b of f.blocks) clearHiDead(b);
  forward(f, m);
  backward(f);
}

export function narrow(m: IrModule): IrModule {
  return mapFunctions(m, narrowFunction);
}
