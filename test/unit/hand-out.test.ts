/**
 * The hand-out (cloud/lifecycle/hand-out.ts) against in-memory fakes of the job store, the Redis state and the
 * transitions: MySQL's `queuing → sent` decides who gets a job, and a failure on the way never strands one.
 */
import type { Logger } from 'pino';
import type { JobStatusEvent } from '../../cloud/lifecycle/events';
import { HandOut } from '../../cloud/lifecycle/hand-out';
import type { Transitions } from '../../cloud/lifecycle/transitions';
import type { RedisState, TransitionOps } from '../../cloud/queue/redis-state';
import type { JobRepo, JobRow } from '../../cloud/store/jobs';
import { agentRow, jobRow } from '../helpers/rows';

const LEASE_MS = 600_000;
const agent = agentRow();
const row = (id: string): JobRow => jobRow({ id, message: `run ${id}` });

/** The agent's queue in "Redis", the jobs in "MySQL", and what the hand-out did to each. */
class World {
  queue: string[] = [];
  rows = new Map<string, JobRow>();
  requeued: string[][] = [];
  applied: { ops: TransitionOps; events: JobStatusEvent[] }[] = [];
  warnings: string[] = [];
  /** One entry per call, in order: an error to throw, or null to answer. */
  popFails: (Error | null)[] = [];
  markFails: (Error | null)[] = [];
  applyFails = false;
  /** Round trips to the queue. */
  pops = 0;

  add(...ids: string[]): void {
    for (const id of ids) {
      this.queue.push(id);
      this.rows.set(id, row(id));
    }
  }

  handOut(): HandOut {
    const store = {
      markSent: async (ids: string[], agentId: number, leaseMs: number) => {
        const fail = this.markFails.shift();
        if (fail) throw fail;
        const sent: JobRow[] = [];
        for (const id of ids) {
          const job = this.rows.get(id);
          if (job?.status !== 'queuing' || job.agentId !== agentId) continue;
          const now = new Date();
          Object.assign(job, { status: 'sent', sentAt: now, leaseUntil: new Date(now.getTime() + leaseMs) });
          sent.push({ ...job });
        }
        return sent;
      },
      unsend: async (ids: string[], agentId: number) => {
        const back: string[] = [];
        for (const id of ids) {
          const job = this.rows.get(id);
          if (job?.status !== 'sent' || job.agentId !== agentId) continue;
          Object.assign(job, { status: 'queuing', sentAt: null, leaseUntil: null });
          back.push(id);
        }
        return back;
      },
    } as unknown as JobRepo;
    const redis = {
      ready: () => true,
      pop: async (_agentId: number, max: number) => {
        this.pops++;
        const fail = this.popFails.shift();
        if (fail) throw fail;
        return this.queue.splice(0, max);
      },
      requeue: async (_agentId: number, ids: string[]) => {
        this.requeued.push(ids);
        this.queue.unshift(...ids);
      },
    } as unknown as RedisState;
    const transitions = {
      apply: async (ops: TransitionOps, events: JobStatusEvent[]) => {
        if (this.applyFails) throw new Error('Redis down');
        this.applied.push({ ops, events });
      },
    } as unknown as Transitions;
    const log = {
      warn: (_o: unknown, message: string) => void this.warnings.push(message),
      error: (_o: unknown, message: string) => void this.warnings.push(message),
    } as unknown as Logger;
    return new HandOut({ jobs: store, queue: redis, transitions, leaseMs: LEASE_MS, log });
  }
}

let world: World;
beforeEach(() => {
  world = new World();
});

