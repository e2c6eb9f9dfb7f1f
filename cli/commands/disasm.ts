import { value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../report.js';
import { disasmProgram } from '../../compiler/disasm.js';
import { loadInput } from '../../compiler/load.js';
import type { Program } from '../../compiler/program.js';
import { defaultHelpers, readInput } from './common.js';

/** The listing: function labels, indexed instructions, data relocations as comments. */
export function listing(program: Program): string[] {
  const starts = new Map(program.functions.map((f) => [f.start, f.name]));
  const relocs = new Map(program.relocs.map((r) => [r.slot, r]));
  const out: string[] = [];
  for (const d of program.data) {
    out.push(`; ${d.name}: ${d.bytes.length} bytes, ${d.writable ? 'writable' : 'read-only'}`);
  }
  for (const line of disasmProgram(program.insns, { indices: true })) {
    const index = Number(line.slice(0, line.indexOf(':')));
    const fn = starts.get(index);
    if (fn !== undefined) out.push(`${fn}:${index === program.entry ? ' ; entry' : ''}`);
    const r = relocs.get(index);
    out.push(r ? `${line} ; = &${program.data[r.section]?.name ?? '?'}+${r.addend}` : line);
  }
  return out;
}

export const disasmCommand: Command = {
  spec: {
    name: 'disasm',
    usage: 'femtojit disasm PROG [--entry NAME]',
    summary: 'Print the program in the conformance asm dialect, one indexed instruction per line.',
    options: [{ name: 'entry', value: 'NAME', help: 'ELF only: function symbol or program section' }],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 printed, 2 the input could not be loaded, 64 usage',
  },
  async run(p, io) {
    const path = p.args[0];
    const { program } = loadInput(readInput(io, path), path, { entry: value(p, 'entry'), helpers: defaultHelpers().names() });
    io.out(listing(program).join('\n') + '\n');
    return EXIT.ok;
  },
};
