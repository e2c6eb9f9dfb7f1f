// The IR interpreter: the IR's semantics as executable text, the model the passes are checked
// against and the oracle of the differential tests (evalIr(buildIr(p)) must end exactly as the
// reference interpreter does). Clarity over speed: registers are unsigned 64-bit bigints.
//
// What it adds to the reference interpreter's rules (runtime/interp.ts):
// - `budget` charges its cost; `steps` is the amount charged (what a compiled engine reports).
// - A def marked hiDead gets a poisoned upper half, so a wrong hiDead shows up as a wrong result.
// - An access the IR claims is safe ('proven', or a check against one region) that is not is a
//   broken contract, reported as IrEvalError rather than as a fault of the program.
import { disasmInsn } from '../disasm.js';
import type { Program } from '../program.js';
import { swapBytes } from '../verify/tnum.js';
import { FAULT_TITLE, HelperError, type Fault, type FaultKind, type RunResult } from '../../runtime/errors.js';
import { conformanceHelpers, regionHelperContext, type HelperContext, type HelperRegistry } from '../../runtime/helpers.js';
import { containerLayout, MAX_CALL_DEPTH, STACK_FRAME, type ContainerLayout } from '../../runtime/layout.js';
import { RegionTable, type Region, type RegionSpec } from '../../runtime/regions.js';
import type { Access, BinOp, Cond, Inst, IrFunction, IrModule, Operand, Reg, Width } from './ir.js';

export interface EvalOptions {
  mem?: Uint8Array;
  /** Instruction budget (default as the interpreter's); Infinity turns it off. */
  budget?: number;
  helpers?: HelperRegistry;
  regions?: RegionSpec[];
  /** The eBPF program the IR came from: fault messages then show the instruction as the interpreter does. */
  program?: Program;
  /** Poison the upper half of hiDead definitions (default true). */
  poisonHiDead?: boolean;
}

/** The IR broke its own contract at run time (an unsound verdict, a bad register); a bug, not a program fault. */
export class IrEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IrEvalError';
  }
}

const DEFAULT_BUDGET = 100_000_000;
const M32 = 0xffffffffn;
const POISON = 0xa5a5a5a5n << 32n;

// The interpreter's titles (runtime/interp.ts keeps its table private).
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const u32 = (v: bigint): bigint => v & M32;
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);

/** Unwinds evaluation: a fault, or a helper that ended the program. */
class Stop {
  constructor(readonly result: RunResult) {}
}

type Arith = (a: bigint, b: bigint) => bigint;

const BIN64: Record<BinOp, Arith> = {
  add: (a, b) => u64(a + b),
  sub: (a, b) => u64(a - b),
  mul: (a, b) => u64(a * b),
  udiv: (a, b) => (b === 0n ? 0n : a / b),
  urem: (a, b) => (b === 0n ? a : a % b),
  sdiv: (a, b) => (b === 0n ? 0n : u64(s64(a) / s64(b))),
  srem: (a, b) => (b === 0n ? a : u64(s64(a) % s64(b))),
  and: (a, b) => a & b,
  or: (a, b) => a | b,
  xor: (a, b) => a ^ b,
  shl: (a, b) => u64(a << (b & 63n)),
  lshr: (a, b) => a >> (b & 63n),
  ashr: (a, b) => u64(s64(a) >> (b & 63n)),
};

/** 32-bit operations on operands already cut to their low halves. */
const BIN32: Record<BinOp, Arith> = {
  add: (a, b) => u32(a + b),
  sub: (a, b) => u32(a - b),
  mul: (a, b) => u32(a * b),
  udiv: (a, b) => (b === 0n ? 0n : a / b),
  urem: (a, b) => (b === 0n ? a : a % b),
  sdiv: (a, b) => (b === 0n ? 0n : u32(s32(a) / s32(b))),
  srem: (a, b) => (b === 0n ? a : u32(s32(a) % s32(b))),
  and: (a, b) => a & b,
  or: (a, b) => a | b,
  xor: (a, b) => a ^ b,
  shl: (a, b) => u32(a << (b & 31n)),
  lshr: (a, b) => a >> (b & 31n),
  ashr: (a, b) => u32(s32(a) >> (b & 31n)),
};

