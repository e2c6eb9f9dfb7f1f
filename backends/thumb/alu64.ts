// ALU and compare lowering: eBPF's 64-bit registers on 32-bit ARM halves. ALU32 operations (and
// 64-bit ones whose upper half is dead, where the low half does not depend on upper halves) are one
// instruction on homed registers; 64-bit add/sub carry through ADDS/ADC and SUBS/SBC, multiply is
// UMULL plus the two cross products, shifts split at 32, compares chain CMP/SBCS or IT-predicated
// CMPs. Division follows RFC 9669 (x/0 = 0, x%0 = x; INT_MIN/-1 = INT_MIN is what SDIV computes);
// 64-bit division calls the runtime's routine. Flags are never live across IR instructions.
import type { BinOp, Cond as IrCond, Inst, Operand, Reg, Terminator } from '../../compiler/ir/ir.js';
import { DIV64_OP, OFF } from './abi.js';
import * as E from './encode.js';
import { cmpImmOr, dpImmOr, LR, ldrState, strState, type Emitter } from './emitter.js';
import { saveCallerSaved, reloadCallerSaved } from './calls.js';

type BinInst = Extract<Inst, { op: 'bin' }>;
type Br = Extract<Terminator, { op: 'br' }>;

const DP_OF: Partial<Record<BinOp, E.DpOp>> = { add: 'add', sub: 'sub', and: 'and', or: 'orr', xor: 'eor' };
const SHIFT_OF: Partial<Record<BinOp, E.ShiftType>> = { shl: 'lsl', lshr: 'lsr', ashr: 'asr' };
const DIV_OPS: ReadonlySet<BinOp> = new Set(['udiv', 'sdiv', 'urem', 'srem']);
/** 64-bit operations whose low half depends on low halves only (so hiDead makes them 32-bit). */
const LOW_ONLY: ReadonlySet<BinOp> = new Set(['add', 'sub', 'mul', 'and', 'or', 'xor', 'shl']);

const isImm = (b: Operand): b is { imm: number } => 'imm' in b;

/** Copies one half (or zero for r10's upper half) into dst's half. */
export function copyHalf(e: Emitter, dst: Reg, half: 0 | 1, src: Reg, srcHalf: 0 | 1): void {
  e.scope(() => {
    const h = e.home(dst, half);
    if (h !== undefined) {
      e.read(src, srcHalf, h);
      return;
    }
    e.commit(dst, half, e.read(src, srcHalf));
  });
}

function zeroHi(e: Emitter, dst: Reg, hiDead: boolean | undefined): void {
  if (!hiDead) e.scope(() => e.setConst(dst, 1, 0));
}

export function lowerConst(e: Emitter, dst: Reg, lo: number, hi: number, hiDead?: boolean): void {
  e.scope(() => e.setConst(dst, 0, lo));
  if (!hiDead) e.scope(() => e.setConst(dst, 1, hi));
}

export function lowerMov(e: Emitter, inst: Extract<Inst, { op: 'mov' }>): void {
  copyHalf(e, inst.dst, 0, inst.src, 0);
  if (inst.w === 64) {
    if (!inst.hiDead) copyHalf(e, inst.dst, 1, inst.src, 1);
  } else zeroHi(e, inst.dst, inst.hiDead);
}

/** dst.lo = a.lo OP b.lo with 32-bit semantics (count masked to `countMask` for shifts). */
function binLo(e: Emitter, bin: BinOp, dst: Reg, a: Reg, b: Operand, countMask: 31 | 63): void {
  e.scope(() => {
    const d = e.dest(dst, 0);
    const ra = e.lo(a);
    const dp = DP_OF[bin];
    const sh = SHIFT_OF[bin];
    if (dp !== undefined) {
      if (isImm(b)) dpImmOr(e, dp, true, d, ra, b.imm);
      else e.emit(E.dpReg(dp, true, d, ra, e.lo(b.reg)));
    } else if (sh !== undefined) {
      if (isImm(b)) {
        const n = b.imm & countMask;
        if (n >= 32) e.emit(E.loadConst(d, 0));
        else if (n === 0) {
          if (d !== ra) e.emit(E.mov(d, ra));
        } else e.emit(E.shiftImm(sh, true, d, ra, n));
      } else {
        const t = e.tmp();
        e.emit(E.andsImm(t, e.lo(b.reg), countMask));
        e.emit(E.shiftReg(sh, true, d, ra, t));
      }
    } else if (bin === 'mul') {
      const rb = isImm(b) ? e.constReg(b.imm) : e.lo(b.reg);
      const narrow = d < 8 && ra < 8 && rb < 8 && (d === ra || d === rb);
      e.emit(narrow ? E.muls(d, ra, rb) : E.mul(d, ra, rb));
    } else if (DIV_OPS.has(bin)) {
      div32(e, bin, d, ra, b);
    } else {
      throw new Error(`internal: no 32-bit lowering for ${bin}`);
    }
    e.commit(dst, 0, d);
  });
}

