// The Thumb engine: programs compiled to Thumb-2 container images (backends/thumb) and run by the
// device runtime (runtime/cortex-m/fc) on the emulated Cortex-M4 (QEMU mps2-an386). One firmware
// (runtime/cortex-m/firmware/run-image.c) is built once and runs images from host files.
//
// QEMU boots in tens of milliseconds, so runs are batched: every run requested while a batch is
// being assembled (the same turn of the event loop, e.g. a Promise.all over many tests) goes into
// one firmware invocation with a manifest. `runThumbBatch` offers the same explicitly, with the
// board's instruction count of each run.
//
// Each run's context length is known here, so by default the engine compiles one image per length
// with the verifier's facts for exactly that length (far more accesses proven, loops bounded):
// the image records the length and the device runtime refuses it any other (IMAGE.md), and images
// are cached per length so that repeated runs do not recompile.
//
// RunResult.steps is the budget the run consumed (the IR charges whole blocks at loop heads, as
// compiler/ir/eval.ts reports it), not the interpreter's instruction count; the board's exact
// instruction count of the generated code is ThumbRun.insns.
import { Batcher } from './batcher.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { disasmInsn } from '../compiler/disasm.js';
import type { Program } from '../compiler/program.js';
import { buildFirmware } from './cortex-m/build.js';
import { runOnBoard } from './cortex-m/board.js';
import { BoardError } from './cortex-m/config.js';
import { cortexDir, DEVICE_HELPER_IDS, fcIncludes, fcSources } from './cortex-m/fc/sources.js';
import type { Engine, EngineRunOptions, Runnable } from './engine.js';
import { FAULT_CODES, FAULT_TITLE, type Fault, type FaultKind, type RunResult } from './errors.js';
import type { HelperRegistry } from './helpers.js';
import type { ProgramFacts } from '../compiler/verify/facts.js';
import { DEFAULT_BUDGET } from './interp.js';
import { containerLayout, MAX_CALL_DEPTH, STACK_FRAME } from './layout.js';
import { RegionTable } from './regions.js';

export interface ThumbJob {
  image: Uint8Array;
  mem?: Uint8Array;
  /** Budget units (default as the interpreter's); Infinity = no limit. */
  budget?: number;
}

/** One run as the firmware reports it. */
export interface ThumbRun {
  /** 0 = success, a FAULT_CODES value, or an fc_status_t load refusal (16 and up). */
  status: number;
  r0: bigint;
  pc: number;
  addr: bigint;
  size: number;
  write: boolean;
  hasAddr: boolean;
  steps: number;
  /** Instructions executed in the generated code (and the entry trampoline). */
  insns: number;
  /** The canaries around the container's memory were intact afterwards. */
  canaryOk: boolean;
  refused: boolean;
}

export interface ThumbPrepareOptions {
  /**
   * Compile per context length with facts for that length (default true). Off: one image for any
   * length, from the caller's facts (or facts computed for any length).
   */
  specialize?: boolean;
}

/** Helper ids the test firmware registers: the device runtime's standard set (fc_helpers.c). */
export const FIRMWARE_HELPERS: ReadonlySet<number> = DEVICE_HELPER_IDS;

/** The firmware exited abnormally or printed something unexpected. */
export class ThumbBoardError extends BoardError {
  override name = 'ThumbBoardError';
}

/** fc_status_t load refusals, for messages. */
export const LOAD_STATUS: Record<number, string> = {
  16: 'shorter than the header', 17: 'bad magic', 18: 'unsupported version', 19: 'size mismatch',
  20: 'checksum mismatch', 21: 'malformed tables', 22: 'layout mismatch', 23: 'over a runtime limit',
  24: 'misaligned', 25: 'arena too small', 26: 'not loaded', 27: 'refused instruction',
  28: 'the image was compiled for another context length',
};

/** fc_status_t values from 16 up: the device refused the image or the run; no code ran. */
const FIRST_REFUSAL = 16;
/** Images kept per runnable, one per context length: a bound for callers that vary it a lot. */
const SIZED_IMAGES = 16;

const BATCH_LIMIT = 400;
const KIND_OF_CODE = new Map<number, FaultKind>(Object.entries(FAULT_CODES).map(([k, v]) => [v, k as FaultKind]));

let firmware: Promise<string> | undefined;

/** Builds (once per process; the build itself is content-cached) the image-running firmware. */
export function thumbFirmware(): Promise<string> {
  const cortex = cortexDir();
  firmware ??= buildFirmware({
    name: 'run-image',
    sources: [path.join(cortex, 'firmware', 'run-image.c'), ...fcSources()],
    includes: fcIncludes(),
    defines: { FC_TRACE: '1' },
    outDir: path.resolve(cortex, '..', '..', 'build', 'firmware'),
  });
  return firmware;
}

