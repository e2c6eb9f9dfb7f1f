// Timing for engines that run inside this process (the interpreter, future host JITs, the wasm32
// ceiling): the same protocol as the native driver, so the numbers compare. First untimed batches for
// `warmupMs`: V8 needs tens of milliseconds to re-optimise an interpreter loop that meets opcodes it
// has not seen (a new program runs ~20x slower until then). Then the batch size doubles until one
// batch lasts the minimum sample time, then `samples` timed batches; the figure is the median.

export interface TimingOptions {
  minSampleMs: number;
  samples: number;
  warmupMs: number;
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

export async function measure(batch: Batch, opts: TimingOptions): Promise<Timing> {
  const minNs = opts.minSampleMs * 1e6;
  const warmupNs = opts.warmupMs * 1e6;
  let warm = 0;
  for (let n = 1; warm < warmupNs; n = Math.min(n * 2, 1024)) warm += await timeBatch(batch, n);
  let iterations = 1;
  while ((await timeBatch(batch, iterations)) < minNs && iterations < MAX_ITERATIONS) iterations *= 2;
  const samplesNs: number[] = [];
  for (let s = 0; s < opts.samples; s++) samplesNs.push((await timeBatch(batch, iterations)) / iterations);
  return { nsPerRun: median(samplesNs), iterations, samplesNs };
}
