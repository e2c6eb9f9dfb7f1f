import { intValue, value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../report.js';
import { loadInput } from '../../compiler/load.js';
import { analyze } from '../../compiler/verify/absint.js';
import { formatReport } from '../../compiler/verify/report.js';
import { checkStructure } from '../../compiler/verify/structural.js';
import { defaultHelpers, readInput } from './common.js';

export const verifyCommand: Command = {
  spec: {
    name: 'verify',
    usage: 'femtojit verify PROG [--entry NAME] [--report] [--mem-size N]',
    summary:
      'Load a program and run the verifier without running it. Prints every problem found, each\n' +
      'with the instruction index, its disassembly and the rule it breaks. With --report, prints\n' +
      'the verdict on every memory access (proven, checked at run time, rejected), the region and\n' +
      'offset range it was found to touch and why, then which loops need a budget check.',
    options: [
      { name: 'entry', value: 'NAME', help: 'ELF only: function symbol or program section' },
      { name: 'report', help: 'print the per-access report' },
      { name: 'mem-size', value: 'N', help: "the mem input's size in bytes (default: unknown; a .data file's '-- mem' size)" },
    ],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 accepted, 2 refused, 64 usage',
  },
  async run(p, io) {
    const path = p.args[0];
    const helpers = defaultHelpers();
    const input = loadInput(readInput(io, path), path, { entry: value(p, 'entry'), helpers: helpers.names() });
    const { program } = input;
    const structural = checkStructure(program, { helpers: helpers.ids() });
    const refuse = (problems: { message: string; rule: string }[]): number => {
      for (const d of problems) io.err(`${path}: ${d.message} [${d.rule}]\n`);
      io.err(`${path}: refused: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
      return EXIT.refused;
    };
    if (structural.length > 0) return refuse(structural);
    const memSize = intValue(p, 'mem-size') ?? input.test?.mem?.length;
    const { facts, diagnostics } = analyze(program, { regions: [], memSize, helpers: helpers.ids() });
    if (p.flags.has('report')) io.out(formatReport(program, facts, diagnostics));
    if (diagnostics.length > 0) return refuse(diagnostics);
    const fns = Math.max(program.functions.length, 1);
    io.out(`${path}: ok: ${program.insns.length} instruction slots, ${fns} function${fns === 1 ? '' : 's'}, ${program.data.length} data section${program.data.length === 1 ? '' : 's'}\n`);
    return EXIT.ok;
  },
};
