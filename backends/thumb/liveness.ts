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
import type { Inst, IrFunction, IrModule, Operand, Terminator } from '../../compiler/ir/ir.js';
import { FRAME_REG as R10 } from '../../compiler/ir/ir.js';
import type { MemInst } from './checks.js';
import { knownHalf, KnownHalves, readsOf, transfer, type KnownState } from './known.js';
import { halfKey, LOW_ONLY, naturalLoops, successors } from './regalloc.js';

/** Decides whether a memory access's code reads its base's upper half, given what is known there. */
export type BaseHiReader = (inst: MemInst, known: KnownState, guess: number) => boolean;

/** The region guesses of checks.ts, threaded like the known halves. */
export interface GuessFlow {
  at(b: number): Int16Array;
  transfer(s: Int16Array, inst: Inst): void;
}


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

/**
 * Per block, the halves (by `halfKey`, once per mention) the lowered code reads or writes where
 * they live: the reads of the liveness above, the writes of every definition that is lowered
 * (`skipped` ones are not; an address addition an access absorbs, one of `folds`, writes nothing).
 * regalloc.ts weighs homes by these, so a half the IR names but the code never touches (the upper
 * half of a proven access's base) takes no register.
 */
export function loweredMentions(
  fn: IrFunction, known: KnownHalves, guesses: GuessFlow, nregs: number, baseHi: BaseHiReader,
  skipped: ReadonlySet<Inst>, folds: ReadonlySet<Inst>,
): number[][] {
  const { readSets, termSets } = flow(fn, known, guesses, nregs, baseHi);
  return fn.blocks.map((b, bi) => {
    const out: number[] = [];
    b.insts.forEach((inst, ii) => {
      if (skipped.has(inst)) return;
      out.push(...readSets[bi][ii]);
      if (!folds.has(inst)) for (const k of writes(inst)) if (k >> 1 !== R10) out.push(k);
    });
    out.push(...termSets[bi]);
    return out;
  });
}

// ---- copies sunk out of loops ----

type DefInst = Extract<Inst, { dst: number }>;

/** Registers (whole) an instruction reads as the IR defines it; calls read the argument registers. */
function regReads(inst: Inst): number[] {
  if (inst.op === 'call' || inst.op === 'calllocal') return [1, 2, 3, 4, 5];
  if (inst.op === 'callx') return [1, 2, 3, 4, 5, inst.reg];
  return [...new Set(readsOf(inst).map(([r]) => r))];
}

function regTermReads(t: Terminator): number[] {
  if (t.op === 'ret') return [0];
  if (t.op !== 'br') return [];
  return [t.a, ...('reg' in t.b ? [t.b.reg] : [])].filter((r) => r !== R10);
}

/** Whole registers live on entry to each block (a read of either half counts). */
function liveRegs(fn: IrFunction, isEntry: boolean): Array<Set<number>> {
  const n = fn.blocks.length;
  const liveIn: Array<Set<number>> = fn.blocks.map(() => new Set());
  for (let changed = true; changed;) {
    changed = false;
    for (let bi = n - 1; bi >= 0; bi--) {
      const b = fn.blocks[bi];
      const live = new Set<number>();
      for (const s of successors(b.term)) if (s >= 0 && s < n) for (const r of liveIn[s]) live.add(r);
      for (const r of regTermReads(b.term)) live.add(r);
      for (let i = b.insts.length - 1; i >= 0; i--) {
        const inst = b.insts[i];
        const d = defined(inst);
        if (d !== undefined) live.delete(d);
        for (const r of regReads(inst)) live.add(r);
      }
      if (live.size !== liveIn[bi].size || [...live].some((r) => !liveIn[bi].has(r))) {
        liveIn[bi] = live;
        changed = true;
      }
    }
  }
  // The entry function's caller provides r1 and r2 (nothing to sink into block 0 anyway).
  if (isEntry && n > 0) liveIn[0].add(1), liveIn[0].add(2);
  return liveIn;
}

/** `inst` with its reads of register `from` reading `to` instead (its destination unchanged). */
function renameReads<T extends Inst | Terminator>(inst: T, from: number, to: number): T {
  const r = (x: number): number => (x === from ? to : x);
  const op = (b: Operand): Operand => ('reg' in b && b.reg === from ? { reg: to } : b);
  const i = inst as Inst | Terminator;
  switch (i.op) {
    case 'mov':
    case 'neg':
    case 'ext':
    case 'bswap':
      return { ...i, src: r(i.src) } as T;
    case 'bin':
      return { ...i, a: r(i.a), b: op(i.b) } as T;
    case 'load':
      return { ...i, base: r(i.base) } as T;
    case 'store':
      return { ...i, base: r(i.base), value: op(i.value) } as T;
    case 'br':
      return { ...i, a: r(i.a), b: op(i.b) } as T;
    default:
      return inst;
  }
}

/** True when `inst`'s upper half is 0 whatever its operands (a 32-bit result, zero-extended). */
function zeroExtends(inst: DefInst): boolean {
  switch (inst.op) {
    case 'const':
      return inst.hi === 0;
    case 'mov':
    case 'neg':
    case 'bin':
      return inst.w === 32;
    case 'ext':
      return inst.w === 32 || !inst.signed;
    case 'bswap':
      return inst.bits !== 64;
    case 'load':
      return !inst.signed && inst.size !== 8;
    default:
      return false;
  }
}

const SINKABLE_DEF: ReadonlySet<Inst['op']> = new Set(['const', 'mov', 'bin', 'neg', 'ext', 'bswap', 'load']);
const OPAQUE: ReadonlySet<Inst['op']> = new Set(['call', 'callx', 'calllocal', 'atomic']);

