/** MariaDB unreachable for 10 s while jobs flow through two nodes: 503 for pushes (never a 201 for an unstored job), polls answered, no crash, quick recovery, nothing lost. */
import pino from 'pino';
import { BENCH_SECRET, KeepAliveClient, MYSQL_ROOT, serve } from '../../bench/harness';
import { loadConfig } from '../../config';
import { createCore, type Core } from '../../cloud/core';
import { startProxy, type TcpProxy } from '../helpers/proxy';
import { chaosRun, pushJobs, startFleet, waitTerminal } from './fleet';
import { recordChaos } from './summary';
import { callbackSecretOf } from '../helpers/callback-recipe';

const JOBS = 800;
const OUTAGE_MS = 10_000;
const run = chaosRun();
const { ns, nodes } = run;
let proxy: TcpProxy;
let core: Core;

beforeAll(async () => {
  core = run.core = await createCore({
    config: loadConfig({ env: ns.env({ SKADI_LOG_LEVEL: 'silent' }) }),
    log: pino({ level: 'silent' }),
  }); // creates the schema directly
  proxy = await startProxy(Number(new URL(MYSQL_ROOT).port || 3306));
  run.also.push(() => proxy.close());
}, 120_000);

describe('MySQL outage', () => {
  it('refuses pushes with 503 while MariaDB is unreachable for 10 s and recovers by itself within seconds', async () => {
    const env = ns.env({
      SKADI_MYSQL_URL: `mysql://root@127.0.0.1:${proxy.port}/${ns.name}`,
      SKADI_JOB_LEASE: '10s',
      SKADI_SWEEP_INTERVAL: '200ms',
      SKADI_AGENT_OFFLINE_AFTER: '60s',
    });
    nodes.push(await serve(env), await serve(env));
    const { sink } = run;
    const { user, token: userToken } = await core.users.create('chaos');
    sink.trust(callbackSecretOf(BENCH_SECRET, user.id, user.callbackSalt!));
    const { token: probeToken } = await core.agents.create(user.id, 'probe');
    const fleet = await startFleet(
      core,
      user.id,
      'm',
      10,
      nodes.map((n) => n.base),
    );
    const { names, executed } = fleet;

    const clients = nodes.map((n) => new KeepAliveClient(n.base));
    const pollStatuses = new Map<number, number>();
    let cutAt = 0;
    let resumedAt = 0;
    let recoveredMs = -1;
    const { accepted, statuses } = await pushJobs({
      count: JOBS,
      concurrency: 2,
      pauseMs: 40,
      async before(i) {
        if (i === JOBS / 8) {
          proxy.cut();
          cutAt = Date.now();
        }
        if (cutAt && !resumedAt && Date.now() - cutAt > OUTAGE_MS) {
          proxy.resume();
          resumedAt = Date.now();
        }
        if (cutAt && !resumedAt && i % 10 === 0) {
          // An agent polling during the outage gets an answer: a job, no job, or 503 (never a 500, never a hang).
          const poll = await clients[i % 2].request('GET', '/agent/job', probeToken).catch(() => ({ status: 0 }));
          pollStatuses.set(poll.status, (pollStatuses.get(poll.status) ?? 0) + 1);
        }
      },
      async push(i) {
        const res = await clients[i % 2].request('POST', '/job/add', userToken, {
          message: `${names[i % names.length]} job-${i}`,
          callback: sink.url,
        });
        if (res.status === 201 && resumedAt && recoveredMs < 0) recoveredMs = Date.now() - resumedAt;
        return res;
      },
    });
    process.stdout.write(
      `mysql outage: pushes ${JSON.stringify(Object.fromEntries(statuses))}, polls during the outage ${JSON.stringify(Object.fromEntries(pollStatuses))}, first 201 ${recoveredMs} ms after MariaDB returned\n`,
    );
    expect(resumedAt).toBeGreaterThan(0); // the outage lasted its full length within the run
    expect(statuses.get(503)).toBeGreaterThan(0);
    expect([...statuses.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);
    expect([...pollStatuses.keys()].filter((s) => ![200, 204, 503].includes(s))).toEqual([]);
    for (const node of nodes) expect(node.child.exitCode).toBeNull();
    expect(recoveredMs).toBeGreaterThanOrEqual(0);

    const [stored] = await core.db.pool.query('SELECT id FROM jobs');
    const storedIds = new Set((stored as { id: string }[]).map((r) => r.id));
    for (const id of accepted) expect(storedIds.has(id)).toBe(true); // every 201 was a stored job
    const terminal = await waitTerminal(core, accepted);
    const summary = await recordChaos('mysql-outage', core, {
      pushes: JOBS,
      accepted,
      terminal,
      executed,
      statuses,
      sink,
      extra: {
        outage_ms: OUTAGE_MS,
        first_201_after_ms: recoveredMs,
        polls_during_outage: [...pollStatuses.values()].reduce((a, b) => a + b, 0),
      },
    });
    expect(summary.lost).toBe(0);
    expect(summary.executed_twice).toBe(0);
    expect(summary.callbacks_badly_signed).toBe(0);
    expect(summary.events_delivered).toBe(accepted.length);
    await fleet.stop();
    for (const c of clients) c.close();
  }, 180_000);
});