type Compare = (a: bigint, b: bigint, signed: (v: bigint) => bigint) => boolean;
const COND: Record<Cond, Compare> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  ugt: (a, b) => a > b,
  uge: (a, b) => a >= b,
  ult: (a, b) => a < b,
  ule: (a, b) => a <= b,
  sgt: (a, b, s) => s(a) > s(b),
  sge: (a, b, s) => s(a) >= s(b),
  slt: (a, b, s) => s(a) < s(b),
  sle: (a, b, s) => s(a) <= s(b),
  set: (a, b) => (a & b) !== 0n,
};

/** Byte-swaps the low `bits` of v (the verifier's tnum does the same to its known bits). */
export const bswapBits = swapBytes;

/** The value an IR operation computes (shared with constant folding, so both agree by construction). */
export function evalBin(op: BinOp, w: Width, a: bigint, b: bigint): bigint {
  return w === 64 ? BIN64[op](u64(a), u64(b)) : BIN32[op](u32(a), u32(b));
}

export function evalCond(cond: Cond, w: Width, a: bigint, b: bigint): boolean {
  return w === 64 ? COND[cond](u64(a), u64(b), s64) : COND[cond](u32(a), u32(b), s32);
}

export function evalExt(signed: boolean, bits: number, w: Width, v: bigint): bigint {
  const low = BigInt.asUintN(bits, v);
  const ext = signed ? BigInt.asIntN(bits, low) : low;
  return BigInt.asUintN(w, ext);
}

/** An operand's value: immediates are sign-extended to 64 bits. */
export function immValue(imm: number): bigint {
  return u64(BigInt(imm));
}

class Evaluator {
  private readonly layout: ContainerLayout;
  private readonly table: RegionTable;
  private readonly helpers: HelperRegistry;
  private readonly budget: number;
  private readonly poison: boolean;
  private readonly stackTop: number;
  private readonly ctx: HelperContext;
  private charged = 0;
  /** Shared r0..r10 (as the interpreter's register file); temporaries are per activation. */
  private readonly R: bigint[] = new Array<bigint>(11).fill(0n);

