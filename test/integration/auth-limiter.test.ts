// The failed-authentication limiter on the real Redis, without HTTP: the exact boundary, the window, what is never
// refused, and how many checks of one address run at once.
import type { Context } from 'koa';
import { AuthLimiter } from '../../agent-api/auth-limiter';
import { LimitExceededError, UnauthorizedError } from '../../cloud/errors';
import { RedisKeys } from '../../cloud/queue/keys';
import { connectRedis, deleteByPrefix, type RedisClient } from '../../cloud/queue/redis';
import { REDIS_CLUSTER, REDIS_URL, uniqueName } from '../helpers/env';

const MAX = 3;

describe('the auth limiter', () => {
  let redis: RedisClient;
  let keys: RedisKeys;
  let limiter: AuthLimiter;
  let n = 0;

  beforeAll(async () => {
    redis = await connectRedis({ url: REDIS_URL, cluster: REDIS_CLUSTER ? REDIS_CLUSTER.split(',') : [] });
    keys = new RedisKeys(`${uniqueName()}:`);
  });
  beforeEach(() => {
    limiter = new AuthLimiter(redis, keys, { maxFailures: MAX, windowMs: 60_000 });
  });
  afterAll(async () => {
    await deleteByPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  /** A fresh client address per test. */
  const address = () => `198.51.100.${++n}`;
  const request = (ip: string) => ({ state: { clientAddress: ip }, request: { ip: '127.0.0.1' } }) as unknown as Context;
  const bad = async () => {
    throw new UnauthorizedError();
  };
  const good = async () => undefined;
  /** What a check comes to: 'ok', 401 or 429 (with its Retry-After in s). */
  async function outcome(ip: string, check: () => Promise<void>): Promise<string> {
    try {
      await limiter.guard(request(ip), check);
      return 'ok';
    } catch (err) {
      if (err instanceof LimitExceededError) return `429 ${Math.ceil(err.retryAfterMs / 1000)}`;
      if (err instanceof UnauthorizedError) return '401';
      throw err;
    }
  }

  it('refuses an address only once it is past auth_max_failures, and counts in Redis for the window', async () => {
    const ip = address();
    const seen: string[] = [];
    for (let i = 0; i < MAX + 3; i++) seen.push(await outcome(ip, bad));
    expect(seen).toEqual(['401', '401', '401', '401', '429 60', '429 60']);
    expect(Number(await redis.get(keys.authFailures(ip)))).toBe(MAX + 1);
    const ttl = await redis.pttl(keys.authFailures(ip));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('never refuses a valid credential, even from a refused address, and keeps other addresses apart', async () => {
    const ip = address();
    for (let i = 0; i <= MAX; i++) await outcome(ip, bad);
    expect(await outcome(ip, bad)).toMatch(/^429/);
    expect(await outcome(ip, good)).toBe('ok');
    expect(await outcome(address(), bad)).toBe('401');
  });

  it('passes other errors through without counting them', async () => {
    const ip = address();
    const broken = async () => {
      throw new Error('MySQL is down');
    };
    for (let i = 0; i < MAX + 2; i++) await expect(limiter.guard(request(ip), broken)).rejects.toThrow('MySQL is down');
    expect(await redis.get(keys.authFailures(ip))).toBeNull();
    expect(await outcome(ip, bad)).toBe('401');
  });

  it('shares the count between nodes: a second limiter on the same Redis refuses past the limit', async () => {
    const ip = address();
    for (let i = 0; i < MAX; i++) await outcome(ip, bad);
    limiter = new AuthLimiter(redis, keys, { maxFailures: MAX, windowMs: 60_000 });
    expect(await outcome(ip, bad)).toBe('401'); // the count passes the limit here
    expect(await outcome(ip, bad)).toMatch(/^429/);
  });

  it("takes the block length from the key's time to live, at least one second", async () => {
    const ip = address();
    await redis.set(keys.authFailures(ip), String(MAX), 'PX', 30_000);
    expect(await outcome(ip, bad)).toBe('401');
    expect(await outcome(ip, bad)).toMatch(/^429 (29|30)$/);
  });

  it('blocks for what is left of the window when the first failure is already one too many', async () => {
    limiter = new AuthLimiter(redis, keys, { maxFailures: 0, windowMs: 20_000 });
    const ip = address();
    expect(await outcome(ip, bad)).toBe('401');
    expect(await outcome(ip, bad)).toMatch(/^429 (19|20)$/);
  });

  it('forgets a block when it ends', async () => {
    limiter = new AuthLimiter(redis, keys, { maxFailures: 0, windowMs: 1000 });
    const ip = address();
    expect(await outcome(ip, bad)).toBe('401');
    expect(await outcome(ip, bad)).toMatch(/^429 1$/);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the block's own length, the behaviour under test
    await redis.del(keys.authFailures(ip));
    expect(await outcome(ip, bad)).toBe('401');
  });

  it('runs at most 8 checks of one address at once, and one at a time once it is refused', async () => {
    const ip = address();
    let active = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const held = (fail: boolean) => async () => {
      active++;
      most = Math.max(most, active);
      await new Promise<void>((resolve) => gates.push(resolve));
      active--;
      if (fail) throw new UnauthorizedError();
    };
    const waitFor = async (count: number) => {
      for (let i = 0; i < 200 && gates.length < count; i++) await new Promise((r) => setImmediate(r));
      expect(gates.length).toBe(count);
    };
    const first = Array.from({ length: 12 }, () => outcome(ip, held(false)));
    await waitFor(8);
    expect(active).toBe(8); // four wait for a slot
    while (gates.length) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 200 && active > 0; i++) {
      while (gates.length) gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(first)).toEqual(Array(12).fill('ok'));
    expect(most).toBe(8);

    for (let i = 0; i <= MAX; i++) await outcome(ip, bad);
    most = 0;
    const blocked = Array.from({ length: 3 }, () => outcome(ip, held(true)));
    await waitFor(1);
    for (let i = 0; i < 3; i++) {
      await waitFor(1);
      gates.shift()!();
    }
    expect(await Promise.all(blocked)).toEqual([
      expect.stringMatching(/^429/),
      expect.stringMatching(/^429/),
      expect.stringMatching(/^429/),
    ]);
    expect(most).toBe(1);
  });

  it('says in its refusal how many seconds are left, rounded up', async () => {
    limiter = new AuthLimiter(redis, keys, { maxFailures: 0, windowMs: 20_000 });
    const ip = address();
    await outcome(ip, bad);
    const refusal = await limiter.guard(request(ip), bad).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(LimitExceededError);
    expect((refusal as Error).message).toMatch(/^Too many failed authentications from this address; retry in (19|20) s\.$/);
  });

  it('keeps nothing for an address once its checks are done, refused or not', async () => {
    const ip = address();
    const checking = (limiter as unknown as { checking: Map<string, unknown> }).checking;
    await Promise.all([outcome(ip, good), outcome(ip, bad), outcome(ip, good)]);
    expect(checking.has(ip)).toBe(false);
    for (let i = 0; i <= MAX; i++) await outcome(ip, bad);
    await Promise.all([outcome(ip, bad), outcome(ip, bad)]); // one at a time once refused: the second waits
    expect(checking.size).toBe(0);
  });

  it('still counts the running checks of an address after one of them ends', async () => {
    const ip = address();
    let active = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const held = async () => {
      active++;
      most = Math.max(most, active);
      await new Promise<void>((resolve) => gates.push(resolve));
      active--;
    };
    const settle = async (count: number) => {
      for (let i = 0; i < 200 && gates.length < count; i++) await new Promise((r) => setImmediate(r));
    };
    const checks = Array.from({ length: 8 }, () => outcome(ip, held));
    await settle(8);
    gates.shift()!(); // seven still run, nobody waits
    await checks[0];
    checks.push(outcome(ip, held), outcome(ip, held));
    await settle(8);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(active).toBe(8); // the tenth waits for a slot
    while (active > 0 || gates.length) {
      while (gates.length) gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(checks)).toEqual(Array(10).fill('ok'));
    expect(most).toBe(8);
  });
});