function div32(e: Emitter, bin: BinOp, d: number, ra: number, b: Operand): void {
  const signed = bin === 'sdiv' || bin === 'srem';
  const rem = bin === 'urem' || bin === 'srem';
  const divide = (rd: number, rn: number, rm: number): E.Halfwords => (signed ? E.sdiv(rd, rn, rm) : E.udiv(rd, rn, rm));
  if (isImm(b)) {
    if ((b.imm | 0) === 0) {
      // RFC 9669: x / 0 = 0, x % 0 = x.
      if (rem) {
        if (d !== ra) e.emit(E.mov(d, ra));
      } else e.emit(E.loadConst(d, 0));
      return;
    }
    const k = e.constReg(b.imm);
    if (!rem) {
      e.emit(divide(d, ra, k));
      return;
    }
    const q = e.tmp();
    e.emit(divide(q, ra, k));
    e.emit(E.mls(d, q, k, ra));
    return;
  }
  const rb = e.lo(b.reg);
  // The divisor is tested here rather than trusting CCR.DIV_0_TRP to be off.
  e.emit(E.cmpImm(rb, 0));
  if (!rem) {
    e.emit(E.it('eq', 'e'));
    e.emit(E.movImm(d, 0, { inIT: true }));
    e.emit(divide(d, ra, rb));
    return;
  }
  const q = e.tmp();
  e.emit(E.it('eq', 'ee'));
  e.emit(E.mov(d, ra, { inIT: true }));
  e.emit(divide(q, ra, rb));
  e.emit(E.mls(d, q, rb, ra));
}

export function lowerBin(e: Emitter, inst: BinInst): void {
  const { bin, dst, a, b } = inst;
  if (inst.w === 32) {
    binLo(e, bin, dst, a, b, 31);
    zeroHi(e, dst, inst.hiDead);
    return;
  }
  if (inst.hiDead && LOW_ONLY.has(bin)) {
    binLo(e, bin, dst, a, b, 63);
    return;
  }
  switch (bin) {
    case 'add':
    case 'sub':
      addSub64(e, bin, dst, a, b);
      return;
    case 'and':
    case 'or':
    case 'xor':
      logic64(e, bin, dst, a, b);
      return;
    case 'mul':
      mul64(e, dst, a, b);
      return;
    case 'shl':
    case 'lshr':
    case 'ashr':
      if (isImm(b)) shift64Imm(e, bin, dst, a, b.imm & 63);
      else shift64Reg(e, bin, dst, a, b.reg);
      return;
    default:
      div64(e, bin, dst, a, b);
  }
}

/**
 * 64-bit division: when both upper halves are 0 (most divisions at run time), the 32-bit UDIV
 * path computes the same quotient or remainder for all four operations (both operands are then
 * non-negative as signed numbers too); otherwise the runtime's routine, out of line.
 */
function div64(e: Emitter, bin: BinOp, dst: Reg, a: Reg, b: Operand): void {
  if (isImm(b) && (b.imm | 0) < 0) {
    div64Call(e, bin, dst, a, b);
    return;
  }
  const slow = e.buf.label('div64_slow');
  const join = e.buf.label('div64_join');
  e.scope(() => {
    const ah = e.hi(a);
    if (isImm(b)) e.emit(E.cmpImm(ah, 0));
    else e.emit(E.orrs(e.tmp(), ah, e.hi(b.reg)));
  });
  e.buf.bcond('ne', slow);
  const unsigned: BinOp = bin === 'sdiv' || bin === 'udiv' ? 'udiv' : 'urem';
  binLo(e, unsigned, dst, a, b, 31);
  zeroHi(e, dst, false);
  e.buf.bind(join);
  e.addCold(() => {
    e.buf.bind(slow);
    div64Call(e, bin, dst, a, b);
    e.buf.b(join);
  });
}

