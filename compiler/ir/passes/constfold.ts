// Constant propagation and folding: a forward dataflow over each function (a register is a known
// constant at a block's start when it is the same constant at the end of every reachable
// predecessor), then a rewrite: operations on known values become `const`, known register operands
// become immediates where the immediate means the same, and branches on known values become jumps.
// Uses the evaluator's own arithmetic, so folding and execution agree by construction.
// Pure (returns a new module); clears hiDead marks (the narrowing pass recomputes them).
import { evalBin, evalCond, evalExt, bswapBits, immValue } from '../eval.js';
import type { BinOp, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from '../ir.js';
import { clearHiDead, mapFunctions, preds, rpo, writes } from './util.js';

type Env = Map<Reg, bigint>;

const COMMUTATIVE: ReadonlySet<BinOp> = new Set(['add', 'mul', 'and', 'or', 'xor']);
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

function constInst(pc: number, dst: Reg, v: bigint): Inst {
  return { op: 'const', pc, dst, lo: Number(BigInt.asIntN(32, v)), hi: Number(BigInt.asIntN(32, v >> 32n)) };
}

/** The immediate that means `v` to an operation of width w, if there is one. */
function asImm(v: bigint, w: 32 | 64): number | undefined {
  if (w === 32) return Number(BigInt.asIntN(32, v));
  const s = BigInt.asIntN(64, v);
  return s >= -0x80000000n && s <= 0x7fffffffn ? Number(s) : undefined;
}

function value(env: Env, o: Operand): bigint | undefined {
  return 'reg' in o ? env.get(o.reg) : immValue(o.imm);
}

/** The value an instruction gives its destination, when its inputs are known. */
function fold(env: Env, i: Inst): bigint | undefined {
  const get = (r: Reg): bigint | undefined => env.get(r);
  switch (i.op) {
    case 'const': return u64((BigInt(i.hi >>> 0) << 32n) | BigInt(i.lo >>> 0));
    case 'mov': { const v = get(i.src); return v === undefined ? undefined : i.w === 64 ? v : v & 0xffffffffn; }
    case 'neg': { const v = get(i.src); return v === undefined ? undefined : i.w === 64 ? u64(-v) : BigInt.asUintN(32, -v); }
    case 'ext': { const v = get(i.src); return v === undefined ? undefined : evalExt(i.signed, i.bits, i.w, v); }
    case 'bswap': { const v = get(i.src); return v === undefined ? undefined : bswapBits(v, i.bits); }
    case 'bin': {
      const a = get(i.a);
      const b = value(env, i.b);
      return a === undefined || b === undefined ? undefined : evalBin(i.bin, i.w, a, b);
    }
    default: return undefined;
  }
}

/** Forward transfer of one instruction over the environment (in place). */
function step(env: Env, i: Inst): void {
  const v = fold(env, i);
  for (const r of writes(i)) env.delete(r);
  if (v !== undefined && 'dst' in i) env.set(i.dst, v);
}

function meet(a: Env, b: Env): Env {
  const out: Env = new Map();
  for (const [r, v] of a) if (b.get(r) === v) out.set(r, v);
  return out;
}

const sameEnv = (a: Env | undefined, b: Env): boolean => a !== undefined && a.size === b.size && [...b].every(([r, v]) => a.get(r) === v);

/** Rewrites one instruction given the environment before it. */
function rewrite(env: Env, i: Inst): Inst {
  const v = fold(env, i);
  if (v !== undefined && 'dst' in i && i.op !== 'const') return constInst(i.pc, i.dst, v);
  if (i.op === 'bin') {
    if ('reg' in i.b) {
      const b = env.get(i.b.reg);
      const imm = b === undefined ? undefined : asImm(b, i.w);
      if (imm !== undefined) return { ...i, b: { imm } };
      const a = env.get(i.a);
      const aImm = a === undefined ? undefined : asImm(a, i.w);
      if (aImm !== undefined && COMMUTATIVE.has(i.bin)) return { ...i, a: i.b.reg, b: { imm: aImm } };
    }
    return i;
  }
  if (i.op === 'store' && 'reg' in i.value) {
    const s = env.get(i.value.reg);
    // A stored immediate is sign-extended to 64 bits, then cut to `size` bytes.
    const imm = s === undefined ? undefined : i.size === 8 ? asImm(s, 64) : Number(BigInt.asIntN(32, s));
    if (imm !== undefined) return { ...i, value: { imm } };
  }
  return i;
}

function rewriteTerm(env: Env, t: Terminator): Terminator {
  if (t.op !== 'br') return t;
  const a = env.get(t.a);
  const b = value(env, t.b);
  if (a !== undefined && b !== undefined) return { op: 'jump', pc: t.pc, target: evalCond(t.cond, t.w, a, b) ? t.then : t.else };
  if ('reg' in t.b && b !== undefined) {
    const imm = asImm(b, t.w);
    if (imm !== undefined) return { ...t, b: { imm } };
  }
  return t;
}

function constFoldFunction(f: IrFunction): void {
  const order = rpo(f);
  const ps = preds(f);
  const reachable = new Set(order);
  const outEnv = new Map<number, Env>();
  const inEnv = (id: number): Env => {
    if (id === 0) return new Map();
    let acc: Env | undefined;
    for (const p of ps[id]) {
      if (!reachable.has(p)) continue;
      const e = outEnv.get(p);
      // A predecessor not evaluated yet (a back edge on the first round) constrains nothing yet.
      if (e === undefined) continue;
      acc = acc === undefined ? new Map(e) : meet(acc, e);
    }
    return acc ?? new Map();
  };
  // Optimistic iteration: environments only shrink, so this terminates.
  for (let changed = true; changed;) {
    changed = false;
    for (const id of order) {
      const env = inEnv(id);
      for (const i of f.blocks[id].insts) step(env, i);
      if (!sameEnv(outEnv.get(id), env)) {
        outEnv.set(id, env);
        changed = true;
      }
    }
  }
  for (const id of order) {
    const b = f.blocks[id];
    clearHiDead(b);
    const env = inEnv(id);
    b.insts = b.insts.map((i) => {
      const r = rewrite(env, i);
      step(env, i);
      return r;
    });
    b.term = rewriteTerm(env, b.term);
  }
  for (const b of f.blocks) clearHiDead(b);
}

export function constFold(m: IrModule): IrModule {
  return mapFunctions(m, constFoldFunction);
}
