/** Paces messages per conversation (Slack allows about one per second per channel): sends to one conversation wait their turn. */

/** Serializes and spaces out work per key. */
export class Pacer {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly lastAt = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  /** Runs fn when this key's previous run has finished and intervalMs has passed since it started. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(async () => {
      const wait = (this.lastAt.get(key) ?? 0) + this.intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastAt.set(key, Date.now());
      return fn();
    });
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) {
        this.tails.delete(key);
        if (this.lastAt.size > 10_000) this.lastAt.clear();
      }
    });
    return result;
  }
}
