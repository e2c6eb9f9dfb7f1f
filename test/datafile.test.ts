// The conformance `.data` parser against the whole suite and against malformed inputs.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isDataFile, parseDataFile } from '../compiler/datafile.js';
import { LoadError } from '../compiler/program.js';

const SUITE = fileURLToPath(new URL('../../shared/conformance/bpf_conformance/', import.meta.url));
const read = (dir: string, file: string): string => readFileSync(`${SUITE}${dir}/${file}`, 'utf8');
const list = (dir: string): string[] => readdirSync(`${SUITE}${dir}`).filter((f) => f.endsWith('.data')).sort();

function loadError(text: string): LoadError {
  try {
    parseDataFile(text);
  } catch (e) {
    if (e instanceof LoadError) return e;
    throw e;
  }
  throw new Error('parsed without error');
}

describe('tests/*.data', () => {
  const files = list('tests');

  it('has the 313 programs of the suite', () => {
    expect(files.length).toBe(313);
  });

  it('every test has a program, a result and no expected error', () => {
    const problems: string[] = [];
    for (const f of files) {
      const text = read('tests', f);
      const t = parseDataFile(text);
      const hasProgram = (t.asm !== undefined && t.asm.trim() !== '') || (t.raw !== undefined && t.raw.length > 0);
      if (!hasProgram) problems.push(`${f}: no program`);
      if (t.result === undefined) problems.push(`${f}: no result`);
      if (t.expectError) problems.push(`${f}: expects an error`);
      if (!isDataFile(text)) problems.push(`${f}: not recognised as a data file`);
      const memLines = /^-- mem$/m.test(text);
      if (memLines !== t.mem.length > 0) problems.push(`${f}: mem section and parsed mem disagree`);
    }
    expect(problems).toEqual([]);
  });

  it('asmLine points at the first line after `-- asm`', () => {
    for (const f of files) {
      const text = read('tests', f);
      const t = parseDataFile(text);
      if (t.asm === undefined) continue;
      const lines = text.split(/\r?\n/);
      expect(lines[(t.asmLine ?? 0) - 2], f).toBe('-- asm');
      expect(t.asm.split('\n')[0], f).toBe(lines[(t.asmLine ?? 0) - 1]);
    }
  });

  it('subnet.data: 74 bytes of memory, the `-- c` section ignored', () => {
    const t = parseDataFile(read('tests', 'subnet.data'));
    expect(t.mem.length).toBe(74);
    expect(Array.from(t.mem.slice(0, 4))).toEqual([0x00, 0x00, 0xc0, 0x9f]);
    expect(Array.from(t.mem.slice(12, 14))).toEqual([0x08, 0x00]); // IPv4 ethertype
    expect(Array.from(t.mem.slice(30, 34))).toEqual([0xc0, 0xa8, 0x01, 0x01]); // destination 192.168.1.1
    expect(Array.from(t.mem.slice(72))).toEqual([0x03, 0x00]);
    expect(t.result).toBe(1n);
    expect(t.asm).not.toContain('#include');
    expect(t.asm?.split('\n')[0]).toBe('mov %r2, 0xe');
  });

  it('lddw.data: keeps both asm and raw; raw numbers are little-endian slots', () => {
    const t = parseDataFile(read('tests', 'lddw.data'));
    expect(t.asm).toContain('lddw %r0, 0x1122334455667788');
    expect(t.raw).toEqual([
      { code: 0x18, dst: 0, src: 0, off: 0, imm: 0x55667788 },
      { code: 0, dst: 0, src: 0, off: 0, imm: 0x11223344 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ]);
    expect(t.result).toBe(0x1122334455667788n);
  });

  it('mem-len.data: mem across lines, `-- no register offset` ignored', () => {
    const t = parseDataFile(read('tests', 'mem-len.data'));
    expect(Array.from(t.mem)).toEqual([0, 0, 0, 1, 0, 0, 0, 2]);
    expect(t.result).toBe(8n);
  });

  it('results are unsigned 64-bit', () => {
    const all = files.map((f) => parseDataFile(read('tests', f)).result ?? -1n);
    expect(all.every((r) => r >= 0n && r < 1n << 64n)).toBe(true);
    expect(all.some((r) => r >= 1n << 63n)).toBe(true);
  });
});

describe('negative/*.data', () => {
  const files = list('negative');

  it('files with `-- error` expect an error, the others do not', () => {
    for (const f of files) {
      const text = read('negative', f);
      const t = parseDataFile(text);
      expect(t.expectError, f).toBe(/^-- error/m.test(text));
    }
  });

  it('empty.data has no program; empty_instructions.data only a result', () => {
    const e = parseDataFile(read('negative', 'empty.data'));
    expect(e.asm).toBeUndefined();
    expect(e.raw).toBeUndefined();
    expect(e.result).toBeUndefined();
    expect(isDataFile(read('negative', 'empty.data'))).toBe(false);
    const i = parseDataFile(read('negative', 'empty_instructions.data'));
    expect(i.asm).toBeUndefined();
    expect(i.raw).toBeUndefined();
    expect(i.result).toBe(0n);
  });

  it('error text is kept', () => {
    expect(parseDataFile(read('negative', 'invalid_lock.data')).errorText).toBe('Invalid number of operands for lock');
    expect(parseDataFile(read('negative', 'error.data')).errorText).toBe('Invalid');
    expect(parseDataFile(read('negative', 'unused-ja-src.data')).errorText).toBeUndefined();
  });

  it('raw sections written as 8 bytes per line', () => {
    const t = parseDataFile(read('negative', 'unused-ldxdw-imm.data'));
    // 79 a0 f8 ff 01 00 00 00: ldxdw, dst 0, src 10, off -8, imm 1
    expect(t.raw).toEqual([
      { code: 0x79, dst: 0, src: 10, off: -8, imm: 1 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ]);
    expect(t.expectError).toBe(true);
  });

  it('an unknown directive inside -- asm stays in the asm, for the assembler to report', () => {
    const t = parseDataFile(read('negative', 'invalid_unknown_directive.data'));
    expect(t.asm).toBe('-- Unknown directive');
    expect(t.expectError).toBe(true);
  });

  it('incorrect_return_value_high_bits.data parses mem and a high-bit result', () => {
    const t = parseDataFile(read('negative', 'incorrect_return_value_high_bits.data'));
    expect(t.mem.length).toBe(12);
    expect(t.result).toBe(0x8977665544332211n);
  });
});

describe('format details and malformed input', () => {
  it('isDataFile recognises each section header', () => {
    for (const s of ['asm', 'raw', 'result', 'error', 'mem']) expect(isDataFile(`# x\n-- ${s}\n`)).toBe(true);
    expect(isDataFile('mov %r0, 1\nexit\n')).toBe(false);
    expect(isDataFile('# -- asm\nexit\n')).toBe(false);
    expect(isDataFile('-- c\nint x;\n')).toBe(false);
  });

  it('decimal, hex and negative results; comments and blank lines anywhere', () => {
    expect(parseDataFile('-- result\n42\n').result).toBe(42n);
    expect(parseDataFile('-- result\n# c\n\n0xFFFFFFFFFFFFFFFF\n').result).toBe(0xffffffffffffffffn);
    expect(parseDataFile('-- result\n-1\n').result).toBe(0xffffffffffffffffn);
    expect(parseDataFile('-- result\n0x10 # sixteen\n').result).toBe(16n);
  });

  it('raw: hex numbers shorter than 16 digits, CRLF line ends', () => {
    const t = parseDataFile('-- raw\r\n0x95\r\n0x00000001000000b7\r\n-- result\r\n0x0\r\n');
    expect(t.raw).toEqual([
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 1 },
    ]);
  });

  it('no mem section gives empty memory', () => {
    expect(parseDataFile('-- asm\nexit\n').mem.length).toBe(0);
  });

  const BAD: [string, RegExp][] = [
    ['-- asm\nexit\n-- mem\n00 zz 01\n', /'-- mem' section, line 4: invalid hex byte 'zz'/],
    ['-- mem\n0x01\n', /'-- mem' section, line 2: invalid hex byte '0x01'/],
    ['-- mem\n001\n', /invalid hex byte '001'/],
    ['-- result\nabc\n', /'-- result' section, line 2: invalid value 'abc'/],
    ['-- result\n0x10000000000000000\n', /does not fit in 64 bits/],
    ['-- result\n1\n2\n', /'-- result' section, line 3: expected one value, got 2/],
    ['-- result\n\n', /'-- result' section, line 1: expected one value, got 0/],
    ['-- raw\n0x12345678901234567\n', /'-- raw' section, line 2: expected a 64-bit hex number/],
    ['-- raw\n95 00 00\n', /'-- raw' section, line 2: expected 8 hex bytes, got 3/],
    ['-- raw\n95 00 00 00 00 00 00 0g\n', /'-- raw' section, line 2: invalid hex byte '0g'/],
    ['-- raw\n1234\n', /expected a 64-bit hex number/],
    ['-- asm\nexit\n-- asm\nexit\n', /line 3: duplicate '-- asm' section/],
  ];
  for (const [text, re] of BAD) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const e = loadError(text);
      expect(e.message).toMatch(re);
    });
  }
});
