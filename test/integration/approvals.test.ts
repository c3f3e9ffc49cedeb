/** Two-person approval on real MariaDB and Redis: gating, approve, deny, timeout, races between nodes, restart, the user API. */
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { ConflictError, ForbiddenError, NotFoundError, BadRequestError } from '../../cloud/errors';
import { identityCredential } from '../../cloud/approvals/credentials';
import { parseIdentityKey } from '../../cloud/accounts/identities';
import type { Approver } from '../../cloud/approvals/decisions';
import type { JobOrigin } from '../../cloud/lifecycle/push';
import type { AgentRow } from '../../cloud/store/agents';
import { formatDuration } from '../../config/duration';
import { dropNamespace, eventually, openCore, openServer, readStream, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

const name = uniqueName();
// No background loops: every sweep in this file is driven by hand, so nothing expires or releases behind a test's back.
const config = testConfig(name);
let core: Core;

const ALICE = 'slack:T1:UALICE';
const BOB = 'slack:T1:UBOB';
const CAROL = 'teams:T2:UCAROL';
const MALLORY = 'slack:T1:UMALLORY';

beforeAll(async () => {
  core = await openCore(config);
});
afterAll(async () => {
  await core.close();
  await dropNamespace(name);
});

let seq = 0;
/** A fresh user with one online agent whose `deploy *` jobs need approval. */
async function gatedAgent(patterns: string[] = ['deploy *'], online = true): Promise<{ agent: AgentRow; userId: number }> {
  seq++;
  const { user, agent } = await userWithAgent(core, `u${seq}`, `a${seq}`);
  await linkPeople(user.id);
  const gated = await core.agents.setApprovalPatterns(user.id, agent.name, patterns);
  expect(gated.approvalPatterns).toEqual(patterns);
  if (online) await core.agents.recordPoll(gated, '127.0.0.1');
  return { agent: gated, userId: user.id };
}

/** Identity rows of the people in these tests, per user (identity keys are unique, so each user's carry its id). */
const people = new Map<string, number>();
async function linkPeople(userId: number, on: Core = core): Promise<void> {
  for (const key of [ALICE, BOB, CAROL, MALLORY]) {
    const { channel, tenant, externalId } = parseIdentityKey(key);
    await on.identityRepo.link(channel, `${tenant}-${userId}`, externalId, userId, null, new Date());
    people.set(`${userId} ${key}`, (await on.identityRepo.find(channel, `${tenant}-${userId}`, externalId))!.id);
  }
}
function personId(userId: number, key: string): number {
  const id = people.get(`${userId} ${key}`);
  if (id === undefined) throw new Error(`${key} is not linked to user ${userId}`);
  return id;
}

/** A chat account of the user deciding on a job. */
function chat(userId: number, identity: string): Approver {
  return { userId, credential: identityCredential(personId(userId, identity)), via: 'chat', label: identity };
}

/** A job asked for in chat by one of the user's accounts. */
function asked(userId: number, key: string): JobOrigin {
  return { source: 'slack', requester: key, pushedBy: identityCredential(personId(userId, key)) };
}

async function statusEvents(jobId: string, on: Core = core): Promise<string[]> {
  return (await readStream(on, on.keys.jobStatusStream)).filter((e) => e.job_id === jobId).map((e) => e.status);
}

/** The job's row as MySQL has it (not through the repository). */
async function row(jobId: string, on: Core = core): Promise<Record<string, any>> {
  const [rows] = await on.db.pool.query('SELECT * FROM jobs WHERE id = ?', [jobId]);
  return (rows as Record<string, any>[])[0];
}

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/**
 * The job ids that `run` announced as finished: the PUBLISHes on the done channel it sent to Redis, which wake the
 * `?wait` requests of every node (read at the client, as a Redis Cluster does not keep order between its nodes).
 */
async function doneSignals(run: () => Promise<unknown>, on: Core[] = [core]): Promise<string[]> {
  const spies = on.map((c) => jest.spyOn(c.redis, 'publish'));
  try {
    await run();
    return spies.flatMap((spy, i) => spy.mock.calls.filter(([channel]) => channel === on[i].keys.doneChannel).map(([, id]) => String(id)));
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

/** Checks that a job is still awaiting approval, undecided, unqueued, with only its first event. */
async function expectUntouched(agent: AgentRow, jobId: string): Promise<void> {
  const r = await row(jobId);
  expect(r).toMatchObject({
    status: 'awaiting_approval',
    approved_by: null,
    approved_at: null,
    denied_by: null,
    reason: null,
    finished_at: null,
  });
  expect(await core.queue.queued(agent.id)).not.toContain(jobId);
  expect(await statusEvents(jobId)).toEqual(['awaiting_approval']);
}

describe('gating', () => {
  it('holds a matching job as awaiting_approval (not queued, deadline set, event appended) and queues others as before', async () => {
    const { agent, userId } = await gatedAgent();
    const before = Date.now();
    const pushed = await core.jobs.push(agent, 'deploy web v2', asked(userId, ALICE));
    const after = Date.now();
    expect(pushed).toEqual({ id: pushed.id, status: 'awaiting_approval' });

    const r = await row(pushed.id);
    expect(r).toMatchObject({
      status: 'awaiting_approval',
      requester: ALICE,
      approval_required: 1,
      approved_by: null,
      denied_by: null,
      reason: null,
    });
    const until = (r.approval_until as Date).getTime();
    expect(until).toBeGreaterThanOrEqual(before + config.approvalTimeoutMs - 5);
    expect(until).toBeLessThanOrEqual(after + config.approvalTimeoutMs + 5);
    expect(config.approvalTimeoutMs).toBe(3_600_000); // the default, 1h

    expect(await core.queue.queued(agent.id)).toEqual([]);
    expect(await core.jobs.take(agent, 5)).toEqual([]);
    expect(await statusEvents(pushed.id)).toEqual(['awaiting_approval']);
    const job = await core.jobs.get(pushed.id, null);
    expect(job.approval).toEqual({ until: new Date(until), approvedBy: null, approvedAt: null, deniedBy: null });

    // Case-insensitive, and any whitespace between the words.
    expect((await core.jobs.push(agent, 'DEPLOY   db', { source: 'test' })).status).toBe('awaiting_approval');

    const plain = await core.jobs.push(agent, 'uptime', { source: 'test' });
    expect(plain.status).toBe('queuing');
    expect((await core.jobs.get(plain.id, null)).approval).toBeNull();
    expect(await core.jobs.take(agent, 5)).toEqual([{ id: plain.id, message: 'uptime' }]);
    expect(await statusEvents(plain.id)).toEqual(['queuing', 'sent']);
  });

  it('holds a matching job even for an offline agent; approving it then expires it as offline', async () => {
    const { agent, userId } = await gatedAgent(['deploy *'], false);
    const { id, status } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    expect(status).toBe('awaiting_approval');
    let job: any;
    expect(await doneSignals(async () => (job = await core.approvals.approve(id, chat(userId, BOB))))).toEqual([id]);
    expect(job).toMatchObject({ status: 'expired', reason: 'agent offline' });
    expect(await row(id)).toMatchObject({ status: 'expired', reason: 'agent offline', approved_by: BOB });
    expect(await core.queue.queued(agent.id)).toEqual([]);
    expect(await statusEvents(id)).toEqual(['awaiting_approval', 'expired']);
  });
});

describe('short job ids', () => {
  it('finds a job awaiting approval by the end of its id, and explains what it cannot find', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    expect(await core.approvals.findAwaiting(userId, id)).toBe(id);
    expect(await core.approvals.findAwaiting(userId, ` ${id.slice(-6).toLowerCase()} `)).toBe(id);
    expect(await core.approvals.findAwaiting(userId, id.slice(-3))).toBe(id);
    expect(await failure(core.approvals.findAwaiting(userId, id.slice(-2)))).toMatchObject({
      code: 'InvalidJobId',
      message: `"${id.slice(-2)}" is not a job id.`,
    });
    expect(await failure(core.approvals.findAwaiting(userId, 'ab%cd'))).toMatchObject({ code: 'InvalidJobId' });
    expect(await failure(core.approvals.findAwaiting(userId, 'x'.repeat(50)))).toMatchObject({
      code: 'InvalidJobId',
      message: `"${'x'.repeat(40)}" is not a job id.`,
    });
    // Another user's job is not found by its end, nor is a job of this user that is no longer waiting.
    const other = await gatedAgent();
    expect(await failure(core.approvals.findAwaiting(other.userId, id.slice(-6)))).toMatchObject({
      code: 'JobNotFound',
      message: `No job of yours awaiting approval ends with ${id.slice(-6)}.`,
    });
    const plain = await core.jobs.push(agent, 'uptime', { source: 'test' });
    expect(await failure(core.approvals.findAwaiting(userId, plain.id.slice(-6)))).toMatchObject({ code: 'JobNotFound' });

    // Two waiting jobs ending alike (made so in MySQL: ids are random) need more of the id.
    const second = await core.jobs.push(agent, 'deploy db', asked(userId, ALICE));
    const alike = `${second.id.slice(0, -4)}${id.slice(-4)}`;
    await core.db.pool.query('UPDATE jobs SET id = ? WHERE id = ?', [alike, second.id]);
    const ambiguous = await failure(core.approvals.findAwaiting(userId, id.slice(-4)));
    expect(ambiguous).toMatchObject({ code: 'AmbiguousJobId' });
    expect(ambiguous.message).toBe(
      `${id.slice(-4)} fits 2 jobs awaiting approval (${[id, alike].sort().reverse().join(', ')}): give more of the id.`,
    );
    expect(await core.approvals.findAwaiting(userId, id.slice(-12))).toBe(id);
  });
});

describe('decisions', () => {
  it('queues the job when another account of the same user approves; the agent then gets it', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web v3', asked(userId, ALICE));
    const before = Date.now();
    const job = await core.approvals.approve(id, chat(userId, BOB));
    const after = Date.now();
    expect(job).toMatchObject({ id, status: 'queuing', reason: null, requester: ALICE });
    expect(job.approval).toMatchObject({ approvedBy: BOB, deniedBy: null });

    const r = await row(id);
    expect(r).toMatchObject({ status: 'queuing', approved_by: BOB, denied_by: null, requester: ALICE, finished_at: null });
    expect((r.approved_at as Date).getTime()).toBeGreaterThanOrEqual(before - 5);
    expect((r.approved_at as Date).getTime()).toBeLessThanOrEqual(after + 5);

    expect(await core.queue.queued(agent.id)).toEqual([id]);
    expect(await core.jobs.take(agent, 5)).toEqual([{ id, message: 'deploy web v3' }]);
    expect(await statusEvents(id)).toEqual(['awaiting_approval', 'queuing', 'sent']);
    // The stored approval survives the later transitions.
    expect((await core.jobs.get(id, null)).approval).toMatchObject({ approvedBy: BOB });
  });

  it('cancels a denied job with the reason and never hands it out', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy db', asked(userId, ALICE));
    let job: any;
    expect(await doneSignals(async () => (job = await core.approvals.deny(id, chat(userId, BOB), '  not during the freeze ')))).toEqual([
      id,
    ]);
    expect(job).toMatchObject({ status: 'canceled', reason: `denied by ${BOB}: not during the freeze` });
    const r = await row(id);
    expect(r).toMatchObject({ status: 'canceled', reason: `denied by ${BOB}: not during the freeze`, denied_by: BOB, approved_by: null });
    expect(r.finished_at).toBeInstanceOf(Date);
    expect(await core.jobs.take(agent, 5)).toEqual([]);
    expect(await core.queue.queued(agent.id)).toEqual([]);
    expect(await statusEvents(id)).toEqual(['awaiting_approval', 'canceled']);

    const late = await failure(core.approvals.approve(id, chat(userId, CAROL)));
    expect(late).toBeInstanceOf(ConflictError);
    expect(late).toMatchObject({ code: 'AlreadyDecided', message: `Job ${id} was already denied by ${BOB}.` });
    expect((await row(id)).status).toBe('canceled');
  });

  it('lets the requester withdraw (deny) her own job; an empty reason names only who denied', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy api', asked(userId, ALICE));
    const job = await core.approvals.deny(id, chat(userId, ALICE), '   ');
    expect(job).toMatchObject({ status: 'canceled', reason: `denied by ${ALICE}` });
    expect(await core.jobs.take(agent, 5)).toEqual([]);
  });

  it('refuses self-approval (SelfApproval) and changes nothing', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    const err = await failure(core.approvals.approve(id, chat(userId, ALICE)));
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err).toMatchObject({ status: 403, code: 'SelfApproval' });
    expect(err.message).toBe(
      'You asked for this job yourself (in chat, or with a token handed to you): another person linked to the same user must approve it.',
    );
    await expectUntouched(agent, id);
    // Another person still can.
    expect((await core.approvals.approve(id, chat(userId, BOB))).status).toBe('queuing');
  });

  it('refuses an account of another user (NotApprover) for approve and deny, and changes nothing', async () => {
    const { agent, userId } = await gatedAgent();
    const stranger = await gatedAgent();
    expect(stranger.userId).not.toBe(userId);
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    for (const attempt of [
      core.approvals.approve(id, chat(stranger.userId, MALLORY)),
      core.approvals.deny(id, chat(stranger.userId, MALLORY), 'mine now'),
      core.approvals.approve(id, {
        userId: stranger.userId,
        credential: { id: 'user-token:0000', identityId: null },
        via: 'api',
        label: 'api (mallory)',
      }),
    ]) {
      const err = await failure(attempt);
      expect(err).toBeInstanceOf(ForbiddenError);
      expect(err).toMatchObject({ status: 403, code: 'NotApprover' });
      expect(err.message).toBe(`You cannot decide on job ${id}: only the accounts linked to the user who owns it can.`);
    }
    await expectUntouched(agent, id);
  });

  it('answers a second approval with a conflict naming who approved first, and queues once', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    await core.approvals.approve(id, chat(userId, BOB));
    const again = await failure(core.approvals.approve(id, chat(userId, CAROL)));
    expect(again).toBeInstanceOf(ConflictError);
    expect(again).toMatchObject({ status: 409, code: 'AlreadyDecided' });
    expect(again.message).toContain(`already approved by ${BOB}`);
    const deny = await failure(core.approvals.deny(id, chat(userId, CAROL), 'too late'));
    expect(deny).toBeInstanceOf(ConflictError);
    expect(deny.message).toContain(`already approved by ${BOB}`);
    expect(await row(id)).toMatchObject({ status: 'queuing', approved_by: BOB, denied_by: null });
    expect(await core.queue.queued(agent.id)).toEqual([id]);
    expect(await statusEvents(id)).toEqual(['awaiting_approval', 'queuing']);
  });

  it('answers unknown jobs with JobNotFound, and jobs no longer awaiting with AlreadyDecided', async () => {
    const unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    for (const attempt of [core.approvals.approve(unknown, chat(1, BOB)), core.approvals.deny(unknown, chat(1, BOB), '')]) {
      const err = await failure(attempt);
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err).toMatchObject({ code: 'JobNotFound', message: `There is no job ${unknown}.` });
    }
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    await core.db.pool.query("UPDATE jobs SET status = 'expired', reason = 'test' WHERE id = ?", [id]);
    const err = await failure(core.approvals.approve(id, chat(userId, BOB)));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'AlreadyDecided', message: `Job ${id} is expired: there is nothing to decide any more.` });
  });

  it('answers a job that needs no approval with NoApproval', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'uptime', asked(userId, ALICE));
    const err = await failure(core.approvals.approve(id, chat(userId, BOB)));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'NoApproval', message: `Job ${id} does not need approval.` });
    expect(await core.jobs.take(agent, 5)).toEqual([{ id, message: 'uptime' }]);
  });
});

