/** The job lifecycle: push, take, renew (running), finish, expire, cancel, delay — MySQL decides, Redis dispatches. */
import type { Logger } from 'pino';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from './errors';
import { jobStatusEvent, type EventLog } from './events';
import { isJobId, newJobId } from './job-id';
import { checkMessage, splitAgentMessage, truncateResult } from './job-text';
import { RunningEventThrottle } from './running-throttle';
import type { AgentService } from './agents';
import type { CallbackGuard } from './callback-guard';
import type { DispatchQueue, TransitionOps } from './queue/queue';
import type { PollClaim } from './dispatcher';
import type { JobStatusEvent } from './events';
import type { AgentRow } from './store/agents';
import type { Db } from './store/db';
import type { DelayedJobRepo } from './store/delayed';
import { TERMINAL_STATUSES, type ApprovalOutcome, type JobRepo, type JobRow, type JobStatus, type NewJob } from './store/jobs';
import { matchingPattern } from './approval-patterns';
import { formatDuration } from '../config/duration';
import { holderUnknown, sameHolder, type Credential } from './credentials';

/** Longest accepted delay of a delayed job. */
export const MAX_DELAY_MS = 366 * 86_400_000;

/** Where a job comes from and where its answer goes. */
export interface JobOrigin {
  /** A job id chosen beforehand (chat acknowledges a job before queuing it); new when absent. */
  id?: string;
  /** e.g. `api`, `agent:web1`, `slack`, `delayed`. */
  source: string;
  /** Adapter-encoded reply address; null for API jobs. */
  origin?: string | null;
  /** URL receiving every status change, `disable` for silence, null for the default. */
  callback?: string | null;
  /** The identity key of the chat account that asked (shown in approval requests). */
  requester?: string | null;
  /**
   * The credential that pushes the job: neither it nor the person behind it may approve the job. Every route and
   * command sets it; only in-process callers without one (benchmarks, tests) leave it out.
   */
  pushedBy?: Credential;
  /** Refuse (400 InvalidAgent, nothing stored) rather than record an expired job when the agent is offline. */
  refuseOffline?: boolean;
}

/** Who decides on a job awaiting approval. */
export interface Approver {
  userId: number;
  /** The deciding credential: a chat account, a user token, or an admin acting as an account (`job approve --as`). */
  credential: Credential;
  /** How the decision came: from chat, the user API, or an admin's CLI. */
  via: 'chat' | 'api' | 'cli';
  /** What is recorded as approved_by / denied_by. */
  label: string;
}

/** The answer to a push. */
export interface PushResult {
  id: string;
  status: 'queuing' | 'expired' | 'awaiting_approval';
}

/** A job handed to an agent. */
export interface TakenJob {
  id: string;
  message: string;
}

/** Settings and collaborators of the job service. */
export interface JobServiceDeps {
  db: Db;
  jobs: JobRepo;
  delayed: DelayedJobRepo;
  agents: AgentService;
  queue: DispatchQueue;
  events: EventLog;
  /** Refuses callback URLs that point to internal addresses. */
  callbackGuard: CallbackGuard;
  leaseMs: number;
  /** A job awaiting approval with no decision for this long expires. */
  approvalTimeoutMs: number;
  /** A delayed job due while its agent is offline waits this long for the agent to poll again, then expires. */
  delayedWaitMs: number;
  log: Logger;
}

/** The row of a job pushed for an agent: where it comes from, plus its first status and what goes with it. */
function newJob(agent: AgentRow, message: string, from: JobOrigin, now: Date, first: Pick<NewJob, 'status' | 'reason' | 'approvalUntil' | 'leaseUntil'>): NewJob {
  return {
    id: from.id ?? newJobId(),
    userId: agent.userId,
    agentId: agent.id,
    agentName: agent.name,
    message,
    source: from.source,
    origin: from.origin ?? null,
    callback: from.callback ?? null,
    createdAt: now,
    requester: from.requester ?? null,
    pushedBy: from.pushedBy ?? null,
    ...first,
  };
}

