import type { Command } from '../command.js';
import { describeError, EXIT, hex64, parseHexBytes } from '../report.js';
import { decode } from '../../compiler/decode.js';
import { LoadError, rawProgram } from '../../compiler/program.js';
import { verifyProgram } from '../../compiler/verify/absint.js';
import { parseArgs, value } from '../args.js';
import { defaultHelpers, ENGINE_OPTION, pickEngine } from './common.js';

export const pluginCommand: Command = {
  spec: {
    name: 'plugin',
    usage: 'femtojit plugin [MEMHEX] [OPTIONS]',
    summary:
      'Speak the bpf_conformance plugin protocol: the program as hex bytes on stdin, the memory as hex\n' +
      'bytes in the first argument, plugin options (e.g. "--engine wasm") in the second. Prints r0 in\n' +
      'hex; on a refusal or fault prints the reason and exits non-zero. The `femtojit-plugin` binary is\n' +
      'this command, for `bpf_conformance_runner --plugin_path femtojit-plugin`.',
    options: [ENGINE_OPTION],
    minArgs: 0,
    maxArgs: 2,
    notes: 'exit status: 0 ran, 2 refused, 3 runtime fault',
  },
  async run(p, io) {
    // Upstream passes options as one string in argv[2]; parse it like our own flags.
    const extra = p.args[1] ? parseArgs(pluginCommand.spec, p.args[1].split(/\s+/).filter(Boolean)) : undefined;
    const engineArgs = extra && value(extra, 'engine') !== undefined ? extra : p;
    try {
      const mem = parseHexBytes(p.args[0] ?? '', 'memory argument');
      const code = parseHexBytes(new TextDecoder().decode(io.readStdin()), 'program on stdin');
      if (code.length === 0) throw new LoadError('no program on stdin');
      if (code.length % 8 !== 0) throw new LoadError(`program length ${code.length} is not a multiple of 8 bytes`);
      const helpers = defaultHelpers();
      const program = rawProgram(decode(code), 'stdin');
      const facts = verifyProgram(program, { regions: [], helpers: helpers.ids() });
      const runnable = await pickEngine(engineArgs).prepare(program, helpers, facts);
      const result = await runnable.run({ mem });
      if (!result.ok) {
        io.out(`${result.fault.message}\n`);
        return EXIT.fault;
      }
      io.out(`${hex64(result.r0)}\n`);
      return EXIT.ok;
    } catch (e) {
      io.out(`${describeError(e)}\n`);
      return EXIT.refused;
    }
  },
};
