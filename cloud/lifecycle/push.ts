/**
 * Pushing a job: gated for approval, handed at once to a poll of the agent waiting on this node, else queued (behind
 * older jobs of the agent), or recorded as expired when the agent is offline.
 */
import type { Logger } from 'pino';
import { BadRequestError, ForbiddenError } from '../errors';
import { jobStatusEvent } from './events';
import { newJobId } from './job-id';
import { checkMessage, splitAgentMessage } from './job-text';
import { matchingPattern } from '../approvals/patterns';
import type { AgentService } from '../agents/agent-service';
import type { CallbackGuard } from '../notifier/callback-guard';
import type { Credential } from '../approvals/credentials';
import type { IdlePolls, PollClaim } from '../agents/long-polls';
import type { RedisState } from '../queue/redis-state';
import type { AgentRow } from '../store/agents';
import type { JobRepo, NewJob } from '../store/jobs';
import type { JobHandOut } from './hand-out';
import type { Transitions } from './transitions';

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

/** The answer to a push. */
export interface PushResult {
  id: string;
  status: 'queuing' | 'expired' | 'awaiting_approval';
}

/** Settings and collaborators of pushes. */
export interface JobPushDeps {
  jobs: JobRepo;
  agents: AgentService;
  queue: RedisState;
  transitions: Transitions;
  handOut: JobHandOut;
  /** The node's long polls, to which a job pushed here can be handed directly. */
  polls: IdlePolls;
  callbackGuard: CallbackGuard;
  leaseMs: number;
  approvalTimeoutMs: number;
  log: Logger;
}

/** The row of a job pushed for an agent: where it comes from, plus its first status and what goes with it. */
function newJob(
  agent: AgentRow,
  message: string,
  from: JobOrigin,
  now: Date,
  first: Pick<NewJob, 'status' | 'reason' | 'approvalUntil' | 'leaseUntil'>,
): NewJob {
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

/** Throws a BadRequestError when the job's callback URL points to an internal address (or is no http(s) URL). */
export async function checkCallback(guard: CallbackGuard, from: JobOrigin): Promise<void> {
  if (from.callback && from.callback !== 'disable') await guard.checkAtPush(from.callback);
}

/** Pushes jobs for agents. */
export class JobPush {
  constructor(private readonly deps: JobPushDeps) {}

  /** Queues a job for an agent; an offline agent's job is recorded and expired at once. */
  async push(agent: AgentRow, message: string, from: JobOrigin): Promise<PushResult> {
    const text = checkMessage(message);
    await checkCallback(this.deps.callbackGuard, from);
    if (!agent.available) throw new ForbiddenError(`Agent ${agent.name} is disabled; enable it to queue jobs.`, 'AgentUnavailable');
    const now = new Date();
    // A job whose text matches one of the agent's patterns waits for a second person; it is not queued until then.
    const gated = matchingPattern(agent.approvalPatterns, text) !== null;
    // A long poll of the agent waiting on this node proves it online, and can take the job at once.
    const claim = gated ? null : this.deps.polls.claimIdle(agent.id);
    if (claim) return this.pushToPoll(agent, text, from, now, claim);
    const online = gated || (await this.deps.agents.isOnline(agent.id));
    if (!online && from.refuseOffline) throw new BadRequestError('target agent is offline or invalid', 'InvalidAgent');
    const job = newJob(agent, text, from, now, {
      status: gated ? 'awaiting_approval' : online ? 'queuing' : 'expired',
      reason: online ? null : 'agent offline',
      approvalUntil: gated ? new Date(now.getTime() + this.deps.approvalTimeoutMs) : null,
    });
    await this.deps.jobs.insert([job]);
    await this.deps.transitions.announceNew([{ ...job, result: null }], now);
    return { id: job.id, status: job.status as PushResult['status'] };
  }

  /** Queues a job from "<agent> <job text>" for one of a user's agents. */
  async pushText(userId: number, text: string, from: JobOrigin): Promise<PushResult> {
    const { agent: name, message } = splitAgentMessage(text);
    const agent = await this.deps.agents.byName(userId, name);
    return this.push(agent, message, from);
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
    await this.deps.transitions
      .apply({ setLeases: [{ id: job.id, at: job.leaseUntil!.getTime() }] }, events)
      .catch((err) =>
        this.deps.log.warn(
          { err, jobIds: [job.id] },
          'job handed out while Redis failed; its lease holds in MySQL and its events follow when Redis answers',
        ),
      );
    if (!claim.deliver({ id: job.id, message: job.message })) {
      await this.deps.handOut
        .returnUnreceived(agent, [job.id])
        .catch((err) =>
          this.deps.log.warn({ err, jobIds: [job.id] }, 'could not return an unreceived job to the queue; its lease will expire it'),
        );
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
      this.deps.log.warn(
        { err, jobIds: [job.id] },
        retry
          ? `could not queue a job inserted for a local poll; trying again in ${retryMs} ms`
          : 'could not queue a job inserted for a local poll; its lease will expire it',
      );
      if (retry) setTimeout(() => void this.queueBehind(agent, job, new Date(), Math.min(retryMs * 2, 30_000)), retryMs).unref();
      return;
    }
    if (back.length) await this.deps.transitions.announceNew([{ ...job, status: 'queuing', leaseUntil: null, result: null }], now);
  }
}
