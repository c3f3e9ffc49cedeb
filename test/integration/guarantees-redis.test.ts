/** docs/design.md "What is guaranteed", the Redis side, over HTTP: vanished polls, Redis failing after a commit, lost presence, kept events. */
import net from 'node:net';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import {
  deleteRedisPrefix,
  dropNamespace,
  eventually,
  openServer,
  readStream,
  REDIS_CLUSTER,
  REDIS_URL,
  testConfig,
  uniqueName,
  userWithAgent,
} from '../helpers/env';
import { call } from '../helpers/http';
import { startProxy, type TcpProxy } from '../helpers/proxy';

interface Node {
  name: string;
  core: Core;
  http: HttpServer;
  base: string;
}

// No background repair during a test: a rebuild would restore presence, a reconciliation would mark agents offline.
const quiet = { sweepIntervalMs: 60_000, reconcileIntervalMs: 60_000 };
let direct: Node;
let seq = 0;

beforeAll(async () => {
  const name = uniqueName();
  direct = { name, ...(await openServer(testConfig(name, quiet))) };
});
afterAll(async () => {
  await direct.http.close();
  await direct.core.close();
  await dropNamespace(direct.name);
});

/** A fresh user and agent on a node; the agent has polled once over HTTP, so it is online (in Redis and MySQL). */
async function onlineAgent(node: Node) {
  seq++;
  const made = await userWithAgent(node.core, `u${seq}`, `a${seq}`);
  expect((await call(node.base, 'GET', '/agent/job', { token: made.agentToken })).status).toBe(204);
  const push = async (text: string) => {
    const res = await call(node.base, 'POST', '/job/add', { token: made.userToken, body: { message: `${made.agent.name} ${text}` } });
    expect(res).toMatchObject({ status: 201, body: { status: 'queuing' } });
    return res.body.id as string;
  };
  return { ...made, push };
}

/** The statuses of one job's events in the stream, in stream order. */
async function statusEvents(core: Core, jobId: string): Promise<string[]> {
  return (await readStream(core, core.keys.jobStatusStream)).filter((e) => e.job_id === jobId).map((e) => e.status);
}

