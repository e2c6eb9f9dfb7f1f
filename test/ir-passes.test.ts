// IR passes. Text filetests (test/fixtures/ir/<pass>/*.ir: `; pass: NAME`, the input, `; expect:`,
// the expected output) pin down what each pass does; then every pass alone, and the pipeline, must
// keep every conformance and generated program valid and ending exactly as before.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDataFile } from '../compiler/datafile.js';
import { buildIr } from '../compiler/ir/build.js';
import { evalBin, evalCond, evalExt, evalIr } from '../compiler/ir/eval.js';
import { BIN_NAMES, COND_NAMES, flatten, functionsOf, releaseFlat } from '../compiler/ir/flat.js';
import { binPair, condPair, extPair, lastPair } from '../compiler/ir/passes/constfold.js';
import { programFacts } from '../compiler/frontend.js';
import type { IrModule } from '../compiler/ir/ir.js';
import { buildOptimizedIr, DEFAULT_PASSES, IrPassError, JIT_PASSES, optimizeIr, PASSES } from '../compiler/ir/pipeline.js';
import { mapFunctions } from '../compiler/ir/passes/util.js';
import { parseIr, printIr } from '../compiler/ir/text.js';
import { validateIr } from '../compiler/ir/validate.js';
import { programOfTest } from '../compiler/load.js';
import type { Program } from '../compiler/program.js';
import type { RunResult } from '../runtime/errors.js';
import { generateProgram } from './support/progen.js';
import { CONFORMANCE_TESTS, dataFiles, ROOT } from './support/paths.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'ir');

interface FileTest {
  pass: string;
  input: string;
  expected: string;
}

function parseFileTest(file: string): FileTest {
  const text = readFileSync(file, 'utf8');
  const pass = /^; pass: (\S+)$/m.exec(text)?.[1];
  const cut = text.search(/^; expect:$/m);
  if (pass === undefined || cut < 0) throw new Error(`${file}: needs a '; pass: NAME' line and a '; expect:' line`);
  return { pass, input: text.slice(0, cut), expected: text.slice(cut) };
}

describe('filetests', () => {
  const passDirs = readdirSync(FIXTURES).sort();
  it('cover every pass with at least 3 files each', () => {
    expect(passDirs).toEqual([...PASSES.keys()].sort());
    for (const d of passDirs) expect(readdirSync(join(FIXTURES, d)).filter((f) => f.endsWith('.ir')).length, d).toBeGreaterThanOrEqual(3);
  });
  for (const dir of passDirs) {
    for (const f of readdirSync(join(FIXTURES, dir)).filter((x) => x.endsWith('.ir')).sort()) {
      it(`${dir}/${f}`, () => {
        const t = parseFileTest(join(FIXTURES, dir, f));
        expect(t.pass).toBe(dir);
        const input = parseIr(t.input);
        expect(validateIr(input)).toEqual([]);
        const inputText = printIr(input);
        const out = optimizeIr(input, { passes: [t.pass], validate: true });
        expect(printIr(out)).toBe(printIr(parseIr(t.expected)));
        // Passes are pure: the input module is untouched.
        expect(printIr(input)).toBe(inputText);
      });
    }
  }
});

interface Case {
  name: string;
  program: Program;
  mem: Uint8Array;
  m: IrModule;
}

function cases(generated: number): Case[] {
  const out: Case[] = [];
  for (const file of dataFiles(CONFORMANCE_TESTS)) {
    const test = parseDataFile(readFileSync(file, 'utf8'));
    const program = programOfTest(test, basename(file));
    out.push({ name: basename(file), program, mem: test.mem, m: buildIr(program) });
  }
  for (let seed = 1; seed <= generated; seed++) {
    const g = generateProgram(seed + 100_000);
    out.push({ name: `seed ${seed + 100_000}:\n${g.text}`, program: g.program, mem: g.mem, m: buildIr(g.program) });
  }
  return out;
}

const outcome = (r: RunResult): string => (r.ok ? `r0=0x${r.r0.toString(16)}` : `${r.fault.kind} at ${r.fault.pc}`);

