/** The Redis side of job transitions committed in MySQL: queue, leases, done signals, and their status events. */
import type { Logger } from 'pino';
import { jobStatusEvent, type EventLog, type JobStatusEvent } from './events';
import type { RedisState, TransitionOps } from '../queue/redis-state';
import type { NewJob } from '../store/jobs';

/** Job ids grouped by their agent. */
export function idsByAgent(jobs: { id: string; agentId: number }[]): Map<number, string[]> {
  const byAgent = new Map<number, string[]>();
  for (const job of jobs) byAgent.set(job.agentId, [...(byAgent.get(job.agentId) ?? []), job.id]);
  return byAgent;
}

/** Announces transitions: each is sent with its events in one write, shared with concurrent requests. */
export class Transitions {
  constructor(
    private readonly queue: RedisState,
    private readonly events: EventLog,
    private readonly log: Logger,
  ) {}

  /** Sends the Redis side of transitions and their events together. */
  async apply(ops: TransitionOps, events: JobStatusEvent[]): Promise<void> {
    await Promise.all([...this.queue.transitionCommands(ops), ...this.events.jobStatusCommands(events)]);
    this.events.announce(events);
  }

  /** After new jobs are stored: queue the queuing ones in Redis and append their events, in one round trip. */
  async announceNew(jobs: (NewJob & { result: null })[], now: Date): Promise<void> {
    const byAgent = idsByAgent(jobs.filter((j) => j.status === 'queuing'));
    const events = jobs.map((j) => jobStatusEvent(j, now));
    try {
      await Promise.all([
        ...[...byAgent].flatMap(([agentId, jobIds]) => this.queue.transitionCommands({ enqueue: { agentId, jobIds } })),
        ...this.events.jobStatusCommands(events),
      ]);
      this.events.announce(events);
    } catch (err) {
      // Stored in MySQL: the reconciler puts them in Redis later, so they are not lost.
      this.log.warn({ jobIds: jobs.map((j) => j.id), err }, 'jobs stored but not queued in Redis; the reconciler will queue them');
    }
  }

  /**
   * Queues again in Redis the jobs of a take that was not confirmed, once MySQL has them queued again (JobRepo's
   * `onReturned`): nobody received them.
   */
  requeueReturned(jobs: { id: string; agentId: number }[]): void {
    for (const [agentId, ids] of idsByAgent(jobs)) {
      this.queue
        .requeue(agentId, ids)
        .catch((err) => this.log.warn({ err, ids }, 'could not queue returned jobs in Redis; the reconciler will'));
    }
    this.log.info({ jobIds: jobs.map((j) => j.id) }, 'jobs of a take that was not confirmed are queued again');
  }
}
