// Timing for engines that run inside this process (the interpreter, the Wasm engines, the wasm32
// ceiling): the protocol of the native driver, so the numbers compare. First untimed batches for
// `warmupMs` of CPU time and until the time per run stops dropping: V8 needs tens of milliseconds
// to re-optimise an interpreter loop that meets opcodes it has not seen (a new program runs ~20x
// slower until then). Then the batch size doubles until one batch lasts the minimum sample time,
// then `samples` timed batches; the figure is the median.

export interface TimingOptions {
  minSampleMs: number;
  samples: number;
  warmupMs: number;
  /** Compile times (femtojit's compilers) are the median of this many compiles of the same program. */
  compileRepeats: number;
}

export interface Timing {
  nsPerRun: number;
  iterations: number;
  /** Time per run of each sample, in ns. */
  samplesNs: number[];
}

/** Runs `iterations` runs; may be async for engines whose runs are. */
export type Batch = (iterations: number) => void | Promise<void>;

const MAX_ITERATIONS = 2 ** 40;

async function timeBatch(batch: Batch, iterations: number): Promise<number> {
  const start = process.hrtime.bigint();
  const pending = batch(iterations);
  if (pending !== undefined) await pending;
  return Number(process.hrtime.bigint() - start);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function geomean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return Math.exp(xs.reduce((sum, x) => sum + Math.log(x), 0) / xs.length);
}

/** Median wall time of `n` calls of `f`, in ms (f may be async). */
export async function medianMs(n: number, f: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < Math.max(1, n); i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** CPU time of this process (every thread, so V8's background compiler counts), in ns. */
function cpuNs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) * 1e3;
}

export async function measure(batch: Batch, opts: TimingOptions): Promise<Timing> {
  const minNs = opts.minSampleMs * 1e6;
  const warmupNs = opts.warmupMs * 1e6;
  // Warm-up is counted in CPU time, not wall time: on a loaded machine the wall clock runs ahead of
  // the work V8 profiles and compiles, and an interpreter still ~20x slow would be timed. It then
  // goes on while the time per run still drops by more than 10% from one batch to the next (V8
  // tiering up), within a wall-clock cap.
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  const capNs = 10 * warmupNs;
  let previous = Infinity;
  for (let n = 1; ; ) {
    const t = await timeBatch(batch, n);
    const perRun = t / n;
    const settled = perRun >= 0.9 * previous;
    if ((cpuNs(cpu0) >= warmupNs && settled) || Number(process.hrtime.bigint() - wall0) >= capNs) break;
    previous = perRun;
    // Batches stay short against the warm-up (a slow program must not spend it all in one batch).
    if (t < warmupNs / 8) n = Math.min(n * 2, 1024);
  }
  let iterations = 1;
  while ((await timeBatch(batch, iterations)) < minNs && iterations < MAX_ITERATIONS) iterations *= 2;
  const samplesNs: number[] = [];
  for (let s = 0; s < opts.samples; s++) samplesNs.push((await timeBatch(batch, iterations)) / iterations);
  return { nsPerRun: median(samplesNs), iterations, samplesNs };
}
