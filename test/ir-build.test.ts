// The IR builder: exact IR text for hand-written programs (every lowering rule, budgets, facts,
// relocations, local calls), and every conformance program builds into valid IR.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr, IrBuildError } from '../compiler/ir/build.js';
import { printIr } from '../compiler/ir/text.js';
import { validateIr } from '../compiler/ir/validate.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import { noFacts, type AccessFact, type ProgramFacts } from '../compiler/verify/facts.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';

const HELPERS = { helpers: new Set([5]) };

function prog(text: string): Program {
  const p = assembleProgram(text, 'test');
  verifyStructure(p, HELPERS);
  return p;
}

/** The IR text without the module header, trimmed: what the expectations below spell out. */
function ir(p: Program, facts?: ProgramFacts): string {
  const m = buildIr(p, facts);
  expect(validateIr(m)).toEqual([]);
  return printIr(m).split('\n').filter((l) => !/^(origin|helpers|data) /.test(l)).join('\n').trim();
}

const lines = (s: string): string => s.split('\n').map((l) => l.replace(/^ {4}/, '')).join('\n').trim();

describe('lowering, one rule per instruction form', () => {
  it('ALU: mov K sign-extends for 64-bit and zero-extends for 32-bit; every binary op by its IR name', () => {
    const text = ir(prog(`
      mov %r0, -2
      mov32 %r1, -2
      mov %r2, %r1
      mov32 %r3, %r1
      add %r0, %r1
      sub32 %r0, 7
      mul %r0, %r2
      div %r0, 3
      sdiv32 %r0, %r3
      mod %r0, %r2
      smod %r0, -5
      and32 %r0, 255
      or %r0, %r1
      xor32 %r0, %r2
      lsh %r0, 3
      rsh32 %r0, %r3
      arsh %r0, 1
      neg32 %r0
      neg %r0
      exit`));
    expect(text).toBe(lines(`
    function main (start 0) {
    b0:
      r0 = const 0xfffffffffffffffe  ; @0
      r1 = const 0xfffffffe          ; @1
      r2 = mov.64 r1                 ; @2
      r3 = mov.32 r1                 ; @3
      r0 = add.64 r0, r1             ; @4
      r0 = sub.32 r0, 7              ; @5
      r0 = mul.64 r0, r2             ; @6
      r0 = udiv.64 r0, 3             ; @7
      r0 = sdiv.32 r0, r3            ; @8
      r0 = urem.64 r0, r2            ; @9
      r0 = srem.64 r0, -5            ; @10
      r0 = and.32 r0, 255            ; @11
      r0 = or.64 r0, r1              ; @12
      r0 = xor.32 r0, r2             ; @13
      r0 = shl.64 r0, 3              ; @14
      r0 = lshr.32 r0, r3            ; @15
      r0 = ashr.64 r0, 1             ; @16
      r0 = neg.32 r0                 ; @17
      r0 = neg.64 r0                 ; @18
      ret                            ; @19
    }`));
  });

  it('movsx -> sext, le -> zext / mov, be and bswap -> bswap', () => {
    const text = ir(prog(`
      mov %r1, 0x1234
      movsx864 %r0, %r1
      movsx1632 %r2, %r1
      movsx3264 %r3, %r1
      le16 %r0
      le32 %r0
      le64 %r0
      be16 %r2
      be64 %r2
      bswap32 %r3
      exit`));
    expect(text).toBe(lines(`
    function main (start 0) {
    b0:
      r1 = const 0x1234              ; @0
      r0 = sext8.64 r1               ; @1
      r2 = sext16.32 r1              ; @2
      r3 = sext32.64 r1              ; @3
      r0 = zext16.64 r0              ; @4
      r0 = zext32.64 r0              ; @5
      r0 = mov.64 r0                 ; @6
      r2 = bswap16 r2                ; @7
      r2 = bswap64 r2                ; @8
      r3 = bswap32 r3                ; @9
      ret                            ; @10
    }`));
  });

  it('memory: loads, sign-extending loads, stores of immediates and registers, atomics', () => {
    const text = ir(prog(`
      ldxb %r0, [%r1+1]
      ldxsh %r3, [%r1-2]
      ldxdw %r4, [%r10-8]
      stw [%r10-4], -1
      stxdw [%r10-16], %r4
      lock add32 [%r10-4], %r0
      lock fetch or [%r10-16], %r3
      lock xchg [%r10-16], %r3
      lock cmpxchg32 [%r10-4], %r3
      exit`));
    expect(text).toBe(lines(`
    function main (start 0) {
    b0:
      r0 = load.u8 r1+1 [check]      ; @0
      r3 = load.s16 r1-2 [check]     ; @1
      r4 = load.u64 r10-8 [check]    ; @2
      store.32 r10-4, -1 [check]     ; @3
      store.64 r10-16, r4 [check]    ; @4
      atomic.add.32 r10-4, r0 [check] ; @5
      atomic.fetch.or.64 r10-16, r3 [check] ; @6
      atomic.xchg.64 r10-16, r3 [check] ; @7
      atomic.cmpxchg.32 r10-4, r3 [check] ; @8
      ret                            ; @9
    }`));
  });

  it('lddw is a const, or an addr when relocated; a helper call is recorded in the module', () => {
    const p = prog(`
      lddw %r0, 0x123456789
      lddw %r1, 0
      mov %r2, 1
      call 5
      exit`);
    p.data = [{ name: '.rodata', bytes: new Uint8Array([1, 2, 3]), writable: false }];
    p.relocs = [{ slot: 2, section: 0, addend: 2 }];
    const m = buildIr(p);
    expect(m.helpers).toEqual([5]);
    expect(validateIr(m)).toEqual([]);
    expect(printIr(m)).toBe(lines(`
    origin "test"
    helpers 5
    data ".rodata" ro 010203
    function main (start 0) {
    b0:
      r0 = const 0x123456789         ; @0
      r1 = addr data0+2              ; @2
      r2 = const 0x1                 ; @4
      call 5                         ; @5
      ret                            ; @6
    }`) + '\n');
  });

  it('callx and local calls: the entry first, callees by index in slot order', () => {
    const p = prog(`
      mov %r6, 5
      call local f
      callx %r6
      exit
      g:
      mov %r0, 2
      exit
      f:
      call local g
      exit`);
    expect(ir(p)).toBe(lines(`
    function main (start 0) {
    b0:
      r6 = const 0x5                 ; @0
      calllocal 2                    ; @1
      callx r6                       ; @2
      ret                            ; @3
    }
    function g (start 4) {
    b0:
      r0 = const 0x2                 ; @4
      ret                            ; @5
    }
    function f (start 6) {
    b0:
      calllocal 1                    ; @6
      ret                            ; @7
    }`));
  });

  it('an entry that is not slot 0 comes first; unreachable code is dropped', () => {
    const p = assembleProgram(`
      mov %r0, 1
      exit
      mov %r0, 2
      ja +1
      mov %r0, 3
      exit`, 'test');
    p.entry = 2;
    verifyStructure(p, HELPERS);
    expect(ir(p)).toBe(lines(`
    function main (start 2) {
    b0:
      r0 = const 0x2                 ; @2
      jump b1                        ; @3
    b1:
      ret                            ; @5
    }`));
  });
});

