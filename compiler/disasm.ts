// Disassembler for the asm dialect of the bpf_conformance suite (`mov %r0, %r1`,
// `ldxw %r0, [%r1+4]`, `lock fetch add32 [%r10-8], %r1`, `call local +3`, ...).
// Its output re-assembles to the same bytes (see asm.ts and the round-trip tests).
import { lddwValue } from './decode.js';
import { classify, isInvalid, LDDW, type Insn } from './opcodes.js';

const reg = (r: number): string => `%r${r}`;
const rel = (n: number): string => (n < 0 ? `${n}` : `+${n}`);
const mem = (r: number, off: number): string => `[${reg(r)}${off < 0 ? off : `+${off}`}]`;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** One instruction (the first slot of an lddw covers both), without its index. */
export function disasmInsn(insns: readonly Insn[], i: number): string {
  const insn = insns[i];
  const c = classify(insn);
  if (isInvalid(c)) return rawForm(insn);
  const { mnemonic } = c;
  switch (c.form) {
    case 'alu':
      return `${mnemonic} ${reg(insn.dst)}, ${c.srcReg ? reg(insn.src) : insn.imm}`;
    case 'neg':
    case 'end':
      return `${mnemonic} ${reg(insn.dst)}`;
    case 'lddw':
      // Map forms (src != 0), a missing or dirty second slot: no asm syntax says that, so both
      // slots are shown raw and still round-trip.
      if (!isLddwPair(insns, i)) return rawForm(insn);
      return `lddw ${reg(insn.dst)}, ${hex(lddwValue(insns, i))}`;
    case 'ldx':
      return `${mnemonic} ${reg(insn.dst)}, ${mem(insn.src, insn.off)}`;
    case 'st':
      return `${mnemonic} ${mem(insn.dst, insn.off)}, ${insn.imm}`;
    case 'stx':
    case 'atomic':
      return `${mnemonic} ${mem(insn.dst, insn.off)}, ${reg(insn.src)}`;
    case 'ja':
      return `${mnemonic} ${rel(c.wide ? insn.off : insn.imm)}`;
    case 'jcond':
      return `${mnemonic} ${reg(insn.dst)}, ${c.srcReg ? reg(insn.src) : insn.imm}, ${rel(insn.off)}`;
    case 'call':
      return c.local ? `call local ${rel(insn.imm)}` : `call ${insn.imm}`;
    case 'callx':
      return `callx ${reg(insn.dst)}`;
    case 'exit':
      return 'exit';
  }
}

/** A slot that is not a valid instruction: shown field by field so the problem is visible. */
export function rawForm(insn: Insn): string {
  return `.insn code=0x${insn.code.toString(16).padStart(2, '0')} dst=${insn.dst} src=${insn.src} off=${insn.off} imm=${insn.imm}`;
}

/** Every instruction, one per line; the second slot of an lddw is skipped. */
export function disasmProgram(insns: readonly Insn[], opts: { indices?: boolean } = {}): string[] {
  const lines: string[] = [];
  for (let i = 0; i < insns.length; i++) {
    const text = disasmInsn(insns, i);
    lines.push(opts.indices ? `${String(i).padStart(4)}: ${text}` : text);
    if (isLddwPair(insns, i) && !isInvalid(classify(insns[i]))) i++;
  }
  return lines;
}

/** An `lddw` printable as `lddw %rN, value`: plain immediate, second slot present and all zero but imm. */
function isLddwPair(insns: readonly Insn[], i: number): boolean {
  const a = insns[i];
  const b = insns[i + 1];
  return a.code === LDDW && a.src === 0 && b !== undefined
    && b.code === 0 && b.dst === 0 && b.src === 0 && b.off === 0;
}
