/** Delayed jobs: stored with a due time, and released as jobs when due (each once, whichever node claims it). */
import type { Logger } from 'pino';
import { BadRequestError } from '../errors';
import { newJobId } from './job-id';
import { checkMessage } from './job-text';
import { matchingPattern } from '../approvals/patterns';
import type { AgentService } from '../agents/agent-service';
import type { CallbackGuard } from '../notifier/callback-guard';
import type { RedisState } from '../queue/redis-state';
import type { AgentRepo, AgentRow } from '../store/agents';
import type { Db } from '../store/db';
import type { DelayedJobRepo } from '../store/delayed';
import type { JobRepo, NewJob } from '../store/jobs';
import { waitOverReason } from './expiry';
import { checkCallback, type JobOrigin } from './push';
import type { Transitions } from './transitions';

/** Longest accepted delay of a delayed job. */
export const MAX_DELAY_MS = 366 * 86_400_000;

/** Settings and collaborators of delayed jobs. */
export interface DelayedJobsDeps {
  db: Db;
  delayed: DelayedJobRepo;
  jobs: JobRepo;
  agentRepo: AgentRepo;
  agents: AgentService;
  queue: RedisState;
  transitions: Transitions;
  callbackGuard: CallbackGuard;
  approvalTimeoutMs: number;
  /** A delayed job due while its agent is offline waits this long for the agent to poll again, then expires. */
  delayedWaitMs: number;
  log: Logger;
}

/** Stores delayed jobs and releases them when due. */
export class DelayedJobs {
  constructor(private readonly deps: DelayedJobsDeps) {}

  /** Stores a job to be queued after a delay; returns its id (the job keeps it). */
  async delay(agent: AgentRow, message: string, delayMs: number, from: JobOrigin): Promise<{ id: string; dueAt: Date }> {
    const text = checkMessage(message);
    await checkCallback(this.deps.callbackGuard, from);
    if (!Number.isFinite(delayMs) || delayMs <= 0 || delayMs > MAX_DELAY_MS) {
      throw new BadRequestError('The delay must be more than 0 and at most 366 days.', 'InvalidDuration');
    }
    const now = new Date();
    const dueAt = new Date(now.getTime() + delayMs);
    const id = newJobId();
    await this.deps.delayed.insert({
      id,
      userId: agent.userId,
      agentId: agent.id,
      message: text,
      source: from.source,
      origin: from.origin ?? null,
      callback: from.callback ?? null,
      dueAt,
      createdAt: now,
      requester: from.requester ?? null,
      pushedBy: from.pushedBy ?? null,
    });
    await this.deps.queue.scheduleDelayed([{ id, at: dueAt.getTime() }]).catch((err) => {
      this.deps.log.warn({ jobId: id, err }, 'delayed job stored but not scheduled in Redis; the reconciler will release it');
    });
    return { id, dueAt };
  }

  /**
   * Turns due delayed jobs into jobs (each exactly once, whichever node claims it); returns how many. The job is
   * queued even when its agent is offline, and waits for the agent until `delayed_wait` after its due time (offline
   * expiry spares it until then); one released later than that with its agent offline expires at once.
   */
  async release(ids: string[]): Promise<number> {
    let count = 0;
    for (const id of ids) {
      const now = new Date();
      const job = await this.deps.db.transaction(async (conn) => {
        const delayed = await this.deps.delayed.lockPending(conn, id);
        if (!delayed) return null;
        const agent = await this.deps.agentRepo.findById(delayed.agentId, conn);
        // The agent's patterns when the job is due decide whether it waits for approval.
        const gated = !!agent && matchingPattern(agent.approvalPatterns, delayed.message) !== null;
        const online = gated || (agent ? await this.deps.agents.isOnline(delayed.agentId) : false);
        const waitEnd = delayed.dueAt.getTime() + this.deps.delayedWaitMs;
        const waits = !!agent && !online && now.getTime() < waitEnd;
        const reason = online || waits ? null : agent ? waitOverReason(this.deps.delayedWaitMs) : 'agent removed';
        const released: NewJob = {
          id: delayed.id,
          userId: delayed.userId,
          agentId: delayed.agentId,
          agentName: agent?.name ?? '(removed)',
          message: delayed.message,
          source: delayed.source,
          origin: delayed.origin,
          callback: delayed.callback,
          status: gated ? 'awaiting_approval' : online || waits ? 'queuing' : 'expired',
          reason,
          createdAt: now,
          requester: delayed.requester,
          pushedBy: delayed.pushedBy,
          approvalUntil: gated ? new Date(now.getTime() + this.deps.approvalTimeoutMs) : null,
          // Queued, it waits for its agent until then even if the agent is offline, or goes offline before taking it.
          waitUntil: (online && !gated) || waits ? new Date(waitEnd) : null,
        };
        await this.deps.delayed.markReleased(conn, id, now);
        await this.deps.jobs.insert([released], conn);
        return released;
      });
      if (!job) continue;
      count++;
      await this.deps.transitions.announceNew([{ ...job, result: null }], now);
    }
    return count;
  }
}
