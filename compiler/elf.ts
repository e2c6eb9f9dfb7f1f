// ELF loader for `clang -target bpf -c` objects (clang 14 and 19). Chooses the entry, lays the
// executable sections it needs end to end, resolves call relocations (helpers by name,
// bpf-to-bpf calls across sections) and turns `lddw` relocations against data sections into
// DataRelocs for the runtime, which alone knows where the data regions will live.
//
// How clang encodes calls (checked with llvm-objdump-19 -dr / llvm-readelf-19 -r -s, same in 14
// and 19): a call to a static function in the same section has no relocation and already holds
// the pc-relative offset in imm; a call to a global function is relocated (R_BPF_64_32) against
// the function symbol with imm = -1; a call to a static function in another section is relocated
// against that section's STT_SECTION symbol with imm = (byte offset / 8) - 1. All three agree on
// target = symbol value + (imm + 1) * 8, which is also what libbpf computes. A call to an extern
// helper is relocated against an undefined symbol with src = 1, imm = -1.
import { decode } from './decode.js';
import { disasmInsn } from './disasm.js';
import {
  describeSection, elfError, hasElfMagic, readElf, readRels, readSymbols, sectionAt, sectionBytes,
  SHF, SHN, SHT, STB, STT, type ElfObject, type ElfRel, type ElfSection, type ElfSymbol,
} from './elf-reader.js';
import { LDDW, type Insn } from './opcodes.js';
import type { DataReloc, DataSection, FunctionSym, LoadOptions, Program } from './program.js';

export interface ElfEntry {
  name: string;
  kind: 'section' | 'function';
}

const R_BPF_64_64 = 1;
const R_BPF_64_32 = 10;
const RELOC_NAMES: Record<number, string> = {
  0: 'R_BPF_NONE', 1: 'R_BPF_64_64', 2: 'R_BPF_64_ABS64', 3: 'R_BPF_64_ABS32', 4: 'R_BPF_64_NODYLD32',
  10: 'R_BPF_64_32',
};
const CALL = 0x85;
const SLOT = 8;

/** Everything the loader needs from the object, parsed and checked once. */
interface ElfContext {
  elf: ElfObject;
  symbols: ElfSymbol[];
  /** Executable PROGBITS sections in file order, sizes checked to be whole slots. */
  code: ElfSection[];
  /** Relocations that apply to each executable section, by section index. */
  rels: Map<number, ElfRel[]>;
}

/** A resolved entry point: a section and the byte offset of the first instruction in it. */
interface EntryChoice {
  section: ElfSection;
  offset: number;
}

/** Where each needed executable section landed in the concatenated program. */
interface Layout {
  order: ElfSection[];
  base: Map<number, number>;
  insns: Insn[];
}

export function isElf(bytes: Uint8Array): boolean {
  return hasElfMagic(bytes);
}

/** Program sections that hold code, then global functions: the names `--entry` accepts. */
export function listElfEntries(bytes: Uint8Array, origin = 'ELF object'): ElfEntry[] {
  return entries(parse(bytes, origin));
}

export function loadElf(bytes: Uint8Array, origin: string, opts: LoadOptions = {}): Program {
  const ctx = parse(bytes, origin);
  const entry = chooseEntry(ctx, opts.entry);
  const layout = layOut(ctx, entry.section);
  const data = dataSections(ctx);
  const relocs: DataReloc[] = [];
  for (const sec of layout.order) relocate(ctx, layout, sec, data, relocs, opts.helpers);
  for (const sec of layout.order) checkLocalCalls(ctx, layout, sec);
  return {
    insns: layout.insns,
    entry: slotOf(layout, entry.section, entry.offset),
    functions: functions(ctx, layout),
    data: data.sections,
    relocs,
    origin: `${origin}:${entry.section.name}`,
  };
}

function parse(bytes: Uint8Array, origin: string): ElfContext {
  const elf = readElf(bytes, origin);
  const symtabs = elf.sections.filter((s) => s.type === SHT.SYMTAB);
  if (symtabs.length > 1) throw elfError(elf, `more than one symbol table (${symtabs.map(describeSection).join(', ')})`);
  const symbols = symtabs.length === 1 ? readSymbols(elf, symtabs[0]) : [];
  const code = elf.sections.filter((s) => s.type === SHT.PROGBITS && (s.flags & SHF.EXECINSTR) !== 0);
  for (const sec of code) {
    if (sec.size % SLOT !== 0) throw elfError(elf, `${describeSection(sec)}: size ${sec.size} is not a whole number of ${SLOT}-byte instructions`);
  }
  const rels = new Map<number, ElfRel[]>(code.map((s) => [s.index, []]));
  for (const relSec of elf.sections) {
    if (relSec.type !== SHT.REL && relSec.type !== SHT.RELA) continue;
    const target = sectionAt(elf, relSec.info, `relocation ${describeSection(relSec)} (sh_info)`);
    const list = rels.get(target.index);
    if (list === undefined) continue; // relocations of data, BTF and debug sections do not concern code
    if (relSec.type === SHT.RELA) throw elfError(elf, `${describeSection(relSec)}: RELA relocations are not supported for BPF code`);
    if (symtabs.length === 0 || relSec.link !== symtabs[0].index) {
      throw elfError(elf, `${describeSection(relSec)}: sh_link ${relSec.link} is not the symbol table`);
    }
    for (const rel of readRels(elf, relSec)) list.push(rel); // no spread: sections can exceed the argument limit
  }
  return { elf, symbols, code, rels };
}

