// The reference interpreter: the semantic oracle for both back ends and the baseline of every speed
// figure. The program is decoded once, in the constructor, into parallel typed arrays with every
// variant (sdiv, movsx, byte swaps, atomics, call kinds, invalid slots) resolved to its own internal
// opcode, so the run loop is a single switch over small integer literals (which V8 turns into a
// jump table). Registers are 32-bit halves; BigInt appears only for wide division and helper calls.
//
// Conventions every engine shares (the Wasm and Thumb back ends must match them):
// - Regions per run as runtime/layout.ts lays them out: `stack`, the program's data sections (fresh
//   copies), RunOptions.regions (used in place, so the host sees what the program wrote there), and
//   `mem` (a copy of RunOptions.mem) last.
// - r1 = address of mem (0 without mem), r2 = its length, r10 = top of the current 512-byte frame.
// - Helper calls leave r1-r5 unchanged (the ISA says clobbered; unchanged is what every engine can
//   agree on without inventing values). Helpers get their arguments as unsigned 64-bit bigints.
// - `steps` counts executed instructions (an lddw counts once, a faulting instruction counts, the
//   instruction refused by the budget does not); a run may execute exactly `budget` instructions.
import { disasmInsn } from '../compiler/disasm.js';
import { classify, isInvalid, LDDW_SRC, type Classified, type Insn } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import { arsh64, lsh64, mul64, rsh64, sdiv64, sge, sgt, smod64, swap16, swap32, udiv64, uge, ugt, umod64 } from './alu64.js';
import { FAULT_TITLE, HelperError, type Fault, type FaultKind, type RunResult } from './errors.js';
import { conformanceHelpers, regionHelperContext, type HelperContext, type HelperRegistry, type HelperResult } from './helpers.js';
import { containerLayout, MAX_CALL_DEPTH, STACK_FRAME } from './layout.js';
import { RegionTable, type Region, type RegionSpec } from './regions.js';

export interface RunOptions {
  /** Input memory; the program gets a writable copy, its address in r1 and its length in r2. */
  mem?: Uint8Array;
  /** Instruction budget; Infinity turns it off. */
  budget?: number;
  /** Extra host regions, mapped after the data sections and used in place. */
  regions?: RegionSpec[];
}

export interface InterpreterOptions {
  helpers?: HelperRegistry;
}

export const DEFAULT_BUDGET = 100_000_000;
export { MAX_CALL_DEPTH, STACK_FRAME } from './layout.js';

// Internal opcodes for variants that share an opcode byte; everything else keeps its byte.
const SDIV64_K = 0x100, SDIV64_X = 0x101, SMOD64_K = 0x102, SMOD64_X = 0x103;
const SDIV32_K = 0x104, SDIV32_X = 0x105, SMOD32_K = 0x106, SMOD32_X = 0x107;
const MOVSX8_64 = 0x108, MOVSX16_64 = 0x109, MOVSX32_64 = 0x10a, MOVSX8_32 = 0x10b, MOVSX16_32 = 0x10c;
const LE16 = 0x110, LE32 = 0x111, LE64 = 0x112, SWAP16 = 0x113, SWAP32 = 0x114, SWAP64 = 0x115;
const ATOMIC32 = 0x120, ATOMIC64 = 0x130;
const CALL_LOCAL = 0x140;
const INVALID = 0x1f0, PAST_END = 0x1f1;
const JA = 0x05;
const LDDW = 0x18;

const ATOMIC_INDEX: Record<string, number> = { add: 0, or: 1, and: 2, xor: 3 };
const SIGNED_VARIANT: Record<string, number> = {
  sdiv64K: SDIV64_K, sdiv64X: SDIV64_X, smod64K: SMOD64_K, smod64X: SMOD64_X,
  sdiv32K: SDIV32_K, sdiv32X: SDIV32_X, smod32K: SMOD32_K, smod32X: SMOD32_X,
};
const MOVSX_VARIANT: Record<string, number> = {
  '8/64': MOVSX8_64, '16/64': MOVSX16_64, '32/64': MOVSX32_64, '8/32': MOVSX8_32, '16/32': MOVSX16_32,
};
const END_VARIANT: Record<string, number> = {
  le16: LE16, le32: LE32, le64: LE64, be16: SWAP16, be32: SWAP32, be64: SWAP64,
  bswap16: SWAP16, bswap32: SWAP32, bswap64: SWAP64,
};
const MAX_REG = 10;
const FRAME_WORDS = 11; // return slot, r6-r9 and r10 as halves

