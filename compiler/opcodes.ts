// Opcode facts for the whole eBPF ISA (RFC 9669 plus the v4 additions).
// One table entry per valid opcode byte; variants selected by another field (sdiv by `off`,
// movsx by `off`, byte swaps by `imm`, atomics by `imm`, call kinds by `src`) are resolved by
// `classify`, which also enforces the "must be zero" rules of the reserved fields.

export type Form =
  | 'alu' // dst = dst OP (src | imm)
  | 'neg' // dst = -dst
  | 'end' // byte-order conversion / swap; width in imm
  | 'lddw' // 64-bit immediate, two slots
  | 'ldx' // dst = *(size *)(src + off)
  | 'st' // *(size *)(dst + off) = imm
  | 'stx' // *(size *)(dst + off) = src
  | 'atomic' // atomic read-modify-write on *(size *)(dst + off) with src
  | 'ja' // goto; JMP: off, JMP32 (gotol): imm
  | 'jcond' // conditional jump on dst ? (src | imm)
  | 'call' // helper call (src 0) or local call (src 1)
  | 'callx' // helper call, id in dst register
  | 'exit';

export type AluOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'sdiv' | 'or' | 'and' | 'lsh' | 'rsh' | 'mod' | 'smod'
  | 'xor' | 'mov' | 'movsx' | 'arsh';
export type EndOp = 'le' | 'be' | 'bswap';
export type JmpOp =
  | 'jeq' | 'jgt' | 'jge' | 'jset' | 'jne' | 'jsgt' | 'jsge' | 'jlt' | 'jle' | 'jslt' | 'jsle';
export type AtomicOp = 'add' | 'or' | 'and' | 'xor' | 'xchg' | 'cmpxchg';

/** Raw fields of one 8-byte instruction slot; `off` and `imm` are signed. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/** What an instruction means, once its variant fields have been checked. */
export interface Classified {
  form: Form;
  /** The mnemonic of the conformance asm dialect: `add32`, `sdiv`, `movsx832`, `be16`, `ldxsb`... */
  mnemonic: string;
  /** 64-bit operation (ALU64, JMP, 64-bit memory/atomic); false for ALU32/JMP32/32-bit atomics. */
  wide: boolean;
  /** Source operand is a register (BPF_X). */
  srcReg: boolean;
  alu?: AluOp;
  end?: EndOp;
  jmp?: JmpOp;
  atomic?: AtomicOp;
  /** Atomic returns the old value (fetch variants, xchg, cmpxchg). */
  fetch?: boolean;
  /** Memory access size in bytes; for `end`, the width in bits is `imm`. */
  size?: 1 | 2 | 4 | 8;
  /** Sign-extending load (ldxs*) or sign-extension width in bits for movsx. */
  signExtend?: number;
  /** Local call (`call local`), as opposed to a helper call. */
  local?: boolean;
}

export interface Invalid {
  error: string;
}

export const CLS = { LD: 0, LDX: 1, ST: 2, STX: 3, ALU: 4, JMP: 5, JMP32: 6, ALU64: 7 } as const;
export const SIZE_BITS: Record<number, 1 | 2 | 4 | 8> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };
export const SIZE_SUFFIX: Record<number, string> = { 1: 'b', 2: 'h', 4: 'w', 8: 'dw' };
export const LDDW = 0x18;

const ALU_OPS: Record<number, AluOp | 'neg' | 'end'> = {
  0x00: 'add', 0x10: 'sub', 0x20: 'mul', 0x30: 'div', 0x40: 'or', 0x50: 'and', 0x60: 'lsh',
  0x70: 'rsh', 0x80: 'neg', 0x90: 'mod', 0xa0: 'xor', 0xb0: 'mov', 0xc0: 'arsh', 0xd0: 'end',
};
export const JMP_OPS: Record<number, JmpOp | 'ja' | 'call' | 'exit'> = {
  0x00: 'ja', 0x10: 'jeq', 0x20: 'jgt', 0x30: 'jge', 0x40: 'jset', 0x50: 'jne', 0x60: 'jsgt',
  0x70: 'jsge', 0x80: 'call', 0x90: 'exit', 0xa0: 'jlt', 0xb0: 'jle', 0xc0: 'jslt', 0xd0: 'jsle',
};
export const ATOMIC_OPS: Record<number, { op: AtomicOp; fetch: boolean }> = {
  0x00: { op: 'add', fetch: false }, 0x01: { op: 'add', fetch: true },
  0x40: { op: 'or', fetch: false }, 0x41: { op: 'or', fetch: true },
  0x50: { op: 'and', fetch: false }, 0x51: { op: 'and', fetch: true },
  0xa0: { op: 'xor', fetch: false }, 0xa1: { op: 'xor', fetch: true },
  0xe1: { op: 'xchg', fetch: true }, 0xf1: { op: 'cmpxchg', fetch: true },
};
/** Inverse tables, for the assembler and encoders. */
export const ALU_CODE: Record<string, number> = invert(ALU_OPS);
export const JMP_CODE: Record<string, number> = invert(JMP_OPS);

