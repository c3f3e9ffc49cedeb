/** Each chaos run records what happened in .tmp/chaos/<run>.json; `npm run chaos` prints them together as one JSON object. */
import fs from 'node:fs';
import path from 'node:path';
import type { Core } from '../../cloud/core';

const DIR = path.resolve(__dirname, '../../.tmp/chaos');

/** What one chaos run saw. */
export interface ChaosSummary {
  pushes: number;
  accepted: number;
  terminal: number;
  lost: number;
  executed: number;
  executed_twice: number;
  /** Final status events in the stream for accepted jobs (the stream itself is lost with Redis in the Redis run). */
  final_events: number;
  statuses: Record<string, number>;
  other_5xx: number;
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
}

/** Computes a run's summary and writes it to .tmp/chaos/<run>.json. */
export async function recordChaos(run: string, core: Core, seen: ChaosObservations): Promise<ChaosSummary> {
  const summary: ChaosSummary = {
    pushes: seen.pushes,
    accepted: seen.accepted.length,
    terminal: seen.accepted.filter((id) => seen.terminal.has(id)).length,
    lost: seen.accepted.filter((id) => !seen.terminal.has(id)).length,
    executed: seen.executed.size,
    executed_twice: [...seen.executed.values()].filter((n) => n > 1).length,
    final_events: await finalEvents(core, seen.accepted),
    statuses: Object.fromEntries(seen.statuses),
    other_5xx: [...seen.statuses].filter(([status]) => status >= 500 && status !== 503).reduce((n, [, count]) => n + count, 0),
  };
  fs.mkdirSync(DIR, { recursive: true });
  fs.writeFileSync(path.join(DIR, `${run}.json`), JSON.stringify(summary, null, 2));
  return summary;
}
