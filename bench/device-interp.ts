// `c-interp`: the device runtime's eBPF interpreter, in C, on the board (runtime/device-engine.ts,
// ENGINES' `fc-interp`). Each program is packed into a bytecode container as the engine packs it
// and run twice in one board session; the figure is the board's exact instruction count of the
// interpreter's loop (runDeviceBatch's `insns`: like the Thumb count, without the runtime's per-run
// set-up), to compare with the Thumb code's count for the same program and input.
import type { Program } from '../compiler/program.js';
import { deviceRunResult, packBytecode, runDeviceBatch, type DeviceJob as BoardJob, type DeviceRun } from '../runtime/device-engine.js';
import { missingBoardTools, runTwiceOnBoard, type DeviceBenchEngine, type DeviceOutcome } from './device.js';
import { BENCH_BUDGET } from './engines.js';

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function answerOf(run: DeviceRun, program: Program, input: Uint8Array): bigint {
  const r = deviceRunResult(run, program, input, BENCH_BUDGET);
  if (!r.ok) throw new Error(`${r.fault.kind} fault on the board: ${r.fault.message}`);
  return BigInt.asUintN(64, r.r0);
}

export const DEVICE_INTERP: DeviceBenchEngine = {
  name: 'c-interp',
  description: 'the device runtime\'s eBPF interpreter in C (runtime/device-engine.ts, ENGINES\' `fc-interp`) on the emulated Cortex-M4; instructions of the interpreter loop per run',
  family: 'ebpf',
  unavailable: async () => missingBoardTools(),
  async measureAll(jobs) {
    const out: (DeviceOutcome | undefined)[] = jobs.map(() => undefined);
    const runs: { at: number; program: Program; job: BoardJob }[] = [];
    for (const [at, j] of jobs.entries()) {
      const program = j.ebpf;
      if (program === undefined) {
        out[at] = { ok: false, reason: j.ebpfFailure ?? 'no BPF build' };
        continue;
      }
      try {
        const container = packBytecode(program);
        runs.push({ at, program, job: { container, mem: j.input, budget: BENCH_BUDGET } });
      } catch (e) {
        out[at] = { ok: false, reason: `packBytecode: ${message(e)}` };
      }
    }
    return runTwiceOnBoard(runs, runDeviceBatch, (run, r) => answerOf(run, r.program, jobs[r.at].input), out);
  },
};
