/**
 * The approval rules (cloud/approvals/decisions.ts) against an in-memory job store: who may decide, what each refusal
 * says, what a decision announces, and how undecided jobs expire. The races between nodes and the routes are
 * tested on MariaDB and Redis in test/integration/approvals.test.ts.
 */
import type { Logger } from 'pino';
import type { AgentService } from '../../cloud/agents/agent-service';
import { identityCredential, type Credential } from '../../cloud/approvals/credentials';
import { Approvals, type Approver } from '../../cloud/approvals/decisions';
import type { JobStatusEvent } from '../../cloud/lifecycle/events';
import type { Transitions } from '../../cloud/lifecycle/transitions';
import type { TransitionOps } from '../../cloud/queue/redis-state';
import type { ApprovalOutcome, JobRepo, JobRow } from '../../cloud/store/jobs';
import { jobRow } from '../helpers/rows';

const HOUR = 3_600_000;
const ID = '01KAAAAAAAAAAAAAAAAAAAAAAA';
const ALICE = identityCredential(11);
const BOB = identityCredential(12);

/** A job asked for in chat by Alice, awaiting approval for an hour. */
function awaiting(overrides: Partial<JobRow> = {}): JobRow {
  const created = new Date(Date.now() - 60_000);
  return jobRow({
    id: ID,
    message: 'deploy web',
    source: 'slack',
    status: 'awaiting_approval',
    createdAt: created,
    updatedAt: created,
    requester: 'slack:T1:UALICE',
    pushedBy: ALICE,
    approval: { until: new Date(created.getTime() + HOUR), approvedBy: null, approvedAt: null, deniedBy: null },
    ...overrides,
  });
}

function chat(credential: Credential, label = 'slack:T1:UBOB', userId = 7): Approver {
  return { userId, credential, via: 'chat', label };
}

/** The jobs, whether agents are online, and what the decisions announced. */
class World {
  jobs = new Map<string, JobRow>();
  online = true;
  applied: { ops: TransitionOps; events: JobStatusEvent[] }[] = [];
  applyFails = false;
  warnings: string[] = [];

  approvals(): Approvals {
    const store = {
      get: async (id: string) => this.jobs.get(id) ?? null,
      approve: async (
        id: string,
        by: string,
        now: Date,
        online: (agentId: number) => Promise<boolean>,
      ): Promise<ApprovalOutcome | null> => {
        const job = this.jobs.get(id);
        if (!job) return null;
        if (job.status !== 'awaiting_approval') return { job, changed: false };
        if (job.approval?.until && job.approval.until <= now) return { job, changed: false, late: true };
        const up = await online(job.agentId);
        Object.assign(job, {
          status: up ? 'queuing' : 'expired',
          reason: up ? null : 'agent offline',
          approval: { ...job.approval!, approvedBy: by, approvedAt: now },
        });
        return { job: { ...job }, changed: true };
      },
      deny: async (id: string, by: string, why: string): Promise<ApprovalOutcome | null> => {
        const job = this.jobs.get(id);
        if (!job) return null;
        if (job.status !== 'awaiting_approval') return { job, changed: false };
        Object.assign(job, { status: 'canceled', reason: why, approval: { ...job.approval!, deniedBy: by } });
        return { job: { ...job }, changed: true };
      },
      listApprovalOverdue: async (now: Date) =>
        [...this.jobs.values()]
          .filter((j) => j.status === 'awaiting_approval' && j.approval?.until && j.approval.until <= now)
          .map((j) => j.id),
      expireAwaiting: async (id: string, reason: string) => {
        const job = this.jobs.get(id);
        if (job?.status !== 'awaiting_approval') return null;
        Object.assign(job, { status: 'expired', reason });
        return { ...job };
      },
      findAwaitingBySuffix: async (userId: number, suffix: string) =>
        [...this.jobs.values()].filter((j) => j.userId === userId && j.status === 'awaiting_approval' && j.id.endsWith(suffix)),
    } as unknown as JobRepo;
    const agents = { isOnline: async () => this.online } as unknown as AgentService;
    const transitions = {
      apply: async (ops: TransitionOps, events: JobStatusEvent[]) => {
        if (this.applyFails) throw new Error('Redis down');
        this.applied.push({ ops, events });
      },
    } as unknown as Transitions;
    const log = { info: () => undefined, warn: (_o: unknown, message: string) => void this.warnings.push(message) } as unknown as Logger;
    return new Approvals({ jobs: store, agents, transitions, log });
  }
}

let world: World;
beforeEach(() => {
  world = new World();
  world.jobs.set(ID, awaiting());
});

