/** A delayed job due while its agent is offline waits for it (real `skadi serve`): it runs when the agent returns, or expires when delayed_wait ends. */
import { eventually, readStream } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { call } from '../helpers/http';

/** Adds a delayed job for another agent through web1's agent API; returns its id and due time. */
async function delayFor(gw: Gateway, agent: string, message: string): Promise<{ id: string; dueAt: number }> {
  const res = await call(gw.base, 'POST', '/agent/job/delayed', { token: gw.agentToken, body: { message, duration: '1s', agent } });
  expect(res).toMatchObject({ status: 201, body: { agent } });
  return { id: res.body.id, dueAt: Date.parse(res.body.due_at) };
}

/** The job a delayed job became, once it has been released. */
async function released(gw: Gateway, id: string) {
  return eventually(() => gw.core.jobs.get(id, null).catch(() => null), 15_000, `delayed job ${id} to be released`);
}

describe('delayed_wait: 1h, and the agent comes back', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms', SKADI_DELAYED_WAIT: '1h' });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('keeps the job while the agent is offline, and delivers it when the agent polls again', async () => {
    await gw.addAgent('nightly'); // never polled: offline
    const { id, dueAt } = await delayFor(gw, 'nightly', 'backup');
    // Due, looked at by a sweep and put back in the schedule (a minute on): it waits rather than expire.
    await eventually(async () => Number(await gw.core.redis.zscore(gw.core.keys.delayed, id)) > dueAt, 15_000, 'the due job to be scheduled again');
    await expect(gw.core.jobs.get(id, null)).rejects.toMatchObject({ code: 'JobNotFound' });
    const [[row]] = await gw.core.db.pool.query<any[]>('SELECT released_at FROM delayed_jobs WHERE id = ?', [id]);
    expect(row.released_at).toBeNull();

    const agent = await gw.startAgent((job) => `ran ${job.message}`, 'nightly');
    try {
      await released(gw, id);
      expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded', result: 'ran backup', agent: 'nightly' });
    } finally {
      await agent.stop();
    }
  });

  it('the reconciler schedules a waiting job again if Redis lost it, and leaves those still scheduled to the sweeper', async () => {
    await gw.addAgent('away');
    const [lost, kept] = [await delayFor(gw, 'away', 'lost'), await delayFor(gw, 'away', 'kept')];
    const score = async (id: string) => gw.core.redis.zscore(gw.core.keys.delayed, id);
    for (const { id, dueAt } of [lost, kept]) await eventually(async () => Number(await score(id)) > dueAt, 15_000, `${id} to be scheduled again`);
    const keptAt = await score(kept.id);
    await gw.core.redis.zrem(gw.core.keys.delayed, lost.id);
    expect((await gw.core.reconciler.reconcileOnce()).released).toBe(0); // the agent is still offline: both wait
    expect(Number(await score(lost.id))).toBeGreaterThan(lost.dueAt);
    expect(await score(kept.id)).toBe(keptAt);
  });
});

describe('delayed_wait: 1s, and the agent stays away', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms', SKADI_DELAYED_WAIT: '1s' });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('expires the job when the wait ends, with a reason that says so', async () => {
    await gw.addAgent('gone');
    const { id, dueAt } = await delayFor(gw, 'gone', 'backup');
    const job = await released(gw, id);
    const reason = 'agent offline for the 1s of delayed_wait after the job was due';
    expect(job).toMatchObject({ status: 'expired', reason });
    expect(job.createdAt.getTime()).toBeGreaterThanOrEqual(dueAt + 1000);
    const events = (await readStream(gw.core, gw.core.keys.jobStatusStream)).filter((e) => e.job_id === id);
    expect(events.map((e) => [e.status, e.reason])).toEqual([['expired', reason]]);
  });
});
