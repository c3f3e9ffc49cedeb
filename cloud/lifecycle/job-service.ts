/**
 * The job lifecycle behind a few verbs: push, take, report, expire, cancel, delay (the lifecycle of README.md and docs/design.md). MySQL
 * decides every transition with a conditional update or a transaction; Redis dispatches.
 */
import type { Logger } from 'pino';
import { NotFoundError } from '../errors';
import type { AgentService } from '../agents/agent-service';
import type { CallbackGuard } from '../notifier/callback-guard';
import type { IdlePolls } from '../agents/long-polls';
import type { RedisState } from '../queue/redis-state';
import type { AgentRepo, AgentRow } from '../store/agents';
import type { Db } from '../store/db';
import type { DelayedJobRepo } from '../store/delayed';
import type { JobRepo, JobRow } from '../store/jobs';
import { cancelJob } from './cancel';
import { DelayedJobs } from './delayed';
import { Expiry } from './expiry';
import type { HandOut, TakenJob } from './hand-out';
import { JobPush, type JobOrigin, type PushResult } from './push';
import { Reports } from './reports';
import type { Transitions } from './transitions';

/** Settings and collaborators of the job service. */
export interface JobServiceDeps {
  db: Db;
  jobs: JobRepo;
  delayed: DelayedJobRepo;
  agentRepo: AgentRepo;
  agents: AgentService;
  queue: RedisState;
  transitions: Transitions;
  handOut: HandOut;
  /** The node's long polls, to which a job pushed here can be handed directly. */
  polls: IdlePolls;
  /** Refuses callback URLs that point to internal addresses. */
  callbackGuard: CallbackGuard;
  leaseMs: number;
  /** A job awaiting approval with no decision for this long expires. */
  approvalTimeoutMs: number;
  /** A delayed job due while its agent is offline waits this long for the agent to poll again, then expires. */
  delayedWaitMs: number;
  log: Logger;
}

/** The job lifecycle's verbs, each kept in the file of lifecycle/ named for it. */
export class JobService {
  private readonly pushes: JobPush;
  private readonly reports: Reports;
  private readonly expiry: Expiry;
  private readonly delayed: DelayedJobs;

  constructor(private readonly deps: JobServiceDeps) {
    this.pushes = new JobPush(deps);
    this.reports = new Reports(deps);
    this.expiry = new Expiry(deps);
    this.delayed = new DelayedJobs(deps);
  }

  /** Queues a job for an agent; an offline agent's job is recorded and expired at once. */
  push(agent: AgentRow, message: string, from: JobOrigin): Promise<PushResult> {
    return this.pushes.push(agent, message, from);
  }

  /** Queues a job from "<agent> <job text>" for one of a user's agents. */
  pushText(userId: number, text: string, from: JobOrigin): Promise<PushResult> {
    return this.pushes.pushText(userId, text, from);
  }

  /** Hands up to `max` queued jobs to their agent, each at most once. */
  take(agent: AgentRow, max: number): Promise<TakenJob[]> {
    return this.deps.handOut.take(agent, max);
  }

  /** Records an agent's report on its own job. */
  report(agent: AgentRow, jobId: string, status: 'running' | 'succeeded' | 'failed', result: string): Promise<void> {
    return this.reports.report(agent, jobId, status, result);
  }

  /** Expires jobs whose lease ran out; returns how many expired. */
  expireOverdue(jobIds: string[]): Promise<number> {
    return this.expiry.expireOverdue(jobIds);
  }

  /** Expires queued jobs whose agent is offline; returns how many expired. */
  expireQueued(jobIds: string[], reason: string): Promise<number> {
    return this.expiry.expireQueued(jobIds, reason);
  }

  /** Ends the waits of delayed jobs for their offline agent that are over; returns how many expired. */
  endDelayedWaits(limit?: number): Promise<number> {
    return this.expiry.endDelayedWaits(limit);
  }

  /** Cancels a user's queued job. */
  cancel(userId: number, jobId: string): Promise<JobRow> {
    return cancelJob(this.deps, userId, jobId);
  }

  /** Stores a job to be queued after a delay; returns its id (the job keeps it). */
  delay(agent: AgentRow, message: string, delayMs: number, from: JobOrigin): Promise<{ id: string; dueAt: Date }> {
    return this.delayed.delay(agent, message, delayMs, from);
  }

  /** Turns due delayed jobs into jobs (each exactly once); returns how many. */
  releaseDelayed(ids: string[]): Promise<number> {
    return this.delayed.release(ids);
  }

  /** A job, if it exists and (when userId is given) belongs to that user. */
  async get(jobId: string, userId: number | null): Promise<JobRow> {
    const job = await this.deps.jobs.get(jobId);
    if (!job || (userId !== null && job.userId !== userId)) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
    return job;
  }

  /** Recent jobs of a user, optionally of one agent, newest first. */
  list(userId: number | null, agentId: number | null, limit = 20): Promise<JobRow[]> {
    return this.deps.jobs.list(userId, agentId, limit);
  }
}
