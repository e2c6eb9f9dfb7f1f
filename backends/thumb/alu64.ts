// ALU and compare lowering: eBPF's 64-bit registers on 32-bit ARM halves. ALU32 operations (and
// 64-bit ones whose upper half is dead, where the low half does not depend on upper halves) are one
// instruction on homed registers; 64-bit add/sub carry through ADDS/ADC and SUBS/SBC, multiply is
// UMULL plus the two cross products, shifts split at 32, compares chain CMP/SBCS or IT-predicated
// CMPs. Division follows RFC 9669 (x/0 = 0, x%0 = x; INT_MIN/-1 = INT_MIN is what SDIV computes);
// 64-bit division calls the runtime's routine. Flags are never live across IR instructions.
import type { BinOp, Cond as IrCond, Inst, Operand, Reg, Terminator } from '../../compiler/ir/ir.js';
import { DIV64_OP, OFF } from './abi.js';
import * as E from './encode.js';
import { cmpImmOr, dpImmLoose, dpImmOr, LR, ldrState, strState, type Emitter } from './emitter.js';
import { saveCallerSaved, reloadCallerSaved } from './calls.js';
import { LOW_ONLY } from './regalloc.js';

type BinInst = Extract<Inst, { op: 'bin' }>;
type Br = Extract<Terminator, { op: 'br' }>;

const DP_OF: Partial<Record<BinOp, E.DpOp>> = { add: 'add', sub: 'sub', and: 'and', or: 'orr', xor: 'eor' };
const SHIFT_OF: Partial<Record<BinOp, E.ShiftType>> = { shl: 'lsl', lshr: 'lsr', ashr: 'asr' };
const DIV_OPS: ReadonlySet<BinOp> = new Set(['udiv', 'sdiv', 'urem', 'srem']);
/** 64-bit operations whose low half depends on low halves only (so hiDead makes them 32-bit). */

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
/** A register operand whose low half is known reads as an immediate. */
function lowOperand(e: Emitter, b: Operand): Operand {
  if (isImm(b)) return b;
  const k = e.kv(b.reg, 0);
  return k === undefined ? b : { imm: k };
}

/** Operations whose operands commute: a known first operand becomes the immediate. */
const COMMUTES: ReadonlySet<BinOp> = new Set(['add', 'and', 'or', 'xor', 'mul']);

/**
 * An AND mask whose bits above `max`'s highest bit are free (the operand has none there): set
 * them all when that makes the mask a shorter immediate (0x0ffffff8 on a value below 2^28 is
 * `bic #7`).
 */
function widenMask(imm: number, max: number): number {
  if (!(max < 0x8000_0000)) return imm;
  const free = ~(2 ** Math.max(1, Math.ceil(Math.log2(max + 1))) - 1);
  const wide = (imm | free) | 0;
  const cost = (k: number): number => (encodes(k) || encodes(~k) ? 1 : 2);
  return cost(wide) < cost(imm) ? wide : imm;
}

function encodes(k: number): boolean {
  try {
    E.dpImm('and', false, 8, 8, k | 0);
    return true;
  } catch (err) {
    if (!(err instanceof E.ThumbEncodeError)) throw err;
    return false;
  }
}

