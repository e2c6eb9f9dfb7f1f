// A loaded eBPF program: what every loader (asm, raw, conformance file, ELF) produces and what the
// verifier, the interpreter and the back ends consume. Addresses are not known here: an `lddw` that
// refers to a data section carries a relocation, resolved when the runtime lays out regions.
import type { Insn } from './opcodes.js';

export interface DataSection {
  /** Section name as in the object: `.rodata`, `.rodata.str1.1`, `.data`, `.bss`. */
  name: string;
  /** Initial contents (zeros for `.bss`). */
  bytes: Uint8Array;
  writable: boolean;
}

/** The `lddw` whose first slot is `slot` loads the address of `data[section]` plus `addend`. */
export interface DataReloc {
  slot: number;
  section: number;
  addend: number;
}

/** A function of the program: slots [start, end). */
export interface FunctionSym {
  name: string;
  start: number;
  end: number;
}

export interface Program {
  /** Instruction slots; an `lddw` occupies two. Jump offsets and diagnostics count slots. */
  insns: Insn[];
  /** Slot where execution starts. */
  entry: number;
  /** Known functions (from ELF symbols or asm labels); may be empty for raw programs. */
  functions: FunctionSym[];
  data: DataSection[];
  relocs: DataReloc[];
  /** Where the program came from, for messages: a file name and, for ELF, the section. */
  origin: string;
}

/** Options shared by the loaders. */
export interface LoadOptions {
  /** Entry point: a function symbol or a program section name (ELF). */
  entry?: string;
  /** Helper names the runtime provides, by name -> id, to resolve `call` relocations. */
  helpers?: ReadonlyMap<string, number>;
}

/** A load failure: bad bytes, bad assembly, a malformed ELF. Message is user-facing. */
export class LoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadError';
  }
}

export function rawProgram(insns: Insn[], origin: string): Program {
  return { insns, entry: 0, functions: [], data: [], relocs: [], origin };
}
