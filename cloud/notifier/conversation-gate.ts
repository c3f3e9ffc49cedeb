/**
 * At most a few deliveries per conversation at a time: the others wait their turn in order (held by the notifier,
 * counted in its total), so one flooded conversation cannot take every delivery slot of the node.
 */

/** Lets at most `cap` runs of one key proceed at once; the next ones wait, first come first served. */
export class ConversationGate {
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();
  /** The most runs that ever proceeded at once for one key (operators and tests read it). */
  highWater = 0;

  constructor(readonly cap: number) {}

  /** Runs fn when fewer than `cap` runs of this key are under way and every earlier waiter of the key has started. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const queue = this.waiting.get(key);
    if (!queue && (this.running.get(key) ?? 0) < this.cap) return this.start(key, fn);
    return new Promise<T>((resolve, reject) => {
      const next = () => this.start(key, fn).then(resolve, reject);
      if (queue) queue.push(next);
      else this.waiting.set(key, [next]);
    });
  }

  /** Runs under way (admitted, not waiting), all keys together. */
  get underWay(): number {
    let n = 0;
    for (const count of this.running.values()) n += count;
    return n;
  }

  /** Runs waiting for their turn, all keys together. */
  get held(): number {
    let n = 0;
    for (const queue of this.waiting.values()) n += queue.length;
    return n;
  }

  private start<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const now = (this.running.get(key) ?? 0) + 1;
    this.running.set(key, now);
    this.highWater = Math.max(this.highWater, now);
    let result: Promise<T>;
    try {
      result = fn();
    } catch (err) {
      result = Promise.reject(err);
    }
    return result.finally(() => this.finish(key));
  }

  /** Ends one run of a key and starts its oldest waiter, if any. */
  private finish(key: string): void {
    const left = (this.running.get(key) ?? 1) - 1;
    if (left > 0) this.running.set(key, left);
    else this.running.delete(key);
    const queue = this.waiting.get(key);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.waiting.delete(key);
    next?.();
  }
}
