/** Redis killed and restarted empty while jobs flow through two nodes: 503 while it is down, then recovery; no accepted job lost or run twice. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import pino from 'pino';
import { loadConfig } from '../../config';
import { createCore } from '../../cloud/core';
import { KeepAliveClient, Namespace, serve, type Served } from '../../bench/harness';
import type { Core } from '../../cloud/core';
import { eventually } from '../helpers/env';
import { ensureBuilt } from '../helpers/process';
import { freePort, startFleet } from './fleet';
import { recordChaos } from './summary';

const JOBS = 600;

/** A private Redis for this test (the shared one serves the other test files), with nothing kept on disk. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      }),
    10_000,
    'redis-server to listen',
  );
  return child;
}

let redis: ChildProcess | null = null;
let core: Core | null = null;
const nodes: Served[] = [];
const ns = new Namespace();

beforeAll(() => ensureBuilt(), 120_000);
afterAll(async () => {
  for (const node of nodes) await node.stop();
  await core?.close();
  redis?.kill('SIGKILL');
  await ns.drop();
});

describe('Redis loss', () => {
  it('answers 503 while Redis is down, rebuilds from MySQL, and loses or repeats no job', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const env = ns.env({ SKADI_REDIS_URL: `redis://127.0.0.1:${port}/0`, SKADI_JOB_LEASE: '3s', SKADI_SWEEP_INTERVAL: '200ms', SKADI_RECONCILE_INTERVAL: '1s', SKADI_AGENT_OFFLINE_AFTER: '30s' });
    nodes.push(await serve(env), await serve(env));
    core = await createCore({ config: loadConfig({ env: { ...env, SKADI_LOG_LEVEL: 'silent' } }), log: pino({ level: 'silent' }) });
    const { user, token: userToken } = await core.users.create('chaos');
    const fleet = await startFleet(core, user.id, 'r', 10, nodes.map((n) => n.base));
    const { names, executed } = fleet;

    const clients = nodes.map((n) => new KeepAliveClient(n.base));
    const accepted: string[] = [];
    const acceptedAfterRestart: string[] = [];
    const statuses = new Map<number, number>();
    let recoveredInMs = 0;
    for (let i = 0; i < JOBS; i++) {
      if (i === JOBS / 3) redis.kill('SIGKILL');
      if (i === JOBS / 2) {
        redis = await startRedis(port); // back, and empty
        const restarted = Date.now();
        for (const c of clients) await eventually(async () => (await c.request('GET', '/readyz', '')).status === 200, 20_000, 'the nodes to be ready again');
        recoveredInMs = Date.now() - restarted;
      }
      const res = await clients[i % 2].request('POST', '/job/add', userToken, { message: `${names[i % names.length]} job-${i}` }).catch(() => ({ status: 0, body: '' }));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) accepted.push(JSON.parse(res.body).id);
      if (res.status === 201 && i >= JOBS / 2) acceptedAfterRestart.push(JSON.parse(res.body).id);
      if (i >= JOBS / 3 && i < JOBS / 2) await new Promise((r) => setTimeout(r, 5));
    }
    expect(statuses.get(503)).toBeGreaterThan(0); // refused while Redis was down
    expect([...statuses.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);

    const done = await eventually(async () => {
      const [rows] = await core!.db.pool.query("SELECT id, status FROM jobs WHERE status IN ('succeeded', 'failed', 'expired', 'canceled')");
      const terminal = new Map((rows as { id: string; status: string }[]).map((r) => [r.id, r.status]));
      return accepted.every((id) => terminal.has(id)) && terminal;
    }, 60_000, 'every accepted job to end');
    await recordChaos('redis-loss', core!, { pushes: JOBS, accepted, terminal: done, executed, statuses });
    const count = (status: string) => accepted.filter((id) => done.get(id) === status).length;
    process.stdout.write(`redis loss: ready again ${recoveredInMs} ms after the restart; ${accepted.length} accepted, ${statuses.get(503)} refused with 503, ${count('succeeded')} succeeded, ${count('expired')} expired, ${executed.size} executed, 0 twice\n`);
    expect([...executed].filter(([, n]) => n > 1)).toEqual([]);
    expect(acceptedAfterRestart.length).toBeGreaterThan(JOBS / 3); // recovered: pushes accepted again
    const late = acceptedAfterRestart.slice(-50); // agents polled again: delivered normally
    expect(late.filter((id) => done.get(id) === 'succeeded').length).toBeGreaterThan(45);
    await fleet.stop();
    for (const c of clients) c.close();
  }, 150_000);
});
