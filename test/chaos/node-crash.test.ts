/** A gateway node killed with SIGKILL while jobs flow through two nodes: no accepted job lost, none run twice. */
import { KeepAliveClient, Namespace, serve, type Served } from '../../bench/harness';
import type { Core } from '../../cloud/core';
import { eventually } from '../helpers/env';
import { ensureBuilt } from '../helpers/process';
import { freePort, startFleet } from './fleet';
import { recordChaos } from './summary';

const JOBS = 600;
const ns = new Namespace();
let core: Core;
const settings = { SKADI_JOB_LEASE: '3s', SKADI_SWEEP_INTERVAL: '200ms', SKADI_AGENT_OFFLINE_AFTER: '30s', SKADI_LOG_LEVEL: 'info' };

beforeAll(async () => {
  ensureBuilt();
}, 120_000);
afterAll(async () => {
  await core?.close();
  await ns.drop();
});

describe('node crash', () => {
  it('keeps every accepted job and runs none twice when a node is killed mid-run', async () => {
    const portA = await freePort();
    let nodeA: Served = await serve(ns.env({ ...settings, SKADI_PORT: String(portA) }));
    const nodeB = await serve(ns.env(settings));
    core = await ns.core();
    const { user, token: userToken } = await core.users.create('chaos');
    const fleet = await startFleet(core, user.id, 'c', 10, [`http://127.0.0.1:${portA}`, nodeB.base]);
    const { names, executed } = fleet;

    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    const clients = [new KeepAliveClient(`http://127.0.0.1:${portA}`), new KeepAliveClient(nodeB.base)];
    let killed = false;
    for (let i = 0; i < JOBS; i++) {
      if (i === JOBS / 3) {
        nodeA.child.kill('SIGKILL');
        killed = true;
      }
      if (i === JOBS / 2 && killed) {
        nodeA = await serve(ns.env({ ...settings, SKADI_PORT: String(portA) }));
        clients[0] = new KeepAliveClient(`http://127.0.0.1:${portA}`);
      }
      try {
        const res = await clients[i % 2].request('POST', '/job/add', userToken, { message: `${names[i % names.length]} job-${i}` });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 201) accepted.push(JSON.parse(res.body).id);
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1); // node A is down: refused, nothing was accepted
      }
    }
    expect(accepted.length).toBeGreaterThan(JOBS * 0.6);

    const terminal = async () => {
      const [rows] = await core.db.pool.query("SELECT id, status FROM jobs WHERE status IN ('succeeded', 'failed', 'expired', 'canceled')");
      return new Map((rows as { id: string; status: string }[]).map((r) => [r.id, r.status]));
    };
    const done = await eventually(async () => {
      const t = await terminal();
      return accepted.every((id) => t.has(id)) && t;
    }, 60_000, 'every accepted job to end');
    const twice = [...executed].filter(([, n]) => n > 1);
    await recordChaos('node-crash', core, { pushes: JOBS, accepted, terminal: done, executed, statuses });
    expect(twice).toEqual([]);
    for (const id of accepted) expect(done.has(id)).toBe(true);
    const succeeded = accepted.filter((id) => done.get(id) === 'succeeded').length;
    process.stdout.write(`node crash: ${accepted.length} of ${JOBS} pushes accepted, ${succeeded} succeeded, ${accepted.length - succeeded} expired, ${executed.size} executed, 0 twice\n`);
    expect(succeeded).toBeGreaterThan(accepted.length * 0.9);

    await fleet.stop();
    for (const c of clients) c.close();
    await nodeA.stop();
    await nodeB.stop();
  }, 120_000);
});