describe('short ids', () => {
  it('finds a job awaiting approval by the last 4 characters of its id, and only the user’s own', async () => {
    const { agent, userId } = await gatedAgent();
    const other = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy web', asked(userId, ALICE));
    const short = id.slice(-4);
    expect(await core.approvals.findAwaiting(userId, short)).toBe(id);
    expect(await core.approvals.findAwaiting(userId, ` ${short.toLowerCase()} `)).toBe(id);
    expect(await core.approvals.findAwaiting(userId, id)).toBe(id);

    const unknown = short === '0000' ? '1111' : '0000';
    const missing = await failure(core.approvals.findAwaiting(userId, unknown));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'JobNotFound' });
    const notMine = await failure(core.approvals.findAwaiting(other.userId, short));
    expect(notMine).toBeInstanceOf(NotFoundError);
    const garbage = await failure(core.approvals.findAwaiting(userId, 'a%_'));
    expect(garbage).toBeInstanceOf(BadRequestError);

    // Once decided it is no longer found by its short id.
    await core.approvals.approve(await core.approvals.findAwaiting(userId, short), chat(userId, BOB));
    expect(await failure(core.approvals.findAwaiting(userId, short))).toBeInstanceOf(NotFoundError);
  });
});

describe('delayed jobs', () => {
  it('releases a matching delayed job as awaiting_approval, keeping its requester', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.delay(agent, 'deploy nightly', 200, asked(userId, ALICE));
    const plain = await core.jobs.delay(agent, 'backup', 200, asked(userId, ALICE));
    await eventually(() => Date.now() > plain.dueAt.getTime(), 10_000, 'both jobs to be due'); // plain's is the later
    const report = await core.sweeper.sweepOnce();
    expect(report.released).toBeGreaterThanOrEqual(2);

    const r = await row(id);
    expect(r).toMatchObject({ status: 'awaiting_approval', requester: ALICE, approval_required: 1, reason: null });
    expect(r.approval_until).toBeInstanceOf(Date);
    expect(await statusEvents(id)).toEqual(['awaiting_approval']);
    expect(await core.queue.queued(agent.id)).toEqual([plain.id]);
    expect(await row(plain.id)).toMatchObject({ status: 'queuing', requester: ALICE, approval_required: 0 });

    // The kept requester still may not approve it herself.
    expect(await failure(core.approvals.approve(id, chat(userId, ALICE)))).toMatchObject({ code: 'SelfApproval' });
    expect((await core.approvals.approve(id, chat(userId, BOB))).status).toBe('queuing');
    expect(await core.jobs.take(agent, 5)).toEqual([
      { id: plain.id, message: 'backup' },
      { id, message: 'deploy nightly' },
    ]);
  });
});

