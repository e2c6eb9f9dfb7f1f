import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LoadError } from '../../compiler/program.js';
import type { Command } from '../command.js';
import { runTestText } from '../conformance.js';
import { EXIT } from '../report.js';
import { defaultHelpers, ENGINE_OPTION, pickEngine, readInput } from './common.js';

/** Files named on the command line, with directories expanded to their `.data` files, sorted. */
export function expandTestPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new LoadError(`${p}: no such file or directory`);
    }
    if (st.isDirectory()) {
      out.push(...readdirSync(p).filter((f) => f.endsWith('.data')).sort().map((f) => join(p, f)));
    } else {
      out.push(p);
    }
  }
  return out;
}

export const conformanceCommand: Command = {
  spec: {
    name: 'conformance',
    usage: 'femtojit conformance [--engine E] [--verbose] PATH...',
    summary:
      'Run bpf_conformance .data tests (files, or directories of them). Prints PASS/FAIL per test\n' +
      "and, last, 'N passed, M failed'. A test with '-- error' passes when femtojit refuses it.",
    options: [ENGINE_OPTION, { name: 'verbose', short: 'v', help: 'also say how each -- error test was refused' }],
    minArgs: 1,
    maxArgs: Infinity,
    notes: 'exit status: 0 all passed, 1 some failed, 2 a path could not be read, 64 usage',
  },
  async run(p, io) {
    const engine = pickEngine(p);
    const helpers = defaultHelpers();
    const files = expandTestPaths(p.args);
    let passed = 0;
    let failed = 0;
    for (const file of files) {
      const name = basename(file, '.data');
      const text = new TextDecoder().decode(readInput(io, file));
      const o = await runTestText(name, text, engine, helpers);
      if (o.pass) {
        passed++;
        io.out(p.flags.has('verbose') && o.why ? `PASS ${name} (refused: ${o.why})\n` : `PASS ${name}\n`);
      } else {
        failed++;
        io.out(`FAIL ${name}: ${o.why.replace(/\n/g, ' ')}\n`);
      }
    }
    io.out(`${passed} passed, ${failed} failed\n`);
    return failed === 0 ? EXIT.ok : EXIT.failed;
  },
};
