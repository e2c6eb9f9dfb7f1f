import { value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../report.js';
import { loadInput } from '../../compiler/load.js';
import { checkStructure } from '../../compiler/verify/structural.js';
import { defaultHelpers, readInput } from './common.js';

export const verifyCommand: Command = {
  spec: {
    name: 'verify',
    usage: 'femtojit verify PROG [--entry NAME]',
    summary:
      'Load a program and run the verifier without running it. Prints every problem found, each\n' +
      'with the instruction index, its disassembly and the rule it breaks.',
    options: [{ name: 'entry', value: 'NAME', help: 'ELF only: function symbol or program section' }],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 accepted, 2 refused, 64 usage',
  },
  async run(p, io) {
    const path = p.args[0];
    const helpers = defaultHelpers();
    const { program } = loadInput(readInput(io, path), path, { entry: value(p, 'entry'), helpers: helpers.names() });
    const diagnostics = checkStructure(program, { helpers: helpers.ids() });
    for (const d of diagnostics) io.err(`${path}: ${d.message} [${d.rule}]\n`);
    if (diagnostics.length > 0) {
      io.err(`${path}: refused: ${diagnostics.length} problem${diagnostics.length === 1 ? '' : 's'}\n`);
      return EXIT.refused;
    }
    const fns = Math.max(program.functions.length, 1);
    io.out(`${path}: ok: ${program.insns.length} instruction slots, ${fns} function${fns === 1 ? '' : 's'}, ${program.data.length} data section${program.data.length === 1 ? '' : 's'}\n`);
    return EXIT.ok;
  },
};
