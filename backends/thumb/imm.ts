// Thumb-2 "modified immediate" constants (ARMv7-M ARM A5.3.2): the 12-bit field i:imm3:imm8 that
// data-processing instructions use in place of a 32-bit constant.

/**
 * The 12-bit field (bit 11 = i, bits 10..8 = imm3, bits 7..0 = imm8) that encodes `value`, or null
 * when no modified immediate expands to it. `value` is read as 32 bits: -1 and 0xffffffff are the
 * same constant. Non-integers and values outside [-2^31, 2^32) have no encoding (null).
 */
export function encodeModifiedImm(value: number): number | null {
  if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) return null;
  const v = value >>> 0;
  if (v <= 0xff) return v;
  const b = v & 0xff;
  // The replicated byte patterns need a non-zero byte: imm8 == 0 there is UNPREDICTABLE.
  if (b !== 0 && v === ((b << 16) | b)) return 0x100 | b;
  const b1 = (v >>> 8) & 0xff;
  if (b1 !== 0 && v === ((b1 << 24) | (b1 << 8)) >>> 0) return 0x200 | b1;
  if (b !== 0 && v === ((b << 24) | (b << 16) | (b << 8) | b) >>> 0) return 0x300 | b;
  // Otherwise '1':imm7 rotated right by 8..31: rotating v left by the same amount must give a byte
  // with its top bit set.
  for (let rot = 8; rot < 32; rot++) {
    const x = ((v << rot) | (v >>> (32 - rot))) >>> 0;
    if (x >= 0x80 && x <= 0xff) return (rot << 7) | (x & 0x7f);
  }
  return null;
}

/** Splits a modified-immediate field into its bits of the two halfwords of a T32 instruction. */
export function placeModifiedImm(imm12: number): { hw1: number; hw2: number } {
  return { hw1: ((imm12 >> 11) & 1) << 10, hw2: (((imm12 >> 8) & 7) << 12) | (imm12 & 0xff) };
}
