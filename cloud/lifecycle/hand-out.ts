/** Handing queued jobs to their agent (each at most once), and returning those a poll never received. */
import type { Logger } from 'pino';
import { jobStatusEvent } from './events';
import type { RedisState } from '../queue/redis-state';
import type { AgentRow } from '../store/agents';
import type { JobRepo, JobRow } from '../store/jobs';
import type { Transitions } from './transitions';

/** A job handed to an agent. */
export interface TakenJob {
  id: string;
  message: string;
}

/** What the long polls need of the hand-out (the dispatcher takes this, not the whole job service). */
export interface JobHandOut {
  /** True while the node's Redis connection is up (its status says so; no round trip). */
  redisReady(): boolean;
  take(agent: AgentRow, max: number): Promise<TakenJob[]>;
  returnUnreceived(agent: AgentRow, jobIds: string[]): Promise<void>;
}

/** Takes from an agent's queue; MySQL's `queuing → sent` decides who gets a job. */
export class HandOut implements JobHandOut {
  constructor(private readonly deps: { jobs: JobRepo; queue: RedisState; transitions: Transitions; leaseMs: number; log: Logger }) {}

  redisReady(): boolean {
    return this.deps.queue.ready();
  }

  /**
   * Hands up to `max` queued jobs to their agent, each at most once; the lease starts now. MySQL decides the hand-out:
   * once `queuing → sent` committed, the jobs are answered even if Redis then fails (their leases still hold in
   * MySQL, and their events are appended when Redis answers), so a job is never stranded as sent but not received.
   */
  async take(agent: AgentRow, max: number): Promise<TakenJob[]> {
    const taken: JobRow[] = [];
    while (taken.length < max) {
      const want = max - taken.length;
      let ids: string[];
      try {
        ids = await this.deps.queue.pop(agent.id, want);
      } catch (err) {
        if (taken.length) break; // answer what was taken already
        throw err;
      }
      if (ids.length === 0) break;
      const now = new Date();
      let sent: JobRow[];
      try {
        sent = await this.deps.jobs.markSent(ids, agent.id, this.deps.leaseMs);
      } catch (err) {
        await this.deps.queue
          .requeue(agent.id, ids)
          .catch((e) => this.deps.log.error({ err: e, ids }, 'could not requeue jobs; the reconciler will'));
        if (taken.length) break;
        throw err;
      }
      if (sent.length > 0) {
        taken.push(...sent);
        await this.deps.transitions
          .apply(
            { setLeases: sent.map((j) => ({ id: j.id, at: j.leaseUntil!.getTime() })) },
            sent.map((j) => jobStatusEvent(j, now)),
          )
          .catch((err) =>
            this.deps.log.warn(
              { err, jobIds: sent.map((j) => j.id) },
              'jobs handed out while Redis failed; their leases hold in MySQL and their events follow when Redis answers',
            ),
          );
      }
      if (ids.length < want) break;
    }
    return taken.map((j) => ({ id: j.id, message: j.message }));
  }

  /** Returns jobs taken for a poll whose connection closed before the answer could be written: they were never received. */
  async returnUnreceived(agent: AgentRow, jobIds: string[]): Promise<void> {
    const now = new Date();
    const back = await this.deps.jobs.unsend(jobIds, agent.id, now);
    if (back.length === 0) return;
    await this.deps.queue.requeue(agent.id, back);
    const reason = 'returned to the queue: the agent disconnected before receiving it';
    await this.deps.transitions.apply(
      { clearLeases: back },
      back.map((id) =>
        jobStatusEvent(
          { id, userId: agent.userId, agentId: agent.id, agentName: agent.name, status: 'queuing', result: null, reason },
          now,
        ),
      ),
    );
  }
}
