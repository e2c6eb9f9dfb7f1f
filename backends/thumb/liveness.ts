// Upper halves the Thumb code never reads after a definition, beyond what the IR's `hiDead`
// says. The IR's reads are 64-bit wherever eBPF's are, but the lowering reads less: a half whose
// value known.ts knows at the read is used as a constant (emitter.ts `read`), a proven or frame
// access uses only its base's low half (the verifier placed the pointer inside a region of the
// 32-bit container space), and so does a check whose base's upper half is proven 0. A pointer
// computed for such accesses (`r5 = r1 + r3; load [r5]`, an index shifted into a table offset)
// then needs no upper half at all: its definition is lowered as if marked hiDead.
//
// Backward liveness over register halves per function, with the reads of the lowering (checks.ts
// `readsBaseHi` decides for memory bases). A helper call reads the r1-r5 halves not known there
// (it stores known ones itself), a local call reads r1-r9 (the callee knows nothing), `ret` the r0
// halves not known there (it writes known ones itself).
import type { Inst, IrFunction, Terminator } from '../../compiler/ir/ir.js';
import type { MemInst } from './checks.js';
import { knownHalf, KnownHalves, readsOf, transfer, type KnownState } from './known.js';
import { halfKey, successors } from './regalloc.js';

/** Decides whether a memory access's code reads its base's upper half, given what is known there. */
export type BaseHiReader = (inst: MemInst, known: KnownState, guess: number) => boolean;

/** The region guesses of checks.ts, threaded like the known halves. */
export interface GuessFlow {
  at(b: number): Int16Array;
  transfer(s: Int16Array, inst: Inst): void;
}

const R10 = 10;
const LOW_ONLY: ReadonlySet<string> = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor', 'shl']);

function isMem(inst: Inst): inst is MemInst {
  return inst.op === 'load' || inst.op === 'store' || inst.op === 'atomic';
}

function defined(inst: Inst): number | undefined {
  switch (inst.op) {
    case 'const':
    case 'addr':
    case 'mov':
    case 'bin':
    case 'neg':
    case 'ext':
    case 'bswap':
    case 'load':
      return inst.dst;
    default:
      return undefined;
  }
}

/** Halves `inst` reads as the lowering reads them. */
function reads(inst: Inst, known: KnownState, guess: Int16Array, baseHi: BaseHiReader): number[] {
  const out: number[] = [];
  const add = (r: number, h: 0 | 1): void => {
    if (r !== R10) out.push(halfKey(r, h));
  };
  if (inst.op === 'call' || inst.op === 'callx') {
    // The call sequence writes known argument halves to their slots itself.
    for (let r = 1; r <= 5; r++) for (const h of [0, 1] as const) if (knownHalf(known, r, h) === undefined) add(r, h);
    if (inst.op === 'callx') for (const h of [0, 1] as const) if (knownHalf(known, inst.reg, h) === undefined) add(inst.reg, h);
    return out;
  }
  if (inst.op === 'calllocal') {
    for (let r = 1; r <= 9; r++) add(r, 0), add(r, 1);
    return out;
  }
  // A 64-bit operation whose upper half is dead computes its low half from low halves only
  // (alu64.ts lowerBin, lowerMov, lowerNeg).
  const lowOnly = 'hiDead' in inst && inst.hiDead === true &&
    ((inst.op === 'bin' && LOW_ONLY.has(inst.bin)) || inst.op === 'mov' || inst.op === 'neg');
  for (const [r, h] of readsOf(inst)) {
    // Known halves are read as constants (emitter.ts `read`), never from where they live.
    if (knownHalf(known, r, h) !== undefined) continue;
    if (lowOnly && h === 1) continue;
    if (isMem(inst) && r === inst.base && h === 1 && !baseHi(inst, known, inst.base < guess.length ? guess[inst.base] : -1)) continue;
    add(r, h);
  }
  return out;
}

function termReads(t: Terminator): number[] {
  if (t.op === 'ret') return [halfKey(0, 0), halfKey(0, 1)];
  if (t.op !== 'br') return [];
  const out: number[] = [];
  for (const r of [t.a, ...('reg' in t.b ? [t.b.reg] : [])]) {
    if (r === R10) continue;
    out.push(halfKey(r, 0));
    if (t.w === 64) out.push(halfKey(r, 1));
  }
  return out;
}

/** Halves an instruction writes (all of dst's, as far as liveness is concerned). */
function writes(inst: Inst): number[] {
  const d = defined(inst);
  if (d !== undefined) return 'hiDead' in inst && inst.hiDead ? [halfKey(d, 0)] : [halfKey(d, 0), halfKey(d, 1)];
  if (inst.op === 'atomic') {
    const target = inst.aop === 'cmpxchg' ? 0 : inst.fetch || inst.aop === 'xchg' ? inst.src : undefined;
    return target === undefined ? [] : [halfKey(target, 0), halfKey(target, 1)];
  }
  if (inst.op === 'call' || inst.op === 'callx' || inst.op === 'calllocal') return [halfKey(0, 0), halfKey(0, 1)];
  return [];
}

interface Flow {
  liveIn: Uint8Array[];
  liveOutOf(bi: number): Uint8Array;
  readSets: number[][][];
  termSets: number[][];
  step(live: Uint8Array, inst: Inst, rs: readonly number[]): void;
}

