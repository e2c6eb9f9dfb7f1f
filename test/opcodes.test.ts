// Opcode facts against RFC 9669: the whole opcode map written out by hand, field-rule checks,
// decode/encode round trips with extreme field values, and the suite's `unused-*` negatives.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDataFile } from '../compiler/datafile.js';
import { decode, encode } from '../compiler/decode.js';
import { classify, isInvalid, type Insn } from '../compiler/opcodes.js';

const SUITE = fileURLToPath(new URL('../../shared/conformance/bpf_conformance/', import.meta.url));

// Opcode map, RFC 9669 sections 3-5 (plus the v4 additions it includes): row = high nibble,
// column = low nibble, so `OPCODE_MAP[0xb][0xf]` is opcode 0xbf. '.' = not a valid opcode.
// Mnemonic with canonical fields: dst = src = off = imm = 0, except imm = 16 for byte swaps.
// '_' stands for a space in multi-word mnemonics.
const OPCODE_MAP_TEXT = [
  // 0      1      2     3            4      5     6      7        8     9      a     b          c      d     e      f
  '.      .      .     .            add32  ja    ja32   add      .     .      .     .          add32  .     .      add',
  '.      .      .     .            sub32  jeq   jeq32  sub      lddw  .      .     .          sub32  jeq   jeq32  sub',
  '.      .      .     .            mul32  jgt   jgt32  mul      .     .      .     .          mul32  jgt   jgt32  mul',
  '.      .      .     .            div32  jge   jge32  div      .     .      .     .          div32  jge   jge32  div',
  '.      .      .     .            or32   jset  jset32 or       .     .      .     .          or32   jset  jset32 or',
  '.      .      .     .            and32  jne   jne32  and      .     .      .     .          and32  jne   jne32  and',
  '.      ldxw   stw   stxw         lsh32  jsgt  jsgt32 lsh      .     ldxh   sth   stxh       lsh32  jsgt  jsgt32 lsh',
  '.      ldxb   stb   stxb         rsh32  jsge  jsge32 rsh      .     ldxdw  stdw  stxdw      rsh32  jsge  jsge32 rsh',
  '.      ldxsw  .     .            neg32  call  .      neg      .     ldxsh  .     .          .      callx .      .',
  '.      ldxsb  .     .            mod32  exit  .      mod      .     .      .     .          mod32  .     .      mod',
  '.      .      .     .            xor32  jlt   jlt32  xor      .     .      .     .          xor32  jlt   jlt32  xor',
  '.      .      .     .            mov32  jle   jle32  mov      .     .      .     .          mov32  jle   jle32  mov',
  '.      .      .     lock_add32   arsh32 jslt  jslt32 arsh     .     .      .     .          arsh32 jslt  jslt32 arsh',
  '.      .      .     .            le16   jsle  jsle32 bswap16  .     .      .     lock_add   be16   jsle  jsle32 .',
  '.      .      .     .            .      .     .      .        .     .      .     .          .      .     .      .',
  '.      .      .     .            .      .     .      .        .     .      .     .          .      .     .      .',
];
const OPCODE_MAP: (string | null)[][] = OPCODE_MAP_TEXT.map((row) =>
  row.trim().split(/\s+/).map((m) => (m === '.' ? null : m.replace(/_/g, ' '))));

const mnemonicOf = (code: number): string | null => OPCODE_MAP[code >> 4][code & 15];
const isEnd = (code: number): boolean => (code & 0xf0) === 0xd0 && ((code & 7) === 4 || (code & 7) === 7);
const canonical = (code: number): Insn => ({ code, dst: 0, src: 0, off: 0, imm: isEnd(code) ? 16 : 0 });
const VALID = Array.from({ length: 256 }, (_, c) => c).filter((c) => mnemonicOf(c) !== null);

type Field = 'dst' | 'src' | 'off' | 'imm';
const FIELDS: Field[] = ['dst', 'src', 'off', 'imm'];

