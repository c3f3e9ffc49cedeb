/** Test setup on the real MariaDB and Redis: a fresh database and key prefix per test file. */
import crypto from 'node:crypto';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { loadConfig, type Config } from '../../config';
import { createCore, type Core } from '../../cloud/core';
import { connectRedis, deleteByPrefix } from '../../cloud/queue/redis';
import { startHttpServer, type HttpServer } from '../../agent-api/server';

export const MYSQL_ROOT = process.env.SKADI_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306';
export const REDIS_URL = process.env.SKADI_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';
/** Seed nodes of a Redis Cluster (host:port,...); when set, every test's gateway runs on the cluster instead of REDIS_URL. */
export const REDIS_CLUSTER = process.env.SKADI_TEST_REDIS_CLUSTER ?? '';

/** SKADI_SECRET of every test gateway and core (callback secrets are derived from it). */
export const TEST_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

/** The SKADI_* variables that point a gateway process at the test Redis (one server or the cluster). */
export function redisEnv(): Record<string, string> {
  return { SKADI_REDIS_URL: REDIS_URL, SKADI_REDIS_CLUSTER: REDIS_CLUSTER };
}

/** A unique name for this test file's database and key prefix. */
export function uniqueName(): string {
  return `skadi_t_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`;
}

/** A configuration on a fresh database and prefix, with short timings unless overridden. */
export function testConfig(name: string, overrides: Partial<Config> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      mysqlUrl: `${MYSQL_ROOT}/${name}`,
      redisUrl: REDIS_URL,
      redisCluster: REDIS_CLUSTER ? REDIS_CLUSTER.split(',') : [],
      redisPrefix: `${name}:`,
      logLevel: 'silent',
      secret: TEST_SECRET,
      ...overrides,
    },
  });
}

/** A core (without background loops unless asked) on the given configuration. */
export async function openCore(config: Config, background = false): Promise<Core> {
  const core = await createCore({ config, log: pino({ level: process.env.SKADI_TEST_LOG ?? 'silent' }) });
  if (background) await core.startBackground();
  return core;
}

/** A core with its HTTP server listening on a free port. */
export async function openServer(config: Config): Promise<{ core: Core; http: HttpServer; base: string }> {
  const core = await openCore(config, true);
  const http = await startHttpServer(core);
  return { core, http, base: `http://127.0.0.1:${http.port}` };
}

/** Deletes every Redis key under a prefix. */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const redis = await connectRedis({ url: REDIS_URL, cluster: REDIS_CLUSTER ? REDIS_CLUSTER.split(',') : [] });
  try {
    return await deleteByPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/** Drops the database and keys of a test file. */
export async function dropNamespace(name: string): Promise<void> {
  const conn = await mysql.createConnection(MYSQL_ROOT);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
  await deleteRedisPrefix(`${name}:`);
}

/** Reads every entry of a stream as parsed JSON events. */
export async function readStream(core: Core, stream: string): Promise<Record<string, any>[]> {
  const entries = await core.redis.xrange(stream, '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]));
}

/** Waits until check() returns a truthy value, polling every 20 ms, or throws after timeoutMs. */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Creates a user and an agent; returns their tokens. */
export async function userWithAgent(core: Core, userName = 'ops', agentName = 'web1') {
  const { user, token: userToken } = await core.users.create(userName);
  const { agent, token: agentToken } = await core.agents.create(user.id, agentName);
  return { user, agent, userToken, agentToken };
}
