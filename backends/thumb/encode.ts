// ARMv7-M Thumb-2 instruction encoder (Cortex-M3/M4/M7, integer only). Each function returns the
// instruction as one or two halfwords, in the order they are stored (first halfword at the lower
// address, each little-endian). A function picks the 16-bit form when the operands and the flag
// semantics allow it, unless `width` says otherwise; anything it cannot encode exactly throws a
// ThumbEncodeError naming the instruction and the operand, never a truncated encoding.
//
// Flag semantics are part of the name: `adds` sets flags, `add` must not. Most 16-bit ALU forms set
// flags outside an IT block and do not inside one, so they serve `adds` outside an IT block and
// `add` inside one (`inIT: true`); forms that never set flags (ADD/MOV with high registers, SP
// arithmetic) serve the non-S names anywhere.
//
// Branch offsets are relative to the branch's own address + 4 (the Thumb PC); LDR literal offsets
// are relative to that PC rounded down to a multiple of 4. asm-buffer.ts computes both from labels.
import { encodeModifiedImm, placeModifiedImm } from './imm.js';

/** r0..r15; 13 = sp, 14 = lr, 15 = pc. */
export type Reg = number;
/** One instruction: one halfword (16-bit form) or two (32-bit form, first halfword first). */
export type Halfwords = number[];
export type Cond =
  | 'eq' | 'ne' | 'cs' | 'hs' | 'cc' | 'lo' | 'mi' | 'pl'
  | 'vs' | 'vc' | 'hi' | 'ls' | 'ge' | 'lt' | 'gt' | 'le' | 'al';
export type ShiftType = 'lsl' | 'lsr' | 'asr' | 'ror';
/** Shift of a register operand: lsl #0..31, lsr/asr #1..32, ror #1..31. */
export interface Shift {
  type: ShiftType;
  amount: number;
}
/** 'narrow' demands the 16-bit form (throws if there is none), 'wide' the 32-bit one. */
export type Width = 'narrow' | 'wide';
export interface EncodeOptions {
  /** Default: the 16-bit form when one fits, else the 32-bit one. */
  width?: Width;
  /** The instruction sits inside an IT block, where 16-bit ALU forms do not set flags. */
  inIT?: boolean;
}
/** Data-processing operations with a first register operand (Rd = Rn op operand2). */
export type DpOp = 'and' | 'bic' | 'orr' | 'orn' | 'eor' | 'add' | 'adc' | 'sbc' | 'sub' | 'rsb';
export type CompareOp = 'cmp' | 'cmn' | 'tst' | 'teq';
export type MemOp = 'ldr' | 'ldrb' | 'ldrh' | 'ldrsb' | 'ldrsh' | 'str' | 'strb' | 'strh';
/** 'offset': [Rn, #off]; 'pre': [Rn, #off]! ; 'post': [Rn], #off. */
export type IndexMode = 'offset' | 'pre' | 'post';
export interface MemOptions extends EncodeOptions {
  index?: IndexMode;
}
export interface MultipleOptions extends EncodeOptions {
  /** Update the base register (Rn!). Default true. */
  writeback?: boolean;
  /** Increment after (default) or decrement before. */
  mode?: 'ia' | 'db';
}
export type ExtendOp = 'sxtb' | 'sxth' | 'uxtb' | 'uxth';
export type SpecialReg =
  | 'apsr' | 'iapsr' | 'eapsr' | 'xpsr' | 'ipsr' | 'epsr' | 'iepsr'
  | 'msp' | 'psp' | 'primask' | 'basepri' | 'basepri_max' | 'faultmask' | 'control';

/** An operand or form the encoder cannot express. The message names the instruction and operand. */
export class ThumbEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ThumbEncodeError';
  }
}

export const SP: Reg = 13;
export const LR: Reg = 14;
export const PC: Reg = 15;

const REG_NAMES = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11', 'r12', 'sp', 'lr', 'pc'];

export function regName(r: Reg): string {
  return REG_NAMES[r] ?? `r${String(r)}`;
}

const COND: Record<Cond, number> = {
  eq: 0, ne: 1, cs: 2, hs: 2, cc: 3, lo: 3, mi: 4, pl: 5,
  vs: 6, vc: 7, hi: 8, ls: 9, ge: 10, lt: 11, gt: 12, le: 13, al: 14,
};
const COND_BY_CODE: readonly Cond[] = ['eq', 'ne', 'hs', 'lo', 'mi', 'pl', 'vs', 'vc', 'hi', 'ls', 'ge', 'lt', 'gt', 'le', 'al'];

export function condCode(cond: Cond): number {
  const c = COND[cond];
  if (c === undefined) throw new ThumbEncodeError(`unknown condition '${String(cond)}'`);
  return c;
}

/** The condition that holds exactly when `cond` does not ('al' has none). */
export function invertCond(cond: Cond): Cond {
  const c = condCode(cond);
  if (c === 14) throw new ThumbEncodeError(`condition 'al' has no inverse`);
  return COND_BY_CODE[c ^ 1];
}

// ---------------------------------------------------------------------------------------------
// Operand checks

function fail(mn: string, msg: string): never {
  throw new ThumbEncodeError(`${mn}: ${msg}`);
}

