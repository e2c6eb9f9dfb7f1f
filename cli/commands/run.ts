import { intValue, UsageError, value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, hex64, parseHexBytes } from '../report.js';
import { loadVerified } from '../../runtime/container.js';
import { defaultHelpers, ENGINE_OPTION, pickEngine, readInput } from './common.js';

export const runCommand: Command = {
  spec: {
    name: 'run',
    usage: 'femtojit run PROG [--engine E] [--mem FILE | --mem-hex HEX] [--entry NAME] [--budget N]',
    summary:
      'Load, verify and run an eBPF program; print r0 in hex as the last line of stdout.\n' +
      'PROG is an ELF object (clang -target bpf), a conformance .data file, an asm file or raw\n' +
      'instruction bytes, told apart by content. r1 points to a writable copy of the memory,\n' +
      "r2 holds its length, r10 is the top of the stack. A .data file's '-- mem' is the default memory.",
    options: [
      ENGINE_OPTION,
      { name: 'mem', value: 'FILE', help: 'memory (context) contents from a file' },
      { name: 'mem-hex', value: 'HEX', help: "memory contents as hex bytes, e.g. '01 02 ff'" },
      { name: 'entry', value: 'NAME', help: 'ELF only: function symbol or program section to start at' },
      { name: 'budget', value: 'N', help: 'instruction budget for the run (default 100000000; 0 = unlimited)' },
    ],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 ran (r0 printed), 2 refused (load or verification error), 3 runtime fault, 64 usage',
  },
  async run(p, io) {
    const path = p.args[0];
    const memFile = value(p, 'mem');
    const memHex = value(p, 'mem-hex');
    if (memFile !== undefined && memHex !== undefined) throw new UsageError('give either --mem or --mem-hex, not both');
    const budgetArg = intValue(p, 'budget');
    const engine = pickEngine(p);
    const helpers = defaultHelpers();
    const input = loadVerified(readInput(io, path), path, { entry: value(p, 'entry'), helpers });
    const mem = memFile !== undefined ? readInput(io, memFile) : memHex !== undefined ? parseHexBytes(memHex, '--mem-hex') : input.test?.mem;
    const runnable = await engine.prepare(input.program, helpers, input.facts);
    const result = await runnable.run({ mem, budget: budgetArg === 0 ? Infinity : budgetArg });
    if (!result.ok) {
      io.err(`femtojit: ${result.fault.kind}: ${result.fault.message}\n`);
      return EXIT.fault;
    }
    io.out(`${hex64(result.r0)}\n`);
    return EXIT.ok;
  },
};