/** Unwinds the run loop on a fault; caught in `run`, never escapes. */
class FaultSignal {
  constructor(readonly fault: Fault) {}
}

/** The last region hit by loads (or by stores): checked inline before asking the RegionTable. */

/** The internal opcode of a classified slot. */
function internalOp(insn: Insn, c: Classified): number {
  const k = c.srcReg ? 'X' : 'K';
  switch (c.form) {
    case 'alu':
      if (c.alu === 'sdiv' || c.alu === 'smod') return SIGNED_VARIANT[`${c.alu}${c.wide ? 64 : 32}${k}`];
      if (c.alu === 'movsx') return MOVSX_VARIANT[`${c.signExtend}/${c.wide ? 64 : 32}`];
      return insn.code;
    case 'end':
      return END_VARIANT[c.mnemonic];
    case 'atomic': {
      const base = c.size === 8 ? ATOMIC64 : ATOMIC32;
      if (c.atomic === 'xchg') return base + 8;
      if (c.atomic === 'cmpxchg') return base + 9;
      return base + ATOMIC_INDEX[c.atomic ?? 'add'] + (c.fetch ? 4 : 0);
    }
    case 'ja':
      return JA;
    case 'call':
      return c.local ? CALL_LOCAL : insn.code;
    default:
      return insn.code;
  }
}

export class Interpreter {
  readonly program: Program;
  readonly helpers: HelperRegistry;
  private readonly n: number;
  private readonly op: Uint16Array;
  private readonly dst: Uint8Array;
  private readonly src: Uint8Array;
  private readonly off: Int16Array;
  private readonly imm: Int32Array;
  /** Per memory instruction: the region it last hit ([base, end) and a view of its bytes). */
  private readonly cacheBase: Float64Array;
  private readonly cacheEnd: Float64Array;
  private readonly cacheView: DataView[];
  private readonly views = new WeakMap<Uint8Array, DataView>();
  /** Upper half of an lddw's value, at its first slot. */
  private readonly imm2: Int32Array;
  /** Absolute target of jumps and local calls. */
  private readonly tgt: Int32Array;
  private readonly invalidReason = new Map<number, string>();
  private readonly relocSlots: { slot: number; section: number; addend: number }[] = [];
  private table: RegionTable | undefined;

  constructor(prog: Program, opts: InterpreterOptions = {}) {
    this.program = prog;
    this.helpers = opts.helpers ?? conformanceHelpers();
    const insns = prog.insns;
    const n = insns.length;
    this.n = n;
    // One extra slot so that running off the end is an ordinary (faulting) opcode.
    this.op = new Uint16Array(n + 1);
    this.dst = new Uint8Array(n + 1);
    this.src = new Uint8Array(n + 1);
    this.off = new Int16Array(n + 1);
    this.imm = new Int32Array(n + 1);
    this.cacheBase = new Float64Array(n + 1);
    this.cacheEnd = new Float64Array(n + 1);
    this.cacheView = new Array<DataView>(n + 1).fill(new DataView(new ArrayBuffer(0)));
    this.imm2 = new Int32Array(n + 1);
    this.tgt = new Int32Array(n + 1);
    this.op[n] = PAST_END;
    const relocAt = new Map<number, number>();
    prog.relocs.forEach((r, i) => relocAt.set(r.slot, i));
    for (let i = 0; i < n; i++) {
      const insn = insns[i];
      this.dst[i] = insn.dst;
      this.src[i] = insn.src;
      this.off[i] = insn.off;
      this.imm[i] = insn.imm;
      const c = classify(insn);
      const reason = isInvalid(c) ? c.error : this.check(insns, i, c, relocAt.has(i));
      if (reason !== undefined || isInvalid(c)) {
        this.op[i] = INVALID;
        this.invalidReason.set(i, reason ?? 'invalid instruction');
        continue;
      }
      this.op[i] = internalOp(insn, c);
      if (c.form === 'lddw') {
        this.imm2[i] = insns[i + 1].imm;
        this.op[i + 1] = INVALID;
        this.invalidReason.set(i + 1, `slot ${i + 1} is the second half of the lddw at ${i}, not an instruction`);
        i++;
      }
    }
    for (const [slot, ri] of relocAt) {
      const r = prog.relocs[ri];
      if (this.op[slot] !== LDDW) {
        this.op[slot] = INVALID;
        this.invalidReason.set(slot, `relocation ${ri} applies to a slot that is not an lddw`);
      } else if (r.section < 0 || r.section >= prog.data.length) {
        this.op[slot] = INVALID;
        this.invalidReason.set(slot, `relocation ${ri} refers to data section ${r.section}, which does not exist`);
      } else {
        this.relocSlots.push(r);
      }
    }
  }

