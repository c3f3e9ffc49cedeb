/** What every benchmark shares: a fresh namespace, a `skadi serve` child process, percentiles. */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { loadConfig, type Config } from '../config';
import { createCore, type Core } from '../cloud/core';
import { connectRedis, deleteByPrefix, type RedisTarget } from '../cloud/queue/redis';

/** The repository root: the nearest folder above this file with a package.json (works from bench/ and dist/bench/). */
const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
const SKADI_BIN = path.join(ROOT, 'dist/cli/main.js');

/** Where the benchmarks' MySQL server and Redis are (the same defaults as the tests). */
export const MYSQL_ROOT = process.env.SKADI_BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
export const REDIS_URL = process.env.SKADI_BENCH_REDIS ?? 'redis://127.0.0.1:6379/0';
/** Seed nodes (host:port,...) when the gateways run on a Redis Cluster instead of REDIS_URL. */
export const REDIS_CLUSTER = process.env.SKADI_BENCH_REDIS_CLUSTER ?? process.env.SKADI_TEST_REDIS_CLUSTER ?? '';

/** Where the benchmarks' Redis is, as a connection target. */
export function redisTarget(): RedisTarget {
  return { url: REDIS_URL, cluster: REDIS_CLUSTER ? REDIS_CLUSTER.split(',') : [] };
}

const TERMINAL = new Set(['succeeded', 'failed', 'expired', 'canceled']);

/** Reads the job status stream with a consumer group of its own, recording when each job's final event is consumed. */
export async function consumeTerminalEvents(
  stream: string,
  until: () => boolean,
  onTerminal: (jobId: string, at: number) => void,
): Promise<void> {
  const redis = await connectRedis(redisTarget());
  try {
    await redis.xgroup('CREATE', stream, 'bench', '$', 'MKSTREAM').catch(() => undefined);
    while (!until()) {
      const reply = (await redis.xreadgroup('GROUP', 'bench', 'reader', 'COUNT', 2000, 'BLOCK', 200, 'STREAMS', stream, '>')) as
        | [string, [string, string[]][]][]
        | null;
      for (const [, entries] of reply ?? []) {
        const at = nowMs();
        for (const [, fields] of entries) {
          const event = JSON.parse(fields[fields.indexOf('data') + 1]);
          if (TERMINAL.has(event.status)) onTerminal(event.job_id, at);
        }
        if (entries.length) await redis.xack(stream, 'bench', ...entries.map(([id]) => id));
      }
    }
  } finally {
    redis.disconnect();
  }
}

/** SKADI_SECRET of the benchmark and chaos gateways (their callback secrets are derived from it). */
export const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

/** A fresh database and key prefix for one benchmark, removed by drop(). */
export class Namespace {
  readonly name = `skadi_bench_${Date.now().toString(36)}_${crypto.randomBytes(2).toString('hex')}`;

  /** `settings`: SKADI_* variables of every gateway and core of this namespace (e.g. SKADI_CALLBACK_ALLOW for a local sink). */
  constructor(private readonly settings: Record<string, string> = {}) {}

  /** The environment that points `skadi serve` at this namespace. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const where = {
      SKADI_MYSQL_URL: `${MYSQL_ROOT}/${this.name}`,
      SKADI_REDIS_URL: REDIS_URL,
      SKADI_REDIS_CLUSTER: REDIS_CLUSTER,
      SKADI_REDIS_PREFIX: `${this.name}:`,
    };
    return { ...where, SKADI_LOG_LEVEL: 'info', SKADI_SECRET: BENCH_SECRET, ...this.settings, ...extra };
  }

  /** A core on this namespace, for setup (users, agents) and checks. */
  async core(): Promise<Core> {
    const config: Config = loadConfig({ env: this.env({ SKADI_LOG_LEVEL: 'silent' }) });
    return createCore({ config, log: pino({ level: 'silent' }) });
  }

  /** Drops the database and deletes the keys. */
  async drop(): Promise<void> {
    const conn = await mysql.createConnection(MYSQL_ROOT);
    await conn.query(`DROP DATABASE IF EXISTS \`${this.name}\``);
    await conn.end();
    const redis = await connectRedis(redisTarget());
    await deleteByPrefix(redis, `${this.name}:`);
    redis.disconnect();
  }
}