function addSub64(e: Emitter, bin: 'add' | 'sub', dst: Reg, a: Reg, b: Operand): void {
  let op: 'add' | 'sub' = bin;
  let lo = 0;
  let hi = 0;
  if (isImm(b)) {
    // a + (-k) is a - k with the same carry chain, and avoids materialising 0xffff_ffff_xxxx.
    lo = b.imm | 0;
    hi = lo >> 31;
    if (lo < 0 && lo !== -0x8000_0000) {
      op = bin === 'add' ? 'sub' : 'add';
      lo = -lo;
      hi = 0;
    }
  }
  e.scope(() => {
    const d = e.dest(dst, 0);
    const ra = e.lo(a);
    if (isImm(b)) dpImmOr(e, op, true, d, ra, lo);
    else e.emit(E.dpReg(op, true, d, ra, e.lo(b.reg)));
    e.commit(dst, 0, d);
  });
  e.scope(() => {
    const d = e.dest(dst, 1);
    const ra = e.hi(a);
    const carryOp = op === 'add' ? 'adc' : 'sbc';
    if (isImm(b)) dpImmOr(e, carryOp, false, d, ra, hi);
    else e.emit(E.dpReg(carryOp, false, d, ra, e.hi(b.reg)));
    e.commit(dst, 1, d);
  });
}

function logic64(e: Emitter, bin: 'and' | 'or' | 'xor', dst: Reg, a: Reg, b: Operand): void {
  const dp = DP_OF[bin] as E.DpOp;
  for (const half of [0, 1] as const) {
    if (isImm(b)) {
      const k = half === 0 ? b.imm | 0 : (b.imm | 0) >> 31;
      // Identities keep the upper half of a sign-extended immediate to a move or a constant.
      if ((bin === 'and' && k === -1) || (bin !== 'and' && k === 0)) {
        copyHalf(e, dst, half, a, half);
        continue;
      }
      if ((bin === 'and' && k === 0) || (bin === 'or' && k === -1)) {
        e.scope(() => e.setConst(dst, half, k));
        continue;
      }
      e.scope(() => {
        const d = e.dest(dst, half);
        if (bin === 'xor' && k === -1) e.emit(E.mvn(d, e.read(a, half)));
        else dpImmOr(e, dp, true, d, e.read(a, half), k);
        e.commit(dst, half, d);
      });
      continue;
    }
    e.scope(() => {
      const d = e.dest(dst, half);
      const ra = e.read(a, half);
      e.emit(E.dpReg(dp, true, d, ra, e.read(b.reg, half)));
      e.commit(dst, half, d);
    });
  }
}

function homed(e: Emitter, r: Reg): boolean {
  return e.home(r, 0) !== undefined && e.home(r, 1) !== undefined;
}

function mul64(e: Emitter, dst: Reg, a: Reg, b: Operand): void {
  e.scope(() => {
    if (homed(e, a) && (isImm(b) || homed(e, b.reg))) {
      const al = e.lo(a);
      const ah = e.hi(a);
      const x = e.tmp();
      let bl: number;
      if (isImm(b)) {
        bl = e.constReg(b.imm);
        e.emit(E.mul(x, ah, bl));
        if ((b.imm | 0) < 0) e.emit(E.sub(x, x, al)); // cross term al * 0xffffffff
      } else {
        bl = e.lo(b.reg);
        e.emit(E.mul(x, al, e.hi(b.reg)));
        e.emit(E.mla(x, ah, bl, x));
      }
      const dl = e.dest(dst, 0);
      const dh = e.dest(dst, 1);
      e.emit(E.umull(dl, dh, al, bl));
      e.emit(E.add(dh, dh, x));
      e.commit(dst, 0, dl);
      e.commit(dst, 1, dh);
      return;
    }
    // Operands in canonical scratch registers: r11 = a.lo, r12 = a.hi, r10 = b.lo, lr = cross.
    const [al, ah, bl, x] = [e.take(11), e.take(12), e.take(10), e.take(LR)];
    e.lo(a, al);
    if (isImm(b)) {
      e.emit(E.loadConst(bl, b.imm | 0));
      e.emit(E.loadConst(x, (b.imm | 0) >> 31));
    } else {
      e.lo(b.reg, bl);
      e.hi(b.reg, x);
    }
    e.emit(E.mul(x, al, x));
    e.hi(a, ah);
    e.emit(E.mla(x, ah, bl, x));
    e.emit(E.umull(al, ah, al, bl));
    e.emit(E.add(ah, ah, x));
    e.commit(dst, 0, al);
    e.commit(dst, 1, ah);
  });
}

