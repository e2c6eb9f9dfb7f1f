import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { disasmInsn } from '../compiler/disasm.js';
import type { Insn } from '../compiler/opcodes.js';
import { rawProgram, type Program } from '../compiler/program.js';
import {
  checkStructure, verifyStructure, VerifyError, type Diagnostic, type StructuralOptions,
} from '../compiler/verify/structural.js';

const OPTS: StructuralOptions = { helpers: new Set([5]) };
const CONFORMANCE = fileURLToPath(new URL('../../shared/conformance/bpf_conformance/', import.meta.url));

const asm = (text: string): Program => rawProgram(assemble(text), 'test');
const raw = (insns: Insn[]): Program => rawProgram(insns, 'test');
const slot = (code: number, f: Partial<Insn> = {}): Insn => ({ code, dst: 0, src: 0, off: 0, imm: 0, ...f });
const EXIT = slot(0x95);
const MOV0 = slot(0xb7); // mov %r0, 0

/** The program breaks exactly one rule, once, at `index`; the message names the instruction. */
function single(p: Program, rule: string, index: number, opts: StructuralOptions = OPTS): Diagnostic {
  const all = checkStructure(p, opts);
  expect(all.map((d) => [d.rule, d.index])).toEqual([[rule, index]]);
  const d = all[0];
  expect(d.disasm).toBe(disasmInsn(p.insns, index));
  expect(d.message.startsWith(`instruction ${index} (${d.disasm}): `)).toBe(true);
  return d;
}