/** The error a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    return err as { status: number; code: string; message: string };
  }
  throw new Error('expected a refusal');
}

describe('approve', () => {
  it("queues the job when another person of the owner approves, and announces it in the agent's queue", async () => {
    const job = await world.approvals().approve(ID, chat(BOB));
    expect(job).toMatchObject({ status: 'queuing', approval: { approvedBy: 'slack:T1:UBOB' } });
    expect(world.applied).toEqual([
      { ops: { enqueue: { agentId: 1, jobIds: [ID] } }, events: [expect.objectContaining({ job_id: ID, status: 'queuing' })] },
    ]);
  });

  it('expires the job when its agent is offline, and announces it done', async () => {
    world.online = false;
    const job = await world.approvals().approve(ID, chat(BOB));
    expect(job).toMatchObject({ status: 'expired', reason: 'agent offline' });
    expect(world.applied[0].ops).toEqual({ done: [ID] });
  });

  it('answers the decision even when Redis fails after it (the reconciler repairs Redis)', async () => {
    world.applyFails = true;
    expect((await world.approvals().approve(ID, chat(BOB))).status).toBe('queuing');
    expect(world.warnings).toEqual(['a decided job is stored but Redis failed; the reconciler repairs it']);
  });

  it.each([
    ['the credential that pushed it', 'SelfApproval', ALICE],
    ['another credential of the same person', 'SelfApproval', { id: 'user-token:abc', identityId: 11 }],
    ['a token handed out before holders were recorded', 'HolderUnknown', { id: 'user-token:old', identityId: 0 }],
  ])('refuses %s (403 %s) and changes nothing', async (_what, code, credential) => {
    const err = await refusal(world.approvals().approve(ID, chat(credential as Credential)));
    expect({ status: err.status, code: err.code }).toEqual({ status: 403, code });
    expect(world.jobs.get(ID)!.status).toBe('awaiting_approval');
    expect(world.applied).toEqual([]);
  });

  it("names whose token is of unknown holding: the pusher's or the approver's", async () => {
    const yours = await refusal(world.approvals().approve(ID, chat({ id: 'user-token:old', identityId: 0 })));
    expect(yours.message).toMatch(/^Your token was handed out before Skadi recorded who holds tokens/);
    world.jobs.set(ID, awaiting({ pushedBy: { id: 'user-token:old', identityId: 0 } }));
    const theirs = await refusal(world.approvals().approve(ID, chat(BOB)));
    expect(theirs.message).toMatch(new RegExp(`^Job ${ID} was pushed with a token handed out before Skadi recorded who holds tokens`));
    expect(theirs.message).toContain('rotate that token (`token` in chat, `skadi user token` or `skadi agent token`) and try again.');
  });

  it('refuses a job whose pusher was never recorded (403 Unattributed)', async () => {
    world.jobs.set(ID, awaiting({ pushedBy: null }));
    const err = await refusal(world.approvals().approve(ID, chat(BOB)));
    expect(err).toMatchObject({ status: 403, code: 'Unattributed' });
    expect(err.message).toBe(
      `Job ${ID} was asked for before Skadi recorded who pushes jobs, so nobody can tell who may approve it: ask for it again.`,
    );
  });

  it('refuses an account of another user (403 NotApprover), and the API for a job asked for in chat', async () => {
    const stranger = await refusal(world.approvals().approve(ID, chat(BOB, 'slack:T9:UMALLORY', 8)));
    expect(stranger).toMatchObject({ status: 403, code: 'NotApprover' });
    expect(stranger.message).toBe(`You cannot decide on job ${ID}: only the accounts linked to the user who owns it can.`);
    const api = await refusal(
      world.approvals().approve(ID, { userId: 7, credential: { id: 'user-token:x', identityId: null }, via: 'api', label: 'api (ops)' }),
    );
    expect(api).toMatchObject({ status: 403, code: 'NotApprover' });
    expect(api.message).toBe(`Job ${ID} was asked for in chat: another person's chat account must decide on it, not the API.`);
    world.jobs.set(ID, awaiting({ requester: null, pushedBy: { id: 'user-token:first', identityId: null } }));
    expect(
      (
        await world
          .approvals()
          .approve(ID, { userId: 7, credential: { id: 'user-token:x', identityId: null }, via: 'api', label: 'api (ops)' })
      ).status,
    ).toBe('queuing');
  });

  it('answers an unknown job with 404, and a job decided or not gated with a conflict that says why', async () => {
    expect(await refusal(world.approvals().approve('01KBBBBBBBBBBBBBBBBBBBBBBB', chat(BOB)))).toMatchObject({
      status: 404,
      code: 'JobNotFound',
    });
    await world.approvals().approve(ID, chat(BOB));
    const again = await refusal(world.approvals().approve(ID, chat(identityCredential(13), 'slack:T1:UCAROL')));
    expect(again).toMatchObject({ status: 409, code: 'AlreadyDecided', message: `Job ${ID} was already approved by slack:T1:UBOB.` });
    world.jobs.set(
      ID,
      awaiting({ status: 'canceled', approval: { until: null, approvedBy: null, approvedAt: null, deniedBy: 'slack:T1:UBOB' } }),
    );
    expect(await refusal(world.approvals().approve(ID, chat(BOB)))).toMatchObject({
      code: 'AlreadyDecided',
      message: `Job ${ID} was already denied by slack:T1:UBOB.`,
    });
    world.jobs.set(ID, awaiting({ status: 'queuing', approval: null }));
    expect(await refusal(world.approvals().approve(ID, chat(BOB)))).toMatchObject({
      status: 409,
      code: 'NoApproval',
      message: `Job ${ID} does not need approval.`,
    });
    world.jobs.set(ID, awaiting({ status: 'expired' }));
    expect(await refusal(world.approvals().approve(ID, chat(BOB)))).toMatchObject({
      code: 'AlreadyDecided',
      message: `Job ${ID} is expired: there is nothing to decide any more.`,
    });
  });

  it('refuses a late approval (409 ApprovalExpired) and expires the job then, with its window as the reason', async () => {
    const created = new Date(Date.now() - 2 * HOUR);
    world.jobs.set(
      ID,
      awaiting({
        createdAt: created,
        approval: { until: new Date(created.getTime() + HOUR), approvedBy: null, approvedAt: null, deniedBy: null },
      }),
    );
    const err = await refusal(world.approvals().approve(ID, chat(BOB)));
    expect(err).toMatchObject({
      status: 409,
      code: 'ApprovalExpired',
      message: `Job ${ID} was not approved in time and has expired; ask for it again.`,
    });
    expect(world.jobs.get(ID)).toMatchObject({ status: 'expired', reason: 'not approved within 1h' });
    expect(world.applied).toEqual([
      { ops: { done: [ID] }, events: [expect.objectContaining({ status: 'expired', reason: 'not approved within 1h' })] },
    ]);
  });
});

describe('deny', () => {
  it('cancels the job, the reason saying who and why; the person who asked may withdraw it', async () => {
    const job = await world.approvals().deny(ID, chat(ALICE, 'slack:T1:UALICE'), '  not now ');
    expect(job).toMatchObject({ status: 'canceled', reason: 'denied by slack:T1:UALICE: not now' });
    expect(world.applied).toEqual([{ ops: { done: [ID] }, events: [expect.objectContaining({ status: 'canceled' })] }]);
    world.jobs.set(ID, awaiting());
    expect((await world.approvals().deny(ID, chat(BOB), '   ')).reason).toBe('denied by slack:T1:UBOB');
  });

  it('is refused to another user and through the API for a chat job, as approval is', async () => {
    expect(await refusal(world.approvals().deny(ID, chat(BOB, 'x', 8), 'no'))).toMatchObject({ code: 'NotApprover' });
    expect(await refusal(world.approvals().deny(ID, { userId: 7, credential: BOB, via: 'api', label: 'api' }, 'no'))).toMatchObject({
      code: 'NotApprover',
    });
    expect(world.jobs.get(ID)!.status).toBe('awaiting_approval');
  });
});

describe('undecided jobs', () => {
  it('expire past their approval time, each once, the reason naming its own window', async () => {
    const created = new Date(Date.now() - 3 * HOUR);
    world.jobs.set(
      ID,
      awaiting({
        createdAt: created,
        approval: { until: new Date(created.getTime() + 2 * HOUR), approvedBy: null, approvedAt: null, deniedBy: null },
      }),
    );
    world.jobs.set('01KCCCCCCCCCCCCCCCCCCCCCCC', awaiting({ id: '01KCCCCCCCCCCCCCCCCCCCCCCC' }));
    const approvals = world.approvals();
    expect(await approvals.expireUnapproved()).toBe(1);
    expect(world.jobs.get(ID)).toMatchObject({ status: 'expired', reason: 'not approved within 2h' });
    expect(world.jobs.get('01KCCCCCCCCCCCCCCCCCCCCCCC')!.status).toBe('awaiting_approval');
    expect(await approvals.expireUnapproved()).toBe(0);
  });
});

describe('findAwaiting', () => {
  it('takes a full id as it is, and the end of one (3 characters or more, any case, spaces around)', async () => {
    const approvals = world.approvals();
    expect(await approvals.findAwaiting(7, ID.toLowerCase())).toBe(ID);
    expect(await approvals.findAwaiting(7, ' aaa ')).toBe(ID);
  });

  it('says what it cannot find: a malformed id, none of yours, or several', async () => {
    const approvals = world.approvals();
    expect(await refusal(approvals.findAwaiting(7, 'aa'))).toMatchObject({
      status: 400,
      code: 'InvalidJobId',
      message: '"aa" is not a job id.',
    });
    expect((await refusal(approvals.findAwaiting(7, 'x'.repeat(50)))).message).toBe(`"${'x'.repeat(40)}" is not a job id.`);
    expect(await refusal(approvals.findAwaiting(8, 'AAA'))).toMatchObject({
      status: 404,
      code: 'JobNotFound',
      message: 'No job of yours awaiting approval ends with AAA.',
    });
    world.jobs.set('01KDAAAAAAAAAAAAAAAAAAAAAA', awaiting({ id: '01KDAAAAAAAAAAAAAAAAAAAAAA' }));
    const several = await refusal(approvals.findAwaiting(7, 'AAA'));
    expect(several).toMatchObject({ status: 400, code: 'AmbiguousJobId' });
    expect(several.message).toBe(`AAA fits 2 jobs awaiting approval (${ID}, 01KDAAAAAAAAAAAAAAAAAAAAAA): give more of the id.`);
  });
});