function shift64Imm(e: Emitter, bin: 'shl' | 'lshr' | 'ashr', dst: Reg, a: Reg, n: number): void {
  if (n === 0) {
    copyHalf(e, dst, 0, a, 0);
    copyHalf(e, dst, 1, a, 1);
    return;
  }
  const shifted = (d: number, src: number, type: E.ShiftType, k: number): void => {
    if (k === 0) {
      if (d !== src) e.emit(E.mov(d, src));
    } else e.emit(E.shiftImm(type, true, d, src, k));
  };
  if (bin === 'shl') {
    e.scope(() => {
      const d = e.dest(dst, 1);
      if (n < 32) {
        const al = e.lo(a);
        shifted(d, e.hi(a), 'lsl', n);
        e.emit(E.orr(d, d, al, { type: 'lsr', amount: 32 - n }));
      } else shifted(d, e.lo(a), 'lsl', n - 32);
      e.commit(dst, 1, d);
    });
    e.scope(() => {
      if (n >= 32) e.setConst(dst, 0, 0);
      else {
        const d = e.dest(dst, 0);
        shifted(d, e.lo(a), 'lsl', n);
        e.commit(dst, 0, d);
      }
    });
    return;
  }
  const hiType: E.ShiftType = bin === 'ashr' ? 'asr' : 'lsr';
  e.scope(() => {
    const d = e.dest(dst, 0);
    if (n < 32) {
      const ah = e.hi(a);
      shifted(d, e.lo(a), 'lsr', n);
      e.emit(E.orr(d, d, ah, { type: 'lsl', amount: 32 - n }));
    } else shifted(d, e.hi(a), hiType, n - 32);
    e.commit(dst, 0, d);
  });
  e.scope(() => {
    if (n >= 32 && bin === 'lshr') {
      e.setConst(dst, 1, 0);
      return;
    }
    const d = e.dest(dst, 1);
    shifted(d, e.hi(a), hiType, n >= 32 ? 31 : n);
    e.commit(dst, 1, d);
  });
}

/** Shift by a register: both halves in scratch (r11 = lo, r12 = hi, r10 = count, lr = temporary). */
function shift64Reg(e: Emitter, bin: 'shl' | 'lshr' | 'ashr', dst: Reg, a: Reg, b: Reg): void {
  e.scope(() => {
    const [lo, hi, c, t] = [e.take(11), e.take(12), e.take(10), e.take(LR)];
    e.lo(b, c);
    e.emit(E.andImm(c, c, 63));
    e.lo(a, lo);
    e.hi(a, hi);
    const wide = { width: 'wide' as const };
    if (bin === 'shl') {
      e.emit(E.lsl(hi, hi, c, wide));
      e.emit(E.rsbImm(t, c, 32));
      e.emit(E.lsr(t, lo, t, wide));
      e.emit(E.orr(hi, hi, t));
      e.emit(E.subImm(t, c, 32));
      e.emit(E.lsl(t, lo, t, wide));
      e.emit(E.orr(hi, hi, t));
      e.emit(E.lsl(lo, lo, c, wide));
    } else {
      e.emit(E.lsr(lo, lo, c, wide));
      e.emit(E.rsbImm(t, c, 32));
      e.emit(E.lsl(t, hi, t, wide));
      e.emit(E.orr(lo, lo, t));
      if (bin === 'lshr') {
        e.emit(E.subImm(t, c, 32));
        e.emit(E.lsr(t, hi, t, wide));
        e.emit(E.orr(lo, lo, t));
        e.emit(E.lsr(hi, hi, c, wide));
      } else {
        // asr by a "negative" count would fill with the sign, so the c >= 32 term is predicated.
        e.emit(E.subsImm(t, c, 32));
        e.emit(E.it('pl', 't'));
        e.emit(E.asr(t, hi, t, { width: 'wide', inIT: true }));
        e.emit(E.orr(lo, lo, t, undefined, { width: 'wide', inIT: true }));
        e.emit(E.asr(hi, hi, c, wide));
      }
    }
    e.commit(dst, 0, lo);
    e.commit(dst, 1, hi);
  });
}