/** The job lifecycle of DESIGN.md; every transition is a conditional UPDATE or a transaction in MySQL. */
export class JobService {
  private readonly runningEvents = new RunningEventThrottle();
  /** The node's long polls, to which a job pushed here can be handed directly. */
  private handoff: { claimIdle(agentId: number): PollClaim | null } | null = null;

  /** True while the node's Redis connection is up (its status says so; no round trip). */
  redisReady(): boolean {
    return this.deps.queue.ready();
  }

  /** Lets pushes on this node hand their job straight to a poll waiting on this node (serve's dispatcher). */
  handOffTo(dispatcher: { claimIdle(agentId: number): PollClaim | null }): void {
    this.handoff = dispatcher;
  }

  constructor(private readonly deps: JobServiceDeps) {
    // A take whose commit was not confirmed is undone in MySQL once it answers; queue those jobs in Redis again.
    deps.jobs.onReturned = (jobs) => {
      const byAgent = new Map<number, string[]>();
      for (const job of jobs) byAgent.set(job.agentId, [...(byAgent.get(job.agentId) ?? []), job.id]);
      for (const [agentId, ids] of byAgent) {
        this.deps.queue.requeue(agentId, ids).catch((err) => this.deps.log.warn({ err, ids }, 'could not queue returned jobs in Redis; the reconciler will'));
      }
      this.deps.log.info({ jobIds: jobs.map((j) => j.id) }, 'jobs of a take that was not confirmed are queued again');
    };
  }

  /** Queues a job for an agent; an offline agent's job is recorded and expired at once. */
  async push(agent: AgentRow, message: string, from: JobOrigin): Promise<PushResult> {
    const text = checkMessage(message);
    await this.checkCallback(from);
    if (!agent.available) throw new ForbiddenError(`Agent ${agent.name} is disabled; enable it to queue jobs.`, 'AgentUnavailable');
    const now = new Date();
    // A job whose text matches one of the agent's patterns waits for a second person; it is not queued until then.
    const gated = matchingPattern(agent.approvalPatterns, text) !== null;
    // A long poll of the agent waiting on this node proves it online, and can take the job at once.
    const claim = gated ? null : (this.handoff?.claimIdle(agent.id) ?? null);
    if (claim) return this.pushToPoll(agent, text, from, now, claim);
    const online = gated || (await this.deps.agents.isOnline(agent.id));
    if (!online && from.refuseOffline) throw new BadRequestError('target agent is offline or invalid', 'InvalidAgent');
    const job = newJob(agent, text, from, now, {
      status: gated ? 'awaiting_approval' : online ? 'queuing' : 'expired',
      reason: online ? null : 'agent offline',
      approvalUntil: gated ? new Date(now.getTime() + this.deps.approvalTimeoutMs) : null,
    });
    await this.deps.jobs.insert([job]);
    await this.announceNew([{ ...job, result: null }], now);
    return { id: job.id, status: job.status as PushResult['status'] };
  }

