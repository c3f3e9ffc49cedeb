/** Redis connections: one command connection with the Lua scripts registered, and one subscriber per node. */
import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';

const LUA_DIR = path.join(__dirname, 'lua');

/** The Lua scripts of cloud/queue/lua and how many of their arguments are keys. */
const SCRIPTS: Record<string, number> = {
  enqueue: 1,
  requeue: 1,
  touch_presence: 2,
  touch_presence_many: 2,
  claim_offline: 2,
  claim_due: 1,
};

/** A Redis command connection with the project's scripts as methods. */
export type RedisClient = Redis & {
  enqueue(queue: string, channel: string, agentId: string, ...jobIds: string[]): Promise<number>;
  requeue(queue: string, channel: string, agentId: string, ...jobIds: string[]): Promise<number>;
  touch_presence(seen: string, online: string, now: number, agentId: string): Promise<number>;
  touch_presence_many(seen: string, online: string, now: number, ...agentIds: string[]): Promise<string[]>;
  claim_offline(seen: string, online: string, cutoff: number, limit: number): Promise<string[]>;
  claim_due(schedule: string, now: number, limit: number): Promise<string[]>;
};

/** Options of a connection. */
export interface RedisConnectOptions {
  /** Fail commands at once while disconnected (the HTTP edge answers 503) instead of queueing them. */
  failFast?: boolean;
  connectionName?: string;
  /** Send commands issued in the same tick together (the main command connection). */
  autoPipelining?: boolean;
}

/** Registers every Lua script on a connection. */
function defineScripts(redis: Redis): void {
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS)) {
    const lua = fs.readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8');
    redis.defineCommand(name, { numberOfKeys, lua });
  }
}

/** Opens a connection and waits until it is ready; rejects with the connection error otherwise. */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : 20,
    connectTimeout: 5000,
    connectionName: options.connectionName,
    // Commands issued in the same tick leave in one write: far fewer syscalls under load.
    enableAutoPipelining: options.autoPipelining ?? false,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
  });
  redis.on('error', () => undefined); // reconnects by itself; callers see failed commands
  defineScripts(redis);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis as RedisClient;
}

/** Runs a pipeline and throws the first command error (ioredis reports them per command). */
export async function execPipeline(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0];
  return results.map(([, value]) => value);
}
