/** A gateway node killed with SIGKILL while jobs flow through two nodes: no accepted job lost, none run twice, every final event delivered. */
import { BENCH_SECRET, KeepAliveClient, serve, type Served } from '../../bench/harness';
import { chaosRun, freePort, FULL, pushJobs, startFleet, waitTerminal } from './fleet';
import { recordChaos } from './summary';
import { callbackSecretOf } from '../helpers/callback-recipe';

const JOBS = FULL ? 5000 : 2000;
const run = chaosRun();
const { ns, nodes } = run;
const settings = {
  SKADI_JOB_LEASE: '3s',
  SKADI_SWEEP_INTERVAL: '200ms',
  SKADI_AGENT_OFFLINE_AFTER: '30s',
  SKADI_NOTIFY_RECLAIM_IDLE: '2s',
  SKADI_LOG_LEVEL: 'info',
};

describe('node crash', () => {
  it('keeps every accepted job, runs none twice and delivers every final event when a node is killed mid-run', async () => {
    const portA = await freePort();
    let nodeA: Served = await serve(ns.env({ ...settings, SKADI_PORT: String(portA) }));
    const nodeB = await serve(ns.env(settings));
    nodes.push(nodeA, nodeB);
    const core = (run.core = await ns.core());
    const { sink } = run;
    const { user, token: userToken } = await core.users.create('chaos');
    sink.trust(callbackSecretOf(BENCH_SECRET, user.id, user.callbackSalt!));
    const fleet = await startFleet(core, user.id, 'c', 10, [`http://127.0.0.1:${portA}`, nodeB.base]);
    const { names, executed } = fleet;

    const clients = [new KeepAliveClient(`http://127.0.0.1:${portA}`), new KeepAliveClient(nodeB.base)];
    let restartedInMs = 0;
    const killedA = nodeA;
    const killed = new Promise<NodeJS.Signals | null>((resolve) => killedA.child.once('exit', (_code, signal) => resolve(signal)));
    let down = false;
    let sentWhileDown = 0;
    let refusedWhileDown = 0;
    const { accepted, statuses } = await pushJobs({
      count: JOBS,
      concurrency: 8,
      async before(i) {
        if (i === Math.floor(JOBS / 3)) {
          killedA.child.kill('SIGKILL');
          expect(await killed).toBe('SIGKILL'); // the kill hit the node, and it ended by it
          down = true;
        }
        if (i === Math.floor(JOBS / 2)) {
          const started = Date.now();
          nodeA = await serve(ns.env({ ...settings, SKADI_PORT: String(portA) }));
          nodes.push(nodeA);
          restartedInMs = Date.now() - started;
          down = false;
          clients[0] = new KeepAliveClient(`http://127.0.0.1:${portA}`);
        }
      },
      push: async (i) => {
        const toDownNode = i % 2 === 0 && down;
        const res = await clients[i % 2]
          .request('POST', '/job/add', userToken, { message: `${names[i % names.length]} job-${i}`, callback: sink.url })
          .catch(() => ({ status: 0, body: '' }));
        if (toDownNode) {
          sentWhileDown++;
          if (res.status !== 201) refusedWhileDown++;
        }
        return res;
      },
    });
    // Every push to the killed node while it was down went unanswered; the other node took its share.
    expect(sentWhileDown).toBeGreaterThan(0);
    expect(refusedWhileDown).toBe(sentWhileDown);
    expect(accepted.length).toBeGreaterThan(JOBS * 0.6);

    const done = await waitTerminal(core, accepted);
    const summary = await recordChaos('node-crash', core, {
      pushes: JOBS,
      accepted,
      terminal: done,
      executed,
      statuses,
      sink,
      extra: { restart_ms: restartedInMs },
    });
    const succeeded = accepted.filter((id) => done.get(id) === 'succeeded').length;
    process.stdout.write(
      `node crash (${summary.redis}): ${accepted.length} of ${JOBS} pushes accepted, ${succeeded} succeeded, ${accepted.length - succeeded} expired, ` +
        `${executed.size} executed, ${summary.executed_twice} twice, ${summary.events_delivered} final events delivered\n`,
    );
    expect(summary.executed_twice).toBe(0);
    expect(summary.lost).toBe(0);
    expect(summary.callbacks_badly_signed).toBe(0);
    expect(summary.events_delivered).toBe(accepted.length);
    expect(succeeded).toBeGreaterThan(accepted.length * 0.9);

    await fleet.stop();
    for (const c of clients) c.close();
  }, 240_000);
});
