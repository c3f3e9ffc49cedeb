/** MySQL repository of jobs; every status change is one conditional UPDATE or one transaction. */
import crypto from 'node:crypto';
import type { PoolConnection } from 'mysql2/promise';
import { Batcher } from './batcher';
import { COLUMN_CHARS, fitNullable, fitText } from './column-text';
import type { Db, ResultSetHeader, RowDataPacket, Sql } from './db';
import type { Credential } from '../approvals/credentials';

/** Every job status; see the lifecycle in README.md and docs/design.md. */
export type JobStatus = 'awaiting_approval' | 'queuing' | 'sent' | 'running' | 'succeeded' | 'failed' | 'expired' | 'canceled';

/** Statuses that never change again. */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'expired', 'canceled']);

/** True when a status never changes again. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** A job row. */
export interface JobRow {
  id: string;
  userId: number;
  agentId: number;
  agentName: string;
  message: string;
  source: string;
  origin: string | null;
  callback: string | null;
  status: JobStatus;
  result: string | null;
  reason: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  sentAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
  /** The identity key of the chat account that asked for the job (null: the API, the CLI, a delayed job). */
  requester: string | null;
  /** The credential that pushed the job, and the person behind it (null for jobs from before it was recorded). */
  pushedBy: Credential | null;
  approval: JobApproval | null;
  /** A delayed job released while its agent was offline: queued, it waits for the agent until then (delayed_wait). */
  waitUntil: Date | null;
}

/** A job's two-person approval (null when the job did not need one). */
export interface JobApproval {
  /** Past this time a job still awaiting approval expires. */
  until: Date | null;
  approvedBy: string | null;
  approvedAt: Date | null;
  deniedBy: string | null;
}

/** What is stored when a job is created. */
export type NewJob = Pick<JobRow, 'id' | 'userId' | 'agentId' | 'agentName' | 'message' | 'source' | 'origin' | 'callback' | 'reason'> & {
  /** `sent`: handed at once to a poll waiting on the pushing node (leaseUntil set), in the same commit. */
  status: 'queuing' | 'expired' | 'awaiting_approval' | 'sent';
  createdAt: Date;
  /** The lease of a job inserted as sent. */
  leaseUntil?: Date | null;
  requester?: string | null;
  pushedBy?: Credential | null;
  /** Set when the job awaits approval: when it expires. */
  approvalUntil?: Date | null;
  /** Set when a delayed job is queued for an offline agent: until when it waits (offline expiry spares it). */
  waitUntil?: Date | null;
};

/** What an approval or denial attempt found and did. */
export interface ApprovalOutcome {
  job: JobRow;
  changed: boolean;
  /** The approval came after the job's approval time: it was not approved (the sweep expires it). */
  late?: boolean;
}

/** The pushing credential of a job or delayed job row (pushed_by, pushed_by_identity). */
export function credentialOf(row: RowDataPacket): Credential | null {
  if (!row.pushed_by) return null;
  return { id: row.pushed_by, identityId: row.pushed_by_identity == null ? null : Number(row.pushed_by_identity) };
}

function toJob(row: RowDataPacket): JobRow {
  return {
    id: row.id,
    userId: Number(row.user_id),
    agentId: Number(row.agent_id),
    agentName: row.agent_name,
    message: row.message,
    source: row.source,
    origin: row.origin,
    callback: row.callback,
    status: row.status,
    result: row.result,
    reason: row.reason,
    leaseUntil: row.lease_until,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
    requester: row.requester ?? null,
    pushedBy: credentialOf(row),
    approval: row.approval_required
      ? {
          until: row.approval_until ?? null,
          approvedBy: row.approved_by ?? null,
          approvedAt: row.approved_at ?? null,
          deniedBy: row.denied_by ?? null,
        }
      : null,
    waitUntil: row.wait_until ?? null,
  };
}

/** A take waiting for its batch: job ids popped from one agent's queue. */
interface TakeInput {
  ids: string[];
  agentId: number;
  leaseMs: number;
}

