// Small hand-written programs run as Thumb images on the emulated board and compared with the
// reference interpreter: the harness the back end's lowering tests share.
import { expect } from 'vitest';
import { compileIr, compileThumb, thumbFacts } from '../../backends/thumb/aot.js';
import { assembleProgram } from '../../compiler/asm.js';
import { buildIr } from '../../compiler/ir/build.js';
import type { Program } from '../../compiler/program.js';
import { hasArmGcc, hasQemu } from '../../runtime/cortex-m/board.js';
import type { RunResult } from '../../runtime/errors.js';
import { interpret } from '../../runtime/interp.js';
import { runThumbBatch, thumbFirmware, toRunResult, type ThumbJob } from '../../runtime/thumb-engine.js';

export interface BoardCase {
  name: string;
  asm: string;
  /** The context bytes (none: no context). */
  mem?: number[];
}

/** `n` bytes from `f(i)`, each taken modulo 256. */
export const bytes = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i) & 0xff);

/** How a run ended, in one comparable line: r0, or the fault's kind, pc, address and size. */
export function ending(r: RunResult): string {
  if (r.ok) return `ok r0=0x${r.r0.toString(16)}`;
  const where = r.fault.addr !== undefined ? ` addr=0x${r.fault.addr.toString(16)} size=${r.fault.size}` : '';
  return `${r.fault.kind} at ${r.fault.pc}${where}`;
}

/** For beforeAll: the board's tools are installed (set-up's job) and the firmware is built. */
export async function boardReady(): Promise<void> {
  expect(hasQemu(), 'qemu-system-arm is needed (scripts/setup.sh installs it)').toBe(true);
  expect(hasArmGcc(), 'arm-none-eabi-gcc is needed (scripts/setup.sh installs it)').toBe(true);
  await thumbFirmware();
}

/**
 * Runs every case on the board, compiled with the verifier's facts ('facts', for `helpers`) or
 * from the builder's IR without facts ('raw'), and returns each ending beside the interpreter's
 * (`name: ending` lines). Every run must leave the canary beside the context intact.
 */
export async function endingsOnBoard(cases: readonly BoardCase[], mode: 'facts' | 'raw', helpers?: ReadonlySet<number>): Promise<{ got: string[]; want: string[] }> {
  const progs: Program[] = cases.map((c) => assembleProgram(`${c.asm}\n`, c.name));
  const mems = cases.map((c) => (c.mem !== undefined ? Uint8Array.from(c.mem) : undefined));
  const images = progs.map((p) => (mode === 'raw' ? compileIr(buildIr(p)).image : compileThumb(p, thumbFacts(p, helpers)).image));
  const budget = 1_000_000;
  const jobs: ThumbJob[] = images.map((image, i) => ({ image, mem: mems[i]?.slice(), budget }));
  const runs = await runThumbBatch(jobs);
  const got: string[] = [];
  const want: string[] = [];
  runs.forEach((run, i) => {
    expect({ name: cases[i].name, canary: run.canaryOk }).toEqual({ name: cases[i].name, canary: true });
    got.push(`${cases[i].name}: ${ending(toRunResult(run, progs[i], mems[i], budget))}`);
    want.push(`${cases[i].name}: ${ending(interpret(progs[i], { mem: mems[i]?.slice(), budget }))}`);
  });
  return { got, want };
}
