import { partProblems, withTimeout } from '../../bench/verdict';

describe('benchmark verdicts', () => {
  it('counts a clean run', () => {
    expect(partProblems('load', { pushed: 150, accepted: 150, errors: {} })).toEqual([]);
    expect(partProblems('throughput', { jobs: 500, accepted: 500, succeeded: 500 })).toEqual([]);
    expect(partProblems('dispatch', { jobs: 100, p50_ms: 3 })).toEqual([]);
  });

  it('refuses a run with nothing accepted, refused pushes, jobs that did not succeed, or errors', () => {
    expect(partProblems('load', { pushed: 150, accepted: 0, errors: {} })).toEqual(['load: 0 of 150 pushes accepted']);
    expect(partProblems('load', { pushed: 0, accepted: 0, errors: {} })).toEqual(['load: nothing was pushed']);
    expect(partProblems('throughput', { jobs: 500, accepted: 500, succeeded: 480 })).toEqual(['throughput: 480 of 500 jobs succeeded']);
    expect(partProblems('load', { pushed: 150, accepted: 150, errors: { job_expired: 3, push_503: 0 } })).toEqual([
      'load: 3 × job_expired',
    ]);
    expect(partProblems('agents', { jobs: 50, accepted: 49 })).toEqual(['agents: 49 of 50 pushes accepted']);
  });

  it('times out a wait that never ends', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'a job')).rejects.toThrow('timed out after 0.02 s waiting for a job');
    await expect(withTimeout(Promise.resolve(7), 20, 'a job')).resolves.toBe(7);
  });
});
