/**
 * Timeouts on every node: overdue leases, silent agents and due delayed jobs, claimed atomically from Redis sorted
 * sets; and jobs awaiting approval past their time, or waiting for an offline agent past delayed_wait, expired by a
 * conditional UPDATE in MySQL (each once).
 */
import type { Logger } from 'pino';
import type { AgentService } from '../agents/agent-service';
import type { Approvals } from '../approvals/decisions';
import type { JobService } from './job-service';
import type { RedisState } from '../queue/redis-state';

const BATCH = 500;

/** What one sweep did. */
export interface SweepReport {
  expired: number;
  offline: number;
  released: number;
  /** Jobs that got no approval decision in time. */
  unapproved: number;
  /** Delayed jobs whose wait for their offline agent ended (delayed_wait) with the agent still away. */
  waitOver: number;
}

/** Runs the timeouts of the lifecycle; any number of nodes may run it at once. */
export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly queue: RedisState,
    private readonly jobs: JobService,
    private readonly approvals: Approvals,
    private readonly agents: AgentService,
    private readonly offlineAfterMs: number,
    private readonly log: Logger,
  ) {}

  /** Sweeps every intervalMs until stopped. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.runGuarded(), intervalMs);
    this.timer.unref();
  }

  /** Stops sweeping. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async runGuarded(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.sweepOnce();
    } catch (err) {
      this.log.warn({ err }, 'sweep failed; the next one retries (and the reconciler repairs what a claim left behind)');
    } finally {
      this.running = false;
    }
  }

  /** One pass: expire overdue leases, mark silent agents offline, release due delayed jobs, end their waits. */
  async sweepOnce(): Promise<SweepReport> {
    const report: SweepReport = { expired: 0, offline: 0, released: 0, unapproved: 0, waitOver: 0 };
    for (;;) {
      const ids = await this.queue.claimExpiredLeases(Date.now(), BATCH);
      report.expired += await this.jobs.expireOverdue(ids);
      if (ids.length < BATCH) break;
    }
    for (;;) {
      const agentIds = await this.queue.claimSilentAgents(Date.now() - this.offlineAfterMs, BATCH);
      for (const id of agentIds) if (await this.agents.goOffline(Number(id))) report.offline++;
      if (agentIds.length < BATCH) break;
    }
    for (;;) {
      const ids = await this.queue.claimDueDelayed(Date.now(), BATCH);
      report.released += await this.jobs.releaseDelayed(ids);
      if (ids.length < BATCH) break;
    }
    report.unapproved = await this.approvals.expireUnapproved();
    report.waitOver = await this.jobs.endDelayedWaits();
    await this.agents.flushSeen();
    return report;
  }
}
