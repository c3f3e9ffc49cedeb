/** Jobs that end without a report: leases run out, agents gone offline, delayed jobs that waited for them in vain. */
import { formatDuration } from '../../config/duration';
import { jobStatusEvent } from './events';
import type { AgentService } from '../agents/agent-service';
import type { RedisState } from '../queue/redis-state';
import type { JobRepo } from '../store/jobs';
import { idsByAgent, type Transitions } from './transitions';

/** The reason of a delayed job that waited in vain for its offline agent. */
export function waitOverReason(delayedWaitMs: number): string {
  return `agent offline for the ${formatDuration(delayedWaitMs)} of delayed_wait after the job was due`;
}

/** Expires jobs; each expiry is a conditional update in MySQL, so any number of nodes may run it at once. */
export class Expiry {
  constructor(
    private readonly deps: { jobs: JobRepo; agents: AgentService; queue: RedisState; transitions: Transitions; delayedWaitMs: number },
  ) {}

  /** Expires jobs whose lease ran out (claimed from Redis or found in MySQL); returns how many expired. */
  async expireOverdue(jobIds: string[]): Promise<number> {
    let count = 0;
    for (const id of jobIds) {
      const now = new Date();
      const job = await this.deps.jobs.expireLeased(id, now, 'no report from the agent within the lease');
      if (!job) continue;
      count++;
      await this.deps.transitions.apply({ done: [id] }, [jobStatusEvent(job, now)]);
    }
    return count;
  }

  /** Expires queued jobs whose agent is offline (found by the reconciler, or at the end of a delayed job's wait). */
  async expireQueued(jobIds: string[], reason: string): Promise<number> {
    const now = new Date();
    const jobs = await this.deps.jobs.expireQueued(jobIds, reason, now);
    for (const [agentId, ids] of idsByAgent(jobs)) await this.deps.queue.remove(agentId, ids);
    await this.deps.transitions.apply(
      { done: jobs.map((j) => j.id) },
      jobs.map((j) => jobStatusEvent(j, now)),
    );
    return jobs.length;
  }

  /**
   * Delayed jobs whose wait for their offline agent has ended: expired with a reason saying so when the agent is still
   * offline; when it is back they stay queued, as any job. Returns how many expired.
   */
  async endDelayedWaits(limit = 500): Promise<number> {
    const over = await this.deps.jobs.listWaitOver(new Date(), limit);
    if (over.length === 0) return 0;
    const online = new Map<number, boolean>();
    for (const agentId of new Set(over.map((j) => j.agentId))) online.set(agentId, await this.deps.agents.isOnline(agentId));
    await this.deps.jobs.endWait(over.filter((j) => online.get(j.agentId)).map((j) => j.id));
    return this.expireQueued(
      over.filter((j) => !online.get(j.agentId)).map((j) => j.id),
      waitOverReason(this.deps.delayedWaitMs),
    );
  }
}