function flow(fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader): Flow {
  const n = fn.blocks.length;
  const size = nregs * 2;
  // Per instruction: the halves it reads (with what is known there), computed once.
  const termSets: number[][] = [];
  // What is known comes from the code known.ts analysed (without the hiDead marks added since,
  // which the lowering's constants do not depend on either).
  const original = known.function;
  const readSets: number[][][] = fn.blocks.map((b, bi) => {
    const s = known.at(bi);
    const g = guesses.at(bi);
    const rs = b.insts.map((inst, ii) => {
      const r = reads(inst, s, g, baseHi);
      transfer(s, original.blocks[bi]?.insts[ii] ?? inst);
      guesses.transfer(g, inst);
      return r;
    });
    // Compares and `ret` use the values of known halves too.
    termSets[bi] = termReads(b.term).filter((k) => knownHalf(s, k >> 1, (k & 1) as 0 | 1) === undefined);
    return rs;
  });
  const liveIn: Uint8Array[] = fn.blocks.map(() => new Uint8Array(size));
  const liveOutOf = (bi: number): Uint8Array => {
    const out: Uint8Array = new Uint8Array(size);
    for (const s of successors(fn.blocks[bi].term)) {
      if (s < 0 || s >= n) continue;
      const li = liveIn[s];
      for (let k = 0; k < size; k++) out[k] |= li[k];
    }
    return out;
  };
  const step = (live: Uint8Array, inst: Inst, rs: readonly number[]): void => {
    for (const k of writes(inst)) if (k < size) live[k] = 0;
    for (const k of rs) if (k < size) live[k] = 1;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let bi = n - 1; bi >= 0; bi--) {
      const b = fn.blocks[bi];
      const live = liveOutOf(bi);
      for (const k of termSets[bi]) if (k < size) live[k] = 1;
      for (let i = b.insts.length - 1; i >= 0; i--) step(live, b.insts[i], readSets[bi][i]);
      const old = liveIn[bi];
      for (let k = 0; k < size; k++) {
        if (old[k] !== live[k]) {
          liveIn[bi] = live;
          changed = true;
          break;
        }
      }
    }
  }
  return { liveIn, liveOutOf, readSets, termSets, step };
}

/**
 * The halves (by `halfKey`) whose values the code reads, from where they live, after the start of
 * each block before writing them: what must be in place on every edge into it.
 */
export function liveInHalves(fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader): Uint8Array[] {
  return flow(fn, known, guesses, nregs, baseHi).liveIn;
}

/**
 * The definitions (by identity) whose upper half no code reads before it is overwritten; each
 * function's analysis is `known[f]`.
 */
export function deadUpperHalves(fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader): Set<Inst> {
  const { liveOutOf, readSets, termSets, step } = flow(fn, known, guesses, nregs, baseHi);
  const size = nregs * 2;
  const dead = new Set<Inst>();
  fn.blocks.forEach((b, bi) => {
    const live = liveOutOf(bi);
    for (const k of termSets[bi]) if (k < size) live[k] = 1;
    for (let i = b.insts.length - 1; i >= 0; i--) {
      const inst = b.insts[i];
      const d = defined(inst);
      if (d !== undefined && d !== R10 && !live[halfKey(d, 1)] && !('hiDead' in inst && inst.hiDead)) dead.add(inst);
      step(live, inst, readSets[bi][i]);
    }
  });
  return dead;
}

const PURE: ReadonlySet<Inst['op']> = new Set(['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap']);

/**
 * Definitions without side effects whose halves no code reads from where they live before they are
 * overwritten: reads of a half whose value is known there use the constant, so `r2 = r10 - 448`
 * feeding `r2 = r2 + r1` is never needed in r2's home. The lowering skips them.
 */
export function deadDefinitions(fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader): Set<Inst> {
  const { liveOutOf, readSets, termSets, step } = flow(fn, known, guesses, nregs, baseHi);
  const size = nregs * 2;
  const dead = new Set<Inst>();
  fn.blocks.forEach((b, bi) => {
    const live = liveOutOf(bi);
    for (const k of termSets[bi]) if (k < size) live[k] = 1;
    for (let i = b.insts.length - 1; i >= 0; i--) {
      const inst = b.insts[i];
      const d = defined(inst);
      if (d !== undefined && d !== R10 && PURE.has(inst.op) && writes(inst).every((k) => k < size && !live[k])) dead.add(inst);
      step(live, inst, readSets[bi][i]);
    }
  });
  return dead;
}

/**
 * `X = add A, B` right before an access through X that reads X only as its base, with X dead after
 * it (or redefined by it): the access may compute the address from A and B itself and the add
 * need not run (checks.ts decides, with what is known there).
 */
export function addressFolds(fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader): Set<Inst> {
  const { liveOutOf, readSets, termSets, step } = flow(fn, known, guesses, nregs, baseHi);
  const size = nregs * 2;
  const out = new Set<Inst>();
  fn.blocks.forEach((b, bi) => {
    const live = liveOutOf(bi);
    for (const k of termSets[bi]) if (k < size) live[k] = 1;
    let afterNext: Uint8Array | undefined;
    for (let i = b.insts.length - 1; i >= 0; i--) {
      const next = b.insts[i + 1];
      const inst = b.insts[i];
      const after = live.slice();
      if (afterNext !== undefined && inst.op === 'bin' && inst.bin === 'add' && inst.dst !== R10 && next !== undefined && isMem(next) && next.base === inst.dst) {
        const x = inst.dst;
        const otherRead = next.op === 'store' ? 'reg' in next.value && next.value.reg === x : next.op === 'atomic';
        const redefined = next.op === 'load' && next.dst === x;
        if (!otherRead && (redefined || (!afterNext[halfKey(x, 0)] && !afterNext[halfKey(x, 1)]))) out.add(inst);
      }
      afterNext = after;
      step(live, inst, readSets[bi][i]);
    }
  });
  return out;
}