/** Fields that carry operands for an opcode (RFC 9669 instruction layouts); the rest are reserved or select a variant. */
function operandFields(code: number): Field[] {
  const m = mnemonicOf(code) ?? '';
  const cls = code & 7;
  const x = (code & 8) !== 0;
  switch (cls) {
    case 0: return ['dst', 'imm']; // lddw
    case 1: return ['dst', 'src', 'off'];
    case 2: return ['dst', 'off', 'imm'];
    case 3: return ['dst', 'src', 'off'];
    case 4: case 7:
      if (m.startsWith('neg') || isEnd(code)) return ['dst'];
      return x ? ['dst', 'src'] : ['dst', 'imm'];
    default:
      if (m === 'ja') return ['off'];
      if (m === 'ja32' || m === 'call') return ['imm'];
      if (m === 'callx') return ['dst'];
      if (m === 'exit') return [];
      return x ? ['dst', 'src', 'off'] : ['dst', 'imm', 'off'];
  }
}

/** Fields whose non-zero values select a variant rather than being reserved. */
function variantFields(code: number): Field[] {
  const m = mnemonicOf(code) ?? '';
  if (isEnd(code)) return ['imm'];
  if (m.startsWith('lock')) return ['imm'];
  if (m === 'lddw' || m === 'call') return ['src'];
  const x = (code & 8) !== 0;
  if (x && /^(div|mod|mov)/.test(m)) return ['off'];
  if (/^(div|mod)/.test(m)) return ['off'];
  return [];
}

const EXTREMES: Record<Field, number[]> = {
  dst: Array.from({ length: 16 }, (_, r) => r),
  src: Array.from({ length: 16 }, (_, r) => r),
  off: [-32768, -1, 32767],
  imm: [-2147483648, -1, 2147483647],
};

function roundTrip(insns: Insn[]): Insn[] {
  return decode(encode(insns));
}

describe('opcode map (RFC 9669)', () => {
  it('the written-out map has 16 x 16 entries and the expected number of valid opcodes', () => {
    expect(OPCODE_MAP.every((row) => row.length === 16)).toBe(true);
    // ALU32: 13 ops + le (K), 12 ops + be (X); ALU64: 13 + bswap (K), 12 (X).
    // JMP: ja, 11 conditions, call, exit (K), 11 + callx (X); JMP32: ja32 + 11 (K), 11 (X).
    // 7 loads (4 plain, 3 sign-extending), 4 st, 4 stx, 2 atomics, lddw.
    expect(VALID.length).toBe(14 + 13 + 14 + 12 + 14 + 12 + 12 + 11 + 7 + 4 + 4 + 2 + 1);
  });

  for (let code = 0; code < 256; code++) {
    const want = mnemonicOf(code);
    const hex = `0x${code.toString(16).padStart(2, '0')}`;
    it(`${hex} is ${want ?? 'invalid'}`, () => {
      const c = classify(canonical(code));
      if (want === null) {
        expect(isInvalid(c)).toBe(true);
      } else {
        expect(c).toMatchObject({ mnemonic: want });
      }
    });
  }
});

describe('decode/encode of every valid form with extreme field values', () => {
  for (const code of VALID) {
    const name = mnemonicOf(code);
    it(`0x${code.toString(16).padStart(2, '0')} ${name}`, () => {
      const free = operandFields(code);
      for (const f of free) {
        for (const v of EXTREMES[f]) {
          const insn = { ...canonical(code), [f]: v };
          expect(roundTrip([insn])).toEqual([insn]);
          expect(classify(insn)).toMatchObject({ mnemonic: name });
        }
      }
      // All operand fields at their extremes at once.
      const all: Insn = { ...canonical(code) };
      for (const f of free) all[f] = EXTREMES[f][0];
      const all2: Insn = { ...canonical(code) };
      for (const f of free) all2[f] = EXTREMES[f][EXTREMES[f].length - 1];
      expect(roundTrip([all, all2])).toEqual([all, all2]);
      expect(classify(all)).toMatchObject({ mnemonic: name });
      expect(classify(all2)).toMatchObject({ mnemonic: name });
    });
  }

  it('decode reads little-endian signed fields', () => {
    const bytes = Uint8Array.from([0x7a, 0xfa, 0x00, 0x80, 0xff, 0xff, 0xff, 0x7f]);
    expect(decode(bytes)).toEqual([{ code: 0x7a, dst: 10, src: 15, off: -32768, imm: 0x7fffffff }]);
  });
});

