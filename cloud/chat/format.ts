/** How jobs and agents read in chat: status marks, relative times, short quotes. Shared by commands and the notifier. */
import type { JobStatus } from '../store/jobs';

/** The mark shown before a job status. */
export const STATUS_MARK: Record<JobStatus, string> = {
  awaiting_approval: '🔐',
  queuing: '⏳',
  sent: '📨',
  running: '⚙️',
  succeeded: '✅',
  failed: '❌',
  expired: '⌛',
  canceled: '🚫',
};

/** "12s ago", "5m ago", "3h ago", "2d ago". */
export function ago(at: Date | null, now = Date.now()): string {
  if (!at) return 'never';
  const s = Math.max(0, Math.round((now - at.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** A job's text as an inline quote, shortened to one line. */
export function quote(text: string, max = 80): string {
  const line = text.replace(/\s+/g, ' ').trim();
  const short = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return `\`${short.replace(/`/g, "'")}\``;
}

/** A job's short id: the last four characters of its id, enough to tell one person's recent jobs apart. */
export function shortJobId(id: string): string {
  return id.slice(-4);
}

/**
 * The one-line headline of a job: mark, agent, command, status. In a channel without threads (`threads` false) it
 * starts with the agent name and the job's short id instead (`web1 #7D9K ✅ succeeded · \`uptime\``), so that
 * people can follow several jobs in one conversation.
 */
export function jobHeadline(
  job: { id: string; agentName: string; message: string; status: JobStatus; reason?: string | null },
  threads = true,
): string {
  const reason = job.reason && (job.status === 'expired' || job.status === 'canceled') ? ` (${job.reason})` : '';
  if (!threads) return `${job.agentName} #${shortJobId(job.id)} ${STATUS_MARK[job.status]} ${job.status}${reason} · ${quote(job.message)}`;
  return `${STATUS_MARK[job.status]} ${job.agentName}: ${quote(job.message)} — ${job.status}${reason} · job ${job.id}`;
}