describe('take', () => {
  it('hands out queued jobs in order, marks them sent with a lease, and announces them', async () => {
    world.add('j1', 'j2', 'j3');
    const before = Date.now();
    expect(await world.handOut().take(agent, 2)).toEqual([
      { id: 'j1', message: 'run j1' },
      { id: 'j2', message: 'run j2' },
    ]);
    expect(world.queue).toEqual(['j3']);
    expect(world.rows.get('j1')!.status).toBe('sent');
    const [{ ops, events }] = world.applied;
    expect(ops.setLeases!.map((l) => l.id)).toEqual(['j1', 'j2']);
    expect(ops.setLeases![0].at).toBeGreaterThanOrEqual(before + LEASE_MS);
    expect(events.map((e) => [e.job_id, e.status])).toEqual([
      ['j1', 'sent'],
      ['j2', 'sent'],
    ]);
  });

  it('skips ids whose job is no longer queued (canceled, or handed out already) and takes on to fill the poll', async () => {
    world.add('gone', 'j1');
    world.rows.get('gone')!.status = 'canceled';
    world.queue.push('j1'); // the same id twice in the queue: handed out once
    world.add('j2');
    expect(await world.handOut().take(agent, 2)).toEqual([
      { id: 'j1', message: 'run j1' },
      { id: 'j2', message: 'run j2' },
    ]);
    expect(world.rows.get('gone')!.status).toBe('canceled');
  });

  it('stops when the queue is drained (one round trip when it had fewer than asked), and answers nothing from an empty queue', async () => {
    world.add('j1');
    expect(await world.handOut().take(agent, 5)).toEqual([{ id: 'j1', message: 'run j1' }]);
    expect(world.pops).toBe(1);
    expect(await world.handOut().take(agent, 5)).toEqual([]);
    expect(world.applied).toHaveLength(1);
  });

  it("never takes another agent's job", async () => {
    world.add('theirs');
    world.rows.get('theirs')!.agentId = 2;
    expect(await world.handOut().take(agent, 1)).toEqual([]);
    expect(world.rows.get('theirs')!.status).toBe('queuing');
  });

  it('puts the ids back at the head of the queue when MySQL fails, and passes the error on', async () => {
    world.add('j1', 'j2');
    world.markFails.push(new Error('MySQL down'));
    await expect(world.handOut().take(agent, 2)).rejects.toThrow('MySQL down');
    expect(world.requeued).toEqual([['j1', 'j2']]);
    expect(world.queue).toEqual(['j1', 'j2']);
    expect(world.rows.get('j1')!.status).toBe('queuing');
  });

  it('answers what it took already when a later round fails, and loses nothing', async () => {
    // Round one pops gone and j1 but hands out only j1; round two's pop fails: j1 is answered.
    world.add('gone', 'j1', 'j2');
    world.rows.get('gone')!.status = 'expired';
    world.popFails = [null, new Error('Redis down')];
    expect(await world.handOut().take(agent, 2)).toEqual([{ id: 'j1', message: 'run j1' }]);
    expect(world.queue).toEqual(['j2']);
    // Round one pops gone2 and j3, hands out j3; round two's MySQL update fails: j4 goes back to the queue.
    world.add('gone2', 'j3', 'j4');
    world.rows.get('gone2')!.status = 'canceled';
    world.queue = ['gone2', 'j3', 'j4'];
    world.markFails = [null, new Error('MySQL down')];
    expect(await world.handOut().take(agent, 2)).toEqual([{ id: 'j3', message: 'run j3' }]);
    expect(world.requeued).toEqual([['j4']]);
    expect(world.queue).toEqual(['j4']);
    expect(world.rows.get('j4')!.status).toBe('queuing');
  });

  it('passes on a failed pop when nothing was taken yet', async () => {
    world.popFails.push(new Error('Redis down'));
    await expect(world.handOut().take(agent, 1)).rejects.toThrow('Redis down');
  });

  it('answers the jobs it took even when Redis fails after the commit (their leases hold in MySQL)', async () => {
    world.add('j1');
    world.applyFails = true;
    expect(await world.handOut().take(agent, 1)).toEqual([{ id: 'j1', message: 'run j1' }]);
    expect(world.warnings).toEqual([
      'jobs handed out while Redis failed; their leases hold in MySQL and their events follow when Redis answers',
    ]);
  });
});

describe('returnUnreceived', () => {
  it('puts jobs nobody received back at the head of the queue, queuing again, with the reason', async () => {
    world.add('j1', 'j2');
    const handOut = world.handOut();
    await handOut.take(agent, 2);
    world.applied = [];
    await handOut.returnUnreceived(agent, ['j2']);
    expect(world.rows.get('j2')!.status).toBe('queuing');
    expect(world.rows.get('j1')!.status).toBe('sent');
    expect(world.queue).toEqual(['j2']);
    expect(world.applied).toEqual([
      {
        ops: { clearLeases: ['j2'] },
        events: [
          expect.objectContaining({
            job_id: 'j2',
            status: 'queuing',
            reason: 'returned to the queue: the agent disconnected before receiving it',
          }),
        ],
      },
    ]);
  });

  it('does nothing for jobs that are no longer sent (reported meanwhile)', async () => {
    world.add('j1');
    await world.handOut().returnUnreceived(agent, ['j1']);
    expect(world.queue).toEqual(['j1']);
    expect(world.requeued).toEqual([]);
    expect(world.applied).toEqual([]);
  });
});
