// Bytes <-> instruction slots. Little-endian 8-byte slots: code, dst:4|src:4, off:i16, imm:i32.
// Decoding never validates: that is `classify` (opcodes.ts) and the verifier's job, so that
// malformed programs can still be disassembled and reported instruction by instruction.
import type { Insn } from './opcodes.js';

export class DecodeError extends Error {}

export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % 8 !== 0) {
    throw new DecodeError(`program length ${bytes.length} is not a multiple of 8 bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = new Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) {
    const p = i * 8;
    const regs = bytes[p + 1];
    out[i] = {
      code: bytes[p],
      dst: regs & 0x0f,
      src: regs >> 4,
      off: view.getInt16(p + 2, true),
      imm: view.getInt32(p + 4, true),
    };
  }
  return out;
}

export function encode(insns: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  insns.forEach((insn, i) => encodeInto(view, i * 8, insn));
  return out;
}

export function encodeInto(view: DataView, p: number, insn: Insn): void {
  view.setUint8(p, insn.code & 0xff);
  view.setUint8(p + 1, ((insn.src & 0x0f) << 4) | (insn.dst & 0x0f));
  view.setInt16(p + 2, insn.off, true);
  view.setInt32(p + 4, insn.imm | 0, true);
}

/** The 64-bit immediate of an `lddw` whose first slot is at index i. */
export function lddwValue(insns: readonly Insn[], i: number): bigint {
  const lo = BigInt(insns[i].imm >>> 0);
  const hi = BigInt((insns[i + 1]?.imm ?? 0) >>> 0);
  return (hi << 32n) | lo;
}