describe('reserved fields must be zero', () => {
  for (const code of VALID) {
    const reserved = FIELDS.filter((f) => !operandFields(code).includes(f) && !variantFields(code).includes(f));
    if (reserved.length === 0) continue;
    it(`0x${code.toString(16).padStart(2, '0')} ${mnemonicOf(code)}: ${reserved.join(', ')}`, () => {
      for (const f of reserved) {
        for (const v of f === 'off' || f === 'imm' ? [3, -1] : [3, 15]) {
          const c = classify({ ...canonical(code), [f]: v });
          expect(isInvalid(c), `${f}=${v}`).toBe(true);
          if (isInvalid(c)) expect(c.error).toMatch(new RegExp(`\\b${f}\\b`));
        }
      }
    });
  }

  const files = readdirSync(`${SUITE}negative`).filter((f) => f.startsWith('unused-'));
  it('finds the suite\'s unused-field negatives', () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });
  const FIELD_OF: Record<string, RegExp> = { offset: /\boff(set)?\b/, src: /\bsrc\b/, dst: /\bdst\b/, imm: /\bimm\b/ };
  for (const file of files) {
    it(`negative/${file}`, () => {
      const test = parseDataFile(readFileSync(`${SUITE}negative/${file}`, 'utf8'));
      expect(test.expectError).toBe(true);
      const raw = test.raw ?? [];
      expect(raw.length).toBe(2);
      const field = /-(offset|src|dst|imm)\.data$/.exec(file)?.[1] ?? '?';
      const c = classify(raw[0]);
      expect(isInvalid(c)).toBe(true);
      if (isInvalid(c)) expect(c.error).toMatch(FIELD_OF[field]);
      expect(classify(raw[1])).toMatchObject({ form: 'exit' });
    });
  }
});

