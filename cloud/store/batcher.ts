/** Group commit in the application: concurrent calls of one kind run as one SQL statement (or a few), not one each. */

interface Pending<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (err: unknown) => void;
}

/** Options of a batcher. */
export interface BatcherOptions<I> {
  /** Most inputs in one batch. */
  maxItems?: number;
  /** Most total weight in one batch (e.g. bytes of a statement), with weight(input). */
  maxWeight?: number;
  weight?: (input: I) => number;
  /** True when an input cannot share a batch with those already in it (it waits for the next). */
  conflicts?: (input: I, batch: I[]) => boolean;
}

/**
 * Runs `run(inputs)` for the calls collected while the previous batch was running (or in the current tick: an idle
 * batcher starts at once, without waiting for a turn of the event loop),
 * one batch at a time; run returns one output per input, in order. A failed batch fails each of its calls.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private flushing = false;

  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions<I> = {},
  ) {}

  /** Adds a call; resolves with its output once its batch ran. */
  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        process.nextTick(() => void this.flush());
      }
    });
  }

  private take(): Pending<I, O>[] {
    const { maxItems = 500, maxWeight = Infinity, weight = () => 0, conflicts } = this.options;
    const batch: Pending<I, O>[] = [];
    const rest: Pending<I, O>[] = [];
    let total = 0;
    for (const item of this.pending) {
      const w = weight(item.input);
      const full = batch.length >= maxItems || (batch.length > 0 && total + w > maxWeight);
      if (
        full ||
        conflicts?.(
          item.input,
          batch.map((b) => b.input),
        )
      ) {
        rest.push(item);
      } else {
        batch.push(item);
        total += w;
      }
    }
    this.pending = rest;
    return batch;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.take();
      try {
        const outputs = await this.run(batch.map((b) => b.input));
        for (const [i, b] of batch.entries()) b.resolve(outputs[i]);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = false;
  }
}