describe('control flow and budgets', () => {
  const LOOP = `
      mov %r0, 0
      mov %r2, 10
      loop:
      add %r0, %r2
      sub %r2, 1
      jgt %r2, 0, loop
      jeq32 %r0, 55, done
      mov %r0, 0
      done:
      exit`;

  it('a loop body is budgeted by its instruction count; fall-through gets an explicit jump', () => {
    expect(ir(prog(LOOP))).toBe(lines(`
    function main (start 0) {
    b0:
      r0 = const 0x0                 ; @0
      r2 = const 0xa                 ; @1
      jump b1                        ; @1
    b1:
      budget 3                       ; @2
      r0 = add.64 r0, r2             ; @2
      r2 = sub.64 r2, 1              ; @3
      br.ugt.64 r2, 0, b1, b2        ; @4
    b2:
      br.eq.32 r0, 55, b4, b3        ; @5
    b3:
      r0 = const 0x0                 ; @6
      jump b4                        ; @6
    b4:
      ret                            ; @7
    }`));
  });

  it('a back edge proven bounded by the facts costs nothing; access verdicts come from the facts', () => {
    const p = prog(`
      mov %r2, 4
      loop:
      ldxb %r0, [%r1+0]
      stb [%r10-1], 0
      sub %r2, 1
      jne %r2, 0, loop
      exit`);
    const facts = noFacts();
    facts.boundedBackEdges.add(4);
    const fact = (slot: number, f: Partial<AccessFact>): AccessFact => ({ slot, verdict: 'check', size: 1, write: false, reason: 'test', ...f });
    facts.access.set(1, fact(1, { region: 'mem' }));
    facts.access.set(2, fact(2, { verdict: 'proven', region: 'stack', write: true }));
    expect(ir(p, facts)).toBe(lines(`
    function main (start 0) {
    b0:
      r2 = const 0x4                 ; @0
      jump b1                        ; @0
    b1:
      r0 = load.u8 r1+0 [check mem]  ; @1
      store.8 r10-1, 0 [proven stack] ; @2
      r2 = sub.64 r2, 1              ; @3
      br.ne.64 r2, 0, b1, b2         ; @4
    b2:
      ret                            ; @5
    }`));
    expect(ir(p)).toContain('budget 4');
  });

  it('every block of a multi-block loop is budgeted, blocks after it are not', () => {
    const text = ir(prog(`
      mov %r0, 0
      mov %r2, 8
      loop:
      jset %r2, 1, odd
      add %r0, 1
      ja next
      odd:
      add %r0, 2
      lddw %r3, 7
      next:
      sub %r2, 1
      jne %r2, 0, loop
      exit`));
    const budgets = [...text.matchAll(/^b(\d+):\n {2}budget (\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    // b1 = jset; b2 = add, ja; b3 = add, lddw (lddw counts once); b4 = sub, jne. b5 (exit) is outside.
    expect(budgets).toEqual([[1, 1], [2, 2], [3, 2], [4, 2]]);
  });

  it('a self-loop (ja -1) is budgeted', () => {
    expect(ir(prog('mov %r0, 0\nja -1\nexit'))).toContain('b1:\n  budget 1                       ; @1\n  jump b1');
  });
});

describe('preconditions', () => {
  it('a program that runs off its end is refused with a message naming the instruction', () => {
    const p = assembleProgram('mov %r0, 1', 'bad');
    expect(() => buildIr(p)).toThrow(IrBuildError);
    expect(() => buildIr(p)).toThrow(/instruction 0: execution can run off the end/);
  });
});

describe('every conformance program', () => {
  const files = dataFiles(CONFORMANCE_TESTS);
  it('there are 313 of them', () => expect(files.length).toBe(313));
  it('builds into valid IR with one instruction or terminator per reachable eBPF instruction', () => {
    let built = 0;
    for (const file of files) {
      const test = parseDataFile(readFileSync(file, 'utf8'));
      let p: Program;
      try {
        p = programOfTest(test, basename(file));
        verifyStructure(p, HELPERS);
      } catch {
        expect(test.expectError, basename(file)).toBe(true);
        continue;
      }
      const m = buildIr(p);
      expect(validateIr(m), basename(file)).toEqual([]);
      // Each pc appears once among instructions and non-synthetic terminators: nothing dropped or duplicated.
      const pcs: number[] = [];
      for (const f of m.functions) {
        for (const b of f.blocks) {
          for (const i of b.insts) if (i.op !== 'budget') pcs.push(i.pc);
          if (b.term.op !== 'jump' || p.insns[b.term.pc].code === 0x05 || p.insns[b.term.pc].code === 0x06) pcs.push(b.term.pc);
        }
      }
      expect(new Set(pcs).size, basename(file)).toBe(pcs.length);
      built++;
    }
    expect(built).toBeGreaterThan(290);
  });
});