/** 64-bit division and remainder through the runtime (state tmp[0..1] op= tmp[2..3]). */
function div64Call(e: Emitter, bin: BinOp, dst: Reg, a: Reg, b: Operand): void {
  const op = DIV64_OP[bin as keyof typeof DIV64_OP];
  e.scope(() => {
    strState(e, e.lo(a), OFF.TMP);
  });
  e.scope(() => {
    strState(e, e.hi(a), OFF.TMP + 4);
  });
  for (const half of [0, 1] as const) {
    e.scope(() => {
      const r = isImm(b) ? e.constReg(half === 0 ? b.imm | 0 : (b.imm | 0) >> 31) : e.read(b.reg, half);
      strState(e, r, OFF.TMP + 8 + half * 4);
    });
  }
  e.scope(() => {
    saveCallerSaved(e);
    e.emit(E.mov(0, E.SP));
    e.emit(E.loadConst(1, op));
    const fn = e.take(12);
    ldrState(e, fn, OFF.DIV64_FN);
    e.emit(E.blx(fn));
    reloadCallerSaved(e);
  });
  for (const half of [0, 1] as const) {
    e.scope(() => {
      const d = e.dest(dst, half);
      ldrState(e, d, OFF.TMP + half * 4);
      e.commit(dst, half, d);
    });
  }
}

export function lowerNeg(e: Emitter, inst: Extract<Inst, { op: 'neg' }>): void {
  e.scope(() => {
    const d = e.dest(inst.dst, 0);
    e.emit(E.rsbsImm(d, e.lo(inst.src), 0));
    e.commit(inst.dst, 0, d);
  });
  if (inst.w === 32) {
    zeroHi(e, inst.dst, inst.hiDead);
    return;
  }
  if (inst.hiDead) return;
  // hi = 0 - hi - borrow = hi - 2 * hi - !C
  e.scope(() => {
    const d = e.dest(inst.dst, 1);
    const ah = e.hi(inst.src);
    e.emit(E.sbc(d, ah, ah, { type: 'lsl', amount: 1 }));
    e.commit(inst.dst, 1, d);
  });
}

const EXTEND_OP: Record<string, E.ExtendOp> = { s8: 'sxtb', s16: 'sxth', u8: 'uxtb', u16: 'uxth' };

export function lowerExt(e: Emitter, inst: Extract<Inst, { op: 'ext' }>): void {
  const { dst, src, bits, signed } = inst;
  e.scope(() => {
    const d = e.dest(dst, 0);
    const s = e.lo(src);
    if (bits === 32) {
      if (d !== s) e.emit(E.mov(d, s));
    } else e.emit(E.extend(EXTEND_OP[`${signed ? 's' : 'u'}${bits}`], d, s));
    e.commit(dst, 0, d);
    if (inst.w === 64 && signed && !inst.hiDead) {
      const h = e.dest(dst, 1);
      e.emit(E.asrsImm(h, d, 31));
      e.commit(dst, 1, h);
    }
  });
  if (!(inst.w === 64 && signed)) zeroHi(e, dst, inst.hiDead);
}

export function lowerBswap(e: Emitter, inst: Extract<Inst, { op: 'bswap' }>): void {
  const { dst, src, bits } = inst;
  if (bits === 64) {
    e.scope(() => {
      const t = e.tmp();
      e.emit(E.rev(t, e.lo(src)));
      e.scope(() => {
        const d = e.dest(dst, 0);
        e.emit(E.rev(d, e.hi(src)));
        e.commit(dst, 0, d);
      });
      if (!inst.hiDead) e.commit(dst, 1, t);
    });
    return;
  }
  e.scope(() => {
    const d = e.dest(dst, 0);
    const s = e.lo(src);
    if (bits === 32) e.emit(E.rev(d, s));
    else {
      e.emit(E.rev(d, s));
      e.emit(E.lsrsImm(d, d, 16));
    }
    e.commit(dst, 0, d);
  });
  zeroHi(e, dst, inst.hiDead);
}

// ---- conditional branches ----

