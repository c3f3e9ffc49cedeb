/**
 * The long polls of a node (cloud/agents/long-polls.ts) against in-memory fakes of the hand-out and the agents, on
 * fake timers: who gets a job, when a poll answers "no job", and that a job taken for a poll that cannot receive it
 * goes back to the queue.
 */
import type { Logger } from 'pino';
import type { AgentService } from '../../cloud/agents/agent-service';
import { Dispatcher, QueueActivity, type PollConnection } from '../../cloud/agents/long-polls';
import type { JobHandOut, TakenJob } from '../../cloud/lifecycle/hand-out';
import type { AgentRow } from '../../cloud/store/agents';
import { agentRow } from '../helpers/rows';

const T0 = new Date('2026-12-02T10:00:00Z').getTime();

/** A promise with its resolve and reject. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** An in-memory hand-out: each agent's queue; a take can be held until the test lets it go, or made to fail. */
class FakeHandOut implements JobHandOut {
  readonly queues = new Map<number, TakenJob[]>();
  readonly takes: { agentId: number; max: number }[] = [];
  readonly returned: string[] = [];
  ready = true;
  /** When set, the next take waits for it and answers what it resolves with (or its error). */
  hold: ReturnType<typeof deferred<TakenJob[]>> | null = null;
  failNext: Error | null = null;

  queue(agentId: number, ...ids: string[]): void {
    this.queues.set(agentId, [...(this.queues.get(agentId) ?? []), ...ids.map((id) => ({ id, message: `run ${id}` }))]);
  }

  redisReady(): boolean {
    return this.ready;
  }

  async take(agent: AgentRow, max: number): Promise<TakenJob[]> {
    this.takes.push({ agentId: agent.id, max });
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = null;
      throw err;
    }
    if (this.hold) {
      const held = this.hold;
      this.hold = null;
      return held.promise;
    }
    const queue = this.queues.get(agent.id) ?? [];
    return queue.splice(0, max);
  }

  async returnUnreceived(_agent: AgentRow, jobIds: string[]): Promise<void> {
    this.returned.push(...jobIds);
  }
}

/** A poll's HTTP connection that the test closes. */
function connection() {
  let closed = false;
  const listeners: (() => void)[] = [];
  const conn: PollConnection = { closed: () => closed, onClose: (fn) => void listeners.push(fn) };
  return {
    conn,
    close() {
      closed = true;
      for (const fn of listeners) fn();
    },
    /** Gone without its close event handled yet. */
    vanish() {
      closed = true;
    },
  };
}

/** A poll that finds nothing and answers "no job" after waitMs (the fake clock moves on by that). */
async function emptyPoll(agent: AgentRow, waitMs: number): Promise<void> {
  const poll = dispatcher.poll(agent, waitMs);
  await jest.advanceTimersByTimeAsync(waitMs);
  await expect(poll).resolves.toBeNull();
}

/** Settles pending promise callbacks (no time passes). */
async function settle(): Promise<void> {
  await jest.advanceTimersByTimeAsync(0);
}

