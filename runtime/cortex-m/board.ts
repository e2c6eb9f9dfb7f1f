// Runs a firmware ELF on QEMU's mps2-an386 (Cortex-M4) with ARM semihosting: the firmware's
// console is this process's view of QEMU stdout, its exit code comes from SYS_EXIT_EXTENDED,
// its command line from SYS_GET_CMDLINE, and host files are opened relative to `cwd`.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BoardError, CPU, ICOUNT_SHIFT, MACHINE } from './config.js';

export { hasArmGcc } from './build.js';
export { BOARD_FAULT_EXIT, COUNTER_MISCONFIGURED_EXIT, ICOUNT_SHIFT } from './config.js';

export interface BoardRunOptions {
  /**
   * Command-line arguments, seen by the firmware after argv[0] (the ELF's name) through
   * SYS_GET_CMDLINE. The command line is joined with spaces, so an argument may not contain one.
   */
  args?: string[];
  /** Wall-clock limit; QEMU is killed when it passes. Default 10 s. */
  timeoutMs?: number;
  /** Directory semihosting SYS_OPEN paths are relative to. Default: the current directory. */
  cwd?: string;
  /** Console bytes kept; output beyond this is dropped (a runaway printer cannot exhaust memory). */
  maxOutputBytes?: number;
}

export interface BoardRunResult {
  /** SYS_EXIT_EXTENDED code (0..255 as the host sees it); -1 when QEMU was killed. */
  exitCode: number;
  /** Everything the firmware wrote through semihosting, and nothing else. */
  stdout: string;
  /** QEMU's own diagnostics (known harmless warnings removed). */
  stderr: string;
  timedOut: boolean;
}

export class BoardRunError extends BoardError {
  override name = 'BoardRunError';
}

const QEMU = 'qemu-system-arm';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_OUTPUT = 16 << 20;

// The board's on-chip LAN9118 is always created; with networking off QEMU says so on every run.
const QEMU_NOISE = [/^qemu-system-arm: warning: nic lan9118\.\d+ has no peer$/];

let qemuAvailable: boolean | undefined;

/** True when qemu-system-arm can be run (scripts/setup.sh installs it). */
export function hasQemu(): boolean {
  qemuAvailable ??= spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
  return qemuAvailable;
}

/** QEMU option values are comma-separated; a literal comma is written twice. */
function optionValue(s: string): string {
  return s.replace(/,/g, ',,');
}

function checkArg(arg: string, index: number): void {
  if (arg === '' || /[\s\0]/.test(arg)) {
    throw new BoardRunError(
      `board argument ${index} (${JSON.stringify(arg)}) is empty or contains whitespace: ` +
        'the semihosting command line is split on spaces',
    );
  }
}

/** The QEMU command line for a firmware run (exported for diagnostics and the README). */
export function qemuArgs(elf: string, args: string[] = []): string[] {
  const argv0 = path.basename(elf).replace(/\.elf$/, '');
  const semihosting = ['enable=on', 'target=native', 'chardev=semihost', ...[argv0, ...args].map((a) => `arg=${optionValue(a)}`)];
  return [
    '-M', MACHINE,
    '-cpu', CPU,
    // No default devices, no display, no monitor, no network: stdout carries only the
    // semihosting console, routed there through a chardev of its own.
    '-nodefaults',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'none',
    '-net', 'none',
    '-chardev', 'stdio,id=semihost,signal=off',
    '-semihosting-config', semihosting.join(','),
    // sleep=off: an idle CPU jumps to the next timer deadline instead of following wall time,
    // so virtual time depends on nothing but the instructions executed.
    '-icount', `shift=${ICOUNT_SHIFT},sleep=off`,
    '-kernel', path.resolve(elf),
  ];
}

/** Runs a firmware to completion (or to the timeout) and reports how it ended. */
export async function runOnBoard(elf: string, opts: BoardRunOptions = {}): Promise<BoardRunResult> {
  const args = opts.args ?? [];
  args.forEach((a, i) => checkArg(a, i));
  if (!existsSync(elf)) throw new BoardRunError(`firmware not found: ${elf}`);
  const cwd = opts.cwd ?? process.cwd();
  if (!existsSync(cwd)) throw new BoardRunError(`board working directory not found: ${cwd}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;

  return await new Promise<BoardRunResult>((resolve, reject) => {
    const child = spawn(QEMU, qemuArgs(elf, args), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;

    child.stdout.on('data', (chunk: Buffer) => {
      if (outBytes < maxOutput) out.push(chunk.subarray(0, maxOutput - outBytes));
      outBytes += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errBytes < maxOutput) err.push(chunk.subarray(0, maxOutput - errBytes));
      errBytes += chunk.length;
    });

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BoardRunError(`${QEMU} cannot be started (${e.message}); scripts/setup.sh installs it`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err)
        .toString('utf8')
        .split('\n')
        .filter((line) => !QEMU_NOISE.some((re) => re.test(line)))
        .join('\n');
      resolve({
        exitCode: timedOut || code === null ? -1 : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
        timedOut,
      });
    });
  });
}
