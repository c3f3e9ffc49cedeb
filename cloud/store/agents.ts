/** MySQL repository of agents. */
import type { PoolConnection } from 'mysql2/promise';
import type { ResultSetHeader, RowDataPacket, Sql } from './db';

/** An agent row. */
export interface AgentRow {
  id: number;
  userId: number;
  name: string;
  alias: string | null;
  tokenHash: string;
  available: boolean;
  online: boolean;
  lastIp: string | null;
  lastSeenAt: Date | null;
  createdAt: Date;
  /** Glob patterns of job texts that need a second person's approval (`deploy *`, `*`). */
  approvalPatterns: string[];
  /** The chat account the token was handed to; null when an admin's CLI made it. */
  tokenIssuedTo: number | null;
}

function toAgent(row: RowDataPacket): AgentRow {
  return {
    id: Number(row.id),
    userId: Number(row.user_id),
    name: row.name,
    alias: row.alias,
    tokenHash: row.token_hash,
    available: row.available === 1,
    online: row.online === 1,
    lastIp: row.last_ip,
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
    approvalPatterns: row.approval_patterns ? (JSON.parse(row.approval_patterns) as string[]) : [],
    tokenIssuedTo: row.token_issued_to == null ? null : Number(row.token_issued_to),
  };
}

/** Agents: create, find by token or name, presence flags. */
export class AgentRepo {
  constructor(private readonly sql: Sql) {}

  /** Inserts an agent and returns its id. */
  async insert(
    userId: number,
    name: string,
    alias: string | null,
    tokenHash: string,
    now: Date,
    issuedTo: number | null = null,
  ): Promise<number> {
    const [res] = await this.sql.query<ResultSetHeader>(
      'INSERT INTO agents (user_id, name, alias, token_hash, created_at, token_issued_to) VALUES (?, ?, ?, ?, ?, ?)',
      [userId, name, alias, tokenHash, now, issuedTo],
    );
    return res.insertId;
  }

  /** Replaces an agent's approval patterns (none: no approval needed); a request to clear them waiting in chat is dropped. */
  async setApprovalPatterns(id: number, patterns: string[]): Promise<void> {
    await this.sql.query('UPDATE agents SET approval_patterns = ?, approval_clear_by = NULL, approval_clear_until = NULL WHERE id = ?', [
      patterns.length ? JSON.stringify(patterns) : null,
      id,
    ]);
  }

