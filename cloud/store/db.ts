/** The MySQL connection pool and the transaction helper every repository uses. */
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { redactUrl } from '../../config';

/** Anything that runs SQL: the pool itself or one connection inside a transaction. */
export type Sql = Pool | PoolConnection;
export type { ResultSetHeader, RowDataPacket };

/** A pool on the configured database, plus the operations around it. */
export interface Db {
  pool: Pool;
  database: string;
  /** Runs fn in one transaction, committing on success and rolling back on error. */
  transaction<T>(fn: (conn: PoolConnection) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Splits a mysql:// URL into connection options and the database name. */
export function parseMysqlUrl(text: string): { options: mysql.PoolOptions; database: string } {
  const url = new URL(text);
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'skadi';
  if (!/^[\w$]+$/.test(database)) throw new Error(`invalid database name "${database}" in the MySQL URL`);
  return {
    database,
    options: {
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username || 'root'),
      password: decodeURIComponent(url.password),
    },
  };
}

/** Creates the database if it does not exist yet. */
export async function ensureDatabase(mysqlUrl: string): Promise<void> {
  const { options, database } = parseMysqlUrl(mysqlUrl);
  const conn = await mysql.createConnection({ ...options, connectTimeout: 5000 });
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end();
  }
}

/** Opens a pool on the database of the URL (which must exist). */
export function openDb(mysqlUrl: string, connectionLimit = 32): Db {
  const { options, database } = parseMysqlUrl(mysqlUrl);
  const pool = mysql.createPool({
    ...options,
    database,
    connectionLimit,
    maxIdle: 8,
    idleTimeout: 60_000,
    connectTimeout: 5000,
    timezone: 'Z',
    charset: 'utf8mb4',
    enableKeepAlive: true,
    // Skadi sends plain queries, never prepared statements: the default cache would reserve 16,000 slots (0.5 MB) per connection.
    maxPreparedStatements: 16,
  });
  return {
    pool,
    database,
    async transaction(fn) {
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        const result = await fn(conn);
        await conn.commit();
        return result;
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

/** A readable description of where the database is, without its password. */
export function describeMysql(mysqlUrl: string): string {
  return redactUrl(mysqlUrl);
}
