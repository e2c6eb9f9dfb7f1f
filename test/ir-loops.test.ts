// The IR loop analyses both back ends version loops with (compiler/ir/loops.ts): innermost
// natural loops, a loop's counted exit, the walks whose accesses one entry test covers and that
// test's terms. Checked on IR text.
import { describe, expect, it } from 'vitest';
import type { Inst, IrFunction } from '../compiler/ir/ir.js';
import { dominates, innermostLoops, loopCfg, versionPlan, type VersionPlan } from '../compiler/ir/loops.js';
import { parseIr } from '../compiler/ir/text.js';

const fn = (body: string): IrFunction => parseIr(`origin "test"\nfunction main (start 0) {\n${body}\n}\n`).functions[0];

/** Every checked access is in region 0 (-1 for proven ones, as a back end's regionOf says). */
const checked = (i: Inst): number => ('access' in i && i.access.verdict !== 'proven' ? 0 : -1);

function planOf(f: IrFunction, regionOf: (i: Inst) => number = checked): VersionPlan | undefined {
  const cfg = loopCfg(f);
  const loops = innermostLoops(f, cfg);
  expect(loops).toHaveLength(1);
  const l = loops[0];
  return versionPlan(f, cfg, l.body, l.blocks, l.header, regionOf);
}

const pcsOf = (p: VersionPlan | undefined): number[] => [...(p?.covered ?? [])].map((i) => i.pc).sort((a, b) => a - b);

// for (i = 0; i < n; i++) sum += p[i]: a pointer walk of step 1 and a counter up to r2.
const UP = `b0:
  r3 = const 0x0 ; @0
  br.eq.64 r2, 0, b2, b1 ; @1
b1:
  r4 = load.u8 r1+0 [check mem] ; @2
  r0 = add.64 r0, r4 ; @3
  r1 = add.64 r1, 1 ; @4
  r3 = add.64 r3, 1 ; @5
  br.ult.64 r3, r2, b1, b2 ; @6
b2:
  ret ; @7`;

describe('loops', () => {
  it('finds innermost natural loops only, with their blocks in order', () => {
    const f = fn(`b0:
  r3 = const 0x0 ; @0
  jump b1 ; @1
b1:
  r4 = const 0x0 ; @2
  jump b2 ; @3
b2:
  r4 = add.64 r4, 1 ; @4
  br.ult.64 r4, 8, b2, b3 ; @5
b3:
  r3 = add.64 r3, 1 ; @6
  br.ult.64 r3, 8, b1, b4 ; @7
b4:
  ret ; @8`);
    const cfg = loopCfg(f);
    expect(dominates(cfg, 1, 3)).toBe(true);
    expect(dominates(cfg, 2, 1)).toBe(false);
    const loops = innermostLoops(f, cfg);
    expect(loops.map((l) => [l.header, l.blocks])).toEqual([[2, [2]]]);
  });

  it('leaves out a loop whose body holds a cycle that avoids its header', () => {
    // b1 -> b2 -> b3 -> b2 inside the loop of b1 with no dominator back edge into b2 from b3? b2
    // dominates b3, so b2 is a loop of its own: the outer loop is not innermost.
    const f = fn(`b0:
  jump b1 ; @0
b1:
  br.eq.64 r1, 0, b2, b3 ; @1
b2:
  br.eq.64 r2, 0, b3, b4 ; @2
b3:
  br.eq.64 r3, 0, b2, b4 ; @3
b4:
  br.eq.64 r4, 0, b1, b5 ; @4
b5:
  ret ; @5`);
    // b2 <-> b3 is irreducible (both entered from b1): no natural loop there, and the loop of b1
    // holds that cycle, so it is not versionable either.
    expect(innermostLoops(f)).toEqual([]);
  });

  it('gives no loops for straight-line code and refuses branches to missing blocks', () => {
    expect(innermostLoops(fn('b0:\n  ret ; @0'))).toEqual([]);
    expect(() => loopCfg(fn('b0:\n  jump b0 ; @0')).idom[0]).not.toThrow();
    const bad = fn('b0:\n  jump b0 ; @0');
    bad.blocks[0].term = { op: 'jump', pc: 0, target: 7 };
    expect(() => loopCfg(bad)).toThrow(/block 0 branches to block 7/);
  });
});