/** A report waiting for its batch. */
interface ReportInput {
  id: string;
  agentId: number;
  status: 'running' | 'succeeded' | 'failed';
  result: string;
  leaseMs: number;
}

/** `agent_id = CASE id WHEN … END`: each job of a batch must belong to the agent that asked (the id list keeps the primary key in use). */
function ownerCheck(pairs: { id: string; agentId: number }[]): { sql: string; args: unknown[] } {
  return { sql: `agent_id = CASE id ${pairs.map(() => 'WHEN ? THEN ?').join(' ')} END`, args: pairs.flatMap((p) => [p.id, p.agentId]) };
}

/** A new job with its platform texts (who asked, where from, why) fitted to their columns. */
function fittedJob(job: NewJob): NewJob {
  return {
    ...job,
    source: fitText(job.source, COLUMN_CHARS.jobSource),
    reason: fitNullable(job.reason, COLUMN_CHARS.jobReason),
    requester: fitNullable(job.requester, COLUMN_CHARS.jobPerson),
  };
}

/** Most jobs a node remembers having queued (a take of them skips reading the rows back). */
const QUEUED_HERE_MAX = 10_000;
/** Most characters of job text those jobs may hold together (about 2 MB of strings). */
const QUEUED_HERE_MAX_CHARS = 1_000_000;

/** Batches stay well under MariaDB's default max_allowed_packet (16 MiB). */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Jobs: create, hand out, report, expire, cancel, list. Concurrent inserts, takes and reports are grouped into shared statements. */
export class JobRepo {
  /** Jobs this node inserted as queuing that no take has claimed yet, oldest first. */
  private readonly queuedHere = new Map<string, NewJob>();
  private queuedHereChars = 0;
  private readonly inserts = new Batcher<NewJob[], void>(
    (batches) => this.insertNow(batches.flat()).then(() => batches.map(() => undefined)),
    {
      maxWeight: MAX_BATCH_BYTES,
      weight: (jobs) => jobs.reduce((n, j) => n + j.message.length * 4 + 512, 0),
    },
  );
  private readonly takes = new Batcher<TakeInput, JobRow[]>((inputs) => this.markSentNow(inputs));
  private readonly reports = new Batcher<ReportInput, boolean>((inputs) => this.reportNow(inputs), {
    maxWeight: MAX_BATCH_BYTES,
    weight: (r) => Buffer.byteLength(r.result) + 256,
    conflicts: (r, batch) => batch.some((b) => b.id === r.id),
  });

  /** Takes whose UPDATE may have committed although its caller saw an error: nobody received those jobs. */
  private readonly unconfirmed = new Map<string, { id: string; agentId: number }[]>();
  private undoTimer: NodeJS.Timeout | null = null;
  constructor(
    private readonly db: Db,
    /** Called with the jobs of an unconfirmed take once they are queued again in MySQL (to queue them in Redis). */
    private readonly onReturned: (jobs: { id: string; agentId: number }[]) => void = () => undefined,
  ) {}

  /** Takes not yet undone (while MySQL stays unreachable). */
  get unconfirmedTakes(): number {
    return this.unconfirmed.size;
  }

  /** Inserts new jobs: in a transaction when given its connection, else grouped with concurrent inserts. */
  async insert(given: NewJob[], sql?: Sql): Promise<void> {
    if (given.length === 0) return;
    const jobs = given.map(fittedJob);
    if (sql) return this.insertNow(jobs, sql);
    await this.inserts.submit(jobs);
    for (const job of jobs) if (job.status === 'queuing' && !job.approvalUntil) this.remember(job);
  }

  /**
   * Keeps a job this node queued, until it is taken. Bounded in count and in characters (jobs nobody takes, for an
   * agent that stopped polling, must not fill the heap): past the bounds the oldest are forgotten, and are read back.
   */
  private remember(job: NewJob): void {
    this.queuedHere.set(job.id, job);
    this.queuedHereChars += job.message.length;
    while (this.queuedHere.size > QUEUED_HERE_MAX || this.queuedHereChars > QUEUED_HERE_MAX_CHARS)
      this.forget(this.queuedHere.keys().next().value!);
  }

