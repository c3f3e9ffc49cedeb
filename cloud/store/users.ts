/** MySQL repository of users. */
import type { ResultSetHeader, RowDataPacket, Sql } from './db';

/** A user row. */
export interface UserRow {
  id: number;
  name: string;
  tokenHash: string;
  /** Random salt of the callback secret; null until the user has one (created before callback secrets). */
  callbackSalt: string | null;
  /** The chat account the current token was handed to; null when an admin's CLI made it, or nobody saw it. */
  tokenIssuedTo: number | null;
  createdAt: Date;
}

function toUser(row: RowDataPacket): UserRow {
  return {
    id: Number(row.id),
    name: row.name,
    tokenHash: row.token_hash,
    callbackSalt: row.callback_salt ?? null,
    tokenIssuedTo: row.token_issued_to == null ? null : Number(row.token_issued_to),
    createdAt: row.created_at,
  };
}

/** Users: create, find, list, rotate the token. */
export class UserRepo {
  constructor(private readonly sql: Sql) {}

  /** Inserts a user and returns its id. */
  async insert(name: string, tokenHash: string, callbackSalt: string, now: Date): Promise<number> {
    const [res] = await this.sql.query<ResultSetHeader>(
      'INSERT INTO users (name, token_hash, callback_salt, created_at) VALUES (?, ?, ?, ?)',
      [name, tokenHash, callbackSalt, now],
    );
    return res.insertId;
  }

  /** The user with this name (case-insensitive), if any. */
  async findByName(name: string): Promise<UserRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM users WHERE name = ?', [name]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  /** The user with this id, if any. */
  async findById(id: number): Promise<UserRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM users WHERE id = ?', [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  /** The user whose token has this hash, if any. */
  async findByTokenHash(hash: string): Promise<UserRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM users WHERE token_hash = ?', [hash]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  /** Every user, oldest first. */
  async list(): Promise<UserRow[]> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM users ORDER BY id');
    return rows.map(toUser);
  }

  /** Number of users. */
  async count(): Promise<number> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM users');
    return Number(rows[0].n);
  }

  /** Replaces the token hash of a user, recording the chat account the new token is handed to (null: an admin). */
  async setTokenHash(id: number, hash: string, issuedTo: number | null = null): Promise<void> {
    await this.sql.query('UPDATE users SET token_hash = ?, token_issued_to = ? WHERE id = ?', [hash, issuedTo, id]);
  }

  /** Replaces the callback salt of a user (a new callback secret). */
  async setCallbackSalt(id: number, salt: string): Promise<void> {
    await this.sql.query('UPDATE users SET callback_salt = ? WHERE id = ?', [salt, id]);
  }

  /** Gives a user a callback salt if it has none (safe when two run at once); returns the salt the user has. */
  async ensureCallbackSalt(id: number, salt: string): Promise<string | null> {
    await this.sql.query('UPDATE users SET callback_salt = ? WHERE id = ? AND callback_salt IS NULL', [salt, id]);
    return (await this.findById(id))?.callbackSalt ?? null;
  }
}
