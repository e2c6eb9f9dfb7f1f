// What the passes share: register reads and writes of each instruction (at half-register
// granularity where it matters), CFG walks, and cloning. One table of facts per operation, so the
// passes cannot disagree about what an instruction touches.
import type { Block, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';

export type Pass = (m: IrModule) => IrModule;

/** A register read: `hi` says whether its upper half matters. */
export interface Read {
  reg: Reg;
  hi: boolean;
}

export const ARG_REGS: readonly Reg[] = [1, 2, 3, 4, 5];
/** Pure definitions: no effect but their destination; deleting an unread one is safe. */
export const PURE_OPS: ReadonlySet<Inst['op']> = new Set(['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap']);
/** 64-bit operations whose low result half depends only on the operands' low halves. */
export const LOW_ONLY_BIN: ReadonlySet<string> = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor', 'shl']);
const SHIFTS: ReadonlySet<string> = new Set(['shl', 'lshr', 'ashr']);

const opRead = (o: Operand, hi: boolean): Read[] => ('reg' in o ? [{ reg: o.reg, hi }] : []);

/**
 * Registers an instruction reads. `dstHi` says whether the upper half of its result is used
 * afterwards: when it is not, operations whose low half needs only low halves read only those.
 */
export function reads(i: Inst, dstHi = true): Read[] {
  switch (i.op) {
    case 'const': case 'addr': case 'budget': return [];
    case 'mov': case 'neg': return [{ reg: i.src, hi: i.w === 64 && dstHi }];
    case 'ext': return [{ reg: i.src, hi: false }];
    case 'bswap': return [{ reg: i.src, hi: i.bits === 64 }];
    case 'bin': {
      if (i.w === 32) return [{ reg: i.a, hi: false }, ...opRead(i.b, false)];
      const aHi = LOW_ONLY_BIN.has(i.bin) ? dstHi : true;
      return [{ reg: i.a, hi: aHi }, ...opRead(i.b, SHIFTS.has(i.bin) ? false : aHi)];
    }
    case 'load': return [{ reg: i.base, hi: true }];
    case 'store': return [{ reg: i.base, hi: true }, ...opRead(i.value, i.size === 8)];
    case 'atomic': {
      const out: Read[] = [{ reg: i.base, hi: true }, { reg: i.src, hi: i.size === 8 }];
      if (i.aop === 'cmpxchg') out.push({ reg: 0, hi: i.size === 8 });
      return out;
    }
    case 'call': case 'calllocal': return ARG_REGS.map((reg) => ({ reg, hi: true }));
    case 'callx': return [{ reg: i.reg, hi: true }, ...ARG_REGS.map((reg) => ({ reg, hi: true }))];
  }
}

export function termReads(t: Terminator): Read[] {
  switch (t.op) {
    case 'br': return [{ reg: t.a, hi: t.w === 64 }, ...opRead(t.b, t.w === 64)];
    case 'ret': return [{ reg: 0, hi: true }];
    default: return [];
  }
}

/** Registers an instruction writes in full. A call is taken to clobber r0-r5 (r1-r5 are dead after it). */
export function writes(i: Inst): Reg[] {
  if ('dst' in i) return [i.dst];
  switch (i.op) {
    case 'atomic': return i.aop === 'cmpxchg' ? [0] : i.fetch ? [i.src] : [];
    case 'call': case 'callx': case 'calllocal': return [0, 1, 2, 3, 4, 5];
    default: return [];
  }
}

/**
 * Registers whose value after the instruction is certainly written by it (for liveness kills):
 * r1-r5 survive a helper call unchanged in every engine, so only r0 is killed there.
 */
export function kills(i: Inst): Reg[] {
  if (i.op === 'call' || i.op === 'callx' || i.op === 'calllocal') return [0];
  return writes(i);
}

export function succs(t: Terminator): number[] {
  switch (t.op) {
    case 'jump': return [t.target];
    case 'br': return t.then === t.else ? [t.then] : [t.then, t.else];
    default: return [];
  }
}

export function preds(f: IrFunction): number[][] {
  const out: number[][] = f.blocks.map(() => []);
  for (const b of f.blocks) for (const s of succs(b.term)) if (!out[s].includes(b.id)) out[s].push(b.id);
  return out;
}

/** Reachable blocks in reverse post-order from blocks[0]. */
export function rpo(f: IrFunction): number[] {
  const seen = new Uint8Array(f.blocks.length);
  const post: number[] = [];
  const stack: { id: number; next: number }[] = [{ id: 0, next: 0 }];
  seen[0] = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const ss = succs(f.blocks[top.id].term);
    if (top.next < ss.length) {
      const s = ss[top.next++];
      if (!seen[s]) {
        seen[s] = 1;
        stack.push({ id: s, next: 0 });
      }
    } else {
      post.push(top.id);
      stack.pop();
    }
  }
  return post.reverse();
}

/** A deep copy of the functions (data sections are shared: passes never change them). */
export function cloneModule(m: IrModule): IrModule {
  return { ...m, helpers: [...m.helpers], functions: structuredClone(m.functions) };
}

/** Applies `fn` to a fresh copy of every function. */
export function mapFunctions(m: IrModule, fn: (f: IrFunction, m: IrModule) => void): IrModule {
  const out = cloneModule(m);
  for (const f of out.functions) fn(f, out);
  return out;
}

export function clearHiDead(b: Block): void {
  for (const i of b.insts) if ('hiDead' in i) delete i.hiDead;
}

// Register sets over halves: bit 2r = low half of r, bit 2r+1 = upper half.
export type HalfSet = bigint;
export const lo = (r: Reg): bigint => 1n << BigInt(2 * r);
export const hi = (r: Reg): bigint => 1n << BigInt(2 * r + 1);
export const both = (r: Reg): bigint => lo(r) | hi(r);

/**
 * Backward liveness over register halves. Returns the live-out set of every block (unreachable
 * blocks included, as their own code may still be lowered).
 */
export function liveOut(f: IrFunction): HalfSet[] {
  const n = f.blocks.length;
  const out: HalfSet[] = new Array<HalfSet>(n).fill(0n);
  const inn: HalfSet[] = new Array<HalfSet>(n).fill(0n);
  const order = [...f.blocks.keys()].reverse();
  for (let changed = true; changed;) {
    changed = false;
    for (const id of order) {
      const b = f.blocks[id];
      let live = 0n;
      for (const s of succs(b.term)) live |= inn[s];
      out[id] = live;
      live = transferBlock(b, live);
      if (live !== inn[id]) {
        inn[id] = live;
        changed = true;
      }
    }
  }
  return out;
}

export function addReads(live: HalfSet, rs: readonly Read[]): HalfSet {
  let l = live;
  for (const r of rs) l |= r.hi ? both(r.reg) : lo(r.reg);
  return l;
}

/** One instruction, backwards: kill what it writes, add what it reads. */
export function transferInst(i: Inst, live: HalfSet): HalfSet {
  let l = live;
  const dstHi = 'dst' in i ? (l & hi(i.dst)) !== 0n : true;
  for (const r of kills(i)) l &= ~both(r);
  return addReads(l, reads(i, dstHi));
}

export function transferBlock(b: Block, liveOutSet: HalfSet): HalfSet {
  let l = addReads(liveOutSet, termReads(b.term));
  for (let k = b.insts.length - 1; k >= 0; k--) l = transferInst(b.insts[k], l);
  return l;
}