  private forget(id: string): void {
    const job = this.queuedHere.get(id);
    if (!job) return;
    this.queuedHere.delete(id);
    this.queuedHereChars -= job.message.length;
  }

  /** The rows of a take that claimed exactly these jobs, when this node queued them all: they need not be read back. */
  private takenFromMemory(ids: string[], now: Date, leaseUntil: Date): Map<string, JobRow> | null {
    if (!ids.every((id) => this.queuedHere.has(id))) return null;
    const rows = new Map<string, JobRow>();
    for (const id of ids) {
      const job = this.queuedHere.get(id)!;
      rows.set(id, {
        id,
        userId: job.userId,
        agentId: job.agentId,
        agentName: job.agentName,
        message: job.message,
        source: job.source,
        origin: job.origin,
        callback: job.callback,
        status: 'sent',
        result: null,
        reason: job.reason,
        leaseUntil,
        createdAt: job.createdAt,
        sentAt: now,
        finishedAt: null,
        updatedAt: now,
        requester: job.requester ?? null,
        pushedBy: job.pushedBy ?? null,
        approval: null,
        waitUntil: job.waitUntil ?? null,
      });
    }
    return rows;
  }

  private async insertNow(jobs: NewJob[], sql: Sql = this.db.pool): Promise<void> {
    const rows = jobs.map((j) => [
      j.id,
      j.userId,
      j.agentId,
      j.agentName,
      j.message,
      j.source,
      j.origin,
      j.callback,
      j.status,
      j.reason,
      j.createdAt,
      j.status === 'expired' ? j.createdAt : null,
      j.createdAt,
      j.requester ?? null,
      j.approvalUntil ? 1 : 0,
      j.approvalUntil ?? null,
      j.status === 'sent' ? j.createdAt : null,
      j.leaseUntil ?? null,
      j.pushedBy?.id ?? null,
      j.pushedBy?.identityId ?? null,
      j.waitUntil ?? null,
    ]);
    await sql.query(
      'INSERT INTO jobs (id, user_id, agent_id, agent_name, message, source, origin, callback, status, reason, created_at, finished_at, updated_at, requester, approval_required, approval_until, sent_at, lease_until, pushed_by, pushed_by_identity, wait_until) VALUES ?',
      [rows],
    );
  }

