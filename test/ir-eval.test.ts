// The IR interpreter against the reference interpreter (differential): every conformance program and
// 2000 generated ones end the same way — same r0, or same fault kind at the same pc — straight from
// the builder and after the optimisation pipeline. Plus the rules the IR adds: budgets, hiDead
// poisoning, and broken contracts reported as IrEvalError.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalIr, IrEvalError } from '../compiler/ir/eval.js';
import { optimizeIr } from '../compiler/ir/pipeline.js';
import { parseIr } from '../compiler/ir/text.js';
import { programOfTest } from '../compiler/load.js';
import { classify, isInvalid } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import { verifyStructure } from '../compiler/verify/structural.js';
import { HelperError, type RunResult } from '../runtime/errors.js';
import { HelperRegistry, UNWIND } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { generateProgram } from './support/progen.js';
import { CONFORMANCE_TESTS, dataFiles } from './support/paths.js';

const GENERATED = 2000;

/** How a run ended, comparable across engines (steps differ by design: the IR counts charges). */
function outcome(r: RunResult): string {
  return r.ok ? `r0=0x${r.r0.toString(16)}` : `${r.fault.kind} at ${r.fault.pc}`;
}

function conformance(): { name: string; program: Program; mem: Uint8Array }[] {
  const out = [];
  for (const file of dataFiles(CONFORMANCE_TESTS)) {
    const test = parseDataFile(readFileSync(file, 'utf8'));
    const program = programOfTest(test, basename(file));
    verifyStructure(program, { helpers: new Set([5]) });
    out.push({ name: basename(file), program, mem: test.mem });
  }
  return out;
}

const asm = (text: string): Program => {
  const p = assembleProgram(text, 'test');
  verifyStructure(p, { helpers: new Set([5]) });
  return p;
};

describe('differential: evalIr agrees with the reference interpreter', () => {
  it('on all 313 conformance programs, with identical fault messages, before and after optimisation', () => {
    const cases = conformance();
    expect(cases.length).toBe(313);
    for (const c of cases) {
      const want = interpret(c.program, { mem: c.mem });
      const raw = evalIr(buildIr(c.program), { mem: c.mem, program: c.program });
      expect(outcome(raw), c.name).toBe(outcome(want));
      if (!want.ok && !raw.ok) expect(raw.fault.message, c.name).toBe(want.fault.message);
      const opt = evalIr(optimizeIr(buildIr(c.program)), { mem: c.mem, program: c.program });
      expect(outcome(opt), c.name).toBe(outcome(want));
    }
  });

  it(`on ${GENERATED} generated programs, before and after optimisation`, () => {
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= GENERATED; seed++) {
      const g = generateProgram(seed);
      const want = interpret(g.program, { mem: g.mem });
      const m = buildIr(g.program);
      const raw = evalIr(m, { mem: g.mem, program: g.program });
      const opt = evalIr(optimizeIr(m), { mem: g.mem, program: g.program });
      const ctx = `seed ${seed}:\n${g.text}`;
      expect(outcome(raw), ctx).toBe(outcome(want));
      expect(outcome(opt), ctx).toBe(outcome(want));
      if (!want.ok && !raw.ok) expect(raw.fault.message, ctx).toBe(want.fault.message);
      const k = want.ok ? 'ok' : want.fault.kind;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // The generator must exercise both finishing runs and faults, or the comparison proves little.
    expect(kinds.get('ok') ?? 0).toBeGreaterThan(GENERATED * 0.7);
    expect(kinds.get('out-of-bounds') ?? 0).toBeGreaterThan(20);
    expect(kinds.get('unknown-helper') ?? 0).toBeGreaterThan(5);
  });
});

describe('the program generator', () => {
  it('is deterministic per seed and covers every instruction family across 300 seeds', () => {
    expect(generateProgram(42).text).toBe(generateProgram(42).text);
    expect(generateProgram(42).text).not.toBe(generateProgram(43).text);
    const seen = new Set<string>();
    let relocs = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { program } = generateProgram(seed);
      relocs += program.relocs.length;
      for (let i = 0; i < program.insns.length; i++) {
        const c = classify(program.insns[i]);
        if (isInvalid(c)) continue;
        // Operand form matters for ALU ops and compares: K and X are different code paths.
        seen.add(c.form === 'alu' || c.form === 'jcond' ? `${c.mnemonic}/${c.srcReg ? 'x' : 'k'}` : c.mnemonic);
        if (c.form === 'lddw') i++;
      }
    }
    const want: string[] = [];
    for (const w of ['', '32']) {
      for (const op of ['add', 'sub', 'mul', 'div', 'sdiv', 'mod', 'smod', 'or', 'and', 'lsh', 'rsh', 'arsh', 'xor', 'mov']) want.push(`${op}${w}/k`, `${op}${w}/x`);
      for (const j of ['jeq', 'jne', 'jgt', 'jge', 'jlt', 'jle', 'jsgt', 'jsge', 'jslt', 'jsle', 'jset']) want.push(`${j}${w}/k`, `${j}${w}/x`);
      want.push(`neg${w}`);
    }
    want.push('movsx864/x', 'movsx1664/x', 'movsx3264/x', 'movsx832/x', 'movsx1632/x');
    for (const e of ['le', 'be', 'bswap']) for (const b of [16, 32, 64]) want.push(`${e}${b}`);
    for (const sz of ['b', 'h', 'w', 'dw']) want.push(`ldx${sz}`, `st${sz}`, `stx${sz}`);
    want.push('ldxsb', 'ldxsh', 'ldxsw', 'lddw', 'ja', 'call', 'call local', 'callx', 'exit');
    for (const w of ['', '32']) {
      for (const a of ['add', 'or', 'and', 'xor']) want.push(`lock ${a}${w}`, `lock fetch ${a}${w}`);
      want.push(`lock xchg${w}`, `lock cmpxchg${w}`);
    }
    expect(want.filter((m) => !seen.has(m))).toEqual([]);
    expect(relocs).toBeGreaterThan(50);
  });
});

