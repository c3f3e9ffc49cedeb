/**
 * Two-person approval of gated jobs: who may decide (never the person who pushed), approve, deny, and the expiry of
 * jobs nobody decided on in time.
 */
import type { Logger } from 'pino';
import { formatDuration } from '../../config/duration';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '../errors';
import { jobStatusEvent } from '../lifecycle/events';
import { isJobId } from '../lifecycle/job-id';
import { holderUnknown, sameHolder, type Credential } from './credentials';
import type { AgentService } from '../agents/agent-service';
import type { Transitions } from '../lifecycle/transitions';
import type { TransitionOps } from '../queue/redis-state';
import type { ApprovalOutcome, JobRepo, JobRow } from '../store/jobs';

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

/** Decides on jobs awaiting approval; each decision is one transaction on the job's locked row. */
export class Approvals {
  constructor(private readonly deps: { jobs: JobRepo; agents: AgentService; transitions: Transitions; log: Logger }) {}

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
    await this.deps.transitions
      .apply(ops, [jobStatusEvent(job, now)])
      .catch((err) => this.deps.log.warn({ err, jobId: job.id }, 'a decided job is stored but Redis failed; the reconciler repairs it'));
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
      throw new ForbiddenError(
        `Job ${jobId} was asked for in chat: another person's chat account must decide on it, not the API.`,
        'NotApprover',
      );
    }
    if (!approving) return;
    if (!job.pushedBy) {
      throw new ForbiddenError(
        `Job ${jobId} was asked for before Skadi recorded who pushes jobs, so nobody can tell who may approve it: ask for it again.`,
        'Unattributed',
      );
    }
    if (holderUnknown(job.pushedBy) || holderUnknown(approver.credential)) {
      const which = holderUnknown(job.pushedBy) ? `Job ${jobId} was pushed with a token` : 'Your token was';
      throw new ForbiddenError(
        `${which} handed out before Skadi recorded who holds tokens, so it cannot tell whether one person is on both sides: rotate that token (\`token\` in chat, \`skadi user token\` or \`skadi agent token\`) and try again.`,
        'HolderUnknown',
      );
    }
    if (sameHolder(approver.credential, job.pushedBy)) {
      throw new ForbiddenError(
        'You asked for this job yourself (in chat, or with a token handed to you): another person linked to the same user must approve it.',
        'SelfApproval',
      );
    }
  }

  /** The job after a decision, or the conflict that explains why there was none (decided already, or no approval). */
  private decided(jobId: string, outcome: ApprovalOutcome | null): JobRow {
    if (!outcome) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
    if (outcome.changed) return outcome.job;
    const { job } = outcome;
    if (job.approval?.approvedBy)
      throw new ConflictError(`Job ${jobId} was already approved by ${job.approval.approvedBy}.`, 'AlreadyDecided');
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
    await this.deps.transitions.apply({ done: [id] }, [jobStatusEvent(job, now)]);
    return true;
  }

  /** A user's job awaiting approval by its full id or its short id (the end of the id), or a clear error. */
  async findAwaiting(userId: number, idOrShort: string): Promise<string> {
    const text = idOrShort.trim().toUpperCase();
    if (isJobId(text)) return text;
    if (!/^[0-9A-Z]{3,25}$/.test(text)) throw new BadRequestError(`"${idOrShort.slice(0, 40)}" is not a job id.`, 'InvalidJobId');
    const found = await this.deps.jobs.findAwaitingBySuffix(userId, text);
    if (found.length === 0) throw new NotFoundError(`No job of yours awaiting approval ends with ${text}.`, 'JobNotFound');
    if (found.length > 1)
      throw new BadRequestError(
        `${text} fits ${found.length} jobs awaiting approval (${found.map((j) => j.id).join(', ')}): give more of the id.`,
        'AmbiguousJobId',
      );
    return found[0].id;
  }
}
