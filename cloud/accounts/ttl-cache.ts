/** A small in-process cache whose entries expire after a fixed time (hot lookups: tokens, agent names, notification routes). */

/** Entries expire ttlMs after they were set; the cache is cleared when it grows past maxEntries. */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  /** The value, if present and fresh. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores a value. */
  set(key: K, value: V): void {
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { value, until: Date.now() + this.ttlMs });
  }

  /** The cached value, or load()'s (cached when it is not undefined). */
  async getOrLoad(key: K, load: () => Promise<V>): Promise<V> {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    const value = await load();
    if (value !== undefined) this.set(key, value);
    return value;
  }

  /** Forgets every key. */
  clear(): void {
    this.entries.clear();
  }

  /** Forgets one key. */
  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Forgets every key for which the predicate holds. */
  deleteWhere(predicate: (key: K) => boolean): void {
    for (const key of this.entries.keys()) if (predicate(key)) this.entries.delete(key);
  }
}