describe('timeout', () => {
  it('expires a job with no decision after approvalTimeoutMs, once, when two nodes sweep at once', async () => {
    const fastConfig = testConfig(name, { approvalTimeoutMs: 300 });
    const [n1, n2] = await Promise.all([openCore(fastConfig), openCore(fastConfig)]);
    try {
      const { agent, userId } = await gatedAgent();
      const { id } = await n1.jobs.push(agent, 'deploy web', asked(userId, ALICE));
      const r = await row(id);
      expect((r.approval_until as Date).getTime() - (r.created_at as Date).getTime()).toBe(300);

      // Before the deadline a sweep leaves it alone.
      expect((await n1.sweeper.sweepOnce()).unapproved).toBe(0);
      expect((await row(id)).status).toBe('awaiting_approval');

      await eventually(() => Date.now() > (r.approval_until as Date).getTime(), 10_000, 'the approval deadline to pass');
      let swept = 0;
      const done = await doneSignals(async () => {
        for (const s of await Promise.all([n1.sweeper.sweepOnce(), n2.sweeper.sweepOnce()])) swept += s.unapproved;
      }, [n1, n2]);
      expect(swept).toBe(1);
      expect(done).toEqual([id]); // waiting `?wait` requests hear of it at once

      expect(formatDuration(300)).toBe('300ms');
      expect(await row(id)).toMatchObject({ status: 'expired', reason: 'not approved within 300ms', approved_by: null, denied_by: null });
      expect(await statusEvents(id)).toEqual(['awaiting_approval', 'expired']);
      expect(await core.jobs.take(agent, 5)).toEqual([]);

      const late = await failure(core.approvals.approve(id, chat(userId, BOB)));
      expect(late).toBeInstanceOf(ConflictError);
      expect(late.message).toMatch(/is expired/);
      expect((await n2.approvals.expireUnapproved()) + (await n1.approvals.expireUnapproved())).toBe(0);
      expect(await statusEvents(id)).toEqual(['awaiting_approval', 'expired']);
    } finally {
      await Promise.all([n1.close(), n2.close()]);
    }
  });
});

