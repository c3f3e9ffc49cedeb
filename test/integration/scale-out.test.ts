/** Several gateway nodes on one MySQL and one Redis (or Redis Cluster): wake-ups cross nodes, and a lost Redis server is noticed. */
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { masters } from '../../cloud/queue/redis';
import { dropNamespace, eventually, openServer, readStream, REDIS_CLUSTER, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

const name = uniqueName();
const config = testConfig(name, { reconcileIntervalMs: 60_000 });
const nodes: { core: Core; http: HttpServer; base: string }[] = [];

beforeAll(async () => {
  nodes.push(await openServer(config), await openServer(config));
});
afterAll(async () => {
  for (const node of nodes) {
    await node.http.close();
    await node.core.close();
  }
  await dropNamespace(name);
});

describe(`several nodes (${REDIS_CLUSTER ? 'Redis Cluster' : 'one Redis server'})`, () => {
  it('wakes a long poll on node A for a job pushed on node B', async () => {
    const [a, b] = nodes;
    const { userToken, agentToken } = await userWithAgent(a.core, 'ops', 'web1');
    expect((await call(a.base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204); // online
    // A 20 s long poll on A: without the cross-node wake-up it could only end empty after 20 s.
    const started = Date.now();
    const poll = call(a.base, 'GET', '/agent/job?wait=20', { token: agentToken });
    await eventually(() => a.core.dispatcher.waiting === 1, 5000, 'the long poll to wait on node A');
    const pushedAt = Date.now();
    const pushed = await call(b.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 uptime' } });
    expect(pushed.status).toBe(201);
    const got = await poll;
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: pushed.body.id, message: 'uptime' });
    process.stdout.write(
      `cross-node wake-up: job reached the poll on node A ${Date.now() - pushedAt} ms after the push on node B (poll open ${pushedAt - started} ms)\n`,
    );
  });

  it('notices when one Redis server lost its data, rebuilds the queues from MySQL and appends recent final events again', async () => {
    const [a] = nodes;
    const { agent } = await userWithAgent(a.core, 'ops2', 'web2');
    await a.core.agents.recordPoll(agent, '127.0.0.1');
    const finished = await a.core.jobs.push(agent, 'uptime', { source: 'test' });
    await a.core.jobs.take(agent, 1);
    await a.core.jobs.report(agent, finished.id, 'succeeded', 'up');
    const { id } = await a.core.jobs.push(agent, 'ls', { source: 'test' });
    for (const node of nodes) node.core.reconciler.stop(); // their own checks would notice the loss before this test
    expect((await a.core.reconciler.reconcileOnce()).rebuilt).toBe(false); // Redis is intact, and this node saw it
    expect(await a.core.queue.hasEpoch()).toBe(true);
    // As if the server holding this agent's queue restarted empty: its marker and the queue are gone.
    const markers: string[] = [];
    for (const master of masters(a.core.redis)) {
      for (const key of await master.keys(`${a.core.keys.prefix}*epoch`)) markers.push(key);
    }
    expect(markers.length).toBe(REDIS_CLUSTER ? REDIS_CLUSTER.split(',').length : 1);
    await a.core.redis.del(markers[markers.length - 1]);
    await a.core.redis.del(a.core.keys.agentQueue(agent.id));
    await a.core.redis.del(a.core.keys.jobStatusStream); // with the events not delivered yet
    expect(await a.core.queue.hasEpoch()).toBe(false);
    const report = await a.core.reconciler.reconcileOnce();
    expect(report.rebuilt).toBe(true);
    expect(report.replayed).toBeGreaterThanOrEqual(1);
    expect(await a.core.queue.hasEpoch()).toBe(true);
    expect(await a.core.queue.queued(agent.id)).toEqual([id]);
    const replayed = (await readStream(a.core, a.core.keys.jobStatusStream)).filter((e) => e.job_id === finished.id);
    expect(replayed).toEqual([expect.objectContaining({ status: 'succeeded', result: 'up' })]);
  });
});
