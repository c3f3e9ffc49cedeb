/** Waits for jobs to reach a terminal status (`GET /jobs/:id?wait=N`, `skadi job add --wait`), woken by pub/sub. */
import { isTerminal, type JobRow } from '../store/jobs';

/** How waiters read a job (the job service's get). */
export interface JobLookup {
  get(jobId: string, userId: number | null): Promise<JobRow>;
}

/** In-process waiters for job completion on this node. */
export class JobWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();
  /** How many waiters of each job have read it unfinished and wait to be woken. */
  private readonly asleep = new Map<string, number>();

  constructor(private readonly jobs: JobLookup) {}

  /** True while a waiter of the job on this node has read it unfinished and waits to be woken (for tests and checks). */
  isWaiting(jobId: string): boolean {
    return (this.asleep.get(jobId) ?? 0) > 0;
  }

  /** Wakes the waiters of a job (it reached a terminal status on some node). */
  notify(jobId: string): void {
    for (const wake of this.waiting.get(jobId) ?? []) wake();
  }

  /** The job once terminal, or as it is when waitMs has passed (or the caller went away). */
  async waitTerminal(jobId: string, userId: number | null, waitMs: number, abort?: AbortSignal): Promise<JobRow> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      let set = this.waiting.get(jobId);
      if (!set) this.waiting.set(jobId, (set = new Set()));
      set.add(wake);
      try {
        const job = await this.jobs.get(jobId, userId);
        const left = deadline - Date.now();
        if (isTerminal(job.status) || left <= 0 || abort?.aborted) return job;
        let timer: NodeJS.Timeout | undefined;
        const onAbort = () => wake();
        abort?.addEventListener('abort', onAbort, { once: true });
        // Re-read at least every 5 s as well, in case a completion was published while Redis was unreachable.
        this.asleep.set(jobId, (this.asleep.get(jobId) ?? 0) + 1);
        try {
          await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(left, 5000))))]);
        } finally {
          const n = (this.asleep.get(jobId) ?? 1) - 1;
          if (n > 0) this.asleep.set(jobId, n);
          else this.asleep.delete(jobId);
        }
        clearTimeout(timer);
        abort?.removeEventListener('abort', onAbort);
      } finally {
        set.delete(wake);
        if (set.size === 0) this.waiting.delete(jobId);
      }
    }
  }
}
