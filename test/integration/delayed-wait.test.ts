/**
 * A delayed job due while its agent is offline is queued and waits for the agent (real `skadi serve`): it runs when the
 * agent returns, or expires when delayed_wait ends. Offline expiry and the reconciler spare it while it waits.
 */
import { eventually, readStream } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { call } from '../helpers/http';

const HOUR = 3_600_000;

/** Adds a delayed job for another agent through web1's agent API; returns its id and due time. */
async function delayFor(gw: Gateway, agent: string, message: string): Promise<{ id: string; dueAt: number }> {
  const res = await call(gw.base, 'POST', '/agent/job/delayed', { token: gw.agentToken, body: { message, duration: '1s', agent } });
  expect(res).toMatchObject({ status: 201, body: { agent } });
  return { id: res.body.id, dueAt: Date.parse(res.body.due_at) };
}

/** The statuses (and reasons) of a job's events in the status stream, in order. */
async function statusEvents(gw: Gateway, id: string): Promise<[string, string][]> {
  return (await readStream(gw.core, gw.core.keys.jobStatusStream)).filter((e) => e.job_id === id).map((e) => [e.status, e.reason ?? '']);
}

/**
 * The job a delayed job became, once it has been released and announced: its row is committed first, then its event
 * is appended and, when queued, its id pushed to the agent's Redis queue.
 */
async function released(gw: Gateway, id: string) {
  const job = await eventually(() => gw.core.jobs.get(id, null).catch(() => null), 15_000, `delayed job ${id} to be released`);
  await eventually(async () => (await statusEvents(gw, id)).length > 0, 15_000, `the first event of ${id}`);
  if (job.status === 'queuing')
    await eventually(async () => (await gw.core.queue.queued(job.agentId)).includes(id), 15_000, `${id} in its agent's queue`);
  return job;
}

/** Starts an agent's SDK loop and stops it at once: the agent is online, for agent_offline_after, but takes nothing. */
async function pollOnceAndLeave(gw: Gateway, name: string): Promise<void> {
  const agent = await gw.startAgent(() => 'unexpected', name);
  await agent.stop();
}

describe('delayed_wait 1h: the job waits, queued, for its agent', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms', SKADI_DELAYED_WAIT: '1h', SKADI_AGENT_OFFLINE_AFTER: '5s' });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('is queuing while the agent is offline, shows until when it waits, and runs when the agent polls again', async () => {
    await gw.addAgent('nightly'); // never polled: offline
    const { id, dueAt } = await delayFor(gw, 'nightly', 'backup');
    const job = await released(gw, id);
    expect(job).toMatchObject({ status: 'queuing', reason: null });
    expect(job.waitUntil?.getTime()).toBe(dueAt + HOUR);
    const shown = await call(gw.base, 'GET', `/jobs/${id}`, { token: gw.userToken });
    expect(shown).toMatchObject({ status: 200, body: { status: 'queuing', wait_until: new Date(dueAt + HOUR).toISOString() } });
    expect(await statusEvents(gw, id)).toEqual([['queuing', '']]);
    expect(await gw.core.queue.queued(job.agentId)).toContain(id);

    const agent = await gw.startAgent((j) => `ran ${j.message}`, 'nightly');
    try {
      expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded', result: 'ran backup', agent: 'nightly' });
    } finally {
      await agent.stop();
    }
  });

  it('survives its agent going offline, which expires the agent’s ordinary queued jobs', async () => {
    await gw.addAgent('flaky');
    await pollOnceAndLeave(gw, 'flaky');
    const { id } = await delayFor(gw, 'flaky', 'backup');
    const ordinary = await gw.push('ls', 'flaky');
    // Both are queued while the agent still counts as online (5 s after its last poll); then it goes offline.
    expect(await released(gw, id)).toMatchObject({ status: 'queuing' });
    await eventually(async () => (await gw.core.jobs.get(ordinary, null)).status === 'expired', 20_000, 'the agent to go offline');
    const [[agentRow]] = await gw.core.db.pool.query<any[]>("SELECT online FROM agents WHERE name = 'flaky'");
    expect(agentRow.online).toBe(0);
    expect(await gw.core.jobs.get(ordinary, null)).toMatchObject({ reason: 'agent offline' });
    expect((await gw.core.jobs.get(id, null)).status).toBe('queuing');
    await gw.core.reconciler.reconcileOnce(); // the safety net does not expire it either
    expect((await gw.core.jobs.get(id, null)).status).toBe('queuing');

    const agent = await gw.startAgent((j) => `ran ${j.message}`, 'flaky');
    try {
      expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded', result: 'ran backup' });
    } finally {
      await agent.stop();
    }
  });

  it('is put back in its agent’s Redis queue by the reconciler, not expired, when Redis lost it', async () => {
    const { id: agentId } = await gw.addAgent('away');
    const { id } = await delayFor(gw, 'away', 'lost');
    await released(gw, id);
    await gw.core.queue.remove(agentId, [id]);
    // The reconciler looks at queued jobs a few seconds old: make this one so.
    await gw.core.db.pool.query('UPDATE jobs SET created_at = created_at - INTERVAL 1 MINUTE WHERE id = ?', [id]);
    const report = await gw.core.reconciler.reconcileOnce();
    expect(report).toMatchObject({ expired: 0 });
    expect(report.requeued).toBeGreaterThanOrEqual(1);
    expect(await gw.core.queue.queued(agentId)).toContain(id);
    expect((await gw.core.jobs.get(id, null)).status).toBe('queuing');
  });
});

describe('delayed_wait 1s: the wait ends', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms', SKADI_DELAYED_WAIT: '1s' });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('expires the job when its agent stays away, with a reason that says so', async () => {
    const { id: agentId } = await gw.addAgent('gone');
    const { id, dueAt } = await delayFor(gw, 'gone', 'backup');
    const reason = 'agent offline for the 1s of delayed_wait after the job was due';
    // Its expired event is appended after the id left the agent's queue.
    const events = await eventually(
      async () => {
        const found = await statusEvents(gw, id);
        return found.at(-1)?.[0] === 'expired' && found;
      },
      15_000,
      'the wait to end',
    );
    expect(events.at(-1)).toEqual(['expired', reason]);
    // Released in time it was queued first; a release after the wait (a slow machine) expires it at once.
    expect(events.slice(0, -1).every(([status]) => status === 'queuing')).toBe(true);
    const job = await gw.core.jobs.get(id, null);
    expect(job).toMatchObject({ status: 'expired', reason });
    expect(job.finishedAt!.getTime()).toBeGreaterThanOrEqual(dueAt + 1000);
    expect(await gw.core.queue.queued(agentId)).not.toContain(id);
  });

  it('keeps the job queued, as any job, when its agent is back at the end of the wait', async () => {
    await gw.addAgent('late');
    await pollOnceAndLeave(gw, 'late'); // online for agent_offline_after (3m), not taking jobs
    const { id, dueAt } = await delayFor(gw, 'late', 'backup');
    const job = await released(gw, id);
    expect(job.waitUntil?.getTime()).toBe(dueAt + 1000);
    await eventually(async () => (await gw.core.jobs.get(id, null)).waitUntil === null, 15_000, 'the wait to end');
    expect((await gw.core.jobs.get(id, null)).status).toBe('queuing');

    const agent = await gw.startAgent((j) => `ran ${j.message}`, 'late');
    try {
      expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded', result: 'ran backup' });
    } finally {
      await agent.stop();
    }
  });
});