  constructor(readonly m: IrModule, readonly opts: EvalOptions) {
    const asProgram: Program = { insns: [], entry: 0, functions: [], data: m.data, relocs: [], origin: m.origin };
    this.layout = containerLayout(asProgram, opts.mem, opts.regions);
    this.table = new RegionTable(this.layout.regions);
    this.helpers = opts.helpers ?? conformanceHelpers();
    this.budget = opts.budget ?? DEFAULT_BUDGET;
    if (!(this.budget >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${this.budget})`);
    this.poison = opts.poisonHiDead ?? true;
    const stack = this.layout.stack;
    this.stackTop = stack.base + stack.bytes.length;
    this.ctx = this.helperContext();
  }

  run(): RunResult {
    const mem = this.layout.mem;
    this.R[1] = mem ? BigInt(mem.base) : 0n;
    this.R[2] = mem ? BigInt(mem.bytes.length) : 0n;
    this.R[10] = BigInt(this.stackTop);
    try {
      this.call(0, 0);
      return { ok: true, r0: this.R[0], steps: this.charged };
    } catch (e) {
      if (e instanceof Stop) return e.result;
      throw e;
    }
  }

  private fault(kind: FaultKind, pc: number, detail: string, addr?: bigint, size?: number): Stop {
    const p = this.opts.program;
    const text = p !== undefined && pc >= 0 && pc < p.insns.length ? ` (${disasmInsn(p.insns, pc)})` : '';
    const fault: Fault = { kind, pc, message: `${FAULT_TITLE[kind]} at instruction ${pc}${text}: ${detail}` };
    if (addr !== undefined) fault.addr = addr;
    if (size !== undefined) fault.size = size;
    return new Stop({ ok: false, fault, steps: this.charged });
  }

  /** Runs function `fi` at call depth `depth` on the shared register file. */
  private call(fi: number, depth: number): void {
    const f = this.m.functions[fi];
    if (f === undefined) throw new IrEvalError(`calllocal of function ${fi}, which does not exist`);
    const temps = new Array<bigint>(Math.max(0, f.maxReg - 10)).fill(0n);
    const get = (r: Reg): bigint => {
      if (r <= 10) return this.R[r];
      if (r - 11 >= temps.length) throw new IrEvalError(`${f.name}: register r${r} is above maxReg ${f.maxReg}`);
      return temps[r - 11];
    };
    const set = (r: Reg, v: bigint, hiDead?: boolean): void => {
      let x = u64(v);
      if (hiDead === true && this.poison) x = (x & M32) | POISON;
      if (r === 10) throw new IrEvalError(`${f.name}: write to r10`);
      if (r < 10) this.R[r] = x;
      else if (r - 11 < temps.length) temps[r - 11] = x;
      else throw new IrEvalError(`${f.name}: register r${r} is above maxReg ${f.maxReg}`);
    };
    const opnd = (o: Operand): bigint => ('reg' in o ? get(o.reg) : immValue(o.imm));
    let b = f.blocks[0];
    for (;;) {
      for (const i of b.insts) this.exec(i, depth, get, set, opnd);
      const t = b.term;
      switch (t.op) {
        case 'ret':
          return;
        case 'jump':
          b = this.block(f, t.target);
          break;
        case 'br':
          b = this.block(f, evalCond(t.cond, t.w, get(t.a), opnd(t.b)) ? t.then : t.else);
          break;
        case 'fault':
          throw this.fault(t.kind, t.pc, 'this path always faults (proven by the verifier)');
      }
    }
  }

  private block(f: IrFunction, id: number): IrFunction['blocks'][number] {
    const b = f.blocks[id];
    if (b === undefined) throw new IrEvalError(`${f.name}: jump to b${id}, which does not exist`);
    return b;
  }

  private exec(
    i: Inst, depth: number,
    get: (r: Reg) => bigint, set: (r: Reg, v: bigint, hiDead?: boolean) => void, opnd: (o: Operand) => bigint,
  ): void {
    switch (i.op) {
      case 'const':
        set(i.dst, (BigInt(i.hi >>> 0) << 32n) | BigInt(i.lo >>> 0), i.hiDead);
        return;
      case 'addr': {
        const r = this.layout.data[i.section];
        if (r === undefined) throw new IrEvalError(`addr of data section ${i.section}, which does not exist`);
        set(i.dst, BigInt(r.base + i.offset), i.hiDead);
        return;
      }
      case 'mov':
        set(i.dst, i.w === 64 ? get(i.src) : u32(get(i.src)), i.hiDead);
        return;
      case 'bin':
        set(i.dst, evalBin(i.bin, i.w, get(i.a), opnd(i.b)), i.hiDead);
        return;
      case 'neg':
        set(i.dst, i.w === 64 ? u64(-get(i.src)) : u32(-u32(get(i.src))), i.hiDead);
        return;
      case 'ext':
        set(i.dst, evalExt(i.signed, i.bits, i.w, get(i.src)), i.hiDead);
        return;
      case 'bswap':
        set(i.dst, bswapBits(get(i.src), i.bits), i.hiDead);
        return;
      case 'load': {
        const { region, at } = this.locate(i.pc, get(i.base), i.off, i.size, false, i.access);
        const view = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.bytes.byteLength);
        let v = i.size === 8 ? view.getBigUint64(at, true) : BigInt(i.size === 4 ? view.getUint32(at, true) : i.size === 2 ? view.getUint16(at, true) : view.getUint8(at));
        if (i.signed) v = u64(BigInt.asIntN(i.size * 8, v));
        set(i.dst, v, i.hiDead);
        return;
      }
      case 'store': {
        const { region, at } = this.locate(i.pc, get(i.base), i.off, i.size, true, i.access);
        writeBytes(region, at, i.size, opnd(i.value));
        return;
      }
      case 'atomic': {
        const { region, at } = this.locate(i.pc, get(i.base), i.off, i.size, true, i.access);
        const bits = i.size * 8;
        const old = readBytes(region, at, i.size);
        const v = BigInt.asUintN(bits, get(i.src));
        let nv = old;
        switch (i.aop) {
          case 'add': nv = BigInt.asUintN(bits, old + v); break;
          case 'or': nv = old | v; break;
          case 'and': nv = old & v; break;
          case 'xor': nv = old ^ v; break;
          case 'xchg': nv = v; break;
          case 'cmpxchg': if (old === BigInt.asUintN(bits, get(0))) nv = v; break;
        }
        writeBytes(region, at, i.size, nv);
        if (i.aop === 'cmpxchg') set(0, old);
        else if (i.fetch) set(i.src, old);
        return;
      }
      case 'call':
        this.helper(i.pc, BigInt(i.id), undefined);
        return;
      case 'callx':
        this.helper(i.pc, get(i.reg), i.reg);
        return;
      case 'calllocal': {
        if (depth + 1 >= MAX_CALL_DEPTH) {
          throw this.fault('call-depth', i.pc, `a call nested ${MAX_CALL_DEPTH + 1} frames deep; the stack holds ${MAX_CALL_DEPTH} frames of ${STACK_FRAME} bytes`);
        }
        const saved = this.R.slice(6, 11);
        this.R[10] = BigInt(this.stackTop - (depth + 1) * STACK_FRAME);
        this.call(i.func, depth + 1);
        for (let r = 6; r <= 10; r++) this.R[r] = saved[r - 6];
        return;
      }
      case 'budget':
        if (this.charged + i.cost > this.budget) throw this.fault('budget', i.pc, `executed ${this.budget} instructions without exiting`);
        this.charged += i.cost;
        return;
    }
  }

  /** The checked access every engine performs, plus the IR's claims about it. */
  private locate(pc: number, base: bigint, off: number, size: number, write: boolean, access: Access): { region: Region; at: number } {
    const addr = u64(base + BigInt(off));
    const r = this.table.findAddr(addr, size, write);
    if (typeof r === 'string') {
      if (access.verdict === 'proven') {
        throw new IrEvalError(`instruction ${pc}: an access marked proven faults: ${this.table.describe(addr, size, write)}`);
      }
      throw this.fault(r, pc, this.table.describe(addr, size, write), addr, size);
    }
    if (access.region !== undefined && r.name !== access.region) {
      throw new IrEvalError(`instruction ${pc}: the access is claimed to be in ${access.region} but is in ${r.name}`);
    }
    return { region: r, at: Number(addr) - r.base };
  }

  private helper(pc: number, id: bigint, fromReg: Reg | undefined): void {
    const def = id <= 0xffffffffn ? this.helpers.get(fromReg === undefined ? Number(BigInt.asIntN(32, id)) : Number(id)) : undefined;
    if (def === undefined) {
      const shown = fromReg === undefined ? `${BigInt.asIntN(32, id)}` : `0x${id.toString(16)} (from %r${fromReg})`;
      throw this.fault('unknown-helper', pc, `no helper is registered with id ${shown}`);
    }
    let res;
    try {
      res = def.call(this.ctx, this.R[1], this.R[2], this.R[3], this.R[4], this.R[5]);
    } catch (e) {
      if (e instanceof HelperError) throw this.fault('helper', pc, `${def.name}: ${e.message}`);
      throw e;
    }
    if (typeof res === 'bigint') this.R[0] = u64(res);
    else throw new Stop({ ok: true, r0: u64(res.r0), steps: this.charged });
  }

  private helperContext(): HelperContext {
    const table = this.table;
    return regionHelperContext(() => table);
  }
}

function readBytes(r: Region, at: number, size: number): bigint {
  let v = 0n;
  for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(r.bytes[at + k]);
  return v;
}

function writeBytes(r: Region, at: number, size: number, v: bigint): void {
  for (let k = 0; k < size; k++) r.bytes[at + k] = Number((v >> BigInt(8 * k)) & 0xffn);
}

export function evalIr(m: IrModule, opts: EvalOptions = {}): RunResult {
  return new Evaluator(m, opts).run();
}
