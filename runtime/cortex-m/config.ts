import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Facts shared by the firmware build and the QEMU harness. The C side sees the same numbers
// (board/board.h, board/counter.h); the counter verifies ICOUNT_SHIFT at run time.

/** Any problem setting up, building for or running the emulated board (never a firmware's own result). */
export class BoardError extends Error {
  override name = 'BoardError';
}

/** QEMU machine and CPU of the emulated board. */
export const MACHINE = 'mps2-an386';
export const CPU = 'cortex-m4';

/**
 * `-icount shift=ICOUNT_SHIFT`: each instruction advances virtual time by 2^8 ns = 6.4 ticks of
 * the 25 MHz TIMER0, enough for the tick count to round to the exact instruction count.
 */
export const ICOUNT_SHIFT = 8;

/** Exit status of a firmware that took a CPU fault (BOARD_FAULT_EXIT in board.h). */
export const BOARD_FAULT_EXIT = 0xfa;

/** Exit status when the instruction counter finds the wrong -icount setting (counter.h). */
export const COUNTER_MISCONFIGURED_EXIT = 0xfb;

/**
 * Directory of the board support C sources (startup, semihosting, counter, linker script).
 * Searched upwards from this module because bundles (dist/) run it from another directory.
 */
export function boardDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    for (const candidate of [path.join(dir, 'board'), path.join(dir, 'runtime', 'cortex-m', 'board')]) {
      if (existsSync(path.join(candidate, 'startup.c'))) return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new BoardError(`board support sources (runtime/cortex-m/board) not found above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}