const COND32: Record<IrCond, E.Cond> = {
  eq: 'eq', ne: 'ne', ugt: 'hi', uge: 'hs', ult: 'lo', ule: 'ls', sgt: 'gt', sge: 'ge', slt: 'lt', sle: 'le', set: 'ne',
};

/** A compare operand: a register, or a constant that is materialised only when it does not encode. */
type Side = { reg: number } | { imm: number };

function cmpSide(e: Emitter, op: E.CompareOp, rn: number, s: Side, opts?: E.EncodeOptions): void {
  if ('reg' in s) e.emit(E.compare(op, rn, s.reg, undefined, opts));
  else e.emit(E.compareImm(op, rn, s.imm, opts));
}

/** A constant usable in an IT block: an encodable immediate, else a register loaded beforehand. */
function prepared(e: Emitter, op: E.CompareOp, k: number): Side {
  try {
    E.compareImm(op, 0, k | 0);
    return { imm: k | 0 };
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    return { reg: e.constReg(k) };
  }
}

/**
 * Emits the compare of a `br` and returns the ARM condition under which the branch is taken.
 * Uses only compare instructions and (for signed 64-bit) SBCS into a scratch.
 */
export function lowerCompare(e: Emitter, t: Br): E.Cond {
  const { cond, a, b } = t;
  const imm = isImm(b) ? b.imm | 0 : undefined;
  const cmpOp: E.CompareOp = cond === 'set' ? 'tst' : 'cmp';
  if (t.w === 32) {
    const ra = e.lo(a);
    if (imm !== undefined) cmpImmOr(e, cmpOp, ra, imm);
    else e.emit(E.compare(cmpOp, ra, e.lo((b as { reg: number }).reg)));
    return COND32[cond];
  }
  const side = (half: 0 | 1): Side =>
    imm !== undefined ? prepared(e, cmpOp, half === 0 ? imm : imm >> 31) : { reg: e.read((b as { reg: number }).reg, half) };
  const inIT = { inIT: true };
  switch (cond) {
    case 'eq':
    case 'ne':
    case 'set': {
      const al = e.lo(a);
      const ah = e.hi(a);
      const bl = side(0);
      const bh = side(1);
      cmpSide(e, cmpOp, al, bl);
      e.emit(E.it('eq'));
      cmpSide(e, cmpOp, ah, bh, inIT);
      return cond === 'eq' ? 'eq' : 'ne';
    }
    case 'ugt':
    case 'uge':
    case 'ult':
    case 'ule': {
      const al = e.lo(a);
      const ah = e.hi(a);
      const bl = side(0);
      const bh = side(1);
      cmpSide(e, 'cmp', ah, bh);
      e.emit(E.it('eq'));
      cmpSide(e, 'cmp', al, bl, inIT);
      return COND32[cond];
    }
    default:
      return signedCompare64(e, cond, a, b);
  }
}

function signedCompare64(e: Emitter, cond: 'sgt' | 'sge' | 'slt' | 'sle', a: Reg, b: Operand): E.Cond {
  // Low halves compare first, then SBCS on the high halves; loads in between leave the flags alone.
  if (isImm(b)) {
    // a > k is a >= k + 1 (and a <= k is a < k + 1), computed as a 64-bit constant.
    let k = BigInt(b.imm | 0);
    let c = cond;
    if (cond === 'sgt' || cond === 'sle') {
      k += 1n;
      c = cond === 'sgt' ? 'sge' : 'slt';
    }
    const klo = Number(BigInt.asIntN(32, k));
    const khi = Number(BigInt.asIntN(32, k >> 32n));
    e.scope(() => cmpImmOr(e, 'cmp', e.lo(a), klo));
    e.scope(() => {
      const ah = e.hi(a);
      dpImmOr(e, 'sbc', true, e.tmp(), ah, khi);
    });
    return c === 'sge' ? 'ge' : 'lt';
  }
  // a - b sets N^V for a < b; a > b is b < a.
  const swap = cond === 'sgt' || cond === 'sle';
  const [x, y] = swap ? [b.reg, a] : [a, b.reg];
  e.scope(() => {
    const xl = e.lo(x);
    e.emit(E.cmp(xl, e.lo(y)));
  });
  e.scope(() => {
    const xh = e.hi(x);
    const yh = e.hi(y);
    e.emit(E.sbcs(e.tmp(), xh, yh));
  });
  return cond === 'slt' || cond === 'sgt' ? 'lt' : 'ge';
}
