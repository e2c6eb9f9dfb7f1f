// Forms the back end needs that encode.ts deliberately refuses (it rejects pc as a load target,
// the right default for general code). Kept here, next to their only user, and tested against
// capstone like the encoder itself.
import { ThumbEncodeError, type Halfwords, type Reg } from './encode.js';

/** LDR pc, [Rn, #0..4095] (T3): an interworking branch to the word at Rn + off (bit 0 must be 1). */
export function ldrPc(rn: Reg, off: number): Halfwords {
  if (!Number.isInteger(rn) || rn < 0 || rn > 14) throw new ThumbEncodeError(`ldr pc: base register ${String(rn)} is not r0..r14`);
  if (!Number.isInteger(off) || off < 0 || off > 4095) throw new ThumbEncodeError(`ldr pc: offset ${String(off)} out of range 0..4095`);
  return [0xf8d0 | rn, 0xf000 | off];
}
