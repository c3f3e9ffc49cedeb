/** The JSON shape of a job in the HTTP API (snake_case, as the original service). */
import type { JobRow } from '../cloud/store/jobs';

/** A job as the user API shows it. */
export function jobJson(job: JobRow): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: job.id,
    user_id: job.userId,
    agent_id: job.agentId,
    agent: job.agentName,
    message: job.message,
    source: job.source,
    callback: job.callback ?? '',
    status: job.status,
    result: job.result ?? '',
    reason: job.reason ?? '',
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
  };
  json.approval = {
    required: job.approval !== null,
    approved_by: job.approval?.approvedBy ?? '',
    approved_at: job.approval?.approvedAt?.toISOString() ?? '',
    denied_by: job.approval?.deniedBy ?? '',
    reason: job.approval?.deniedBy ? (job.reason ?? '') : '',
  };
  if (job.status === 'queuing' && job.waitUntil) json.wait_until = job.waitUntil.toISOString();
  if (job.sentAt) json.sent_at = job.sentAt.toISOString();
  if (job.finishedAt) json[`${job.status}_at`] = job.finishedAt.toISOString();
  return json;
}
