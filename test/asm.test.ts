// Assembler: every conformance program round-trips through the disassembler to identical bytes,
// the suite's invalid_* negatives fail with messages naming the problem, and each syntax form
// produces the slot fields RFC 9669 gives for it.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AsmError, assemble, assembleProgram } from '../compiler/asm.js';
import { parseDataFile, type DataFile } from '../compiler/datafile.js';
import { decode, encode } from '../compiler/decode.js';
import { disasmProgram } from '../compiler/disasm.js';
import { classify, isInvalid, type Insn } from '../compiler/opcodes.js';
import { LoadError } from '../compiler/program.js';

const SUITE = fileURLToPath(new URL('../../shared/conformance/bpf_conformance/', import.meta.url));

function load(dir: string, file: string): DataFile {
  return parseDataFile(readFileSync(`${SUITE}${dir}/${file}`, 'utf8'));
}

const slot = (code: number, f: Partial<Insn> = {}): Insn => ({ code, dst: 0, src: 0, off: 0, imm: 0, ...f });

function reassembled(insns: Insn[]): Uint8Array {
  return encode(assemble(disasmProgram(decode(encode(insns))).join('\n')));
}

function asmError(text: string): AsmError {
  try {
    assemble(text);
  } catch (e) {
    if (e instanceof AsmError) return e;
    throw e;
  }
  throw new Error(`assembled without error: ${text}`);
}

