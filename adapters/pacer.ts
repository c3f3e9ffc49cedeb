/**
 * Paces messages per conversation: sends to one conversation wait their turn, and keep within the platform's limits
 * (Slack: about one a second per channel; Teams: 7 a second, 8 in 2 s, 60 in 30 s, 1,800 an hour per conversation).
 */
import type { RateLimit } from './contract';

/** Serializes and spaces out work per key. */
export class Pacer {
  private readonly tails = new Map<string, Promise<void>>();
  /** Start times of the recent sends of each key, oldest first. */
  private readonly recent = new Map<string, number[]>();
  private readonly defaultLimits: RateLimit[];

  constructor(intervalMs: number) {
    this.defaultLimits = [{ count: 1, windowMs: intervalMs }];
  }

  /** How long a send must wait so that it stays within every limit. */
  static waitMs(starts: readonly number[], limits: readonly RateLimit[], now: number): number {
    let wait = 0;
    for (const limit of limits) {
      if (starts.length < limit.count) continue;
      wait = Math.max(wait, starts[starts.length - limit.count] + limit.windowMs - now);
    }
    return wait;
  }

  /** Runs fn when this key's previous run has finished and the limits (default: the pacing interval) allow another. */
  run<T>(key: string, fn: () => Promise<T>, limits: readonly RateLimit[] = this.defaultLimits): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(async () => {
      const starts = this.recent.get(key) ?? [];
      const wait = Pacer.waitMs(starts, limits, Date.now());
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const now = Date.now();
      const keepMs = Math.max(...limits.map((l) => l.windowMs));
      const keepCount = Math.max(...limits.map((l) => l.count));
      const kept = starts.filter((at) => at > now - keepMs).slice(-(keepCount - 1 || 1));
      kept.push(now);
      this.recent.set(key, kept);
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
        if (this.recent.size > 10_000) this.recent.clear();
      }
    });
    return result;
  }
}
