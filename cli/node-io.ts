// The real process: files, stdout/stderr and stdin for the CLI.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Io } from './command.js';

export const nodeIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readFile: (path) => new Uint8Array(readFileSync(path)),
  writeFile: (path, data) => writeFileSync(path, data),
  readStdin: () => new Uint8Array(readFileSync(0)),
};

/** Exit once stdout has drained, so piped output is never cut short. */
export function exitWith(code: number): void {
  process.stdout.write('', () => process.exit(code));
}
