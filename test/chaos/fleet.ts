/** What the chaos tests share: their setup and teardown, a free port, a callback sink, and a fleet of SDK agents that record every job they run. */
import http from 'node:http';
import { signedWith } from '../helpers/callback-recipe';
import net from 'node:net';
import { Agent } from '../../agent/sdk';
import { Namespace, type Served } from '../../bench/harness';
import type { Core } from '../../cloud/core';
import { eventually } from '../helpers/env';
import { ensureBuilt } from '../helpers/process';

/** `npm run chaos` runs the full-size runs (SKADI_CHAOS_FULL=1); `npm test` runs shorter ones. */
export const FULL = process.env.SKADI_CHAOS_FULL === '1';

/** What a chaos test file starts, torn down after its tests in this order: nodes, core, `also`, sink, namespace. */
export interface ChaosRun {
  ns: Namespace;
  /** Started before the tests run. */
  sink: CallbackSink;
  nodes: Served[];
  core?: Core;
  /** Teardown of what the file added itself (a proxy, a private Redis). */
  also: (() => Promise<void>)[];
}

/** Registers the setup and teardown every chaos test file shares. */
export function chaosRun(): ChaosRun {
  // The callback sink listens on loopback, which callbacks may reach only when allowed.
  const run = { ns: new Namespace({ SKADI_CALLBACK_ALLOW: SINK_HOST }), nodes: [], also: [] } as Omit<ChaosRun, 'sink'> & {
    sink?: CallbackSink;
  };
  beforeAll(async () => {
    ensureBuilt();
    run.sink = await startCallbackSink();
  }, 120_000);
  afterAll(async () => {
    for (const node of run.nodes) await node.stop();
    await run.core?.close();
    for (const teardown of run.also) await teardown();
    await run.sink?.close();
    await run.ns.drop();
  });
  return run as ChaosRun;
}

/** A free TCP port on loopback (for a process that must come back on the same port). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Agents of one user, spread over the given servers, counting how often each job id ran. */
export interface Fleet {
  names: string[];
  /** job id -> times executed (more than 1 would break "at most once"). */
  executed: Map<string, number>;
  stop(): Promise<void>;
}

/** Creates `count` agents for the user and starts them (agent i talks to servers[i % servers.length]); resolves once all are online. */
export async function startFleet(core: Core, userId: number, prefix: string, count: number, servers: string[]): Promise<Fleet> {
  const executed = new Map<string, number>();
  const names: string[] = [];
  const agents: Agent[] = [];
  const runs: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const { agent, token } = await core.agents.create(userId, `${prefix}${i}`);
    names.push(agent.name);
    const sdk = new Agent({ server: servers[i % servers.length], token, waitSeconds: 5, backoff: { minMs: 100, maxMs: 800 } });
    agents.push(sdk);
    runs.push(
      sdk.start((job) => {
        executed.set(job.id, (executed.get(job.id) ?? 0) + 1);
        return 'done';
      }),
    );
  }
  await eventually(async () => (await core.queue.onlineCount()) === count, 15_000, 'agents online');
  return {
    names,
    executed,
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    },
  };
}

/** An HTTP endpoint receiving job callbacks: it records, per job, how many final status callbacks arrived. */
export interface CallbackSink {
  url: string;
  /** job id -> final (terminal status) callbacks received and signed with the trusted secret; more than one is allowed (at least once). */
  finals: Map<string, number>;
  /** Callbacks whose signature did not match the trusted secret (never counted in finals). */
  forged(): number;
  /** The callback secret whose signatures count (the recipe of docs/notifications.md, checked by hand); none count before. */
  trust(secret: string): void;
  /** While held, callbacks are not answered (a notifier that reads them keeps them pending); release() answers them all. */
  hold(): void;
  release(): void;
  /** Callbacks waiting for an answer while held. */
  held(): number;
  close(): Promise<void>;
}

const FINAL = new Set(['succeeded', 'failed', 'expired', 'canceled']);
/** Where the callback sink listens. */
const SINK_HOST = '127.0.0.1';

/** Starts a callback sink on a free loopback port. */
export async function startCallbackSink(): Promise<CallbackSink> {
  const finals = new Map<string, number>();
  let secret: string | null = null;
  let forged = 0;
  let holding = false;
  const waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const signed = (body: string) => secret !== null && signedWith({ headers: req.headers, body }, secret);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const answer = () => {
        if (res.destroyed) return; // the caller died while we held its callback: it was not delivered
        const event = JSON.parse(body) as { id: string; status: string };
        if (!signed(body)) forged++;
        else if (FINAL.has(event.status)) finals.set(event.id, (finals.get(event.id) ?? 0) + 1);
        res.end('ok');
      };
      if (holding) waiting.push(answer);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, SINK_HOST, resolve));
  return {
    url: `http://${SINK_HOST}:${(server.address() as net.AddressInfo).port}/callback`,
    finals,
    forged: () => forged,
    trust: (key) => void (secret = key),
    hold: () => void (holding = true),
    release() {
      holding = false;
      for (const answer of waiting.splice(0)) answer();
    },
    held: () => waiting.length,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What a run of pushes saw: the ids accepted (201) and how often each status came back (0: no answer). */
export interface Pushed {
  accepted: string[];
  statuses: Map<number, number>;
}

/** Options of pushJobs. */
export interface PushLoopOptions {
  count: number;
  /** Pushes in flight at once. */
  concurrency: number;
  /** Sends push i; a rejected promise counts as status 0 (the node did not answer). */
  push(i: number): Promise<{ status: number; body: string }>;
  /** Runs (and is awaited) before push i is sent: where a test breaks something. */
  before?(i: number): Promise<void> | void;
  /** Pause after each group of pushes, to spread the run over time. */
  pauseMs?: number;
}

/** Sends count pushes, concurrency at a time, and collects what came back. */
export async function pushJobs(options: PushLoopOptions): Promise<Pushed> {
  const accepted: string[] = [];
  const statuses = new Map<number, number>();
  for (let start = 0; start < options.count; start += options.concurrency) {
    const group = Array.from({ length: Math.min(options.concurrency, options.count - start) }, (_, k) => start + k);
    for (const i of group) await options.before?.(i);
    await Promise.all(
      group.map(async (i) => {
        const res = await options.push(i).catch(() => ({ status: 0, body: '' }));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 201) accepted.push(JSON.parse(res.body).id);
      }),
    );
    if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
  }
  return { accepted, statuses };
}

/**
 * Waits until every accepted job is terminal in MySQL, or the time is up; returns job id -> status of the jobs terminal
 * by then. It never throws for jobs that did not end: the summary counts them as lost, and the test's check fails.
 */
export async function waitTerminal(core: Core, accepted: string[], timeoutMs = 90_000): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [rows] = await core.db.pool.query("SELECT id, status FROM jobs WHERE status IN ('succeeded', 'failed', 'expired', 'canceled')");
    const terminal = new Map((rows as { id: string; status: string }[]).map((r) => [r.id, r.status]));
    if (accepted.every((id) => terminal.has(id)) || Date.now() >= deadline) return terminal;
    await new Promise((r) => setTimeout(r, 200));
  }
}