  /** The region table of the latest run (for inspecting memory after it). */
  get regions(): RegionTable | undefined {
    return this.table;
  }

  /** Checks the classifier leaves to the verifier; also computes jump targets. */
  private check(insns: readonly Insn[], i: number, c: Classified, relocated: boolean): string | undefined {
    const insn = insns[i];
    if (insn.dst > MAX_REG) return `register %r${insn.dst} does not exist`;
    if (c.form !== 'lddw' && c.form !== 'call' && insn.src > MAX_REG) return `register %r${insn.src} does not exist`;
    const n = insns.length;
    switch (c.form) {
      case 'lddw':
        if (i + 1 >= n) return 'lddw needs a second slot, but the program ends';
        if (insn.src !== 0 && !relocated) return `lddw src ${insn.src} (${LDDW_SRC[insn.src]}) needs a map, which this runtime does not provide`;
        return undefined;
      case 'ja':
      case 'jcond':
      case 'call': {
        if (c.form === 'call' && !c.local) return undefined;
        const rel = c.form === 'ja' && !c.wide ? insn.imm : c.form === 'call' ? insn.imm : insn.off;
        const t = i + 1 + rel;
        if (t < 0 || t >= n) return `target ${t} is outside the program (${n} slots)`;
        this.tgt[i] = t;
        return undefined;
      }
      default:
        return undefined;
    }
  }