  /**
   * A request from chat to clear an agent's patterns: clears them when another person's request is waiting (and not
   * past its time), else records this person's request. Each step is one conditional UPDATE, so two people at once
   * clear them once, and one person alone never does.
   */
  async requestClearPatterns(id: number, identityId: number, now: Date, until: Date): Promise<'cleared' | 'requested'> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [cleared] = await this.sql.query<ResultSetHeader>(
        'UPDATE agents SET approval_patterns = NULL, approval_clear_by = NULL, approval_clear_until = NULL WHERE id = ? AND approval_clear_by IS NOT NULL AND approval_clear_by <> ? AND approval_clear_until > ?',
        [id, identityId, now],
      );
      if (cleared.affectedRows > 0) return 'cleared';
      const [requested] = await this.sql.query<ResultSetHeader>(
        'UPDATE agents SET approval_clear_by = ?, approval_clear_until = ? WHERE id = ? AND (approval_clear_by IS NULL OR approval_clear_by = ? OR approval_clear_until <= ?)',
        [identityId, until, id, identityId, now],
      );
      if (requested.affectedRows > 0) return 'requested';
    }
    throw new Error(`the request to clear the patterns of agent ${id} kept changing`);
  }

  /** The agent whose token has this hash, if any. */
  async findByTokenHash(hash: string): Promise<AgentRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM agents WHERE token_hash = ?', [hash]);
    return rows[0] ? toAgent(rows[0]) : null;
  }

  /** The agent with this id, if any (read on a transaction's connection when given). */
  async findById(id: number, sql: Sql = this.sql): Promise<AgentRow | null> {
    const [rows] = await sql.query<RowDataPacket[]>('SELECT * FROM agents WHERE id = ?', [id]);
    return rows[0] ? toAgent(rows[0]) : null;
  }

  /** A user's agent by name or alias (case-insensitive), if any; a name match wins over an alias. */
  async findForUser(userId: number, nameOrAlias: string): Promise<AgentRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>(
      'SELECT * FROM agents WHERE user_id = ? AND (name = ? OR alias = ?) ORDER BY name = ? DESC LIMIT 1',
      [userId, nameOrAlias, nameOrAlias, nameOrAlias],
    );
    return rows[0] ? toAgent(rows[0]) : null;
  }

  /** A user's agents (all agents when userId is null), by name. */
  async list(userId: number | null): Promise<AgentRow[]> {
    const [rows] =
      userId === null
        ? await this.sql.query<RowDataPacket[]>('SELECT * FROM agents ORDER BY user_id, name')
        : await this.sql.query<RowDataPacket[]>('SELECT * FROM agents WHERE user_id = ? ORDER BY name', [userId]);
    return rows.map(toAgent);
  }

  /** Agents marked online in MySQL. */
  async listOnline(): Promise<AgentRow[]> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM agents WHERE online = 1');
    return rows.map(toAgent);
  }

  /** Deletes an agent. */
  async delete(id: number): Promise<void> {
    await this.sql.query('DELETE FROM agents WHERE id = ?', [id]);
  }

  /** Enables or disables an agent (a disabled agent's token is refused with 403). */
  async setAvailable(id: number, available: boolean): Promise<void> {
    await this.sql.query('UPDATE agents SET available = ? WHERE id = ?', [available, id]);
  }

  /** Replaces the token hash of an agent, recording the chat account the new token is handed to (null: an admin). */
  async setTokenHash(id: number, hash: string, issuedTo: number | null = null): Promise<void> {
    await this.sql.query('UPDATE agents SET token_hash = ?, token_issued_to = ? WHERE id = ?', [hash, issuedTo, id]);
  }

  /** Locks an agent row inside a transaction and returns it (null when it is gone). Use the transaction's connection only. */
  async lock(conn: PoolConnection, id: number): Promise<AgentRow | null> {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT * FROM agents WHERE id = ? FOR UPDATE', [id]);
    return rows[0] ? toAgent(rows[0]) : null;
  }

  /** Marks an agent online if it was not; true when this call changed it (so the caller announces it). */
  async markOnline(id: number, at: Date): Promise<boolean> {
    const [res] = await this.sql.query<ResultSetHeader>('UPDATE agents SET online = 1, last_seen_at = ? WHERE id = ? AND online = 0', [
      at,
      id,
    ]);
    return res.affectedRows === 1;
  }

  /** Sets the online flag (and last seen time when given). */
  async setOnline(sql: Sql, id: number, online: boolean, lastSeenAt: Date | null): Promise<void> {
    if (lastSeenAt) await sql.query('UPDATE agents SET online = ?, last_seen_at = ? WHERE id = ?', [online, lastSeenAt, id]);
    else await sql.query('UPDATE agents SET online = ? WHERE id = ?', [online, id]);
  }

  /** Records the last poll time and address of several agents in one statement per 500. */
  async recordSeen(entries: { id: number; at: Date; ip: string | null }[]): Promise<void> {
    for (let i = 0; i < entries.length; i += 500) {
      const chunk = entries.slice(i, i + 500);
      const seenCases = chunk.map(() => 'WHEN ? THEN ?').join(' ');
      const ipCases = chunk.map(() => 'WHEN ? THEN COALESCE(?, last_ip)').join(' ');
      await this.sql.query(`UPDATE agents SET last_seen_at = CASE id ${seenCases} END, last_ip = CASE id ${ipCases} END WHERE id IN (?)`, [
        ...chunk.flatMap((e) => [e.id, e.at]),
        ...chunk.flatMap((e) => [e.id, e.ip]),
        chunk.map((e) => e.id),
      ]);
    }
  }
}
