// Collects the runs requested in one turn of the event loop into one batch, so engines that pay a
// fixed cost per batch (a QEMU boot for the board engines) pay it once for many runs.
export class Batcher<J, R> {
  private pending: Array<{ job: J; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;

  constructor(private readonly runBatch: (jobs: J[]) => Promise<R[]>) {}

  submit(job: J): Promise<R> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    try {
      const runs = await this.runBatch(batch.map((b) => b.job));
      batch.forEach((b, i) => b.resolve(runs[i]));
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
}