describe('guarantees on Redis (over HTTP)', () => {
  it('puts back (or never hands out) the job of a long poll whose client vanished; a later poll gets it', async () => {
    const { agentToken, push } = await onlineAgent(direct);
    const socket = net.connect(direct.http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET /agent/job?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agentToken}\r\n\r\n`);
    await eventually(() => direct.core.dispatcher.waiting === 1, 10_000, 'the raw long poll to wait');
    socket.destroy();
    const id = await push('for the vanished poll'); // at once: the take may race with the server noticing the close
    await eventually(() => direct.core.dispatcher.waiting === 0, 10_000, 'the vanished poll to end');
    expect(await call(direct.base, 'GET', '/agent/job?wait=10', { token: agentToken })).toMatchObject({
      status: 200,
      body: { id, message: 'for the vanished poll' },
    });
    expect((await direct.core.jobs.get(id, null)).status).toBe('sent');
    // Either it was never taken for the vanished poll, or it was taken and put back before the later poll got it.
    expect([
      ['queuing', 'sent'],
      ['queuing', 'sent', 'queuing', 'sent'],
    ]).toContainEqual(await statusEvents(direct.core, id));
  });

  it('queues (not expires) a push while Redis lost the presence of an agent MySQL knows is online, and the agent gets it', async () => {
    const { agent, agentToken, push } = await onlineAgent(direct);
    expect((await direct.core.agents.list(agent.userId))[0].online).toBe(true); // MySQL's online flag
    // Redis loses this installation's data (every key, on every master); the rebuild, which would restore presence from
    // MySQL, has not run yet.
    await deleteRedisPrefix(`${direct.name}:`);
    expect(await direct.core.queue.lastSeen(agent.id)).toBeNull();
    expect(await direct.core.queue.hasEpoch()).toBe(false);
    const id = await push('after Redis lost presence'); // 201 with status queuing
    expect(await call(direct.base, 'GET', '/agent/job?wait=10', { token: agentToken })).toMatchObject({ status: 200, body: { id } });
  });
});

// A TCP proxy cannot stand in front of a Redis Cluster (the client connects to the addresses the cluster announces):
// these run on one Redis server only; the cluster project skips them.
const describeOneServer = REDIS_CLUSTER ? describe.skip : describe;

describeOneServer('guarantees when Redis fails right after MySQL committed (Redis behind a proxy)', () => {
  let proxy: TcpProxy;
  let proxied: Node;

  beforeAll(async () => {
    const target = new URL(REDIS_URL);
    proxy = await startProxy(Number(target.port || 6379));
    const name = uniqueName();
    proxied = {
      name,
      ...(await openServer(testConfig(name, { ...quiet, redisUrl: `redis://127.0.0.1:${proxy.port}${target.pathname}` }))),
    };
  });
  afterAll(async () => {
    await proxied?.http.close();
    await proxied?.core.close();
    await proxy?.close();
    if (proxied) await dropNamespace(proxied.name);
  });

  it('answers a poll with the job whose hand-out committed just as Redis failed; it is sent in MySQL and its event follows', async () => {
    const { core } = proxied;
    const { agentToken, push } = await onlineAgent(proxied);
    const id = await push('handed out as Redis fails');
    // The first Redis request carrying the job id after the push is the take's lease and "sent" event, after the commit.
    proxy.cutWhen(id);
    expect(await call(proxied.base, 'GET', '/agent/job', { token: agentToken })).toMatchObject({
      status: 200,
      body: { id, message: 'handed out as Redis fails' },
    });
    expect(await core.jobs.get(id, null)).toMatchObject({ status: 'sent', leaseUntil: expect.any(Date) });
    // The Redis side of the take was dropped with the connection (no lease in Redis), yet the event is appended once Redis answers.
    const events = await eventually(
      async () => {
        const lease = await core.redis.zscore(core.keys.leases, id).catch(() => 'unreachable');
        const found = core.events.unsentCount === 0 && (await statusEvents(core, id).catch(() => []));
        return lease !== 'unreachable' && found && found.length === 2 && { lease, found };
      },
      15_000,
      'the kept "sent" event to be appended',
    );
    expect(events).toEqual({ lease: null, found: ['queuing', 'sent'] });
    expect((await call(proxied.base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204); // handed out once
  });

  it('keeps the events of reports committed while Redis is down and appends them in commit order when it returns', async () => {
    const { core } = proxied;
    const { agentToken, push } = await onlineAgent(proxied);
    const ids = [await push('one'), await push('two'), await push('three')];
    for (const id of ids) expect((await call(proxied.base, 'GET', '/agent/job', { token: agentToken })).body.id).toBe(id);
    await eventually(() => core.events.unsentCount === 0, 10_000, 'nothing kept before the outage');
    const order = [...ids].reverse(); // commit order differs from job id (push) order
    proxy.cut();
    try {
      for (const id of order) {
        const report = await call(proxied.base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: `done ${id}` } });
        expect(report).toMatchObject({ status: 503, body: { error: 'Unavailable' } }); // the event could not be appended
        expect((await core.jobs.get(id, null)).status).toBe('succeeded'); // but MySQL committed the report
      }
      expect(core.events.unsentCount).toBe(3);
    } finally {
      proxy.resume();
    }
    await eventually(() => core.events.unsentCount === 0, 15_000, 'the kept events to be appended');
    const succeeded = (await readStream(core, core.keys.jobStatusStream)).filter((e) => ids.includes(e.job_id) && e.status === 'succeeded');
    expect(succeeded.map((e) => e.job_id)).toEqual(order);
    expect(succeeded.map((e) => e.result)).toEqual(order.map((id) => `done ${id}`));
  });
});
