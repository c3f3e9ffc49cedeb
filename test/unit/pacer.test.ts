/** The notifier's Pacer: waits computed from several rate limits, and run() pacing and serializing per key (fake clock). */
import type { RateLimit } from '../../adapters/contract';
import { Pacer } from '../../adapters/pacer';

const TEAMS: RateLimit[] = [
  { count: 7, windowMs: 1000 },
  { count: 8, windowMs: 2000 },
  { count: 60, windowMs: 30_000 },
];
const T0 = 1_000_000;

describe('Pacer.waitMs', () => {
  it('lets a send go at once below every limit', () => {
    expect(Pacer.waitMs([], TEAMS, T0)).toBe(0);
    expect(Pacer.waitMs(Array(6).fill(T0), TEAMS, T0)).toBe(0);
  });

  it('waits for the limit that is full the longest', () => {
    expect(Pacer.waitMs(Array(7).fill(T0), TEAMS, T0 + 100)).toBe(900); // 7 in 1 s
    expect(Pacer.waitMs([T0, T0 + 100, ...Array(6).fill(T0 + 1100)], TEAMS, T0 + 1100)).toBe(900); // 8 in 2 s
    expect(Pacer.waitMs([T0, ...Array(7).fill(T0 + 1200)], TEAMS, T0 + 1300)).toBe(900); // 7 in 1 s, the later of the two
    expect(Pacer.waitMs([T0, ...Array(7).fill(T0 + 1200)], TEAMS, T0 + 2200)).toBe(0);
    const sixty = Array.from({ length: 60 }, (_, i) => T0 + i * 400); // spaced enough for the short limits
    expect(Pacer.waitMs(sixty, TEAMS, T0 + 24_000)).toBe(6000); // 60 in 30 s
  });

  it('spaces sends by the interval with the default single limit', () => {
    expect(Pacer.waitMs([T0], [{ count: 1, windowMs: 1000 }], T0 + 250)).toBe(750);
    expect(Pacer.waitMs([T0 - 5000, T0], [{ count: 1, windowMs: 1000 }], T0 + 1000)).toBe(0);
  });
});

describe('Pacer.run', () => {
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  /** Queues n sends on key and records when each one ran, relative to T0. */
  function sends(pacer: Pacer, key: string, n: number, limits?: RateLimit[], took = 0) {
    const at: number[] = [];
    const done = Array.from({ length: n }, () =>
      pacer.run(
        key,
        async () => {
          at.push(Date.now() - T0);
          if (took) await new Promise((r) => setTimeout(r, took));
        },
        limits,
      ),
    );
    return { at, done: Promise.all(done) };
  }

  it('lets 7 sends go in the first second and holds the 8th and 9th to the Teams limits', async () => {
    const c1 = sends(new Pacer(1000), 'c1', 9, TEAMS);
    await jest.advanceTimersByTimeAsync(999);
    expect(c1.at).toEqual([0, 0, 0, 0, 0, 0, 0]);
    await jest.advanceTimersByTimeAsync(1);
    expect(c1.at).toHaveLength(8);
    await jest.advanceTimersByTimeAsync(1000);
    await c1.done;
    expect(c1.at).toEqual([0, 0, 0, 0, 0, 0, 0, 1000, 2000]);
  });

  it('does not make one conversation wait for another', async () => {
    const pacer = new Pacer(1000);
    const c1 = sends(pacer, 'c1', 8, TEAMS);
    const c2 = sends(pacer, 'c2', 2, TEAMS);
    await jest.advanceTimersByTimeAsync(0);
    expect(c2.at).toEqual([0, 0]);
    expect(c1.at).toHaveLength(7);
    await jest.advanceTimersByTimeAsync(1000);
    await Promise.all([c1.done, c2.done]);
  });

  it('uses the pacing interval without limits of its own', async () => {
    const c1 = sends(new Pacer(300), 'c1', 3);
    await jest.advanceTimersByTimeAsync(600);
    await c1.done;
    expect(c1.at).toEqual([0, 300, 600]);
  });

  it('still runs one send per key at a time, even when the limits would allow more', async () => {
    const pacer = new Pacer(1000);
    const c1 = sends(pacer, 'c1', 3, TEAMS, 250);
    const c2 = sends(pacer, 'c2', 1, TEAMS, 250);
    await jest.advanceTimersByTimeAsync(500);
    await jest.advanceTimersByTimeAsync(250);
    await Promise.all([c1.done, c2.done]);
    expect(c1.at).toEqual([0, 250, 500]);
    expect(c2.at).toEqual([0]);
  });

  it('goes on with the next send after one fails', async () => {
    const pacer = new Pacer(1000);
    const failed = pacer.run('c1', async () => Promise.reject(new Error('Teams answered 502')), TEAMS);
    const next = pacer.run('c1', async () => 'sent', TEAMS);
    await expect(failed).rejects.toThrow('502');
    await expect(next).resolves.toBe('sent');
  });
});