  /** The job with this id, if any. */
  async get(id: string): Promise<JobRow | null> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id = ?', [id]);
    return rows[0] ? toJob(rows[0]) : null;
  }

  /** Marks queued jobs of an agent as sent; returns those that were still queued (the others are skipped). */
  markSent(ids: string[], agentId: number, leaseMs: number): Promise<JobRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.takes.submit({ ids, agentId, leaseMs });
  }

  /** One batch of takes: one conditional UPDATE claims the rows (and commits), the take id reads back exactly those. */
  private async markSentNow(inputs: TakeInput[]): Promise<JobRow[][]> {
    const now = new Date();
    const leaseUntil = new Date(now.getTime() + inputs[0].leaseMs);
    const takeId = crypto.randomBytes(8).toString('hex');
    const pairs = inputs.flatMap((t) => t.ids.map((id) => ({ id, agentId: t.agentId })));
    const owner = ownerCheck(pairs);
    const ids = pairs.map((p) => p.id);
    try {
      const [res] = await this.db.pool.query<ResultSetHeader>(
        `UPDATE jobs FORCE INDEX (PRIMARY) SET status = 'sent', take_id = ?, sent_at = ?, lease_until = ?, updated_at = ? WHERE id IN (?) AND ${owner.sql} AND status = 'queuing'`,
        [takeId, now, leaseUntil, now, ids, ...owner.args],
      );
      if (res.affectedRows === 0) return inputs.map(() => []);
      // Every job was claimed and this node queued them: their rows are known. Otherwise read back those this take has.
      let byId = res.affectedRows === ids.length ? this.takenFromMemory(ids, now, leaseUntil) : null;
      if (!byId) {
        const [rows] = await this.db.pool.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id IN (?) AND take_id = ?', [ids, takeId]);
        byId = new Map(rows.map((r) => [r.id as string, toJob(r)]));
      }
      for (const id of ids) this.forget(id);
      // An id queued twice (a take put back both by its caller and by its undo) is handed to one caller, once.
      const handed = new Set<string>();
      return inputs.map((t) => t.ids.flatMap((id) => (byId.has(id) && !handed.has(id) ? (handed.add(id), [byId.get(id)!]) : [])));
    } catch (err) {
      // The connection may have broken after the UPDATE committed: the callers answer an error, so nobody has
      // these jobs. Put back whatever this take claimed once MySQL answers, instead of letting the leases expire.
      this.unconfirmed.set(takeId, pairs);
      this.scheduleUndo(0);
      throw err;
    }
  }

  private scheduleUndo(ms: number): void {
    if (this.undoTimer) return;
    this.undoTimer = setTimeout(() => {
      this.undoTimer = null;
      void this.undoUnconfirmed();
    }, ms);
    this.undoTimer.unref();
  }

  /** Returns to the queue the jobs of unconfirmed takes that did commit (their take id is on the row); true when all are settled. */
  async undoUnconfirmed(): Promise<boolean> {
    for (const [takeId, pairs] of [...this.unconfirmed]) {
      try {
        const [res] = await this.db.pool.query<ResultSetHeader>(
          "UPDATE jobs FORCE INDEX (PRIMARY) SET status = 'queuing', take_id = NULL, sent_at = NULL, lease_until = NULL, updated_at = ? WHERE id IN (?) AND take_id = ? AND status = 'sent'",
          [new Date(), pairs.map((p) => p.id), takeId],
        );
        this.unconfirmed.delete(takeId);
        if (res.affectedRows > 0) this.onReturned(pairs);
      } catch {
        this.scheduleUndo(1000); // MySQL still unreachable
        return false;
      }
    }
    return true;
  }

  /** Several jobs by id (missing ones are left out). */
  async getMany(ids: string[]): Promise<Map<string, JobRow>> {
    if (ids.length === 0) return new Map();
    const [rows] = await this.db.pool.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id IN (?)', [ids]);
    return new Map(rows.map((r) => [r.id as string, toJob(r)]));
  }

  /** Puts sent jobs back in the queued state (the agent's connection closed before it could receive them); returns those put back. */
  async unsend(ids: string[], agentId: number, now: Date): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        "SELECT id FROM jobs WHERE id IN (?) AND agent_id = ? AND status = 'sent' FOR UPDATE",
        [ids, agentId],
      );
      const back = rows.map((r) => r.id as string);
      if (back.length) {
        await conn.query(
          "UPDATE jobs SET status = 'queuing', take_id = NULL, sent_at = NULL, lease_until = NULL, updated_at = ? WHERE id IN (?)",
          [now, back],
        );
      }
      return back;
    });
  }

  /** Records an agent's report on its sent or running job; false when the job is not in one of those states. */
  report(id: string, agentId: number, status: 'running' | 'succeeded' | 'failed', result: string, leaseMs: number): Promise<boolean> {
    return this.reports.submit({ id, agentId, status, result, leaseMs });
  }

  /** One batch of reports: one UPDATE with a CASE per column; the report id tells which rows it changed. */
  private async reportNow(inputs: ReportInput[]): Promise<boolean[]> {
    const now = new Date();
    const reportId = crypto.randomBytes(8).toString('hex');
    const cases = (value: (r: ReportInput) => unknown) => ({
      sql: `CASE id ${inputs.map(() => 'WHEN ? THEN ?').join(' ')} END`,
      args: inputs.flatMap((r) => [r.id, value(r)]),
    });
    const status = cases((r) => r.status);
    const result = cases((r) => r.result);
    const lease = cases((r) => (r.status === 'running' ? new Date(now.getTime() + r.leaseMs) : null));
    const finished = cases((r) => (r.status === 'running' ? null : now));
    const owner = ownerCheck(inputs);
    const [res] = await this.db.pool.query<ResultSetHeader>(
      `UPDATE jobs FORCE INDEX (PRIMARY) SET status = ${status.sql}, result = ${result.sql}, lease_until = ${lease.sql}, finished_at = ${finished.sql}, report_id = ?, updated_at = ?
       WHERE id IN (?) AND ${owner.sql} AND status IN ('sent', 'running')`,
      [...status.args, ...result.args, ...lease.args, ...finished.args, reportId, now, inputs.map((r) => r.id), ...owner.args],
    );
    if (res.affectedRows === 0) return inputs.map(() => false);
    if (res.affectedRows === inputs.length) return inputs.map(() => true);
    const [rows] = await this.db.pool.query<RowDataPacket[]>('SELECT id FROM jobs WHERE id IN (?) AND report_id = ?', [
      inputs.map((r) => r.id),
      reportId,
    ]);
    const changed = new Set(rows.map((r) => r.id as string));
    return inputs.map((r) => changed.has(r.id));
  }

  /** Expires a sent or running job whose lease has run out; returns it, or null when it was renewed or finished. */
  async expireLeased(id: string, now: Date, reason: string): Promise<JobRow | null> {
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>(
        "SELECT * FROM jobs WHERE id = ? AND status IN ('sent', 'running') AND lease_until <= ? FOR UPDATE",
        [id, now],
      );
      if (!rows[0]) return null;
      await this.setTerminal(conn, [id], 'expired', reason, now);
      return { ...toJob(rows[0]), status: 'expired' as const, reason, finishedAt: now, updatedAt: now };
    });
  }

  /**
   * Expires every queued job of an agent (it went offline or was removed); returns the expired jobs. With
   * `spareWaiting`, delayed jobs still within their wait for the agent (wait_until after now) are kept.
   */
  async expireQueuedOfAgent(agentId: number, reason: string, now: Date, conn?: PoolConnection, spareWaiting = false): Promise<JobRow[]> {
    const run = async (c: PoolConnection) => {
      const [rows] = await c.query<RowDataPacket[]>(
        `SELECT * FROM jobs WHERE agent_id = ? AND status IN ('queuing', 'awaiting_approval') ${spareWaiting ? 'AND (wait_until IS NULL OR wait_until <= ?)' : ''} FOR UPDATE`,
        spareWaiting ? [agentId, now] : [agentId],
      );
      if (rows.length === 0) return [];
      const jobs = rows.map(toJob);
      await this.setTerminal(
        c,
        jobs.map((j) => j.id),
        'expired',
        reason,
        now,
      );
      return jobs.map((j) => ({ ...j, status: 'expired' as const, reason, finishedAt: now, updatedAt: now }));
    };
    return conn ? run(conn) : this.db.transaction(run);
  }

  /** Expires the given jobs if they are still queued; returns those expired. */
  async expireQueued(ids: string[], reason: string, now: Date): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT * FROM jobs WHERE id IN (?) AND status = 'queuing' FOR UPDATE", [ids]);
      if (rows.length === 0) return [];
      const jobs = rows.map(toJob);
      await this.setTerminal(
        conn,
        jobs.map((j) => j.id),
        'expired',
        reason,
        now,
      );
      return jobs.map((j) => ({ ...j, status: 'expired' as const, reason, finishedAt: now, updatedAt: now }));
    });
  }

  /** Cancels a user's queued job; returns the job (with its status after the attempt) or null when not the user's. */
  async cancel(id: string, userId: number, now: Date): Promise<{ job: JobRow; canceled: boolean } | null> {
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id = ? AND user_id = ? FOR UPDATE', [id, userId]);
      if (!rows[0]) return null;
      const job = toJob(rows[0]);
      if (job.status !== 'queuing' && job.status !== 'awaiting_approval') return { job, canceled: false };
      await this.setTerminal(conn, [id], 'canceled', 'canceled by the owner', now);
      return {
        job: { ...job, status: 'canceled' as const, reason: 'canceled by the owner', finishedAt: now, updatedAt: now },
        canceled: true,
      };
    });
  }

  /**
   * Approves a job awaiting approval: it is queued (or expires at once when `online` says its agent is offline). Returns
   * the job as it is after the attempt; `changed` is false when it was no longer awaiting approval.
   */
  async approve(id: string, approver: string, now: Date, online: (agentId: number) => Promise<boolean>): Promise<ApprovalOutcome | null> {
    const by = fitText(approver, COLUMN_CHARS.jobPerson);
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id = ? FOR UPDATE', [id]);
      if (!rows[0]) return null;
      const job = toJob(rows[0]);
      if (job.status !== 'awaiting_approval') return { job, changed: false };
      if (job.approval?.until && job.approval.until <= now) return { job, changed: false, late: true };
      const up = await online(job.agentId);
      const status = up ? 'queuing' : 'expired';
      const reason = up ? null : 'agent offline';
      await conn.query(
        'UPDATE jobs SET status = ?, reason = ?, approved_by = ?, approved_at = ?, finished_at = ?, updated_at = ? WHERE id = ?',
        [status, reason, by, now, up ? null : now, now, id],
      );
      const approval = { ...job.approval!, approvedBy: by, approvedAt: now };
      return { job: { ...job, status, reason, approval, finishedAt: up ? null : now, updatedAt: now }, changed: true };
    });
  }

  /** Denies a job awaiting approval: it is canceled with the reason. */
  async deny(id: string, denier: string, why: string, now: Date): Promise<ApprovalOutcome | null> {
    const by = fitText(denier, COLUMN_CHARS.jobPerson);
    const reason = fitText(why, COLUMN_CHARS.jobReason);
    return this.db.transaction(async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT * FROM jobs WHERE id = ? FOR UPDATE', [id]);
      if (!rows[0]) return null;
      const job = toJob(rows[0]);
      if (job.status !== 'awaiting_approval') return { job, changed: false };
      await conn.query("UPDATE jobs SET status = 'canceled', reason = ?, denied_by = ?, finished_at = ?, updated_at = ? WHERE id = ?", [
        reason,
        by,
        now,
        now,
        id,
      ]);
      const approval = { ...job.approval!, deniedBy: by };
      return { job: { ...job, status: 'canceled' as const, reason, approval, finishedAt: now, updatedAt: now }, changed: true };
    });
  }

  /** Ids of jobs still awaiting approval past their time, oldest first. */
  async listApprovalOverdue(now: Date, limit: number): Promise<string[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT id FROM jobs WHERE status = 'awaiting_approval' AND approval_until <= ? ORDER BY approval_until LIMIT ?",
      [now, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Expires a job still awaiting approval past its time; null when it was decided (or expired) meanwhile. */
  async expireAwaiting(id: string, reason: string, now: Date): Promise<JobRow | null> {
    const [res] = await this.db.pool.query<ResultSetHeader>(
      "UPDATE jobs SET status = 'expired', reason = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = 'awaiting_approval' AND approval_until <= ?",
      [reason, now, now, id, now],
    );
    if (res.affectedRows !== 1) return null;
    return this.get(id);
  }

  /** A user's jobs awaiting approval whose id ends with `suffix` (a short id), newest first. */
  async findAwaitingBySuffix(userId: number, suffix: string): Promise<JobRow[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT * FROM jobs WHERE user_id = ? AND status = 'awaiting_approval' AND id LIKE ? ORDER BY id DESC LIMIT 10",
      [userId, `%${suffix.replace(/[%_\\]/g, '')}`],
    );
    return rows.map(toJob);
  }

  private async setTerminal(conn: PoolConnection, ids: string[], status: JobStatus, reason: string, now: Date): Promise<void> {
    await conn.query('UPDATE jobs SET status = ?, reason = ?, lease_until = NULL, finished_at = ?, updated_at = ? WHERE id IN (?)', [
      status,
      reason,
      now,
      now,
      ids,
    ]);
  }

  /** Recent jobs of a user (optionally of one agent), newest first. */
  async list(userId: number | null, agentId: number | null, limit: number): Promise<JobRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (userId !== null) where.push('user_id = ?'), args.push(userId);
    if (agentId !== null) where.push('agent_id = ?'), args.push(agentId);
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const [rows] = await this.db.pool.query<RowDataPacket[]>(`SELECT * FROM jobs ${clause} ORDER BY id DESC LIMIT ?`, [...args, limit]);
    return rows.map(toJob);
  }

  /** Ids of sent or running jobs whose lease ran out before `before`. */
  async listOverdue(before: Date, limit: number): Promise<string[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT id FROM jobs WHERE status IN ('sent', 'running') AND lease_until <= ? ORDER BY lease_until LIMIT ?",
      [before, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Sent and running jobs with their lease deadlines, after a given id (for rebuilding Redis). */
  async listLeased(afterId: string, limit: number): Promise<{ id: string; leaseUntil: Date }[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT id, lease_until FROM jobs WHERE status IN ('sent', 'running') AND id > ? ORDER BY id LIMIT ?",
      [afterId, limit],
    );
    return rows.map((r) => ({ id: r.id, leaseUntil: r.lease_until }));
  }

  /** Jobs that ended at or after a time, by id after a given id (to append their final events again). */
  async listFinishedSince(since: Date, afterId: string, limit: number): Promise<JobRow[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>('SELECT * FROM jobs WHERE finished_at >= ? AND id > ? ORDER BY id LIMIT ?', [
      since,
      afterId,
      limit,
    ]);
    return rows.map(toJob);
  }

  /** Queued jobs created before a time, oldest first, after a given id (for rebuilding and checking Redis queues). */
  async listQueuing(
    afterId: string,
    createdBefore: Date,
    limit: number,
  ): Promise<{ id: string; agentId: number; agentOnline: boolean; waitUntil: Date | null }[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT j.id, j.agent_id, j.wait_until, COALESCE(a.online, 0) AS online FROM jobs j LEFT JOIN agents a ON a.id = j.agent_id WHERE j.status = 'queuing' AND j.id > ? AND j.created_at <= ? ORDER BY j.id LIMIT ?",
      [afterId, createdBefore, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      agentId: Number(r.agent_id),
      agentOnline: Number(r.online) === 1,
      waitUntil: r.wait_until ?? null,
    }));
  }

  /** Queued jobs whose wait for their offline agent has ended (wait_until at or before now), oldest first. */
  async listWaitOver(now: Date, limit: number): Promise<{ id: string; agentId: number }[]> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT id, agent_id FROM jobs WHERE status = 'queuing' AND wait_until <= ? ORDER BY wait_until LIMIT ?",
      [now, limit],
    );
    return rows.map((r) => ({ id: r.id, agentId: Number(r.agent_id) }));
  }

  /** Ends the wait of queued jobs whose agent is back (they stay queued, and are expired like any job from now on). */
  async endWait(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.db.pool.query("UPDATE jobs SET wait_until = NULL WHERE id IN (?) AND status = 'queuing'", [ids]);
  }

  /** Number of jobs in each non-terminal status. */
  async countActive(): Promise<Record<string, number>> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>(
      "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('awaiting_approval', 'queuing', 'sent', 'running') GROUP BY status",
    );
    const counts: Record<string, number> = { awaiting_approval: 0, queuing: 0, sent: 0, running: 0 };
    for (const r of rows) counts[r.status] = Number(r.n);
    return counts;
  }
}
