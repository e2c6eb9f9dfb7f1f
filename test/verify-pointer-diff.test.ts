// Region attribution of pointer differences: a difference of pointers into one region is a plain
// scalar (an offset), but a difference of pointers into two regions may be an address distance, so
// adding it to a pointer into one region can land in the other: the sum must not claim a region.
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../compiler/asm.js';
import { analyze, type AnalysisResult } from '../compiler/verify/absint.js';
import { conformanceHelpers } from '../runtime/helpers.js';

const run = (text: string, memSize?: number): AnalysisResult =>
  analyze(assembleProgram(text, 'test.asm'), { regions: [], helpers: conformanceHelpers().ids(), memSize });

describe('pointer differences', () => {
  it('r10 - r1 + r1 points into no known region (it is the stack pointer at run time)', () => {
    const r = run(['mov %r3, %r10', 'sub %r3, %r1', 'add %r3, %r1', 'ldxdw %r0, [%r3-8]', 'exit'].join('\n'), 64);
    const f = r.facts.access.get(3);
    expect(f?.verdict).toBe('check');
    expect(f?.region).toBeUndefined();
    expect(r.diagnostics).toEqual([]);
  });

  it('the same holds with the operands swapped, through a move, a 32-bit copy and a join', () => {
    const swapped = run(['mov %r3, %r1', 'sub %r3, %r10', 'mov %r4, %r3', 'add %r4, %r10', 'ldxb %r0, [%r4+0]', 'exit'].join('\n'), 64);
    expect(swapped.facts.access.get(4)?.region).toBeUndefined();
    const scaled = run(['mov %r3, %r10', 'sub %r3, %r1', 'mov32 %r4, %r3', 'add %r4, 0', 'add %r4, %r1', 'ldxb %r0, [%r4+0]', 'exit'].join('\n'), 64);
    expect(scaled.facts.access.get(5)?.region).toBeUndefined();
    // One path adds a plain offset, the other the distance between the two regions.
    const joined = run([
      'mov %r3, 4', 'jeq %r2, 0, +2', 'mov %r3, %r10', 'sub %r3, %r1',
      'add %r3, %r1', 'ldxb %r0, [%r3+0]', 'exit',
    ].join('\n'), 64);
    expect(joined.facts.access.get(5)?.verdict).toBe('check');
    expect(joined.facts.access.get(5)?.region).toBeUndefined();
  });

  it('a difference within one region stays an offset: adding it back keeps the region and proves', () => {
    const r = run(['mov %r3, %r1', 'add %r3, 8', 'sub %r3, %r1', 'mov %r4, %r1', 'add %r4, %r3', 'ldxw %r0, [%r4+0]', 'exit'].join('\n'), 64);
    expect(r.facts.access.get(5)).toMatchObject({ verdict: 'proven', region: 'mem', offset: { min: 8, max: 8 } });
    const stack = run(['mov %r3, %r10', 'add %r3, -16', 'mov %r4, %r10', 'sub %r4, %r3', 'mov %r5, %r10', 'sub %r5, %r4', 'stdw [%r5+0], 1', 'ldxdw %r0, [%r5+0]', 'exit'].join('\n'));
    expect(stack.facts.access.get(6)).toMatchObject({ verdict: 'proven', region: 'stack', offset: { min: -16, max: -16 } });
  });
});
