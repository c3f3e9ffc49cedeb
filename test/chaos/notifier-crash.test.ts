/** A gateway node (and so its notifier) killed with SIGKILL while it holds undelivered events: the other node's notifier delivers them. */
import { BENCH_SECRET, KeepAliveClient, serve } from '../../bench/harness';
import type { Core } from '../../cloud/core';
import { eventually } from '../helpers/env';
import { chaosRun, pushJobs, startFleet, waitTerminal } from './fleet';
import { recordChaos } from './summary';
import { callbackSecretOf } from '../helpers/callback-recipe';

const JOBS = 300;
const run = chaosRun();
const { ns, nodes } = run;
let core: Core;
const settings = { SKADI_NOTIFY_RECLAIM_IDLE: '3s', SKADI_SWEEP_INTERVAL: '200ms', SKADI_LOG_LEVEL: 'info' };

/** Entries of the job status stream pending on the notifier of the process with this pid. */
async function pendingOf(pid: number): Promise<number> {
  const [, , , consumers] = (await core.redis.xpending(core.keys.jobStatusStream, 'notifier')) as [
    number,
    string,
    string,
    [string, string][] | null,
  ];
  return (consumers ?? []).filter(([name]) => name.includes(`-${pid}-`)).reduce((n, [, count]) => n + Number(count), 0);
}

describe('notifier crash', () => {
  it('delivers the events a killed notifier had read but not delivered', async () => {
    nodes.push(await serve(ns.env(settings)), await serve(ns.env(settings)));
    const [a, b] = nodes;
    core = run.core = await ns.core();
    const { sink } = run;
    const { user, token: userToken } = await core.users.create('chaos');
    sink.trust(callbackSecretOf(BENCH_SECRET, user.id, user.callbackSalt!));
    const fleet = await startFleet(core, user.id, 'n', 5, [b.base]);
    const { names, executed } = fleet;

    sink.hold(); // callbacks hang: every notifier keeps what it read pending
    const clients = nodes.map((n) => new KeepAliveClient(n.base));
    const { accepted, statuses } = await pushJobs({
      count: JOBS,
      concurrency: 4,
      push: (i) =>
        clients[i % 2].request('POST', '/job/add', userToken, { message: `${names[i % names.length]} job-${i}`, callback: sink.url }),
    });
    expect(accepted).toHaveLength(JOBS); // nothing failed here: every push is a job whose event must arrive
    const terminal = await waitTerminal(core, accepted);
    const pendingOnA = await eventually(() => pendingOf(a.child.pid!), 10_000, 'node A to hold pending events');
    a.child.kill('SIGKILL');
    await eventually(() => a.child.exitCode !== null || a.child.signalCode !== null, 5000, 'node A to die');
    sink.release(); // B's callbacks are answered now; A's died with it

    const summary = await recordChaos('notifier-crash', core, {
      pushes: JOBS,
      accepted,
      terminal,
      executed,
      statuses,
      sink,
      extra: { pending_on_killed_notifier: pendingOnA },
    });
    process.stdout.write(
      `notifier crash (${summary.redis}): ${pendingOnA} events pending on the killed notifier; ${summary.events_delivered} of ${summary.terminal} final events delivered\n`,
    );
    expect(pendingOnA).toBeGreaterThan(0);
    expect(summary.callbacks_badly_signed).toBe(0);
    expect(summary.events_delivered).toBe(accepted.length);
    expect(await pendingOf(a.child.pid!)).toBe(0); // everything it held was taken over
    await fleet.stop();
    for (const c of clients) c.close();
  }, 120_000);
});
