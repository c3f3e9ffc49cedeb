/**
 * dispatch stages: where the time of an idle push → poll answer goes. A gateway runs in this process with its steps
 * timed from outside (methods of the core wrapped here, nothing in the product logs), the SDK agent long-polls it,
 * and jobs are pushed one after another over HTTP; each stage is the time since the previous mark.
 */
import pino from 'pino';
import { Agent } from '../agent/sdk';
import { loadConfig } from '../config';
import { createCore, type Core } from '../cloud/core';
import { startHttpServer } from '../agent-api/server';
import { withTimeout } from './verdict';
import { KeepAliveClient, Namespace, nowMs, percentile, round } from './harness';

/** The marks of one job, in the order they can happen; a path that skips a step has no mark for it. */
const MARKS = [
  'push_sent', // the client starts the request
  'auth_start', // the route runs: HTTP parsed, body read
  'auth_end',
  'insert_start', // validation, agent lookup, presence checked
  'insert_end', // the INSERT committed
  'redis_end', // Redis has the job (queued, or its lease when handed to a local poll) and its events: one round trip
  'wake', // the waiting poll was woken (pub/sub, or at once on the pushing node)
  'pop_end', // LPOP answered
  'take_commit_end', // queuing → sent committed in MySQL
  'take_end', // lease and event written to Redis: the poll's answer is being written
  'received', // the SDK's handler is called
] as const;
type Mark = (typeof MARKS)[number];

/** A stage: from one mark to the next one present. */
const STAGES: Record<string, [Mark, Mark]> = {
  http_parse: ['push_sent', 'auth_start'],
  auth: ['auth_start', 'auth_end'],
  push_checks: ['auth_end', 'insert_start'],
  insert_commit: ['insert_start', 'insert_end'],
  redis_write: ['insert_end', 'redis_end'],
  wake_up: ['redis_end', 'wake'],
  take: ['wake', 'pop_end'],
  take_commit: ['pop_end', 'take_commit_end'],
  lease_and_event: ['take_commit_end', 'take_end'],
  write: ['take_end', 'received'],
};

/** One stage's times over the run (ms); `jobs` is how many jobs went through it. */
export interface StageTimes {
  jobs: number;
  p50_ms: number;
  p99_ms: number;
}

/** The breakdown: total push → handler, and each stage. */
export interface DispatchStages {
  jobs: number;
  /** Jobs handed straight to the poll waiting on the pushing node (no queue, no wake-up, no take). */
  handed_to_local_poll: number;
  total_p50_ms: number;
  total_p99_ms: number;
  stages: Record<string, StageTimes>;
  /** The part of the total p50 that the stages' p50s account for (they need not add up exactly). */
  note: string;
}

/** Where a wrapped method sets marks: at its start, at its end, and only for calls about the job being timed. */
interface MarkAt {
  start?: Mark;
  end?: Mark;
  /** True when the call concerns the timed job (the previous job's report, or an empty take, must not mark). */
  concerns?: (args: unknown[], result: unknown) => boolean;
}

/** Wraps a method of an object so that its start and end set marks (only the first of each per job). */
function timeMethod(target: object, method: string, marks: () => Partial<Record<Mark, number>>, at: MarkAt): void {
  const host = target as Record<string, (...args: unknown[]) => unknown>;
  const original = host[method].bind(target);
  const set = (mark: Mark | undefined, args: unknown[], result: unknown) => {
    const m = marks();
    if (mark && m[mark] === undefined && (at.concerns?.(args, result) ?? true)) m[mark] = nowMs();
  };
  host[method] = (...args: unknown[]) => {
    set(at.start, args, undefined);
    const out = original(...args);
    if (at.end && out instanceof Promise) return out.then((value) => (set(at.end, args, value), value));
    return out;
  };
}