  /**
   * Hands a new job straight to a poll waiting on this node: the row is inserted as `sent` with its lease in the same
   * commit (no Redis queue, no take), its `queuing` and `sent` events follow, then the poll is answered. A poll whose
   * client went away meanwhile gets nothing, and the job goes back to the queue as any unreceived job does.
   */
  private async pushToPoll(agent: AgentRow, text: string, from: JobOrigin, now: Date, claim: PollClaim): Promise<PushResult> {
    const job = newJob(agent, text, from, now, { status: 'sent', reason: null, leaseUntil: new Date(now.getTime() + this.deps.leaseMs) });
    // Older jobs of the agent go first: the queue is looked at while the row is inserted.
    const queued = this.deps.queue.length(agent.id).catch(() => -1);
    try {
      await this.deps.jobs.insert([job]);
    } catch (err) {
      claim.cancel();
      throw err;
    }
    if ((await queued) !== 0) {
      claim.cancel();
      await this.queueBehind(agent, job, now);
      return { id: job.id, status: 'queuing' };
    }
    const events = [jobStatusEvent({ ...job, status: 'queuing', result: null }, now), jobStatusEvent({ ...job, result: null }, now)];
    // Written before the poll is answered, so that the agent's reports always come after these in the stream.
    await this.applyTransition({ setLeases: [{ id: job.id, at: job.leaseUntil!.getTime() }] }, events).catch((err) =>
      this.deps.log.warn({ err, jobIds: [job.id] }, 'job handed out while Redis failed; its lease holds in MySQL and its events follow when Redis answers'),
    );
    if (!claim.deliver({ id: job.id, message: job.message })) {
      await this.release(agent, [job.id]).catch((err) => this.deps.log.warn({ err, jobIds: [job.id] }, 'could not return an unreceived job to the queue; its lease will expire it'));
    }
    return { id: job.id, status: 'queuing' };
  }

  /**
   * A job inserted as sent for a local poll, when jobs were queued for the agent meanwhile (pushed through another
   * node) or Redis did not answer: it becomes queuing and goes to the end of the queue, as any push. Should MySQL not
   * take the change, it is tried again (1 s, doubling to 30 s) until the job's lease runs out: nobody has received the
   * job, and it must not wait for its lease to expire it.
   */
  private async queueBehind(agent: AgentRow, job: NewJob, now: Date, retryMs = 1000): Promise<void> {
    let back: string[];
    try {
      back = await this.deps.jobs.unsend([job.id], agent.id, now);
    } catch (err) {
      const retry = Date.now() + retryMs < job.leaseUntil!.getTime();
      this.deps.log.warn({ err, jobIds: [job.id] }, retry ? `could not queue a job inserted for a local poll; trying again in ${retryMs} ms` : 'could not queue a job inserted for a local poll; its lease will expire it');
      if (retry) setTimeout(() => void this.queueBehind(agent, job, new Date(), Math.min(retryMs * 2, 30_000)), retryMs).unref();
      return;
    }
    if (back.length) await this.announceNew([{ ...job, status: 'queuing', leaseUntil: null, result: null }], now);
  }

  /** Throws a BadRequestError when the job's callback URL points to an internal address (or is no http(s) URL). */
  private async checkCallback(from: JobOrigin): Promise<void> {
    if (from.callback && from.callback !== 'disable') await this.deps.callbackGuard.checkAtPush(from.callback);
  }

  /** Queues a job from "<agent> <job text>" for one of a user's agents. */
  async pushText(userId: number, text: string, from: JobOrigin): Promise<PushResult> {
    const { agent: name, message } = splitAgentMessage(text);
    const agent = await this.deps.agents.byName(userId, name);
    return this.push(agent, message, from);
  }

  /** After new jobs are stored: queue the queuing ones in Redis and append their events, in one round trip. */
  private async announceNew(jobs: (NewJob & { result: null })[], now: Date): Promise<void> {
    const byAgent = idsByAgent(jobs.filter((j) => j.status === 'queuing'));
    const events = jobs.map((j) => jobStatusEvent(j, now));
    try {
      await Promise.all([
        ...[...byAgent].flatMap(([agentId, jobIds]) => this.deps.queue.transitionCommands({ enqueue: { agentId, jobIds } })),
        ...this.deps.events.jobStatusCommands(events),
      ]);
      this.deps.events.announce(events);
    } catch (err) {
      // Stored in MySQL: the reconciler puts them in Redis later, so they are not lost.
      this.deps.log.warn({ jobIds: jobs.map((j) => j.id), err }, 'jobs stored but not queued in Redis; the reconciler will queue them');
    }
  }