describe('rules, one minimal program each', () => {
  it('empty: no instructions', () => {
    const all = checkStructure(raw([]), OPTS);
    expect(all.map((d) => d.rule)).toEqual(['empty']);
    expect(all[0].message).toMatch(/no instructions/);
  });

  it('size: more slots than maxInsns', () => {
    const p = asm('mov %r0, 0\nmov %r0, 1\nmov %r0, 2\nmov %r0, 3\nmov %r0, 4\nexit');
    const d = single(p, 'size', 4, { ...OPTS, maxInsns: 4 });
    expect(d.message).toContain('6 slots');
    expect(d.message).toContain('limit of 4');
    expect(checkStructure(p, { ...OPTS, maxInsns: 6 })).toEqual([]);
  });

  it('opcode: reserved field not zero, with the classifier text', () => {
    const d = single(raw([MOV0, slot(0x07, { off: 1, imm: 1 }), EXIT]), 'opcode', 1);
    expect(d.message).toContain('reserved field off must be 0 (is 1)');
    expect(d.disasm).toBe('.insn code=0x07 dst=0 src=0 off=1 imm=1');
  });

  it('opcode: unknown opcode', () => {
    const d = single(raw([MOV0, slot(0x8f), EXIT]), 'opcode', 1);
    expect(d.message).toContain('neg takes no source register');
    const e = single(raw([MOV0, slot(0xff), EXIT]), 'opcode', 1);
    expect(e.message).toContain('unknown ALU operation 0xf0');
  });

  it('register: dst or src above r10', () => {
    const d = single(raw([slot(0xb7, { dst: 11, imm: 1 }), MOV0, EXIT]), 'register', 0);
    expect(d.message).toContain('r11 does not exist');
    const s = single(raw([MOV0, slot(0xbf, { dst: 0, src: 12 }), EXIT]), 'register', 1);
    expect(s.message).toContain('r12');
  });

  it('register: callx through r10 (or any register above r9)', () => {
    const d = single(raw([MOV0, slot(0x8d, { dst: 10 }), EXIT]), 'register', 1);
    expect(d.disasm).toBe('callx %r10');
    expect(d.message).toContain('r0..r9');
  });

  it('r10-write: ALU, lddw, ldx and fetching atomics writing the frame pointer', () => {
    const writers = [
      'mov %r10, 1',
      'add32 %r10, 1',
      'neg %r10',
      'be16 %r10',
      'movsx864 %r10, %r1',
      'lddw %r10, 0x100000000',
      'ldxdw %r10, [%r1]',
      'lock fetch add [%r1+0], %r10',
      'lock xchg [%r1+0], %r10',
    ];
    for (const w of writers) {
      const d = single(asm(`${w}\nmov %r0, 0\nexit`), 'r10-write', 0);
      expect(d.message).toContain('r10');
    }
  });

  it('r10 as an atomic source is only a write for the fetching forms', () => {
    expect(checkStructure(asm('lock add [%r1+0], %r10\nmov %r0, 0\nexit'), OPTS)).toEqual([]);
    expect(checkStructure(asm('mov %r0, 0\nlock cmpxchg [%r1+0], %r10\nexit'), OPTS)).toEqual([]);
  });

  it('lddw: in the last slot', () => {
    const d = single(raw([MOV0, EXIT, slot(0x18, { imm: 1 })]), 'lddw', 2);
    expect(d.message).toContain('last slot');
  });

  it('lddw: second slot with non-zero code, dst, src or off', () => {
    for (const bad of [{ code: 0x07 }, { dst: 1 }, { src: 2 }, { off: 3 }]) {
      const p = raw([slot(0x18, { imm: 1 }), slot(0, { imm: 2, ...bad }), EXIT]);
      const d = single(p, 'lddw', 0);
      expect(d.message).toContain('second slot');
    }
    // imm of the second slot is the high half: anything goes.
    expect(checkStructure(raw([slot(0x18), slot(0, { imm: -1 }), EXIT]), OPTS)).toEqual([]);
  });

  it('lddw-map: map references need maps', () => {
    const d = single(raw([slot(0x18, { src: 1, imm: 3 }), slot(0), EXIT]), 'lddw-map', 0);
    expect(d.message).toContain('map references (lddw src=1, map_by_fd) need a runtime with maps');
  });

  it('reloc: a data relocation must point at an lddw with src 0', () => {
    const data = [{ name: '.rodata', bytes: new Uint8Array(8), writable: false }];
    const good: Program = { ...asm('lddw %r0, 0\nexit'), data, relocs: [{ slot: 0, section: 0, addend: 0 }] };
    expect(checkStructure(good, OPTS)).toEqual([]);
    const bad: Program = { ...asm('mov %r0, 0\nexit'), data, relocs: [{ slot: 0, section: 0, addend: 0 }] };
    expect(single(bad, 'reloc', 0).message).toContain('.rodata');
    const outside: Program = { ...asm('mov %r0, 0\nexit'), data, relocs: [{ slot: 9, section: 0, addend: 0 }] };
    const all = checkStructure(outside, OPTS);
    expect(all.map((d) => d.rule)).toEqual(['reloc']);
    expect(all[0].message).toContain('slot 9');
  });

  it('jump-range: the documented message', () => {
    const insns = [MOV0, MOV0, MOV0, MOV0, MOV0, MOV0, MOV0, slot(0x05, { off: 100 }), MOV0, EXIT];
    const d = single(raw(insns), 'jump-range', 7);
    expect(d.message).toBe('instruction 7 (ja +100): jump target 108 is outside the program (slots 0..9)');
  });

  it('jump-range: conditional jumps and ja32 (target in imm), backwards too', () => {
    const back = single(asm('mov %r0, 0\njeq %r0, 0, -3\nexit'), 'jump-range', 1);
    expect(back.message).toContain('jump target -1');
    const gotol = single(raw([MOV0, slot(0x06, { imm: 50 }), EXIT]), 'jump-range', 1);
    expect(gotol.disasm).toBe('ja32 +50');
    expect(gotol.message).toContain('jump target 52');
  });

  it('jump-into-lddw: a jump to the second slot of an lddw', () => {
    const d = single(asm('ja +1\nlddw %r0, 1\nexit'), 'jump-into-lddw', 0);
    expect(d.message).toContain('jump target 2 is the second slot of the lddw at slot 1');
  });

  it('fall-off: past the end of the program', () => {
    const d = single(asm('mov %r0, 0'), 'fall-off', 0);
    expect(d.message).toContain('past the end of the program');
    // A conditional jump as the last instruction can fall through too.
    single(asm('mov %r0, 0\njeq %r0, 0, -2'), 'fall-off', 1);
  });

  it('fall-off: from one function into the next', () => {
    const d = single(asm(`
      call local f
      call local g
      exit
      f:
      mov %r0, 1
      g:
      mov %r0, 2
      exit`), 'fall-off', 3);
    expect(d.message).toContain('into the function at slot 4');
  });

  it('call-target: outside the program or into an lddw', () => {
    const d = single(raw([slot(0x85, { src: 1, imm: 100 }), EXIT]), 'call-target', 0);
    expect(d.message).toContain('call target 101 is outside the program');
    const e = single(raw([MOV0, slot(0x18), slot(0), slot(0x85, { src: 1, imm: -2 }), EXIT]), 'call-target', 3);
    expect(e.message).toContain('second slot');
  });

  it('helper: a helper id the runtime does not provide', () => {
    const d = single(asm('call 7\nexit'), 'helper', 0);
    expect(d.message).toContain('helper 7');
    expect(checkStructure(asm('call 7\nexit'), { helpers: new Set([5, 7]) })).toEqual([]);
  });

  it('call-depth: recursion', () => {
    const d = single(asm(`
      call local f
      exit
      f:
      call local g
      exit
      g:
      call local f
      exit`), 'call-depth', 4);
    expect(d.message).toContain('2 -> 4 -> 2');
  });

  it('call-depth: nesting deeper than maxCallDepth', () => {
    const chain = (calls: number): Program => {
      const lines = ['call local f1', 'exit'];
      for (let k = 1; k <= calls; k++) lines.push(`f${k}:`, k < calls ? `call local f${k + 1}` : 'mov %r0, 0', 'exit');
      return asm(lines.join('\n'));
    };
    // main + 3 calls = 4 frames.
    expect(checkStructure(chain(3), { ...OPTS, maxCallDepth: 4 })).toEqual([]);
    const d = single(chain(3), 'call-depth', 4, { ...OPTS, maxCallDepth: 3 });
    expect(d.message).toContain('limit of 3');
    // The default limit is 8 frames: 7 nested calls pass, 8 do not.
    expect(checkStructure(chain(7), OPTS)).toEqual([]);
    single(chain(8), 'call-depth', 14);
  });

  it('jump-cross-function: a jump into another function', () => {
    const d = single(asm(`
      call local f
      ja +2
      exit
      f:
      mov %r0, 1
      exit`), 'jump-cross-function', 1);
    expect(d.message).toContain('jump target 4 is in another function');
  });

  it('stack: constant r10 offsets outside [-stackSize, 0)', () => {
    const cases: [string, number?][] = [
      ['stdw [%r10-520], 1'],
      ['stxdw [%r10-4], %r1'],
      ['stb [%r10+0], 1'],
      ['ldxw %r0, [%r10-2]'],
      ['lock add [%r10+8], %r1'],
      ['stxdw [%r10-64], %r1', 32],
    ];
    for (const [text, stackSize] of cases) {
      const d = single(asm(`${text}\nmov %r0, 0\nexit`), 'stack', 0, { ...OPTS, stackSize });
      expect(d.message).toContain(`${stackSize ?? 512}-byte frame`);
    }
    expect(checkStructure(asm('stdw [%r10-512], 1\nstb [%r10-1], 1\nmov %r0, 0\nexit'), OPTS)).toEqual([]);
  });

  it('uninit: the conformance error.data program', () => {
    const d = single(asm('or %r0, %r10\nexit'), 'uninit', 0);
    expect(d.message).toContain('reads r0');
  });

  it('uninit: a register set on one path only', () => {
    const d = single(asm(`
      jeq %r1, 0, +1
      mov %r3, 1
      mov %r0, %r3
      exit`), 'uninit', 2);
    expect(d.message).toContain('r3');
  });

  it('uninit: arguments are gone after a helper call, callx or local call', () => {
    single(asm('call 5\nmov %r0, %r1\nexit'), 'uninit', 1);
    single(asm('mov %r3, 5\ncallx %r3\nmov %r0, %r3\nexit'), 'uninit', 2);
    single(asm('call local f\nmov %r0, %r2\nexit\nf:\nmov %r0, 0\nexit'), 'uninit', 1);
  });

  it('uninit: what counts as a read', () => {
    const reads: [string, string][] = [
      ['mov %r0, %r4', 'r4'], // source of a register move
      ['add %r0, 1', 'r0'], // ALU dst
      ['neg %r0', 'r0'],
      ['stxdw [%r10-8], %r6', 'r6'], // stored value
      ['stw [%r7+0], 1', 'r7'], // store base
      ['ldxw %r0, [%r8+0]', 'r8'], // load base
      ['lock cmpxchg [%r1+0], %r2', 'r0'], // compares with r0
      ['callx %r9', 'r9'],
    ];
    for (const [text, reg] of reads) {
      const d = single(asm(`mov %r2, 0\n${text}\nmov %r0, 0\nexit`), 'uninit', 1);
      expect(d.message).toContain(`reads ${reg}`);
    }
    expect(single(asm('jne %r5, 0, +0\nmov %r0, 0\nexit'), 'uninit', 0).message).toContain('r5');
    expect(single(asm('exit'), 'uninit', 0).message).toContain('reads r0');
  });
});

