/** Versioned SQL migrations: files NNN_name.sql applied in order, each recorded in schema_migrations. */
import fs from 'node:fs';
import path from 'node:path';
import type { Db, RowDataPacket } from './db';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Reads the migration files shipped with the code. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((file) => /^\d+_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const statements = text
        .split(/;\s*(?:\n|$)/)
        .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
        .filter(Boolean);
      return { version: Number(file.split('_')[0]), name: file.replace(/\.sql$/, ''), statements };
    });
}

/** Applies the migrations not applied yet; safe when several nodes start at once. Returns the names applied. */
export async function migrate(db: Db, onApply: (name: string) => void = () => undefined): Promise<string[]> {
  const conn = await db.pool.getConnection();
  try {
    // Named after the database: MariaDB's locks are server-wide, and other databases on the server need not wait.
    const [[lock]] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK(LEFT(CONCAT('skadi_migrate:', DATABASE()), 64), 60) AS got");
    if (lock.got !== 1) throw new Error('could not take the migration lock within 60 s (another node is migrating?)');
    await conn.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(190) NOT NULL, applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB',
    );
    const [rows] = await conn.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => Number(r.version)));
    const done: string[] = [];
    for (const migration of readMigrations()) {
      if (applied.has(migration.version)) continue;
      for (const statement of migration.statements) await conn.query(statement);
      await conn.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        migration.version,
        migration.name,
        new Date(),
      ]);
      onApply(migration.name);
      done.push(migration.name);
    }
    return done;
  } finally {
    await conn.query("SELECT RELEASE_LOCK(LEFT(CONCAT('skadi_migrate:', DATABASE()), 64))").catch(() => undefined);
    conn.release();
  }
}
