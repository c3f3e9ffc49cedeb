/** Compares Redis with MySQL (the source of truth) and repairs Redis: after data loss, a crash between two steps, or an outage. */
import type { Logger } from 'pino';
import { DEDUP_RETENTION_MS } from '../../adapters/contract';
import { jobStatusEvent, type EventLog } from './events';
import type { AgentService } from '../agents/agent-service';
import type { JobService } from './job-service';
import { idsByAgent } from './transitions';
import type { RedisState } from '../queue/redis-state';
import type { AgentRepo } from '../store/agents';
import type { DelayedJobRepo } from '../store/delayed';
import type { IdentityRepo } from '../store/identities';
import type { JobRepo } from '../store/jobs';

const PAGE = 1000;
/** Queued jobs younger than this are left alone (a push may be between its MySQL insert and its Redis push). */
const QUEUE_GRACE_MS = 5000;
/**
 * After Redis lost its data, the final events of jobs that ended this long before it was last seen intact are
 * appended again: they may have been in the lost stream, not yet delivered. Receivers may see them twice.
 */
const REPLAY_MARGIN_MS = 120_000;

/** What one reconciliation did. */
export interface ReconcileReport {
  rebuilt: boolean;
  requeued: number;
  expired: number;
  released: number;
  offline: number;
  /** Final events appended again after Redis lost its data. */
  replayed: number;
}

/** Settings and collaborators of the reconciler. */
export interface ReconcilerDeps {
  queue: RedisState;
  jobs: JobService;
  agents: AgentService;
  jobRepo: JobRepo;
  agentRepo: AgentRepo;
  delayedRepo: DelayedJobRepo;
  identityRepo: IdentityRepo;
  events: EventLog;
  offlineAfterMs: number;
  log: Logger;
}

