/**
 * A Redis of a test's own, to kill and restart (the shared one serves the other test files): one server, or a
 * 3-master cluster started by scripts/redis-cluster.sh when the tests run on a cluster.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { eventually, REDIS_CLUSTER } from './env';
import { ROOT } from './process';

const SCRIPT = path.join(ROOT, 'scripts/redis-cluster.sh');

/** A private Redis. */
export interface PrivateRedis {
  /** What it is, for messages. */
  kind: 'server' | 'cluster';
  /** The SKADI_* variables that point a gateway at it. */
  env: Record<string, string>;
  /** The same as configuration overrides. */
  overrides: { redisUrl: string; redisCluster: string[] };
  /** SIGKILLs every server, or only one master of a cluster (which then refuses commands until it is back). */
  kill(scope: 'all' | 'one'): void;
  /** Starts what was killed again, with no data (a cluster node keeps its nodes.conf, so it rejoins). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` ports p for which p and its cluster bus port p + 10000 are free (20000-29999, so no port is another's bus port). */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (!ports.includes(port) && (await isFree(port)) && (await isFree(port + 10000))) ports.push(port);
  }
  return ports;
}

async function startServer(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await eventually(() => listens(port), 10_000, 'redis-server to listen');
  return child;
}

function runScript(args: string[]): void {
  const run = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`redis-cluster.sh ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
}

async function startCluster(): Promise<PrivateRedis> {
  const ports = await freePorts(3);
  const dir = path.join(ROOT, '.tmp', `redis-cluster-${ports.join('-')}`);
  const list = ports.join(',');
  runScript(['start', '--ports', list, '--dir', dir]);
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  let killed: number[] = [];
  const kill = (port: number) => {
    const pid = Number(fs.readFileSync(path.join(dir, String(port), 'redis.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
  };
  return {
    kind: 'cluster',
    env: { SKADI_REDIS_URL: 'redis://127.0.0.1:6379/0', SKADI_REDIS_CLUSTER: nodes.join(',') },
    overrides: { redisUrl: 'redis://127.0.0.1:6379/0', redisCluster: nodes },
    kill(scope) {
      killed = scope === 'all' ? ports : [ports[1]];
      for (const port of killed) kill(port);
    },
    async restart() {
      for (const port of killed) {
        await eventually(async () => !(await listens(port)), 5000, 'the killed node to be gone');
        fs.rmSync(path.join(dir, String(port), 'redis.pid'), { force: true });
        runScript(['restart-node', String(port), '--dir', dir]);
      }
      killed = [];
      const ok = () => spawnSync('bash', [SCRIPT, 'status', '--ports', list], { stdio: 'ignore' }).status === 0;
      await eventually(ok, 20_000, 'the cluster to serve every slot again');
    },
    async stop() {
      runScript(['stop', '--ports', list]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startSingle(): Promise<PrivateRedis> {
  const [port] = await freePorts(1);
  let child: ChildProcess | null = await startServer(port);
  const url = `redis://127.0.0.1:${port}/0`;
  return {
    kind: 'server',
    env: { SKADI_REDIS_URL: url, SKADI_REDIS_CLUSTER: '' },
    overrides: { redisUrl: url, redisCluster: [] },
    kill() {
      child?.kill('SIGKILL');
      child = null;
    },
    async restart() {
      await eventually(async () => !(await listens(port)), 5000, 'the killed server to be gone');
      child = await startServer(port);
    },
    async stop() {
      child?.kill('SIGKILL');
      child = null;
    },
  };
}

/** Starts a private Redis: a cluster when the tests run on one (SKADI_TEST_REDIS_CLUSTER), else one server. */
export function startPrivateRedis(): Promise<PrivateRedis> {
  return REDIS_CLUSTER ? startCluster() : startSingle();
}