/** The state of a poll's promise, without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

let handOut: FakeHandOut;
let activity: QueueActivity;
let refreshed: AgentRow[][];
let warnings: string[];
let dispatcher: Dispatcher;
const web1 = agentRow({ id: 1, name: 'a1', tokenHash: 'hash-1' });
const web2 = agentRow({ id: 2, name: 'a2', tokenHash: 'hash-2' });

function makeDispatcher(maxPolls = 4, refreshFails = false): Dispatcher {
  const agents = {
    refreshPresence: async (list: AgentRow[]) => {
      refreshed.push(list);
      if (refreshFails) throw new Error('redis down');
    },
  } as unknown as AgentService;
  const log = { warn: (_obj: unknown, message: string) => void warnings.push(message) } as unknown as Logger;
  return new Dispatcher(handOut, activity, agents, log, 1000, maxPolls);
}

beforeEach(() => {
  jest.useFakeTimers({ now: T0 });
  handOut = new FakeHandOut();
  activity = new QueueActivity();
  refreshed = [];
  warnings = [];
  dispatcher = makeDispatcher();
});
afterEach(() => {
  dispatcher.stop();
  jest.useRealTimers();
});

describe('a poll', () => {
  it('gets a queued job at once, taking one for itself', async () => {
    handOut.queue(1, 'j1', 'j2');
    await expect(dispatcher.poll(web1, 60_000)).resolves.toEqual({ id: 'j1', message: 'run j1' });
    expect(handOut.takes).toEqual([{ agentId: 1, max: 1 }]);
    expect(dispatcher.waiting).toBe(0);
  });

  it('waits for a wake-up, then gets the job queued meanwhile', async () => {
    const poll = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect(poll.done).toBe(false);
    expect(dispatcher.waiting).toBe(1);
    expect(dispatcher.hasIdlePoll(1)).toBe(true);
    handOut.queue(1, 'j1');
    dispatcher.wake(1);
    await settle();
    expect(poll).toEqual({ done: true, value: { id: 'j1', message: 'run j1' } });
    expect(dispatcher.hasIdlePoll(1)).toBe(false);
  });

  it('answers "no job" when its time is up, and is forgotten', async () => {
    const poll = track(dispatcher.poll(web1, 30_000));
    await jest.advanceTimersByTimeAsync(29_999);
    expect(poll.done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(poll).toEqual({ done: true, value: null });
    expect(dispatcher.waiting).toBe(0);
    expect(dispatcher.hasIdlePoll(1)).toBe(false);
  });

  it('of a closed connection answers "no job" without taking anything', async () => {
    const c = connection();
    c.vanish();
    await expect(dispatcher.poll(web1, 60_000, c.conn)).resolves.toBeNull();
    expect(handOut.takes).toEqual([]);
    expect(dispatcher.waiting).toBe(0);
  });

  it('whose client goes away while waiting answers at once and takes nothing later', async () => {
    const c = connection();
    const poll = track(dispatcher.poll(web1, 60_000, c.conn));
    await settle();
    c.close();
    await settle();
    expect(poll).toEqual({ done: true, value: null });
    handOut.queue(1, 'j1');
    dispatcher.wake(1);
    await settle();
    expect(handOut.queues.get(1)).toEqual([{ id: 'j1', message: 'run j1' }]);
  });

  it('whose client went away during its take gives the job back to the queue', async () => {
    const c = connection();
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const poll = track(dispatcher.poll(web1, 60_000, c.conn));
    await settle();
    c.vanish(); // gone, its close event not handled yet
    held.resolve([{ id: 'j1', message: 'run j1' }]);
    await settle();
    expect(poll).toEqual({ done: true, value: null });
    expect(handOut.returned).toEqual(['j1']);
  });

  it('whose time runs out during its take gets the job the take found, not "no job"', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const poll = track(dispatcher.poll(web1, 1000));
    await jest.advanceTimersByTimeAsync(1500);
    expect(poll.done).toBe(false);
    held.resolve([{ id: 'j1', message: 'run j1' }]);
    await settle();
    expect(poll).toEqual({ done: true, value: { id: 'j1', message: 'run j1' } });
    expect(handOut.returned).toEqual([]);
  });

  it('whose time runs out during a take that finds nothing answers as soon as the take ends', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const poll = track(dispatcher.poll(web1, 1000));
    await jest.advanceTimersByTimeAsync(1500);
    held.resolve([]);
    await settle();
    expect(poll).toEqual({ done: true, value: null });
    expect(dispatcher.waiting).toBe(0);
  });

  it('is refused with the error of a failed take', async () => {
    handOut.failNext = new Error('MySQL down');
    await expect(dispatcher.poll(web1, 60_000)).rejects.toThrow('MySQL down');
    expect(dispatcher.waiting).toBe(0);
  });
});

describe('several polls of one agent', () => {
  it('are served by one take each round, in order, and the rest wait', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const first = track(dispatcher.poll(web1, 60_000));
    await settle();
    const second = track(dispatcher.poll(web1, 60_000));
    const third = track(dispatcher.poll(web1, 60_000));
    await settle();
    held.resolve([]); // the first take found nothing; the polls that came during it are looked at again
    await settle();
    handOut.queue(1, 'j1', 'j2');
    dispatcher.wake(1);
    await settle();
    expect(handOut.takes.at(-1)).toEqual({ agentId: 1, max: 3 });
    expect([first.value, second.value, third.done]).toEqual([{ id: 'j1', message: 'run j1' }, { id: 'j2', message: 'run j2' }, false]);
    expect(dispatcher.waiting).toBe(1);
  });

  it('take again while every take fills all of them (there may be more)', async () => {
    handOut.queue(1, 'j1');
    const a = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect(a.value).toEqual({ id: 'j1', message: 'run j1' });
    const b = track(dispatcher.poll(web1, 60_000));
    await settle();
    handOut.queue(1, 'j2', 'j3');
    const c = track(dispatcher.poll(web1, 60_000));
    dispatcher.wake(1);
    await settle();
    expect([b.value, c.value]).toEqual([
      { id: 'j2', message: 'run j2' },
      { id: 'j3', message: 'run j3' },
    ]);
  });

  it('beyond max_polls_per_agent: the oldest idle one answers "no job"', async () => {
    dispatcher = makeDispatcher(2);
    const first = track(dispatcher.poll(web1, 60_000));
    const second = track(dispatcher.poll(web1, 60_000));
    await settle();
    const third = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect([first, second.done, third.done]).toEqual([{ done: true, value: null }, false, false]);
    expect(dispatcher.waiting).toBe(2);
  });

  it('beyond max_polls_per_agent: one whose take is in flight is not the one answered', async () => {
    dispatcher = makeDispatcher(1);
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const first = track(dispatcher.poll(web1, 60_000));
    await settle();
    const second = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect([first.done, second.done]).toEqual([false, false]);
    held.resolve([{ id: 'j1', message: 'run j1' }]);
    await settle();
    expect(first.value).toEqual({ id: 'j1', message: 'run j1' });
  });

  it('fail together when their take fails after their time ran out; others wait on', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const expired = track(dispatcher.poll(web1, 1000));
    await settle();
    await jest.advanceTimersByTimeAsync(1500);
    held.reject(new Error('Redis down'));
    await settle();
    expect(expired.done).toBe(true);
    expect((expired.error as Error).message).toBe('Redis down');
    const next = track(dispatcher.poll(web1, 60_000));
    handOut.queue(1, 'j1');
    dispatcher.wake(1);
    await settle();
    expect(next.value).toEqual({ id: 'j1', message: 'run j1' });
  });
});

describe('a queue seen empty', () => {
  it('is trusted for a second without a wake-up: a poll in that time takes nothing', async () => {
    await emptyPoll(web1, 10); // looks, finds nothing, waits 10 ms
    expect(handOut.takes).toHaveLength(1);
    const soon = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect(handOut.takes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1000);
    dispatcher.stop();
    await settle();
    expect(soon.value).toBeNull();
  });

  it('is looked at again once a job is queued for the agent (a wake-up, or a push on this node)', async () => {
    await emptyPoll(web1, 10);
    activity.note(1); // queued on this node: its wake-up may still be on its way
    handOut.queue(1, 'j1');
    await expect(dispatcher.poll(web1, 60_000)).resolves.toEqual({ id: 'j1', message: 'run j1' });
  });

  it('is looked at again after a second, or while Redis is away', async () => {
    await emptyPoll(web1, 10);
    await jest.advanceTimersByTimeAsync(1000);
    handOut.queue(1, 'j1');
    await expect(dispatcher.poll(web1, 60_000)).resolves.toEqual({ id: 'j1', message: 'run j1' });
    await emptyPoll(web1, 10);
    handOut.ready = false;
    handOut.queue(1, 'j2');
    await expect(dispatcher.poll(web1, 60_000)).resolves.toEqual({ id: 'j2', message: 'run j2' });
  });

  it('is not trusted when the take found fewer jobs than polls while a job was queued during it', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const poll = track(dispatcher.poll(web1, 10));
    await settle();
    activity.note(1);
    held.resolve([]);
    await jest.advanceTimersByTimeAsync(10);
    expect(poll.value).toBeNull();
    handOut.queue(1, 'j1');
    await expect(dispatcher.poll(web1, 60_000)).resolves.toEqual({ id: 'j1', message: 'run j1' });
  });
});

describe('a push on this node', () => {
  it('claims an idle poll and hands it the job', async () => {
    expect(dispatcher.claimIdle(1)).toBeNull(); // no poll
    const poll = track(dispatcher.poll(web1, 60_000));
    await settle();
    const claim = dispatcher.claimIdle(1)!;
    expect(claim).not.toBeNull();
    expect(dispatcher.hasIdlePoll(1)).toBe(false);
    expect(dispatcher.claimIdle(1)).toBeNull(); // the only poll is claimed
    expect(claim.deliver({ id: 'j1', message: 'run j1' })).toBe(true);
    await settle();
    expect(poll.value).toEqual({ id: 'j1', message: 'run j1' });
    expect(() => claim.deliver({ id: 'j2', message: 'run j2' })).toThrow('poll claim already ended');
  });

  it('claims no poll while a take runs for the agent, nor after the node stopped', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    track(dispatcher.poll(web1, 60_000));
    await settle();
    expect(dispatcher.claimIdle(1)).toBeNull();
    held.resolve([]);
    await settle();
    expect(dispatcher.claimIdle(1)).not.toBeNull();
    dispatcher.stop();
    expect(dispatcher.claimIdle(1)).toBeNull();
  });

  it('claims no poll whose client is gone, and delivering to one gone since is refused', async () => {
    const gone = connection();
    track(dispatcher.poll(web1, 60_000, gone.conn));
    await settle();
    gone.vanish();
    expect(dispatcher.claimIdle(1)).toBeNull();
    const c = connection();
    const poll = track(dispatcher.poll(web2, 60_000, c.conn));
    await settle();
    const claim = dispatcher.claimIdle(2)!;
    c.vanish();
    expect(claim.deliver({ id: 'j1', message: 'run j1' })).toBe(false);
    await settle();
    expect(poll.value).toBeNull();
  });

  it('gives the poll back when it cancels: the poll waits on, and looks at the queue again', async () => {
    const poll = track(dispatcher.poll(web1, 60_000));
    await settle();
    const takes = handOut.takes.length;
    const claim = dispatcher.claimIdle(1)!;
    handOut.queue(1, 'older');
    claim.cancel();
    claim.cancel(); // once is enough
    await settle();
    expect(handOut.takes.length).toBe(takes + 1);
    expect(poll.value).toEqual({ id: 'older', message: 'run older' });
    expect(() => claim.deliver({ id: 'j1', message: 'run j1' })).toThrow('poll claim already ended');
  });

  it('answers a claimed poll whose time ran out when the claim is cancelled', async () => {
    const poll = track(dispatcher.poll(web1, 1000));
    await settle();
    const claim = dispatcher.claimIdle(1)!;
    await jest.advanceTimersByTimeAsync(1500);
    expect(poll.done).toBe(false);
    claim.cancel();
    await settle();
    expect(poll.value).toBeNull();
  });
});

describe('ending polls', () => {
  it('stop answers every waiting poll, and every later one, with "no job"', async () => {
    const poll = track(dispatcher.poll(web1, 60_000));
    await settle();
    dispatcher.stop();
    await settle();
    expect(poll.value).toBeNull();
    await expect(dispatcher.poll(web1, 60_000)).resolves.toBeNull();
    expect(handOut.takes).toHaveLength(1);
  });

  it('stop lets a poll whose take is in flight answer with its job, or at once with none', async () => {
    handOut.hold = deferred<TakenJob[]>();
    const withJob = deferred<TakenJob[]>();
    handOut.hold = withJob;
    const a = track(dispatcher.poll(web1, 60_000));
    await settle();
    const empty = deferred<TakenJob[]>();
    handOut.hold = empty;
    const b = track(dispatcher.poll(web2, 60_000));
    await settle();
    dispatcher.stop();
    withJob.resolve([{ id: 'j1', message: 'run j1' }]);
    empty.resolve([]);
    await settle();
    expect([a.value, b]).toEqual([
      { id: 'j1', message: 'run j1' },
      { done: true, value: null },
    ]);
  });

  it("a changed credential ends its agent's polls, a claimed one with its job given back, and no other agent's", async () => {
    const mine = track(dispatcher.poll(web1, 60_000));
    const other = track(dispatcher.poll(web2, 60_000));
    await settle();
    dispatcher.endPollsOf('hash-1');
    await settle();
    expect([mine.value, other.done]).toEqual([null, false]);

    activity.note(1); // a job is queued: the next poll takes again
    handOut.hold = deferred<TakenJob[]>();
    const held = handOut.hold;
    const claimed = track(dispatcher.poll(web1, 60_000));
    await settle();
    expect(handOut.takes.at(-1)).toEqual({ agentId: 1, max: 1 });
    dispatcher.endPollsOf('hash-1');
    held.resolve([{ id: 'j1', message: 'run j1' }]);
    await settle();
    expect(claimed.value).toBeNull();
    expect(handOut.returned).toEqual(['j1']);
    expect(other.done).toBe(false);
  });
});

describe('presence', () => {
  it('is refreshed for the agents whose polls wait, and not when none does', async () => {
    dispatcher.start();
    await jest.advanceTimersByTimeAsync(1000);
    expect(refreshed).toEqual([]);
    track(dispatcher.poll(web1, 60_000));
    track(dispatcher.poll(web2, 60_000));
    await jest.advanceTimersByTimeAsync(1000);
    expect(refreshed).toEqual([[web1, web2]]);
    dispatcher.stop();
    await jest.advanceTimersByTimeAsync(5000);
    expect(refreshed).toHaveLength(1);
  });

  it('failing is logged, and the polls wait on', async () => {
    dispatcher = makeDispatcher(4, true);
    dispatcher.start();
    const poll = track(dispatcher.poll(web1, 60_000));
    await jest.advanceTimersByTimeAsync(1000);
    expect(warnings).toContain('presence refresh failed');
    expect(poll.done).toBe(false);
  });
});
