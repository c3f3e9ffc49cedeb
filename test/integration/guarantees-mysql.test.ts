/** docs/design.md "What is guaranteed", the MySQL side, over HTTP: an unconfirmed take, long polls through an outage, nodes migrating at once. */
import { spawn, type ChildProcess } from 'node:child_process';
import mysql from 'mysql2/promise';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { readMigrations } from '../../cloud/store/migrate';
import {
  dropNamespace,
  eventually,
  MYSQL_ROOT,
  openCore,
  openServer,
  redisEnv,
  testConfig,
  uniqueName,
  userWithAgent,
} from '../helpers/env';
import { call } from '../helpers/http';
import { ensureBuilt, ROOT, SKADI_BIN, stopChild } from '../helpers/process';
import { startProxy, type TcpProxy } from '../helpers/proxy';

const name = uniqueName();
let proxy: TcpProxy;
let core: Core;
let http: HttpServer;
let base: string;
let seq = 0;

beforeAll(async () => {
  await (await openCore(testConfig(name))).close(); // the schema, made directly; the server then reaches MySQL through the proxy
  proxy = await startProxy(Number(new URL(MYSQL_ROOT).port || 3306));
  const mysqlUrl = `mysql://root@127.0.0.1:${proxy.port}/${name}`;
  ({ core, http, base } = await openServer(testConfig(name, { mysqlUrl, sweepIntervalMs: 60_000, reconcileIntervalMs: 60_000 })));
});
afterAll(async () => {
  await http.close();
  await core.close();
  await proxy.close();
  await dropNamespace(name);
});

/** A fresh user and agent; the agent has polled once over HTTP, so it is online and its token is cached on the node. */
async function onlineAgent() {
  seq++;
  const made = await userWithAgent(core, `u${seq}`, `a${seq}`);
  expect((await call(base, 'GET', '/agent/job', { token: made.agentToken })).status).toBe(204);
  const push = async (text: string) => {
    const res = await call(base, 'POST', '/job/add', { token: made.userToken, body: { message: `${made.agent.name} ${text}` } });
    expect(res).toMatchObject({ status: 201, body: { status: 'queuing' } });
    return res.body.id as string;
  };
  return { ...made, push };
}

describe('guarantees on MySQL (over HTTP, MySQL behind a proxy)', () => {
  // With no wait the poll's time is up before its take ends: it must answer the take's error too, not 204.
  it.each(['/agent/job', '/agent/job?wait=5'])(
    'answers 503 to `GET %s` whose take MySQL did not confirm, queues the job again, and a later poll gets it',
    async (path) => {
      const { agentToken, push } = await onlineAgent();
      const id = await push('unconfirmed take');
      // The UPDATE (queuing → sent) commits; the connection breaks before its answer arrives.
      proxy.cutAfter("SET status = 'sent', take_id");
      const poll = await call(base, 'GET', path, { token: agentToken });
      expect(poll.status).toBe(503);
      expect(poll.body).toEqual({ error: 'Unavailable', message: 'A storage service is unavailable, please retry shortly.' });
      await eventually(
        async () => core.jobRepo.unconfirmedTakes === 0 && (await core.jobs.get(id, null)).status === 'queuing',
        10_000,
        'the take to be undone',
      );
      expect(await call(base, 'GET', '/agent/job?wait=10', { token: agentToken })).toMatchObject({
        status: 200,
        body: { id, message: 'unconfirmed take' },
      });
      expect((await core.jobs.get(id, null)).status).toBe('sent');
    },
  );

  it('accepts and holds long polls with a cached token through a MySQL outage; an uncached token gets 503', async () => {
    const { agentToken, userToken, agent } = await onlineAgent();
    const stranger = await userWithAgent(core, `u${++seq}`, `a${seq}`); // never polled: its token is not cached
    const before = call(base, 'GET', '/agent/job?wait=30', { token: agentToken });
    before.catch(() => undefined); // awaited below; a failure before that must not be an unhandled rejection
    await eventually(() => core.dispatcher.waiting === 1, 10_000, 'the first long poll to wait');
    proxy.cut();
    try {
      expect((await call(base, 'GET', '/readyz')).status).toBe(503);
      const startedAt = Date.now();
      const during = call(base, 'GET', '/agent/job?wait=5', { token: agentToken });
      during.catch(() => undefined);
      // Accepted (authenticated from the cache) and waiting, not answered 503 or 401.
      await eventually(() => core.dispatcher.waiting === 2, 10_000, 'the poll made during the outage to wait');
      expect(await call(base, 'GET', '/agent/job', { token: stranger.agentToken })).toMatchObject({
        status: 503,
        body: { error: 'Unavailable' },
      });
      expect((await during).status).toBe(204); // its wait ended with no job
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(4500);
    } finally {
      proxy.resume();
    }
    // The poll made before the outage waited through it and gets the first job pushed once MySQL is back.
    await eventually(async () => (await call(base, 'GET', '/readyz')).status === 200, 10_000, 'MySQL to come back');
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: `${agent.name} after the outage` } });
    expect(pushed.status).toBe(201);
    expect(await before).toMatchObject({ status: 200, body: { id: pushed.body.id, message: 'after the outage' } });
  });
});

describe('several nodes starting at once', () => {
  const fresh = uniqueName();
  const children: ChildProcess[] = [];

  /** Starts `skadi serve`; its child is kept at once, so that it is stopped even when it never listens. */
  function startNode(env: Record<string, string>): Promise<{ port: number; output: () => string }> {
    const child = spawn(process.execPath, [SKADI_BIN, 'serve'], {
      cwd: ROOT,
      env: { ...process.env, SKADI_PORT: '0', SKADI_HOST: '127.0.0.1', ...env },
    });
    children.push(child);
    let output = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`skadi serve did not start within 60 s:\n${output}`)), 60_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /"port":(\d+)[^\n]*listening/.exec(output);
        if (match) clearTimeout(timer), resolve({ port: Number(match[1]), output: () => output });
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`skadi serve exited with ${code}:\n${output}`))));
    });
  }

  afterAll(async () => {
    await Promise.all(children.map((child) => stopChild(child)));
    await dropNamespace(fresh);
  });

  it('starts 3 `skadi serve` processes on a fresh database together: each migration applied once, no error', async () => {
    ensureBuilt();
    const env = { SKADI_MYSQL_URL: `${MYSQL_ROOT}/${fresh}`, ...redisEnv(), SKADI_REDIS_PREFIX: `${fresh}:`, SKADI_LOG_LEVEL: 'info' };
    const started = await Promise.allSettled([startNode(env), startNode(env), startNode(env)]);
    expect(started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason))).toEqual([]);
    const nodes = started.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof startNode>>>).value);
    for (const node of nodes) expect((await call(`http://127.0.0.1:${node.port}`, 'GET', '/readyz')).status).toBe(200);
    const conn = await mysql.createConnection(`${MYSQL_ROOT}/${fresh}`);
    try {
      const [rows] = await conn.query('SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version ORDER BY version');
      expect((rows as { version: number; n: number }[]).map((r) => [Number(r.version), Number(r.n)])).toEqual(
        readMigrations().map((m) => [m.version, 1]),
      );
    } finally {
      await conn.end();
    }
    // Exactly one node applied each migration; no node logged an error.
    const applied = nodes.flatMap((node) =>
      node
        .output()
        .split('\n')
        .filter((line) => line.includes('applied migration')),
    );
    expect(applied).toHaveLength(readMigrations().length);
    for (const node of nodes) expect(node.output()).not.toMatch(/"level":(50|60)/);
  }, 90_000);
});
