// Bounds-checked reading of little-endian ELF64 relocatable objects for the BPF machine.
// Every offset, size and index read from the file is checked before use, so a truncated or
// corrupted object ends in a LoadError naming the header, section or symbol, never in a
// RangeError from a DataView or an undefined array element.
import { LoadError } from './program.js';

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfSymbol {
  index: number;
  name: string;
  /** STT_* (low nibble of st_info). */
  type: number;
  /** STB_* (high nibble of st_info). */
  bind: number;
  shndx: number;
  value: number;
  size: number;
}

export interface ElfRel {
  /** Position in its relocation section, for messages. */
  index: number;
  offset: number;
  type: number;
  sym: number;
}

export interface ElfObject {
  bytes: Uint8Array;
  /** Prefix of every message: the file the object came from. */
  origin: string;
  sections: ElfSection[];
}

export const EM_BPF = 247;
export const ET_REL = 1;

export const SHT = {
  NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOBITS: 8, REL: 9,
} as const;
export const SHF = { WRITE: 0x1, ALLOC: 0x2, EXECINSTR: 0x4 } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const SHN = { UNDEF: 0, LORESERVE: 0xff00, ABS: 0xfff1, COMMON: 0xfff2, XINDEX: 0xffff } as const;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;
const MAGIC = [0x7f, 0x45, 0x4c, 0x46];

const hex = (n: number): string => `0x${n.toString(16)}`;

export function hasElfMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Reads fixed-size little-endian fields of one structure that has already been checked to lie
 * inside the file. u64 fields come back as (possibly imprecise) numbers: every use compares them
 * against a size that is far below 2^53, so precision above that never matters.
 */
