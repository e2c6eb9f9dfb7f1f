// The bpf_conformance suite through femtojit's own runner, on the reference interpreter: every
// positive test passes, and every negative file ends as its authors intend.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTestText, type TestOutcome } from '../cli/conformance.js';
import { ENGINES } from '../runtime/engine.js';
import { conformanceHelpers } from '../runtime/helpers.js';
import { CONFORMANCE_NEGATIVE, CONFORMANCE_TESTS, dataFiles } from './support/paths.js';

const interp = ENGINES.get('interp')!;

async function outcome(path: string): Promise<TestOutcome> {
  return runTestText(basename(path, '.data'), readFileSync(path, 'utf8'), interp, conformanceHelpers());
}

describe('conformance suite on the interpreter', () => {
  const files = dataFiles(CONFORMANCE_TESTS);
  it('has all 313 tests', () => expect(files).toHaveLength(313));
  it.each(files.map((f) => [basename(f), f]))('%s passes', async (_name, f) => {
    const o = await outcome(f);
    expect(o.why).toBe('');
    expect(o.pass).toBe(true);
  });
});

describe('negative conformance files', () => {
  const files = dataFiles(CONFORMANCE_NEGATIVE);
  const expectsError = (f: string): boolean => /^-- error/m.test(readFileSync(f, 'utf8'));

  it.each(files.filter(expectsError).map((f) => [basename(f), f]))('%s is refused', async (_name, f) => {
    const o = await outcome(f);
    expect(o.pass).toBe(true);
    expect(o.why).not.toBe('');
    expect(o.why).not.toMatch(/internal error/);
  });

  // The malformed tests: each must FAIL, with a reason that names its actual problem.
  const malformed: Record<string, RegExp> = {
    'empty.data': /no program/,
    'empty_instructions.data': /no program/,
    'incorrect_return_value_high_bits.data': /r0 = 0x8877665544332211, expected 0x8977665544332211/,
    'invalid_imm32_dec_range.data': /line \d+: .*2147483648.*range|line \d+: .*range.*2147483648/,
    'invalid_imm32_hex_range.data': /line \d+: .*0x100000000.*range|line \d+: .*range.*0x100000000/,
    'invalid_label.data': /line \d+: .*NOT_A_LABEL/,
    'invalid_mnemonic.data': /line \d+: .*ldxq/,
    'invalid_offset.data': /line \d+: .*%r1/,
    'invalid_offset_range.data': /line \d+: .*0x10000/,
    'invalid_operand_count.data': /line \d+: .*operand/,
  };
  it('lists every malformed file', () => {
    expect(files.filter((f) => !expectsError(f)).map((f) => basename(f)).sort()).toEqual(Object.keys(malformed).sort());
  });
  it.each(Object.entries(malformed))('%s fails with its problem named', async (name, why) => {
    const o = await outcome(`${CONFORMANCE_NEGATIVE}/${name}`);
    expect(o.pass).toBe(false);
    expect(o.why).toMatch(why);
    expect(o.why).not.toMatch(/internal error/);
  });
});
