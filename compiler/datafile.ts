// Parser of the bpf_conformance `.data` test format: `-- asm`, `-- raw`, `-- mem`, `-- result`,
// `-- error` sections, `#` comment lines anywhere. Other sections (`-- c` source, `-- no register
// offset`) are skipped. The asm text is kept as written: assembling it is the loader's job.
import { decode } from './decode.js';
import type { Insn } from './opcodes.js';
import { LoadError } from './program.js';

export interface DataFile {
  /** The `-- asm` section's text (comment lines kept, so assembler line numbers map back). */
  asm?: string;
  /** 1-based line in the file of the first line of `asm`: file line = asmLine + AsmError.line - 1. */
  asmLine?: number;
  /** The `-- raw` section's instructions. */
  raw?: Insn[];
  /** Input memory (empty when there is no `-- mem` section). */
  mem: Uint8Array;
  /** Expected r0, as an unsigned 64-bit value. */
  result?: bigint;
  /** The test expects the program to be rejected or to fail (`-- error`). */
  expectError: boolean;
  /** Text of the `-- error` section, if any. */
  errorText?: string;
}

type Known = 'asm' | 'raw' | 'mem' | 'result' | 'error';

interface Section {
  name: string;
  /** 1-based file line of the section's first content line. */
  first: number;
  lines: string[];
}

const KNOWN: ReadonlySet<string> = new Set<Known>(['asm', 'raw', 'mem', 'result', 'error']);
const HEADER_RE = /^--\s*(.*?)\s*$/;
const DATA_FILE_RE = /^-- ?(asm|raw|result|error|mem)\b/m;

/** Whether a text is a conformance test file rather than plain assembly. */
export function isDataFile(text: string): boolean {
  return DATA_FILE_RE.test(text);
}

export function parseDataFile(text: string): DataFile {
  const sections = splitSections(text);
  const out: DataFile = { mem: new Uint8Array(0), expectError: false };
  for (const s of sections) {
    switch (s.name) {
      case 'asm':
        out.asm = s.lines.join('\n');
        out.asmLine = s.first;
        break;
      case 'raw':
        out.raw = parseRaw(s);
        break;
      case 'mem':
        out.mem = parseMem(s);
        break;
      case 'result':
        out.result = parseResult(s);
        break;
      case 'error': {
        out.expectError = true;
        const msg = s.lines.filter((l) => !isComment(l)).join('\n').trim();
        if (msg !== '') out.errorText = msg;
        break;
      }
    }
  }
  return out;
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith('#');
}

/**
 * Cuts the text at `-- name` headers. An unknown header inside `-- asm` stays part of the asm, so
 * the assembler reports it as an unknown directive with its line (negative/invalid_unknown_directive).
 */
function splitSections(text: string): Section[] {
  const lines = text.split(/\r?\n/);
  const sections: Section[] = [];
  const seen = new Set<string>();
  let cur: Section | null = null;
  for (let i = 0; i < lines.length; i++) {
    const h = HEADER_RE.exec(lines[i]);
    if (h !== null) {
      const name = h[1];
      if (KNOWN.has(name)) {
        if (seen.has(name)) throw new LoadError(`line ${i + 1}: duplicate '-- ${name}' section`);
        seen.add(name);
        cur = { name, first: i + 2, lines: [] };
        sections.push(cur);
        continue;
      }
      if (cur === null || cur.name !== 'asm') {
        cur = { name, first: i + 2, lines: [] };
        sections.push(cur);
        continue;
      }
    }
    cur?.lines.push(lines[i]);
  }
  return sections;
}

/** Content lines with their file line numbers; comments and blank lines dropped, trailing `#...` cut. */
function contentLines(s: Section): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  s.lines.forEach((raw, k) => {
    const hash = raw.indexOf('#');
    const text = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (text !== '') out.push({ line: s.first + k, text });
  });
  return out;
}

function bad(section: string, line: number, detail: string): never {
  throw new LoadError(`'-- ${section}' section, line ${line}: ${detail}`);
}

/**
 * One slot per line, either a 64-bit little-endian number (`0x5566778800000018`: the low byte is
 * the opcode) or the slot's 8 bytes in memory order (`18 00 00 00 88 77 66 55`).
 */
function parseRaw(s: Section): Insn[] {
  const lines = contentLines(s);
  const bytes = new Uint8Array(lines.length * 8);
  const view = new DataView(bytes.buffer);
  lines.forEach(({ line, text }, k) => {
    const words = text.split(/\s+/);
    if (words.length === 1) {
      if (!/^0x[0-9a-f]{1,16}$/i.test(text)) bad('raw', line, `expected a 64-bit hex number (0x...) or 8 hex bytes, got '${text}'`);
      view.setBigUint64(k * 8, BigInt(text), true);
    } else {
      if (words.length !== 8) bad('raw', line, `expected 8 hex bytes, got ${words.length} in '${text}'`);
      words.forEach((w, j) => { bytes[k * 8 + j] = hexByte('raw', line, w); });
    }
  });
  return decode(bytes);
}

function hexByte(section: string, line: number, word: string): number {
  if (!/^[0-9a-f]{2}$/i.test(word)) bad(section, line, `invalid hex byte '${word}' (expected two hex digits)`);
  return parseInt(word, 16);
}

function parseMem(s: Section): Uint8Array {
  const out: number[] = [];
  for (const { line, text } of contentLines(s)) {
    for (const w of text.split(/\s+/)) out.push(hexByte('mem', line, w));
  }
  return Uint8Array.from(out);
}

/** Hex when written with `0x`, otherwise decimal; negative values wrap to their unsigned 64-bit form. */
function parseResult(s: Section): bigint {
  const lines = contentLines(s);
  // An empty section is reported at its header line.
  if (lines.length !== 1) bad('result', lines[1]?.line ?? s.first - 1, `expected one value, got ${lines.length}`);
  const { line, text } = lines[0];
  const m = /^(-?)(0x[0-9a-f]+|\d+)$/i.exec(text);
  if (m === null) bad('result', line, `invalid value '${text}' (expected decimal or 0x hex)`);
  const v = m[1] === '-' ? -BigInt(m[2]) : BigInt(m[2]);
  if (v < -(1n << 63n) || v >= 1n << 64n) bad('result', line, `value '${text}' does not fit in 64 bits`);
  return BigInt.asUintN(64, v);
}