describe('variants selected by other fields', () => {
  const cls = (insn: Partial<Insn> & { code: number }) => classify({ dst: 1, src: 2, off: 0, imm: 0, ...insn });
  const mn = (insn: Partial<Insn> & { code: number }) => {
    const c = cls(insn);
    return isInvalid(c) ? null : c.mnemonic;
  };

  it('sdiv/smod are div/mod with off = 1; other offsets rejected', () => {
    expect(mn({ code: 0x3f, off: 1 })).toBe('sdiv');
    expect(mn({ code: 0x37, src: 0, off: 1 })).toBe('sdiv');
    expect(mn({ code: 0x3c, off: 1 })).toBe('sdiv32');
    expect(mn({ code: 0x34, src: 0, off: 1 })).toBe('sdiv32');
    expect(mn({ code: 0x9f, off: 1 })).toBe('smod');
    expect(mn({ code: 0x9c, off: 1 })).toBe('smod32');
    expect(mn({ code: 0x97, src: 0, off: 1 })).toBe('smod');
    for (const off of [2, -1, 8]) {
      expect(mn({ code: 0x3f, off })).toBeNull();
      expect(mn({ code: 0x9c, off })).toBeNull();
    }
    expect(mn({ code: 0x0f, off: 1 })).toBeNull(); // add has no signed variant
  });

  it('movsx widths: 8/16 for ALU32, 8/16/32 for ALU64', () => {
    expect(mn({ code: 0xbc, off: 8 })).toBe('movsx832');
    expect(mn({ code: 0xbc, off: 16 })).toBe('movsx1632');
    expect(mn({ code: 0xbf, off: 8 })).toBe('movsx864');
    expect(mn({ code: 0xbf, off: 16 })).toBe('movsx1664');
    expect(mn({ code: 0xbf, off: 32 })).toBe('movsx3264');
    for (const off of [1, 7, 32, 64, -8]) expect(mn({ code: 0xbc, off })).toBeNull();
    for (const off of [1, 24, 64, -8]) expect(mn({ code: 0xbf, off })).toBeNull();
    expect(mn({ code: 0xb7, src: 0, off: 8 })).toBeNull(); // no immediate movsx
    expect(mn({ code: 0xbf, off: 8, imm: 1 })).toBeNull();
  });

  it('byte swaps take widths 16/32/64 only; 0xdf is not an opcode', () => {
    for (const w of [16, 32, 64]) {
      expect(mn({ code: 0xd4, src: 0, imm: w })).toBe(`le${w}`);
      expect(mn({ code: 0xdc, src: 0, imm: w })).toBe(`be${w}`);
      expect(mn({ code: 0xd7, src: 0, imm: w })).toBe(`bswap${w}`);
    }
    for (const w of [0, 8, 24, 128, -16]) {
      for (const code of [0xd4, 0xdc, 0xd7]) expect(mn({ code, src: 0, imm: w })).toBeNull();
    }
    for (const w of [16, 32, 64]) expect(mn({ code: 0xdf, src: 0, imm: w })).toBeNull();
  });

  it('atomics: exactly add/or/and/xor (+fetch), xchg, cmpxchg, in W and DW sizes', () => {
    const ops: Record<number, string> = {
      0x00: 'add', 0x01: 'fetch add', 0x40: 'or', 0x41: 'fetch or', 0x50: 'and', 0x51: 'fetch and',
      0xa0: 'xor', 0xa1: 'fetch xor', 0xe1: 'xchg', 0xf1: 'cmpxchg',
    };
    for (let imm = -1; imm < 0x200; imm++) {
      const want = ops[imm];
      expect(mn({ code: 0xdb, imm }), `imm 0x${imm.toString(16)}`).toBe(want === undefined ? null : `lock ${want}`);
      expect(mn({ code: 0xc3, imm })).toBe(want === undefined ? null : `lock ${want}32`);
    }
    expect(cls({ code: 0xdb, imm: 0xe1 })).toMatchObject({ atomic: 'xchg', fetch: true, size: 8 });
    expect(cls({ code: 0xc3, imm: 0xf1 })).toMatchObject({ atomic: 'cmpxchg', fetch: true, size: 4 });
    expect(cls({ code: 0xdb, imm: 0x40 })).toMatchObject({ atomic: 'or', fetch: false });
    for (const code of [0xd3, 0xcb]) { // byte and half-word atomics do not exist
      for (const imm of [0x00, 0x01, 0xe1]) expect(mn({ code, imm })).toBeNull();
    }
  });

  it('call: src 0 helper, 1 local; 2 (BTF) and above rejected; callx 0x8d', () => {
    expect(cls({ code: 0x85, dst: 0, src: 0, imm: 5 })).toMatchObject({ form: 'call', local: false });
    expect(cls({ code: 0x85, dst: 0, src: 1, imm: -3 })).toMatchObject({ form: 'call', local: true, mnemonic: 'call local' });
    for (let src = 2; src < 16; src++) expect(mn({ code: 0x85, dst: 0, src, imm: 1 })).toBeNull();
    const x = cls({ code: 0x8d, dst: 2, src: 0 });
    expect(x).toMatchObject({ form: 'callx', mnemonic: 'callx' });
    expect(mn({ code: 0x8d, dst: 2, src: 1 })).toBeNull();
    expect(mn({ code: 0x8d, dst: 2, src: 0, imm: 1 })).toBeNull();
    expect(mn({ code: 0x8d, dst: 2, src: 0, off: 1 })).toBeNull();
    expect(mn({ code: 0x86, dst: 0, src: 0 })).toBeNull(); // no JMP32 call
  });

  it('lddw src 0..6 accepted, 7..15 rejected', () => {
    for (let src = 0; src < 16; src++) {
      const c = cls({ code: 0x18, src, imm: 1 });
      expect(isInvalid(c), `src ${src}`).toBe(src > 6);
    }
    expect(mn({ code: 0x18, src: 0, off: 1 })).toBeNull();
  });

  it('sign-extending loads exist for b/h/w only; legacy LD ABS/IND are rejected', () => {
    expect(mn({ code: 0x91 })).toBe('ldxsb');
    expect(mn({ code: 0x89 })).toBe('ldxsh');
    expect(mn({ code: 0x81 })).toBe('ldxsw');
    expect(mn({ code: 0x99 })).toBeNull();
    for (const code of [0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x58]) {
      for (const src of [0, 2]) expect(mn({ code, src })).toBeNull();
    }
  });
});
