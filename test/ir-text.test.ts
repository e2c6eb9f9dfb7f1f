// The IR text form: print(parse(print(m))) === print(m) on every conformance program and 500
// generated ones (raw and optimised), parse(print(m)) rebuilds the same module, and malformed
// text fails with the line number and what was expected.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import type { IrModule } from '../compiler/ir/ir.js';
import { optimizeIr } from '../compiler/ir/pipeline.js';
import { IrParseError, parseIr, printIr } from '../compiler/ir/text.js';
import { validateIr } from '../compiler/ir/validate.js';
import { programOfTest } from '../compiler/load.js';
import { generateProgram } from './support/progen.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';

function roundTrip(m: IrModule, what: string): void {
  const text = printIr(m);
  const back = parseIr(text);
  expect(printIr(back), what).toBe(text);
  // Structurally equal too (maxReg is recomputed from the registers used, which the builder's 10 matches).
  expect(back, what).toEqual(m);
}

describe('round trips', () => {
  it('every conformance program, as built and as optimised', () => {
    let n = 0;
    for (const file of dataFiles(CONFORMANCE_TESTS)) {
      const m = buildIr(programOfTest(parseDataFile(readFileSync(file, 'utf8')), basename(file)));
      roundTrip(m, basename(file));
      roundTrip(optimizeIr(m), basename(file));
      n++;
    }
    expect(n).toBe(313);
  });

  it('500 generated programs (data sections, relocations, atomics, calls), as built and as optimised', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const g = generateProgram(seed);
      const m = buildIr(g.program);
      roundTrip(m, `seed ${seed}`);
      roundTrip(optimizeIr(m), `seed ${seed}`);
    }
  });

  it('keeps an explicit maxreg, quoted names, regions and coverage notes', () => {
    const text = [
      'origin "a b.o"',
      'helpers 1, 5',
      'data ".data" rw -',
      'function "my fn" (start 3, maxreg 12) {',
      'b0:',
      '  r11 = load.s32 r1-4 [proven ".data" by @2] ; @3',
      '  atomic.fetch.add.32 r10-8, r11 [check stack] ; @4',
      '  atomic.cmpxchg.64 r10-8, r2 [check] ; @5',
      '  call 1                         ; @6',
      '  br.sle.32 r11, -7, b0, b1       ; @7',
      'b1:',
      '  fault permission               ; @8',
      '}',
      '',
    ].join('\n');
    const m = parseIr(text);
    expect(m.functions[0].maxReg).toBe(12);
    expect(m.functions[0].name).toBe('my fn');
    expect(m.functions[0].blocks[0].insts[0]).toEqual({
      op: 'load', pc: 3, dst: 11, size: 4, signed: true, base: 1, off: -4,
      access: { verdict: 'proven', region: '.data', coveredBy: 2 },
    });
    expect(m.functions[0].blocks[0].insts[1]).toMatchObject({ op: 'atomic', aop: 'add', fetch: true, size: 4 });
    expect(m.functions[0].blocks[0].insts[2]).toMatchObject({ op: 'atomic', aop: 'cmpxchg', fetch: true, size: 8 });
    expect(validateIr(m)).toEqual([]);
    expect(printIr(parseIr(printIr(m)))).toBe(printIr(m));
  });
});

describe('parse errors name the line', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown op', 'function f (start 0) {\nb0:\n  r1 = frob.64 r1 ; @0\n  ret ; @1\n}', /^line 3: unknown operation 'frob\.64'/],
    ['missing pc', 'function f (start 0) {\nb0:\n  ret\n}', /^line 3: missing '; @pc'/],
    ['block order', 'function f (start 0) {\nb1:\n  ret ; @0\n}', /^line 2: expected block b0/],
    ['no terminator', 'function f (start 0) {\nb0:\n  r1 = const 0x1 ; @0\nb1:\n  ret ; @1\n}', /^line 4: block b0 has no terminator/],
    ['bad width', 'function f (start 0) {\nb0:\n  r1 = add.16 r1, 1 ; @0\n  ret ; @1\n}', /^line 3: width must be 32 or 64/],
    ['bad immediate', 'function f (start 0) {\nb0:\n  r1 = add.64 r1, 0x100000000 ; @0\n  ret ; @1\n}', /^line 3: an immediate 0x100000000 does not fit in 32 bits/],
    ['trailing text', 'function f (start 0) {\nb0:\n  ret r0 ; @0\n}', /^line 3: unexpected 'r0'/],
    ['unclosed', 'function f (start 0) {\nb0:\n  ret ; @0', /^line 3: function f is not closed/],
    ['outside block', 'function f (start 0) {\n  ret ; @0\n}', /^line 2: instruction outside a block/],
    ['bad access', 'function f (start 0) {\nb0:\n  r0 = load.u8 r1+0 [maybe] ; @0\n  ret ; @1\n}', /^line 3: expected 'proven' or 'check'/],
    ['fetch xchg', 'function f (start 0) {\nb0:\n  atomic.fetch.xchg.64 r1+0, r2 [check] ; @0\n  ret ; @1\n}', /^line 3: xchg always fetches/],
    ['directive', 'module x', /^line 1: unknown directive 'module'/],
  ];
  for (const [what, text, re] of cases) {
    it(what, () => {
      let err: unknown;
      try {
        parseIr(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IrParseError);
      expect((err as Error).message).toMatch(re);
    });
  }
});