/** Kinds of `lddw` by its src field (RFC 9669 section 5.4); only 0 is supported without maps. */
export const LDDW_SRC: Record<number, string> = {
  0: 'imm64', 1: 'map_by_fd', 2: 'map_value_by_fd', 3: 'variable_addr', 4: 'code_addr',
  5: 'map_by_idx', 6: 'map_value_by_idx',
};

function invert<T extends string>(t: Record<number, T>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) out[v] = Number(k);
  return out;
}

type FieldName = 'dst' | 'src' | 'off' | 'imm';
function mustBeZero(insn: Insn, fields: FieldName[]): Invalid | null {
  for (const f of fields) {
    if (insn[f] !== 0) return { error: `reserved field ${f} must be 0 (is ${insn[f]})` };
  }
  return null;
}

function classifyAlu(insn: Insn, wide: boolean): Classified | Invalid {
  const opName = ALU_OPS[insn.code & 0xf0];
  const srcReg = (insn.code & 0x08) !== 0;
  const sfx = wide ? '' : '32';
  if (opName === undefined) return { error: `unknown ALU operation 0x${(insn.code & 0xf0).toString(16)}` };
  if (opName === 'neg') {
    if (srcReg) return { error: 'neg takes no source register' };
    return mustBeZero(insn, ['src', 'off', 'imm']) ?? { form: 'neg', mnemonic: 'neg' + sfx, wide, srcReg };
  }
  if (opName === 'end') {
    const bad = mustBeZero(insn, ['src', 'off']);
    if (bad) return bad;
    if (insn.imm !== 16 && insn.imm !== 32 && insn.imm !== 64) return { error: `byte swap width must be 16, 32 or 64 (is ${insn.imm})` };
    if (wide && srcReg) return { error: 'unknown opcode 0xdf' };
    const end: EndOp = wide ? 'bswap' : srcReg ? 'be' : 'le';
    return { form: 'end', mnemonic: end + insn.imm, wide, srcReg: false, end };
  }
  let alu: AluOp = opName;
  let signExtend: number | undefined;
  if (opName === 'div' || opName === 'mod') {
    if (insn.off === 1) alu = opName === 'div' ? 'sdiv' : 'smod';
    else if (insn.off !== 0) return { error: `${opName} offset must be 0 (unsigned) or 1 (signed) (is ${insn.off})` };
  } else if (opName === 'mov' && srcReg && insn.off !== 0) {
    const widths = wide ? [8, 16, 32] : [8, 16];
    if (!widths.includes(insn.off)) return { error: `movsx width (off) must be one of ${widths.join(', ')} (is ${insn.off})` };
    alu = 'movsx';
    signExtend = insn.off;
  } else if (insn.off !== 0) {
    return { error: `reserved field off must be 0 (is ${insn.off})` };
  }
  const bad = mustBeZero(insn, srcReg ? ['imm'] : ['src']);
  if (bad) return bad;
  const mnemonic = alu === 'movsx' ? `movsx${signExtend}${wide ? 64 : 32}` : alu + sfx;
  return { form: 'alu', mnemonic, wide, srcReg, alu, signExtend };
}