/** Periodic repair of Redis from MySQL; safe on several nodes at once. */
export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private epochTimer: NodeJS.Timeout | null = null;
  private running = false;
  /** When this node last saw Redis's markers in place (null: not since it started). */
  private intactAt: number | null = null;

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Reconciles every intervalMs, and rebuilds as soon as Redis is seen to have lost its data (checked every checkMs). */
  start(intervalMs: number, checkMs = intervalMs): void {
    this.timer = setInterval(() => void this.runGuarded(), intervalMs);
    this.timer.unref();
    this.epochTimer = setInterval(() => void this.checkEpoch().catch(() => undefined), checkMs);
    this.epochTimer.unref();
  }

  /** Remembers when Redis was last seen with its markers, and rebuilds at once when they are gone. */
  private async checkEpoch(): Promise<void> {
    const checkedAt = Date.now();
    if (await this.deps.queue.hasEpoch()) this.intactAt = checkedAt;
    else await this.runGuarded();
  }

  /** Stops reconciling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.epochTimer) clearInterval(this.epochTimer);
    this.timer = null;
    this.epochTimer = null;
  }

  private async runGuarded(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.reconcileOnce();
    } catch (err) {
      this.deps.log.warn({ err }, 'reconciliation failed; the next one retries');
    } finally {
      this.running = false;
    }
  }

  /** One pass; rebuilds Redis entirely when its marker is gone (Redis lost its data). */
  async reconcileOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = { rebuilt: false, requeued: 0, expired: 0, released: 0, offline: 0, replayed: 0 };
    const checkedAt = Date.now();
    if (await this.deps.queue.hasEpoch()) this.intactAt = checkedAt;
    else {
      // Redis was intact when this node last looked: what ended shortly before may not have been delivered.
      const replaySince = this.intactAt === null ? null : new Date(this.intactAt - REPLAY_MARGIN_MS);
      const rebuilt = await this.rebuild(replaySince);
      report.rebuilt = rebuilt !== null;
      report.replayed = rebuilt?.replayed ?? 0;
      if (report.rebuilt) this.intactAt = Date.now();
    }
    const now = new Date();
    report.expired += await this.expireOverdueLeases(now);
    report.released += await this.releaseMissedDelayed(now);
    report.offline += await this.markSilentAgentsOffline();
    const queues = await this.repairQueues(new Date(now.getTime() - QUEUE_GRACE_MS));
    report.requeued += queues.requeued;
    report.expired += queues.expired;
    await this.deps.identityRepo.purgeProcessed(new Date(now.getTime() - DEDUP_RETENTION_MS));
    if (report.rebuilt || report.requeued || report.expired || report.released || report.offline || report.replayed) {
      this.deps.log.info(report, 'reconciled Redis with MySQL');
    }
    return report;
  }

  /**
   * Restores presence, leases, the delayed schedule and the queues from MySQL, and appends again the final
   * events of jobs that ended since `replaySince`; one node at a time. The markers are written last, so that
   * events kept in memory (which wait for them) are either covered by the replay or appended after it.
   */
  private async rebuild(replaySince: Date | null): Promise<{ replayed: number } | null> {
    if (!(await this.deps.queue.lockRebuild(60_000))) return null;
    try {
      const now = Date.now();
      // Agents online in MySQL get one full offline period to poll again before they are declared offline.
      const online = await this.deps.agentRepo.listOnline();
      await this.deps.queue.restorePresence(online.map((a) => ({ agentId: a.id, at: now })));
      for (let after = ''; ; ) {
        const leased = await this.deps.jobRepo.listLeased(after, PAGE);
        await this.deps.queue.setLeases(leased.map((j) => ({ id: j.id, at: j.leaseUntil.getTime() })));
        if (leased.length < PAGE) break;
        after = leased[leased.length - 1].id;
      }
      for (let after = ''; ; ) {
        const pending = await this.deps.delayedRepo.listPending(after, null, PAGE);
        await this.deps.queue.scheduleDelayed(pending.map((d) => ({ id: d.id, at: d.dueAt.getTime() })));
        if (pending.length < PAGE) break;
        after = pending[pending.length - 1].id;
      }
      const queues = await this.repairQueues(new Date(now));
      const replayed = replaySince ? await this.replayFinalEvents(replaySince) : 0;
      await this.deps.queue.setEpoch(now);
      this.deps.log.info(
        { agentsOnline: online.length, ...queues, replayed },
        'Redis state built from MySQL (first start, or Redis lost its data)',
      );
      return { replayed };
    } finally {
      await this.deps.queue.unlockRebuild();
    }
  }

  /** Appends again the final events of the jobs that ended since a time (at least once: some were delivered already). */
  private async replayFinalEvents(since: Date): Promise<number> {
    let count = 0;
    for (let after = ''; ; ) {
      const page = await this.deps.jobRepo.listFinishedSince(since, after, PAGE);
      const events = page.map((job) => jobStatusEvent(job, job.finishedAt ?? job.updatedAt));
      this.deps.events.dropCovered(events);
      await this.deps.events.jobStatus(events);
      count += page.length;
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    return count;
  }

  private async expireOverdueLeases(now: Date): Promise<number> {
    return this.deps.jobs.expireOverdue(await this.deps.jobRepo.listOverdue(now, PAGE));
  }

  /** Due delayed jobs missing from the schedule (those still in it are the sweeper's). */
  private async releaseMissedDelayed(now: Date): Promise<number> {
    let released = 0;
    for (let after = ''; ; ) {
      const due = await this.deps.delayedRepo.listPending(after, now, PAGE);
      released += await this.deps.jobs.releaseDelayed(await this.deps.queue.unscheduledDelayed(due.map((d) => d.id)));
      if (due.length < PAGE) return released;
      after = due[due.length - 1].id;
    }
  }

  /** Agents online in MySQL with no recent poll in Redis (a sweep claimed them and then failed, or Redis forgot them). */
  private async markSilentAgentsOffline(): Promise<number> {
    const online = await this.deps.agentRepo.listOnline();
    const seen = await this.deps.queue.lastSeenMany(online.map((a) => a.id));
    const cutoff = Date.now() - this.deps.offlineAfterMs;
    let count = 0;
    for (const [i, agent] of online.entries()) {
      if ((seen[i] === null || seen[i]! <= cutoff) && (await this.deps.agents.goOffline(agent.id))) count++;
    }
    return count;
  }

  /** Queued jobs in MySQL: expire those of offline agents, push back into Redis those missing from their queue. */
  private async repairQueues(createdBefore: Date): Promise<{ requeued: number; expired: number }> {
    let requeued = 0;
    let expired = 0;
    for (let after = ''; ; ) {
      const page = await this.deps.jobRepo.listQueuing(after, createdBefore, PAGE);
      const agentIds = [...new Set(page.map((j) => j.agentId))];
      const seen = await this.deps.queue.lastSeenMany(agentIds);
      const cutoff = Date.now() - this.deps.offlineAfterMs;
      const polling = new Set(agentIds.filter((_, i) => seen[i] !== null && seen[i]! > cutoff));
      // A delayed job waiting for its offline agent stays queued until its wait ends (the sweep ends it then).
      const kept = (job: (typeof page)[number]) => job.agentOnline || polling.has(job.agentId) || job.waitUntil !== null;
      expired += await this.deps.jobs.expireQueued(
        page.filter((j) => !kept(j)).map((j) => j.id),
        'agent offline',
      );
      for (const [agentId, ids] of idsByAgent(page.filter(kept))) {
        const present = new Set(await this.deps.queue.queued(agentId));
        const missing = ids.filter((id) => !present.has(id));
        await this.deps.queue.enqueue(agentId, missing);
        requeued += missing.length;
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    return { requeued, expired };
  }
}