describe('several nodes', () => {
  it('lets exactly one of two nodes approving at once win; the job is queued once', async () => {
    const other = await openCore(config);
    try {
      for (let round = 0; round < 5; round++) {
        const { agent, userId } = await gatedAgent();
        const { id } = await core.jobs.push(agent, `deploy race ${round}`, asked(userId, ALICE));
        const outcomes = await Promise.allSettled([
          core.approvals.approve(id, chat(userId, BOB)),
          other.approvals.approve(id, chat(userId, CAROL)),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0].reason).toBeInstanceOf(ConflictError);
        const winner = outcomes[0].status === 'fulfilled' ? BOB : CAROL;
        expect(lost[0].reason.message).toContain(`already approved by ${winner}`);
        expect(await row(id)).toMatchObject({ status: 'queuing', approved_by: winner });
        expect(await statusEvents(id)).toEqual(['awaiting_approval', 'queuing']);
        expect(await core.queue.queued(agent.id)).toEqual([id]);
        expect(await other.jobs.take(agent, 5)).toEqual([{ id, message: `deploy race ${round}` }]);
      }
    } finally {
      await other.close();
    }
  });

  it('keeps a job awaiting approval across a restart; a new core approves and queues it', async () => {
    const { agent, userId } = await gatedAgent();
    const { id } = await core.jobs.push(agent, 'deploy after restart', asked(userId, ALICE));
    await core.close();
    core = await openCore(config);
    expect((await core.jobs.get(id, null)).status).toBe('awaiting_approval');
    expect(await core.approvals.findAwaiting(userId, id.slice(-5))).toBe(id);
    expect(await failure(core.approvals.approve(id, chat(userId, ALICE)))).toMatchObject({ code: 'SelfApproval' });
    const job = await core.approvals.approve(id, chat(userId, BOB));
    expect(job.status).toBe('queuing');
    expect(await core.jobs.take(agent, 5)).toEqual([{ id, message: 'deploy after restart' }]);
    expect(await statusEvents(id)).toEqual(['awaiting_approval', 'queuing', 'sent']);
  });
});

