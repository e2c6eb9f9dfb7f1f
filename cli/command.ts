// What a femtojit command is: a spec (for parsing and --help) and a body returning the exit status.
import type { CommandSpec, ParsedArgs } from './args.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  readFile(path: string): Uint8Array;
  writeFile(path: string, data: Uint8Array | string): void;
  readStdin(): Uint8Array;
}

export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, io: Io): Promise<number>;
}
