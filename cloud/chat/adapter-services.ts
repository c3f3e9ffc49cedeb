/**
 * Coordination the core lends adapters over Redis: leases (one gateway node at a time holds a name) and relays
 * (any node hands a request to the node that holds it, and waits for the answer).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { AdapterServices, NodeLease, NodeRelay, WindowCounter } from '../../adapters/contract';
import type { RedisKeys } from '../queue/keys';
import type { RedisClient } from '../queue/redis';

/** What the services need: the command connection, key names, and a way to open dedicated connections. */
export interface AdapterServiceDeps {
  redis: RedisClient;
  keys: RedisKeys;
  /** Opens a connection for blocking reads or subscriptions (they cannot share the command connection). */
  connect(name: string): Promise<RedisClient>;
  log: Logger;
}

/** A relayed request as it waits in Redis. */
interface RelayEnvelope {
  id: string;
  node: string;
  /** After this time (ms) the caller has given up: the request is skipped, not served late. */
  deadline: number;
  request: unknown;
}

/** Most requests kept waiting for a serving node; older ones are dropped (their callers have timed out long ago). */
const RELAY_MAX_WAITING = 10_000;
/** How long a blocking read of the serving node waits before it checks whether it should stop (s). */
const RELAY_BLOCK_S = 1;
/** Longest wait for the request being served when a relay server stops. */
const RELAY_STOP_WAIT_MS = 5000;

/** The lease `name` in Redis, held by this node's id. */
class RedisLease implements NodeLease {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly owner: string,
    readonly ttlMs: number,
  ) {}

  async acquire(): Promise<boolean> {
    return (await this.redis.lease_acquire(this.key, this.owner, this.ttlMs)) === 1;
  }

  async release(): Promise<void> {
    await this.redis.lease_release(this.key, this.owner);
  }
}

/** Counts in Redis: a set of event ids per key, created with the window as its time to live (a fixed window). */
class RedisWindowCounter implements WindowCounter {
  constructor(
    private readonly deps: AdapterServiceDeps,
    private readonly name: string,
    private readonly windowMs: number,
  ) {}

  async hit(key: string, eventId: string): Promise<{ count: number; repeated: boolean }> {
    const redisKey = this.deps.keys.windowCounter(this.name, key);
    const replies = await this.deps.redis.multi().sadd(redisKey, eventId).pexpire(redisKey, this.windowMs, 'NX').scard(redisKey).exec();
    const failed = (replies ?? []).find(([err]) => err)?.[0];
    if (!replies || failed) throw failed ?? new Error('Redis discarded the counting transaction');
    return { count: Number(replies[2][1]), repeated: Number(replies[0][1]) === 0 };
  }
}

/** Requests in a Redis list, served by one node; answers come back on the caller's own pub/sub channel. */
class RedisRelay implements NodeRelay {
  private subscriber: Promise<RedisClient> | null = null;
  private readonly pending = new Map<string, { resolve(value: unknown): void; reject(err: Error): void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly deps: AdapterServiceDeps,
    private readonly name: string,
    private readonly nodeId: string,
  ) {}

  async call(request: unknown, timeoutMs: number): Promise<unknown> {
    await this.listen();
    const envelope: RelayEnvelope = { id: crypto.randomUUID(), node: this.nodeId, deadline: Date.now() + timeoutMs, request };
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(envelope.id);
        reject(new Error(`no gateway node answered for ${this.name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(envelope.id, { resolve, reject, timer });
    });
    const key = this.deps.keys.relayRequests(this.name);
    try {
      await this.deps.redis
        .multi()
        .rpush(key, JSON.stringify(envelope))
        .ltrim(key, -RELAY_MAX_WAITING, -1)
        .pexpire(key, timeoutMs * 2)
        .exec();
    } catch (err) {
      const waiting = this.pending.get(envelope.id);
      this.pending.delete(envelope.id);
      clearTimeout(waiting?.timer);
      throw err;
    }
    return answer;
  }

  /** Subscribes (once) to this node's answer channel. */
  private listen(): Promise<RedisClient> {
    this.subscriber ??= (async () => {
      const conn = await this.deps.connect(`skadi-relay-${this.name}`);
      conn.on('message', (_channel: string, text: string) => {
        try {
          const { id, answer } = JSON.parse(text) as { id: string; answer: unknown };
          const waiting = this.pending.get(id);
          if (!waiting) return;
          this.pending.delete(id);
          clearTimeout(waiting.timer);
          waiting.resolve(answer);
        } catch {
          this.deps.log.warn({ relay: this.name }, 'a malformed relay answer was ignored');
        }
      });
      await conn.subscribe(this.deps.keys.relayReplies(this.name, this.nodeId));
      return conn;
    })();
    this.subscriber.catch(() => (this.subscriber = null));
    return this.subscriber;
  }

  serve(handler: (request: unknown, deadline: number) => Promise<unknown>): () => Promise<void> {
    let stopped = false;
    let conn: RedisClient | null = null;
    const key = this.deps.keys.relayRequests(this.name);
    const loop = (async () => {
      while (!stopped) {
        let envelope: RelayEnvelope;
        try {
          conn ??= await this.deps.connect(`skadi-relay-serve-${this.name}`); // again after a failed connect (Redis away)
          const popped = await conn.blpop(key, RELAY_BLOCK_S);
          if (!popped) continue;
          envelope = JSON.parse(popped[1]) as RelayEnvelope;
        } catch (err) {
          if (stopped) break;
          this.deps.log.warn({ err, relay: this.name }, 'reading relayed requests failed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (Date.now() > envelope.deadline) continue; // its caller gave up and will try again: serving it now would do it twice
        const answer = await handler(envelope.request, envelope.deadline).catch((err) => ({
          relayError: String((err as Error)?.message ?? err),
        }));
        await this.deps.redis
          .publish(this.deps.keys.relayReplies(this.name, envelope.node), JSON.stringify({ id: envelope.id, answer }))
          .catch((err) => {
            this.deps.log.warn({ err, relay: this.name }, 'a relay answer could not be published');
          });
      }
    })().catch((err) => this.deps.log.error({ err, relay: this.name }, 'the relay server stopped'));
    return async () => {
      stopped = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([loop, new Promise((r) => (timer = setTimeout(r, RELAY_STOP_WAIT_MS)))]); // a request being served may wait long
      clearTimeout(timer);
      (conn as RedisClient | null)?.disconnect();
    };
  }

  /** Drops the subscription; calls still waiting fail. */
  async close(): Promise<void> {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error('the gateway is stopping'));
      this.pending.delete(id);
    }
    const conn = await this.subscriber?.catch(() => null);
    conn?.disconnect();
  }
}

/** Adapter services of one node; close() drops their connections. */
export function createAdapterServices(deps: AdapterServiceDeps): AdapterServices & { nodeId: string; close(): Promise<void> } {
  const nodeId = `${os.hostname()}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const relays = new Map<string, RedisRelay>();
  return {
    nodeId,
    lease: (name, ttlMs) => new RedisLease(deps.redis, deps.keys.nodeLease(name), nodeId, ttlMs),
    counter: (name, windowMs) => new RedisWindowCounter(deps, name, windowMs),
    relay(name) {
      let relay = relays.get(name);
      if (!relay) relays.set(name, (relay = new RedisRelay(deps, name, nodeId)));
      return relay;
    },
    async close() {
      await Promise.all([...relays.values()].map((r) => r.close()));
    },
  };
}