class Fields {
  private readonly view: DataView;
  constructor(bytes: Uint8Array, private readonly base: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(off: number): number {
    return this.view.getUint8(this.base + off);
  }
  u16(off: number): number {
    return this.view.getUint16(this.base + off, true);
  }
  u32(off: number): number {
    return this.view.getUint32(this.base + off, true);
  }
  u64(off: number): number {
    return Number(this.view.getBigUint64(this.base + off, true));
  }
}

export function elfError(elf: { origin: string }, message: string): LoadError {
  return new LoadError(`${elf.origin}: ${message}`);
}

/** A structure of `size` bytes at `offset` must lie inside `limit` bytes. */
function fits(offset: number, size: number, limit: number): boolean {
  return Number.isFinite(offset) && Number.isFinite(size) && offset >= 0 && size >= 0 && offset + size <= limit;
}

function checkIdent(bytes: Uint8Array, origin: string): void {
  const fail = (m: string): LoadError => new LoadError(`${origin}: ${m}`);
  if (!hasElfMagic(bytes)) throw fail('not an ELF object (bad magic)');
  if (bytes.length < EHDR_SIZE) throw fail(`truncated ELF header (${bytes.length} bytes, need ${EHDR_SIZE})`);
  if (bytes[4] !== 2) throw fail(`ELF class ${bytes[4]} is not supported: expected 64-bit (2)`);
  if (bytes[5] !== 1) throw fail(`ELF data encoding ${bytes[5]} is not supported: expected little-endian (1)`);
  if (bytes[6] !== 1) throw fail(`ELF version ${bytes[6]} is not supported: expected 1`);
}

/** Parses the ELF header and the section header table, with section names and bounds checked. */
export function readElf(bytes: Uint8Array, origin: string): ElfObject {
  checkIdent(bytes, origin);
  const elf: ElfObject = { bytes, origin, sections: [] };
  const h = new Fields(bytes, 0);
  const type = h.u16(16);
  const machine = h.u16(18);
  if (machine !== EM_BPF) throw elfError(elf, `ELF machine ${machine} is not BPF (${EM_BPF}); compile with clang -target bpf`);
  if (type !== ET_REL) throw elfError(elf, `ELF type ${type} is not a relocatable object (${ET_REL}); compile with clang -c`);
  const shoff = h.u64(40);
  const shentsize = h.u16(58);
  const shnum = h.u16(60);
  const shstrndx = h.u16(62);
  if (shnum === 0) throw elfError(elf, 'no section headers (e_shnum is 0)');
  if (shentsize !== SHDR_SIZE) throw elfError(elf, `section header size ${shentsize} is not ${SHDR_SIZE} (e_shentsize)`);
  if (!fits(shoff, shnum * SHDR_SIZE, bytes.length)) {
    throw elfError(elf, `section header table (${shnum} entries at offset ${hex(shoff)}) extends past the end of the file (${bytes.length} bytes)`);
  }
  for (let i = 0; i < shnum; i++) {
    const s = new Fields(bytes, shoff + i * SHDR_SIZE);
    elf.sections.push({
      index: i, name: '', type: s.u32(4), flags: s.u64(8), offset: s.u64(24), size: s.u64(32),
      link: s.u32(40), info: s.u32(44), entsize: s.u64(56),
    });
  }
  if (shstrndx === SHN.UNDEF || shstrndx >= shnum) {
    throw elfError(elf, `section name string table index ${shstrndx} is not a section (e_shstrndx; ${shnum} sections)`);
  }
  const shstrtab = elf.sections[shstrndx];
  if (shstrtab.type !== SHT.STRTAB) throw elfError(elf, `section name string table [${shstrndx}] is not a string table`);
  // The name table first, so that every later message can name its section.
  checkInFile(elf, shstrtab, `section name string table [${shstrndx}]`);
  const nameAt = new Fields(bytes, shoff);
  for (const sec of elf.sections) {
    sec.name = readString(elf, shstrtab, nameAt.u32(sec.index * SHDR_SIZE), `name of section [${sec.index}]`);
  }
  for (const sec of elf.sections) checkInFile(elf, sec, describeSection(sec));
  return elf;
}

function checkInFile(elf: ElfObject, sec: ElfSection, what: string): void {
  if (sec.type === SHT.NULL || sec.type === SHT.NOBITS) return;
  if (!fits(sec.offset, sec.size, elf.bytes.length)) {
    throw elfError(elf, `${what} (offset ${hex(sec.offset)}, size ${sec.size}) extends past the end of the file (${elf.bytes.length} bytes)`);
  }
}

const utf8 = new TextDecoder('utf-8');

/** A NUL-terminated string at `index` of string table `strtab`. */
export function readString(elf: ElfObject, strtab: ElfSection, index: number, what: string): string {
  if (index >= strtab.size) {
    throw elfError(elf, `${what}: string offset ${index} is outside string table '${strtab.name || `[${strtab.index}]`}' (${strtab.size} bytes)`);
  }
  const start = strtab.offset + index;
  const end = elf.bytes.indexOf(0, start);
  if (end < 0 || end >= strtab.offset + strtab.size) {
    throw elfError(elf, `${what}: string at offset ${index} of '${strtab.name || `[${strtab.index}]`}' is not NUL-terminated`);
  }
  return utf8.decode(elf.bytes.subarray(start, end));
}

/** Zero-filled sections have no bytes in the file to bound them; this keeps a corrupt size from allocating gigabytes. */
export const MAX_NOBITS_SIZE = 16 * 1024 * 1024;

/** Contents of a section; NOBITS sections (bss) read as zeros. Bounds were checked by readElf. */
export function sectionBytes(elf: ElfObject, sec: ElfSection): Uint8Array {
  if (sec.type === SHT.NOBITS) {
    if (sec.size > MAX_NOBITS_SIZE) throw elfError(elf, `${describeSection(sec)}: size ${sec.size} exceeds the limit of ${MAX_NOBITS_SIZE} bytes`);
    return new Uint8Array(sec.size);
  }
  return elf.bytes.subarray(sec.offset, sec.offset + sec.size);
}

/** Section `index` as referenced from `what` (a sh_link, a symbol's st_shndx...). */
export function sectionAt(elf: ElfObject, index: number, what: string): ElfSection {
  const sec = elf.sections[index];
  if (index < 0 || sec === undefined) throw elfError(elf, `${what} refers to section ${index}, which does not exist (${elf.sections.length} sections)`);
  return sec;
}

export function describeSection(sec: ElfSection): string {
  return `section [${sec.index}] '${sec.name}'`;
}

export function readSymbols(elf: ElfObject, symtab: ElfSection): ElfSymbol[] {
  const where = describeSection(symtab);
  if (symtab.size % SYM_SIZE !== 0) throw elfError(elf, `${where}: size ${symtab.size} is not a multiple of ${SYM_SIZE}`);
  const strtab = sectionAt(elf, symtab.link, `${where} (sh_link)`);
  if (strtab.type !== SHT.STRTAB) throw elfError(elf, `${where}: its string table ${describeSection(strtab)} is not a string table (sh_link)`);
  const out: ElfSymbol[] = [];
  for (let i = 0; i < symtab.size / SYM_SIZE; i++) {
    const s = new Fields(elf.bytes, symtab.offset + i * SYM_SIZE);
    const info = s.u8(4);
    out.push({
      index: i, name: readString(elf, strtab, s.u32(0), `symbol ${i}`), type: info & 0xf, bind: info >> 4,
      shndx: s.u16(6), value: s.u64(8), size: s.u64(16),
    });
  }
  return out;
}

export function readRels(elf: ElfObject, relSec: ElfSection): ElfRel[] {
  const where = describeSection(relSec);
  if (relSec.size % REL_SIZE !== 0) throw elfError(elf, `${where}: size ${relSec.size} is not a multiple of ${REL_SIZE}`);
  const out: ElfRel[] = [];
  for (let i = 0; i < relSec.size / REL_SIZE; i++) {
    const r = new Fields(elf.bytes, relSec.offset + i * REL_SIZE);
    out.push({ index: i, offset: r.u64(0), type: r.u32(8), sym: r.u32(12) });
  }
  return out;
}