describe('user API', () => {
  const apiName = uniqueName();
  let server: { core: Core; http: HttpServer; base: string };
  let userToken: string;
  let agentToken: string;
  let strangerToken: string;
  let agent: AgentRow;
  let opsId: number;

  beforeAll(async () => {
    server = await openServer(testConfig(apiName));
    const ops = await userWithAgent(server.core, 'ops', 'web1');
    opsId = ops.user.id;
    await linkPeople(opsId, server.core);
    userToken = ops.userToken;
    agentToken = ops.agentToken;
    strangerToken = (await userWithAgent(server.core, 'stranger', 'web1')).userToken;
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204); // online
    // A first push caches the agent's name on this node; setting the patterns afterwards must drop that cache.
    expect((await call(server.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 deploy early' } })).body.status).toBe(
      'queuing',
    );
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).body.message).toBe('deploy early');
    agent = await server.core.agents.setApprovalPatterns(ops.user.id, 'web1', ['deploy *']);
  });
  afterAll(async () => {
    await server.http.close();
    await server.core.close();
    await dropNamespace(apiName);
  });

  async function pushed(text: string): Promise<string> {
    const res = await call(server.base, 'POST', '/job/add', { token: userToken, body: { message: `web1 ${text}` } });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('awaiting_approval');
    return res.body.id;
  }

  it('shows the approval in GET /jobs/:id and approves an API job with POST /jobs/:id/approve (200, queued, delivered)', async () => {
    const id = await pushed('deploy v2');
    const shown = await call(server.base, 'GET', `/jobs/${id}`, { token: userToken });
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({
      id,
      status: 'awaiting_approval',
      approval: { required: true, approved_by: '', approved_at: '', denied_by: '', reason: '' },
    });

    const poll = call(server.base, 'GET', '/agent/job?wait=10', { token: agentToken });
    await eventually(() => server.core.dispatcher.waiting > 0, 5000, 'the poll to wait');
    // The token that pushed the job cannot approve it.
    const self = await call(server.base, 'POST', `/jobs/${id}/approve`, { token: userToken });
    expect(self.status).toBe(403);
    expect(self.body.error).toBe('SelfApproval');
    expect((await server.core.jobs.get(id, null)).status).toBe('awaiting_approval');

    // A second token (an admin's `skadi user token`, handed to nobody in chat) may.
    userToken = await server.core.users.rotateToken('ops');
    const before = Date.now();
    const approved = await call(server.base, 'POST', `/jobs/${id}/approve`, { token: userToken });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      id,
      status: 'queuing',
      approval: { required: true, approved_by: 'api (ops)', denied_by: '', reason: '' },
    });
    expect(Date.parse(approved.body.approval.approved_at)).toBeGreaterThanOrEqual(before - 5);
    expect((await poll).body).toEqual({ id, message: 'deploy v2' });

    const after = await call(server.base, 'GET', `/jobs/${id}`, { token: userToken });
    expect(after.body).toMatchObject({
      status: 'sent',
      approval: { required: true, approved_by: 'api (ops)', approved_at: approved.body.approval.approved_at, denied_by: '', reason: '' },
    });

    const again = await call(server.base, 'POST', `/jobs/${id}/approve`, { token: userToken });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('AlreadyDecided');
    expect(again.body.message).toContain('already approved by api (ops)');
  });

  it('refuses the API for a job asked for in chat (403), and another user (403)', async () => {
    const { id } = await server.core.jobs.push(agent, 'deploy from chat', asked(opsId, ALICE));
    for (const path of [`/jobs/${id}/approve`, `/jobs/${id}/deny`]) {
      const res = await call(server.base, 'POST', path, { token: userToken, body: {} });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        error: 'NotApprover',
        message: `Job ${id} was asked for in chat: another person's chat account must decide on it, not the API.`,
      });
    }
    const api = await pushed('deploy v3');
    for (const target of [id, api]) {
      const res = await call(server.base, 'POST', `/jobs/${target}/approve`, { token: strangerToken });
      expect(res.status).toBe(403);
      expect(res.body.error).toBe('NotApprover');
    }
    for (const target of [id, api]) expect((await server.core.jobs.get(target, null)).status).toBe('awaiting_approval');
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204);
    // Chat approval by another account still works.
    expect((await server.core.approvals.approve(id, chat(opsId, BOB))).status).toBe('queuing');
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).body).toEqual({ id, message: 'deploy from chat' });
  });

  it('refuses the person a pushing token was handed to in chat, through a rotated token and in chat; another person approves', async () => {
    const alice = personId(opsId, ALICE);
    // Alice asks for a user token in chat, pushes with it, asks for another one and approves with that.
    const first = await server.core.users.rotateToken('ops', alice);
    const res = await call(server.base, 'POST', '/job/add', { token: first, body: { message: 'web1 deploy by token' } });
    expect(res.body.status).toBe('awaiting_approval');
    userToken = await server.core.users.rotateToken('ops', alice);
    const rotated = await call(server.base, 'POST', `/jobs/${res.body.id}/approve`, { token: userToken });
    expect({ status: rotated.status, error: rotated.body.error }).toEqual({ status: 403, error: 'SelfApproval' });
    expect(await failure(server.core.approvals.approve(res.body.id, chat(opsId, ALICE)))).toMatchObject({
      status: 403,
      code: 'SelfApproval',
    });
    expect((await server.core.jobs.get(res.body.id, null)).status).toBe('awaiting_approval');
    expect((await server.core.approvals.approve(res.body.id, chat(opsId, BOB))).approval?.approvedBy).toBe(BOB);
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).body).toEqual({
      id: res.body.id,
      message: 'deploy by token',
    });
  });

  it('refuses the agent token that pushed a job, and the person it was handed to, as approvers', async () => {
    const alice = personId(opsId, ALICE);
    const { token: web2 } = await server.core.agents.create(opsId, 'web2', null, alice);
    const res = await call(server.base, 'POST', '/agent/job/add', { token: web2, body: { message: 'web1 deploy by agent' } });
    expect(res.status).toBe(201);
    const job = await server.core.jobs.get(res.body.id, null);
    expect(job).toMatchObject({ status: 'awaiting_approval', pushedBy: { id: expect.stringMatching(/^agent:\d+$/), identityId: alice } });
    expect(await failure(server.core.approvals.approve(job.id, chat(opsId, ALICE)))).toMatchObject({ code: 'SelfApproval' });
    userToken = await server.core.users.rotateToken('ops', alice);
    const api = await call(server.base, 'POST', `/jobs/${job.id}/approve`, { token: userToken });
    expect({ status: api.status, error: api.body.error }).toEqual({ status: 403, error: 'SelfApproval' });
    expect((await server.core.jobs.get(job.id, null)).status).toBe('awaiting_approval');
    expect((await server.core.approvals.approve(job.id, chat(opsId, CAROL))).status).toBe('queuing');
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).body).toEqual({ id: job.id, message: 'deploy by agent' });
  });

  it('refuses approvals around a token from before holders were recorded, and a job from before pushers were', async () => {
    // What migration 009 leaves on tokens that existed before it: holder unknown.
    await server.core.db.pool.query('UPDATE users SET token_issued_to = 0 WHERE id = ?', [opsId]);
    server.core.users.invalidateCached((await server.core.users.byName('ops')).tokenHash);
    const old = await call(server.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 deploy old token' } });
    expect(old.body.status).toBe('awaiting_approval');
    const rotate =
      'handed out before Skadi recorded who holds tokens, so it cannot tell whether one person is on both sides: rotate that token (`token` in chat, `skadi user token` or `skadi agent token`) and try again.';
    expect(await failure(server.core.approvals.approve(old.body.id, chat(opsId, BOB)))).toMatchObject({
      status: 403,
      code: 'HolderUnknown',
      message: `Job ${old.body.id} was pushed with a token ${rotate}`,
    });
    // Alice asks in chat; the old token cannot approve it either.
    const { id: byAlice } = await server.core.jobs.push(agent, 'deploy asked in chat', {
      ...asked(opsId, ALICE),
      source: 'api',
      requester: null,
    });
    const viaOld = await call(server.base, 'POST', `/jobs/${byAlice}/approve`, { token: userToken });
    expect({ status: viaOld.status, body: viaOld.body }).toEqual({
      status: 403,
      body: { error: 'HolderUnknown', message: `Your token was ${rotate}` },
    });
    // A job whose pusher was never recorded is decided by nobody's approval.
    await server.core.db.pool.query('UPDATE jobs SET pushed_by = NULL, pushed_by_identity = NULL WHERE id = ?', [byAlice]);
    expect(await failure(server.core.approvals.approve(byAlice, chat(opsId, BOB)))).toMatchObject({
      status: 403,
      code: 'Unattributed',
      message: `Job ${byAlice} was asked for before Skadi recorded who pushes jobs, so nobody can tell who may approve it: ask for it again.`,
    });
    for (const id of [old.body.id, byAlice]) expect((await server.core.jobs.get(id, null)).status).toBe('awaiting_approval');
    // Once rotated, the token is held by somebody known (here: an admin's CLI) and things work again.
    userToken = await server.core.users.rotateToken('ops');
    const fresh = await call(server.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 deploy new token' } });
    expect((await server.core.approvals.approve(fresh.body.id, chat(opsId, BOB))).status).toBe('queuing');
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).body).toEqual({
      id: fresh.body.id,
      message: 'deploy new token',
    });
  });

  it('denies with POST /jobs/:id/deny {"reason"} and refuses malformed bodies with 400, never 500', async () => {
    const id = await pushed('deploy v4');
    for (const body of [
      '{"reason": 5}',
      '{"reason": ["x"]}',
      '{"reason": null}',
      `{"reason": "${'x'.repeat(201)}"}`,
      '[1]',
      'not json',
      '"text"',
    ]) {
      const res = await call(server.base, 'POST', `/jobs/${id}/deny`, {
        token: userToken,
        body,
        headers: { 'content-type': 'application/json' },
      });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.body.error).toBeDefined();
    }
    expect((await server.core.jobs.get(id, null)).status).toBe('awaiting_approval');

    const denied = await call(server.base, 'POST', `/jobs/${id}/deny`, { token: userToken, body: { reason: 'not now' } });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({
      id,
      status: 'canceled',
      reason: 'denied by api (ops): not now',
      approval: { required: true, approved_by: '', approved_at: '', denied_by: 'api (ops)', reason: 'denied by api (ops): not now' },
    });
    const shown = await call(server.base, 'GET', `/jobs/${id}`, { token: userToken });
    expect(shown.body).toMatchObject({ status: 'canceled', approval: { denied_by: 'api (ops)', reason: 'denied by api (ops): not now' } });
    expect((await call(server.base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204);

    // With no body at all, the reason is just who denied.
    const bare = await pushed('deploy v5');
    const res = await call(server.base, 'POST', `/jobs/${bare}/deny`, { token: userToken });
    expect(res).toMatchObject({ status: 200, body: { status: 'canceled', reason: 'denied by api (ops)' } });
  });

  it('answers unknown and malformed job ids with 404, and a job needing no approval with 409', async () => {
    expect((await call(server.base, 'POST', '/jobs/nope/approve', { token: userToken })).status).toBe(404);
    // A well-formed id of no job: refused (403 or 404, as for another user's job), never a 2xx or a 500.
    expect([403, 404]).toContain((await call(server.base, 'POST', '/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/deny', { token: userToken })).status);
    const plain = await call(server.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 uptime' } });
    expect(plain.body.status).toBe('queuing');
    const res = await call(server.base, 'POST', `/jobs/${plain.body.id}/approve`, { token: userToken });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('NoApproval');
    const shown = await call(server.base, 'GET', `/jobs/${plain.body.id}`, { token: userToken });
    expect(shown.body.approval).toEqual({ required: false, approved_by: '', approved_at: '', denied_by: '', reason: '' });
  });
});

