/** Redis connections, to one server or to a Redis Cluster: the Lua scripts registered, failing fast while Redis is away. */
import fs from 'node:fs';
import path from 'node:path';
import Redis, { Cluster, type RedisOptions } from 'ioredis';

const LUA_DIR = path.join(__dirname, 'lua');

/** The Lua scripts of cloud/queue/lua and how many of their arguments are keys. */
const SCRIPTS: Record<string, number> = {
  enqueue: 1,
  requeue: 1,
  touch_presence: 2,
  touch_presence_many: 2,
  claim_offline: 2,
  claim_due: 1,
  lease_acquire: 1,
  lease_release: 1,
};

/** Where Redis is: one server (url), or a cluster (seed nodes host:port; the url then supplies only credentials and TLS). */
export interface RedisTarget {
  url: string;
  cluster?: string[];
}

/**
 * A Redis command connection with the project's scripts as methods. A cluster connection has the same commands:
 * every multi-key command and script of the project uses keys of one hash slot.
 */
export type RedisClient = Redis & {
  enqueue(queue: string, channel: string, agentId: string, ...jobIds: string[]): Promise<number>;
  requeue(queue: string, channel: string, agentId: string, ...jobIds: string[]): Promise<number>;
  touch_presence(seen: string, online: string, now: number, agentId: string): Promise<number>;
  touch_presence_many(seen: string, online: string, now: number, ...agentIds: string[]): Promise<string[]>;
  claim_offline(seen: string, online: string, cutoff: number, limit: number): Promise<string[]>;
  claim_due(schedule: string, now: number, limit: number): Promise<string[]>;
  lease_acquire(lease: string, owner: string, ttlMs: number): Promise<number>;
  lease_release(lease: string, owner: string): Promise<number>;
};

/** Options of a connection. */
export interface RedisConnectOptions {
  /** Fail commands at once while disconnected (the HTTP edge answers 503) instead of queueing them. */
  failFast?: boolean;
  connectionName?: string;
  /** Send commands issued in the same tick together (the main command connection). */
  autoPipelining?: boolean;
}

const LUA: Record<string, string> = Object.fromEntries(
  Object.keys(SCRIPTS).map((name) => [name, fs.readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8')]),
);

/** Credentials and TLS taken from a redis:// or rediss:// URL. */
function urlOptions(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const parsed = new URL(url);
  return {
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

const retryDelay = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000);

/** A cluster client; with failFast, commands fail at once while the cluster is down or unreachable (the edge answers 503). */
function clusterClient(target: RedisTarget, options: RedisConnectOptions): Cluster {
  const nodes = (target.cluster ?? []).map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });
  return new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: !options.failFast,
    enableAutoPipelining: options.autoPipelining ?? false,
    clusterRetryStrategy: retryDelay,
    // Fail fast: CLUSTERDOWN (a master is lost) at once, a closed node connection after a few short retries, so that
    // the HTTP edge answers 503 quickly. Redirections (MOVED, ASK) during resharding still follow the new owner.
    retryDelayOnClusterDown: options.failFast ? 0 : 100,
    retryDelayOnFailover: 100,
    retryDelayOnTryAgain: 100,
    // After a master comes back, the first commands for its slots may be redirected (MOVED) until the client has
    // refreshed its slot map; a short pause per redirection gives the refresh time to land.
    retryDelayOnMoved: 100,
    maxRedirections: options.failFast ? 6 : 16,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...urlOptions(target.url),
      connectionName: options.connectionName,
      connectTimeout: 5000,
      maxRetriesPerRequest: options.failFast ? 0 : 20,
    },
  });
}

/** Opens a connection (to one server, or to a cluster) and waits until it is ready; rejects with the connection error otherwise. */
export async function connectRedis(target: RedisTarget, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const redis: Redis | Cluster = target.cluster?.length
    ? clusterClient(target, options)
    : new Redis(target.url, {
        lazyConnect: true,
        enableOfflineQueue: !options.failFast,
        maxRetriesPerRequest: options.failFast ? 0 : 20,
        connectTimeout: 5000,
        connectionName: options.connectionName,
        // Commands issued in the same tick leave in one write: far fewer syscalls under load.
        enableAutoPipelining: options.autoPipelining ?? false,
        retryStrategy: retryDelay,
      });
  redis.on('error', () => undefined); // reconnects by itself; callers see failed commands
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys, lua: LUA[name] });
  }
  try {
    await redis.connect();
    if (redis instanceof Cluster) await redis.cluster('INFO'); // the first command proves the slots are known
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  // The two clients share every command the project uses; the scripts were registered on either.
  return redis as unknown as RedisClient;
}

/** True when the connection is to a Redis Cluster. */
export function isCluster(redis: RedisClient): boolean {
  return (redis as unknown) instanceof Cluster;
}

/** Proves Redis can serve commands now: PING on one server; on a cluster, every slot must be served (cluster_state:ok). */
export async function checkRedis(redis: RedisClient): Promise<void> {
  if (!isCluster(redis)) {
    await redis.ping();
    return;
  }
  const info = String(await (redis as unknown as Cluster).cluster('INFO'));
  if (!/cluster_state:ok/.test(info)) throw new Error('CLUSTERDOWN the Redis Cluster does not serve every slot');
}

/** The master nodes of a cluster connection, or the connection itself on one server. */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? (redis as unknown as Cluster).nodes('master') : [redis];
}

/** Deletes every key that starts with prefix, on every master (an installation's whole state); returns the count. */
export async function deleteByPrefix(redis: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      cursor = next;
      // One key per command: keys of different hash slots cannot share a command on a cluster.
      const results = await Promise.all(keys.map((key) => node.unlink(key)));
      deleted += results.reduce((sum, n) => sum + n, 0);
    } while (cursor !== '0');
  }
  return deleted;
}

/** Runs a pipeline and throws the first command error (ioredis reports them per command). */
export async function execPipeline(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0];
  return results.map(([, value]) => value);
}
