// What a device engine is (bench/device-engines.ts lists them): an engine that runs on the emulated
// Cortex-M4 and reports the board's exact instruction count of one run.
import type { Program } from '../compiler/program.js';
import { hasArmGcc } from '../runtime/cortex-m/build.js';
import { hasQemu } from '../runtime/cortex-m/board.js';
import type { Measurement } from './engines.js';
import type { TimingOptions } from './measure.js';
import type { BenchProgram } from './programs.js';

export interface DeviceJob {
  program: BenchProgram;
  input: Uint8Array;
  /** The input's file, relative to the context's workDir (semihosting reads it from there). */
  inputFile: string;
  /** The clang 14 -mcpu=v3 build, loaded and verified (eBPF engines), or why there is none. */
  ebpf?: Program;
  ebpfFailure?: string;
}

export type DeviceOutcome = { ok: true; measurement: Measurement } | { ok: false; reason: string };

export interface DeviceContext {
  workDir: string;
  /** compileRepeats: how often femtojit's compile is repeated for its time. */
  timing: TimingOptions;
}

export interface DeviceBenchEngine {
  name: string;
  description: string;
  /** `reference`: runs the C source; `ebpf`: runs the BPF object. */
  family: 'reference' | 'ebpf';
  /** Why this engine cannot run here (a missing tool, a missing runtime piece), or undefined. */
  unavailable(): Promise<string | undefined>;
  /** One outcome per job, in order; a failure of one job must not hide the others' results. */
  measureAll(jobs: readonly DeviceJob[], ctx: DeviceContext): Promise<DeviceOutcome[]>;
}

/** What every device engine needs: QEMU and the ARM cross compiler. */
export function missingBoardTools(): string | undefined {
  if (!hasQemu()) return 'qemu-system-arm: not installed (not found on PATH)';
  if (!hasArmGcc()) return 'arm-none-eabi-gcc: not installed (not found on PATH)';
  return undefined;
}


/** One prepared board job of a device engine: which bench job it answers, and its extra figures. */
export interface PreparedRun<Job> {
  at: number;
  job: Job;
  /** Figures known before the board runs (compile times, code size). */
  extra?: Partial<Measurement>;
}

/**
 * Runs every prepared job twice in one board session and fills `out[at]`: the second run must
 * repeat the first exactly (answer and instruction count), or the job fails with both figures.
 * `answer` turns a board run into r0, or throws with the fault it reports.
 */
export async function runTwiceOnBoard<Job, Run extends { insns: number; steps: number }, P extends PreparedRun<Job>>(
  runs: readonly P[],
  batch: (jobs: Job[]) => Promise<Run[]>,
  answer: (run: Run, prepared: P) => bigint,
  out: (DeviceOutcome | undefined)[],
): Promise<DeviceOutcome[]> {
  const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  const hex = (v: bigint): string => `0x${v.toString(16)}`;
  let board: Run[] = [];
  let boardError: string | undefined;
  try {
    board = await batch(runs.flatMap((r) => [r.job, r.job]));
  } catch (e) {
    boardError = message(e);
  }
  runs.forEach((r, i) => {
    if (boardError !== undefined) {
      out[r.at] = { ok: false, reason: boardError };
      return;
    }
    const [first, second] = [board[2 * i], board[2 * i + 1]];
    try {
      const checksum = answer(first, r);
      const again = answer(second, r);
      if (again !== checksum || second.insns !== first.insns) {
        throw new Error(`the second run gave ${hex(again)} in ${second.insns} instructions, the first ${hex(checksum)} in ${first.insns}`);
      }
      out[r.at] = { ok: true, measurement: { checksum, steps: first.steps, deviceInsns: first.insns, ...r.extra } };
    } catch (e) {
      out[r.at] = { ok: false, reason: message(e) };
    }
  });
  return out.map((o) => o ?? { ok: false, reason: 'not run' });
}
