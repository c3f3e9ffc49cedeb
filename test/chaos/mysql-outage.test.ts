/** MariaDB unreachable for several seconds while jobs flow through two nodes: 503 for pushes (never a 201 for an unstored job), no crash, recovery, no job lost or run twice. */
import pino from 'pino';
import { KeepAliveClient, MYSQL_ROOT, Namespace, serve, type Served } from '../../bench/harness';
import { loadConfig } from '../../config';
import { createCore, type Core } from '../../cloud/core';
import { eventually } from '../helpers/env';
import { ensureBuilt } from '../helpers/process';
import { startProxy, type Proxy } from '../helpers/proxy';
import { startFleet } from './fleet';
import { recordChaos } from './summary';

const JOBS = 500;
const OUTAGE_MS = 5000;
const ns = new Namespace();
let proxy: Proxy;
let core: Core;
const nodes: Served[] = [];

beforeAll(async () => {
  ensureBuilt();
  core = await createCore({ config: loadConfig({ env: ns.env({ SKADI_LOG_LEVEL: 'silent' }) }), log: pino({ level: 'silent' }) }); // creates the schema directly
  proxy = await startProxy(Number(new URL(MYSQL_ROOT).port || 3306));
}, 120_000);
afterAll(async () => {
  for (const node of nodes) await node.stop();
  await core?.close();
  await proxy?.close();
  await ns.drop();
});

describe('MySQL outage', () => {
  it('refuses pushes with 503 while MariaDB is unreachable and recovers by itself', async () => {
    const env = ns.env({ SKADI_MYSQL_URL: `mysql://root@127.0.0.1:${proxy.port}/${ns.name}`, SKADI_JOB_LEASE: '10s', SKADI_SWEEP_INTERVAL: '200ms', SKADI_AGENT_OFFLINE_AFTER: '60s' });
    nodes.push(await serve(env), await serve(env));
    const { user, token: userToken } = await core.users.create('chaos');
    const fleet = await startFleet(core, user.id, 'm', 10, nodes.map((n) => n.base));
    const { names, executed } = fleet;

    const clients = nodes.map((n) => new KeepAliveClient(n.base));
    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    let cutAt = 0;
    for (let i = 0; i < JOBS; i++) {
      if (i === JOBS / 5) {
        proxy.cut();
        cutAt = Date.now();
      }
      if (cutAt && Date.now() - cutAt > OUTAGE_MS) {
        proxy.resume();
        cutAt = 0;
      }
      const res = await clients[i % 2].request('POST', '/job/add', userToken, { message: `${names[i % names.length]} job-${i}` }).catch(() => ({ status: 0, body: '' }));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) accepted.push(JSON.parse(res.body).id);
      await new Promise((r) => setTimeout(r, 15));
    }
    process.stdout.write(`mysql outage: statuses ${JSON.stringify(Object.fromEntries(statuses))}\n`);
    expect(statuses.get(503)).toBeGreaterThan(0);
    expect([...statuses.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);
    for (const node of nodes) expect(node.child.exitCode).toBeNull();

    const [stored] = await core.db.pool.query('SELECT id FROM jobs');
    const storedIds = new Set((stored as { id: string }[]).map((r) => r.id));
    for (const id of accepted) expect(storedIds.has(id)).toBe(true); // every 201 was a stored job
    const terminal = await eventually(async () => {
      const [rows] = await core.db.pool.query("SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'expired', 'canceled')");
      const ended = new Set((rows as { id: string }[]).map((r) => r.id));
      return accepted.every((id) => ended.has(id)) && ended;
    }, 60_000, 'every accepted job to end');
    await recordChaos('mysql-outage', core, { pushes: JOBS, accepted, terminal, executed, statuses });
    expect([...executed].filter(([, n]) => n > 1)).toEqual([]);
    await fleet.stop();
    for (const c of clients) c.close();
  }, 150_000);
});
