// One entry point for every program input: an ELF object, a conformance `.data` file, an asm
// file or raw instruction bytes, told apart by content (never by file name).
import { AsmError, assembleProgram } from './asm.js';
import { isDataFile, parseDataFile, type DataFile } from './datafile.js';
import { decode, DecodeError } from './decode.js';
import { isElf, loadElf } from './elf.js';
import { LoadError, rawProgram, type LoadOptions, type Program } from './program.js';

export type InputFormat = 'elf' | 'data' | 'asm' | 'raw';

export interface LoadedInput {
  format: InputFormat;
  program: Program;
  /** For a conformance `.data` file: its memory, expected result and expected error. */
  test?: DataFile;
}

/** Text means valid UTF-8 without NUL bytes; raw eBPF nearly always holds zero bytes. */
export function asText(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

export function detectFormat(bytes: Uint8Array): InputFormat {
  if (isElf(bytes)) return 'elf';
  const text = asText(bytes);
  if (text === null) return 'raw';
  return isDataFile(text) ? 'data' : 'asm';
}

export function loadInput(bytes: Uint8Array, origin: string, opts: LoadOptions = {}): LoadedInput {
  const format = detectFormat(bytes);
  if (format !== 'elf' && opts.entry !== undefined) {
    // Only objects have named entries; an asm label could be one later, but silently ignoring it is worse.
    throw new LoadError(`${origin}: --entry applies to ELF objects only (this input is ${format})`);
  }
  switch (format) {
    case 'elf':
      return { format, program: loadElf(bytes, origin, opts) };
    case 'raw':
      try {
        return { format, program: rawProgram(decode(bytes), origin) };
      } catch (e) {
        if (e instanceof DecodeError) throw new LoadError(`${origin}: ${e.message}`);
        throw e;
      }
    case 'asm':
      return { format, program: assembleIn(asText(bytes) ?? '', origin, 1) };
    case 'data': {
      const test = parseDataFile(asText(bytes) ?? '');
      return { format, program: programOfTest(test, origin), test };
    }
  }
}

/** The program of a conformance test: its asm section, else its raw section. */
export function programOfTest(test: DataFile, origin: string): Program {
  if (test.asm !== undefined && test.asm.trim() !== '') return assembleIn(test.asm, origin, test.asmLine ?? 1);
  if (test.raw !== undefined && test.raw.length > 0) return rawProgram(test.raw, origin);
  throw new LoadError(`${origin}: no program (the file has no '-- asm' or '-- raw' section with instructions)`);
}

/** Assembles text that starts at `firstLine` of file `origin`, so errors name the file's own line. */
function assembleIn(text: string, origin: string, firstLine: number): Program {
  try {
    return assembleProgram(text, origin);
  } catch (e) {
    if (e instanceof AsmError) {
      const detail = e.message.replace(/^line \d+: /, '');
      throw new LoadError(`${origin}: line ${firstLine + e.line - 1}: ${detail}`);
    }
    throw e;
  }
}