describe('budget', () => {
  const SPIN = 'mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit';

  it('an endless loop stops with a budget fault at the loop block, charging whole blocks', () => {
    const p = asm(SPIN);
    const r = evalIr(buildIr(p), { budget: 1000, program: p });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.fault.kind).toBe('budget');
    expect(r.fault.pc).toBe(1);
    expect(r.fault.message).toBe('budget exhausted at instruction 1 (add %r0, 1): executed 1000 instructions without exiting');
    // Blocks of 2 instructions: 500 fit exactly, the 501st is refused.
    expect(r.steps).toBe(1000);
    const want = interpret(p, { budget: 1000 });
    expect(want.ok ? 'ok' : want.fault.kind).toBe('budget');
  });

  it('straight-line code is never charged', () => {
    const r = evalIr(buildIr(asm('mov %r0, 1\nadd %r0, 2\nexit')), { budget: 0 });
    expect(r).toEqual({ ok: true, r0: 3n, steps: 0 });
  });
});

describe('hiDead, calls, helpers and broken contracts', () => {
  it('a hiDead definition gets a poisoned upper half, so a wrong mark changes the result', () => {
    const m = parseIr(`
      function main (start 0) {
      b0:
        r0.lo = const 0x5   ; @0
        ret                 ; @1
      }`);
    expect(evalIr(m, { poisonHiDead: false })).toMatchObject({ ok: true, r0: 5n });
    expect(evalIr(m)).toMatchObject({ ok: true, r0: 0xa5a5a5a5_00000005n });
  });

  it('calllocal preserves r6-r10 and temporaries of the caller; the callee gets a fresh frame', () => {
    const m = parseIr(`
      function main (start 0) {
      b0:
        r6 = const 0x6      ; @0
        r11 = const 0xb     ; @1
        calllocal 1         ; @2
        r0 = add.64 r0, r6  ; @3
        r0 = add.64 r0, r11 ; @4
        r1 = mov.64 r10     ; @5
        r0 = add.64 r0, r1  ; @6
        ret                 ; @7
      }
      function f (start 8) {
      b0:
        r6 = const 0x100    ; @8
        r11 = const 0x200   ; @9
        r0 = mov.64 r10     ; @10
        ret                 ; @11
      }`);
    // callee r0 = 0x11000 - 512; plus 6 + 0xb + the caller's r10 (0x11000).
    expect(evalIr(m)).toMatchObject({ ok: true, r0: 0x11000n - 512n + 6n + 0xbn + 0x11000n });
  });

  it('a helper that stops the program ends it with its r0; helper errors are helper faults', () => {
    const p = asm('mov %r1, 0\ncall 5\nmov %r0, 7\nexit');
    expect(evalIr(buildIr(p))).toMatchObject({ ok: true, r0: 0n });
    const failing = new HelperRegistry().register(UNWIND).register({
      id: 9, name: 'refuse', call: () => { throw new HelperError('no'); },
    });
    const q = assembleProgram('call 9\nexit', 'test');
    const r = evalIr(buildIr(q), { helpers: failing, program: q });
    expect(r.ok ? '' : r.fault.message).toBe('helper failed at instruction 0 (call 9): refuse: no');
    expect(interpret(q, { helpers: failing })).toMatchObject({ ok: false, fault: { message: r.ok ? '' : r.fault.message } });
  });

  it('a proven access that faults, or a region claim that is wrong, is an IrEvalError, not a fault', () => {
    const proven = parseIr(`
      function main (start 0) {
      b0:
        r0 = load.u8 r1+4 [proven mem] ; @0
        ret                            ; @1
      }`);
    expect(() => evalIr(proven, { mem: new Uint8Array(4) })).toThrow(IrEvalError);
    expect(evalIr(proven, { mem: new Uint8Array(5) })).toMatchObject({ ok: true, r0: 0n });
    const wrongRegion = parseIr(`
      function main (start 0) {
      b0:
        r0 = load.u8 r10-1 [check mem] ; @0
        ret                            ; @1
      }`);
    expect(() => evalIr(wrongRegion, { mem: new Uint8Array(4) })).toThrow(/claimed to be in mem but is in stack/);
  });

  it('addr resolves to the data section laid out after the stack; writes to read-only data are permission faults', () => {
    const m = parseIr(`
      data ".rodata" ro 2a00000000000000
      function main (start 0) {
      b0:
        r1 = addr data0+0              ; @0
        r0 = load.u64 r1+0 [check]     ; @2
        store.8 r1+0, 1 [check]        ; @3
        ret                            ; @4
      }`);
    const r = evalIr(m);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.fault.kind).toBe('permission');
      expect(r.fault.pc).toBe(3);
      expect(r.fault.message).toMatch(/^permission denied at instruction 3: write of 1 byte at 0x12000 to read-only region \.rodata$/);
    }
  });
});
