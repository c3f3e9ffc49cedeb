/** Exponential backoff with full jitter, for retrying a server that is down or failing. */

/** Backoff settings in milliseconds. */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

/** Counts consecutive failures and tells how long to wait before the next attempt. */
export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions = { minMs: 500, maxMs: 30_000 }) {}

  /** The delay before the next attempt after one more failure: random in [cap/2, cap], cap doubling up to maxMs. */
  next(): number {
    const cap = Math.min(this.options.maxMs, this.options.minMs * 2 ** this.failures);
    this.failures++;
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }

  /** Forgets the failures after a success. */
  reset(): void {
    this.failures = 0;
  }

  /** Consecutive failures so far. */
  get attempts(): number {
    return this.failures;
  }
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