const LINE = /^R (\d+) status=(\d+)(?: r0=0x([0-9a-f]{8})0x([0-9a-f]{8}) pc=(\d+) addr=0x([0-9a-f]{8})0x([0-9a-f]{8}) size=(\d+) write=(\d) hasaddr=(\d) steps=(\d+) insns=(\d+) canary=(ok|BAD)| refused)$/;

/** One `R` line of run-image.c's report (the same firmware serves the device interpreter engine). */
export function parseLine(line: string): { index: number; run: ThumbRun } | undefined {
  const m = LINE.exec(line.trim());
  if (m === null) return undefined;
  const status = Number(m[2]);
  if (m[3] === undefined) {
    return { index: Number(m[1]), run: { status, r0: 0n, pc: 0, addr: 0n, size: 0, write: false, hasAddr: false, steps: 0, insns: 0, canaryOk: true, refused: true } };
  }
  return {
    index: Number(m[1]),
    run: {
      status,
      r0: BigInt(`0x${m[3]}${m[4]}`),
      pc: Number(m[5]),
      addr: BigInt(`0x${m[6]}${m[7]}`),
      size: Number(m[8]),
      write: m[9] === '1',
      hasAddr: m[10] === '1',
      steps: Number(m[11]),
      insns: Number(m[12]),
      canaryOk: m[13] === 'ok',
      refused: false,
    },
  };
}

