// Random but valid eBPF programs for differential tests: every ALU operation at both widths with
// register and immediate operands, byte swaps, movsx, lddw (plain and relocated to data sections),
// loads/stores/atomics into the stack, the input memory and data sections (in bounds, and now and
// then out of bounds or into read-only data on purpose, so faults are exercised), forward branches
// of every condition, bounded loops, local calls and helper calls. Deterministic per seed; every
// program passes verifyStructure (generateProgram checks, so a generator bug cannot hide).
//
// Register discipline (what keeps programs valid and terminating): r9 holds the memory pointer,
// r8/r7 are loop counters that loop bodies never write, r0-r6 hold values. Every function
// initialises its registers first, and r1-r5 are re-initialised after every call.
import { assembleProgram } from '../../compiler/asm.js';
import type { DataSection, DataReloc, Program } from '../../compiler/program.js';
import { verifyStructure } from '../../compiler/verify/structural.js';

export interface GenOptions {
  /** Statements per function, roughly (default 24). */
  size?: number;
  /** Allow deliberate faults: out-of-bounds and read-only accesses, helper id errors (default true). */
  faults?: boolean;
  /** Most callee functions (default 2). */
  callees?: number;
}

export interface GeneratedProgram {
  program: Program;
  mem: Uint8Array;
  /** The assembly text, for failure messages. */
  text: string;
}

/** Helper ids the generated programs call (5 = the conformance suite's unwind helper). */
export const GEN_HELPERS: ReadonlySet<number> = new Set([5]);

/** mulberry32: small, fast, and good enough to spread test cases. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  int32(): number {
    return (this.next() * 4294967296) | 0;
  }
}

const ALU_OPS = ['add', 'sub', 'mul', 'div', 'sdiv', 'mod', 'smod', 'or', 'and', 'lsh', 'rsh', 'arsh', 'xor', 'mov'];
const JMP_OPS = ['jeq', 'jne', 'jgt', 'jge', 'jlt', 'jle', 'jsgt', 'jsge', 'jslt', 'jsle', 'jset'];
const SIZES = [['b', 1], ['h', 2], ['w', 4], ['dw', 8]] as const;
const VALUE_REGS = [0, 1, 2, 3, 4, 5, 6];
const MEM_BASE = 9;
const FP = 10;
/** Marks a relocated lddw: the low 32 bits hold the relocation index. */
const RELOC_MARK = 0x5e1f;

interface Fn {
  name: string;
  lines: string[];
}

class Gen {
  private label = 0;
  private readonly relocs: { section: number; addend: number }[] = [];
  readonly data: DataSection[] = [];
  readonly memSize: number;

  constructor(readonly rng: Rng, readonly opts: Required<GenOptions>) {
    const r = rng;
    this.memSize = r.chance(0.03) ? 0 : 8 * r.int(2, 24);
    if (r.chance(0.35)) {
      this.data.push({ name: '.rodata', bytes: randomBytes(r, 8 * r.int(1, 8)), writable: false });
      this.data.push({ name: '.data', bytes: randomBytes(r, 8 * r.int(1, 8)), writable: true });
    }
  }

  fresh(prefix: string): string {
    return `${prefix}${this.label++}`;
  }

  reg(): string {
    return `%r${this.rng.pick(VALUE_REGS)}`;
  }

  imm(): number {
    const r = this.rng;
    switch (r.int(0, 5)) {
      case 0: return r.pick([0, 1, -1, 2, 7, 8, 31, 32, 33, 63, 64, 255, 0xffff, 0x7fffffff, -0x80000000]);
      case 1: return r.int32();
      case 2: return r.int(-16, 16);
      default: return r.int(0, 300);
    }
  }

  operand(): string {
    return this.rng.chance(0.5) ? this.reg() : `${this.imm()}`;
  }

  lddwValue(): string {
    const r = this.rng;
    const v = r.chance(0.5) ? (BigInt(r.int32() >>> 0) << 32n) | BigInt(r.int32() >>> 0) : BigInt(r.int(0, 0xffff));
    return `0x${v.toString(16)}`;
  }

  /** Straight-line initialisation of the value registers (r1 and r2 only when asked). */
  initRegs(out: string[], regs: number[]): void {
    for (const d of regs) {
      const r = this.rng;
      if (r.chance(0.2)) out.push(`lddw %r${d}, ${this.lddwValue()}`);
      else out.push(`${r.chance(0.5) ? 'mov' : 'mov32'} %r${d}, ${this.imm()}`);
    }
  }

  /** r1 = the memory pointer, r2-r5 = arbitrary values: before and after calls. */
  argRegs(out: string[]): void {
    out.push(`mov %r1, %r${MEM_BASE}`);
    this.initRegs(out, [2, 3, 4, 5]);
  }

  alu(out: string[]): void {
    const r = this.rng;
    const op = r.pick(ALU_OPS);
    const w = r.chance(0.5) ? '' : '32';
    out.push(`${op}${w} ${this.reg()}, ${this.operand()}`);
  }