const isGlobal = (sym: ElfSymbol): boolean => sym.bind === STB.GLOBAL || sym.bind === STB.WEAK;

/** Global functions defined in an executable section. */
function globalFunctions(ctx: ElfContext): { sym: ElfSymbol; section: ElfSection }[] {
  const out: { sym: ElfSymbol; section: ElfSection }[] = [];
  for (const sym of ctx.symbols) {
    if (sym.type !== STT.FUNC || !isGlobal(sym)) continue;
    const section = ctx.code.find((s) => s.index === sym.shndx);
    if (section) out.push({ sym, section });
  }
  return out;
}

function entries(ctx: ElfContext): ElfEntry[] {
  return [
    ...ctx.code.filter((s) => s.size > 0).map((s): ElfEntry => ({ name: s.name, kind: 'section' })),
    ...globalFunctions(ctx).map(({ sym }): ElfEntry => ({ name: sym.name, kind: 'function' })),
  ];
}

function chooseEntry(ctx: ElfContext, name: string | undefined): EntryChoice {
  const withCode = ctx.code.filter((s) => s.size > 0);
  if (name === undefined) {
    const section = withCode.find((s) => s.name !== '.text') ?? withCode.find((s) => s.name === '.text');
    if (section) return { section, offset: 0 };
    throw elfError(ctx.elf, 'no program code: no executable section holds instructions');
  }
  const section = withCode.find((s) => s.name === name);
  if (section) return { section, offset: 0 };
  const fn = globalFunctions(ctx).find(({ sym }) => sym.name === name);
  if (fn) return { section: fn.section, offset: symbolOffset(ctx, fn.sym, fn.section) };
  const list = entries(ctx).map((e) => `${e.name} (${e.kind})`);
  throw elfError(ctx.elf, `no program section or global function named '${name}'; available entries: ${list.length ? list.join(', ') : 'none'}`);
}

/** Byte offset of a symbol that must name an instruction inside `section`. */
function symbolOffset(ctx: ElfContext, sym: ElfSymbol, section: ElfSection): number {
  if (sym.value % SLOT !== 0 || sym.value >= section.size) {
    throw elfError(ctx.elf, `symbol '${sym.name}' (value ${sym.value}) is not an instruction of ${describeSection(section)} (${section.size} bytes)`);
  }
  return sym.value;
}

function symbolAt(ctx: ElfContext, index: number, where: string): ElfSymbol {
  const sym = ctx.symbols[index];
  if (sym === undefined) throw elfError(ctx.elf, `${where}: symbol index ${index} is out of range (${ctx.symbols.length} symbols)`);
  return sym;
}

/** The section a defined symbol lives in, or null for undefined and special (ABS, COMMON) symbols. */
function symbolSection(ctx: ElfContext, sym: ElfSymbol): ElfSection | null {
  if (sym.shndx === SHN.UNDEF || sym.shndx >= SHN.LORESERVE) return null;
  return sectionAt(ctx.elf, sym.shndx, `symbol ${sym.index} '${sym.name}'`);
}

/** The executable section a call relocation leads to, or null for helpers (undefined symbols). */
function callTargetSection(ctx: ElfContext, rel: ElfRel, where: string): ElfSection | null {
  const sym = symbolAt(ctx, rel.sym, where);
  if (sym.shndx === SHN.UNDEF) return null;
  const sec = symbolSection(ctx, sym);
  const code = sec && ctx.code.find((s) => s.index === sec.index);
  if (!code) throw elfError(ctx.elf, `${where}: call target '${sym.name}' is not in an executable section`);
  return code;
}