const budgetArg = (b: number | undefined): string => {
  const v = b ?? DEFAULT_BUDGET;
  if (!(v >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${v})`);
  return v === Infinity ? 'inf' : String(Math.floor(v));
};

async function runChunk(jobs: readonly ThumbJob[], timeoutMs: number): Promise<ThumbRun[]> {
  const elf = await thumbFirmware();
  const dir = await mkdtemp(path.join(tmpdir(), 'femtojit-thumb-'));
  try {
    const lines: string[] = [];
    await Promise.all(
      jobs.map(async (j, i) => {
        await writeFile(path.join(dir, `${i}.img`), j.image);
        if (j.mem !== undefined) await writeFile(path.join(dir, `${i}.mem`), j.mem);
      }),
    );
    jobs.forEach((j, i) => lines.push(`${i}.img ${j.mem !== undefined ? `${i}.mem` : '-'} ${budgetArg(j.budget)}`));
    await writeFile(path.join(dir, 'manifest'), lines.join('\n') + '\n');
    const r = await runOnBoard(elf, { args: ['batch', 'manifest'], cwd: dir, timeoutMs });
    const runs = new Array<ThumbRun | undefined>(jobs.length);
    for (const line of r.stdout.split('\n')) {
      const p = parseLine(line);
      if (p !== undefined && p.index < jobs.length) runs[p.index] = p.run;
    }
    const missing = runs.findIndex((x) => x === undefined);
    if (missing >= 0 || (r.exitCode !== 0 && r.exitCode !== 0xe0)) {
      const why = r.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${r.exitCode}`;
      throw new ThumbBoardError(
        `the board run of ${jobs.length} images failed (${why}${missing >= 0 ? `, no result for run ${missing}` : ''}):\n${r.stdout.slice(-2000)}${r.stderr.slice(-1000)}`,
      );
    }
    return runs as ThumbRun[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs images on the board, as few firmware invocations as possible. */
export async function runThumbBatch(jobs: readonly ThumbJob[], opts: { timeoutMs?: number } = {}): Promise<ThumbRun[]> {
  const out: ThumbRun[] = [];
  for (let i = 0; i < jobs.length; i += BATCH_LIMIT) {
    const chunk = jobs.slice(i, i + BATCH_LIMIT);
    out.push(...(await runChunk(chunk, opts.timeoutMs ?? 30_000 + 200 * chunk.length)));
  }
  return out;
}

const batcher = new Batcher<ThumbJob, ThumbRun>((jobs) => runThumbBatch(jobs));

function faultDetail(kind: FaultKind, run: ThumbRun, program: Program, mem: Uint8Array | undefined, budget: number): string {
  switch (kind) {
    case 'out-of-bounds':
    case 'permission': {
      if (!run.hasAddr) return 'this path always faults (proven by the verifier)';
      const table = new RegionTable(containerLayout(program, mem).regions);
      return table.describe(run.addr, run.size, run.write);
    }
    case 'budget':
      return `executed ${budget} instructions without exiting`;
    case 'call-depth':
      return `a call nested ${MAX_CALL_DEPTH + 1} frames deep; the stack holds ${MAX_CALL_DEPTH} frames of ${STACK_FRAME} bytes`;
    case 'unknown-helper':
      return `no helper with this id is registered on the device (it provides ${[...FIRMWARE_HELPERS].join(', ')})`;
    case 'helper':
      return 'the helper refused its arguments';
    case 'invalid':
      return 'the device could not execute the instruction';
  }
}

/** Turns a board run into the RunResult every engine returns. */
export function toRunResult(run: ThumbRun, program: Program, mem: Uint8Array | undefined, budget: number): RunResult {
  if (run.refused) {
    throw new ThumbBoardError(`the device runtime refused the image: ${LOAD_STATUS[run.status] ?? `status ${run.status}`}`);
  }
  if (!run.canaryOk) throw new ThumbBoardError('the run changed memory outside the container (canary overwritten): a back-end bug');
  if (run.status >= FIRST_REFUSAL) {
    throw new ThumbBoardError(`the device runtime refused to run the image on a ${mem?.length ?? 0}-byte context: ${LOAD_STATUS[run.status] ?? `status ${run.status}`}`);
  }
  if (run.status === 0) return { ok: true, r0: run.r0, steps: run.steps };
  const kind = KIND_OF_CODE.get(run.status);
  if (kind === undefined) throw new ThumbBoardError(`the board reported status ${run.status}, which is no fault kind`);
  const text = run.pc < program.insns.length ? disasmInsn(program.insns, run.pc) : 'unknown instruction';
  const fault: Fault = {
    kind,
    pc: run.pc,
    message: `${FAULT_TITLE[kind]} at instruction ${run.pc} (${text}): ${faultDetail(kind, run, program, mem, budget)}`,
  };
  if (run.hasAddr) {
    fault.addr = run.addr;
    fault.size = run.size;
  }
  return { ok: false, fault, steps: run.steps };
}

/** A program for the board: its image for any context length, and images per length. */
export class ThumbRunnable implements Runnable {
  private generic: Uint8Array | undefined;
  private readonly sized = new Map<number, Uint8Array>();

  constructor(
    private readonly program: Program,
    private readonly helpers: ReadonlySet<number>,
    private readonly facts: ProgramFacts | undefined,
    readonly specialize: boolean,
  ) {}

  /** The image for any context length (from the caller's facts when given). */
  get image(): Uint8Array {
    this.generic ??= compileThumb(this.program, this.facts ?? thumbFacts(this.program, this.helpers)).image;
    return this.generic;
  }

  /** The image that runs only with a context of exactly `memLength` bytes (cached). */
  imageFor(memLength: number): Uint8Array {
    let image = this.sized.get(memLength);
    if (image === undefined) {
      image = compileThumb(this.program, thumbFacts(this.program, this.helpers, { memSize: memLength })).image;
      if (this.sized.size >= SIZED_IMAGES) this.sized.delete(this.sized.keys().next().value as number);
    }
    // Most recently used last: the eviction above drops the longest unused.
    this.sized.delete(memLength);
    this.sized.set(memLength, image);
    return image;
  }

  /** Context lengths with a compiled image, least recently used first. */
  get cachedLengths(): number[] {
    return [...this.sized.keys()];
  }

  async run(opts: EngineRunOptions = {}): Promise<RunResult> {
    if (opts.regions !== undefined && opts.regions.length > 0) {
      // Host regions would shift the context's address, which the image fixes at compile time.
      throw new ThumbBoardError(`the Thumb engine maps no host regions (asked for ${opts.regions.map((r) => r.name).join(', ')})`);
    }
    const budget = opts.budget ?? DEFAULT_BUDGET;
    // No context runs as a context of length 0 (r2 = 0), on the device as here.
    const image = this.specialize ? this.imageFor(opts.mem?.length ?? 0) : this.image;
    const run = await batcher.submit({ image, mem: opts.mem, budget });
    return toRunResult(run, this.program, opts.mem, budget);
  }
}

/**
 * Compiles for the board: absint facts, the IR pipeline, the Thumb back end. `facts` (the load's,
 * for any context size) serve the image for any length; with `specialize` (the default) each run
 * gets the image for its context length instead.
 */
export function prepareThumb(program: Program, helpers: HelperRegistry, facts?: ProgramFacts, opts: ThumbPrepareOptions = {}): ThumbRunnable {
  const extra = [...helpers.ids()].filter((id) => !FIRMWARE_HELPERS.has(id));
  if (extra.length > 0) {
    throw new ThumbBoardError(`the board firmware provides helpers ${[...FIRMWARE_HELPERS].join(', ')} only; not ${extra.join(', ')}`);
  }
  const runnable = new ThumbRunnable(program, helpers.ids(), facts, opts.specialize ?? true);
  // Without specialisation the one image is compiled now, so that compile errors surface here.
  if (!runnable.specialize) void runnable.image;
  return runnable;
}

/** The `thumb` engine with other options (ENGINES has the default: specialised per length). */
export function thumbEngineWith(opts: ThumbPrepareOptions): Engine {
  return {
    name: 'thumb',
    description: `Thumb-2 image on the emulated Cortex-M4 (QEMU mps2-an386) with the fc device runtime${opts.specialize === false ? ', one image for any context length' : ', compiled per context length'}`,
    prepare: (program, helpers, facts) => prepareThumb(program, helpers, facts, opts),
  };
}

export const thumbEngine: Engine = thumbEngineWith({});
