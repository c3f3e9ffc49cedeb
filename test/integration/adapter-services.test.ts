/** Leases and relays between gateway nodes (cloud/adapter-services.ts) on the real Redis (one server or the cluster). */
import type { Core } from '../../cloud/core';
import { createAdapterServices } from '../../cloud/chat/adapter-services';
import { connectRedis } from '../../cloud/queue/redis';
import { dropNamespace, eventually, openCore, REDIS_CLUSTER, testConfig, uniqueName } from '../helpers/env';

type Services = ReturnType<typeof createAdapterServices>;

const name = uniqueName();
let core: Core;
/** Two gateway nodes sharing one Redis: each has its own node id and its own relay connections. */
let nodeA: Services;
let nodeB: Services;
/** Stop functions of relay servers still running when a test failed half-way. */
const stops: (() => Promise<void>)[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When (ms since the epoch, by Redis's clock) a key expires; -1 without an expiry, -2 when it does not exist. */
const expiresAt = async (key: string) => Number(await core.redis.call('PEXPIRETIME', key));

function nodeServices(): Services {
  const { config } = core;
  return createAdapterServices({
    redis: core.redis,
    keys: core.keys,
    connect: (connName) => connectRedis({ url: config.redisUrl, cluster: config.redisCluster }, { connectionName: connName }),
    log: core.log,
  });
}

/** Starts serving and remembers the stop function, so that afterAll can stop what a failed test left running. */
function serve(node: Services, relay: string, handler: (request: unknown) => Promise<unknown>): () => Promise<void> {
  const stop = node.relay(relay).serve(handler);
  let stopped: Promise<void> | null = null;
  const once = () => (stopped ??= stop());
  stops.push(once);
  return once;
}

beforeAll(async () => {
  core = await openCore(testConfig(name));
  nodeA = nodeServices();
  nodeB = nodeServices();
});
afterAll(async () => {
  await Promise.all(stops.map((stop) => stop()));
  await nodeA?.close();
  await nodeB?.close();
  await core?.close();
  await dropNamespace(name);
});

describe(`adapter services: leases (${REDIS_CLUSTER ? 'Redis Cluster' : 'one Redis server'})`, () => {
  it('gives a lease to one node at a time, lets its holder renew it, and hands it over on release', async () => {
    expect(nodeA.nodeId).not.toBe(nodeB.nodeId);
    const key = core.keys.nodeLease('account-1');
    const a = nodeA.lease('account-1', 2000);
    const b = nodeB.lease('account-1', 2000);
    expect(a.ttlMs).toBe(2000);

    expect(await a.acquire()).toBe(true);
    expect(await core.redis.get(key)).toBe(nodeA.nodeId);
    expect(await b.acquire()).toBe(false);
    expect(await core.redis.get(key)).toBe(nodeA.nodeId); // B's attempt did not touch it

    // Renewal: once some time has run off the lease, the holder's acquire sets the full time to live again, from the
    // moment of the renewal: the lease then ends later than before, and never more than its time to live from now.
    const first = await expiresAt(key);
    await eventually(async () => (await core.redis.pttl(key)) < 1900, 10_000, 'some of the lease to run off');
    const renewedFrom = Date.now();
    expect(await a.acquire()).toBe(true);
    const renewed = await expiresAt(key);
    expect(renewed).toBeGreaterThan(first);
    expect(renewed).toBeGreaterThanOrEqual(renewedFrom + 2000 - 5); // Redis's clock is this machine's
    expect(await core.redis.pttl(key)).toBeLessThanOrEqual(2000);
    expect(await core.redis.get(key)).toBe(nodeA.nodeId);
    expect(await b.acquire()).toBe(false);

    await a.release();
    expect(await core.redis.exists(key)).toBe(0);
    expect(await b.acquire()).toBe(true);
    expect(await core.redis.get(key)).toBe(nodeB.nodeId);
    expect(await a.acquire()).toBe(false);
    await b.release();
    expect(await core.redis.exists(key)).toBe(0);
  });

  it('keeps a lease its holder renews in time, and lets another node take one that lapsed', async () => {
    const key = core.keys.nodeLease('account-2');
    const a = nodeA.lease('account-2', 2000);
    const b = nodeB.lease('account-2', 2000);
    expect(await a.acquire()).toBe(true);
    // Renewed each time half its time to live has run off, until it has lasted past its first end: B never gets it.
    const firstEnd = await expiresAt(key);
    while (Date.now() < firstEnd + 500) {
      await eventually(async () => (await core.redis.pttl(key)) < 1000, 10_000, 'half the lease to run off');
      expect(await a.acquire()).toBe(true);
      expect(await core.redis.get(key)).toBe(nodeA.nodeId);
      expect(await b.acquire()).toBe(false);
    }
    // Not renewed any more: it lapses after its time to live, and B takes it.
    await eventually(async () => (await core.redis.exists(key)) === 0, 10_000, 'the lease to lapse');
    expect(await b.acquire()).toBe(true);
    expect(await core.redis.get(key)).toBe(nodeB.nodeId);
    expect(await a.acquire()).toBe(false);
    await b.release();
  });

  it('does not let a node that does not hold a lease release it', async () => {
    const key = core.keys.nodeLease('account-3');
    const a = nodeA.lease('account-3', 5000);
    const b = nodeB.lease('account-3', 5000);
    expect(await a.acquire()).toBe(true);
    const end = await expiresAt(key);
    await b.release();
    expect(await core.redis.get(key)).toBe(nodeA.nodeId);
    expect(await expiresAt(key)).toBe(end); // neither deleted nor shortened
    expect(await b.acquire()).toBe(false);
    await a.release();
    expect(await core.redis.exists(key)).toBe(0);
  });

  it('keeps leases of different names apart', async () => {
    expect(await nodeA.lease('account-4', 5000).acquire()).toBe(true);
    expect(await nodeB.lease('account-5', 5000).acquire()).toBe(true);
    expect(await core.redis.get(core.keys.nodeLease('account-4'))).toBe(nodeA.nodeId);
    expect(await core.redis.get(core.keys.nodeLease('account-5'))).toBe(nodeB.nodeId);
    await nodeA.lease('account-4', 5000).release();
    await nodeB.lease('account-5', 5000).release();
  });
});

describe(`adapter services: relays (${REDIS_CLUSTER ? 'Redis Cluster' : 'one Redis server'})`, () => {
  it("passes a request from node B to the node serving it and returns the server's answer", async () => {
    const seen: unknown[] = [];
    const stop = serve(nodeA, 'double', async (request) => {
      seen.push(request);
      return { double: (request as { n: number }).n * 2 };
    });
    try {
      await expect(nodeB.relay('double').call({ n: 1 }, 2000)).resolves.toEqual({ double: 2 });
      await expect(nodeB.relay('double').call({ n: 21 }, 2000)).resolves.toEqual({ double: 42 });
      expect(seen).toEqual([{ n: 1 }, { n: 21 }]);
    } finally {
      await stop();
    }
    expect(await core.redis.llen(core.keys.relayRequests('double'))).toBe(0);
  });

  it('answers concurrent calls each with its own answer, serving them one at a time in order', async () => {
    const order: number[] = [];
    let running = 0;
    let mostRunning = 0;
    const stop = serve(nodeA, 'ordered', async (request) => {
      const { i } = request as { i: number };
      running++;
      mostRunning = Math.max(mostRunning, running);
      order.push(i);
      await sleep(40);
      running--;
      return { i, square: i * i };
    });
    try {
      const relay = nodeB.relay('ordered');
      await relay.call({ i: -1 }, 2000); // subscribed and served once, so the calls below leave in the order they are made
      order.length = 0;
      const calls = [0, 1, 2, 3, 4, 5].map((i) => relay.call({ i }, 5000));
      const answers = await Promise.all(calls);
      expect(answers).toEqual([0, 1, 2, 3, 4, 5].map((i) => ({ i, square: i * i })));
      expect(order).toEqual([0, 1, 2, 3, 4, 5]);
      expect(mostRunning).toBe(1);
    } finally {
      await stop();
    }
  });

  it('rejects a call nobody serves after its timeout', async () => {
    const started = Date.now();
    const call = nodeB.relay('nobody').call({ n: 1 }, 300);
    await expect(call).rejects.toThrow(Error);
    await expect(call).rejects.toThrow('no gateway node answered for nobody within 300 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290); // not before its timeout (the test's own timeout bounds the rest)
    expect(await core.redis.llen(core.keys.relayRequests('nobody'))).toBe(1); // it still waits, unanswered
  });

  it('skips a request whose caller timed out before a server started, and serves the ones after it', async () => {
    const key = core.keys.relayRequests('late');
    await expect(nodeB.relay('late').call({ n: 'late' }, 1000)).rejects.toThrow('no gateway node answered for late within 1000 ms');
    expect(await core.redis.llen(key)).toBe(1); // the expired request is still in the list (it lives for 2 s)
    const fresh = nodeB.relay('late').call({ n: 'fresh' }, 10_000); // queued behind it (and keeps the list alive)
    await eventually(async () => (await core.redis.llen(key)) === 2, 5000, 'the fresh request to be queued');
    const seen: unknown[] = [];
    const stop = serve(nodeA, 'late', async (request) => {
      seen.push(request);
      return { served: (request as { n: string }).n };
    });
    try {
      await expect(fresh).resolves.toEqual({ served: 'fresh' });
      expect(seen).toEqual([{ n: 'fresh' }]); // the late one was read first, and dropped
      expect(await core.redis.llen(key)).toBe(0);
    } finally {
      await stop();
    }
    expect(seen).toEqual([{ n: 'fresh' }]);
  });

  it('answers {relayError} when the handler throws, and keeps serving', async () => {
    const stop = serve(nodeA, 'failing', async (request) => {
      const { n } = request as { n: number };
      if (n === 1) throw new Error('the account is logged out');
      return { ok: n };
    });
    try {
      await expect(nodeB.relay('failing').call({ n: 1 }, 2000)).resolves.toEqual({ relayError: 'the account is logged out' });
      await expect(nodeB.relay('failing').call({ n: 2 }, 2000)).resolves.toEqual({ ok: 2 });
    } finally {
      await stop();
    }
  });

  it('serves no new calls once the stop function has resolved', async () => {
    const seen: unknown[] = [];
    const stop = serve(nodeA, 'stopping', async (request) => {
      seen.push(request);
      return { got: request };
    });
    await expect(nodeB.relay('stopping').call({ n: 1 }, 2000)).resolves.toEqual({ got: { n: 1 } });
    await stop();
    await expect(nodeB.relay('stopping').call({ n: 2 }, 1500)).rejects.toThrow('no gateway node answered for stopping within 1500 ms');
    expect(seen).toEqual([{ n: 1 }]);
    expect(await core.redis.llen(core.keys.relayRequests('stopping'))).toBe(1); // nobody took it
  });
});
