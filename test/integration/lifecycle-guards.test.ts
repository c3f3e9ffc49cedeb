/**
 * The guards that keep the lifecycle promises (README.md, docs/design.md), each driven to the state where only that guard decides:
 * a take of a job that is no longer queuing, a lease renewed by `running`, an agent that polled again before the
 * offline sweep, a late approval, an approval and a denial at once. No background loops: every sweep is by hand.
 */
import type { Core } from '../../cloud/core';
import { identityCredential } from '../../cloud/approvals/credentials';
import type { Approver } from '../../cloud/approvals/decisions';
import type { AgentRow } from '../../cloud/store/agents';
import { dropNamespace, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';

const name = uniqueName();
const LEASE_MS = 60_000;
const config = testConfig(name, { jobLeaseMs: LEASE_MS, agentOfflineAfterMs: 3000, approvalTimeoutMs: 60_000 });
let core: Core;
let other: Core;

beforeAll(async () => {
  core = await openCore(config);
  other = await openCore(config);
});
afterAll(async () => {
  await Promise.all([core.close(), other.close()]);
  await dropNamespace(name);
});

let seq = 0;
/** A fresh user with one agent that has polled (so it is online), and two linked chat accounts. */
async function onlineAgent(): Promise<{ agent: AgentRow; userId: number; alice: number; bob: number }> {
  seq++;
  const { user, agent } = await userWithAgent(core, `u${seq}`, `a${seq}`);
  await core.agents.recordPoll(agent, '127.0.0.1');
  const alice = await core.identities.link(`slack:T${seq}:UALICE`, user.name);
  const bob = await core.identities.link(`slack:T${seq}:UBOB`, user.name);
  return { agent, userId: user.id, alice: alice.id, bob: bob.id };
}

async function row(jobId: string): Promise<Record<string, any>> {
  const [rows] = await core.db.pool.query('SELECT * FROM jobs WHERE id = ?', [jobId]);
  return (rows as Record<string, any>[])[0];
}

const chat = (userId: number, identityId: number, label: string): Approver => ({
  userId,
  credential: identityCredential(identityId),
  via: 'chat',
  label,
});

describe('a job is handed out at most once', () => {
  it('never hands out a job canceled in MySQL whose id is still in the Redis queue', async () => {
    const { agent, userId } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'canceled meanwhile', { source: 'test' });
    await core.db.pool.query("UPDATE jobs SET status = 'canceled', finished_at = NOW(3) WHERE id = ?", [id]);
    expect(await core.queue.queued(agent.id)).toEqual([id]);
    expect(await core.jobs.take(agent, 5)).toEqual([]);
    expect((await core.jobs.get(id, userId)).status).toBe('canceled');
  });

  it('hands out a taken job once, even when its id is queued again', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'once', { source: 'test' });
    expect(await core.jobs.take(agent, 5)).toEqual([{ id, message: 'once' }]);
    await core.queue.requeue(agent.id, [id]);
    expect(await other.jobs.take(agent, 5)).toEqual([]);
    expect(await core.jobs.take(agent, 5)).toEqual([]);
    expect((await row(id)).status).toBe('sent');
  });
});

describe('running renews the lease', () => {
  it('moves the lease in MySQL and in Redis to a full lease from the report', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'long work', { source: 'test' });
    await core.jobs.take(agent, 1);
    // Pretend the lease is nearly over, in both stores.
    const soon = Date.now() + 1000;
    await core.db.pool.query('UPDATE jobs SET lease_until = ? WHERE id = ?', [new Date(soon), id]);
    await core.queue.setLeases([{ id, at: soon }]);
    const before = Date.now();
    await core.jobs.report(agent, id, 'running', 'half way');
    const leaseUntil = (await row(id)).lease_until as Date;
    expect(leaseUntil.getTime()).toBeGreaterThanOrEqual(before + LEASE_MS - 5);
    const score = Number(await core.redis.zscore(core.keys.leases, id));
    expect(score).toBeGreaterThanOrEqual(before + LEASE_MS - 5);
    // A sweep after the old deadline leaves it running.
    expect(await core.queue.claimExpiredLeases(soon + 1, 10)).toEqual([]);
    expect((await row(id)).status).toBe('running');
  });
});

describe('offline expiry', () => {
  it('spares an agent that polled again after the sweep claimed it as silent', async () => {
    const { agent } = await onlineAgent();
    const { id } = await core.jobs.push(agent, 'still wanted', { source: 'test' });
    // The agent's presence is old: a sweep claims it as silent.
    await core.redis.zadd(core.keys.presenceSeen, Date.now() - 10_000, String(agent.id));
    const claimed = await core.queue.claimSilentAgents(Date.now() - 3000, 10);
    expect(claimed).toContain(String(agent.id));
    // Before the sweep's transaction, the agent polls again.
    await core.queue.touchPresence(agent.id, Date.now());
    expect(await core.agents.goOffline(agent.id)).toBe(false);
    expect((await row(id)).status).toBe('queuing');
    expect(await core.queue.queued(agent.id)).toEqual([id]);
  });
});

describe('approval decisions', () => {
  it('refuses an approval after the approval time, before any sweep (ApprovalExpired)', async () => {
    const { agent, userId, alice, bob } = await onlineAgent();
    await core.agents.setApprovalPatterns(userId, agent.name, ['deploy *']);
    const gated = (await core.agents.find(userId, agent.name))!;
    const { id } = await core.jobs.push(gated, 'deploy late', { source: 'slack', pushedBy: identityCredential(alice) });
    await core.db.pool.query('UPDATE jobs SET approval_until = ? WHERE id = ?', [new Date(Date.now() - 1), id]);
    await expect(core.approvals.approve(id, chat(userId, bob, 'bob'))).rejects.toMatchObject({
      status: 409,
      code: 'ApprovalExpired',
      message: `Job ${id} was not approved in time and has expired; ask for it again.`,
    });
    expect(await row(id)).toMatchObject({ status: 'expired', approved_by: null });
    expect(await core.queue.queued(agent.id)).toEqual([]);
  });

  it('lets exactly one of an approval and a denial made at once, on two nodes, win', async () => {
    for (let round = 0; round < 10; round++) {
      const { agent, userId, alice, bob } = await onlineAgent();
      await core.agents.setApprovalPatterns(userId, agent.name, ['deploy *']);
      const gated = (await core.agents.find(userId, agent.name))!;
      const { id } = await core.jobs.push(gated, `deploy race ${round}`, { source: 'slack', pushedBy: identityCredential(alice) });
      const carol = await core.identities.link(`slack:T${seq}:UCAROL`, `u${seq}`);
      const outcomes = await Promise.allSettled([
        core.approvals.approve(id, chat(userId, bob, 'bob')),
        other.approvals.deny(id, chat(userId, carol.id, 'carol'), 'no'),
      ]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const r = await row(id);
      if (outcomes[0].status === 'fulfilled') {
        expect(r).toMatchObject({ status: 'queuing', approved_by: 'bob', denied_by: null });
        expect(await core.queue.queued(agent.id)).toEqual([id]);
      } else {
        expect(r).toMatchObject({ status: 'canceled', approved_by: null, denied_by: 'carol' });
        expect(await core.queue.queued(agent.id)).toEqual([]);
      }
    }
  });
});