  unary(out: string[]): void {
    const r = this.rng;
    switch (r.int(0, 3)) {
      case 0: out.push(`neg${r.chance(0.5) ? '' : '32'} ${this.reg()}`); break;
      case 1: out.push(`${r.pick(['movsx864', 'movsx1664', 'movsx3264', 'movsx832', 'movsx1632'])} ${this.reg()}, ${this.reg()}`); break;
      case 2: out.push(`${r.pick(['le', 'be', 'bswap'])}${r.pick([16, 32, 64])} ${this.reg()}`); break;
      default: out.push(`lddw ${this.reg()}, ${this.lddwValue()}`); break;
    }
  }

  /** A memory operand `[%rB+off]` for an access of `size` bytes, possibly preceded by set-up code. */
  address(out: string[], size: number, write: boolean, atomic: boolean): string {
    const r = this.rng;
    const bad = this.opts.faults && r.chance(0.015);
    const align = (o: number): number => (atomic || size === 8 || r.chance(0.7) ? o - (((o % size) + size) % size) : o);
    const kind = r.int(0, 9);
    if (kind < 3) {
      // The stack: constant offsets must stay in the frame (the verifier checks them).
      return `[%r${FP}${align(-r.int(size, 512))}]`;
    }
    if (kind < 4 && this.data.length > 0) {
      const section = write && !(bad && r.chance(0.5)) ? 1 : r.int(0, 1);
      const len = this.data[section].bytes.length;
      const d = this.rng.pick([3, 4, 5, 6]);
      this.relocs.push({ section, addend: 0 });
      out.push(`lddw %r${d}, 0x${RELOC_MARK.toString(16)}${(this.relocs.length - 1).toString(16).padStart(8, '0')}`);
      const off = bad ? len - size + r.int(1, 8) : align(r.int(0, len - size));
      return `[%r${d}${off < 0 ? off : `+${off}`}]`;
    }
    if (kind < 6 && this.memSize >= 16) {
      // A computed pointer: mem + (value & mask), the mask sometimes too wide for the memory.
      const d = r.pick([3, 4, 5, 6]);
      const maxMask = bad ? 0xff : Math.max(0, (1 << Math.floor(Math.log2(this.memSize - 8))) - 8);
      const mask = (maxMask & ~(atomic || size === 8 ? 7 : 0)) >>> 0;
      out.push(`and ${`%r${d}`}, ${mask}`);
      out.push(`add %r${d}, %r${MEM_BASE}`);
      return `[%r${d}+0]`;
    }
    const limit = this.memSize - size;
    let off = limit >= 0 ? align(r.int(0, limit)) : 0;
    if (bad) off = r.chance(0.5) ? this.memSize - size + r.int(1, 8) : -r.int(1, 8);
    return `[%r${MEM_BASE}${off < 0 ? off : `+${off}`}]`;
  }

  memory(out: string[]): void {
    const r = this.rng;
    const [sfx, size] = r.pick(SIZES);
    switch (r.int(0, 4)) {
      case 0: case 1: {
        const signed = size < 8 && r.chance(0.3) ? 's' : '';
        const at = this.address(out, size, false, false);
        out.push(`ldx${signed}${sfx} ${this.reg()}, ${at}`);
        break;
      }
      case 2: {
        const at = this.address(out, size, true, false);
        out.push(`st${sfx} ${at}, ${this.imm()}`);
        break;
      }
      case 3: {
        const at = this.address(out, size, true, false);
        out.push(`stx${sfx} ${at}, ${this.reg()}`);
        break;
      }
      default: {
        const wide = r.chance(0.5);
        const at = this.address(out, wide ? 8 : 4, true, true);
        const op = r.pick(['add', 'or', 'and', 'xor', 'fetch add', 'fetch or', 'fetch and', 'fetch xor', 'xchg', 'cmpxchg']);
        out.push(`lock ${op}${wide ? '' : '32'} ${at}, ${this.reg()}`);
      }
    }
  }

  cond(): string {
    const r = this.rng;
    return `${r.pick(JMP_OPS)}${r.chance(0.5) ? '' : '32'} ${this.reg()}, ${r.chance(0.5) ? this.reg() : r.int(-4, 40)}`;
  }

  helperCall(out: string[]): void {
    const r = this.rng;
    out.push(`mov %r1, ${r.chance(0.1) ? 0 : r.int(1, 1000)}`);
    if (r.chance(0.3)) {
      const d = r.pick([0, 6]);
      out.push(`mov %r${d}, ${this.opts.faults && r.chance(0.1) ? r.pick([0, 7, -1]) : 5}`);
      out.push(`callx %r${d}`);
    } else {
      out.push('call 5');
    }
    this.argRegs(out);
  }

