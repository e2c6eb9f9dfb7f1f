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

