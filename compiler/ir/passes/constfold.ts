// Constant propagation and folding: a forward dataflow over each function (a register is a known
// constant at a block's start when it is the same constant at the end of every reachable
// predecessor), then a rewrite: operations on known values become `const`, known register operands
// become immediates where the immediate means the same, and branches on known values become jumps.
// Uses the evaluator's own arithmetic, so folding and execution agree by construction.
// Clears hiDead marks (the narrowing pass recomputes them).
import { evalBin, evalCond, evalExt, bswapBits, immValue } from '../eval.js';
import type { BinOp, Block, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';
import { resetScratch } from '../scratch.js';
import { flow, isDef, writeSpan, type InPlacePass } from './util.js';

/** Known register values (u64), indexed by register; undefined: not a known constant. */
type Env = (bigint | undefined)[];

const COMMUTATIVE: ReadonlySet<BinOp> = new Set(['add', 'mul', 'and', 'or', 'xor']);
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

function constInst(pc: number, dst: Reg, v: bigint): Inst {
  return { op: 'const', pc, dst, hiDead: undefined, lo: Number(BigInt.asIntN(32, v)), hi: Number(BigInt.asIntN(32, v >> 32n)) };
}

/** The immediate that means `v` to an operation of width w, if there is one. */
function asImm(v: bigint, w: 32 | 64): number | undefined {
  if (w === 32) return Number(BigInt.asIntN(32, v));
  const s = BigInt.asIntN(64, v);
  return s >= -0x80000000n && s <= 0x7fffffffn ? Number(s) : undefined;
}

function value(env: Env, o: Operand): bigint | undefined {
  return 'reg' in o ? env[o.reg] : immValue(o.imm);
}

/** The value an instruction gives its destination, when its inputs are known. */
function fold(env: Env, i: Inst): bigint | undefined {
  switch (i.op) {
    case 'const': return u64((BigInt(i.hi >>> 0) << 32n) | BigInt(i.lo >>> 0));
    case 'mov': { const v = env[i.src]; return v === undefined ? undefined : i.w === 64 ? v : v & 0xffffffffn; }
    case 'neg': { const v = env[i.src]; return v === undefined ? undefined : i.w === 64 ? u64(-v) : BigInt.asUintN(32, -v); }
    case 'ext': { const v = env[i.src]; return v === undefined ? undefined : evalExt(i.signed, i.bits, i.w, v); }
    case 'bswap': { const v = env[i.src]; return v === undefined ? undefined : bswapBits(v, i.bits); }
    case 'bin': {
      const a = env[i.a];
      if (a === undefined) return undefined;
      const b = value(env, i.b);
      return b === undefined ? undefined : evalBin(i.bin, i.w, a, b);
    }
    default: return undefined;
  }
}

/** Forward transfer of one instruction over the environment (in place), given its folded value. */
function stepWith(env: Env, i: Inst, v: bigint | undefined): void {
  for (let span = writeSpan(i), r = span >> 3, end = r + (span & 7); r < end; r++) env[r] = undefined;
  if (v !== undefined && isDef(i)) env[i.dst] = v;
}

/** Meets `b` into `acc` (in place): what is not the same constant in both becomes unknown. */
function meetInto(acc: Env, b: Env): void {
  for (let r = 0; r < acc.length; r++) if (acc[r] !== undefined && acc[r] !== b[r]) acc[r] = undefined;
}

function sameEnv(a: Env, b: Env): boolean {
  for (let r = 0; r < a.length; r++) if (a[r] !== b[r]) return false;
  return true;
}

/** Rewrites instruction k of `insts` given the environment before it (v: its folded value). */
function rewrite(env: Env, insts: Inst[], k: number, v: bigint | undefined): void {
  const i = insts[k];
  if (v !== undefined && isDef(i) && i.op !== 'const') {
    insts[k] = constInst(i.pc, i.dst, v);
    return;
  }
  if (i.op === 'bin') {
    if ('reg' in i.b) {
      const b = env[i.b.reg];
      const imm = b === undefined ? undefined : asImm(b, i.w);
      if (imm !== undefined) {
        i.b = { imm };
        return;
      }
      const a = env[i.a];
      const aImm = a === undefined ? undefined : asImm(a, i.w);
      if (aImm !== undefined && COMMUTATIVE.has(i.bin)) {
        i.a = i.b.reg;
        i.b = { imm: aImm };
      }
    }
    return;
  }
  if (i.op === 'store' && 'reg' in i.value) {
    const s = env[i.value.reg];
    // A stored immediate is sign-extended to 64 bits, then cut to `size` bytes.
    const imm = s === undefined ? undefined : i.size === 8 ? asImm(s, 64) : Number(BigInt.asIntN(32, s));
    if (imm !== undefined) i.value = { imm };
  }
}

function rewriteTerm(env: Env, t: Terminator): Terminator {
  if (t.op !== 'br') return t;
  const a = env[t.a];
  const b = value(env, t.b);
  if (a !== undefined && b !== undefined) return { op: 'jump', pc: t.pc, target: evalCond(t.cond, t.w, a, b) ? t.then : t.else };
  if ('reg' in t.b && b !== undefined) {
    const imm = asImm(b, t.w);
    if (imm !== undefined) t.b = { imm };
  }
  return t;
}

function clearMarks(insts: readonly Inst[]): void {
  for (const i of insts) if (isDef(i) && i.hiDead !== undefined) i.hiDead = undefined;
}

/** Rewrites a block given its environment on entry, which it leaves as the block's exit environment. */
function rewriteBlock(env: Env, b: Block): void {
  const insts = b.insts;
  for (let k = 0; k < insts.length; k++) {
    const i = insts[k];
    if (isDef(i) && i.hiDead !== undefined) i.hiDead = undefined;
    const v = fold(env, i);
    rewrite(env, insts, k, v);
    stepWith(env, i, v);
  }
  b.term = rewriteTerm(env, b.term);
}

/**
 * Optimistic iteration: environments only shrink, so this terminates, and it ends at the greatest
 * fixpoint whatever the order. Components are solved in topological order, so the environment on
 * entry to a block outside any loop is final the first time it is computed: such a block is
 * rewritten at once; a loop is iterated to its fixpoint first. Blocks are visited after one of
 * their predecessors (the other not evaluated yet constrain nothing yet).
 */
function constFoldFunction(f: IrFunction): void {
  resetScratch();
  const { sc, reachable, preds: ps } = flow(f);
  const nregs = Math.max(10, f.maxReg) + 1;
  const outEnv: (Env | undefined)[] = new Array<Env | undefined>(f.blocks.length).fill(undefined);
  const inEnv = (id: number): Env => {
    let acc: Env | undefined;
    if (id !== 0) {
      for (let j = ps.start[id]; j < ps.start[id + 1]; j++) {
        const p = ps.list[j];
        if (reachable[p] === 0) continue;
        const e = outEnv[p];
        if (e === undefined) continue;
        if (acc === undefined) acc = e.slice();
        else meetInto(acc, e);
      }
    }
    return acc ?? new Array<bigint | undefined>(nregs).fill(undefined);
  };
  // hiDead marks are cleared as blocks are rewritten (below), and here for unreachable blocks.
  for (let j = sc.start[sc.reach]; j < sc.start[sc.count]; j++) clearMarks(f.blocks[sc.blocks[j]].insts);
  for (let k = sc.reach - 1; k >= 0; k--) {
    const from = sc.start[k], to = sc.start[k + 1];
    if (sc.cyclic[k] === 1) {
      for (let changed = true; changed;) {
        changed = false;
        for (let j = to - 1; j >= from; j--) {
          const id = sc.blocks[j];
          const env = inEnv(id);
          for (const i of f.blocks[id].insts) stepWith(env, i, fold(env, i));
          const old = outEnv[id];
          if (old === undefined || !sameEnv(old, env)) {
            outEnv[id] = env;
            changed = true;
          }
        }
      }
    }
    for (let j = to - 1; j >= from; j--) {
      const id = sc.blocks[j];
      const env = inEnv(id);
      rewriteBlock(env, f.blocks[id]);
      outEnv[id] = env;
    }
  }
}

export const constFoldInPlace: InPlacePass = (m: IrModule): void => {
  for (const f of m.functions) constFoldFunction(f);
};