describe('versionPlan', () => {
  it('covers a pointer walk with a counted, strict exit', () => {
    const p = planOf(fn(UP));
    expect(p?.count).toEqual({ reg: 3, w: 64, up: true, bound: { reg: 2 }, strict: true });
    expect(p?.tests).toEqual([{ base: 1, index: undefined, lo: 0, len: 1, step: 1, region: 0 }]);
    expect(pcsOf(p)).toEqual([2]);
  });

  it('counts the increment that ran before an access into its range', () => {
    // The access after the increment reads p + 1 + 2 .. p + 1 + 4 of the iteration's start.
    const p = planOf(fn(UP.replace('  r0 = add.64 r0, r4 ; @3', '  r0 = add.64 r0, r4 ; @3\n  r1 = add.64 r1, 4 ; @9\n  r5 = load.u16 r1+2 [check mem] ; @10').replace('  r1 = add.64 r1, 1 ; @4\n', '')));
    expect(p?.tests).toEqual([{ base: 1, index: undefined, lo: 0, len: 8, step: 4, region: 0 }]);
    expect(pcsOf(p)).toEqual([2, 10]);
  });

  it('covers a downward walk with a counter tested against zero (not strict)', () => {
    const p = planOf(fn(`b0:
  br.eq.64 r2, 0, b2, b1 ; @0
b1:
  r4 = load.u32 r1-4 [check mem] ; @1
  r1 = add.64 r1, -4 ; @2
  r2 = add.32 r2, -1 ; @3
  br.ne.32 r2, 0, b1, b2 ; @4
b2:
  ret ; @5`));
    expect(p?.count).toEqual({ reg: 2, w: 32, up: false, bound: { imm: 0 }, strict: false });
    expect(p?.tests).toEqual([{ base: 1, index: undefined, lo: -4, len: 4, step: -4, region: 0 }]);
  });

  it('covers base + (index << s) walks and invariant bases, and not what regionOf refuses', () => {
    const f = fn(`b0:
  r3 = const 0x0 ; @0
  jump b1 ; @1
b1:
  r4 = shl.64 r3, 2 ; @2
  r5 = add.64 r1, r4 ; @3
  r6 = load.u32 r5+0 [check mem] ; @4
  r7 = load.u32 r8+0 [check mem] ; @5
  store.32 r9+0, r6 [check ro] ; @6
  r3 = add.64 r3, 1 ; @7
  br.ne.64 r3, 16, b1, b2 ; @8
b2:
  ret ; @9`);
    const regionOf = (i: Inst): number => ('access' in i && i.access.region === 'ro' ? -1 : checked(i));
    const p = planOf(f, regionOf);
    expect(p?.count).toEqual({ reg: 3, w: 64, up: true, bound: { imm: 16 }, strict: false });
    expect(p?.tests).toEqual([
      { base: 1, index: { reg: 3, shift: 2 }, lo: 0, len: 4, step: 4, region: 0 },
      { base: 8, index: undefined, lo: 0, len: 4, step: 0, region: 0 },
    ]);
    expect(pcsOf(p)).toEqual([4, 5]);
  });

  it('takes only 64-bit steps as induction registers', () => {
    // A 32-bit counter is counted (the exit) but is no index: only the invariant access is covered.
    const f = fn(`b0:
  r3 = const 0x0 ; @0
  jump b1 ; @1
b1:
  r4 = shl.64 r3, 2 ; @2
  r5 = add.64 r1, r4 ; @3
  r6 = load.u32 r5+0 [check mem] ; @4
  r7 = load.u32 r8+0 [check mem] ; @5
  r3 = add.32 r3, 1 ; @7
  br.ne.32 r3, 16, b1, b2 ; @8
b2:
  ret ; @9`);
    const p = planOf(f);
    expect(p?.count).toBeUndefined();
    expect(pcsOf(p)).toEqual([5]);
  });

  it('has no plan for a moving walk without a counted exit, or with nothing checked', () => {
    // The counter is written twice: no trip count, so only the invariant access could be covered.
    const twice = fn(UP.replace('  r3 = add.64 r3, 1 ; @5', '  r3 = add.64 r3, 1 ; @5\n  r3 = add.64 r3, 1 ; @11'));
    expect(planOf(twice)).toBeUndefined();
    expect(planOf(fn(UP.replace('[check mem]', '[proven mem]')))).toBeUndefined();
    // A pointer updated by something other than a constant step is not a walk.
    expect(planOf(fn(UP.replace('r1 = add.64 r1, 1', 'r1 = add.64 r1, r4')))).toBeUndefined();
  });
});