describe('every pass keeps programs valid and their results unchanged', () => {
  const all = cases(400);
  for (const name of PASSES.keys()) {
    it(`${name}, alone, on 313 conformance and 400 generated programs`, () => {
      for (const c of all) {
        const want = outcome(evalIr(c.m, { mem: c.mem }));
        const out = optimizeIr(c.m, { passes: [name], validate: false });
        expect(validateIr(out), c.name).toEqual([]);
        expect(outcome(evalIr(out, { mem: c.mem })), c.name).toBe(want);
      }
    });
  }

  it('the default pipeline twice over (passes see their own output)', () => {
    for (const c of all) {
      const want = outcome(evalIr(c.m, { mem: c.mem }));
      const out = optimizeIr(c.m, { passes: [...DEFAULT_PASSES, ...DEFAULT_PASSES], validate: true });
      expect(outcome(evalIr(out, { mem: c.mem })), c.name).toBe(want);
    }
  });

  it('the JIT pipeline (a subset of the passes) keeps every result', () => {
    expect(JIT_PASSES.every((p) => PASSES.has(p))).toBe(true);
    for (const c of all) {
      const want = outcome(evalIr(c.m, { mem: c.mem }));
      const out = optimizeIr(c.m, { passes: JIT_PASSES, validate: true });
      expect(outcome(evalIr(out, { mem: c.mem })), c.name).toBe(want);
    }
  });

  it('does real work: the pipeline shrinks the code, narrows it and merges checks', () => {
    let before = 0, after = 0, hiDead = 0, covered = 0;
    for (const c of all) {
      const out = optimizeIr(c.m);
      const t0 = printIr(c.m);
      const t1 = printIr(out);
      before += t0.split('\n').length;
      after += t1.split('\n').length;
      hiDead += (t1.match(/\.lo = /g) ?? []).length;
      covered += (t1.match(/ by @\d+\]/g) ?? []).length;
    }
    expect(after).toBeLessThan(before * 0.85);
    expect(hiDead).toBeGreaterThan(1000);
    expect(covered).toBeGreaterThan(50);
  });
});

describe('the differential check catches broken passes', () => {
  // Mutants of the rules the passes rely on: each must change some program's result (or be
  // reported by the evaluator), or the agreement above would prove nothing.
  const all = cases(300);
  // A mutant may turn a loop counter into garbage: a small budget keeps such runs short.
  const budget = 100_000;
  const broken = (mutate: (m: IrModule) => IrModule): number => {
    let caught = 0;
    for (const c of all) {
      const want = outcome(evalIr(c.m, { mem: c.mem, budget }));
      try {
        if (outcome(evalIr(mutate(optimizeIr(c.m, { validate: false })), { mem: c.mem, budget })) !== want) caught++;
      } catch {
        caught++;
      }
    }
    return caught;
  };

  it('hiDead on every definition', () => {
    expect(broken((m) => mapFunctions(m, (f) => {
      for (const b of f.blocks) for (const i of b.insts) if ('dst' in i) i.hiDead = true;
    }))).toBeGreaterThan(10);
  });

  it('every access proven', () => {
    expect(broken((m) => mapFunctions(m, (f) => {
      for (const b of f.blocks) for (const i of b.insts) if ('access' in i) i.access = { verdict: 'proven' };
    }))).toBeGreaterThan(10);
  });

  it('every 64-bit operation narrowed', () => {
    expect(broken((m) => mapFunctions(m, (f) => {
      for (const b of f.blocks) for (const i of b.insts) if ((i.op === 'bin' || i.op === 'mov') && i.w === 64) i.w = 32;
    }))).toBeGreaterThan(10);
  });
});

describe('pipeline copies', () => {
  const programs = cases(20);
  it('each pass of PASSES is pure, and optimizeIr leaves its input alone unless told to consume it', () => {
    for (const c of programs) {
      const before = printIr(c.m);
      for (const [name, pass] of PASSES) {
        const out = pass(c.m);
        expect(printIr(c.m), `${name}: ${c.name}`).toBe(before);
        expect(printIr(out)).toBe(printIr(optimizeIr(c.m, { passes: [name] })));
      }
      const copy = parseIr(before);
      const consumed = optimizeIr(copy, { consume: true });
      expect(consumed).toBe(copy);
      expect(printIr(consumed)).toBe(printIr(optimizeIr(c.m)));
      expect(printIr(c.m)).toBe(before);
    }
  });
});

