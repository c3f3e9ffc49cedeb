/** The job lifecycle on real MariaDB and Redis: every transition, at-most-once hand-out, timeouts, reconciliation. */
import type { Core } from '../../cloud/core';
import type { AgentRow } from '../../cloud/store/agents';
import {
  deleteRedisPrefix,
  dropNamespace,
  eventually,
  MYSQL_ROOT,
  openCore,
  readStream,
  testConfig,
  uniqueName,
  userWithAgent,
} from '../helpers/env';
import { startProxy } from '../helpers/proxy';

const name = uniqueName();
// Lease and offline time are short for the tests, yet long enough that a stall of a second on a loaded machine breaks nothing.
const LEASE_MS = 3000;
const config = testConfig(name, {
  jobLeaseMs: LEASE_MS,
  agentOfflineAfterMs: 3000,
  sweepIntervalMs: 50,
  reconcileIntervalMs: 60_000,
  maxPollsPerAgent: 1000,
});
let core: Core;

beforeAll(async () => {
  core = await openCore(config, true);
});
afterAll(async () => {
  await core.close();
  await dropNamespace(name);
});

let seq = 0;
/** A fresh user with one agent that has polled (so it is online). */
async function onlineAgent(): Promise<{ agent: AgentRow; userId: number }> {
  seq++;
  const { user, agent } = await userWithAgent(core, `u${seq}`, `a${seq}`);
  await core.agents.recordPoll(agent, '127.0.0.1');
  return { agent, userId: user.id };
}

/**
 * What a long poll gives within a bound far beyond any wake-up (half a minute), or 'still waiting': the poll waits a
 * minute, so the job it gets within the bound came from the wake-up, not from the end of its wait.
 */