  /** A sequence of statements; `fn` is the index of the function being generated. */
  seq(out: string[], n: number, depth: number, fn: number, nFns: number): void {
    const r = this.rng;
    for (let k = 0; k < n; k++) {
      const roll = r.int(0, 99);
      if (roll < 34) this.alu(out);
      else if (roll < 44) this.unary(out);
      else if (roll < 62) this.memory(out);
      else if (roll < 72 && depth < 3) this.ifThen(out, depth, fn, nFns);
      else if (roll < 77 && depth < 3) this.ifElse(out, depth, fn, nFns);
      else if (roll < 82 && depth < 2) this.loop(out, depth, fn, nFns);
      else if (roll < 86 && fn + 1 < nFns) {
        this.argRegs(out);
        out.push(`call local f${r.int(fn + 1, nFns - 1)}`);
        this.argRegs(out);
      } else if (roll < 89) this.helperCall(out);
      else if (roll < 91 && depth > 0) out.push('exit');
      else this.alu(out);
    }
  }

  ifThen(out: string[], depth: number, fn: number, nFns: number): void {
    const skip = this.fresh('skip');
    out.push(`${this.cond()}, ${skip}`);
    this.seq(out, this.rng.int(1, 4), depth + 1, fn, nFns);
    out.push(`${skip}:`);
  }

  ifElse(out: string[], depth: number, fn: number, nFns: number): void {
    const other = this.fresh('else');
    const end = this.fresh('end');
    out.push(`${this.cond()}, ${other}`);
    this.seq(out, this.rng.int(1, 3), depth + 1, fn, nFns);
    out.push(`ja ${end}`);
    out.push(`${other}:`);
    this.seq(out, this.rng.int(1, 3), depth + 1, fn, nFns);
    out.push(`${end}:`);
  }

  /** A loop run 1..5 times on counter r8 (outer) or r7 (inner), which the body never writes. */
  loop(out: string[], depth: number, fn: number, nFns: number): void {
    const r = this.rng;
    const c = depth === 0 ? '%r8' : '%r7';
    const head = this.fresh('loop');
    out.push(`mov ${c}, ${r.int(1, 5)}`);
    out.push(`${head}:`);
    if (r.chance(0.3)) {
      // Test at the top, back edge by ja.
      const exit = this.fresh('done');
      out.push(`jeq ${c}, 0, ${exit}`);
      this.seq(out, r.int(1, 5), depth + 1, fn, nFns);
      out.push(`sub ${c}, 1`);
      out.push(`ja ${head}`);
      out.push(`${exit}:`);
    } else {
      this.seq(out, r.int(1, 5), depth + 1, fn, nFns);
      out.push(`sub${r.chance(0.5) ? '' : '32'} ${c}, 1`);
      out.push(`${r.pick(['jne', 'jne32', 'jsgt', 'jgt'])} ${c}, 0, ${head}`);
    }
  }

  fn(index: number, nFns: number): Fn {
    const out: string[] = [];
    const name = index === 0 ? 'main' : `f${index}`;
    out.push(`mov %r${MEM_BASE}, %r1`);
    this.initRegs(out, index === 0 ? [0, 3, 4, 5, 6] : [0, 6]);
    this.seq(out, Math.max(1, Math.round(this.opts.size * (index === 0 ? 1 : 0.5))), 0, index, nFns);
    out.push('exit');
    return { name, lines: out };
  }

  /** Turns the marked lddw values into relocations (the loader zeroes a relocated lddw's value). */
  relocate(p: Program): DataReloc[] {
    const out: DataReloc[] = [];
    for (let i = 0; i + 1 < p.insns.length; i++) {
      const insn = p.insns[i];
      if (insn.code === 0x18 && p.insns[i + 1].imm === RELOC_MARK) {
        const k = insn.imm >>> 0;
        const rel = this.relocs[k];
        out.push({ slot: i, section: rel.section, addend: rel.addend });
        insn.imm = 0;
        p.insns[i + 1].imm = 0;
        i++;
      }
    }
    return out;
  }
}

function randomBytes(r: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => r.int(0, 255));
}

export function generateProgram(seed: number, opts: GenOptions = {}): GeneratedProgram {
  const full: Required<GenOptions> = { size: opts.size ?? 24, faults: opts.faults ?? true, callees: opts.callees ?? 2 };
  const rng = new Rng(seed);
  const g = new Gen(rng, full);
  const nFns = 1 + rng.int(0, full.callees);
  const fns: Fn[] = [];
  for (let i = 0; i < nFns; i++) fns.push(g.fn(i, nFns));
  const text = fns.map((f) => `${f.name}:\n${f.lines.join('\n')}`).join('\n') + '\n';
  const program = assembleProgram(text, `progen:${seed}`);
  program.data = g.data;
  program.relocs = g.relocate(program);
  verifyStructure(program, { helpers: GEN_HELPERS });
  const mem = randomBytes(rng, g.memSize);
  return { program, mem, text };
}
