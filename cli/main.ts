// The `femtojit` command: dispatch to a subcommand, and turn every failure into a message and an
// exit status. Bad input never produces a stack trace; only a femtojit bug does (exit 70).
import { helpText, parseArgs, UsageError } from './args.js';
import type { Command, Io } from './command.js';
import { asmCommand } from './commands/asm.js';
import { compileCommand } from './commands/compile.js';
import { conformanceCommand } from './commands/conformance.js';
import { disasmCommand } from './commands/disasm.js';
import { pluginCommand } from './commands/plugin.js';
import { runCommand } from './commands/run.js';
import { verifyCommand } from './commands/verify.js';
import { describeError, EXIT, isUserError } from './report.js';

export const COMMANDS: readonly Command[] = [runCommand, compileCommand, conformanceCommand, verifyCommand, disasmCommand, asmCommand, pluginCommand];

export const VERSION = '0.1.0';

function overview(): string {
  const lines = [
    'femtojit: verify eBPF programs, run them, compile them to sandboxed WebAssembly',
    '',
    'usage: femtojit COMMAND [OPTIONS] ARGS   (femtojit COMMAND --help for details)',
    '',
    'commands:',
  ];
  for (const c of COMMANDS) lines.push(`  ${c.spec.name.padEnd(12)} ${c.spec.summary.split('\n')[0]}`);
  lines.push('', 'exit status: 0 success, 1 conformance failures, 2 program refused, 3 runtime fault, 64 usage, 70 internal error');
  return lines.join('\n') + '\n';
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    io.out(`femtojit ${VERSION}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    io.err(`femtojit: unknown command '${name}'\n\n${overview()}`);
    return EXIT.usage;
  }
  try {
    const parsed = parseArgs(command.spec, rest);
    if (parsed.help) {
      io.out(helpText(command.spec));
      return EXIT.ok;
    }
    return await command.run(parsed, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`femtojit ${name}: ${e.message}\nusage: ${command.spec.usage}\n`);
      return EXIT.usage;
    }
    io.err(`femtojit ${name}: ${describeError(e)}\n`);
    return isUserError(e) ? EXIT.refused : EXIT.internal;
  }
}