/** The entry's section first, then every section reachable from it through calls, in file order. */
function layOut(ctx: ElfContext, entry: ElfSection): Layout {
  const needed = [entry];
  const seen = new Set([entry.index]);
  for (let k = 0; k < needed.length; k++) {
    for (const rel of ctx.rels.get(needed[k].index) ?? []) {
      if (rel.type !== R_BPF_64_32) continue;
      const target = callTargetSection(ctx, rel, relWhere(needed[k], rel));
      if (target && !seen.has(target.index)) {
        seen.add(target.index);
        needed.push(target);
      }
    }
  }
  const order = [entry, ...needed.slice(1).sort((a, b) => a.index - b.index)];
  const base = new Map<number, number>();
  const insns: Insn[] = [];
  for (const sec of order) {
    base.set(sec.index, insns.length);
    for (const insn of decode(sectionBytes(ctx.elf, sec))) insns.push(insn);
  }
  return { order, base, insns };
}

function slotOf(layout: Layout, sec: ElfSection, offset: number): number {
  return (layout.base.get(sec.index) ?? 0) + offset / SLOT;
}

function relWhere(sec: ElfSection, rel: ElfRel): string {
  return `${describeSection(sec)}: relocation ${rel.index} (offset 0x${rel.offset.toString(16)})`;
}

/** "section 'prog', instruction 3 (call local -1)": what a user can find in llvm-objdump output. */
function insnWhere(layout: Layout, sec: ElfSection, slot: number): string {
  const text = disasmInsn(layout.insns, slotOf(layout, sec, slot * SLOT));
  return `section '${sec.name}', instruction ${slot} (${text})`;
}

interface DataLayout {
  sections: DataSection[];
  /** ELF section index -> index into `sections`. */
  index: Map<number, number>;
}

/** Legacy `maps` (bpf_map_def) and BTF-defined `.maps`: both need a map runtime we do not have. */
const isMapSection = (name: string): boolean => /^\.?maps($|[./])/.test(name);

function dataSections(ctx: ElfContext): DataLayout {
  const out: DataLayout = { sections: [], index: new Map() };
  for (const sec of ctx.elf.sections) {
    const alloc = (sec.flags & SHF.ALLOC) !== 0 && (sec.flags & SHF.EXECINSTR) === 0;
    if (!alloc || (sec.type !== SHT.PROGBITS && sec.type !== SHT.NOBITS) || isMapSection(sec.name)) continue;
    out.index.set(sec.index, out.sections.length);
    out.sections.push({
      name: sec.name,
      // A copy: the runtime may write to .data/.bss and must not write through to the file's bytes.
      bytes: sec.type === SHT.NOBITS ? sectionBytes(ctx.elf, sec) : sectionBytes(ctx.elf, sec).slice(),
      writable: (sec.flags & SHF.WRITE) !== 0 && !sec.name.startsWith('.rodata'),
    });
  }
  return out;
}

function relocate(
  ctx: ElfContext, layout: Layout, sec: ElfSection, data: DataLayout, relocs: DataReloc[],
  helpers: ReadonlyMap<string, number> | undefined,
): void {
  const done = new Set<number>();
  for (const rel of ctx.rels.get(sec.index) ?? []) {
    const where = relWhere(sec, rel);
    if (rel.type === 0) continue; // R_BPF_NONE
    if (rel.offset % SLOT !== 0 || rel.offset + SLOT > sec.size) {
      throw elfError(ctx.elf, `${where}: offset is not an instruction of ${describeSection(sec)} (${sec.size} bytes)`);
    }
    const slot = rel.offset / SLOT;
    if (done.has(slot)) throw elfError(ctx.elf, `${where}: ${insnWhere(layout, sec, slot)} is relocated twice`);
    done.add(slot);
    const at = `${where}, ${insnWhere(layout, sec, slot)}`;
    const insn = layout.insns[slotOf(layout, sec, rel.offset)];
    if (rel.type === R_BPF_64_64) {
      relocs.push(dataReloc(ctx, layout, sec, rel, insn, data, at));
    } else if (rel.type === R_BPF_64_32) {
      relocateCall(ctx, layout, sec, rel, slot, insn, helpers, at);
    } else {
      const name = RELOC_NAMES[rel.type] ?? `type ${rel.type}`;
      throw elfError(ctx.elf, `${at}: relocation ${name} is not supported in code`);
    }
  }
}

