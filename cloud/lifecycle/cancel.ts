/** A user cancels a job of theirs that no agent has taken yet. */
import { ConflictError, NotFoundError } from '../errors';
import { jobStatusEvent } from './events';
import type { RedisState } from '../queue/redis-state';
import type { JobRepo, JobRow } from '../store/jobs';
import type { Transitions } from './transitions';

/** Cancels a user's queued (or awaiting approval) job: it leaves the agent's queue and ends `canceled`. */
export async function cancelJob(
  deps: { jobs: JobRepo; queue: RedisState; transitions: Transitions },
  userId: number,
  jobId: string,
): Promise<JobRow> {
  const now = new Date();
  const outcome = await deps.jobs.cancel(jobId, userId, now);
  if (!outcome) throw new NotFoundError(`There is no job ${jobId}.`, 'JobNotFound');
  if (!outcome.canceled) throw new ConflictError(`Job ${jobId} is ${outcome.job.status} and can no longer be canceled.`, 'NotCancelable');
  await deps.queue.remove(outcome.job.agentId, [jobId]);
  await deps.transitions.apply({ done: [jobId] }, [jobStatusEvent(outcome.job, now)]);
  return outcome.job;
}
