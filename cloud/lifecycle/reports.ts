/** An agent's reports on its own jobs: `running` renews the lease, `succeeded` and `failed` end the job. */
import { ConflictError, NotFoundError } from '../errors';
import { jobStatusEvent } from './events';
import { truncateResult } from './job-text';
import { RunningEventThrottle } from './running-throttle';
import type { TransitionOps } from '../queue/redis-state';
import type { AgentRow } from '../store/agents';
import type { JobRepo, JobStatus } from '../store/jobs';
import type { Transitions } from './transitions';

/** Records reports; MySQL accepts one only from the job's agent, on a job it holds. */
export class Reports {
  private readonly runningEvents = new RunningEventThrottle();

  constructor(private readonly deps: { jobs: JobRepo; transitions: Transitions; leaseMs: number }) {}

  /** Records an agent's report on its own job; the same terminal report twice is accepted, a different one conflicts. */
  async report(agent: AgentRow, jobId: string, status: 'running' | 'succeeded' | 'failed', result: string): Promise<void> {
    const now = new Date();
    const text = truncateResult(result);
    const leaseUntil = new Date(now.getTime() + this.deps.leaseMs);
    const changed = await this.deps.jobs.report(jobId, agent.id, status, text, this.deps.leaseMs);
    if (!changed) return this.explainRejected(agent, jobId, status);
    const job = { id: jobId, userId: agent.userId, agentId: agent.id, agentName: agent.name, status, result: text, reason: null };
    if (status !== 'running') this.runningEvents.forget(jobId);
    const ops: TransitionOps =
      status === 'running' ? { setLeases: [{ id: jobId, at: leaseUntil.getTime() }] } : { clearLeases: [jobId], done: [jobId] };
    // A burst of running reports renews the lease each time, but adds at most one event a second to the stream.
    const announce = status !== 'running' || this.runningEvents.admit(jobId, now.getTime());
    await this.deps.transitions.apply(ops, announce ? [jobStatusEvent(job, now)] : []);
  }

  private async explainRejected(agent: AgentRow, jobId: string, status: JobStatus): Promise<void> {
    const job = await this.deps.jobs.get(jobId);
    if (!job || job.agentId !== agent.id) throw new NotFoundError(`There is no job ${jobId} for this agent.`, 'JobNotFound');
    if (job.status === status) {
      // The same terminal report again: accepted. The agent repeats a report only when it did not get the answer,
      // which may mean the event was not appended (Redis failed after the commit): append it again (at least once).
      await this.deps.transitions.apply({ clearLeases: [jobId], done: [jobId] }, [jobStatusEvent(job, job.finishedAt ?? new Date())]);
      return;
    }
    if (job.status === 'queuing') throw new ConflictError(`Job ${jobId} has not been taken yet.`, 'JobNotTaken');
    throw new ConflictError(`Job ${jobId} is already ${job.status}.`, 'JobFinished');
  }
}