/** Pushes `jobs` jobs one after another to a long-polling SDK agent of an in-process gateway and times every stage. */
export async function benchDispatchStages(jobs: number, progress: (line: string) => void): Promise<DispatchStages> {
  const ns = new Namespace();
  const config = loadConfig({ env: ns.env({ SKADI_PORT: '0', SKADI_HOST: '127.0.0.1' }) });
  let core: Core | null = null;
  let agent: Agent | null = null;
  let server: Awaited<ReturnType<typeof startHttpServer>> | null = null;
  let client: KeepAliveClient | null = null;
  try {
    core = await createCore({ config, log: pino({ level: 'silent' }) });
    await core.startBackground();
    server = await startHttpServer(core);
    const base = `http://127.0.0.1:${server.port}`;
    client = new KeepAliveClient(base);
    let current: Partial<Record<Mark, number>> = {};
    const marks = () => current;
    let timedId = '';
    const hasId = (list: unknown) =>
      Array.isArray(list) &&
      list.some(
        (x) => x === timedId || (x as { id?: string; job_id?: string })?.id === timedId || (x as { job_id?: string })?.job_id === timedId,
      );
    timeMethod(core.users, 'authenticate', marks, { start: 'auth_start', end: 'auth_end' });
    timeMethod(core.jobRepo, 'insert', marks, {
      start: 'insert_start',
      end: 'insert_end',
      concerns: (args) => ((timedId = (args[0] as { id: string }[])[0].id), true),
    });
    // right after the enqueue and the job's event were written, in one round trip
    timeMethod(core.events, 'announce', marks, { start: 'redis_end', concerns: (args) => hasId(args[0]) });
    timeMethod(core.dispatcher, 'wake', marks, { start: 'wake' });
    timeMethod(core.queue, 'pop', marks, { end: 'pop_end', concerns: (_, ids) => hasId(ids) });
    timeMethod(core.jobRepo, 'markSent', marks, { end: 'take_commit_end', concerns: (_, rows) => hasId(rows) });
    timeMethod(core.jobs, 'take', marks, { end: 'take_end', concerns: (_, taken) => hasId(taken) });

    const { user, token: userToken } = await core.users.create('bench');
    const { agent: row, token } = await core.agents.create(user.id, 'bench1');
    let wake: (() => void) | null = null;
    const done = new Set<string>();
    agent = new Agent({ server: base, token, waitSeconds: 30 });
    const running = agent.start((job) => {
      current.received ??= nowMs();
      done.add(job.message);
      wake?.();
      return 'ok';
    });
    while (!(await core.agents.isOnline(row.id))) await new Promise((r) => setTimeout(r, 20));
    const runs: Partial<Record<Mark, number>>[] = [];
    for (let i = 0; i < jobs; i++) {
      const key = `job-${i}`;
      // The agent is idle: the previous job's report is in, its next poll waits, and that poll's first take is over.
      while (core.dispatcher.waiting < 1) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setTimeout(r, 2));
      timedId = '';
      current = { push_sent: nowMs() };
      const arrived = new Promise<void>((resolve) => (wake = () => done.has(key) && resolve()));
      const res = await client.request('POST', '/job/add', userToken, { message: `bench1 ${key}` });
      if (res.status !== 201) throw new Error(`push answered ${res.status}: ${res.body}`);
      if (!done.has(key)) await withTimeout(arrived, 30_000, `job ${key} to reach the agent`);
      runs.push(current);
      if ((i + 1) % 250 === 0) progress(`dispatch_stages: ${i + 1}/${jobs} jobs`);
    }
    await agent.stop();
    await running;
    agent = null;
    const stages: Record<string, StageTimes> = {};
    for (const [name, [from, to]] of Object.entries(STAGES)) {
      // From the latest mark present at or before `from`, so that a skipped step does not hide the time.
      const times = runs.flatMap((m) => {
        if (m[to] === undefined) return [];
        const earlier = MARKS.slice(0, MARKS.indexOf(from) + 1)
          .reverse()
          .find((k) => m[k] !== undefined);
        return earlier ? [m[to]! - m[earlier]!] : [];
      });
      if (times.length) stages[name] = { jobs: times.length, p50_ms: round(percentile(times, 50)), p99_ms: round(percentile(times, 99)) };
    }
    const totals = runs.map((m) => m.received! - m.push_sent!);
    return {
      jobs,
      handed_to_local_poll: runs.filter((m) => m.wake === undefined).length,
      total_p50_ms: round(percentile(totals, 50)),
      total_p99_ms: round(percentile(totals, 99)),
      stages,
      note: 'one gateway and the SDK agent in the bench process, timed by wrapping core methods; each stage runs from the previous mark present',
    };
  } finally {
    await agent?.stop();
    client?.close();
    await server?.close();
    await core?.close();
    await ns.drop();
  }
}