describe('valid programs', () => {
  const valid: Record<string, string> = {
    loop: `
      mov %r0, 0
      mov %r3, 10
      loop:
      add %r0, %r3
      sub %r3, 1
      jne %r3, 0, loop
      exit`,
    'local calls with arguments and callee-saved registers': `
      mov %r6, 7
      mov %r1, 1
      call local f
      add %r0, %r6
      call local g
      exit
      f:
      mov %r0, %r1
      add %r0, %r5
      call local g
      exit
      g:
      mov %r0, 2
      exit`,
    lddw: `
      lddw %r0, 0x123456789
      ja +1
      exit
      lddw %r3, 1
      add %r0, %r3
      exit`,
    atomics: `
      stdw [%r10-8], 0
      mov %r1, 3
      lock add [%r10-8], %r1
      lock fetch or [%r10-8], %r1
      mov %r0, 1
      lock cmpxchg [%r10-8], %r1
      lock xchg32 [%r10-4], %r1
      ldxdw %r0, [%r10-8]
      exit`,
    'unreachable code that is structurally valid': `
      mov %r0, 0
      exit
      add %r9, %r8
      ja -2`,
    'initialised on every path, including around a loop': `
      jeq %r2, 0, +2
      mov %r4, 1
      ja +1
      mov %r4, 2
      mov %r0, %r4
      exit`,
    'helper and callx': `
      mov %r1, -1
      call 5
      mov %r2, 5
      callx %r2
      mov %r0, 2
      exit`,
  };
  for (const [name, text] of Object.entries(valid)) {
    it(name, () => {
      expect(checkStructure(asm(text), OPTS)).toEqual([]);
      expect(() => verifyStructure(asm(text), OPTS)).not.toThrow();
    });
  }

  it('a non-zero entry with a callee before it', () => {
    const p: Program = { ...asm('mov %r0, %r1\nexit\ncall local -3\nexit'), entry: 2 };
    expect(checkStructure(p, OPTS)).toEqual([]);
  });
});