const hex = (v: number): string => (v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`);

function checkReg(mn: string, role: string, r: Reg): void {
  if (!Number.isInteger(r) || r < 0 || r > 15) fail(mn, `${role} register ${String(r)} is not r0..r15`);
}

function noPC(mn: string, role: string, r: Reg): void {
  checkReg(mn, role, r);
  if (r === PC) fail(mn, `${role} register cannot be pc`);
}

/** ARM's BadReg(): sp and pc are not general-purpose operands in most 32-bit forms. */
function noSPPC(mn: string, role: string, r: Reg): void {
  checkReg(mn, role, r);
  if (r === SP || r === PC) fail(mn, `${role} register cannot be ${regName(r)}`);
}

function checkImm(mn: string, what: string, v: number, min: number, max: number, step = 1): void {
  if (!Number.isInteger(v)) fail(mn, `${what} ${String(v)} is not an integer`);
  if (v < min || v > max) fail(mn, `${what} ${v} out of range ${min}..${max}`);
  if (v % step !== 0) fail(mn, `${what} ${v} is not a multiple of ${step}`);
}

function check32(mn: string, v: number): number {
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) {
    fail(mn, `constant ${String(v)} is not a 32-bit integer`);
  }
  return v >>> 0;
}

const isLow = (r: Reg): boolean => r < 8;

/** Narrow ALU forms set flags exactly when outside an IT block. */
const narrowFlagsMatch = (setFlags: boolean, opts?: EncodeOptions): boolean => setFlags === !(opts?.inIT ?? false);

function choose(mn: string, opts: EncodeOptions | undefined, narrow: number | null, wide: () => Halfwords): Halfwords {
  if (opts?.width === 'narrow') {
    if (narrow === null) fail(mn, 'no 16-bit encoding for these operands');
    return [narrow];
  }
  if (opts?.width !== 'wide' && narrow !== null) return [narrow];
  return wide();
}

function wideOnly(mn: string, opts: EncodeOptions | undefined): void {
  if (opts?.width === 'narrow') fail(mn, 'no 16-bit encoding exists');
}

const SHIFT: Record<ShiftType, { code: number; min: number; max: number }> = {
  lsl: { code: 0, min: 0, max: 31 },
  lsr: { code: 1, min: 1, max: 32 },
  asr: { code: 2, min: 1, max: 32 },
  ror: { code: 3, min: 1, max: 31 },
};

/** imm3:imm2:type bits of the second halfword of a shifted-register form. */
function shiftBits(mn: string, shift: Shift | undefined): number {
  if (shift === undefined) return 0;
  const s = SHIFT[shift.type];
  if (s === undefined) fail(mn, `unknown shift type '${String(shift.type)}'`);
  checkImm(mn, `${shift.type} amount`, shift.amount, s.min, s.max);
  const imm5 = shift.amount & 31;
  return ((imm5 >> 2) << 12) | ((imm5 & 3) << 6) | (s.code << 4);
}

const noShift = (shift: Shift | undefined): boolean => shift === undefined || (shift.type === 'lsl' && shift.amount === 0);

function modImm(hw1: number, hw2: number, imm12: number): Halfwords {
  const p = placeModifiedImm(imm12);
  return [hw1 | p.hw1, hw2 | p.hw2];
}

/** Plain 12-bit (ADDW/SUBW) or the low 12 bits of a 16-bit (MOVW/MOVT) immediate: i:imm3:imm8. */
function plainImm12(hw1: number, hw2: number, imm: number): Halfwords {
  return [hw1 | (((imm >> 11) & 1) << 10), hw2 | (((imm >> 8) & 7) << 12) | (imm & 0xff)];
}

// ---------------------------------------------------------------------------------------------
// Data processing

interface DpInfo {
  /** op field of the 32-bit forms (bits 24..21 of the instruction). */
  op: number;
  /** opcode of the 16-bit two-register form 010000 opc Rm Rdn, if any. */
  narrow?: number;
  commutative: boolean;
}

const DP: Record<DpOp, DpInfo> = {
  and: { op: 0, narrow: 0x0, commutative: true },
  bic: { op: 1, narrow: 0xe, commutative: false },
  orr: { op: 2, narrow: 0xc, commutative: true },
  orn: { op: 3, commutative: false },
  eor: { op: 4, narrow: 0x1, commutative: true },
  add: { op: 8, commutative: true },
  adc: { op: 10, narrow: 0x5, commutative: true },
  sbc: { op: 11, narrow: 0x6, commutative: false },
  sub: { op: 13, commutative: false },
  rsb: { op: 14, commutative: false },
};

function dpInfo(op: DpOp): DpInfo {
  const info = DP[op];
  if (info === undefined) throw new ThumbEncodeError(`unknown data-processing operation '${String(op)}'`);
  return info;
}

/** Rd = Rn op (Rm shifted). ADD/SUB accept Rn = sp (then Rd may be sp); ADD Rdn, Rm takes any regs. */
export function dpReg(op: DpOp, setFlags: boolean, rd: Reg, rn: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions): Halfwords {
  const info = dpInfo(op);
  const mn = `${op}${setFlags ? 's' : ''}`;
  noPC(mn, 'destination', rd);
  noPC(mn, 'first operand', rn);
  noPC(mn, 'second operand', rm);
  const sh = shiftBits(mn, shift);
  let narrow: number | null = null;
  if (noShift(shift)) {
    const allLow = isLow(rd) && isLow(rn) && isLow(rm);
    const flagsOk = narrowFlagsMatch(setFlags, opts);
    if ((op === 'add' || op === 'sub') && allLow && flagsOk) {
      narrow = (op === 'add' ? 0x1800 : 0x1a00) | (rm << 6) | (rn << 3) | rd;
    } else if (op === 'add' && !setFlags && (rd === rn || rd === rm)) {
      const other = rd === rn ? rm : rn;
      narrow = 0x4400 | ((rd >> 3) << 7) | (other << 3) | (rd & 7);
    } else if (info.narrow !== undefined && allLow && flagsOk) {
      if (rd === rn) narrow = 0x4000 | (info.narrow << 6) | (rm << 3) | rd;
      else if (info.commutative && rd === rm) narrow = 0x4000 | (info.narrow << 6) | (rn << 3) | rd;
    }
  }
  return choose(mn, opts, narrow, () => {
    const w = `${mn}.w`;
    if ((op === 'add' || op === 'sub') && rn === SP) {
      noSPPC(w, 'second operand', rm);
      if (rd === SP && !(shift === undefined || (shift.type === 'lsl' && shift.amount <= 3))) {
        fail(w, 'with destination sp the shift must be lsl #0..3');
      }
    } else {
      noSPPC(w, 'destination', rd);
      noSPPC(w, 'first operand', rn);
      noSPPC(w, 'second operand', rm);
    }
    return [0xea00 | (info.op << 5) | (Number(setFlags) << 4) | rn, sh | (rd << 8) | rm];
  });
}

interface DpVariant {
  op: DpOp;
  imm: number;
}

/**
 * Other operations computing the same result (and, for adc/sbc, the same flags) with a different
 * constant, so a constant that does not encode for one may encode for its twin.
 */
function immVariants(op: DpOp, setFlags: boolean, u: number): DpVariant[] {
  const out: DpVariant[] = [{ op, imm: u }];
  const neg = (-u) >>> 0;
  const inv = ~u >>> 0;
  if (op === 'adc') out.push({ op: 'sbc', imm: inv });
  if (op === 'sbc') out.push({ op: 'adc', imm: inv });
  if (setFlags) return out; // the others change the carry flag
  if (op === 'add') out.push({ op: 'sub', imm: neg });
  if (op === 'sub') out.push({ op: 'add', imm: neg });
  if (op === 'and') out.push({ op: 'bic', imm: inv });
  if (op === 'bic') out.push({ op: 'and', imm: inv });
  if (op === 'orr') out.push({ op: 'orn', imm: inv });
  if (op === 'orn') out.push({ op: 'orr', imm: inv });
  return out;
}

function narrowDpImm(v: DpVariant, setFlags: boolean, rd: Reg, rn: Reg, opts?: EncodeOptions): number | null {
  const { op, imm } = v;
  const flagsOk = narrowFlagsMatch(setFlags, opts);
  if (op === 'add' || op === 'sub') {
    const sub = op === 'sub';
    if (flagsOk && isLow(rd) && isLow(rn) && imm <= 7) return (sub ? 0x1e00 : 0x1c00) | (imm << 6) | (rn << 3) | rd;
    if (flagsOk && isLow(rd) && rd === rn && imm <= 255) return (sub ? 0x3800 : 0x3000) | (rd << 8) | imm;
    if (!setFlags && rn === SP && imm % 4 === 0) {
      if (!sub && isLow(rd) && imm <= 1020) return 0xa800 | (rd << 8) | (imm >> 2);
      if (rd === SP && imm <= 508) return (sub ? 0xb080 : 0xb000) | (imm >> 2);
    }
  }
  if (op === 'rsb' && flagsOk && imm === 0 && isLow(rd) && isLow(rn)) return 0x4240 | (rn << 3) | rd;
  return null;
}

function wideDpImm(v: DpVariant, setFlags: boolean, rd: Reg, rn: Reg): Halfwords | null {
  const { op, imm } = v;
  const m = encodeModifiedImm(imm);
  if (m !== null) return modImm(0xf000 | (DP[op].op << 5) | (Number(setFlags) << 4) | rn, rd << 8, m);
  if (!setFlags && (op === 'add' || op === 'sub') && imm <= 4095) return plainImm12(op === 'add' ? 0xf200 | rn : 0xf2a0 | rn, rd << 8, imm);
  return null;
}

/**
 * Rd = Rn op #imm (imm read as 32 bits; negative numbers allowed). ADD/SUB take Rn = sp and, when
 * not setting flags, a plain 0..4095 (ADDW/SUBW). A constant that does not encode is retried as
 * the equivalent twin operation (add/sub -imm, and/bic ~imm, orr/orn ~imm, adc/sbc ~imm) when the
 * result and the flags it sets stay the same.
 */
export function dpImm(op: DpOp, setFlags: boolean, rd: Reg, rn: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  dpInfo(op);
  const mn = `${op}${setFlags ? 's' : ''}`;
  noPC(mn, 'destination', rd);
  noPC(mn, 'first operand', rn);
  const variants = immVariants(op, setFlags, check32(mn, imm));
  let narrow: number | null = null;
  for (const v of variants) {
    narrow ??= narrowDpImm(v, setFlags, rd, rn, opts);
  }
  return choose(mn, opts, narrow, () => {
    const w = `${mn}.w`;
    if ((op === 'add' || op === 'sub') && rn === SP) {
      checkReg(w, 'destination', rd);
    } else {
      noSPPC(w, 'destination', rd);
      noSPPC(w, 'first operand', rn);
    }
    for (const v of variants) {
      const enc = wideDpImm(v, setFlags, rd, rn);
      if (enc !== null) return enc;
    }
    const alt = !setFlags && (op === 'add' || op === 'sub') ? ' nor 0..4095' : '';
    return fail(w, `immediate ${hex(imm)} is not a modified immediate${alt}`);
  });
}

type RegForm = (rd: Reg, rn: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions) => Halfwords;
type ImmForm = (rd: Reg, rn: Reg, imm: number, opts?: EncodeOptions) => Halfwords;
const regForm = (op: DpOp, s: boolean): RegForm => (rd, rn, rm, shift, opts) => dpReg(op, s, rd, rn, rm, shift, opts);
const immForm = (op: DpOp, s: boolean): ImmForm => (rd, rn, imm, opts) => dpImm(op, s, rd, rn, imm, opts);

export const add = regForm('add', false);
export const adds = regForm('add', true);
export const adc = regForm('adc', false);
export const adcs = regForm('adc', true);
export const sub = regForm('sub', false);
export const subs = regForm('sub', true);
export const sbc = regForm('sbc', false);
export const sbcs = regForm('sbc', true);
export const rsb = regForm('rsb', false);
export const rsbs = regForm('rsb', true);
export const and = regForm('and', false);
export const ands = regForm('and', true);
export const orr = regForm('orr', false);
export const orrs = regForm('orr', true);
export const eor = regForm('eor', false);
export const eors = regForm('eor', true);
export const bic = regForm('bic', false);
export const bics = regForm('bic', true);
export const orn = regForm('orn', false);
export const orns = regForm('orn', true);
export const addImm = immForm('add', false);
export const addsImm = immForm('add', true);
export const adcImm = immForm('adc', false);
export const adcsImm = immForm('adc', true);
export const subImm = immForm('sub', false);
export const subsImm = immForm('sub', true);
export const sbcImm = immForm('sbc', false);
export const sbcsImm = immForm('sbc', true);
export const rsbImm = immForm('rsb', false);
export const rsbsImm = immForm('rsb', true);
export const andImm = immForm('and', false);
export const andsImm = immForm('and', true);
export const orrImm = immForm('orr', false);
export const orrsImm = immForm('orr', true);
export const eorImm = immForm('eor', false);
export const eorsImm = immForm('eor', true);
export const bicImm = immForm('bic', false);
export const bicsImm = immForm('bic', true);
export const ornImm = immForm('orn', false);
export const ornsImm = immForm('orn', true);

function plainAddSub(mn: string, hw1: number, rd: Reg, rn: Reg, imm: number): Halfwords {
  noPC(mn, 'first operand', rn);
  if (rn === SP) noPC(mn, 'destination', rd);
  else {
    noSPPC(mn, 'destination', rd);
    noSPPC(mn, 'first operand', rn);
  }
  checkImm(mn, 'immediate', imm, 0, 4095);
  return plainImm12(hw1 | rn, rd << 8, imm);
}

/** ADDW Rd, Rn, #0..4095 (always 32-bit, no flags; Rn may be sp). */
export const addw = (rd: Reg, rn: Reg, imm: number): Halfwords => plainAddSub('addw', 0xf200, rd, rn, imm);
/** SUBW Rd, Rn, #0..4095 (always 32-bit, no flags; Rn may be sp). */
export const subw = (rd: Reg, rn: Reg, imm: number): Halfwords => plainAddSub('subw', 0xf2a0, rd, rn, imm);

/** MOV Rd, Rm without flags: the 16-bit form takes any registers except pc. */
export function mov(rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  noPC('mov', 'destination', rd);
  noPC('mov', 'source', rm);
  return choose('mov', opts, 0x4600 | ((rd >> 3) << 7) | (rm << 3) | (rd & 7), () => {
    if (rd === SP && rm === SP) fail('mov.w', 'destination and source cannot both be sp');
    return [0xea4f, (rd << 8) | rm];
  });
}

export function movs(rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  noSPPC('movs', 'destination', rd);
  noSPPC('movs', 'source', rm);
  const narrow = isLow(rd) && isLow(rm) && narrowFlagsMatch(true, opts) ? (rm << 3) | rd : null;
  return choose('movs', opts, narrow, () => [0xea5f, (rd << 8) | rm]);
}

function movImmWide(rd: Reg, u: number): Halfwords | null {
  const m = encodeModifiedImm(u);
  if (m !== null) return modImm(0xf04f, rd << 8, m);
  if (u <= 0xffff) return movw(rd, u);
  const n = encodeModifiedImm(~u >>> 0);
  if (n !== null) return modImm(0xf06f, rd << 8, n);
  return null;
}

/** MOV Rd, #imm without flags: MOV.W modified immediate, MOVW, or MVN of the complement. */
export function movImm(rd: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  noSPPC('mov', 'destination', rd);
  const u = check32('mov', imm);
  const narrow = isLow(rd) && u <= 255 && narrowFlagsMatch(false, opts) ? 0x2000 | (rd << 8) | u : null;
  return choose('mov', opts, narrow, () => movImmWide(rd, u) ?? fail('mov.w', `immediate ${hex(u)} is neither a modified immediate, 0..0xffff nor the complement of a modified immediate (use loadConst)`));
}

export function movsImm(rd: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  noSPPC('movs', 'destination', rd);
  const u = check32('movs', imm);
  const narrow = isLow(rd) && u <= 255 && narrowFlagsMatch(true, opts) ? 0x2000 | (rd << 8) | u : null;
  return choose('movs', opts, narrow, () => {
    const m = encodeModifiedImm(u);
    if (m === null) fail('movs.w', `immediate ${hex(u)} is not a modified immediate`);
    return modImm(0xf05f, rd << 8, m);
  });
}

function mvnReg(setFlags: boolean, rd: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions): Halfwords {
  const mn = setFlags ? 'mvns' : 'mvn';
  noSPPC(mn, 'destination', rd);
  noSPPC(mn, 'source', rm);
  const sh = shiftBits(mn, shift);
  const narrow = noShift(shift) && isLow(rd) && isLow(rm) && narrowFlagsMatch(setFlags, opts) ? 0x43c0 | (rm << 3) | rd : null;
  return choose(mn, opts, narrow, () => [0xea6f | (Number(setFlags) << 4), sh | (rd << 8) | rm]);
}

export function mvn(rd: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions): Halfwords {
  return mvnReg(false, rd, rm, shift, opts);
}

export function mvns(rd: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions): Halfwords {
  return mvnReg(true, rd, rm, shift, opts);
}

/** MVN Rd, #imm (32-bit only); without flags a non-encodable constant falls back to MOV of ~imm. */
export function mvnImm(rd: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  wideOnly('mvn', opts);
  noSPPC('mvn', 'destination', rd);
  const u = check32('mvn', imm);
  const m = encodeModifiedImm(u);
  if (m !== null) return modImm(0xf06f, rd << 8, m);
  const n = encodeModifiedImm(~u >>> 0);
  if (n !== null) return modImm(0xf04f, rd << 8, n);
  return fail('mvn', `immediate ${hex(u)} is not a modified immediate`);
}

export function mvnsImm(rd: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  wideOnly('mvns', opts);
  noSPPC('mvns', 'destination', rd);
  const m = encodeModifiedImm(check32('mvns', imm));
  if (m === null) fail('mvns', `immediate ${hex(imm)} is not a modified immediate`);
  return modImm(0xf07f, rd << 8, m);
}

/** MOVW Rd, #0..0xffff (zero-extends). */
export function movw(rd: Reg, imm: number): Halfwords {
  noSPPC('movw', 'destination', rd);
  checkImm('movw', 'immediate', imm, 0, 0xffff);
  return plainImm12(0xf240 | (imm >> 12), rd << 8, imm & 0xfff);
}

/** MOVT Rd, #0..0xffff (writes the top half, keeps the bottom). */
export function movt(rd: Reg, imm: number): Halfwords {
  noSPPC('movt', 'destination', rd);
  checkImm('movt', 'immediate', imm, 0, 0xffff);
  return plainImm12(0xf2c0 | (imm >> 12), rd << 8, imm & 0xfff);
}

export interface LoadConstOptions {
  /** Do not use MOVS (the only 2-byte form, which sets N and Z). */
  preserveFlags?: boolean;
}

/**
 * The shortest sequence leaving `value` (read as 32 bits) in Rd: MOVS #imm8 (2 bytes, unless flags
 * must be preserved), MOV.W / MVN modified immediate or MOVW (4), else MOVW + MOVT (8). Only MOVS
 * touches flags.
 */
export function loadConst(rd: Reg, value: number, opts?: LoadConstOptions): Halfwords {
  noSPPC('loadConst', 'destination', rd);
  const u = check32('loadConst', value);
  if (!opts?.preserveFlags && isLow(rd) && u <= 255) return [0x2000 | (rd << 8) | u];
  return movImmWide(rd, u) ?? [...movw(rd, u & 0xffff), ...movt(rd, u >>> 16)];
}

const CMP: Record<CompareOp, { reg: number; imm: number; narrow?: number; spOk: boolean }> = {
  tst: { reg: 0xea10, imm: 0xf010, narrow: 0x4200, spOk: false },
  teq: { reg: 0xea90, imm: 0xf090, spOk: false },
  cmn: { reg: 0xeb10, imm: 0xf110, narrow: 0x42c0, spOk: true },
  cmp: { reg: 0xebb0, imm: 0xf1b0, narrow: 0x4280, spOk: true },
};

/** CMP/CMN/TST/TEQ Rn, Rm{, shift}: flags only. */
export function compare(op: CompareOp, rn: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions): Halfwords {
  const info = CMP[op];
  if (info === undefined) throw new ThumbEncodeError(`unknown compare operation '${String(op)}'`);
  noPC(op, 'first operand', rn);
  noPC(op, 'second operand', rm);
  const sh = shiftBits(op, shift);
  let narrow: number | null = null;
  if (noShift(shift)) {
    if (info.narrow !== undefined && isLow(rn) && isLow(rm)) narrow = info.narrow | (rm << 3) | rn;
    else if (op === 'cmp') narrow = 0x4500 | ((rn >> 3) << 7) | (rm << 3) | (rn & 7);
  }
  return choose(op, opts, narrow, () => {
    const w = `${op}.w`;
    if (info.spOk) noPC(w, 'first operand', rn);
    else noSPPC(w, 'first operand', rn);
    noSPPC(w, 'second operand', rm);
    return [info.reg | rn, 0x0f00 | sh | rm];
  });
}

/** CMP/CMN/TST/TEQ Rn, #imm. CMP and CMN swap (negating imm) when that encodes and sets the same flags. */
export function compareImm(op: CompareOp, rn: Reg, imm: number, opts?: EncodeOptions): Halfwords {
  const info = CMP[op];
  if (info === undefined) throw new ThumbEncodeError(`unknown compare operation '${String(op)}'`);
  noPC(op, 'first operand', rn);
  const u = check32(op, imm);
  const variants: Array<{ op: CompareOp; imm: number }> = [{ op, imm: u }];
  // cmp x, #k and cmn x, #-k differ only in the flags for k = 0 and k = 0x80000000.
  if ((op === 'cmp' || op === 'cmn') && u !== 0 && u !== 0x8000_0000) {
    variants.push({ op: op === 'cmp' ? 'cmn' : 'cmp', imm: (-u) >>> 0 });
  }
  const nv = variants.find((v) => v.op === 'cmp' && isLow(rn) && v.imm <= 255);
  const narrow = nv !== undefined ? 0x2800 | (rn << 8) | nv.imm : null;
  return choose(op, opts, narrow, () => {
    const w = `${op}.w`;
    if (!info.spOk) noSPPC(w, 'first operand', rn);
    for (const v of variants) {
      const m = encodeModifiedImm(v.imm);
      if (m !== null) return modImm(CMP[v.op].imm | rn, 0x0f00, m);
    }
    return fail(w, `immediate ${hex(u)} is not a modified immediate`);
  });
}

type CmpReg = (rn: Reg, rm: Reg, shift?: Shift, opts?: EncodeOptions) => Halfwords;
type CmpImm = (rn: Reg, imm: number, opts?: EncodeOptions) => Halfwords;
const cmpReg = (op: CompareOp): CmpReg => (rn, rm, shift, opts) => compare(op, rn, rm, shift, opts);
const cmpImmForm = (op: CompareOp): CmpImm => (rn, imm, opts) => compareImm(op, rn, imm, opts);
export const cmp = cmpReg('cmp');
export const cmn = cmpReg('cmn');
export const tst = cmpReg('tst');
export const teq = cmpReg('teq');
export const cmpImm = cmpImmForm('cmp');
export const cmnImm = cmpImmForm('cmn');
export const tstImm = cmpImmForm('tst');
export const teqImm = cmpImmForm('teq');

// ---------------------------------------------------------------------------------------------
// Shifts

const NARROW_SHIFT_IMM: Partial<Record<ShiftType, number>> = { lsl: 0x0000, lsr: 0x0800, asr: 0x1000 };
const NARROW_SHIFT_REG: Record<ShiftType, number> = { lsl: 0x4080, lsr: 0x40c0, asr: 0x4100, ror: 0x41c0 };

/** Rd = Rm shifted by #n (LSL #0 is a MOV, shown as one by disassemblers). */
export function shiftImm(type: ShiftType, setFlags: boolean, rd: Reg, rm: Reg, n: number, opts?: EncodeOptions): Halfwords {
  const mn = `${type}${setFlags ? 's' : ''}`;
  noSPPC(mn, 'destination', rd);
  noSPPC(mn, 'source', rm);
  const sh = shiftBits(mn, { type, amount: n });
  const base = NARROW_SHIFT_IMM[type];
  const narrow = base !== undefined && isLow(rd) && isLow(rm) && narrowFlagsMatch(setFlags, opts) ? base | ((n & 31) << 6) | (rm << 3) | rd : null;
  return choose(mn, opts, narrow, () => [0xea4f | (Number(setFlags) << 4), sh | (rd << 8) | rm]);
}

/** Rd = Rn shifted by Rm (bottom byte). */
export function shiftReg(type: ShiftType, setFlags: boolean, rd: Reg, rn: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  const mn = `${type}${setFlags ? 's' : ''}`;
  const s = SHIFT[type];
  if (s === undefined) throw new ThumbEncodeError(`unknown shift type '${String(type)}'`);
  noSPPC(mn, 'destination', rd);
  noSPPC(mn, 'first operand', rn);
  noSPPC(mn, 'shift register', rm);
  const narrow = rd === rn && isLow(rd) && isLow(rm) && narrowFlagsMatch(setFlags, opts) ? NARROW_SHIFT_REG[type] | (rm << 3) | rd : null;
  return choose(mn, opts, narrow, () => [0xfa00 | (s.code << 5) | (Number(setFlags) << 4) | rn, 0xf000 | (rd << 8) | rm]);
}

type ShImm = (rd: Reg, rm: Reg, n: number, opts?: EncodeOptions) => Halfwords;
type ShReg = (rd: Reg, rn: Reg, rm: Reg, opts?: EncodeOptions) => Halfwords;
const shImm = (t: ShiftType, s: boolean): ShImm => (rd, rm, n, opts) => shiftImm(t, s, rd, rm, n, opts);
const shReg = (t: ShiftType, s: boolean): ShReg => (rd, rn, rm, opts) => shiftReg(t, s, rd, rn, rm, opts);
export const lsl = shReg('lsl', false);
export const lsls = shReg('lsl', true);
export const lsr = shReg('lsr', false);
export const lsrs = shReg('lsr', true);
export const asr = shReg('asr', false);
export const asrs = shReg('asr', true);
export const ror = shReg('ror', false);
export const rors = shReg('ror', true);
export const lslImm = shImm('lsl', false);
export const lslsImm = shImm('lsl', true);
export const lsrImm = shImm('lsr', false);
export const lsrsImm = shImm('lsr', true);
export const asrImm = shImm('asr', false);
export const asrsImm = shImm('asr', true);
export const rorImm = shImm('ror', false);
export const rorsImm = shImm('ror', true);

// ---------------------------------------------------------------------------------------------
// Multiply and divide

function regs3(mn: string, rd: Reg, rn: Reg, rm: Reg): void {
  noSPPC(mn, 'destination', rd);
  noSPPC(mn, 'first operand', rn);
  noSPPC(mn, 'second operand', rm);
}

/** MUL Rd, Rn, Rm without flags: 32-bit, or the 16-bit MULS form inside an IT block. */
export function mul(rd: Reg, rn: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  regs3('mul', rd, rn, rm);
  return choose('mul', opts, narrowMul(false, rd, rn, rm, opts), () => [0xfb00 | rn, 0xf000 | (rd << 8) | rm]);
}

function narrowMul(setFlags: boolean, rd: Reg, rn: Reg, rm: Reg, opts?: EncodeOptions): number | null {
  if (!narrowFlagsMatch(setFlags, opts) || !isLow(rd) || !isLow(rn) || !isLow(rm)) return null;
  if (rd === rm) return 0x4340 | (rn << 3) | rd;
  if (rd === rn) return 0x4340 | (rm << 3) | rd;
  return null;
}

/** MULS: ARMv7-M has only the 16-bit form (Rd must equal Rn or Rm, all low). */
export function muls(rd: Reg, rn: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  regs3('muls', rd, rn, rm);
  const n = narrowMul(true, rd, rn, rm, opts);
  if (n === null || opts?.width === 'wide') fail('muls', 'only a 16-bit form exists: Rd must equal Rn or Rm, all in r0..r7, outside an IT block');
  return [n];
}

/** MLA Rd = Ra + Rn * Rm. */
export function mla(rd: Reg, rn: Reg, rm: Reg, ra: Reg): Halfwords {
  regs3('mla', rd, rn, rm);
  noSPPC('mla', 'accumulator', ra);
  return [0xfb00 | rn, (ra << 12) | (rd << 8) | rm];
}

/** MLS Rd = Ra - Rn * Rm. */
export function mls(rd: Reg, rn: Reg, rm: Reg, ra: Reg): Halfwords {
  regs3('mls', rd, rn, rm);
  noSPPC('mls', 'accumulator', ra);
  return [0xfb00 | rn, (ra << 12) | (rd << 8) | 0x10 | rm];
}

function longMul(mn: string, hw1: number, rdLo: Reg, rdHi: Reg, rn: Reg, rm: Reg): Halfwords {
  noSPPC(mn, 'low destination', rdLo);
  noSPPC(mn, 'high destination', rdHi);
  noSPPC(mn, 'first operand', rn);
  noSPPC(mn, 'second operand', rm);
  if (rdLo === rdHi) fail(mn, `low and high destinations are both ${regName(rdLo)}`);
  return [hw1 | rn, (rdLo << 12) | (rdHi << 8) | rm];
}

/** RdHi:RdLo = Rn * Rm (unsigned 64-bit product). */
export const umull = (rdLo: Reg, rdHi: Reg, rn: Reg, rm: Reg): Halfwords => longMul('umull', 0xfba0, rdLo, rdHi, rn, rm);
export const smull = (rdLo: Reg, rdHi: Reg, rn: Reg, rm: Reg): Halfwords => longMul('smull', 0xfb80, rdLo, rdHi, rn, rm);
/** RdHi:RdLo += Rn * Rm. */
export const umlal = (rdLo: Reg, rdHi: Reg, rn: Reg, rm: Reg): Halfwords => longMul('umlal', 0xfbe0, rdLo, rdHi, rn, rm);
export const smlal = (rdLo: Reg, rdHi: Reg, rn: Reg, rm: Reg): Halfwords => longMul('smlal', 0xfbc0, rdLo, rdHi, rn, rm);

/** Rd = Rn / Rm (0 when Rm = 0, unless the DIV_0_TRP trap is enabled). */
export function udiv(rd: Reg, rn: Reg, rm: Reg): Halfwords {
  regs3('udiv', rd, rn, rm);
  return [0xfbb0 | rn, 0xf0f0 | (rd << 8) | rm];
}

export function sdiv(rd: Reg, rn: Reg, rm: Reg): Halfwords {
  regs3('sdiv', rd, rn, rm);
  return [0xfb90 | rn, 0xf0f0 | (rd << 8) | rm];
}

// ---------------------------------------------------------------------------------------------
// Bit manipulation

const REV: Record<'rev' | 'rev16' | 'revsh', { narrow: number; wide: number }> = {
  rev: { narrow: 0xba00, wide: 0xf080 },
  rev16: { narrow: 0xba40, wide: 0xf090 },
  revsh: { narrow: 0xbac0, wide: 0xf0b0 },
};

function revForm(mn: 'rev' | 'rev16' | 'revsh', rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords {
  noSPPC(mn, 'destination', rd);
  noSPPC(mn, 'source', rm);
  const e = REV[mn];
  const narrow = isLow(rd) && isLow(rm) ? e.narrow | (rm << 3) | rd : null;
  // Rm appears in both halfwords of the 32-bit form.
  return choose(mn, opts, narrow, () => [0xfa90 | rm, e.wide | (rd << 8) | rm]);
}

export const rev = (rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords => revForm('rev', rd, rm, opts);
export const rev16 = (rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords => revForm('rev16', rd, rm, opts);
export const revsh = (rd: Reg, rm: Reg, opts?: EncodeOptions): Halfwords => revForm('revsh', rd, rm, opts);

const EXTEND: Record<ExtendOp, { narrow: number; wide: number }> = {
  sxth: { narrow: 0xb200, wide: 0xfa0f },
  sxtb: { narrow: 0xb240, wide: 0xfa4f },
  uxth: { narrow: 0xb280, wide: 0xfa1f },
  uxtb: { narrow: 0xb2c0, wide: 0xfa5f },
};

/** SXTB/SXTH/UXTB/UXTH Rd, Rm{, ror #8/16/24}. */
export function extend(op: ExtendOp, rd: Reg, rm: Reg, rotation = 0, opts?: EncodeOptions): Halfwords {
  const e = EXTEND[op];
  if (e === undefined) throw new ThumbEncodeError(`unknown extend operation '${String(op)}'`);
  noSPPC(op, 'destination', rd);
  noSPPC(op, 'source', rm);
  checkImm(op, 'rotation', rotation, 0, 24, 8);
  const narrow = rotation === 0 && isLow(rd) && isLow(rm) ? e.narrow | (rm << 3) | rd : null;
  return choose(op, opts, narrow, () => [e.wide, 0xf080 | (rd << 8) | ((rotation >> 3) << 4) | rm]);
}

type ExtForm = (rd: Reg, rm: Reg, rotation?: number, opts?: EncodeOptions) => Halfwords;
const extForm = (op: ExtendOp): ExtForm => (rd, rm, rotation, opts) => extend(op, rd, rm, rotation, opts);
export const sxtb = extForm('sxtb');
export const sxth = extForm('sxth');
export const uxtb = extForm('uxtb');
export const uxth = extForm('uxth');

export function clz(rd: Reg, rm: Reg): Halfwords {
  noSPPC('clz', 'destination', rd);
  noSPPC('clz', 'source', rm);
  return [0xfab0 | rm, 0xf080 | (rd << 8) | rm];
}

function bitfield(mn: string, hw1: number, rd: Reg, rn: Reg, lsb: number, width: number, field: number): Halfwords {
  noSPPC(mn, 'destination', rd);
  checkImm(mn, 'lsb', lsb, 0, 31);
  checkImm(mn, 'width', width, 1, 32 - lsb);
  return [hw1 | rn, ((lsb >> 2) << 12) | (rd << 8) | ((lsb & 3) << 6) | field];
}

/** Rd = zero-extended Rn[lsb + width - 1 : lsb]. */
export function ubfx(rd: Reg, rn: Reg, lsb: number, width: number): Halfwords {
  noSPPC('ubfx', 'source', rn);
  return bitfield('ubfx', 0xf3c0, rd, rn, lsb, width, width - 1);
}

export function sbfx(rd: Reg, rn: Reg, lsb: number, width: number): Halfwords {
  noSPPC('sbfx', 'source', rn);
  return bitfield('sbfx', 0xf340, rd, rn, lsb, width, width - 1);
}

/** Rd[lsb + width - 1 : lsb] = Rn[width - 1 : 0]. */
export function bfi(rd: Reg, rn: Reg, lsb: number, width: number): Halfwords {
  noSPPC('bfi', 'source', rn);
  return bitfield('bfi', 0xf360, rd, rn, lsb, width, lsb + width - 1);
}

/** Rd[lsb + width - 1 : lsb] = 0. */
export function bfc(rd: Reg, lsb: number, width: number): Halfwords {
  return bitfield('bfc', 0xf360, rd, PC, lsb, width, lsb + width - 1);
}

// ---------------------------------------------------------------------------------------------
// Loads and stores

interface MemInfo {
  load: boolean;
  size: 1 | 2 | 4;
  /** First halfword (without Rn) of the imm12 form; the imm8 and register forms are this - 0x80 (- 0x90 for ldrs). */
  imm12: number;
  imm8: number;
  /** 16-bit [Rn, #imm5 * size] form, if any. */
  imm5?: number;
  /** 16-bit [Rn, Rm] form. */
  reg: number;
}

const MEM: Record<MemOp, MemInfo> = {
  str: { load: false, size: 4, imm12: 0xf8c0, imm8: 0xf840, imm5: 0x6000, reg: 0x5000 },
  strh: { load: false, size: 2, imm12: 0xf8a0, imm8: 0xf820, imm5: 0x8000, reg: 0x5200 },
  strb: { load: false, size: 1, imm12: 0xf880, imm8: 0xf800, imm5: 0x7000, reg: 0x5400 },
  ldr: { load: true, size: 4, imm12: 0xf8d0, imm8: 0xf850, imm5: 0x6800, reg: 0x5800 },
  ldrh: { load: true, size: 2, imm12: 0xf8b0, imm8: 0xf830, imm5: 0x8800, reg: 0x5a00 },
  ldrb: { load: true, size: 1, imm12: 0xf890, imm8: 0xf810, imm5: 0x7800, reg: 0x5c00 },
  ldrsb: { load: true, size: 1, imm12: 0xf990, imm8: 0xf910, reg: 0x5600 },
  ldrsh: { load: true, size: 2, imm12: 0xf9b0, imm8: 0xf930, reg: 0x5e00 },
};

function memInfo(op: MemOp): MemInfo {
  const info = MEM[op];
  if (info === undefined) throw new ThumbEncodeError(`unknown load/store '${String(op)}'`);
  return info;
}

function checkTransferReg(op: MemOp, info: MemInfo, rt: Reg): void {
  noPC(op, 'transfer', rt);
  if (rt === SP && info.size !== 4) fail(op, 'transfer register cannot be sp');
}

function checkBase(mn: string, rn: Reg): void {
  checkReg(mn, 'base', rn);
  if (rn === PC) fail(mn, 'base register cannot be pc (use ldrLiteral)');
}

/** LDR, LDRB, LDRH, LDRSB, LDRSH, STR, STRB, STRH: Rt, [Rn, #offset] (or pre/post-indexed with writeback). */
export function loadStore(op: MemOp, rt: Reg, rn: Reg, offset: number, opts?: MemOptions): Halfwords {
  const info = memInfo(op);
  checkTransferReg(op, info, rt);
  checkBase(op, rn);
  if (!Number.isInteger(offset)) fail(op, `offset ${String(offset)} is not an integer`);
  const index = opts?.index ?? 'offset';
  if (index !== 'offset' && index !== 'pre' && index !== 'post') fail(op, `unknown index mode '${String(index)}'`);
  if (index !== 'offset' && rn === rt) fail(op, `writeback base ${regName(rn)} is also the transfer register`);
  let narrow: number | null = null;
  if (index === 'offset' && isLow(rt) && offset >= 0 && offset % info.size === 0) {
    const scaled = offset / info.size;
    if (info.imm5 !== undefined && isLow(rn) && scaled <= 31) narrow = info.imm5 | (scaled << 6) | (rn << 3) | rt;
    else if (rn === SP && info.size === 4 && scaled <= 255) narrow = (info.load ? 0x9800 : 0x9000) | (rt << 8) | scaled;
  }
  return choose(op, opts, narrow, () => {
    const w = `${op}.w`;
    if (index === 'offset') {
      checkImm(w, 'offset', offset, -255, 4095);
      if (offset >= 0) return [info.imm12 | rn, (rt << 12) | offset];
      return [info.imm8 | rn, (rt << 12) | 0xc00 | -offset];
    }
    checkImm(w, `${index}-index offset`, offset, -255, 255);
    const u = offset >= 0 ? 0x200 : 0;
    return [info.imm8 | rn, (rt << 12) | (index === 'pre' ? 0xd00 : 0x900) | u | Math.abs(offset)];
  });
}

/** LDR, LDRB, LDRH, LDRSB, LDRSH, STR, STRB, STRH: Rt, [Rn, Rm{, lsl #0..3}]. */
export function loadStoreReg(op: MemOp, rt: Reg, rn: Reg, rm: Reg, lslAmount = 0, opts?: EncodeOptions): Halfwords {
  const info = memInfo(op);
  checkTransferReg(op, info, rt);
  checkBase(op, rn);
  noSPPC(op, 'offset', rm);
  checkImm(op, 'lsl amount', lslAmount, 0, 3);
  const narrow = lslAmount === 0 && isLow(rt) && isLow(rn) && isLow(rm) ? info.reg | (rm << 6) | (rn << 3) | rt : null;
  return choose(op, opts, narrow, () => [info.imm8 | rn, (rt << 12) | (lslAmount << 4) | rm]);
}

function dual(mn: string, load: boolean, rt: Reg, rt2: Reg, rn: Reg, offset: number, opts?: MemOptions): Halfwords {
  wideOnly(mn, opts);
  noSPPC(mn, 'first transfer', rt);
  noSPPC(mn, 'second transfer', rt2);
  checkBase(mn, rn);
  if (load && rt === rt2) fail(mn, `both transfer registers are ${regName(rt)}`);
  checkImm(mn, 'offset', offset, -1020, 1020, 4);
  const index = opts?.index ?? 'offset';
  if (index !== 'offset' && (rn === rt || rn === rt2)) fail(mn, `writeback base ${regName(rn)} is also a transfer register`);
  const p = index === 'post' ? 0 : 1;
  const wb = index === 'offset' ? 0 : 1;
  const u = offset >= 0 ? 1 : 0;
  return [0xe840 | (p << 8) | (u << 7) | (wb << 5) | (Number(load) << 4) | rn, (rt << 12) | (rt2 << 8) | (Math.abs(offset) >> 2)];
}

/** LDRD Rt, Rt2, [Rn, #offset] with offset a multiple of 4 in -1020..1020. */
export const ldrd = (rt: Reg, rt2: Reg, rn: Reg, offset = 0, opts?: MemOptions): Halfwords => dual('ldrd', true, rt, rt2, rn, offset, opts);
export const strd = (rt: Reg, rt2: Reg, rn: Reg, offset = 0, opts?: MemOptions): Halfwords => dual('strd', false, rt, rt2, rn, offset, opts);

/**
 * LDR Rt, [pc, #offset]: `offset` is from the instruction's address + 4 rounded down to 4. The
 * 16-bit form reaches 0..1020 (multiples of 4), the 32-bit one -4095..4095.
 */
export function ldrLiteral(rt: Reg, offset: number, opts?: EncodeOptions): Halfwords {
  noPC('ldr', 'transfer', rt);
  if (!Number.isInteger(offset)) fail('ldr', `literal offset ${String(offset)} is not an integer`);
  const narrow = isLow(rt) && offset >= 0 && offset <= 1020 && offset % 4 === 0 ? 0x4800 | (rt << 8) | (offset >> 2) : null;
  return choose('ldr', opts, narrow, () => {
    checkImm('ldr.w', 'literal offset', offset, -4095, 4095);
    return [0xf85f | (offset >= 0 ? 0x80 : 0), (rt << 12) | Math.abs(offset)];
  });
}

function regMask(mn: string, regs: readonly Reg[]): number {
  if (regs.length === 0) fail(mn, 'empty register list');
  let mask = 0;
  for (const r of regs) {
    checkReg(mn, 'listed', r);
    if (mask & (1 << r)) fail(mn, `${regName(r)} is listed twice`);
    mask |= 1 << r;
  }
  return mask;
}

const lowest = (mask: number): Reg => 31 - Math.clz32(mask & -mask);

/** PUSH {regs}: r0..r12 and lr. One high register alone becomes STR Rt, [sp, #-4]!. */
export function push(regs: readonly Reg[], opts?: EncodeOptions): Halfwords {
  const mask = regMask('push', regs);
  if (mask & ((1 << SP) | (1 << PC))) fail('push', 'cannot push sp or pc');
  const narrow = (mask & ~0x40ff) === 0 ? 0xb400 | ((mask >> 14) << 8) | (mask & 0xff) : null;
  return choose('push', opts, narrow, () => (regs.length === 1 ? [0xf84d, (lowest(mask) << 12) | 0x0d04] : [0xe92d, mask]));
}

/** POP {regs}: r0..r12 and lr or pc (not both). One high register alone becomes LDR Rt, [sp], #4. */
export function pop(regs: readonly Reg[], opts?: EncodeOptions): Halfwords {
  const mask = regMask('pop', regs);
  if (mask & (1 << SP)) fail('pop', 'cannot pop sp');
  if ((mask & 0xc000) === 0xc000) fail('pop', 'cannot pop both lr and pc');
  const narrow = (mask & ~0x80ff) === 0 ? 0xbc00 | ((mask >> 15) << 8) | (mask & 0xff) : null;
  return choose('pop', opts, narrow, () => (regs.length === 1 ? [0xf85d, (lowest(mask) << 12) | 0x0b04] : [0xe8bd, mask]));
}

function multiple(load: boolean, rn: Reg, regs: readonly Reg[], opts?: MultipleOptions): Halfwords {
  const mode = opts?.mode ?? 'ia';
  const mn = `${load ? 'ldm' : 'stm'}${mode === 'db' ? 'db' : ''}`;
  if (mode !== 'ia' && mode !== 'db') fail(mn, `unknown mode '${String(mode)}'`);
  noPC(mn, 'base', rn);
  const mask = regMask(mn, regs);
  const writeback = opts?.writeback ?? true;
  const inList = (mask & (1 << rn)) !== 0;
  if (mask & (1 << SP)) fail(mn, 'sp cannot be in the register list');
  if (!load && mask & (1 << PC)) fail(mn, 'pc cannot be stored');
  if (load && (mask & 0xc000) === 0xc000) fail(mn, 'cannot load both lr and pc');
  let narrow: number | null = null;
  if (mode === 'ia' && isLow(rn) && (mask & ~0xff) === 0) {
    // The 16-bit LDM writes back exactly when the base is not loaded; STM always writes back.
    if (load ? writeback === !inList : writeback && !inList) narrow = (load ? 0xc800 : 0xc000) | (rn << 8) | mask;
  }
  return choose(mn, opts, narrow, () => {
    const w = `${mn}.w`;
    if (writeback && inList) fail(w, `writeback base ${regName(rn)} is also in the register list`);
    if (regs.length < 2) fail(w, 'the 32-bit form needs at least two registers');
    const base = (mode === 'ia' ? 0xe880 : 0xe900) | (Number(writeback) << 5) | (Number(load) << 4);
    return [base | rn, mask];
  });
}

export const ldm = (rn: Reg, regs: readonly Reg[], opts?: MultipleOptions): Halfwords => multiple(true, rn, regs, opts);
export const stm = (rn: Reg, regs: readonly Reg[], opts?: MultipleOptions): Halfwords => multiple(false, rn, regs, opts);

// ---------------------------------------------------------------------------------------------
// Exclusives, barriers, system

/** LDREX Rt, [Rn, #offset] (offset a multiple of 4 in 0..1020). */
export function ldrex(rt: Reg, rn: Reg, offset = 0): Halfwords {
  noSPPC('ldrex', 'transfer', rt);
  checkBase('ldrex', rn);
  checkImm('ldrex', 'offset', offset, 0, 1020, 4);
  return [0xe850 | rn, (rt << 12) | 0x0f00 | (offset >> 2)];
}

/** STREX Rd, Rt, [Rn, #offset]: Rd = 0 if the store happened, 1 if the monitor was lost. */
export function strex(rd: Reg, rt: Reg, rn: Reg, offset = 0): Halfwords {
  noSPPC('strex', 'status', rd);
  noSPPC('strex', 'transfer', rt);
  checkBase('strex', rn);
  if (rd === rt || rd === rn) fail('strex', `status register ${regName(rd)} is also the ${rd === rt ? 'transfer' : 'base'} register`);
  checkImm('strex', 'offset', offset, 0, 1020, 4);
  return [0xe840 | rn, (rt << 12) | (rd << 8) | (offset >> 2)];
}

export const clrex = (): Halfwords => [0xf3bf, 0x8f2f];
/** Full-system barriers (option SY, the only one ARMv7-M defines). */
export const dmb = (): Halfwords => [0xf3bf, 0x8f5f];
export const dsb = (): Halfwords => [0xf3bf, 0x8f4f];
export const isb = (): Halfwords => [0xf3bf, 0x8f6f];

const SYSM: Record<SpecialReg, number> = {
  apsr: 0, iapsr: 1, eapsr: 2, xpsr: 3, ipsr: 5, epsr: 6, iepsr: 7,
  msp: 8, psp: 9, primask: 16, basepri: 17, basepri_max: 18, faultmask: 19, control: 20,
};

function sysm(mn: string, reg: SpecialReg): number {
  const v = SYSM[reg];
  if (v === undefined) fail(mn, `unknown special register '${String(reg)}'`);
  return v;
}

/** MRS Rd, <special register>. */
export function mrs(rd: Reg, reg: SpecialReg): Halfwords {
  noSPPC('mrs', 'destination', rd);
  return [0xf3ef, 0x8000 | (rd << 8) | sysm('mrs', reg)];
}

/** MSR <special register>, Rn (for the APSR group: the nzcvq bits). */
export function msr(reg: SpecialReg, rn: Reg): Halfwords {
  noSPPC('msr', 'source', rn);
  return [0xf380 | rn, 0x8800 | sysm('msr', reg)];
}

/** CPSID i / CPSID f: mask interrupts (PRIMASK / FAULTMASK). */
export const cpsid = (which: 'i' | 'f' = 'i'): Halfwords => [0xb670 | (which === 'f' ? 1 : 2)];
export const cpsie = (which: 'i' | 'f' = 'i'): Halfwords => [0xb660 | (which === 'f' ? 1 : 2)];

// ---------------------------------------------------------------------------------------------
// Branches and control

/** Ranges of the PC-relative forms, in bytes from the instruction's address + 4. */
export const BRANCH_RANGE = {
  b16: { min: -2048, max: 2046 },
  b32: { min: -16777216, max: 16777214 },
  bcond16: { min: -256, max: 254 },
  bcond32: { min: -1048576, max: 1048574 },
  cbz: { min: 0, max: 126 },
  ldrLit16: { min: 0, max: 1020 },
  ldrLit32: { min: -4095, max: 4095 },
} as const;

export type BranchRangeName = keyof typeof BRANCH_RANGE;

export function fitsRange(range: BranchRangeName, offset: number): boolean {
  const r = BRANCH_RANGE[range];
  return offset >= r.min && offset <= r.max;
}

function checkOffset(mn: string, range: BranchRangeName, offset: number): void {
  const r = BRANCH_RANGE[range];
  if (!Number.isInteger(offset)) fail(mn, `offset ${String(offset)} is not an integer`);
  if (offset % 2 !== 0) fail(mn, `offset ${offset} is odd (Thumb targets are halfword aligned)`);
  if (offset < r.min || offset > r.max) fail(mn, `offset ${offset} out of range ${r.min}..${r.max}`);
}

/** B.W / BL: imm32 = S:I1:I2:imm10:imm11:0 with J1 = !I1 ^ S, J2 = !I2 ^ S. */
function wideBranch(offset: number, link: boolean): Halfwords {
  const off = offset >> 1;
  const s = (off >> 23) & 1;
  const i1 = (off >> 22) & 1;
  const i2 = (off >> 21) & 1;
  const j1 = (i1 ^ 1) ^ s;
  const j2 = (i2 ^ 1) ^ s;
  return [0xf000 | (s << 10) | ((off >> 11) & 0x3ff), (link ? 0xd000 : 0x9000) | (j1 << 13) | (j2 << 11) | (off & 0x7ff)];
}

/** B to pc + 4 + offset: 16-bit within -2048..2046, else 32-bit within ±16 MiB. */
export function b(offset: number, opts?: EncodeOptions): Halfwords {
  const fits16 = Number.isInteger(offset) && offset % 2 === 0 && fitsRange('b16', offset);
  if (opts?.width === 'narrow') checkOffset('b.n', 'b16', offset);
  return choose('b', opts, fits16 ? 0xe000 | ((offset >> 1) & 0x7ff) : null, () => {
    checkOffset('b.w', 'b32', offset);
    return wideBranch(offset, false);
  });
}

/** B<cond> to pc + 4 + offset: 16-bit within -256..254, else 32-bit within ±1 MiB. */
export function bcond(cond: Cond, offset: number, opts?: EncodeOptions): Halfwords {
  const c = condCode(cond);
  if (c === 14) return b(offset, opts);
  const mn = `b${cond}`;
  const fits16 = Number.isInteger(offset) && offset % 2 === 0 && fitsRange('bcond16', offset);
  if (opts?.width === 'narrow') checkOffset(mn, 'bcond16', offset);
  return choose(mn, opts, fits16 ? 0xd000 | (c << 8) | ((offset >> 1) & 0xff) : null, () => {
    checkOffset(`${mn}.w`, 'bcond32', offset);
    const off = offset >> 1;
    const s = (off >> 19) & 1;
    const j2 = (off >> 18) & 1;
    const j1 = (off >> 17) & 1;
    return [0xf000 | (s << 10) | (c << 6) | ((off >> 11) & 0x3f), 0x8000 | (j1 << 13) | (j2 << 11) | (off & 0x7ff)];
  });
}

/** BL to pc + 4 + offset (±16 MiB). */
export function bl(offset: number): Halfwords {
  checkOffset('bl', 'b32', offset);
  return wideBranch(offset, true);
}

export function bx(rm: Reg): Halfwords {
  noPC('bx', 'target', rm);
  return [0x4700 | (rm << 3)];
}

export function blx(rm: Reg): Halfwords {
  noPC('blx', 'target', rm);
  return [0x4780 | (rm << 3)];
}

function compareBranch(mn: string, nonZero: boolean, rn: Reg, offset: number): Halfwords {
  checkReg(mn, 'tested', rn);
  if (!isLow(rn)) fail(mn, `tested register ${regName(rn)} is not r0..r7`);
  checkOffset(mn, 'cbz', offset);
  return [(nonZero ? 0xb900 : 0xb100) | ((offset >> 6) << 9) | (((offset >> 1) & 31) << 3) | rn];
}

/** CBZ Rn, pc + 4 + offset: forward only, 0..126. */
export const cbz = (rn: Reg, offset: number): Halfwords => compareBranch('cbz', false, rn, offset);
export const cbnz = (rn: Reg, offset: number): Halfwords => compareBranch('cbnz', true, rn, offset);

/**
 * IT block: `pattern` gives the 2nd..4th instructions as 't' (same condition) or 'e' (inverse),
 * so it('eq', 'te') is ITTE EQ covering three instructions.
 */
export function it(cond: Cond, pattern = ''): Halfwords {
  const c = condCode(cond);
  const mn = `it${pattern}`;
  if (!/^[te]{0,3}$/.test(pattern)) fail(mn, `pattern '${pattern}' is not up to three of 't'/'e'`);
  if (c === 14 && pattern.includes('e')) fail(mn, `condition 'al' has no inverse for an 'e' slot`);
  let mask = 1 << (3 - pattern.length);
  for (let k = 0; k < pattern.length; k++) {
    const bit = pattern[k] === 't' ? c & 1 : (c & 1) ^ 1;
    mask |= bit << (3 - k);
  }
  return [0xbf00 | (c << 4) | mask];
}

export const nop = (opts?: EncodeOptions): Halfwords => choose('nop', opts, 0xbf00, () => [0xf3af, 0x8000]);

/** UDF #imm: permanently undefined (16-bit: 0..255, 32-bit: 0..65535), a deliberate fault. */
export function udf(imm: number, opts?: EncodeOptions): Halfwords {
  checkImm('udf', 'immediate', imm, 0, 0xffff);
  return choose('udf', opts, imm <= 255 ? 0xde00 | imm : null, () => [0xf7f0 | (imm >> 12), 0xa000 | (imm & 0xfff)]);
}

export function bkpt(imm: number): Halfwords {
  checkImm('bkpt', 'immediate', imm, 0, 255);
  return [0xbe00 | imm];
}

/** Little-endian bytes of a halfword sequence, as stored in memory. */
export function toBytes(hws: readonly number[]): Uint8Array {
  const out = new Uint8Array(hws.length * 2);
  hws.forEach((h, i) => {
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = (h >> 8) & 0xff;
  });
  return out;
}