function binLo(e: Emitter, bin: BinOp, dst: Reg, a0: Reg, b0: Operand, countMask: 31 | 63): void {
  let a = a0;
  let b = lowOperand(e, b0);
  const ka = e.kv(a0, 0);
  if (ka !== undefined && !isImm(b) && (COMMUTES.has(bin) || bin === 'sub')) {
    if (bin === 'sub') {
      // k - x is RSB when k encodes.
      const rb = b.reg;
      const rsb = e.scope(() => {
        try {
          E.rsbImm(0, 0, ka | 0);
        } catch (err) {
          if (!(err instanceof E.ThumbEncodeError)) throw err;
          return false;
        }
        const d = e.dest(dst, 0);
        e.emit(E.rsbImm(d, e.lo(rb), ka | 0));
        e.commit(dst, 0, d);
        return true;
      });
      if (rsb) return;
    } else {
      a = b.reg;
      b = { imm: ka };
    }
  }
  e.scope(() => {
    const d = e.dest(dst, 0);
    const ra = e.lo(a);
    const dp = DP_OF[bin];
    const sh = SHIFT_OF[bin];
    if (dp !== undefined) {
      if (isImm(b)) {
        if (dpImmLoose(e, dp, d, ra, bin === 'and' ? widenMask(b.imm, e.loBound(a)) : b.imm)) e.setsZero(d);
      } else {
        e.emit(E.dpReg(dp, true, d, ra, e.lo(b.reg)));
        e.setsZero(d);
      }
    } else if (sh !== undefined) {
      if (isImm(b)) {
        const n = b.imm & countMask;
        if (n >= 32) e.emit(E.loadConst(d, 0));
        else if (n === 0) {
          if (d !== ra) e.emit(E.mov(d, ra));
        } else {
          e.emit(E.shiftImm(sh, true, d, ra, n));
          e.setsZero(d);
        }
      } else {
        // A count known to be in range needs no masking.
        if (e.loBound(b.reg) <= countMask) e.emit(E.shiftReg(sh, true, d, ra, e.lo(b.reg)));
        else {
          const t = e.tmp();
          e.emit(E.andsImm(t, e.lo(b.reg), countMask));
          e.emit(E.shiftReg(sh, true, d, ra, t));
        }
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
  // The low half alone when nothing reads the upper one (or every reader knows its value).
  if ((inst.hiDead || !e.live(dst, 1)) && LOW_ONLY.has(bin)) {
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
      if (isImm(b)) shift64Imm(e, bin, dst, a, b.imm & 63, inst.hiDead === true);
      else shift64Reg(e, bin, dst, a, b.reg, inst.hiDead === true);
      return;
    default:
      div64(e, bin, dst, a, b);
  }
}

/** The known value of an operand's half (an immediate's upper half is its sign). */
function operandKnown(e: Emitter, b: Operand, half: 0 | 1): number | undefined {
  if (isImm(b)) return half === 0 ? b.imm | 0 : (b.imm | 0) >> 31;
  return e.kv(b.reg, half);
}

/**
 * 64-bit division: when both upper halves are 0 (most divisions at run time), the 32-bit UDIV
 * path computes the same quotient or remainder for all four operations (both operands are then
 * non-negative as signed numbers too); otherwise the runtime's routine, out of line. Upper halves
 * known to be 0 need no test at run time.
 */
function div64(e: Emitter, bin: BinOp, dst: Reg, a: Reg, b: Operand): void {
  if (isImm(b) && (b.imm | 0) < 0) {
    div64Call(e, bin, dst, a, b);
    return;
  }
  const unsigned: BinOp = bin === 'sdiv' || bin === 'udiv' ? 'udiv' : 'urem';
  const ah = e.kv(a, 1);
  const bh = operandKnown(e, b, 1);
  if (ah === 0 && bh === 0) {
    binLo(e, unsigned, dst, a, b, 31);
    zeroHi(e, dst, false);
    return;
  }
  const slow = e.buf.label('div64_slow');
  const join = e.buf.label('div64_join');
  e.scope(() => {
    if (bh === 0) e.emit(E.cmpImm(e.hi(a), 0));
    else if (ah === 0) e.emit(E.cmpImm(e.hi((b as { reg: number }).reg), 0));
    else e.emit(E.orrs(e.tmp(), e.hi(a), e.hi((b as { reg: number }).reg)));
  });
  e.buf.bcond('ne', slow);
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
    const carryOp = op === 'add' ? 'adc' : 'sbc';
    const bh = isImm(b) ? hi : e.kv(b.reg, 1);
    const ah = e.kv(a, 1);
    if (bh !== undefined) dpImmOr(e, carryOp, false, d, e.hi(a), bh);
    else if (op === 'add' && ah !== undefined) dpImmOr(e, 'adc', false, d, e.hi((b as { reg: number }).reg), ah);
    else {
      const ra = e.hi(a);
      e.emit(E.dpReg(carryOp, false, d, ra, e.hi((b as { reg: number }).reg)));
    }
    e.commit(dst, 1, d);
  });
}

function logic64(e: Emitter, bin: 'and' | 'or' | 'xor', dst: Reg, a: Reg, b: Operand): void {
  const dp = DP_OF[bin] as E.DpOp;
  for (const half of [0, 1] as const) {
    if (!e.live(dst, half)) continue;
    let x = a;
    let k = operandKnown(e, b, half);
    let other: Reg | undefined = isImm(b) ? undefined : b.reg;
    const ka = e.kv(a, half);
    if (ka !== undefined && k === undefined && other !== undefined) {
      // The operation commutes: the known side becomes the immediate.
      x = other;
      other = a;
      k = ka;
    } else if (ka !== undefined && k !== undefined) {
      const v = bin === 'and' ? ka & k : bin === 'or' ? ka | k : ka ^ k;
      e.scope(() => e.setConst(dst, half, v));
      continue;
    }
    if (k !== undefined) {
      // Identities keep the upper half of a sign-extended immediate to a move or a constant.
      if ((bin === 'and' && k === -1) || (bin !== 'and' && k === 0)) {
        copyHalf(e, dst, half, x, half);
        continue;
      }
      if ((bin === 'and' && k === 0) || (bin === 'or' && k === -1)) {
        e.scope(() => e.setConst(dst, half, k as number));
        continue;
      }
      const kk = k;
      e.scope(() => {
        const d = e.dest(dst, half);
        if (bin === 'xor' && kk === -1) e.emit(E.mvn(d, e.read(x, half)));
        else dpImmLoose(e, dp, d, e.read(x, half), kk);
        e.commit(dst, half, d);
      });
      continue;
    }
    e.scope(() => {
      const d = e.dest(dst, half);
      const ra = e.read(a, half);
      e.emit(E.dpReg(dp, true, d, ra, e.read((b as { reg: number }).reg, half)));
      e.commit(dst, half, d);
    });
  }
}

/**
 * a * b mod 2^64 = UMULL(a.lo, b.lo) + ((a.lo * b.hi + a.hi * b.lo) << 32): the cross terms of
 * upper halves known to be 0 vanish (two zero-extended values need the UMULL alone), an upper
 * half of -1 subtracts a.lo and one that is a power of two is a shift. lr accumulates the cross
 * terms; operands without homes take scratch registers in the usual order (r12 first), so that a
 * multiply in a loop leaves the cache registers r10/r11 alone where it can.
 */
function mul64(e: Emitter, dst: Reg, a: Reg, b: Operand): void {
  const ah = e.kv(a, 1);
  const bh = operandKnown(e, b, 1);
  e.scope(() => {
    e.take(LR);
    // The register holding a half: its home, or a scratch loaded with its value.
    const val = (r: Reg, half: 0 | 1, into?: number): number =>
      (e.kv(r, half) === undefined ? e.home(r, half) : undefined) ?? e.read(r, half, into);
    const al = val(a, 0);
    const bl = isImm(b) ? e.constReg(b.imm | 0, true) : val(b.reg, 0);
    let x = false;
    if (bh === -1) {
      e.emit(E.rsbImm(LR, al, 0));
      x = true;
    } else if (bh !== undefined && bh !== 0 && (bh & (bh - 1)) === 0) {
      const k = 31 - Math.clz32(bh);
      e.emit(k === 0 ? E.mov(LR, al) : E.lslImm(LR, al, k));
      x = true;
    } else if (bh !== 0) {
      const bhr = bh !== undefined ? (e.emit(E.loadConst(LR, bh)), LR) : val((b as { reg: number }).reg, 1, LR);
      e.emit(E.mul(LR, al, bhr));
      x = true;
    }
    let ahr: number | undefined;
    if (ah !== 0) {
      ahr = val(a, 1);
      e.emit(x ? E.mla(LR, ahr, bl, LR) : E.mul(LR, ahr, bl));
      x = true;
    }
    // The product's halves: homes, else scratch operands that are dead by now (UMULL may overwrite its inputs).
    const spare = (r: number | undefined): number | undefined => (r !== undefined && e.isScratch(r) && r !== LR ? r : undefined);
    const dl = e.home(dst, 0) ?? spare(al) ?? e.tmp();
    const dh = (e.live(dst, 1) ? e.home(dst, 1) : undefined) ?? (spare(ahr) !== dl ? spare(ahr) : undefined) ?? e.tmp();
    e.emit(E.umull(dl, dh, al, bl));
    if (x) e.emit(E.add(dh, dh, LR));
    e.commit(dst, 0, dl);
    e.commit(dst, 1, dh);
  });
}

function shift64Imm(e: Emitter, bin: 'shl' | 'lshr' | 'ashr', dst: Reg, a: Reg, n: number, hiDead: boolean): void {
  if (n === 0) {
    copyHalf(e, dst, 0, a, 0);
    if (!hiDead) copyHalf(e, dst, 1, a, 1);
    return;
  }
  const shifted = (d: number, src: number, type: E.ShiftType, k: number): void => {
    if (k === 0) {
      if (d !== src) e.emit(E.mov(d, src));
    } else e.emit(E.shiftImm(type, true, d, src, k));
  };
  const ah = e.kv(a, 1);
  const al = e.kv(a, 0);
  if (bin === 'shl') {
    if (!hiDead && e.live(dst, 1)) {
      e.scope(() => {
        const d = e.dest(dst, 1);
        if (n >= 32) shifted(d, e.lo(a), 'lsl', n - 32);
        else if (ah === 0) e.emit(E.shiftImm('lsr', true, d, e.lo(a), 32 - n));
        else if (al === 0) shifted(d, e.hi(a), 'lsl', n);
        else {
          const ra = e.lo(a);
          shifted(d, e.hi(a), 'lsl', n);
          e.emit(E.orr(d, d, ra, { type: 'lsr', amount: 32 - n }));
        }
        e.commit(dst, 1, d);
      });
    }
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
  // An arithmetic shift of a known non-negative value is a logical one.
  const type: 'lshr' | 'ashr' = bin === 'ashr' && ah !== undefined && ah >= 0 ? 'lshr' : bin;
  const hiType: E.ShiftType = type === 'ashr' ? 'asr' : 'lsr';
  e.scope(() => {
    const d = e.dest(dst, 0);
    if (n < 32) {
      if (ah === 0) shifted(d, e.lo(a), 'lsr', n);
      else {
        const rh = e.hi(a);
        shifted(d, e.lo(a), 'lsr', n);
        e.emit(E.orr(d, d, rh, { type: 'lsl', amount: 32 - n }));
      }
    } else if (ah === 0) e.emit(E.loadConst(d, 0));
    else shifted(d, e.hi(a), hiType, n - 32);
    e.commit(dst, 0, d);
  });
  if (hiDead) return;
  e.scope(() => {
    if ((n >= 32 && type === 'lshr') || ah === 0) {
      e.setConst(dst, 1, 0);
      return;
    }
    if (!e.live(dst, 1)) return;
    const d = e.dest(dst, 1);
    shifted(d, e.hi(a), hiType, n >= 32 ? 31 : n);
    e.commit(dst, 1, d);
  });
}

/**
 * Shift by a register. ARM shifts by a register use the count's low byte and give 0 (or the sign)
 * from 32 on, so with c = count & 63:
 *   shl:  lo = lo << c, hi = hi << c | lo >> (32 - c) | lo << (c - 32)
 *   lshr: hi = hi >> c, lo = lo >> c | hi << (32 - c) | hi >> (c - 32)
 * where a "negative" count reads as a large byte and gives 0; ashr predicates its c >= 32 term,
 * since an arithmetic shift by a large count fills with the sign instead. An upper half known to be
 * 0 drops its terms.
 */
function shift64Reg(e: Emitter, bin: 'shl' | 'lshr' | 'ashr', dst: Reg, a: Reg, b: Reg, hiDead: boolean): void {
  const ah = e.kv(a, 1);
  const type: 'shl' | 'lshr' | 'ashr' = bin === 'ashr' && ah !== undefined && ah >= 0 ? 'lshr' : bin;
  const wide = { width: 'wide' as const };
  const wantHi = !hiDead && e.live(dst, 1);
  e.scope(() => {
    // A count already below 64 (known.ts) needs no masking.
    const bHome = e.kv(b, 0) === undefined ? e.home(b, 0) : undefined;
    const masked = bHome !== undefined && e.loBound(b) <= 63 && e.home(dst, 0) !== bHome && e.home(dst, 1) !== bHome;
    const c = masked ? bHome : e.tmp();
    if (!masked) e.scope(() => e.emit(E.andImm(c, e.lo(b), 63)));
    const t = e.tmp();
    if (type === 'shl') {
      const al = e.kv(a, 0);
      // A known a.lo (1 << n) is materialised once for both halves.
      const shared = al !== undefined && ah === 0 ? e.lo(a) : undefined;
      // The new upper half first: it reads both halves of a, the new lower half only a.lo.
      let nh: number | undefined;
      if (wantHi) {
        const h = e.home(dst, 1);
        const clash = [al === undefined ? e.home(a, 0) : undefined, ah === undefined ? e.home(a, 1) : undefined, c, bHome];
        // Without a free home, the new upper half of a known 0 or 1 (one term: lo << (c - 32))
        // is computed in t itself, leaving the cache registers alone.
        const single = ah === 0 && (al === 0 || al === 1) && shared !== undefined;
        nh = h !== undefined && !clash.includes(h) ? h : single ? t : e.tmp();
        const nhr = nh;
        let started = false;
        if (ah !== 0) {
          e.scope(() => e.emit(E.lsl(nhr, e.hi(a), c, wide)));
          started = true;
        }
        e.scope(() => {
          const ral = shared ?? e.lo(a);
          // lo >> (32 - c) is 0 for every count when lo is 0 or 1.
          if (al !== 0 && al !== 1) {
            e.emit(E.rsbImm(t, c, 32));
            if (!started) e.emit(E.lsr(nhr, ral, t, wide));
            else {
              e.emit(E.lsr(t, ral, t, wide));
              e.emit(E.orr(nhr, nhr, t));
            }
            started = true;
          }
          e.emit(E.subImm(t, c, 32));
          if (!started) e.emit(E.lsl(nhr, ral, t, wide));
          else {
            e.emit(E.lsl(t, ral, t, wide));
            e.emit(E.orr(nhr, nhr, t));
          }
        });
      }
      e.scope(() => {
        const ral = shared ?? e.lo(a);
        const d = e.home(dst, 0) ?? (e.isScratch(ral) ? ral : t);
        e.emit(E.lsl(d, ral, c, wide));
        e.commit(dst, 0, d);
      });
      if (nh !== undefined) e.commit(dst, 1, nh);
      else if (!hiDead) e.setConst(dst, 1, 0);
      return;
    }
    // dst.lo's home may be a.lo's (read first) but never a.hi's or the count's (already in c).
    const nl = e.home(dst, 0) ?? e.tmp();
    e.scope(() => e.emit(E.lsr(nl, e.lo(a), c, wide)));
    if (ah !== 0) {
      e.scope(() => {
        const rah = e.hi(a);
        e.emit(E.rsbImm(t, c, 32));
        e.emit(E.lsl(t, rah, t, wide));
        e.emit(E.orr(nl, nl, t));
        if (type === 'lshr') {
          e.emit(E.subImm(t, c, 32));
          e.emit(E.lsr(t, rah, t, wide));
          e.emit(E.orr(nl, nl, t));
        } else {
          // asr by a "negative" count would fill with the sign, so the c >= 32 term is predicated.
          e.emit(E.subsImm(t, c, 32));
          e.emit(E.it('pl', 't'));
          e.emit(E.asr(t, rah, t, { width: 'wide', inIT: true }));
          e.emit(E.orr(nl, nl, t, undefined, { width: 'wide', inIT: true }));
        }
        if (wantHi) {
          const d = e.home(dst, 1) ?? (e.isScratch(rah) ? rah : t);
          e.emit(type === 'lshr' ? E.lsr(d, rah, c, wide) : E.asr(d, rah, c, wide));
          e.commit(dst, 1, d);
        }
      });
    } else if (!hiDead) e.setConst(dst, 1, 0);
    e.commit(dst, 0, nl);
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

/** The outcome of a compare: an ARM condition after the emitted compare, or a fixed answer. */
export type CompareOutcome = E.Cond | 'always' | 'never';

/** Signed conditions become unsigned ones when the upper halves are equal. */
const LOW_UNSIGNED: Record<IrCond, E.Cond> = {
  eq: 'eq', ne: 'ne', ugt: 'hi', uge: 'hs', ult: 'lo', ule: 'ls', sgt: 'hi', sge: 'hs', slt: 'lo', sle: 'ls', set: 'ne',
};

/** The answer of a 64-bit compare decided by different known upper halves. */
function byUpperHalves(cond: IrCond, ah: number, bh: number): boolean {
  const u = (ah >>> 0) - (bh >>> 0);
  const s = ah - bh;
  switch (cond) {
    case 'eq': return false;
    case 'ne': return true;
    case 'ugt': case 'uge': return u > 0;
    case 'ult': case 'ule': return u < 0;
    case 'sgt': case 'sge': return s > 0;
    case 'slt': case 'sle': return s < 0;
    case 'set': return (ah & bh) !== 0;
  }
}

/**
 * Emits the compare of a `br` and returns the ARM condition under which the branch is taken (or
 * the fixed answer when known upper halves decide it). Uses only compare instructions and SBCS or
 * ORRS into a scratch.
 */
export function lowerCompare(e: Emitter, t: Br): CompareOutcome {
  const { cond, a, b } = t;
  const imm = isImm(b) ? b.imm | 0 : undefined;
  const cmpOp: E.CompareOp = cond === 'set' ? 'tst' : 'cmp';
  const lowOnly = (c: E.Cond): E.Cond => {
    const ra = e.lo(a);
    const lb = lowOperand(e, b);
    // Z already describes a.lo (the instruction that computed it set the flags).
    if (isImm(lb) && (lb.imm | 0) === 0 && cmpOp === 'cmp' && (c === 'eq' || c === 'ne') && e.zeroOf(ra)) return c;
    if (isImm(lb)) cmpImmOr(e, cmpOp, ra, lb.imm | 0);
    else e.emit(E.compare(cmpOp, ra, e.lo(lb.reg)));
    return c;
  };
  if (t.w === 32) return lowOnly(COND32[cond]);
  const ah = e.kv(a, 1);
  const bh = imm !== undefined ? imm >> 31 : e.kv((b as { reg: number }).reg, 1);
  if (ah !== undefined && bh !== undefined) {
    if (cond === 'set') return (ah & bh) !== 0 ? 'always' : lowOnly('ne');
    // Equal upper halves: the low halves decide, as unsigned numbers whatever the signedness.
    if (ah === bh) return lowOnly(LOW_UNSIGNED[cond]);
    return byUpperHalves(cond, ah, bh) ? 'always' : 'never';
  }
  const side = (half: 0 | 1): Side => {
    if (imm !== undefined) return prepared(e, cmpOp, half === 0 ? imm : imm >> 31);
    const r = (b as { reg: number }).reg;
    const k = e.kv(r, half);
    return k !== undefined ? prepared(e, cmpOp, k) : { reg: e.read(r, half) };
  };
  const inIT = { inIT: true };
  switch (cond) {
    case 'eq':
    case 'ne':
    case 'set': {
      if (cond !== 'set' && imm === 0) {
        // a == 0 is (lo | hi) == 0: ORRS into a scratch.
        const al = e.lo(a);
        const ahr = e.hi(a);
        e.emit(E.orrs(e.tmp(), al, ahr));
        return cond;
      }
      const al = e.lo(a);
      const ahr = e.hi(a);
      const bl = side(0);
      const bhs = side(1);
      cmpSide(e, cmpOp, al, bl);
      e.emit(E.it('eq'));
      cmpSide(e, cmpOp, ahr, bhs, inIT);
      return cond === 'eq' ? 'eq' : 'ne';
    }
    case 'ugt':
    case 'uge':
    case 'ult':
    case 'ule':
      return unsignedCompare64(e, cond, a, b);
    default:
      return signedCompare64(e, cond, a, b);
  }
}

/**
 * a - b over 64 bits with CMP on the low halves and SBCS on the upper ones: C is set exactly when
 * a >= b. a > b is b < a (swapped registers) or a >= k + 1 (constants); a <= b likewise.
 */
function unsignedCompare64(e: Emitter, cond: 'ugt' | 'uge' | 'ult' | 'ule', a: Reg, b: Operand): CompareOutcome {
  if (isImm(b)) {
    let k = BigInt.asUintN(64, BigInt(b.imm | 0));
    const geq = cond === 'uge' || cond === 'ugt';
    if (cond === 'ugt' || cond === 'ule') {
      k += 1n;
      if (k === 1n << 64n) return cond === 'ugt' ? 'never' : 'always';
    }
    if (k === 0n) return geq ? 'always' : 'never';
    const klo = Number(BigInt.asIntN(32, k));
    const khi = Number(BigInt.asIntN(32, k >> 32n));
    e.scope(() => cmpImmOr(e, 'cmp', e.lo(a), klo));
    e.scope(() => {
      const ahr = e.hi(a);
      dpImmOr(e, 'sbc', true, e.tmp(), ahr, khi);
    });
    return geq ? 'hs' : 'lo';
  }
  const swap = cond === 'ugt' || cond === 'ule';
  const [x, y] = swap ? [b.reg, a] : [a, b.reg];
  e.scope(() => {
    const xl = e.lo(x);
    e.emit(E.cmp(xl, e.lo(y)));
  });
  e.scope(() => {
    const xh = e.hi(x);
    const ky = e.kv(y, 1);
    if (ky !== undefined) dpImmOr(e, 'sbc', true, e.tmp(), xh, ky);
    else e.emit(E.sbcs(e.tmp(), xh, e.hi(y)));
  });
  // x < y: a < b (ult) or b < a (ugt); x >= y: a >= b (uge) or b >= a (ule).
  return cond === 'ult' || cond === 'ugt' ? 'lo' : 'hs';
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
    const ky = e.kv(y, 1);
    if (ky !== undefined) dpImmOr(e, 'sbc', true, e.tmp(), xh, ky);
    else e.emit(E.sbcs(e.tmp(), xh, e.hi(y)));
  });
  return cond === 'slt' || cond === 'sgt' ? 'lt' : 'ge';
}
