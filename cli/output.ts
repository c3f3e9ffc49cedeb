/** How CLI commands print: a table for people, JSON with --json, and one-line errors. */
import { ConfigError } from '../config';
import { StartupError } from '../cloud/core';
import { SkadiError } from '../cloud/errors';

/** Prints rows as an aligned table (or "none"). */
export function printTable(rows: Record<string, unknown>[], empty = '(none)'): void {
  if (rows.length === 0) {
    console.log(empty);
    return;
  }
  const columns = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v)).replace(/\s+/g, ' ');
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.slice(0, 60).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const row of rows) console.log(line(columns.map((c) => cell(row[c]))));
}

/** Prints a value as JSON or via the human printer. */
export function emit(json: boolean, value: unknown, human: () => void): void {
  if (json) console.log(JSON.stringify(value, null, 2));
  else human();
}

/** Prints an error as one line and returns the exit code: 2 for configuration and start-up problems, 1 otherwise. */
export function reportError(err: unknown): number {
  if (err instanceof ConfigError || err instanceof StartupError) {
    console.error(`skadi: ${err.message}`);
    return 2;
  }
  if (err instanceof SkadiError) {
    console.error(`skadi: ${err.message}`);
    return 1;
  }
  console.error(`skadi: ${(err as Error)?.stack ?? err}`);
  return 1;
}