  run(opts: RunOptions = {}): RunResult {
    const budget = opts.budget ?? DEFAULT_BUDGET;
    if (!(budget >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${budget})`);
    const prog = this.program;
    const layout = containerLayout(prog, opts.mem, opts.regions);
    const regions = layout.regions;
    const table = new RegionTable(regions);
    this.table = table;
    for (const r of this.relocSlots) {
      const v = layout.data[r.section].base + r.addend;
      this.imm[r.slot] = v | 0;
      this.imm2[r.slot] = Math.floor(v / 4294967296) | 0;
    }
    return this.loop(table, regions, layout.mem, budget);
  }

  private loop(table: RegionTable, regions: readonly Region[], memRegion: Region | undefined, budget: number): RunResult {
    const OP = this.op, DST = this.dst, SRC = this.src, OFF = this.off, IMM = this.imm, IMM2 = this.imm2, TGT = this.tgt;
    const L = new Int32Array(MAX_REG + 1);
    const H = new Int32Array(MAX_REG + 1);
    const frames = new Int32Array(MAX_CALL_DEPTH * FRAME_WORDS);
    const stackTop = regions[0].base + regions[0].bytes.length;
    // Each memory instruction remembers the region it last hit: a loop that alternates between
    // regions (a table in .rodata, the context, the stack) then never misses.
    const CB = this.cacheBase, CE = this.cacheEnd, VW = this.cacheView;
    CE.fill(0); // end 0: every slot misses once per run (regions are fresh each run)
    const ctx = this.helperContext(table);
    const helpers = this.helpers;
    L[1] = memRegion ? memRegion.base : 0;
    L[2] = memRegion ? memRegion.bytes.length : 0;
    L[10] = stackTop;
    let depth = 0;
    let steps = 0;
    let pc = this.program.entry;
    if (!(pc >= 0 && pc < this.n)) {
      return { ok: false, steps: 0, fault: { kind: 'invalid', pc, message: `invalid entry point ${pc}: the program has ${this.n} slots` } };
    }
    let p = pc;
    try {
      for (;;) {
        p = pc++;
        if (++steps > budget) {
          steps--;
          throw this.fault('budget', p, `executed ${budget} instructions without exiting`);
        }
        const d = DST[p];
        const s = SRC[p];
        switch (OP[p]) {
          // ---- ALU64 ----
          case 0x07: { const b = IMM[p]; const r = (L[d] >>> 0) + (b >>> 0); L[d] = r | 0; H[d] = (H[d] + (b >> 31) + (r > 0xffffffff ? 1 : 0)) | 0; break; }
          case 0x0f: { const r = (L[d] >>> 0) + (L[s] >>> 0); L[d] = r | 0; H[d] = (H[d] + H[s] + (r > 0xffffffff ? 1 : 0)) | 0; break; }
          case 0x17: { const b = IMM[p]; const r = (L[d] >>> 0) - (b >>> 0); L[d] = r | 0; H[d] = (H[d] - (b >> 31) - (r < 0 ? 1 : 0)) | 0; break; }
          case 0x1f: { const r = (L[d] >>> 0) - (L[s] >>> 0); L[d] = r | 0; H[d] = (H[d] - H[s] - (r < 0 ? 1 : 0)) | 0; break; }
          case 0x27: { const b = IMM[p]; mul64(L, H, d, b, b >> 31); break; }
          case 0x2f: mul64(L, H, d, L[s], H[s]); break;
          case 0x37: { const b = IMM[p]; udiv64(L, H, d, b, b >> 31); break; }
          case 0x3f: udiv64(L, H, d, L[s], H[s]); break;
          case 0x47: { const b = IMM[p]; L[d] |= b; H[d] |= b >> 31; break; }
          case 0x4f: L[d] |= L[s]; H[d] |= H[s]; break;
          case 0x57: { const b = IMM[p]; L[d] &= b; H[d] &= b >> 31; break; }
          case 0x5f: L[d] &= L[s]; H[d] &= H[s]; break;
          case 0x67: lsh64(L, H, d, IMM[p]); break;
          case 0x6f: lsh64(L, H, d, L[s]); break;
          case 0x77: rsh64(L, H, d, IMM[p]); break;
          case 0x7f: rsh64(L, H, d, L[s]); break;
          case 0x87: { const r = 0 - (L[d] >>> 0); L[d] = r | 0; H[d] = (0 - H[d] - (r < 0 ? 1 : 0)) | 0; break; }
          case 0x97: { const b = IMM[p]; umod64(L, H, d, b, b >> 31); break; }
          case 0x9f: umod64(L, H, d, L[s], H[s]); break;
          case 0xa7: { const b = IMM[p]; L[d] ^= b; H[d] ^= b >> 31; break; }
          case 0xaf: L[d] ^= L[s]; H[d] ^= H[s]; break;
          case 0xb7: { const b = IMM[p]; L[d] = b; H[d] = b >> 31; break; }
          case 0xbf: L[d] = L[s]; H[d] = H[s]; break;
          case 0xc7: arsh64(L, H, d, IMM[p]); break;
          case 0xcf: arsh64(L, H, d, L[s]); break;
          case SDIV64_K: { const b = IMM[p]; sdiv64(L, H, d, b, b >> 31); break; }
          case SDIV64_X: sdiv64(L, H, d, L[s], H[s]); break;
          case SMOD64_K: { const b = IMM[p]; smod64(L, H, d, b, b >> 31); break; }
          case SMOD64_X: smod64(L, H, d, L[s], H[s]); break;
          case MOVSX8_64: { const v = (L[s] << 24) >> 24; L[d] = v; H[d] = v >> 31; break; }
          case MOVSX16_64: { const v = (L[s] << 16) >> 16; L[d] = v; H[d] = v >> 31; break; }
          case MOVSX32_64: { const v = L[s]; L[d] = v; H[d] = v >> 31; break; }

          // ---- ALU32: results zero-extended ----
          case 0x04: L[d] = (L[d] + IMM[p]) | 0; H[d] = 0; break;
          case 0x0c: L[d] = (L[d] + L[s]) | 0; H[d] = 0; break;
          case 0x14: L[d] = (L[d] - IMM[p]) | 0; H[d] = 0; break;
          case 0x1c: L[d] = (L[d] - L[s]) | 0; H[d] = 0; break;
          case 0x24: L[d] = Math.imul(L[d], IMM[p]); H[d] = 0; break;
          case 0x2c: L[d] = Math.imul(L[d], L[s]); H[d] = 0; break;
          case 0x34: { const b = IMM[p] >>> 0; L[d] = b === 0 ? 0 : ((L[d] >>> 0) / b) | 0; H[d] = 0; break; }
          case 0x3c: { const b = L[s] >>> 0; L[d] = b === 0 ? 0 : ((L[d] >>> 0) / b) | 0; H[d] = 0; break; }
          case 0x44: L[d] |= IMM[p]; H[d] = 0; break;
          case 0x4c: L[d] |= L[s]; H[d] = 0; break;
          case 0x54: L[d] &= IMM[p]; H[d] = 0; break;
          case 0x5c: L[d] &= L[s]; H[d] = 0; break;
          case 0x64: L[d] <<= IMM[p]; H[d] = 0; break; // JS masks shift counts with & 31, as eBPF does
          case 0x6c: L[d] <<= L[s]; H[d] = 0; break;
          case 0x74: L[d] = L[d] >>> IMM[p]; H[d] = 0; break;
          case 0x7c: L[d] = L[d] >>> L[s]; H[d] = 0; break;
          case 0x84: L[d] = -L[d] | 0; H[d] = 0; break;
          case 0x94: { const b = IMM[p] >>> 0; if (b !== 0) L[d] = (L[d] >>> 0) % b; H[d] = 0; break; }
          case 0x9c: { const b = L[s] >>> 0; if (b !== 0) L[d] = (L[d] >>> 0) % b; H[d] = 0; break; }
          case 0xa4: L[d] ^= IMM[p]; H[d] = 0; break;
          case 0xac: L[d] ^= L[s]; H[d] = 0; break;
          case 0xb4: L[d] = IMM[p]; H[d] = 0; break;
          case 0xbc: L[d] = L[s]; H[d] = 0; break;
          case 0xc4: L[d] >>= IMM[p]; H[d] = 0; break;
          case 0xcc: L[d] >>= L[s]; H[d] = 0; break;
          // Int32 division truncates; INT_MIN / -1 = 2^31 wraps back to INT_MIN through `| 0`.
          case SDIV32_K: { const b = IMM[p]; L[d] = b === 0 ? 0 : (L[d] / b) | 0; H[d] = 0; break; }
          case SDIV32_X: { const b = L[s]; L[d] = b === 0 ? 0 : (L[d] / b) | 0; H[d] = 0; break; }
          case SMOD32_K: { const b = IMM[p]; if (b !== 0) L[d] = L[d] % b; H[d] = 0; break; }
          case SMOD32_X: { const b = L[s]; if (b !== 0) L[d] = L[d] % b; H[d] = 0; break; }
          case MOVSX8_32: L[d] = (L[s] << 24) >> 24; H[d] = 0; break;
          case MOVSX16_32: L[d] = (L[s] << 16) >> 16; H[d] = 0; break;

          // ---- byte order ----
          case LE16: L[d] &= 0xffff; H[d] = 0; break;
          case LE32: H[d] = 0; break;
          case LE64: break;
          case SWAP16: L[d] = swap16(L[d]); H[d] = 0; break;
          case SWAP32: L[d] = swap32(L[d]); H[d] = 0; break;
          case SWAP64: { const lo = L[d]; L[d] = swap32(H[d]); H[d] = swap32(lo); break; }

          // ---- lddw ----
          case LDDW: L[d] = IMM[p]; H[d] = IMM2[p]; pc++; break;

          // ---- loads: fast path when the address's upper half is 0 and it lies in the cached region ----
          case 0x61: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 4 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 4, false); L[d] = VW[p].getInt32(o, true); H[d] = 0; break; }
          case 0x69: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 2 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 2, false); L[d] = VW[p].getUint16(o, true); H[d] = 0; break; }
          case 0x71: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 1 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 1, false); L[d] = VW[p].getUint8(o); H[d] = 0; break; }
          case 0x79: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 8 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 8, false); L[d] = VW[p].getInt32(o, true); H[d] = VW[p].getInt32(o + 4, true); break; }
          case 0x81: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 4 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 4, false); const v = VW[p].getInt32(o, true); L[d] = v; H[d] = v >> 31; break; }
          case 0x89: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 2 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 2, false); const v = VW[p].getInt16(o, true); L[d] = v; H[d] = v >> 31; break; }
          case 0x91: { const a = (L[s] >>> 0) + OFF[p]; const o = H[s] === 0 && a >= CB[p] && a + 1 <= CE[p] ? a - CB[p] : this.miss(table, p, L[s], H[s], 1, false); const v = VW[p].getInt8(o); L[d] = v; H[d] = v >> 31; break; }

          // ---- stores ----
          case 0x62: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 4 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 4, true); VW[p].setInt32(o, IMM[p], true); break; }
          case 0x6a: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 2 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 2, true); VW[p].setInt16(o, IMM[p], true); break; }
          case 0x72: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 1 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 1, true); VW[p].setInt8(o, IMM[p]); break; }
          case 0x7a: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 8 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 8, true); const v = IMM[p]; VW[p].setInt32(o, v, true); VW[p].setInt32(o + 4, v >> 31, true); break; }
          case 0x63: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 4 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 4, true); VW[p].setInt32(o, L[s], true); break; }
          case 0x6b: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 2 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 2, true); VW[p].setInt16(o, L[s], true); break; }
          case 0x73: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 1 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 1, true); VW[p].setInt8(o, L[s]); break; }
          case 0x7b: { const a = (L[d] >>> 0) + OFF[p]; const o = H[d] === 0 && a >= CB[p] && a + 8 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 8, true); VW[p].setInt32(o, L[s], true); VW[p].setInt32(o + 4, H[s], true); break; }

          // ---- atomics: ATOMIC32/64 + add, or, and, xor, (fetch) +4, xchg 8, cmpxchg 9 ----
          case ATOMIC32: case ATOMIC32 + 1: case ATOMIC32 + 2: case ATOMIC32 + 3:
          case ATOMIC32 + 4: case ATOMIC32 + 5: case ATOMIC32 + 6: case ATOMIC32 + 7:
          case ATOMIC32 + 8: case ATOMIC32 + 9:
            this.atomic32(OP[p] - ATOMIC32, table, p, L, H, d, s);
            break;
          case ATOMIC64: case ATOMIC64 + 1: case ATOMIC64 + 2: case ATOMIC64 + 3:
          case ATOMIC64 + 4: case ATOMIC64 + 5: case ATOMIC64 + 6: case ATOMIC64 + 7:
          case ATOMIC64 + 8: case ATOMIC64 + 9:
            this.atomic64(OP[p] - ATOMIC64, table, p, L, H, d, s);
            break;

          // ---- JMP: 64-bit compares, imm sign-extended ----
          case JA: pc = TGT[p]; break;
          case 0x15: { const b = IMM[p]; if (L[d] === b && H[d] === b >> 31) pc = TGT[p]; break; }
          case 0x1d: if (L[d] === L[s] && H[d] === H[s]) pc = TGT[p]; break;
          case 0x25: { const b = IMM[p]; if (ugt(H[d], L[d], b >> 31, b)) pc = TGT[p]; break; }
          case 0x2d: if (ugt(H[d], L[d], H[s], L[s])) pc = TGT[p]; break;
          case 0x35: { const b = IMM[p]; if (uge(H[d], L[d], b >> 31, b)) pc = TGT[p]; break; }
          case 0x3d: if (uge(H[d], L[d], H[s], L[s])) pc = TGT[p]; break;
          case 0x45: { const b = IMM[p]; if ((L[d] & b) !== 0 || (H[d] & (b >> 31)) !== 0) pc = TGT[p]; break; }
          case 0x4d: if ((L[d] & L[s]) !== 0 || (H[d] & H[s]) !== 0) pc = TGT[p]; break;
          case 0x55: { const b = IMM[p]; if (L[d] !== b || H[d] !== b >> 31) pc = TGT[p]; break; }
          case 0x5d: if (L[d] !== L[s] || H[d] !== H[s]) pc = TGT[p]; break;
          case 0x65: { const b = IMM[p]; if (sgt(H[d], L[d], b >> 31, b)) pc = TGT[p]; break; }
          case 0x6d: if (sgt(H[d], L[d], H[s], L[s])) pc = TGT[p]; break;
          case 0x75: { const b = IMM[p]; if (sge(H[d], L[d], b >> 31, b)) pc = TGT[p]; break; }
          case 0x7d: if (sge(H[d], L[d], H[s], L[s])) pc = TGT[p]; break;
          case 0xa5: { const b = IMM[p]; if (ugt(b >> 31, b, H[d], L[d])) pc = TGT[p]; break; }
          case 0xad: if (ugt(H[s], L[s], H[d], L[d])) pc = TGT[p]; break;
          case 0xb5: { const b = IMM[p]; if (uge(b >> 31, b, H[d], L[d])) pc = TGT[p]; break; }
          case 0xbd: if (uge(H[s], L[s], H[d], L[d])) pc = TGT[p]; break;
          case 0xc5: { const b = IMM[p]; if (sgt(b >> 31, b, H[d], L[d])) pc = TGT[p]; break; }
          case 0xcd: if (sgt(H[s], L[s], H[d], L[d])) pc = TGT[p]; break;
          case 0xd5: { const b = IMM[p]; if (sge(b >> 31, b, H[d], L[d])) pc = TGT[p]; break; }
          case 0xdd: if (sge(H[s], L[s], H[d], L[d])) pc = TGT[p]; break;

          // ---- JMP32: low halves only ----
          case 0x16: if (L[d] === IMM[p]) pc = TGT[p]; break;
          case 0x1e: if (L[d] === L[s]) pc = TGT[p]; break;
          case 0x26: if (L[d] >>> 0 > IMM[p] >>> 0) pc = TGT[p]; break;
          case 0x2e: if (L[d] >>> 0 > L[s] >>> 0) pc = TGT[p]; break;
          case 0x36: if (L[d] >>> 0 >= IMM[p] >>> 0) pc = TGT[p]; break;
          case 0x3e: if (L[d] >>> 0 >= L[s] >>> 0) pc = TGT[p]; break;
          case 0x46: if ((L[d] & IMM[p]) !== 0) pc = TGT[p]; break;
          case 0x4e: if ((L[d] & L[s]) !== 0) pc = TGT[p]; break;
          case 0x56: if (L[d] !== IMM[p]) pc = TGT[p]; break;
          case 0x5e: if (L[d] !== L[s]) pc = TGT[p]; break;
          case 0x66: if (L[d] > IMM[p]) pc = TGT[p]; break;
          case 0x6e: if (L[d] > L[s]) pc = TGT[p]; break;
          case 0x76: if (L[d] >= IMM[p]) pc = TGT[p]; break;
          case 0x7e: if (L[d] >= L[s]) pc = TGT[p]; break;
          case 0xa6: if (L[d] >>> 0 < IMM[p] >>> 0) pc = TGT[p]; break;
          case 0xae: if (L[d] >>> 0 < L[s] >>> 0) pc = TGT[p]; break;
          case 0xb6: if (L[d] >>> 0 <= IMM[p] >>> 0) pc = TGT[p]; break;
          case 0xbe: if (L[d] >>> 0 <= L[s] >>> 0) pc = TGT[p]; break;
          case 0xc6: if (L[d] < IMM[p]) pc = TGT[p]; break;
          case 0xce: if (L[d] < L[s]) pc = TGT[p]; break;
          case 0xd6: if (L[d] <= IMM[p]) pc = TGT[p]; break;
          case 0xde: if (L[d] <= L[s]) pc = TGT[p]; break;

          // ---- calls ----
          case CALL_LOCAL: {
            if (depth + 1 >= MAX_CALL_DEPTH) {
              throw this.fault('call-depth', p, `a call nested ${MAX_CALL_DEPTH + 1} frames deep; the stack holds ${MAX_CALL_DEPTH} frames of ${STACK_FRAME} bytes`);
            }
            const f = depth * FRAME_WORDS;
            frames[f] = pc;
            for (let r = 6, k = f + 1; r <= 10; r++, k += 2) {
              frames[k] = L[r];
              frames[k + 1] = H[r];
            }
            depth++;
            L[10] = stackTop - depth * STACK_FRAME;
            H[10] = 0;
            pc = TGT[p];
            break;
          }
          case 0x85:
          case 0x8d: {
            const isX = OP[p] === 0x8d;
            const id = isX ? L[d] : IMM[p];
            const def = isX && H[d] !== 0 ? undefined : helpers.get(isX ? id >>> 0 : id);
            if (def === undefined) {
              const shown = isX ? `0x${((BigInt(H[d] >>> 0) << 32n) | BigInt(L[d] >>> 0)).toString(16)} (from %r${d})` : `${id}`;
              throw this.fault('unknown-helper', p, `no helper is registered with id ${shown}`);
            }
            let res: HelperResult;
            try {
              res = def.call(ctx, big(L, H, 1), big(L, H, 2), big(L, H, 3), big(L, H, 4), big(L, H, 5));
            } catch (e) {
              if (e instanceof HelperError) throw this.fault('helper', p, `${def.name}: ${e.message}`);
              throw e;
            }
            if (typeof res === 'bigint') {
              setReg(L, H, 0, res);
            } else {
              return { ok: true, r0: BigInt.asUintN(64, res.r0), steps };
            }
            break;
          }
          case 0x95: {
            if (depth === 0) return { ok: true, r0: (BigInt(H[0] >>> 0) << 32n) | BigInt(L[0] >>> 0), steps };
            depth--;
            const f = depth * FRAME_WORDS;
            pc = frames[f];
            for (let r = 6, k = f + 1; r <= 10; r++, k += 2) {
              L[r] = frames[k];
              H[r] = frames[k + 1];
            }
            break;
          }

          case PAST_END:
            throw this.fault('invalid', p, `execution ran past the last instruction (slot ${this.n - 1})`);
          default:
            throw this.fault('invalid', p, this.invalidReason.get(p) ?? `unknown opcode 0x${OP[p].toString(16)}`);
        }
      }
    } catch (e) {
      if (e instanceof FaultSignal) return { ok: false, fault: e.fault, steps };
      throw e;
    }
  }

  private viewOf(r: Region): DataView {
    let v = this.views.get(r.bytes);
    if (!v) {
      v = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
      this.views.set(r.bytes, v);
    }
    return v;
  }

  /** The slow path of a memory access: find the region (and cache it) or fault. Returns the offset in it. */
  private miss(table: RegionTable, p: number, lo: number, hi: number, size: number, write: boolean): number {
    const off = this.off[p];
    let a = (lo >>> 0) + off;
    let h = hi;
    if (a < 0 || a > 0xffffffff) {
      h = (h + (a < 0 ? -1 : 1)) | 0;
      a = a >>> 0;
    }
    const r = table.find(a, h, size, write);
    if (typeof r === 'string') {
      const addr = (BigInt(h >>> 0) << 32n) | BigInt(a);
      throw this.fault(r, p, table.describe(addr, size, write), addr, size);
    }
    this.cacheBase[p] = r.base;
    this.cacheEnd[p] = r.base + r.bytes.length;
    this.cacheView[p] = this.viewOf(r);
    return a - r.base;
  }

  private atomic32(k: number, table: RegionTable, p: number, L: Int32Array, H: Int32Array, d: number, s: number): void {
    const a = (L[d] >>> 0) + this.off[p];
    const CB = this.cacheBase, CE = this.cacheEnd;
    const o = H[d] === 0 && a >= CB[p] && a + 4 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 4, true);
    const view = this.cacheView[p];
    const old = view.getInt32(o, true);
    const v = L[s];
    let nv = old;
    switch (k) {
      case 0: case 4: nv = (old + v) | 0; break;
      case 1: case 5: nv = old | v; break;
      case 2: case 6: nv = old & v; break;
      case 3: case 7: nv = old ^ v; break;
      case 8: nv = v; break;
      case 9: if (old === L[0]) nv = v; break;
    }
    view.setInt32(o, nv, true);
    if (k === 9) {
      L[0] = old;
      H[0] = 0;
    } else if (k >= 4) {
      L[s] = old;
      H[s] = 0;
    }
  }

  private atomic64(k: number, table: RegionTable, p: number, L: Int32Array, H: Int32Array, d: number, s: number): void {
    const a = (L[d] >>> 0) + this.off[p];
    const CB = this.cacheBase, CE = this.cacheEnd;
    const o = H[d] === 0 && a >= CB[p] && a + 8 <= CE[p] ? a - CB[p] : this.miss(table, p, L[d], H[d], 8, true);
    const view = this.cacheView[p];
    const ol = view.getInt32(o, true);
    const oh = view.getInt32(o + 4, true);
    const vl = L[s];
    const vh = H[s];
    let nl = ol;
    let nh = oh;
    switch (k) {
      case 0: case 4: { const r = (ol >>> 0) + (vl >>> 0); nl = r | 0; nh = (oh + vh + (r > 0xffffffff ? 1 : 0)) | 0; break; }
      case 1: case 5: nl = ol | vl; nh = oh | vh; break;
      case 2: case 6: nl = ol & vl; nh = oh & vh; break;
      case 3: case 7: nl = ol ^ vl; nh = oh ^ vh; break;
      case 8: nl = vl; nh = vh; break;
      case 9: if (ol === L[0] && oh === H[0]) { nl = vl; nh = vh; } break;
    }
    view.setInt32(o, nl, true);
    view.setInt32(o + 4, nh, true);
    if (k === 9) {
      L[0] = ol;
      H[0] = oh;
    } else if (k >= 4) {
      L[s] = ol;
      H[s] = oh;
    }
  }

  private fault(kind: FaultKind, pc: number, detail: string, addr?: bigint, size?: number): FaultSignal {
    const text = pc >= 0 && pc < this.n ? disasmInsn(this.program.insns, pc) : 'end of program';
    const fault: Fault = { kind, pc, message: `${FAULT_TITLE[kind]} at instruction ${pc} (${text}): ${detail}` };
    if (addr !== undefined) fault.addr = addr;
    if (size !== undefined) fault.size = size;
    return new FaultSignal(fault);
  }

  private helperContext(table: RegionTable): HelperContext {
    return regionHelperContext(() => table);
  }
}

function big(L: Int32Array, H: Int32Array, r: number): bigint {
  return (BigInt(H[r] >>> 0) << 32n) | BigInt(L[r] >>> 0);
}

function setReg(L: Int32Array, H: Int32Array, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  L[r] = Number(u & 0xffffffffn) | 0;
  H[r] = Number(u >> 32n) | 0;
}

/** Runs a program once with a fresh interpreter. */
export function interpret(prog: Program, opts: RunOptions & InterpreterOptions = {}): RunResult {
  return new Interpreter(prog, { helpers: opts.helpers }).run(opts);
}