/** A running `skadi serve`. */
export interface Served {
  child: ChildProcess;
  port: number;
  base: string;
  stop(): Promise<void>;
}

/** Spawns node with the open-file limit raised to the hard limit (thousands of sockets need it; Node cannot raise its own). */
function spawnNode(args: string[], env: NodeJS.ProcessEnv, stdin: 'ignore' | 'pipe'): ChildProcess {
  const command = [
    'ulimit -n "$(ulimit -Hn)" 2>/dev/null',
    `exec ${[process.execPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')}`,
  ].join('; ');
  return spawn('/bin/sh', ['-c', command], { env, stdio: [stdin, 'pipe', stdin === 'pipe' ? 'inherit' : 'pipe'] });
}

/** Starts `skadi serve` on a free port and resolves once it listens. */
export function serve(env: Record<string, string>): Promise<Served> {
  // SKADI_BENCH_PROFILE=<dir> writes a CPU profile of each gateway process there (open it in Chrome DevTools).
  const profile = process.env.SKADI_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SKADI_BENCH_PROFILE}`] : [];
  const child = spawnNode([...profile, SKADI_BIN, 'serve'], { ...process.env, SKADI_PORT: '0', SKADI_HOST: '127.0.0.1', ...env }, 'ignore');
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const match = /"port":(\d+)[^\n]*listening/.exec(output);
      if (!match) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      const port = Number(match[1]);
      resolve({
        child,
        port,
        base: `http://127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`skadi serve exited with ${code}:\n${output}`)));
  });
}

/** A keep-alive HTTP client on node:http (fetch is too slow to be the load generator). */
export class KeepAliveClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  constructor(private readonly base: string) {}

  /** Sends a request; resolves with status and raw body. */
  request(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          method,
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The p-th percentile (0-100) of values, in the values' unit. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Rounds to three decimals, for readable JSON. */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Milliseconds from a high-resolution clock. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Starts a compiled bench script (dist/bench/<name>.js) as a child process. */
export function spawnScript(name: string, env: Record<string, string> = {}): ChildProcess {
  return spawnNode([path.join(ROOT, 'dist/bench', `${name}.js`)], { ...process.env, ...env }, 'pipe');
}

/** Resolves with the first stdout line of a child matching the pattern. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = pattern.exec(buffer);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(match);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before printing ${pattern}`)));
  });
}

/** Stops a child with SIGTERM (SIGKILL after 10 s). */
export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Resident and peak resident memory of a process and its children (the workers of `serve --workers n`), in MB (Linux /proc). */
export function memoryMb(pid: number): { rss_mb: number; peak_rss_mb: number } {
  let rss = 0;
  let peak = 0;
  for (const one of gatewayPids(pid)) {
    const status = fs.readFileSync(`/proc/${one}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    rss += kb('VmRSS');
    peak += kb('VmHWM');
  }
  return { rss_mb: round(rss / 1024), peak_rss_mb: round(peak / 1024) };
}

/** A gateway's process and its worker processes (its children), by pid. */
export function gatewayPids(pid: number): number[] {
  const pids = [pid];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** CPU seconds (user + system) a process has used so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** Runs `count` tasks with at most `concurrency` at a time; task(i) gets the task's index. */
export async function runConcurrently(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Pids of the processes whose command name is `comm` (e.g. mariadbd, redis-server). */
export function pidsByName(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** CPU seconds used by groups of processes between start() and stop(), to show which process limits a run. */
export class CpuMeter {
  private readonly start = new Map<number, number>();

  constructor(private readonly groups: Record<string, number[]>) {
    for (const pids of Object.values(groups)) for (const pid of pids) this.start.set(pid, safeCpu(pid));
  }

  /** CPU seconds per group since construction. */
  read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, pids] of Object.entries(this.groups))
      out[name] = round(pids.reduce((sum, pid) => sum + safeCpu(pid) - (this.start.get(pid) ?? 0), 0));
    return out;
  }
}

function safeCpu(pid: number): number {
  try {
    return pid === process.pid ? process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 : cpuSeconds(pid);
  } catch {
    return 0;
  }
}
