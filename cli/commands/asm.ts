import { UsageError, value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../report.js';
import { encode } from '../../compiler/decode.js';
import { asText, detectFormat, loadInput } from '../../compiler/load.js';
import { LoadError } from '../../compiler/program.js';
import { readInput } from './common.js';

export const asmCommand: Command = {
  spec: {
    name: 'asm',
    usage: 'femtojit asm IN -o OUT',
    summary: "Assemble an asm file (or the '-- asm' section of a .data file) into raw instruction bytes.",
    options: [{ name: 'output', short: 'o', value: 'OUT', help: 'file to write the instruction bytes to' }],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 written, 2 assembly error (with its line), 64 usage',
  },
  async run(p, io) {
    const out = value(p, 'output');
    if (out === undefined) throw new UsageError("'asm' needs -o OUT (the output is binary)");
    const path = p.args[0];
    const bytes = readInput(io, path);
    const format = detectFormat(bytes);
    if (format !== 'asm' && format !== 'data' || asText(bytes) === null) {
      throw new LoadError(`${path}: not assembly text (looks like ${format})`);
    }
    const { program } = loadInput(bytes, path);
    io.writeFile(out, encode(program.insns));
    return EXIT.ok;
  },
};
