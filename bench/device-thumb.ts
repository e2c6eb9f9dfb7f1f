// `thumb`: femtojit's Thumb-2 back end on the device runtime (runtime/cortex-m/fc), the engine
// ENGINES calls `thumb`. Each program is compiled as the engine compiles it (compileThumb with the
// verifier's facts for the board, computed once as at load and timed apart) and run twice in one board session; the figure is the exact
// instruction count between entering and leaving the generated code (runThumbBatch's `insns`): the
// runtime's per-run set-up (zeroing the 4 KiB stack, filling the region table) is not in it, as
// the native count has no set-up either.
import { compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import type { Program } from '../compiler/program.js';
import { FIRMWARE_HELPERS, runThumbBatch, toRunResult, type ThumbJob, type ThumbRun } from '../runtime/thumb-engine.js';
import { missingBoardTools, runTwiceOnBoard, type DeviceBenchEngine, type DeviceOutcome } from './device.js';
import { BENCH_BUDGET } from './engines.js';
import { medianMs } from './measure.js';

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));


/** The answer of one board run, or why there is none (fault, refused image, overwritten canary). */
function answerOf(run: ThumbRun, program: Program, input: Uint8Array): bigint {
  const r = toRunResult(run, program, input, BENCH_BUDGET);
  if (!r.ok) throw new Error(`${r.fault.kind} fault on the board: ${r.fault.message}`);
  return r.r0;
}

/**
 * `sized`: the facts are for the run's context length, as the `thumb` engine compiles by default
 * (the image then runs only with that length); otherwise for any length (one image for all).
 */
function thumbBenchEngine(name: string, sized: boolean): DeviceBenchEngine {
  return {
    name,
    description: sized
      ? 'femtojit Thumb-2 (runtime/engine.ts `thumb`, its default): compileThumb with the verifier\'s facts for the run\'s context length (an image the device runtime runs only with that length), run by the fc device runtime; instructions of the generated code per run'
      : 'femtojit Thumb-2 with the verifier\'s facts for any context length (`prepareThumb(..., { specialize: false })`, `femtojit compile --target thumb` without --mem-size): one image for every length',
    family: 'ebpf',
    unavailable: async () => missingBoardTools(),
    async measureAll(jobs, ctx) {
      const out: (DeviceOutcome | undefined)[] = jobs.map(() => undefined);
      const runs: { at: number; program: Program; jitMs: number; analysisMs: number; codeBytes: number; job: ThumbJob }[] = [];
      for (const [at, j] of jobs.entries()) {
        const program = j.ebpf;
        if (program === undefined) {
          out[at] = { ok: false, reason: j.ebpfFailure ?? 'no BPF build' };
          continue;
        }
        try {
          // As for the Wasm JIT: the facts come from verifying the program once; the compile uses them.
          const sizes = sized ? { memSize: j.input.length } : {};
          const facts = thumbFacts(program, FIRMWARE_HELPERS, sizes);
          const t0 = performance.now();
          const c = compileThumb(program, facts);
          const first = performance.now() - t0;
          const jitMs = ctx.timing.compileRepeats <= 1 ? first : await medianMs(ctx.timing.compileRepeats, () => compileThumb(program, facts));
          const analysisMs = await medianMs(ctx.timing.compileRepeats, () => thumbFacts(program, FIRMWARE_HELPERS, sizes));
          runs.push({ at, program, jitMs, analysisMs, codeBytes: c.code.length, job: { image: c.image, mem: j.input, budget: BENCH_BUDGET } });
        } catch (e) {
          out[at] = { ok: false, reason: `compileThumb: ${message(e)}` };
        }
      }
      // Every image twice, in one board session: the second run must repeat the first exactly.
      const prepared = runs.map((r) => ({ ...r, extra: { jitMs: r.jitMs, analysisMs: r.analysisMs, codeBytes: r.codeBytes } }));
      return runTwiceOnBoard(prepared, runThumbBatch, (run, r) => answerOf(run, r.program, jobs[r.at].input), out);
    },
  };
}

export const THUMB = thumbBenchEngine('thumb', true);
export const THUMB_GENERIC = thumbBenchEngine('thumb-generic', false);
