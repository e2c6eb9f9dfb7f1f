// The conformance runner: one bpf_conformance `.data` file -> PASS or FAIL with the reason.
// A test with `-- error` passes only when femtojit refuses it (load, verify or run fails); any
// other test passes only with a program, an expected result and an equal r0 (all 64 bits: the
// upstream runner compares 32, which lets wrong high bits through).
import { parseDataFile } from '../compiler/datafile.js';
import { programOfTest } from '../compiler/load.js';
import { verifyProgram } from '../compiler/verify/absint.js';
import type { Engine } from '../runtime/engine.js';
import type { HelperRegistry } from '../runtime/helpers.js';
import { describeError } from './report.js';

export interface TestOutcome {
  name: string;
  pass: boolean;
  /** Why it failed, or for an `-- error` test, how femtojit refused it. */
  why: string;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export async function runTestText(name: string, text: string, engine: Engine, helpers: HelperRegistry): Promise<TestOutcome> {
  let test;
  try {
    test = parseDataFile(text);
  } catch (e) {
    return { name, pass: false, why: `malformed test: ${describeError(e)}` };
  }
  let r0: bigint;
  try {
    const program = programOfTest(test, name);
    const facts = verifyProgram(program, {
      regions: program.data.map((d) => ({ name: d.name, size: d.bytes.length, writable: d.writable })),
      helpers: helpers.ids(),
    });
    const runnable = await engine.prepare(program, helpers, facts);
    const result = await runnable.run({ mem: test.mem });
    if (!result.ok) {
      if (test.expectError) return { name, pass: true, why: result.fault.message };
      return { name, pass: false, why: result.fault.message };
    }
    r0 = result.r0;
  } catch (e) {
    const why = describeError(e);
    return test.expectError ? { name, pass: true, why } : { name, pass: false, why };
  }
  if (test.expectError) return { name, pass: false, why: `expected an error, but the program ran and returned ${hex(r0)}` };
  if (test.result === undefined) return { name, pass: false, why: `no expected result ('-- result' section) in the test; r0 = ${hex(r0)}` };
  if (r0 !== test.result) return { name, pass: false, why: `r0 = ${hex(r0)}, expected ${hex(test.result)}` };
  return { name, pass: true, why: '' };
}