  /** Sends the Redis side of transitions and their events together (one write, shared with concurrent requests). */
  private async applyTransition(ops: TransitionOps, events: JobStatusEvent[]): Promise<void> {
    await Promise.all([...this.deps.queue.transitionCommands(ops), ...this.deps.events.jobStatusCommands(events)]);
    this.deps.events.announce(events);
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
        await this.deps.queue.requeue(agent.id, ids).catch((e) => this.deps.log.error({ err: e, ids }, 'could not requeue jobs; the reconciler will'));
        if (taken.length) break;
        throw err;
      }
      if (sent.length > 0) {
        taken.push(...sent);
        await this.applyTransition({ setLeases: sent.map((j) => ({ id: j.id, at: j.leaseUntil!.getTime() })) }, sent.map((j) => jobStatusEvent(j, now))).catch((err) =>
          this.deps.log.warn({ err, jobIds: sent.map((j) => j.id) }, 'jobs handed out while Redis failed; their leases hold in MySQL and their events follow when Redis answers'),
        );
      }
      if (ids.length < want) break;
    }
    return taken.map((j) => ({ id: j.id, message: j.message }));
  }

  /** Returns jobs taken for a poll whose connection closed before the answer could be written: they were never received. */
  async release(agent: AgentRow, jobIds: string[]): Promise<void> {
    const now = new Date();
    const back = await this.deps.jobs.unsend(jobIds, agent.id, now);
    if (back.length === 0) return;
    await this.deps.queue.requeue(agent.id, back);
    const reason = 'returned to the queue: the agent disconnected before receiving it';
    await this.applyTransition(
      { clearLeases: back },
      back.map((id) => jobStatusEvent({ id, userId: agent.userId, agentId: agent.id, agentName: agent.name, status: 'queuing', result: null, reason }, now)),
    );
  }

  /** Records an agent's report on its own job; the same terminal report twice is accepted, a different one conflicts. */
  async report(agent: AgentRow, jobId: string, status: 'running' | 'succeeded' | 'failed', result: string): Promise<void> {
    const now = new Date();
    const text = truncateResult(result);
    const leaseUntil = new Date(now.getTime() + this.deps.leaseMs);
    const changed = await this.deps.jobs.report(jobId, agent.id, status, text, this.deps.leaseMs);
    if (!changed) return this.explainRejectedReport(agent, jobId, status);
    const job = { id: jobId, userId: agent.userId, agentId: agent.id, agentName: agent.name, status, result: text, reason: null };
    if (status !== 'running') this.runningEvents.forget(jobId);
    const ops: TransitionOps = status === 'running' ? { setLeases: [{ id: jobId, at: leaseUntil.getTime() }] } : { clearLeases: [jobId], done: [jobId] };
    // A burst of running reports renews the lease each time, but adds at most one event a second to the stream.
    const announce = status !== 'running' || this.runningEvents.admit(jobId, now.getTime());
    await this.applyTransition(ops, announce ? [jobStatusEvent(job, now)] : []);
  }

  private async explainRejectedReport(agent: AgentRow, jobId: string, status: JobStatus): Promise<void> {
    const job = await this.deps.jobs.get(jobId);
    if (!job || job.agentId !== agent.id) throw new NotFoundError(`There is no job ${jobId} for this agent.`, 'JobNotFound');
    if (job.status === status) {
      // The same terminal report again: accepted. The agent repeats a report only when it did not get the answer,
      // which may mean the event was not appended (Redis failed after the commit): append it again (at least once).
      await this.applyTransition({ clearLeases: [jobId], done: [jobId] }, [jobStatusEvent(job, job.finishedAt ?? new Date())]);
      return;
    }
    if (job.status === 'queuing') throw new ConflictError(`Job ${jobId} has not been taken yet.`, 'JobNotTaken');
    throw new ConflictError(`Job ${jobId} is already ${job.status}.`, 'JobFinished');
  }

  /** Expires jobs whose lease ran out (claimed from Redis or found in MySQL); returns how many expired. */
  async expireOverdue(jobIds: string[]): Promise<number> {
    let count = 0;
    for (const id of jobIds) {
      const now = new Date();
      const job = await this.deps.jobs.expireLeased(id, now, 'no report from the agent within the lease');
      if (!job) continue;
      count++;
      await this.applyTransition({ done: [id] }, [jobStatusEvent(job, now)]);
    }
    return count;
  }

  /** Expires queued jobs whose agent is offline (found by the reconciler, or at the end of a delayed job's wait). */
  async expireQueued(jobIds: string[], reason: string): Promise<number> {
    const now = new Date();
    const jobs = await this.deps.jobs.expireQueued(jobIds, reason, now);
    for (const [agentId, ids] of idsByAgent(jobs)) await this.deps.queue.remove(agentId, ids);
    await this.applyTransition({ done: jobs.map((j) => j.id) }, jobs.map((j) => jobStatusEvent(j, now)));
    return jobs.length;
  }

  /** The reason of a delayed job that waited in vain for its offline agent. */
  get waitOverReason(): string {
    return `agent offline for the ${formatDuration(this.deps.delayedWaitMs)} of delayed_wait after the job was due`;
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
    return this.expireQueued(over.filter((j) => !online.get(j.agentId)).map((j) => j.id), this.waitOverReason);
  }

  /** Cancels a user's queued job. */
  async cancel(userId: number, jobId: string): Promise<JobRow> {
    const now = new Date();
    const outcome = await this.deps.jobs.cancel(jobId, userId, now);
    if (!outcome) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
    if (!outcome.canceled) throw new ConflictError(`Job ${jobId} is ${outcome.job.status} and can no longer be canceled.`, 'NotCancelable');
    await this.deps.queue.remove(outcome.job.agentId, [jobId]);
    await this.applyTransition({ done: [jobId] }, [jobStatusEvent(outcome.job, now)]);
    return outcome.job;
  }

  /**
   * Approves a job awaiting approval (it is queued, or expires when its agent is offline). Refused for another user's
   * account, for the account that asked, and through the API for a job asked for in chat; a second approval is
   * answered with who approved first.
   */
  async approve(jobId: string, approver: Approver): Promise<JobRow> {
    await this.checkApprover(jobId, approver, true);
    const now = new Date();
    const outcome = await this.deps.jobs.approve(jobId, approver.label, now, (agentId) => this.deps.agents.isOnline(agentId));
    if (outcome?.late) {
      await this.expireUnapprovedOne(jobId, now);
      throw new ConflictError(`Job ${jobId} was not approved in time and has expired; ask for it again.`, 'ApprovalExpired');
    }
    const job = this.decided(jobId, outcome);
    const ops: TransitionOps = job.status === 'queuing' ? { enqueue: { agentId: job.agentId, jobIds: [job.id] } } : { done: [job.id] };
    await this.afterDecision(job, ops, now);
    this.deps.log.info({ jobId, by: approver.label, via: approver.via }, 'job approved');
    return job;
  }

  /**
   * The Redis side of a decision committed in MySQL. A Redis failure now is not answered 503 (a retry would only hear
   * "already decided"): the reconciler queues what is missing, and the event log keeps the event until Redis answers.
   */
  private async afterDecision(job: JobRow, ops: TransitionOps, now: Date): Promise<void> {
    await this.applyTransition(ops, [jobStatusEvent(job, now)]).catch((err) => this.deps.log.warn({ err, jobId: job.id }, 'a decided job is stored but Redis failed; the reconciler repairs it'));
  }

  /** Denies a job awaiting approval: it is canceled, `denied by <who>[: reason]`. */
  async deny(jobId: string, approver: Approver, reason: string): Promise<JobRow> {
    await this.checkApprover(jobId, approver, false);
    const now = new Date();
    const why = `denied by ${approver.label}${reason.trim() ? `: ${reason.trim()}` : ''}`;
    const job = this.decided(jobId, await this.deps.jobs.deny(jobId, approver.label, why, now));
    await this.afterDecision(job, { done: [job.id] }, now);
    this.deps.log.info({ jobId, by: approver.label, via: approver.via }, 'job denied');
    return job;
  }

  /** Throws unless this approver may decide on the job now. */
  private async checkApprover(jobId: string, approver: Approver, approving: boolean): Promise<void> {
    const job = await this.deps.jobs.get(jobId);
    if (!job) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
    if (job.userId !== approver.userId) {
      throw new ForbiddenError(`You cannot decide on job ${jobId}: only the accounts linked to the user who owns it can.`, 'NotApprover');
    }
    if (job.status !== 'awaiting_approval') this.decided(jobId, { job, changed: false });
    if (approver.via === 'api' && job.requester) {
      throw new ForbiddenError(`Job ${jobId} was asked for in chat: another person's chat account must decide on it, not the API.`, 'NotApprover');
    }
    if (!approving) return;
    if (!job.pushedBy) {
      throw new ForbiddenError(`Job ${jobId} was asked for before Skadi recorded who pushes jobs, so nobody can tell who may approve it: ask for it again.`, 'Unattributed');
    }
    if (holderUnknown(job.pushedBy) || holderUnknown(approver.credential)) {
      const which = holderUnknown(job.pushedBy) ? `Job ${jobId} was pushed with a token` : 'Your token was';
      throw new ForbiddenError(
        `${which} handed out before Skadi recorded who holds tokens, so it cannot tell whether one person is on both sides: rotate that token (\`token\` in chat, \`skadi user token\` or \`skadi agent token\`) and try again.`,
        'HolderUnknown',
      );
    }
    if (sameHolder(approver.credential, job.pushedBy)) {
      throw new ForbiddenError('You asked for this job yourself (in chat, or with a token handed to you): another person linked to the same user must approve it.', 'SelfApproval');
    }
  }

  /** The job after a decision, or the conflict that explains why there was none (decided already, or no approval). */
  private decided(jobId: string, outcome: ApprovalOutcome | null): JobRow {
    if (!outcome) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
    if (outcome.changed) return outcome.job;
    const { job } = outcome;
    if (job.approval?.approvedBy) throw new ConflictError(`Job ${jobId} was already approved by ${job.approval.approvedBy}.`, 'AlreadyDecided');
    if (job.approval?.deniedBy) throw new ConflictError(`Job ${jobId} was already denied by ${job.approval.deniedBy}.`, 'AlreadyDecided');
    if (!job.approval) throw new ConflictError(`Job ${jobId} does not need approval.`, 'NoApproval');
    throw new ConflictError(`Job ${jobId} is ${job.status}: there is nothing to decide any more.`, 'AlreadyDecided');
  }

  /** Expires jobs that got no decision within the approval timeout; any node may run it (each job expires once). */
  async expireUnapproved(limit = 500): Promise<number> {
    const now = new Date();
    let count = 0;
    for (const id of await this.deps.jobs.listApprovalOverdue(now, limit)) if (await this.expireUnapprovedOne(id, now)) count++;
    return count;
  }

  /** Expires one job past its approval time (the reason names its own window); false when it was decided meanwhile. */
  private async expireUnapprovedOne(id: string, now: Date): Promise<boolean> {
    const before = await this.deps.jobs.get(id);
    if (!before?.approval?.until) return false;
    const reason = `not approved within ${formatDuration(before.approval.until.getTime() - before.createdAt.getTime())}`;
    const job = await this.deps.jobs.expireAwaiting(id, reason, now);
    if (!job) return false;
    await this.applyTransition({ done: [id] }, [jobStatusEvent(job, now)]);
    return true;
  }

  /** A user's job awaiting approval by its full id or its short id (the end of the id), or a clear error. */
  async findAwaiting(userId: number, idOrShort: string): Promise<string> {
    const text = idOrShort.trim().toUpperCase();
    if (isJobId(text)) return text;
    if (!/^[0-9A-Z]{3,25}$/.test(text)) throw new BadRequestError(`"${idOrShort.slice(0, 40)}" is not a job id.`, 'InvalidJobId');
    const found = await this.deps.jobs.findAwaitingBySuffix(userId, text);
    if (found.length === 0) throw new NotFoundError(`No job of yours awaiting approval ends with ${text}.`, 'JobNotFound');
    if (found.length > 1) throw new BadRequestError(`${text} fits ${found.length} jobs awaiting approval (${found.map((j) => j.id).join(', ')}): give more of the id.`, 'AmbiguousJobId');
    return found[0].id;
  }

  /** Stores a job to be queued after a delay; returns its id (the job keeps it). */
  async delay(agent: AgentRow, message: string, delayMs: number, from: JobOrigin): Promise<{ id: string; dueAt: Date }> {
    const text = checkMessage(message);
    await this.checkCallback(from);
    if (!Number.isFinite(delayMs) || delayMs <= 0 || delayMs > MAX_DELAY_MS) {
      throw new BadRequestError('The delay must be more than 0 and at most 366 days.', 'InvalidDuration');
    }
    const now = new Date();
    const dueAt = new Date(now.getTime() + delayMs);
    const id = newJobId();
    await this.deps.delayed.insert({
      id, userId: agent.userId, agentId: agent.id, message: text, source: from.source,
      origin: from.origin ?? null, callback: from.callback ?? null, dueAt, createdAt: now, requester: from.requester ?? null, pushedBy: from.pushedBy ?? null,
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
  async releaseDelayed(ids: string[]): Promise<number> {
    let count = 0;
    for (const id of ids) {
      const now = new Date();
      const outcome = await this.deps.db.transaction(async (conn) => {
        const delayed = await this.deps.delayed.lockPending(conn, id);
        if (!delayed) return null;
        const [rows] = await conn.query('SELECT id, name, approval_patterns FROM agents WHERE id = ?', [delayed.agentId]);
        const agent = (rows as { id: number; name: string; approval_patterns: string | null }[])[0];
        // The agent's patterns when the job is due decide whether it waits for approval.
        const gated = !!agent && matchingPattern(agent.approval_patterns ? (JSON.parse(agent.approval_patterns) as string[]) : [], delayed.message) !== null;
        const online = gated || (agent ? await this.deps.agents.isOnline(delayed.agentId) : false);
        const waitEnd = delayed.dueAt.getTime() + this.deps.delayedWaitMs;
        const waits = !!agent && !online && now.getTime() < waitEnd;
        const reason = online || waits ? null : agent ? this.waitOverReason : 'agent removed';
        const job: NewJob = {
          id: delayed.id, userId: delayed.userId, agentId: delayed.agentId, agentName: agent?.name ?? '(removed)',
          message: delayed.message, source: delayed.source, origin: delayed.origin, callback: delayed.callback,
          status: gated ? 'awaiting_approval' : online || waits ? 'queuing' : 'expired', reason, createdAt: now,
          requester: delayed.requester, pushedBy: delayed.pushedBy, approvalUntil: gated ? new Date(now.getTime() + this.deps.approvalTimeoutMs) : null,
          // Queued, it waits for its agent until then even if the agent is offline, or goes offline before taking it.
          waitUntil: (online && !gated) || waits ? new Date(waitEnd) : null,
        };
        await this.deps.delayed.markReleased(conn, id, now);
        await this.deps.jobs.insert([job], conn);
        return job;
      });
      if (!outcome) continue;
      count++;
      await this.announceNew([{ ...outcome, result: null }], now);
    }
    return count;
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

/** Job ids grouped by their agent. */
export function idsByAgent(jobs: { id: string; agentId: number }[]): Map<number, string[]> {
  const byAgent = new Map<number, string[]>();
  for (const job of jobs) byAgent.set(job.agentId, [...(byAgent.get(job.agentId) ?? []), job.id]);
  return byAgent;
}

/** True when a status never changes again. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}