async function pollWithinBound(poll: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([poll, new Promise((r) => (timer = setTimeout(() => r('still waiting'), 30_000)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function statusEvents(jobId: string): Promise<string[]> {
  return (await readStream(core, core.keys.jobStatusStream)).filter((e) => e.job_id === jobId).map((e) => e.status);
}

describe('job lifecycle', () => {
  it('queues, hands out once, and records success with events for each step', async () => {
    const { agent } = await onlineAgent();
    const pushed = await core.jobs.push(agent, 'uptime', { source: 'test' });
    expect(pushed.status).toBe('queuing');
    const taken = await core.jobs.take(agent, 5);
    expect(taken).toEqual([{ id: pushed.id, message: 'uptime' }]);
    expect(await core.jobs.take(agent, 5)).toEqual([]);
    await core.jobs.report(agent, pushed.id, 'running', 'half way');
    await core.jobs.report(agent, pushed.id, 'succeeded', 'up 3 days');
    const job = await core.jobs.get(pushed.id, null);
    expect(job).toMatchObject({ status: 'succeeded', result: 'up 3 days' });
    expect(await statusEvents(pushed.id)).toEqual(['queuing', 'sent', 'running', 'succeeded']);
  });

  it('accepts the same terminal report twice and refuses a different one', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'x', { source: 'test' });
    await core.jobs.take(agent, 1);
    await core.jobs.report(agent, id, 'failed', 'exit 1');
    await expect(core.jobs.report(agent, id, 'failed', 'exit 1')).resolves.toBeUndefined();
    await expect(core.jobs.report(agent, id, 'succeeded', 'ok')).rejects.toMatchObject({ status: 409, code: 'JobFinished' });
    await expect(core.jobs.report(agent, id, 'running', '...')).rejects.toMatchObject({ status: 409 });
    expect((await core.jobs.get(id, null)).status).toBe('failed');
    // The repeated report re-appends the final event (its first append may have been lost): at least once.
    expect(await statusEvents(id)).toEqual(['queuing', 'sent', 'failed', 'failed']);
  });

  it("hides another agent's job (404) and refuses reports on a job not taken yet (409)", async () => {
    const a = await onlineAgent();
    const b = await onlineAgent();
    const { id } = await core.jobs.push(a.agent, 'x', { source: 'test' });
    await expect(core.jobs.report(b.agent, id, 'succeeded', 'mine now')).rejects.toMatchObject({ status: 404 });
    await expect(core.jobs.report(a.agent, id, 'succeeded', 'early')).rejects.toMatchObject({ status: 409, code: 'JobNotTaken' });
    expect(await core.jobs.take(b.agent, 10)).toEqual([]);
  });

  it('records a job for an offline agent as expired at once', async () => {
    seq++;
    const { agent } = await userWithAgent(core, `u${seq}`, `never${seq}`);
    const pushed = await core.jobs.push(agent, 'uptime', { source: 'test' });
    expect(pushed.status).toBe('expired');
    expect(await core.jobs.get(pushed.id, null)).toMatchObject({ status: 'expired', reason: 'agent offline' });
    expect(await statusEvents(pushed.id)).toEqual(['expired']);
  });

  it('delivers a job pushed during a long poll without waiting for the poll to end', async () => {
    const { agent } = await onlineAgent();
    const poll = core.dispatcher.poll(agent, 60_000);
    await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
    const { id } = await core.jobs.push(agent, 'now', { source: 'test' });
    expect(await pollWithinBound(poll)).toEqual({ id, message: 'now' });
  }, 60_000);

  it('puts a job back when the polling client disconnected before it could receive it', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'unreceived', { source: 'test' });
    let disconnect!: () => void;
    const poll = core.dispatcher.poll(agent, 5000, { closed: () => false, onClose: (gone) => (disconnect = gone) }); // the take starts at once
    disconnect(); // the client disconnects while the take is in flight
    expect(await poll).toBeNull();
    expect((await core.jobs.get(id, null)).status).toBe('queuing');
    expect(await core.dispatcher.poll(agent, 1000)).toEqual({ id, message: 'unreceived' });
    expect(await statusEvents(id)).toEqual(['queuing', 'sent', 'queuing', 'sent']);
  });

  it('queues again the jobs of a take whose commit was not confirmed (the connection broke after the UPDATE)', async () => {
    // A second core on the same database, through a TCP proxy that breaks the connection carrying the read-back.
    const proxy = await startProxy(Number(new URL(MYSQL_ROOT).port || 3306));
    const viaProxy = await openCore(testConfig(name, { ...config, mysqlUrl: `mysql://root@127.0.0.1:${proxy.port}/${name}` }));
    try {
      const { agent } = await onlineAgent();
      const { id } = await core.jobs.push(agent, 'unconfirmed', { source: 'test' });
      proxy.cutWhen('SELECT * FROM jobs WHERE id IN (');
      // The UPDATE commits, then the connection drops before the read-back: the poll answers an error.
      await expect(viaProxy.jobs.take(agent, 1)).rejects.toThrow();
      await eventually(
        async () => viaProxy.jobRepo.unconfirmedTakes === 0 && (await core.jobs.get(id, null)).status === 'queuing',
        10_000,
        'the unconfirmed take to be undone',
      );
      expect(await core.jobs.take(agent, 1)).toEqual([{ id, message: 'unconfirmed' }]);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it('hands a job whose id is queued twice (put back by a take and by its undo) to one poll only', async () => {
    const { agent } = await onlineAgent();
    const pushed = await core.jobs.push(agent, 'queued twice', { source: 'test' });
    await core.queue.requeue(agent.id, [pushed.id]);
    expect(await core.queue.queued(agent.id)).toEqual([pushed.id, pushed.id]);
    expect(await core.jobs.take(agent, 2)).toEqual([{ id: pushed.id, message: 'queued twice' }]);
    expect(await core.queue.queued(agent.id)).toEqual([]);
  });

  it('hands each of 100 jobs to exactly one of 200 concurrent polls', async () => {
    const { agent } = await onlineAgent();
    // The polls wait first (they keep the agent online), then the jobs are pushed one after another.
    const got: string[] = [];
    const polls = Array.from({ length: 200 }, () => core.dispatcher.poll(agent, 60_000).then((job) => job && got.push(job.id)));
    const ids = [];
    for (let i = 0; i < 100; i++) ids.push((await core.jobs.push(agent, `job ${i}`, { source: 'test' })).id);
    await eventually(() => got.length >= 100, 20_000, 'every job to reach a poll');
    core.dispatcher.stop(); // answers the 100 polls left over with "no job"
    core.dispatcher.start();
    await Promise.all(polls);
    expect(got).toHaveLength(100);
    expect(new Set(got).size).toBe(100);
    expect([...got].sort()).toEqual([...ids].sort());
  });

  it('never gives the same job to two pollers of one agent, nor a job to another agent', async () => {
    const a = await onlineAgent();
    const b = await onlineAgent();
    const pollsA = Array.from({ length: 10 }, () => core.dispatcher.poll(a.agent, 2000));
    const pollsB = Array.from({ length: 10 }, () => core.dispatcher.poll(b.agent, 500));
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await core.jobs.push(a.agent, `j${i}`, { source: 'test' })).id);
    const gotA = (await Promise.all(pollsA)).map((r) => r?.id);
    const gotB = await Promise.all(pollsB);
    expect(new Set(gotA).size).toBe(10);
    expect([...gotA].sort()).toEqual([...ids].sort());
    expect(gotB).toEqual(Array.from({ length: 10 }, () => null)); // each of b's ten polls got nothing
  });

  it('expires a sent job with no report after the lease, and running renews the lease', async () => {
    const { agent } = await onlineAgent();
    const silent = await core.jobs.push(agent, 'silent', { source: 'test' });
    const busy = await core.jobs.push(agent, 'busy', { source: 'test' });
    await core.jobs.take(agent, 2);
    // Renewals one after the other; the first that fails stops them, and fails the test.
    let renewing = true;
    let renewed = 0;
    const renewals = (async () => {
      while (renewing) {
        await core.jobs.report(agent, busy.id, 'running', 'still going');
        renewed++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const renewalError = renewals.then(
      () => null,
      (err: unknown) => err,
    );
    try {
      // Both were taken at once with the same lease: once the silent one has expired, the busy one's first lease is
      // over too, and only its renewals keep it. A sweep by hand after a renewal made since shows it kept.
      await eventually(async () => (await core.jobs.get(silent.id, null)).status === 'expired', LEASE_MS + 10_000, 'lease expiry');
      const since = renewed;
      await eventually(() => renewed > since, 10_000, 'a renewal after the first lease ended');
      await core.sweeper.sweepOnce();
      expect((await core.jobs.get(busy.id, null)).status).toBe('running');
    } finally {
      renewing = false;
      await renewals.catch(() => undefined);
    }
    expect(await renewalError).toBeNull();
    await core.jobs.report(agent, busy.id, 'succeeded', 'done');
    expect((await core.jobs.get(busy.id, null)).status).toBe('succeeded');
    expect(await statusEvents(silent.id)).toEqual(['queuing', 'sent', 'expired']);
  });

  it('takes an agent offline when it stops polling: queued jobs expire and events say so', async () => {
    const { agent, userId } = await onlineAgent();
    const keepAlive = setInterval(() => void core.agents.recordPoll(agent, null), 100);
    const queued = await core.jobs.push(agent, 'later', { source: 'test' });
    expect(queued.status).toBe('queuing');
    clearInterval(keepAlive);
    await eventually(async () => (await core.jobs.get(queued.id, null)).status === 'expired', 15_000, 'offline expiry');
    expect((await core.jobs.get(queued.id, null)).reason).toBe('agent offline');
    const agentMessages = async () => (await readStream(core, core.keys.messageStream)).filter((m) => m.agent_id === agent.id);
    const messages = await eventually(
      async () => {
        const found = await agentMessages();
        return found.length >= 2 && found;
      },
      10_000,
      'offline message',
    );
    expect(messages.map((m) => m.kind)).toEqual(['agent:online', 'agent:offline']);
    expect(messages[1]).toMatchObject({ user_id: userId, message: `Agent ${agent.name} is offline` });
    await core.agents.recordPoll(agent, null);
    expect((await agentMessages()).map((m) => m.kind)).toEqual(['agent:online', 'agent:offline', 'agent:online']);
  });

  it('brings many agents online at once without exhausting the MySQL pool', async () => {
    seq++;
    const { user } = await userWithAgent(core, `u${seq}`, `many${seq}`);
    const agents = await Promise.all(
      Array.from({ length: 80 }, (_, i) => core.agents.create(user.id, `m${seq}x${i}`).then((r) => r.agent)),
    );
    await Promise.all(agents.map((a) => core.agents.recordPoll(a, null))); // 80 transactions, 32 connections
    const online = (await core.agents.list(user.id)).filter((a) => a.online);
    expect(online).toHaveLength(80);
  });

  it('cancels a queued job, and only a queued one', async () => {
    const { agent, userId } = await onlineAgent();
    const a = await core.jobs.push(agent, 'a', { source: 'test' });
    const b = await core.jobs.push(agent, 'b', { source: 'test' });
    expect((await core.jobs.cancel(userId, a.id)).status).toBe('canceled');
    await expect(core.jobs.cancel(userId + 999, b.id)).rejects.toMatchObject({ status: 404 });
    expect(await core.jobs.take(agent, 5)).toEqual([{ id: b.id, message: 'b' }]);
    await expect(core.jobs.cancel(userId, b.id)).rejects.toMatchObject({ status: 409 });
    await expect(core.jobs.cancel(userId, a.id)).rejects.toMatchObject({ status: 409 });
  });

  it('releases a delayed job when due, keeping its id', async () => {
    const { agent } = await onlineAgent();
    const keepAlive = setInterval(() => void core.agents.recordPoll(agent, null), 100);
    try {
      const { id } = await core.jobs.delay(agent, 'backup', 300, { source: 'test' });
      await expect(core.jobs.get(id, null)).rejects.toMatchObject({ status: 404 });
      const job = await core.dispatcher.poll(agent, 5000);
      expect(job).toEqual({ id, message: 'backup' });
    } finally {
      clearInterval(keepAlive);
    }
  });

  it('stores results up to 64 KiB and truncates longer ones visibly', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'cat big', { source: 'test' });
    await core.jobs.take(agent, 1);
    await core.jobs.report(agent, id, 'succeeded', 'x'.repeat(200_000));
    const job = await core.jobs.get(id, null);
    expect(Buffer.byteLength(job.result!)).toBeLessThanOrEqual(64 * 1024);
    expect(job.result).toMatch(/truncated: \d+ bytes omitted/);
  });

  it('rejects messages over 4096 characters', async () => {
    const { agent } = await onlineAgent();
    await expect(core.jobs.push(agent, 'x'.repeat(4097), { source: 'test' })).rejects.toMatchObject({
      status: 400,
      code: 'MessageTooLong',
    });
  });
});

describe('a job pushed on the node where its agent waits', () => {
  it('is handed straight to the waiting poll: committed as sent with its lease, events queuing then sent, no queue', async () => {
    const { agent } = await onlineAgent();
    const poll = core.dispatcher.poll(agent, 10_000);
    await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
    const wakes: number[] = [];
    const wake = core.dispatcher.wake.bind(core.dispatcher);
    core.dispatcher.wake = (agentId) => (wakes.push(agentId), wake(agentId));
    try {
      const pushed = await core.jobs.push(agent, 'uptime', { source: 'test' });
      expect(pushed.status).toBe('queuing');
      expect(await poll).toEqual({ id: pushed.id, message: 'uptime' });
      const row = await core.jobRepo.get(pushed.id);
      expect(row).toMatchObject({ status: 'sent' });
      expect(row!.leaseUntil!.getTime()).toBeGreaterThan(Date.now());
      expect(await core.redis.zscore(core.keys.leases, pushed.id)).toBe(String(row!.leaseUntil!.getTime()));
      expect(await core.queue.queued(agent.id)).toEqual([]);
      // Not through the queue and pub/sub: no wake-up for this agent (other tests' agents may still be woken meanwhile).
      expect(wakes.filter((id) => id === agent.id)).toEqual([]);
      expect(await statusEvents(pushed.id)).toEqual(['queuing', 'sent']);
      await core.jobs.report(agent, pushed.id, 'succeeded', 'up');
      expect(await statusEvents(pushed.id)).toEqual(['queuing', 'sent', 'succeeded']);
    } finally {
      core.dispatcher.wake = wake;
    }
  });

  /**
   * A poll of a fresh agent waits on this node; a job is pushed on another node (its wake-up late), then one here. The
   * first `unsendFailures` attempts to queue the second behind the first fail. Returns how many attempts were made.
   */
  async function queuedBehindOlder(unsendFailures: number): Promise<number> {
    const other = await openCore(config);
    const wake = core.dispatcher.wake.bind(core.dispatcher);
    const unsend = core.jobRepo.unsend.bind(core.jobRepo);
    let attempts = 0;
    core.jobRepo.unsend = async (...args) => {
      if (attempts++ < unsendFailures) throw new Error('connection lost');
      return unsend(...args);
    };
    try {
      const { agent } = await onlineAgent();
      const poll = core.dispatcher.poll(agent, 10_000);
      await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
      core.dispatcher.wake = () => undefined; // the wake-up for the first job is late
      const first = await other.jobs.push(agent, 'first', { source: 'test' });
      const second = await core.jobs.push(agent, 'second', { source: 'test' });
      // The second is queued behind the first (tried again a second later after a failure), and the poll, given
      // back, looked at the queue again: it has the first.
      expect(await poll).toEqual({ id: first.id, message: 'first' });
      await eventually(async () => (await core.queue.queued(agent.id)).includes(second.id), 5000, 'the second job to be queued');
      expect(await core.queue.queued(agent.id)).toEqual([second.id]);
      expect((await core.jobRepo.get(second.id))!.status).toBe('queuing');
      core.dispatcher.wake = wake;
      expect(await core.dispatcher.poll(agent, 5000)).toEqual({ id: second.id, message: 'second' });
      expect(await statusEvents(second.id)).toEqual(['queuing', 'sent']);
      return attempts;
    } finally {
      core.dispatcher.wake = wake;
      core.jobRepo.unsend = unsend;
      await other.close();
    }
  }

  it('queues it behind older jobs of the agent that the waiting poll has not been woken for yet', async () => {
    expect(await queuedBehindOlder(0)).toBe(1);
  });

  it('queues it behind the older jobs even when MySQL fails the first time, rather than leave it sent to nobody', async () => {
    expect(await queuedBehindOlder(1)).toBe(2);
  });

  it('puts it back in the queue when the waiting client went away before the answer', async () => {
    const { agent } = await onlineAgent();
    let gone = false;
    const poll = core.dispatcher.poll(agent, 10_000, { closed: () => gone, onClose: () => undefined });
    await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
    const pushing = core.jobs.push(agent, 'lost answer', { source: 'test' });
    await new Promise((r) => setImmediate(r)); // the poll is claimed; the insert is on its way to MySQL
    gone = true;
    const pushed = await pushing;
    expect(await poll).toBeNull();
    expect((await core.jobRepo.get(pushed.id))!.status).toBe('queuing');
    expect(await core.queue.queued(agent.id)).toEqual([pushed.id]);
    expect(await core.dispatcher.poll(agent, 5000)).toEqual({ id: pushed.id, message: 'lost answer' });
  });
});

/** Holds a node's calls of one JobRepo method until released; `entered` resolves at the first call. */
function hold<K extends 'markSent' | 'insert'>(node: Core, method: K) {
  const original = node.jobRepo[method];
  const call = original.bind(node.jobRepo) as (...args: unknown[]) => Promise<unknown>;
  let entered!: () => void;
  let release!: () => void;
  const state = {
    entered: new Promise<void>((r) => (entered = r)),
    release: () => release(),
    restore: () => void ((node.jobRepo as unknown as Record<K, unknown>)[method] = original),
  };
  const gate = new Promise<void>((r) => (release = r));
  (node.jobRepo as unknown as Record<K, unknown>)[method] = async (...args: unknown[]) => {
    entered();
    await gate;
    return call(...args);
  };
  return state;
}

describe('a node that stops while it hands out a job', () => {
  it('answers the poll with the job its take was committing, rather than leave the job sent but never received', async () => {
    const node = await openCore(config);
    try {
      const { agent } = await onlineAgent();
      const pushed = await core.jobs.push(agent, 'taken during the stop', { source: 'test' });
      const held = hold(node, 'markSent');
      const poll = node.dispatcher.poll(agent, 10_000);
      await held.entered;
      node.dispatcher.stop();
      held.release();
      expect(await poll).toEqual({ id: pushed.id, message: 'taken during the stop' });
      expect((await core.jobRepo.get(pushed.id))!.status).toBe('sent');
      // Polls that come after the stop get nothing, at once.
      expect(await node.dispatcher.poll(agent, 10_000)).toBeNull();
    } finally {
      await node.close();
    }
  });

  it('answers the poll with a job being handed straight to it when the stop came', async () => {
    const node = await openCore(config);
    try {
      const { agent } = await onlineAgent();
      const poll = node.dispatcher.poll(agent, 10_000);
      await eventually(() => node.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
      const held = hold(node, 'insert');
      const pushing = node.jobs.push(agent, 'handed over during the stop', { source: 'test' });
      await held.entered;
      node.dispatcher.stop();
      held.release();
      const pushed = await pushing;
      expect(await poll).toEqual({ id: pushed.id, message: 'handed over during the stop' });
      expect((await core.jobRepo.get(pushed.id))!.status).toBe('sent');
    } finally {
      await node.close();
    }
  });
});

describe("a poll whose agent's credential changes while a job is on its way to it", () => {
  it('gets nothing, and the job taken for it goes back to the queue', async () => {
    const { agent } = await onlineAgent();
    const pushed = await core.jobs.push(agent, 'taken for a revoked poll', { source: 'test' });
    const held = hold(core, 'markSent');
    try {
      const poll = core.dispatcher.poll(agent, 10_000);
      await held.entered;
      core.dispatcher.endPollsOf(agent.tokenHash); // the token was rotated, or the agent disabled
      held.release();
      expect(await poll).toBeNull();
      expect((await core.jobRepo.get(pushed.id))!.status).toBe('queuing');
      expect(await core.queue.queued(agent.id)).toEqual([pushed.id]);
    } finally {
      held.restore();
    }
  });

  it('gets nothing when the job was being handed straight to it, and the job is queued', async () => {
    const { agent } = await onlineAgent();
    const poll = core.dispatcher.poll(agent, 10_000);
    await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
    const held = hold(core, 'insert');
    try {
      const pushing = core.jobs.push(agent, 'handed to a revoked poll', { source: 'test' });
      await held.entered;
      core.dispatcher.endPollsOf(agent.tokenHash);
      held.release();
      const pushed = await pushing;
      expect(await poll).toBeNull();
      expect((await core.jobRepo.get(pushed.id))!.status).toBe('queuing');
      expect(await core.queue.queued(agent.id)).toEqual([pushed.id]);
    } finally {
      held.restore();
    }
  });
});

describe('polls right after a take that found the queue empty', () => {
  it('do not ask Redis again, and still get a job queued meanwhile on another node (its wake-up counts)', async () => {
    const other = await openCore(config);
    const pop = core.queue.pop.bind(core.queue);
    let pops = 0;
    core.queue.pop = (agentId, max) => (pops++, pop(agentId, max));
    try {
      const { agent } = await onlineAgent();
      expect(await core.dispatcher.poll(agent, 0)).toBeNull();
      expect(pops).toBe(1);
      expect(await core.dispatcher.poll(agent, 0)).toBeNull(); // the busy agent's next poll: nothing was queued since
      expect(pops).toBe(1);
      const waiting = core.dispatcher.poll(agent, 10_000);
      const { id } = await other.jobs.push(agent, 'from afar', { source: 'test' });
      expect(await waiting).toEqual({ id, message: 'from afar' });
      // A job queued on this node counts at once, before its wake-up arrives.
      core.dispatcher.wake = () => undefined;
      const local = await core.jobs.push(agent, 'from here', { source: 'test' });
      expect(await core.dispatcher.poll(agent, 0)).toEqual({ id: local.id, message: 'from here' });
    } finally {
      core.queue.pop = pop;
      delete (core.dispatcher as { wake?: unknown }).wake; // back to the class's method
      await other.close();
    }
  });
});

describe('several nodes and Redis loss', () => {
  it('expires each overdue job once when two sweepers run at once', async () => {
    const other = await openCore(config);
    try {
      const { agent } = await onlineAgent();
      const ids = [];
      const keepAlive = setInterval(() => void core.agents.recordPoll(agent, null), 100);
      for (let i = 0; i < 30; i++) ids.push((await core.jobs.push(agent, `s${i}`, { source: 'test' })).id);
      clearInterval(keepAlive);
      core.sweeper.stop(); // drive both sweepers by hand, at the same moment
      await core.jobs.take(agent, 30);
      // Past the lease, as the sweepers see it: in MySQL and in Redis's lease index.
      const past = Date.now() - 1000;
      await core.db.pool.query('UPDATE jobs SET lease_until = ? WHERE id IN (?)', [new Date(past), ids]);
      await core.redis.zadd(core.keys.leases, ...ids.flatMap((id) => [past, id]));
      const [r1, r2] = await Promise.all([core.sweeper.sweepOnce(), other.sweeper.sweepOnce()]);
      expect(r1.expired + r2.expired).toBeGreaterThanOrEqual(30); // other tests' leftovers may expire too
      for (const id of ids) expect(await statusEvents(id)).toEqual(['queuing', 'sent', 'expired']);
    } finally {
      core.sweeper.start(config.sweepIntervalMs);
      await other.close();
    }
  });

  it('wakes a long poll on one node when the job is pushed on another', async () => {
    const other = await openCore(config);
    try {
      const { agent } = await onlineAgent();
      const poll = core.dispatcher.poll(agent, 60_000);
      await eventually(() => core.dispatcher.hasIdlePoll(agent.id), 5000, 'the poll to wait idle');
      const { id } = await other.jobs.push(agent, 'cross-node', { source: 'test' });
      expect(await pollWithinBound(poll)).toEqual({ id, message: 'cross-node' });
    } finally {
      await other.close();
    }
  }, 60_000);

  it('rebuilds queues from MySQL after every Redis key is deleted, and delivers the jobs', async () => {
    const { agent } = await onlineAgent();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await core.jobs.push(agent, `r${i}`, { source: 'test' })).id);
    core.sweeper.stop();
    core.reconciler.stop(); // its own check would notice the loss first and rebuild before this test does
    try {
      await deleteRedisPrefix(config.redisPrefix);
      expect(await core.queue.queued(agent.id)).toEqual([]);
      const report = await core.reconciler.reconcileOnce();
      expect(report.rebuilt).toBe(true);
      expect(await core.queue.queued(agent.id)).toEqual(ids);
      const taken = await core.jobs.take(agent, 10);
      expect(taken.map((j) => j.id)).toEqual(ids);
    } finally {
      core.sweeper.start(config.sweepIntervalMs);
      core.reconciler.start(config.reconcileIntervalMs, config.sweepIntervalMs);
    }
  });

  it('puts back a queued job that vanished from its Redis queue', async () => {
    const { agent } = await onlineAgent();
    const keepAlive = setInterval(() => void core.agents.recordPoll(agent, null), 100);
    try {
      const { id } = await core.jobs.push(agent, 'lost', { source: 'test' });
      await core.redis.del(core.keys.agentQueue(agent.id)); // as if a node crashed between pop and record
      // Older than the reconciler's grace period (5 s), which spares jobs whose push may still be on its way.
      await core.db.pool.query('UPDATE jobs SET created_at = ? WHERE id = ?', [new Date(Date.now() - 10_000), id]);
      const report = await core.reconciler.reconcileOnce();
      expect(report.requeued).toBeGreaterThanOrEqual(1);
      expect(await core.jobs.take(agent, 1)).toEqual([{ id, message: 'lost' }]);
    } finally {
      clearInterval(keepAlive);
    }
  });
});
