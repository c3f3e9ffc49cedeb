/** MySQL repository of delayed jobs; a delayed job becomes a job with the same id when it is due. */
import { COLUMN_CHARS, fitNullable, fitText } from './column-text';
import type { Db, RowDataPacket, Sql } from './db';
import type { Credential } from '../approvals/credentials';
import { credentialOf } from './jobs';

/** A delayed job row. */
export interface DelayedJobRow {
  id: string;
  userId: number;
  agentId: number;
  message: string;
  source: string;
  origin: string | null;
  callback: string | null;
  dueAt: Date;
  releasedAt: Date | null;
  createdAt: Date;
  /** The chat account that asked; the job keeps it when it is released (it may not approve its own job). */
  requester: string | null;
  /** The credential that asked for it; the job keeps it. */
  pushedBy: Credential | null;
}

function toDelayed(row: RowDataPacket): DelayedJobRow {
  return {
    id: row.id,
    userId: Number(row.user_id),
    agentId: Number(row.agent_id),
    message: row.message,
    source: row.source,
    origin: row.origin,
    callback: row.callback,
    dueAt: row.due_at,
    releasedAt: row.released_at,
    createdAt: row.created_at,
    requester: row.requester ?? null,
    pushedBy: credentialOf(row),
  };
}

/** Delayed jobs: create, lock and release, list pending. */
export class DelayedJobRepo {
  constructor(private readonly db: Db) {}

  /** Stores a delayed job. */
  async insert(job: Omit<DelayedJobRow, 'releasedAt'>): Promise<void> {
    await this.db.pool.query(
      'INSERT INTO delayed_jobs (id, user_id, agent_id, message, source, origin, callback, due_at, created_at, requester, pushed_by, pushed_by_identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [
        job.id,
        job.userId,
        job.agentId,
        job.message,
        fitText(job.source, COLUMN_CHARS.jobSource),
        job.origin,
        job.callback,
        job.dueAt,
        job.createdAt,
        fitNullable(job.requester, COLUMN_CHARS.jobPerson),
        job.pushedBy?.id ?? null,
        job.pushedBy?.identityId ?? null,
      ],
    );
  }

  /** Locks an unreleased delayed job inside a transaction; null when already released. */
  async lockPending(sql: Sql, id: string): Promise<DelayedJobRow | null> {
    const [rows] = await sql.query<RowDataPacket[]>('SELECT * FROM delayed_jobs WHERE id = ? AND released_at IS NULL FOR UPDATE', [id]);
    return rows[0] ? toDelayed(rows[0]) : null;
  }

  /** Marks a delayed job locked by lockPending as released (it has become a job). */
  async markReleased(sql: Sql, id: string, now: Date): Promise<void> {
    await sql.query('UPDATE delayed_jobs SET released_at = ? WHERE id = ?', [now, id]);
  }

  /** Unreleased delayed jobs after a given id, with their due times (for rebuilding Redis and catching missed ones). */
  async listPending(afterId: string, dueBefore: Date | null, limit: number): Promise<{ id: string; dueAt: Date }[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      `SELECT id, due_at FROM delayed_jobs WHERE released_at IS NULL AND id > ? ${dueBefore ? 'AND due_at <= ?' : ''} ORDER BY id LIMIT ?`,
      dueBefore ? [afterId, dueBefore, limit] : [afterId, limit],
    );
    return rows.map((r) => ({ id: r.id, dueAt: r.due_at }));
  }
}
