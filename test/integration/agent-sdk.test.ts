/** The agent SDK against a real `skadi serve`: long polls, lease renewal, concurrency, messages, errors and backoff. */
import http from 'node:http';
import { Agent, InvalidTokenError, type AgentLogger } from '../../agent/sdk';
import { eventually, readStream } from '../helpers/env';
import { call } from '../helpers/http';
import { startGateway, type Gateway } from '../helpers/gateway';
import { startProxy } from '../helpers/proxy';

let gw: Gateway;
beforeAll(async () => {
  gw = await startGateway({ SKADI_JOB_LEASE: '2s', SKADI_SWEEP_INTERVAL: '100ms' });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
});

let agentSeq = 0;
/** A new agent of the gateway's user: each test has its own, so a poll an earlier test abandoned at stop can never take its jobs. */
async function freshAgent(): Promise<{ id: number; name: string; token: string }> {
  const user = await gw.core.users.byName('ops');
  const { agent, token } = await gw.core.agents.create(user.id, `sdk${++agentSeq}`);
  return { id: agent.id, name: agent.name, token };
}

/** Waits until the agent has polled (a job pushed before would expire at once: agent offline). */
const online = (id: number) => eventually(() => gw.core.agents.isOnline(id), 10_000, 'the agent to poll');

/** How many requests of a route the gateway has answered with a status (from its /metrics). */
async function answered(method: string, route: string, status: number): Promise<number> {
  const text = (await call(gw.base, 'GET', '/metrics')).body as string;
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`skadi_http_request_duration_seconds_count{method="${method}",route="${route}",status="${status}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A logger that records what the SDK says, and when. */
function recordingLogger(): AgentLogger & { lines: { level: string; msg: string; fields?: Record<string, unknown>; at: number }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown>; at: number }[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields, at: Date.now() });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Agent SDK', () => {
  it('splits a job into the words approval patterns see, and refuses text that has no such words', async () => {
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, waitSeconds: 20 });
    const running = agent.start(async (job) => JSON.stringify(job.words()));
    try {
      await online(a.id);
      const quoted = await gw.push(`"deploy" 'prod env' d\\b`, a.name);
      const operator = await gw.push('uptime; reboot', a.name);
      expect(await gw.waitJob(quoted)).toMatchObject({ status: 'succeeded', result: '["deploy","prod env","db"]' });
      expect(await gw.waitJob(operator)).toMatchObject({ status: 'failed', result: expect.stringContaining('shell operator') });
    } finally {
      await agent.stop();
      await running;
    }
  });

  it('receives pushed jobs through the long poll and reports success and failure', async () => {
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, waitSeconds: 20, renewIntervalMs: 250 });
    const running = agent.start(async (job) => {
      if (job.message === 'boom') throw new Error('it exploded');
      return `done: ${job.message}`;
    });
    try {
      await online(a.id);
      const ok = await gw.push('hello', a.name);
      const bad = await gw.push('boom', a.name);
      expect(await gw.waitJob(ok)).toMatchObject({ status: 'succeeded', result: 'done: hello' });
      expect(await gw.waitJob(bad)).toMatchObject({ status: 'failed', result: 'it exploded' });
    } finally {
      await agent.stop();
      await running;
    }
  });

  it('takes the next queued job with the report of the previous one, without a poll in between', async () => {
    const a = await freshAgent();
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const agent = new Agent({ server: gw.base, token: a.token, waitSeconds: 20 });
    const running = agent.start(async (job) => {
      seen.push(job.message);
      if (job.message === 'first') await first;
      return 'ok';
    });
    try {
      await online(a.id);
      const ids = [await gw.push('first', a.name)];
      await eventually(() => seen.length === 1, 10_000, 'the first job to start');
      for (let i = 0; i < 10; i++) ids.push(await gw.push(`queued ${i}`, a.name)); // queued while the agent is busy
      const polls = await answered('GET', '/agent/job', 200);
      const reportsWithJob = await answered('PUT', '/agent/jobs/:id/succeed', 200);
      release();
      for (const id of ids) expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded' });
      expect(seen).toEqual(['first', ...Array.from({ length: 10 }, (_, i) => `queued ${i}`)]);
      // Each report brought the next job: ten reports answered 200 with a job, no poll answered with one.
      expect((await answered('PUT', '/agent/jobs/:id/succeed', 200)) - reportsWithJob).toBe(10);
      expect((await answered('GET', '/agent/job', 200)) - polls).toBe(0);
    } finally {
      await agent.stop();
      await running;
    }
  });

  it('answers ?next=1 on a final report with the next queued job or 204, and refuses a bad value', async () => {
    const a = await freshAgent();
    expect((await call(gw.base, 'GET', '/agent/job', { token: a.token })).status).toBe(204);
    const one = await gw.push('one', a.name);
    const two = await gw.push('two', a.name);
    expect(await call(gw.base, 'GET', '/agent/job', { token: a.token })).toMatchObject({ status: 200, body: { id: one } });
    expect((await call(gw.base, 'PUT', `/agent/jobs/${one}/running?next=1`, { token: a.token, body: { result: '…' } })).status).toBe(204);
    expect((await call(gw.base, 'PUT', `/agent/jobs/${one}/succeed?next=yes`, { token: a.token, body: { result: 'x' } })).status).toBe(400);
    expect(await call(gw.base, 'PUT', `/agent/jobs/${one}/succeed?next=1`, { token: a.token, body: { result: 'done' } })).toMatchObject({
      status: 200,
      body: { id: two, message: 'two' },
    });
    expect((await gw.core.jobs.get(one, null)).status).toBe('succeeded');
    expect((await gw.core.jobs.get(two, null)).status).toBe('sent');
    expect((await call(gw.base, 'PUT', `/agent/jobs/${two}/fail?next=1`, { token: a.token, body: { result: 'no' } })).status).toBe(204);
    expect((await gw.core.jobs.get(two, null)).status).toBe('failed');
  });

  it('renews the lease while a handler works longer than the lease, and reports progress', async () => {
    const a = await freshAgent();
    const done = signal();
    const agent = new Agent({ server: gw.base, token: a.token, renewIntervalMs: 200 });
    const running = agent.start(async (job) => {
      await job.running('step 1 of 2');
      await done.promise; // works until the test has seen the job outlive two leases
      return 'finished';
    });
    try {
      await online(a.id);
      const id = await gw.push('slow', a.name);
      const runningEvents = async () =>
        (await readStream(gw.core, gw.core.keys.jobStatusStream)).filter((e) => e.job_id === id && e.status === 'running');
      await eventually(async () => (await runningEvents()).length >= 1, 10_000, 'the job to run');
      // Two leases (2 s each) after it was taken, it still runs: the renewals, not the first lease, kept it.
      const sentAt = (await gw.core.jobs.get(id, null)).sentAt!.getTime();
      await eventually(async () => Date.now() > sentAt + 4100 && (await runningEvents()).length > 3, 15_000, 'two leases to pass');
      expect((await gw.core.jobs.get(id, null)).status).toBe('running');
      done.resolve();
      expect(await gw.waitJob(id)).toMatchObject({ status: 'succeeded', result: 'finished' });
      expect((await runningEvents())[0]?.result).toBe('step 1 of 2');
    } finally {
      done.resolve();
      await agent.stop();
      await running;
    }
  });

  it('runs up to `concurrency` jobs at once', async () => {
    let active = 0;
    let peak = 0;
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, concurrency: 3, renewIntervalMs: 250 }); // the lease is 2 s here
    // The first jobs wait until three run at once (or 15 s pass): no timing decides the overlap.
    let allThree!: () => void;
    const three = new Promise<void>((resolve) => (allThree = resolve));
    const running = agent.start(async () => {
      peak = Math.max(peak, ++active);
      if (active >= 3) allThree();
      let safety: NodeJS.Timeout | undefined;
      await Promise.race([three, new Promise((r) => (safety = setTimeout(r, 15_000)))]);
      clearTimeout(safety); // no timer outlives the test
      active--;
      return 'ok';
    });
    try {
      await online(a.id);
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => gw.push(`job ${i}`, a.name)));
      for (const id of ids) expect((await gw.waitJob(id, 40)).status).toBe('succeeded');
      expect(peak).toBe(3);
    } finally {
      await agent.stop();
      await running;
    }
  });

  it('sends messages and adds jobs (also delayed) for other agents', async () => {
    const user = await gw.core.users.byName('ops');
    await gw.core.agents.create(user.id, 'db1');
    const agent = new Agent({ server: gw.base, token: gw.agentToken });
    await agent.sendInfo('backup started');
    await agent.sendWarning('disk 91%');
    // db1 never polled: the sender learns at once that nothing will run, and nothing is stored.
    await expect(agent.addJob('db1 vacuum')).rejects.toMatchObject({ status: 400, code: 'InvalidAgent' });
    const delayed = await agent.addDelayedJob('backup', '2h', { agent: 'db1' });
    expect(delayed.agent).toBe('db1');
    await agent.stop(); // closes the kept-alive connections
    expect(Date.parse(delayed.due_at)).toBeGreaterThan(Date.now() + 7_000_000);
    const messages = await readStream(gw.core, gw.core.keys.messageStream);
    expect(messages.map((m) => m.message)).toEqual(expect.arrayContaining(['backup started', 'disk 91%']));
  });

  it('sends each kind of message to the message stream with its kind and the agent name', async () => {
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token });
    try {
      await agent.sendInfo('an info');
      await agent.sendWarning('a warning');
      await agent.sendText('a text');
      await agent.sendAuto('an auto');
    } finally {
      await agent.stop(); // closes the kept-alive connections
    }
    const mine = (await readStream(gw.core, gw.core.keys.messageStream)).filter((m) => m.agent_id === a.id);
    expect(mine.map((m) => ({ kind: m.kind, message: m.message, agent: m.agent }))).toEqual([
      { kind: 'info', message: 'an info', agent: a.name },
      { kind: 'warning', message: 'a warning', agent: a.name },
      { kind: 'text', message: 'a text', agent: a.name },
      { kind: 'auto', message: 'an auto', agent: a.name },
    ]);
  });

  it('stores a delayed job with its due time, from a duration ("1h30m") or milliseconds', async () => {
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token });
    const before = Date.now();
    const byDuration = await agent.addDelayedJob('rotate logs', '1h30m');
    const byMs = await agent.addDelayedJob('rotate logs', 90 * 60_000);
    const after = Date.now();
    await agent.stop();
    for (const delayed of [byDuration, byMs]) {
      expect(delayed.agent).toBe(a.name);
      const due = Date.parse(delayed.due_at);
      expect(due).toBeGreaterThanOrEqual(before + 5_400_000);
      expect(due).toBeLessThanOrEqual(after + 5_400_000);
      const [rows] = await gw.core.db.pool.query<any[]>('SELECT agent_id, message, due_at, released_at FROM delayed_jobs WHERE id = ?', [
        delayed.id,
      ]);
      expect(rows).toEqual([{ agent_id: a.id, message: 'rotate logs', due_at: new Date(due), released_at: null }]);
      expect(Number(await gw.core.redis.zscore(gw.core.keys.delayed, delayed.id))).toBe(due);
    }
  });

  it('releases a short delayed job when it is due, and the agent runs it', async () => {
    const a = await freshAgent();
    const received: { id: string; message: string; at: number }[] = [];
    const agent = new Agent({ server: gw.base, token: a.token, renewIntervalMs: 250 });
    const running = agent.start((job) => {
      received.push({ id: job.id, message: job.message, at: Date.now() });
      return `ran ${job.message}`;
    });
    try {
      await online(a.id);
      const delayed = await agent.addDelayedJob('check the backups', 1000); // for the caller itself
      expect(delayed.agent).toBe(a.name);
      await eventually(() => gw.core.jobs.get(delayed.id, null).catch(() => null), 15_000, 'the delayed job to be released');
      expect(await gw.waitJob(delayed.id)).toMatchObject({ status: 'succeeded', result: 'ran check the backups' });
      expect(received.map(({ id, message }) => ({ id, message }))).toEqual([{ id: delayed.id, message: 'check the backups' }]);
      expect(received[0].at).toBeGreaterThanOrEqual(Date.parse(delayed.due_at));
    } finally {
      await agent.stop();
      await running;
    }
  });

  it('stops with a clear error on a refused token', async () => {
    const log = recordingLogger();
    const agent = new Agent({ server: gw.base, token: 'ska_' + 'x'.repeat(32), logger: log });
    await expect(agent.start(() => 'never')).rejects.toThrow(InvalidTokenError);
    await expect(agent.start(() => 'x')).rejects.toThrow(/already started/);
    expect(log.lines.some((l) => l.level === 'error' && /invalid agent token/.test(l.msg))).toBe(true);
  });

  it('backs off while the server is unreachable and recovers when it returns', async () => {
    const proxy = await startProxy(gw.port);
    proxy.cut();
    const log = recordingLogger();
    const a = await freshAgent();
    const agent = new Agent({ server: `http://127.0.0.1:${proxy.port}`, token: a.token, logger: log, backoff: { minMs: 50, maxMs: 400 } });
    const running = agent.start(() => 'back');
    try {
      const failures = () => log.lines.filter((l) => l.msg === 'poll failed; retrying');
      await eventually(() => failures().length >= 6, 20_000, 'six failed polls');
      const seen = failures();
      const retries = seen.map((l) => l.fields!.retryInMs as number);
      expect(Math.max(...retries)).toBeGreaterThan(Math.min(...retries)); // the delay grows
      expect(retries.filter((ms) => ms > 400)).toEqual([]); // up to maxMs only
      // Not a tight loop: each retry waited at least the delay it announced (however slow the machine).
      for (let i = 1; i < seen.length; i++) expect(seen[i].at - seen[i - 1].at).toBeGreaterThanOrEqual(retries[i - 1] - 5);
      proxy.resume();
      const resumedAt = Date.now();
      await eventually(async () => ((await gw.core.queue.lastSeen(a.id)) ?? 0) > resumedAt, 10_000, 'a poll after the outage');
      const job = await gw.waitJob(await gw.push('after outage', a.name));
      expect({ status: job.status, result: job.result, reason: job.reason }).toEqual({ status: 'succeeded', result: 'back', reason: '' });
    } finally {
      await agent.stop();
      await running;
      await proxy.close();
    }
  });

  it('falls back to plain polling against a server that ignores ?wait', async () => {
    const polls: number[] = [];
    const legacy = http.createServer((_req, res) => {
      polls.push(Date.now());
      res.statusCode = 204;
      res.end();
    });
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
    const agent = new Agent({
      server: `http://127.0.0.1:${(legacy.address() as { port: number }).port}`,
      token: 'ska_legacy',
      pollIntervalMs: 400,
    });
    const running = agent.start(() => 'x');
    try {
      await eventually(() => polls.length >= 5, 15_000, 'five polls');
    } finally {
      await agent.stop();
      await running;
      await new Promise((r) => legacy.close(r));
    }
    // Two early empty answers make it poll every pollIntervalMs from then on, never faster.
    const gaps = polls.slice(1).map((at, i) => at - polls[i]);
    expect(gaps.slice(2).filter((gap) => gap < 390)).toEqual([]);
  });

  it('stops gracefully: no new poll, the running job finishes and reports', async () => {
    const jobStarted = signal();
    const stopCalled = signal();
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, renewIntervalMs: 250 });
    const running = agent.start(async () => {
      jobStarted.resolve();
      await stopCalled.promise; // still running when stop() is called
      return 'completed during stop';
    });
    let id: string;
    try {
      await online(a.id);
      id = await gw.push('long one', a.name);
      await jobStarted.promise;
    } finally {
      const stopping = agent.stop();
      stopCalled.resolve();
      await stopping;
      await running;
    }
    expect(await gw.core.jobs.get(id, null)).toMatchObject({ status: 'succeeded', result: 'completed during stop' });
    // A job pushed after the stop is still there for the next poller: the stopped agent took nothing.
    const after = await gw.push('after stop', a.name);
    expect(await call(gw.base, 'GET', '/agent/job?wait=10', { token: a.token })).toMatchObject({ status: 200, body: { id: after } });
  });

  it("aborts job.signal after stopTimeoutMs when the handler ignores stop; the job fails with the handler's error", async () => {
    let started!: (signal: AbortSignal) => void;
    const jobStarted = new Promise<AbortSignal>((r) => (started = r));
    let abortedAt = 0;
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, renewIntervalMs: 250, stopTimeoutMs: 700 });
    // The handler ignores stop: only the abort of job.signal ends it (or, should the abort never come, a 12 s safety
    // timer, so that a broken stop fails this test instead of hanging the run).
    const running = agent.start(
      (job) =>
        new Promise<string>((_, reject) => {
          const safety = setTimeout(() => reject(new Error('job.signal was never aborted')), 12_000);
          job.signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            clearTimeout(safety);
            reject(new Error('gave up: the agent is stopping'));
          });
          started(job.signal);
        }),
    );
    let id: string;
    let jobSignal: AbortSignal;
    let stoppedAt = 0;
    let stopEndedAt = 0;
    try {
      await online(a.id);
      id = await gw.push('never ends by itself', a.name);
      jobSignal = await jobStarted;
      expect(jobSignal.aborted).toBe(false);
    } finally {
      stoppedAt = Date.now();
      await agent.stop();
      stopEndedAt = Date.now();
      await running;
    }
    expect(jobSignal.aborted).toBe(true);
    expect(abortedAt - stoppedAt).toBeGreaterThanOrEqual(650); // not before the stop timeout…
    expect(abortedAt).toBeLessThanOrEqual(stopEndedAt); // …and by stop() itself
    expect(await gw.core.jobs.get(id, null)).toMatchObject({ status: 'failed', result: 'gave up: the agent is stopping' });
  });

  it('holds a job that a report in flight at stop() brings to the same stop timeout, and aborts it', async () => {
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, waitSeconds: 20, stopTimeoutMs: 500 });
    // stop() is called once the first job's report (which takes the next job) has been sent, before its answer.
    const client = (agent as unknown as { client: { reportAndTake: (...args: unknown[]) => Promise<unknown> } }).client;
    const reportAndTake = client.reportAndTake.bind(client);
    let stopping: Promise<void> | null = null;
    client.reportAndTake = (...args) => {
      const answer = reportAndTake(...args);
      stopping ??= agent.stop();
      return answer;
    };
    let release!: () => void;
    const firstMayEnd = new Promise<void>((r) => (release = r));
    let secondSignal: AbortSignal | null = null;
    const running = agent.start(async (job) => {
      if (job.message === 'first') {
        await firstMayEnd;
        return 'ok';
      }
      secondSignal = job.signal;
      // It ends only when aborted (or after 12 s, so that a stop that never aborts fails this test instead of hanging).
      await new Promise<void>((resolve) => {
        const safety = setTimeout(resolve, 12_000);
        job.signal.addEventListener('abort', () => (clearTimeout(safety), resolve()));
      });
      return job.signal.aborted ? 'aborted' : 'never aborted';
    });
    let second: string;
    try {
      await online(a.id);
      const first = await gw.push('first', a.name);
      await eventually(async () => (await gw.core.jobs.get(first, null)).status === 'sent', 10_000, 'the first job to be taken');
      second = await gw.push('second', a.name); // queued while the agent is busy: the report brings it
      release();
      await eventually(() => stopping !== null, 10_000, 'the report of the first job');
    } finally {
      release();
      await (stopping ?? agent.stop());
      await running;
    }
    expect(secondSignal).not.toBeNull();
    expect(secondSignal!.aborted).toBe(true);
    expect(await gw.waitJob(second)).toMatchObject({ status: 'succeeded', result: 'aborted' });
  });

  it('stops even when a handler ignores the abort too: the job is left to expire after its lease', async () => {
    let started!: () => void;
    const jobStarted = new Promise<void>((r) => (started = r));
    let release!: () => void;
    const a = await freshAgent();
    const agent = new Agent({ server: gw.base, token: a.token, renewIntervalMs: 250, stopTimeoutMs: 300 });
    const running = agent.start(() => {
      started();
      return new Promise<string>((resolve) => (release = () => resolve('too late'))); // deaf to stop and signal
    });
    try {
      await online(a.id);
      const id = await gw.push('deaf handler', a.name);
      await jobStarted;
      await agent.stop(); // resolves after the stop timeout and the abort grace, without the handler
      await running;
      // No renewal keeps it alive any more: the lease (2 s here) runs out.
      await eventually(async () => (await gw.core.jobs.get(id, null)).status === 'expired', 15_000, 'the abandoned job to expire');
    } finally {
      release?.();
    }
  }, 30_000);

  it('keeps no connection open after stop, not even for the late report of a job it left behind', async () => {
    // A server that hands out one job and keeps idle connections a minute (Node's default is 5 s).
    const reports: string[] = [];
    let handed = false;
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && !handed) {
        handed = true;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'JOB1', message: 'deaf' }));
        return;
      }
      if (req.method === 'PUT' && !req.url!.includes('/running')) reports.push(req.url!);
      res.writeHead(204).end();
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const open = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    let release!: () => void;
    const jobStarted = signal();
    const agent = new Agent({
      server: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
      token: 'ska_deaf',
      stopTimeoutMs: 100,
      waitSeconds: 0,
      pollIntervalMs: 60_000,
    });
    const running = agent.start(() => {
      jobStarted.resolve();
      return new Promise<string>((resolve) => (release = () => resolve('too late'))); // deaf to stop and signal
    });
    try {
      await jobStarted.promise;
      await agent.stop(); // leaves the job behind
      await running;
      release();
      await eventually(() => reports.length === 1, 10_000, 'the late report');
      await eventually(async () => (await open()) === 0, 10_000, 'every connection of the agent to close');
    } finally {
      release?.();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 30_000);
});