function dataReloc(
  ctx: ElfContext, layout: Layout, sec: ElfSection, rel: ElfRel, insn: Insn,
  data: DataLayout, at: string,
): DataReloc {
  if (insn.code !== LDDW) throw elfError(ctx.elf, `${at}: R_BPF_64_64 applies to an instruction that is not lddw`);
  if (rel.offset + 2 * SLOT > sec.size) throw elfError(ctx.elf, `${at}: lddw is cut off by the end of the section`);
  const sym = symbolAt(ctx, rel.sym, at);
  const target = symbolSection(ctx, sym);
  if (target === null) {
    const why = sym.shndx === SHN.UNDEF ? 'is not defined in this object (extern variables are not supported)'
      : sym.shndx === SHN.COMMON ? 'is a common symbol (compile with -fno-common)'
      : `has no section (st_shndx 0x${sym.shndx.toString(16)})`;
    throw elfError(ctx.elf, `${at}: '${sym.name}' ${why}`);
  }
  if (isMapSection(target.name)) throw elfError(ctx.elf, `${at}: '${sym.name}' is in map section '${target.name}': maps are not supported`);
  if ((target.flags & SHF.EXECINSTR) !== 0) {
    throw elfError(ctx.elf, `${at}: loading the address of code ('${sym.name}' in '${target.name}') is not supported`);
  }
  const section = data.index.get(target.index);
  if (section === undefined) throw elfError(ctx.elf, `${at}: '${sym.name}' is in ${describeSection(target)}, which is not a data section`);
  // clang leaves the offset into a section symbol in the lddw's imm (e.g. a string in .rodata.str1.1).
  const addend = sym.value + insn.imm;
  const size = data.sections[section].bytes.length;
  if (addend < 0 || addend > size) {
    throw elfError(ctx.elf, `${at}: address '${sym.name}'${insn.imm ? ` + ${insn.imm}` : ''} is outside '${target.name}' (${size} bytes)`);
  }
  // The DataReloc is now the only source of the address: the runtime writes it into both slots.
  const first = slotOf(layout, sec, rel.offset);
  layout.insns[first] = { ...insn, imm: 0 };
  layout.insns[first + 1] = { ...layout.insns[first + 1], imm: 0 };
  return { slot: first, section, addend };
}

function relocateCall(
  ctx: ElfContext, layout: Layout, sec: ElfSection, rel: ElfRel, slot: number, insn: Insn,
  helpers: ReadonlyMap<string, number> | undefined, at: string,
): void {
  if (insn.code !== CALL) throw elfError(ctx.elf, `${at}: R_BPF_64_32 applies to an instruction that is not a call`);
  const callSlot = slotOf(layout, sec, rel.offset);
  const target = callTargetSection(ctx, rel, at);
  const sym = symbolAt(ctx, rel.sym, at);
  if (target === null) {
    const id = helpers?.get(sym.name);
    if (id === undefined) {
      throw elfError(ctx.elf, `section '${sec.name}', instruction ${slot} (call ${sym.name}): unknown helper '${sym.name}' (${knownHelpers(helpers)})`);
    }
    layout.insns[callSlot] = { ...insn, src: 0, imm: id };
    return;
  }
  const offset = sym.value + (insn.imm + 1) * SLOT;
  if (offset < 0 || offset % SLOT !== 0 || offset >= target.size) {
    throw elfError(ctx.elf, `${at}: call target '${sym.name}' + ${(insn.imm + 1) * SLOT} is outside ${describeSection(target)} (${target.size} bytes)`);
  }
  layout.insns[callSlot] = { ...insn, src: 1, imm: slotOf(layout, target, offset) - callSlot - 1 };
}

function knownHelpers(helpers: ReadonlyMap<string, number> | undefined): string {
  if (!helpers || helpers.size === 0) return 'no helpers are registered by name';
  const names = [...helpers.keys()];
  const shown = names.slice(0, 20).join(', ');
  return `known helpers: ${shown}${names.length > 20 ? `, ... (${names.length} in all)` : ''}`;
}

/** Unrelocated local calls are relative inside their own section; one that leaves it is corrupt. */
function checkLocalCalls(ctx: ElfContext, layout: Layout, sec: ElfSection): void {
  const relocated = new Set((ctx.rels.get(sec.index) ?? []).map((r) => r.offset / SLOT));
  const count = sec.size / SLOT;
  for (let i = 0; i < count; i++) {
    const insn = layout.insns[slotOf(layout, sec, i * SLOT)];
    if (insn.code === LDDW) {
      i++;
      continue;
    }
    if (insn.code !== CALL || insn.src !== 1 || relocated.has(i)) continue;
    const target = i + insn.imm + 1;
    if (target < 0 || target >= count) {
      throw elfError(ctx.elf, `${insnWhere(layout, sec, i)}: local call target ${target} is outside the section (${count} instructions) and has no relocation`);
    }
  }
}

function functions(ctx: ElfContext, layout: Layout): FunctionSym[] {
  const out: FunctionSym[] = [];
  for (const sec of layout.order) {
    const syms = ctx.symbols.filter((s) => s.type === STT.FUNC && s.shndx === sec.index);
    const starts = [...new Set(syms.map((s) => symbolOffset(ctx, s, sec)))].sort((a, b) => a - b);
    for (const sym of syms) {
      const next = starts.find((s) => s > sym.value) ?? sec.size;
      out.push({ name: sym.name, start: slotOf(layout, sec, sym.value), end: slotOf(layout, sec, next) });
    }
  }
  return out.sort((a, b) => a.start - b.start || a.name.localeCompare(b.name));
}
