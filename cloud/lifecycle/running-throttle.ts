/** Running reports renew the lease every time, but append an event at most once per interval per job. */

/** Remembers when each job last had a running event on this node. */
export class RunningEventThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs = 1000) {}

  /** True when a running event of this job may be appended now (and records it). */
  admit(jobId: string, now = Date.now()): boolean {
    const previous = this.last.get(jobId);
    if (previous !== undefined && now - previous < this.intervalMs) return false;
    if (this.last.size >= 10_000) this.prune(now);
    this.last.set(jobId, now);
    return true;
  }

  /** Forgets a job (it finished). */
  forget(jobId: string): void {
    this.last.delete(jobId);
  }

  private prune(now: number): void {
    for (const [id, at] of this.last) if (now - at >= this.intervalMs) this.last.delete(id);
  }
}