describe('conformance programs', () => {
  const withAsm = (dir: string): [string, DataFile][] =>
    readdirSync(`${SUITE}${dir}`).filter((f) => f.endsWith('.data'))
      .map((f): [string, DataFile] => [f, load(dir, f)]).filter(([, t]) => t.asm !== undefined);
  const tests = withAsm('tests');
  const negatives = withAsm('negative').filter(([f]) => !f.startsWith('invalid_'));

  it('finds the suite', () => {
    expect(tests.length).toBeGreaterThan(250);
  });

  for (const [dir, list] of [['tests', tests], ['negative', negatives]] as const) {
    for (const [file, t] of list) {
      it(`${dir}/${file}: assembles to valid slots and round-trips through disasm`, () => {
        const insns = assemble(t.asm ?? '');
        expect(insns.length).toBeGreaterThan(0);
        for (let i = 0; i < insns.length; i++) {
          const c = classify(insns[i]);
          expect(isInvalid(c) ? c.error : 'ok', `slot ${i}`).toBe('ok');
          if (insns[i].code === 0x18) i++; // second slot of lddw
        }
        expect(reassembled(insns)).toEqual(encode(insns));
      });
    }
  }

  it('lddw.data: asm and raw sections give identical bytes', () => {
    const t = load('tests', 'lddw.data');
    expect(t.raw).toBeDefined();
    expect(encode(assemble(t.asm ?? ''))).toEqual(encode(t.raw ?? []));
    expect(Array.from(encode(t.raw ?? []).slice(0, 16))).toEqual(
      [0x18, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
  });

  it('call_local.data: func1 is a function starting at its label', () => {
    const t = load('tests', 'call_local.data');
    const p = assembleProgram(t.asm ?? '', 'call_local.data');
    // 10 movs, call, 5 jne, mov, exit, (failed:) mov, exit = 20 slots before func1.
    expect(p.functions).toEqual([
      { name: 'main', start: 0, end: 20 },
      { name: 'func1', start: 20, end: p.insns.length },
    ]);
    expect(p.insns[10]).toEqual(slot(0x85, { src: 1, imm: 20 - 11 }));
  });
});

describe('negative/invalid_*.data', () => {
  // The words each message must contain. (The suite's own `-- error` text for the unknown directive
  // says "Invalid register", a copy-paste slip in the suite.)
  const EXPECT: Record<string, { line: number; words: RegExp[] }> = {
    'invalid_imm32_dec_range.data': { line: 2, words: [/immediate 2147483648/, /out of 32-bit range/] },
    'invalid_imm32_hex_range.data': { line: 2, words: [/immediate 0x100000000/, /out of 32-bit range/] },
    'invalid_label.data': { line: 1, words: [/undefined label 'NOT_A_LABEL'/] },
    'invalid_lock.data': { line: 1, words: [/invalid number of operands for lock or/i, /expected 2, got 1/] },
    'invalid_lock2.data': { line: 1, words: [/invalid number of operands for lock/i] },
    'invalid_mnemonic.data': { line: 2, words: [/invalid mnemonic 'ldxq'/] },
    'invalid_offset.data': { line: 1, words: [/invalid memory operand '%r1'/, /offset/] },
    'invalid_offset_range.data': { line: 2, words: [/offset \+0x10000/, /out of 16-bit range/] },
    'invalid_operand_count.data': { line: 1, words: [/invalid number of operands for lddw/, /expected 2, got 1/] },
    'invalid_register.data': { line: 1, words: [/invalid register '%r50'/] },
    'invalid_unknown_directive.data': { line: 1, words: [/unknown directive '-- Unknown directive'/] },
  };
  const files = readdirSync(`${SUITE}negative`).filter((f) => f.startsWith('invalid_'));

  it('every invalid_* file has an expectation', () => {
    expect(files.sort()).toEqual(Object.keys(EXPECT).sort());
  });

  for (const file of files) {
    it(file, () => {
      const t = load('negative', file);
      const e = asmError(t.asm ?? '');
      expect(e).toBeInstanceOf(LoadError);
      expect(e.line).toBe(EXPECT[file].line);
      expect(e.message.startsWith(`line ${e.line}: `)).toBe(true);
      for (const w of EXPECT[file].words) expect(e.message).toMatch(w);
      if (t.errorText !== undefined && file !== 'invalid_unknown_directive.data') {
        expect(e.message.toLowerCase()).toContain(t.errorText.toLowerCase());
      }
    });
  }
});

describe('syntax forms', () => {
  // Expected opcodes from RFC 9669: class | op | source bit; sizes W=0x00 H=0x08 B=0x10 DW=0x18.
  const CASES: [string, Insn][] = [
    ['add %r0, %r1', slot(0x0f, { src: 1 })],
    ['add %r0, 5', slot(0x07, { imm: 5 })],
    ['add32 %r3, -1', slot(0x04, { dst: 3, imm: -1 })],
    ['add32 %r3, %r4', slot(0x0c, { dst: 3, src: 4 })],
    ['sub %r1, %r2', slot(0x1f, { dst: 1, src: 2 })],
    ['sub32 %r1, 2', slot(0x14, { dst: 1, imm: 2 })],
    ['mul %r1, 7', slot(0x27, { dst: 1, imm: 7 })],
    ['mul32 %r1, %r9', slot(0x2c, { dst: 1, src: 9 })],
    ['div %r1, %r2', slot(0x3f, { dst: 1, src: 2 })],
    ['div32 %r1, 3', slot(0x34, { dst: 1, imm: 3 })],
    ['sdiv %r1, %r2', slot(0x3f, { dst: 1, src: 2, off: 1 })],
    ['sdiv32 %r1, -3', slot(0x34, { dst: 1, off: 1, imm: -3 })],
    ['mod %r1, 3', slot(0x97, { dst: 1, imm: 3 })],
    ['mod32 %r1, %r2', slot(0x9c, { dst: 1, src: 2 })],
    ['smod %r1, 3', slot(0x97, { dst: 1, off: 1, imm: 3 })],
    ['smod32 %r1, %r2', slot(0x9c, { dst: 1, src: 2, off: 1 })],
    ['or %r1, 0xff', slot(0x47, { dst: 1, imm: 0xff })],
    ['or32 %r1, %r2', slot(0x4c, { dst: 1, src: 2 })],
    ['and %r1, %r2', slot(0x5f, { dst: 1, src: 2 })],
    ['and32 %r1, 0xf0', slot(0x54, { dst: 1, imm: 0xf0 })],
    ['lsh %r1, 3', slot(0x67, { dst: 1, imm: 3 })],
    ['lsh32 %r1, %r2', slot(0x6c, { dst: 1, src: 2 })],
    ['rsh %r1, %r2', slot(0x7f, { dst: 1, src: 2 })],
    ['rsh32 %r1, 31', slot(0x74, { dst: 1, imm: 31 })],
    ['neg %r2', slot(0x87, { dst: 2 })],
    ['neg32 %r2', slot(0x84, { dst: 2 })],
    ['xor %r1, -0x1', slot(0xa7, { dst: 1, imm: -1 })],
    ['xor32 %r1, %r2', slot(0xac, { dst: 1, src: 2 })],
    ['mov %r10, %r1', slot(0xbf, { dst: 10, src: 1 })],
    ['mov %r0, -2147483648', slot(0xb7, { imm: -2147483648 })],
    ['mov32 %r1, 0xffffffff', slot(0xb4, { dst: 1, imm: -1 })],
    ['mov32 %r1, 2147483647', slot(0xb4, { dst: 1, imm: 2147483647 })],
    ['mov32 %r1, -0x80000000', slot(0xb4, { dst: 1, imm: -2147483648 })],
    ['arsh %r1, 63', slot(0xc7, { dst: 1, imm: 63 })],
    ['arsh32 %r1, %r2', slot(0xcc, { dst: 1, src: 2 })],
    ['movsx832 %r1, %r2', slot(0xbc, { dst: 1, src: 2, off: 8 })],
    ['movsx1632 %r1, %r2', slot(0xbc, { dst: 1, src: 2, off: 16 })],
    ['movsx864 %r1, %r2', slot(0xbf, { dst: 1, src: 2, off: 8 })],
    ['movsx1664 %r1, %r2', slot(0xbf, { dst: 1, src: 2, off: 16 })],
    ['movsx3264 %r1, %r2', slot(0xbf, { dst: 1, src: 2, off: 32 })],
    ['le16 %r1', slot(0xd4, { dst: 1, imm: 16 })],
    ['le32 %r1', slot(0xd4, { dst: 1, imm: 32 })],
    ['le64 %r1', slot(0xd4, { dst: 1, imm: 64 })],
    ['be16 %r1', slot(0xdc, { dst: 1, imm: 16 })],
    ['be32 %r1', slot(0xdc, { dst: 1, imm: 32 })],
    ['be64 %r1', slot(0xdc, { dst: 1, imm: 64 })],
    ['bswap16 %r1', slot(0xd7, { dst: 1, imm: 16 })],
    ['bswap32 %r1', slot(0xd7, { dst: 1, imm: 32 })],
    ['bswap64 %r1', slot(0xd7, { dst: 1, imm: 64 })],
    ['swap16 %r1', slot(0xd7, { dst: 1, imm: 16 })],
    ['swap32 %r1', slot(0xd7, { dst: 1, imm: 32 })],
    ['swap64 %r1', slot(0xd7, { dst: 1, imm: 64 })],
    ['ldxb %r0, [%r1+4]', slot(0x71, { src: 1, off: 4 })],
    ['ldxh %r0, [%r1+0x2]', slot(0x69, { src: 1, off: 2 })],
    ['ldxw %r0, [%r1]', slot(0x61, { src: 1 })],
    ['ldxdw %r0, [%r10-8]', slot(0x79, { src: 10, off: -8 })],
    ['ldxsb %r2, [%r1+1]', slot(0x91, { dst: 2, src: 1, off: 1 })],
    ['ldxsh %r2, [%r1+2]', slot(0x89, { dst: 2, src: 1, off: 2 })],
    ['ldxsw %r2, [%r1+4]', slot(0x81, { dst: 2, src: 1, off: 4 })],
    ['ldxb %r0, [%r1+32767]', slot(0x71, { src: 1, off: 32767 })],
    ['ldxb %r0, [%r1-32768]', slot(0x71, { src: 1, off: -32768 })],
    ['ldxb %r0, [%r1+0xffff]', slot(0x71, { src: 1, off: -1 })],
    ['stb [%r1+2], 0x11', slot(0x72, { dst: 1, off: 2, imm: 0x11 })],
    ['sth [%r10-2], 0x8001', slot(0x6a, { dst: 10, off: -2, imm: 0x8001 })],
    ['stw [%r10-4], 0x80000001', slot(0x62, { dst: 10, off: -4, imm: -0x7fffffff })],
    ['stdw [%r10-8], -1', slot(0x7a, { dst: 10, off: -8, imm: -1 })],
    ['stxb [%r1+2], %r3', slot(0x73, { dst: 1, src: 3, off: 2 })],
    ['stxh [%r1+2], %r3', slot(0x6b, { dst: 1, src: 3, off: 2 })],
    ['stxw [%r1+2], %r3', slot(0x63, { dst: 1, src: 3, off: 2 })],
    ['stxdw [%r1-2], %r3', slot(0x7b, { dst: 1, src: 3, off: -2 })],
    ['lock add [%r10-8], %r1', slot(0xdb, { dst: 10, src: 1, off: -8, imm: 0x00 })],
    ['lock add32 [%r10-4], %r1', slot(0xc3, { dst: 10, src: 1, off: -4, imm: 0x00 })],
    ['lock fetch add [%r10-8], %r1', slot(0xdb, { dst: 10, src: 1, off: -8, imm: 0x01 })],
    ['lock fetch add32 [%r10-8], %r1', slot(0xc3, { dst: 10, src: 1, off: -8, imm: 0x01 })],
    ['lock or [%r1], %r2', slot(0xdb, { dst: 1, src: 2, imm: 0x40 })],
    ['lock fetch or32 [%r1], %r2', slot(0xc3, { dst: 1, src: 2, imm: 0x41 })],
    ['lock and [%r1], %r2', slot(0xdb, { dst: 1, src: 2, imm: 0x50 })],
    ['lock fetch and [%r1], %r2', slot(0xdb, { dst: 1, src: 2, imm: 0x51 })],
    ['lock xor32 [%r1], %r2', slot(0xc3, { dst: 1, src: 2, imm: 0xa0 })],
    ['lock fetch xor [%r1], %r2', slot(0xdb, { dst: 1, src: 2, imm: 0xa1 })],
    ['lock xchg [%r10-8], %r1', slot(0xdb, { dst: 10, src: 1, off: -8, imm: 0xe1 })],
    ['lock xchg32 [%r10-8], %r1', slot(0xc3, { dst: 10, src: 1, off: -8, imm: 0xe1 })],
    ['lock cmpxchg [%r10-8], %r1', slot(0xdb, { dst: 10, src: 1, off: -8, imm: 0xf1 })],
    ['lock cmpxchg32 [%r10-8], %r1', slot(0xc3, { dst: 10, src: 1, off: -8, imm: 0xf1 })],
    ['ja +3', slot(0x05, { off: 3 })],
    ['ja -2', slot(0x05, { off: -2 })],
    ['ja32 +5', slot(0x06, { imm: 5 })],
    ['ja32 -100000', slot(0x06, { imm: -100000 })],
    ['jeq %r1, 5, +1', slot(0x15, { dst: 1, imm: 5, off: 1 })],
    ['jeq %r1, %r2, -1', slot(0x1d, { dst: 1, src: 2, off: -1 })],
    ['jgt %r1, 0x80000000, +1', slot(0x25, { dst: 1, imm: -0x80000000, off: 1 })],
    ['jge %r1, %r2, +1', slot(0x3d, { dst: 1, src: 2, off: 1 })],
    ['jset %r1, 8, +1', slot(0x45, { dst: 1, imm: 8, off: 1 })],
    ['jne %r1, %r2, +1', slot(0x5d, { dst: 1, src: 2, off: 1 })],
    ['jsgt %r1, -1, +1', slot(0x65, { dst: 1, imm: -1, off: 1 })],
    ['jsge %r1, %r2, +1', slot(0x7d, { dst: 1, src: 2, off: 1 })],
    ['jlt %r1, 1, +1', slot(0xa5, { dst: 1, imm: 1, off: 1 })],
    ['jle %r1, %r2, +1', slot(0xbd, { dst: 1, src: 2, off: 1 })],
    ['jslt %r1, 1, +1', slot(0xc5, { dst: 1, imm: 1, off: 1 })],
    ['jsle %r1, %r2, +1', slot(0xdd, { dst: 1, src: 2, off: 1 })],
    ['jeq32 %r1, 5, +1', slot(0x16, { dst: 1, imm: 5, off: 1 })],
    ['jgt32 %r1, %r2, +1', slot(0x2e, { dst: 1, src: 2, off: 1 })],
    ['jge32 %r1, 1, +1', slot(0x36, { dst: 1, imm: 1, off: 1 })],
    ['jset32 %r1, %r2, +1', slot(0x4e, { dst: 1, src: 2, off: 1 })],
    ['jne32 %r1, 1, +1', slot(0x56, { dst: 1, imm: 1, off: 1 })],
    ['jsgt32 %r1, %r2, +1', slot(0x6e, { dst: 1, src: 2, off: 1 })],
    ['jsge32 %r1, 1, +1', slot(0x76, { dst: 1, imm: 1, off: 1 })],
    ['jlt32 %r1, %r2, +1', slot(0xae, { dst: 1, src: 2, off: 1 })],
    ['jle32 %r1, 1, +1', slot(0xb6, { dst: 1, imm: 1, off: 1 })],
    ['jslt32 %r1, %r2, +1', slot(0xce, { dst: 1, src: 2, off: 1 })],
    ['jsle32 %r1, 1, +1', slot(0xd6, { dst: 1, imm: 1, off: 1 })],
    ['call 5', slot(0x85, { imm: 5 })],
    ['call local +3', slot(0x85, { src: 1, imm: 3 })],
    ['call %r2', slot(0x8d, { dst: 2 })],
    ['callx %r3', slot(0x8d, { dst: 3 })],
    ['exit', slot(0x95)],
    ['.insn code=0x05 dst=0 src=0 off=0 imm=1', slot(0x05, { imm: 1 })],
    ['.insn code=0xff dst=15 src=15 off=-32768 imm=-2147483648', slot(0xff, { dst: 15, src: 15, off: -32768, imm: -2147483648 })],
    ['  mov %r0, 1   # trailing comment', slot(0xb7, { imm: 1 })],
  ];
  for (const [text, want] of CASES) {
    it(text.trim(), () => {
      expect(assemble(text)).toEqual([want]);
    });
  }

  it('lddw: two slots, low word then high word', () => {
    expect(assemble('lddw %r0, 0x1122334455667788')).toEqual([
      slot(0x18, { imm: 0x55667788 }), slot(0, { imm: 0x11223344 })]);
    expect(assemble('lddw %r3, 0xFFFFFFFFFFFFFFFF')).toEqual([slot(0x18, { dst: 3, imm: -1 }), slot(0, { imm: -1 })]);
    expect(assemble('lddw %r0, 2147483648')).toEqual([slot(0x18, { imm: -2147483648 }), slot(0)]);
    expect(assemble('lddw %r0, -2')).toEqual([slot(0x18, { imm: -2 }), slot(0, { imm: -1 })]);
    expect(assemble('lddw %r0, 0x100000000')).toEqual([slot(0x18), slot(0, { imm: 1 })]);
  });

  it('labels resolve to slot-relative offsets (lddw counts two slots)', () => {
    expect(assemble('ja L\nlddw %r0, 1\nL:\nexit')[0]).toEqual(slot(0x05, { off: 2 }));
    expect(assemble('L:\nmov %r0, 1\nja L')[1]).toEqual(slot(0x05, { off: -2 }));
    expect(assemble('jne %r1, 3, out\nmov %r0, 1\nout: exit')[0]).toEqual(slot(0x55, { dst: 1, imm: 3, off: 1 }));
    expect(assemble('ja32 target\nmov %r0, 0\ntarget:\nexit')[0]).toEqual(slot(0x06, { imm: 1 }));
    const c = assemble('call local f\nexit\nf:\nmov %r0, 1\nexit');
    expect(c[0]).toEqual(slot(0x85, { src: 1, imm: 1 }));
  });

  it('the first exit instruction is the label `exit`, unless a label of that name exists', () => {
    const p = assemble('mov %r0, 0\njne %r0, %r1, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit');
    expect(p[1].off).toBe(1);
    const q = assemble('jne %r0, %r1, exit\nexit\nexit:\nexit');
    expect(q[0].off).toBe(1);
    const back = assemble('exit\nja exit');
    expect(back[1].off).toBe(-2);
  });

  it('comments, blank lines and indentation are ignored; errors report the text line', () => {
    const insns = assemble('# header\n\n   mov %r0, 1 # one\n\texit\n');
    expect(insns).toEqual([slot(0xb7, { imm: 1 }), slot(0x95)]);
    const e = asmError('# c\n\nmov %r16, 1\nexit');
    expect(e.line).toBe(3);
    expect(e.message).toBe("line 3: invalid register '%r16' in 'mov %r16, 1'");
  });

  it('assembleProgram: main plus one function per call-local target', () => {
    const p = assembleProgram('call local f\ncall local g\nexit\nf:\nexit\ng:\nlddw %r0, 1\nexit\n', 'x.asm');
    expect(p.entry).toBe(0);
    expect(p.origin).toBe('x.asm');
    expect(p.data).toEqual([]);
    expect(p.relocs).toEqual([]);
    expect(p.functions).toEqual([
      { name: 'main', start: 0, end: 3 },
      { name: 'f', start: 3, end: 4 },
      { name: 'g', start: 4, end: 7 },
    ]);
    // Labels that are only jump targets do not start functions; numeric local calls do.
    const q = assembleProgram('ja L\nL:\ncall local +1\nexit\nexit', 'y.asm');
    expect(q.functions.map((f) => [f.start, f.end])).toEqual([[0, 3], [3, 4]]);
    expect(assembleProgram('exit', 'z').functions).toEqual([{ name: 'main', start: 0, end: 1 }]);
  });
});

describe('errors', () => {
  const BAD: [string, RegExp][] = [
    ['mov %r16, 1', /invalid register '%r16'/],
    ['mov %x1, 1', /invalid register '%x1'/],
    ['mov r1, 1', /invalid register 'r1'/],
    ['ldxw %r0, [%r11x+1]', /invalid register '%r11x'/],
    ['foo %r0, 1', /invalid mnemonic 'foo'/],
    ['movsx6432 %r0, %r1', /invalid mnemonic 'movsx6432'/],
    ['ldxsdw %r0, [%r1]', /invalid mnemonic 'ldxsdw'/],
    ['exit %r0', /invalid number of operands for exit: expected 0, got 1/],
    ['add %r0', /invalid number of operands for add: expected 2, got 1/],
    ['neg %r0, 1', /invalid number of operands for neg: expected 1, got 2/],
    ['jeq %r0, 1', /invalid number of operands for jeq: expected 3, got 2/],
    ['add %r0,, 1', /invalid number of operands/],
    ['lock', /invalid number of operands for lock/],
    ['lock fetch', /invalid number of operands for lock/],
    ['lock add [%r1]', /invalid number of operands for lock add: expected 2, got 1/],
    ['lock sub [%r1], %r2', /invalid atomic operation 'sub'/],
    ['lock add [%r1], 5', /invalid register '5'/],
    ['mov32 %r0, 2147483648', /immediate 2147483648 out of 32-bit range/],
    ['mov32 %r0, -2147483649', /immediate -2147483649 out of 32-bit range/],
    ['mov32 %r0, 0x100000000', /immediate 0x100000000 out of 32-bit range/],
    ['mov32 %r0, -0x80000001', /immediate -0x80000001 out of 32-bit range/],
    ['mov32 %r0, 12abc', /invalid immediate '12abc'/],
    ['ldxb %r0, [%r1+32768]', /offset \+32768 out of 16-bit range/],
    ['ldxb %r0, [%r1-32769]', /offset -32769 out of 16-bit range/],
    ['ldxb %r0, [%r1+0x10000]', /offset \+0x10000 out of 16-bit range/],
    ['ldxb %r0, %r1', /invalid memory operand '%r1'/],
    ['stb [%r1+2, 1', /invalid memory operand '\[%r1\+2'/],
    ['ja +32768', /offset \+32768 out of 16-bit range/],
    ['ja L1', /undefined label 'L1'/],
    ['ja 1x', /invalid jump target '1x'/],
    ['lddw %r0, 0x10000000000000000', /out of 64-bit range/],
    ['lddw %r0', /invalid number of operands for lddw/],
    ['L:\nL:\nexit', /duplicate label 'L'/],
    ['.section text', /unknown directive '.section'/],
    ['-- Unknown directive', /unknown directive '-- Unknown directive'/],
    ['.insn code=0x100 dst=0 src=0 off=0 imm=0', /\.insn code=0x100 out of range/],
    ['.insn code=0x05 dst=16 src=0 off=0 imm=0', /\.insn dst=16 out of range/],
    ['.insn code=0x05 dst=0 src=0 off=0', /missing field imm=/],
    ['.insn code=0x05 dst=0 src=0 off=0 imm=0 imm=1', /duplicate \.insn field 'imm'/],
    ['.insn opcode=5', /invalid \.insn field 'opcode=5'/],
    ['call local', /invalid/],
  ];
  for (const [text, re] of BAD) {
    it(text.replace(/\n/g, ' | '), () => {
      const e = asmError(text);
      expect(e.message).toMatch(re);
      expect(e.message).toMatch(/^line \d+: /);
    });
  }

  it('a jump beyond 16 bits is reported at the jump', () => {
    const text = `mov %r0, 0\nja far\n${'mov %r0, 1\n'.repeat(40000)}far:\nexit`;
    const e = asmError(text);
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/jump to 'far' is too far \(40000 slots\)/);
  });
});

describe('disassembly of arbitrary slots re-assembles to the same bytes', () => {
  // Deterministic pseudo-random slots: most are invalid and must come back via `.insn`.
  function lcg(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s;
    };
  }

  it('random bytes', () => {
    const next = lcg(12345);
    const bytes = new Uint8Array(8 * 4000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() >>> 24;
    const insns = decode(bytes);
    expect(reassembled(insns)).toEqual(bytes);
  });

  it('every opcode with extreme fields, valid or not', () => {
    const insns: Insn[] = [];
    for (let code = 0; code < 256; code++) {
      for (const [dst, src, off, imm] of [[0, 0, 0, 0], [15, 15, -32768, -2147483648], [10, 1, 32767, 2147483647], [1, 2, 8, 16], [0, 1, 1, 0xe1]]) {
        insns.push({ code, dst, src, off, imm });
      }
    }
    expect(reassembled(insns)).toEqual(encode(insns));
  });

  it('lddw edge cases: last slot, dirty second slot, map forms', () => {
    const cases: Insn[][] = [
      [slot(0x18, { imm: 5 })],
      [slot(0x18, { imm: 5 }), slot(0, { off: 1, imm: 2 })],
      [slot(0x18, { imm: 5 }), slot(0, { dst: 1 })],
      [slot(0x18, { imm: 5 }), slot(0x95)],
      [slot(0x18, { src: 1, imm: 3 }), slot(0, { imm: 0 }), slot(0x95)],
      [slot(0x18, { src: 6, dst: 2, imm: 3 }), slot(0, { imm: 7 })],
      [slot(0x18, { dst: 1, imm: -1 }), slot(0, { imm: -1 }), slot(0x95)],
    ];
    for (const c of cases) expect(reassembled(c)).toEqual(encode(c));
    expect(disasmProgram([slot(0x18, { dst: 1, imm: -1 }), slot(0, { imm: -1 })])).toEqual(['lddw %r1, 0xffffffffffffffff']);
  });
});
