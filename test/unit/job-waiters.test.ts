/** Waiting for a job's end (GET /jobs/:id?wait=N): woken by its done signal, re-reading every 5 s, on fake timers. */
import { JobWaiters } from '../../cloud/lifecycle/job-waiters';
import type { JobRow, JobStatus } from '../../cloud/store/jobs';
import { jobRow } from '../helpers/rows';

const T0 = new Date('2026-12-02T10:00:00Z').getTime();
const job = (status: JobStatus): JobRow => jobRow({ id: 'J1', status, createdAt: new Date(T0), updatedAt: new Date(T0) });

let status: JobStatus;
let reads: { id: string; userId: number | null; at: number }[];
let waiters: JobWaiters;

beforeEach(() => {
  jest.useFakeTimers({ now: T0 });
  status = 'running';
  reads = [];
  waiters = new JobWaiters({
    get: async (id, userId) => {
      reads.push({ id, userId, at: Date.now() - T0 });
      if (id !== 'J1') throw new Error(`There is no job ${id}.`);
      return job(status);
    },
  });
});
afterEach(() => jest.useRealTimers());

/** The state of a wait's promise, without waiting for it. */
function track(promise: Promise<JobRow>) {
  const state: { done: boolean; job?: JobRow; error?: unknown } = { done: false };
  promise.then(
    (found) => Object.assign(state, { done: true, job: found }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

describe('waitTerminal', () => {
  it('answers a finished job at once, read for the given user', async () => {
    status = 'succeeded';
    await expect(waiters.waitTerminal('J1', 7, 60_000)).resolves.toMatchObject({ status: 'succeeded' });
    expect(reads).toEqual([{ id: 'J1', userId: 7, at: 0 }]);
    expect(waiters.isWaiting('J1')).toBe(false);
  });

  it('sleeps until the job is done, then reads it again', async () => {
    const wait = track(waiters.waitTerminal('J1', null, 60_000));
    await jest.advanceTimersByTimeAsync(1000);
    expect(waiters.isWaiting('J1')).toBe(true);
    waiters.notify('J2'); // another job's end does not wake it
    await jest.advanceTimersByTimeAsync(0);
    expect(reads).toHaveLength(1);
    status = 'failed';
    waiters.notify('J1');
    await jest.advanceTimersByTimeAsync(0);
    expect(wait).toMatchObject({ done: true, job: { status: 'failed' } });
    expect(reads.map((r) => r.at)).toEqual([0, 1000]);
    expect(waiters.isWaiting('J1')).toBe(false);
  });

  it('reads again every 5 s (a done signal may be lost while Redis is away) and answers the job as it is when the wait ends', async () => {
    const wait = track(waiters.waitTerminal('J1', null, 12_000));
    await jest.advanceTimersByTimeAsync(11_999);
    expect(wait.done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(wait).toMatchObject({ done: true, job: { status: 'running' } });
    expect(reads.map((r) => r.at)).toEqual([0, 5000, 10_000, 12_000]);
  });

  it('notices the end at a re-read, without a signal', async () => {
    const wait = track(waiters.waitTerminal('J1', null, 60_000));
    await jest.advanceTimersByTimeAsync(1000);
    status = 'expired';
    await jest.advanceTimersByTimeAsync(4000);
    expect(wait).toMatchObject({ done: true, job: { status: 'expired' } });
  });

  it('answers at once when the caller goes away', async () => {
    const abort = new AbortController();
    const wait = track(waiters.waitTerminal('J1', null, 60_000, abort.signal));
    await jest.advanceTimersByTimeAsync(100);
    abort.abort();
    await jest.advanceTimersByTimeAsync(0);
    expect(wait).toMatchObject({ done: true, job: { status: 'running' } });
    expect(reads).toHaveLength(2);
  });

  it('with no wait reads once', async () => {
    await expect(waiters.waitTerminal('J1', null, 0)).resolves.toMatchObject({ status: 'running' });
    expect(reads).toHaveLength(1);
  });

  it('counts each sleeping waiter: one ending leaves the other waiting', async () => {
    const abort = new AbortController();
    const first = track(waiters.waitTerminal('J1', null, 60_000, abort.signal));
    const second = track(waiters.waitTerminal('J1', null, 60_000));
    await jest.advanceTimersByTimeAsync(0);
    abort.abort();
    await jest.advanceTimersByTimeAsync(0);
    expect([first.done, second.done]).toEqual([true, false]);
    expect(waiters.isWaiting('J1')).toBe(true);
    status = 'succeeded';
    waiters.notify('J1');
    await jest.advanceTimersByTimeAsync(0);
    expect(second).toMatchObject({ done: true, job: { status: 'succeeded' } });
    expect(waiters.isWaiting('J1')).toBe(false);
  });

  it('passes on a failed read (no such job)', async () => {
    await expect(waiters.waitTerminal('J9', null, 60_000)).rejects.toThrow('There is no job J9.');
    waiters.notify('J9'); // nothing left waiting for it
    expect(waiters.isWaiting('J9')).toBe(false);
  });
});