function classifyJmp(insn: Insn, wide: boolean): Classified | Invalid {
  const opName = JMP_OPS[insn.code & 0xf0];
  const srcReg = (insn.code & 0x08) !== 0;
  const sfx = wide ? '' : '32';
  if (opName === undefined) return { error: `unknown jump operation 0x${(insn.code & 0xf0).toString(16)}` };
  if (opName === 'ja') {
    if (srcReg) return { error: 'ja takes no source register' };
    // JMP32|JA is `gotol`: the offset is in imm, so off must be 0.
    return mustBeZero(insn, wide ? ['dst', 'src', 'imm'] : ['dst', 'src', 'off'])
      ?? { form: 'ja', mnemonic: wide ? 'ja' : 'ja32', wide, srcReg: false };
  }
  if (opName === 'call') {
    if (!wide) return { error: 'call is not a JMP32 operation' };
    if (srcReg) {
      return mustBeZero(insn, ['src', 'off', 'imm']) ?? { form: 'callx', mnemonic: 'callx', wide, srcReg: true };
    }
    const bad = mustBeZero(insn, ['dst', 'off']);
    if (bad) return bad;
    if (insn.src === 0) return { form: 'call', mnemonic: 'call', wide, srcReg: false, local: false };
    if (insn.src === 1) return { form: 'call', mnemonic: 'call local', wide, srcReg: false, local: true };
    if (insn.src === 2) return { error: 'call by BTF id (src 2) is not supported' };
    return { error: `reserved field src must be 0 or 1 for call (is ${insn.src})` };
  }
  if (opName === 'exit') {
    if (!wide || srcReg) return { error: `unknown opcode 0x${insn.code.toString(16)}` };
    return mustBeZero(insn, ['dst', 'src', 'off', 'imm']) ?? { form: 'exit', mnemonic: 'exit', wide, srcReg: false };
  }
  const bad = mustBeZero(insn, srcReg ? ['imm'] : ['src']);
  if (bad) return bad;
  return { form: 'jcond', mnemonic: opName + sfx, wide, srcReg, jmp: opName };
}

function classifyMem(insn: Insn): Classified | Invalid {
  const cls = insn.code & 7;
  const mode = insn.code & 0xe0;
  const size = SIZE_BITS[insn.code & 0x18];
  const unknown = { error: `unknown opcode 0x${insn.code.toString(16).padStart(2, '0')}` };
  if (cls === CLS.LD) {
    if (insn.code !== LDDW) return unknown;
    const bad = mustBeZero(insn, ['off']);
    if (bad) return bad;
    if (LDDW_SRC[insn.src] === undefined) return { error: `lddw src must be 0..6 (is ${insn.src})` };
    return { form: 'lddw', mnemonic: 'lddw', wide: true, srcReg: false, size: 8 };
  }
  if (cls === CLS.LDX) {
    if (mode === 0x60 || (mode === 0x80 && size !== 8)) {
      const sx = mode === 0x80;
      return mustBeZero(insn, ['imm'])
        ?? { form: 'ldx', mnemonic: `ldx${sx ? 's' : ''}${SIZE_SUFFIX[size]}`, wide: true, srcReg: true, size, signExtend: sx ? size * 8 : undefined };
    }
    return unknown;
  }
  if (cls === CLS.ST) {
    if (mode !== 0x60) return unknown;
    return mustBeZero(insn, ['src']) ?? { form: 'st', mnemonic: `st${SIZE_SUFFIX[size]}`, wide: true, srcReg: false, size };
  }
  // STX
  if (mode === 0x60) {
    return mustBeZero(insn, ['imm']) ?? { form: 'stx', mnemonic: `stx${SIZE_SUFFIX[size]}`, wide: true, srcReg: true, size };
  }
  if (mode === 0xc0 && (size === 4 || size === 8)) {
    const a = ATOMIC_OPS[insn.imm];
    if (a === undefined) return { error: `unknown atomic operation imm=0x${(insn.imm >>> 0).toString(16)}` };
    const sfx = size === 4 ? '32' : '';
    const mnemonic = a.op === 'xchg' || a.op === 'cmpxchg' || !a.fetch ? `lock ${a.op}${sfx}` : `lock fetch ${a.op}${sfx}`;
    return { form: 'atomic', mnemonic, wide: size === 8, srcReg: true, size, atomic: a.op, fetch: a.fetch };
  }
  return unknown;
}

/** Classify one instruction slot, or say which rule it breaks. Registers are checked by the verifier. */
export function classify(insn: Insn): Classified | Invalid {
  switch (insn.code & 7) {
    case CLS.ALU: return classifyAlu(insn, false);
    case CLS.ALU64: return classifyAlu(insn, true);
    case CLS.JMP: return classifyJmp(insn, true);
    case CLS.JMP32: return classifyJmp(insn, false);
    default: return classifyMem(insn);
  }
}

export function isInvalid(c: Classified | Invalid): c is Invalid {
  return (c as Invalid).error !== undefined;
}
