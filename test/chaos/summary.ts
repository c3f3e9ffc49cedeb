/** Each chaos run records what happened in .tmp/chaos/<run>.json; `npm run chaos` prints them together as one JSON object. */
import fs from 'node:fs';
import path from 'node:path';
import type { Core } from '../../cloud/core';
import { REDIS_CLUSTER } from '../helpers/env';
import type { CallbackSink } from './fleet';

const DIR = path.resolve(__dirname, '../../.tmp/chaos');

/** What one chaos run saw. */
export interface ChaosSummary {
  redis: 'server' | 'cluster';
  pushes: number;
  accepted: number;
  terminal: number;
  lost: number;
  executed: number;
  executed_twice: number;
  /** Accepted jobs whose final status event is in the stream at the end. */
  final_events_in_stream: number;
  /** Accepted jobs whose final status event a notifier delivered (a signed callback reached the sink). */
  events_delivered: number;
  /** Callbacks whose signature did not match the user's callback secret by the recipe of docs/notifications.md (must be 0). */
  callbacks_badly_signed: number;
  statuses: Record<string, number>;
  other_5xx: number;
  /** How the accepted jobs ended: "succeeded", "expired: <reason>", ... -> count. */
  outcomes: Record<string, number>;
  /** Numbers particular to the run (times, counts). */
  details: Record<string, number>;
}

/** Counts how the accepted jobs ended, by status and reason. */
async function outcomes(core: Core, accepted: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < accepted.length; i += 1000) {
    const [rows] = await core.db.pool.query('SELECT status, reason, COUNT(*) AS n FROM jobs WHERE id IN (?) GROUP BY status, reason', [
      accepted.slice(i, i + 1000),
    ]);
    for (const row of rows as { status: string; reason: string | null; n: number }[]) {
      const key = row.reason ? `${row.status}: ${row.reason}` : row.status;
      counts[key] = (counts[key] ?? 0) + Number(row.n);
    }
  }
  return counts;
}

/** Counts final status events per accepted job in the job status stream. */
export async function finalEvents(core: Core, accepted: string[]): Promise<number> {
  const wanted = new Set(accepted);
  const seen = new Set<string>();
  for (const [, fields] of await core.redis.xrange(core.keys.jobStatusStream, '-', '+')) {
    const event = JSON.parse(fields[fields.indexOf('data') + 1]);
    if (wanted.has(event.job_id) && ['succeeded', 'failed', 'expired', 'canceled'].includes(event.status)) seen.add(event.job_id);
  }
  return seen.size;
}

/** What a run observed, from which its summary is computed. */
export interface ChaosObservations {
  pushes: number;
  accepted: string[];
  /** Ids of the jobs terminal in MySQL at the end. */
  terminal: { has(id: string): boolean };
  executed: Map<string, number>;
  statuses: Map<number, number>;
  /** Where the accepted jobs' callbacks go. */
  sink: CallbackSink;
  /** More numbers of the run (times, counts) to record. */
  extra?: Record<string, number>;
}

/** How long to wait for the notifiers to deliver the final events of the terminal jobs. */
const DELIVERY_WAIT_MS = 30_000;

/** What MySQL and the streams know of some jobs (to explain an event that was not delivered). */
async function explain(core: Core, ids: string[]): Promise<string> {
  const [rows] = await core.db.pool.query('SELECT id, status, reason, updated_at FROM jobs WHERE id IN (?)', [ids]);
  const events = new Map<string, string[]>();
  for (const stream of [core.keys.jobStatusStream, `${core.keys.jobStatusStream}:dead`]) {
    for (const [entry, fields] of await core.redis.xrange(stream, '-', '+')) {
      const event = JSON.parse(fields[fields.indexOf('data') + 1] ?? '{}');
      if (ids.includes(event.job_id))
        events.set(event.job_id, [
          ...(events.get(event.job_id) ?? []),
          `${stream.endsWith(':dead') ? 'dead ' : ''}${entry} ${event.status}`,
        ]);
    }
  }
  return (rows as Record<string, unknown>[])
    .map((row) => `  ${JSON.stringify(row)} events: ${JSON.stringify(events.get(String(row.id)) ?? [])}`)
    .join('\n');
}

/** Waits for the final callbacks of the terminal jobs, computes the run's summary and writes it to .tmp/chaos/<run>[-cluster].json. */
export async function recordChaos(run: string, core: Core, seen: ChaosObservations): Promise<ChaosSummary> {
  const terminal = seen.accepted.filter((id) => seen.terminal.has(id));
  const deadline = Date.now() + DELIVERY_WAIT_MS;
  while (Date.now() < deadline && !terminal.every((id) => seen.sink.finals.has(id))) await new Promise((r) => setTimeout(r, 100));
  const summary: ChaosSummary = {
    redis: REDIS_CLUSTER ? 'cluster' : 'server',
    pushes: seen.pushes,
    accepted: seen.accepted.length,
    terminal: seen.accepted.filter((id) => seen.terminal.has(id)).length,
    lost: seen.accepted.filter((id) => !seen.terminal.has(id)).length,
    executed: seen.executed.size,
    executed_twice: [...seen.executed.values()].filter((n) => n > 1).length,
    final_events_in_stream: await finalEvents(core, seen.accepted),
    events_delivered: terminal.filter((id) => seen.sink.finals.has(id)).length,
    callbacks_badly_signed: seen.sink.forged(),
    statuses: Object.fromEntries(seen.statuses),
    other_5xx: [...seen.statuses].filter(([status]) => status >= 500 && status !== 503).reduce((n, [, count]) => n + count, 0),
    outcomes: seen.accepted.length ? await outcomes(core, seen.accepted) : {},
    details: seen.extra ?? {},
  };
  const undelivered = terminal.filter((id) => !seen.sink.finals.has(id)).slice(0, 5);
  if (undelivered.length) process.stdout.write(`${run}: final events not delivered, for example:\n${await explain(core, undelivered)}\n`);
  writeSummary(run, summary);
  return summary;
}

/** Writes a run's summary to .tmp/chaos/<run>[-cluster].json, where `npm run chaos` collects it. */
export function writeSummary(run: string, summary: object): void {
  fs.mkdirSync(DIR, { recursive: true });
  fs.writeFileSync(path.join(DIR, `${run}${REDIS_CLUSTER ? '-cluster' : ''}.json`), JSON.stringify(summary, null, 2));
}