/**
 * One copy `d = mov s` of block `bi` (at `j`) turned around: the last definition of `s` before it
 * computes `d` instead, the reads of `s` after that read `d`, and `s = mov d` moves to the start of
 * the successors where `s` is live (each of which has this block as its only predecessor) or
 * disappears. A loop whose body ends with `w6 = w5` (the value computed this iteration becomes next
 * iteration's operand) so pays for the copy once, on the way out. Undefined when it does not apply.
 */
function sinkOne(
  fn: IrFunction, bi: number, j: number, preds: number[][], liveIn: Array<Set<number>>, carry: (from: Inst, to: Inst) => Inst,
): IrFunction | undefined {
  const b = fn.blocks[bi];
  const c = b.insts[j];
  if (c.op !== 'mov') return undefined;
  const d = c.dst;
  const s = c.src;
  if (d === s || s === R10 || d === R10) return undefined;
  let i = j - 1;
  while (i >= 0 && defined(b.insts[i]) !== s) {
    const x = b.insts[i];
    if (OPAQUE.has(x.op) || defined(x) === d || regReads(x).includes(d)) return undefined;
    i--;
  }
  if (i < 0) return undefined;
  const def = b.insts[i] as DefInst;
  if (!SINKABLE_DEF.has(def.op)) return undefined;
  if (c.w === 32 && !c.hiDead && !zeroExtends(def)) return undefined;
  if (def.hiDead && c.w === 64 && !c.hiDead) return undefined;
  const insts = b.insts.slice();
  const hiDead = c.hiDead === true && def.hiDead === true;
  const { hiDead: _drop, ...rest } = def;
  void _drop;
  insts[i] = carry(def, { ...rest, dst: d, ...(hiDead ? { hiDead: true } : {}) } as Inst);
  for (let k = i + 1; k < j; k++) insts[k] = carry(insts[k], renameReads(insts[k], s, d));
  // After the copy: reads of s read d until s is overwritten (the copy is then dead) or d is
  // (the copy cannot move past that).
  let term = b.term;
  let dead = false;
  for (let k = j + 1; k < insts.length && !dead; k++) {
    const x = insts[k];
    if (OPAQUE.has(x.op)) return undefined;
    insts[k] = carry(x, renameReads(x, s, d));
    const w = defined(x);
    if (w === d) return undefined;
    if (w === s) dead = true;
  }
  if (!dead) {
    if (b.term.op === 'ret' && s === 0) return undefined;
    term = renameReads(b.term, s, d);
  }
  insts.splice(j, 1);
  const blocks = fn.blocks.slice();
  blocks[bi] = { ...b, insts, term };
  if (!dead) {
    const copy = carry(c, { op: 'mov', pc: c.pc, dst: s, w: 64, src: d, ...(def.hiDead ? { hiDead: true } : {}) });
    for (const t of new Set(successors(b.term))) {
      if (t < 0 || t >= fn.blocks.length || !liveIn[t].has(s)) continue;
      if (t === 0 || preds[t].length !== 1 || preds[t][0] !== bi) return undefined;
      const tb = blocks[t];
      const at = tb.insts.length > 0 && tb.insts[0].op === 'budget' ? 1 : 0;
      blocks[t] = { ...tb, insts: [...tb.insts.slice(0, at), copy, ...tb.insts.slice(at)] };
    }
  }
  return { ...fn, blocks };
}

/**
 * Copies turned around and moved out of their blocks (`sinkOne`), where that takes them off a
 * loop's path: only copies in loops, and only into successors outside the copy's innermost loop. `origin`
 * maps each instruction of the result to where it came from in `m` (`f0.b2.5`, for listings): an
 * instruction changed or moved keeps its source's place.
 */
export function sinkCopies(m: IrModule): { module: IrModule; origin: Map<Inst, string> } {
  const origin = new Map<Inst, string>();
  m.functions.forEach((f, fi) => f.blocks.forEach((b, bi) => b.insts.forEach((inst, ii) => origin.set(inst, `f${fi}.b${bi}.${ii}`))));
  const carry = (from: Inst, to: Inst): Inst => {
    const at = origin.get(from);
    if (at !== undefined && from !== to) origin.set(to, at);
    return to;
  };
  const module: IrModule = {
    ...m,
    functions: m.functions.map((f, fi) => {
      let fn = f;
      const loops = naturalLoops(fn);
      const inLoop = (b: number): Array<Set<number>> => loops.filter((l) => l.body.has(b)).map((l) => l.body);
      for (let budget = 64; budget > 0; budget--) {
        const preds: number[][] = fn.blocks.map(() => []);
        fn.blocks.forEach((b) => {
          for (const t of new Set(successors(b.term))) if (t >= 0 && t < fn.blocks.length) preds[t].push(b.id);
        });
        const liveIn = liveRegs(fn, fi === 0);
        let next: IrFunction | undefined;
        search: for (const b of fn.blocks) {
          const around = inLoop(b.id);
          if (around.length === 0) continue;
          for (let j = 0; j < b.insts.length; j++) {
            const cand = sinkOne(fn, b.id, j, preds, liveIn, carry);
            if (cand === undefined) continue;
            // Worth it only when every copy it places leaves the innermost loop around the block.
            const placed = cand.blocks.filter((nb, k) => k !== b.id && nb.insts.length > fn.blocks[k].insts.length).map((nb) => nb.id);
            if (placed.some((t) => around.every((body) => body.has(t)))) continue;
            next = cand;
            break search;
          }
        }
        if (next === undefined) break;
        fn = next;
      }
      return fn;
    }),
  };
  return { module, origin };
}
