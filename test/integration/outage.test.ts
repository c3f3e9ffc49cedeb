/** MySQL or Redis unreachable: 503 Unavailable (never a 500, never a 201 for an unstored job), and recovery without a restart. */
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import {
  dropNamespace,
  eventually,
  MYSQL_ROOT,
  openCore,
  openServer,
  readStream,
  testConfig,
  uniqueName,
  userWithAgent,
} from '../helpers/env';
import { call } from '../helpers/http';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import { startProxy, type TcpProxy } from '../helpers/proxy';

const name = uniqueName();
let mysqlProxy: TcpProxy;
let redis: PrivateRedis;
let core: Core;
let http: HttpServer;
let base: string;
let userToken: string;
let agentToken: string;

beforeAll(async () => {
  // Create the schema directly, then run the server through proxies that the tests cut.
  const direct = await openCore(testConfig(name));
  ({ userToken, agentToken } = await userWithAgent(direct, 'ops', 'web1'));
  await direct.close();
  mysqlProxy = await startProxy(Number(new URL(MYSQL_ROOT).port || 3306));
  redis = await startPrivateRedis();
  ({ core, http, base } = await openServer(
    testConfig(name, { mysqlUrl: `mysql://root@127.0.0.1:${mysqlProxy.port}/${name}`, ...redis.overrides }),
  ));
  expect((await call(base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204);
});
afterAll(async () => {
  await http.close();
  await core.close();
  await mysqlProxy.close();
  await redis.stop();
  await dropNamespace(name);
});

describe('dependency outages', () => {
  it('answers 503 while Redis is down and recovers by itself, empty', async () => {
    redis.kill('all');
    try {
      // Once the node has seen its connection go (a poll just after another may not ask Redis at all before):
      await eventually(() => core.redis.status !== 'ready', 5000, 'the node to notice that Redis is gone');
      expect(await call(base, 'GET', '/agent/job', { token: agentToken })).toMatchObject({ status: 503, body: { error: 'Unavailable' } });
      expect((await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 ls' } })).status).toBe(503);
      expect((await call(base, 'GET', '/readyz')).status).toBe(503);
      expect((await call(base, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await redis.restart();
    }
    await eventually(async () => (await call(base, 'GET', '/readyz')).status === 200, 10_000, 'Redis to come back');
    // A cluster client may reconnect once more while the restarted masters agree on the cluster state.
    await eventually(
      async () => (await call(base, 'GET', '/agent/job', { token: agentToken })).status === 204,
      10_000,
      'polls to work again',
    );
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 ls' } });
    expect(pushed.status).toBe(201);
    expect((await call(base, 'GET', '/agent/job', { token: agentToken })).body.id).toBe(pushed.body.id);
  });

  it('appends the event of a change committed while Redis was down once Redis is back', async () => {
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 report-while-redis-is-down' } });
    expect(pushed.status).toBe(201);
    expect((await call(base, 'GET', '/agent/job', { token: agentToken })).body.id).toBe(pushed.body.id);
    redis.kill('all');
    try {
      // MySQL records the result; the event cannot be appended now, so the agent is told to retry (it may not).
      const report = await call(base, 'PUT', `/agent/jobs/${pushed.body.id}/succeed`, { token: agentToken, body: { result: 'done' } });
      expect(report.status).toBe(503);
      expect((await core.jobs.get(pushed.body.id, null)).status).toBe('succeeded');
    } finally {
      await redis.restart();
    }
    // Nobody reports again. Once Redis is rebuilt (its markers are back) and nothing is kept any more, the
    // event is in the new stream exactly once: replayed by the rebuild, which drops the kept copy it covers.
    const events = await eventually(
      async () => {
        if (core.events.unsentCount > 0 || !(await core.queue.hasEpoch().catch(() => false))) return false;
        const found = (await readStream(core, core.keys.jobStatusStream).catch(() => []))
          .filter((e) => e.job_id === pushed.body.id)
          .map((e) => e.status);
        return found.includes('succeeded') && found;
      },
      15_000,
      'the kept event to be appended after the rebuild',
    );
    expect(events).toEqual(['succeeded']); // the stream was lost with Redis; the event is appended to the new one once
  });

  it('answers 503 (never 201) to pushes while MySQL is down, and recovers by itself', async () => {
    mysqlProxy.cut();
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 5; i++)
        statuses.push((await call(base, 'POST', '/job/add', { token: userToken, body: { message: `web1 during ${i}` } })).status);
      expect((await call(base, 'GET', '/readyz')).status).toBe(503);
    } finally {
      mysqlProxy.resume();
    }
    // User tokens are checked in MySQL, so every push during the outage must fail with 503 and store nothing.
    expect(statuses).toEqual([503, 503, 503, 503, 503]);
    await eventually(async () => (await call(base, 'GET', '/readyz')).status === 200, 10_000, 'MySQL to come back');
    const after = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 after' } });
    expect(after.status).toBe(201);
    const jobs = await core.jobs.list(null, null, 100);
    expect(jobs.some((j) => j.message.startsWith('during'))).toBe(false);
  });
});