describe('reporting', () => {
  it('lists every problem in slot order and throws them as a VerifyError', () => {
    const p = raw([slot(0x05, { off: 40 }), slot(0xb7, { dst: 13 }), slot(0x85, { imm: 9 }), slot(0xbf, { dst: 10, src: 1 })]);
    const all = checkStructure(p, OPTS);
    expect(all.map((d) => [d.index, d.rule])).toEqual([[0, 'jump-range'], [1, 'register'], [2, 'helper'], [3, 'r10-write']]);
    let caught: unknown;
    try {
      verifyStructure(p, OPTS);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(VerifyError);
    const err = caught as VerifyError;
    expect(err.diagnostics).toEqual(all);
    expect(err.message).toBe(`${all[0].message} (and 3 more)`);
  });

  it('one problem: the message is that diagnostic alone', () => {
    expect(() => verifyStructure(asm('call 3\nexit'), OPTS)).toThrow(/^instruction 0 \(call 3\): helper 3 [^()]*\(available: 5\)$/);
  });

  it('an entry point outside the program', () => {
    const all = checkStructure({ ...asm('mov %r0, 0\nexit'), entry: 5 }, OPTS);
    expect(all.map((d) => d.rule)).toEqual(['entry']);
    expect(all[0].message).toContain('entry point 5');
  });

  it('does not report reads after an invalid instruction it already rejected', () => {
    const all = checkStructure(raw([slot(0xb7, { off: 2 }), EXIT]), OPTS);
    expect(all.map((d) => d.rule)).toEqual(['opcode']);
  });
});

describe('robustness', () => {
  it('never throws on random slots; diagnostics stay sorted and name their instruction', () => {
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // Codes that classify, so the random programs reach the CFG rules, not only 'opcode'.
    const codes = [0x07, 0x0f, 0xb7, 0xbf, 0x18, 0x61, 0x79, 0x7a, 0x7b, 0xdb, 0x05, 0x06, 0x15, 0x1d, 0x85, 0x8d, 0x95];
    const rules = new Set<string>();
    for (let round = 0; round < 300; round++) {
      const insns = Array.from({ length: 1 + rand(12) }, () => slot(codes[rand(codes.length)], {
        dst: rand(12), src: rand(3), off: rand(9) - 4, imm: rand(3) === 0 ? 5 : rand(9) - 4,
      }));
      const all = checkStructure(raw(insns), OPTS);
      for (const d of all) {
        rules.add(d.rule);
        expect(d.message.startsWith(`instruction ${d.index} (${d.disasm}): `)).toBe(true);
      }
      expect(all.map((d) => d.index)).toEqual(all.map((d) => d.index).sort((a, b) => a - b));
    }
    expect([...rules]).toEqual(expect.arrayContaining(['opcode', 'register', 'r10-write', 'jump-range', 'fall-off', 'uninit', 'lddw', 'stack']));
  });
});

describe('bpf_conformance suite', () => {
  const load = (dir: string, file: string): Program => {
    const test = parseDataFile(readFileSync(join(CONFORMANCE, dir, file), 'utf8'));
    if (test.asm !== undefined && test.asm.trim() !== '') return assembleProgram(test.asm, file);
    return rawProgram(test.raw ?? [], file);
  };
  const files = (dir: string): string[] => readdirSync(join(CONFORMANCE, dir)).filter((f) => f.endsWith('.data')).sort();

  it('accepts every test program with helpers {5}', () => {
    const tests = files('tests');
    expect(tests.length).toBeGreaterThan(300);
    const rejected = tests.flatMap((f) => checkStructure(load('tests', f), OPTS).map((d) => `${f}: ${d.message}`));
    expect(rejected).toEqual([]);
  });

  it('rejects every negative/unused-*.data and negative/error.data', () => {
    const negatives = files('negative').filter((f) => f.startsWith('unused-') || f === 'error.data');
    expect(negatives.length).toBeGreaterThan(40);
    const accepted = negatives.filter((f) => checkStructure(load('negative', f), OPTS).length === 0);
    expect(accepted).toEqual([]);
    expect(checkStructure(load('negative', 'error.data'), OPTS).map((d) => d.rule)).toEqual(['uninit']);
  });
});