describe('pipeline errors', () => {
  it('an unknown pass is named', () => {
    expect(() => optimizeIr(parseIr('function f (start 0) {\nb0:\n  ret ; @0\n}'), { passes: ['frob'] })).toThrow(IrPassError);
    expect(() => optimizeIr(parseIr('function f (start 0) {\nb0:\n  ret ; @0\n}'), { passes: ['frob'] })).toThrow(/unknown IR pass 'frob'/);
  });

  it('an invalid result names the pass and the problem', () => {
    const bad = parseIr('function f (start 0) {\nb0:\n  jump b0 ; @0\n}');
    bad.functions[0].blocks[0].term = { op: 'jump', pc: 0, target: 3 };
    expect(() => optimizeIr(bad, { passes: ['copyprop'], validate: true })).toThrow(/invalid after pass 'copyprop':\n {2}function 0 \(f\) b0 terminator \(jump b3\): target b3 does not exist/);
  });
});

describe('records (the passes\' working form)', () => {
  const programs = cases(60);

  it('flatten and back gives the module it was given, marks and coverage included', () => {
    for (const c of programs) {
      const m = optimizeIr(c.m);
      const fm = flatten(m);
      expect(printIr({ ...m, functions: functionsOf(fm) }), c.name).toBe(printIr(m));
      releaseFlat(fm);
    }
    // hiDead false is kept as false (printIr shows only true).
    const m = parseIr('function f (start 0) {\nb0:\n  r0 = const 0x1 ; @0\n  ret ; @1\n}');
    const def = m.functions[0].blocks[0].insts[0] as { hiDead?: boolean };
    def.hiDead = false;
    const fm = flatten(m);
    expect((functionsOf(fm)[0].blocks[0].insts[0] as { hiDead?: boolean }).hiDead).toBe(false);
    releaseFlat(fm);
  });

  it('buildOptimizedIr is optimizeIr(buildIr(...)) without the builder\'s objects, with and without facts', () => {
    let withFacts = 0;
    for (const c of programs) {
      const facts = programFacts(c.program);
      if (facts.access.size > 0) withFacts++;
      for (const passes of [DEFAULT_PASSES, JIT_PASSES, []]) {
        const want = printIr(optimizeIr(buildIr(c.program, facts), { passes, consume: true }));
        expect(printIr(buildOptimizedIr(c.program, facts, { passes })), c.name).toBe(want);
      }
      expect(printIr(buildOptimizedIr(c.program, undefined))).toBe(printIr(optimizeIr(buildIr(c.program))));
    }
    expect(withFacts).toBeGreaterThan(100);
  });

  it('constant folding\'s int32-pair arithmetic agrees with the evaluator', () => {
    const edges = [0n, 1n, 2n, 7n, 31n, 32n, 33n, 63n, 64n, 0xffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x123456789abcdef0n,
      0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffff80000000n, 0xfffffffffffffffen, 0xffffffffffffffffn];
    const pair = (v: bigint): [number, number] => [Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n))];
    let checked = 0;
    for (const a of edges) {
      const [aLo, aHi] = pair(a);
      for (const w of [32, 64] as const) {
        for (const signed of [false, true]) {
          for (const bits of [8, 16, 32] as const) {
            extPair(signed, bits, w, aLo);
            expect(lastPair(), `ext ${signed} ${bits} ${w} ${a}`).toBe(evalExt(signed, bits, w, a));
          }
        }
        for (const b of edges) {
          const [bLo, bHi] = pair(b);
          BIN_NAMES.forEach((op, k) => {
            binPair(k, w, aLo, aHi, bLo, bHi);
            expect(lastPair(), `${op}.${w} ${a} ${b}`).toBe(evalBin(op, w, a, b));
            checked++;
          });
          COND_NAMES.forEach((cond, k) => {
            expect(condPair(k, w, aLo, aHi, bLo, bHi), `${cond}.${w} ${a} ${b}`).toBe(evalCond(cond, w, a, b));
          });
        }
      }
    }
    expect(checked).toBe(edges.length * edges.length * 2 * BIN_NAMES.length);
  });
});
