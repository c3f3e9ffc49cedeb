/** Window counters of the adapter services (cloud/adapter-services.ts) on the real Redis (one server or the cluster). */
import type { Core } from '../../cloud/core';
import { createAdapterServices } from '../../cloud/chat/adapter-services';
import { connectRedis } from '../../cloud/queue/redis';
import { dropNamespace, eventually, openCore, testConfig, uniqueName } from '../helpers/env';

const name = uniqueName();
let core: Core;

/** The adapter services of one more gateway node on the same Redis. */
function nodeServices() {
  return createAdapterServices({
    redis: core.redis,
    keys: core.keys,
    connect: (connName) => connectRedis({ url: core.config.redisUrl, cluster: core.config.redisCluster }, { connectionName: connName }),
    log: core.log,
  });
}

beforeAll(async () => {
  core = await openCore(testConfig(name));
});
afterAll(async () => {
  await core?.close();
  await dropNamespace(name);
});

describe('adapter services: window counters', () => {
  it('counts each event once, whichever node counts it, and apart per key and per counter name', async () => {
    const [a, b] = [nodeServices(), nodeServices()];
    try {
      const onA = a.counter('mails', 60_000);
      const onB = b.counter('mails', 60_000);
      expect(await onA.hit('alice', 'm1')).toEqual({ count: 1, repeated: false });
      expect(await onB.hit('alice', 'm1')).toEqual({ count: 1, repeated: true });
      expect(await onB.hit('alice', 'm2')).toEqual({ count: 2, repeated: false });
      expect(await onA.hit('bob', 'm1')).toEqual({ count: 1, repeated: false });
      expect(await a.counter('refusals', 60_000).hit('alice', 'm1')).toEqual({ count: 1, repeated: false });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('starts a new window when the old one has run out', async () => {
    const services = nodeServices();
    try {
      const counter = services.counter('short', 300);
      await counter.hit('carol', 'm1');
      expect(await counter.hit('carol', 'm2')).toEqual({ count: 2, repeated: false });
      await eventually(async () => (await core.redis.exists(core.keys.windowCounter('short', 'carol'))) === 0, 5000, 'the window to end');
      expect(await counter.hit('carol', 'm1')).toEqual({ count: 1, repeated: false });
    } finally {
      await services.close();
    }
  });
});