describe('clearing patterns from chat', () => {
  it('needs two different accounts of the user: one alone never clears them, two at once clear them once', async () => {
    const { agent, userId } = await gatedAgent(['deploy *', 'db *']);
    const until = new Date(Date.now() + 60_000);
    for (let i = 0; i < 3; i++)
      expect((await core.agents.requestClearPatterns(userId, agent.name, personId(userId, ALICE), until)).cleared).toBe(false);
    expect((await core.agents.byName(userId, agent.name)).approvalPatterns).toEqual(['deploy *', 'db *']);
    const bob = await core.agents.requestClearPatterns(userId, agent.name, personId(userId, BOB), until);
    expect(bob).toMatchObject({ cleared: true, agent: { approvalPatterns: [] } });
    const [r] = (await core.db.pool.query('SELECT approval_patterns, approval_clear_by FROM agents WHERE id = ?', [agent.id]))[0] as any[];
    expect(r).toEqual({ approval_patterns: null, approval_clear_by: null });

    // Two people asking at the same moment: one request waits, the other clears; never both "waiting".
    const again = await gatedAgent();
    const outcomes = await Promise.all(
      [ALICE, BOB].map((who) => core.agents.requestClearPatterns(again.userId, again.agent.name, personId(again.userId, who), until)),
    );
    expect(outcomes.map((o) => o.cleared).sort()).toEqual([false, true]);
  });

  it('forgets a request that is past its time, or that a new pattern overtook', async () => {
    const { agent, userId } = await gatedAgent();
    await core.agents.requestClearPatterns(userId, agent.name, personId(userId, ALICE), new Date(Date.now() - 1));
    expect((await core.agents.requestClearPatterns(userId, agent.name, personId(userId, BOB), new Date(Date.now() + 60_000))).cleared).toBe(
      false,
    );
    // Bob's request now waits; a new pattern drops it, so Alice's later request cannot complete it.
    await core.agents.setApprovalPatterns(userId, agent.name, ['deploy *', 'restart *']);
    expect(
      (await core.agents.requestClearPatterns(userId, agent.name, personId(userId, ALICE), new Date(Date.now() + 60_000))).cleared,
    ).toBe(false);
    expect((await core.agents.byName(userId, agent.name)).approvalPatterns).toEqual(['deploy *', 'restart *']);
  });
});
