/**
 * `skadi serve --workers 2`: a real primary with two worker processes on one port. Requests reach both workers, a
 * killed worker is replaced, a long poll on one worker gets a job pushed through the other at once, and SIGTERM stops
 * every worker without losing an accepted job.
 */
import http from 'node:http';
import net from 'node:net';
import { Agent as SdkAgent } from '../../agent/sdk';
import { startGateway, type Gateway } from '../helpers/gateway';
import { eventually } from '../helpers/env';
import { spawn } from 'node:child_process';
import { ensureBuilt, processAlive as alive, ROOT, SKADI_BIN, startServe, stopChild } from '../helpers/process';

/** A port free right now (the gateway is restarted on the same one). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One request on a given connection pool; resolves with status and parsed body (null when empty). */
function request(
  pool: http.Agent | false,
  base: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        agent: pool,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : null }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The worker that answers on a fresh connection. */
async function workerOf(pool: http.Agent | false, base: string): Promise<number> {
  const res = await request(pool, base, 'GET', '/healthz');
  expect(res.status).toBe(200);
  return res.body.worker;
}

/** The pid of each worker number, from the primary's "worker N started (pid P)" lines (the latest per worker). */
function workerPids(output: string): Map<number, number> {
  const pids = new Map<number, number>();
  for (const match of output.matchAll(/worker (\d+) started \(pid (\d+)\)/g)) pids.set(Number(match[1]), Number(match[2]));
  return pids;
}

describe('serve --workers 2 that cannot start', () => {
  beforeAll(() => ensureBuilt());

  it('stops with exit code 2 and the reason when the workers cannot reach MySQL', async () => {
    const child = spawn(process.execPath, [SKADI_BIN, 'serve', '--workers', '2', '--json'], {
      cwd: ROOT,
      env: { ...process.env, SKADI_PORT: '0', SKADI_HOST: '127.0.0.1', SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/nowhere' },
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c))); // after its last output
    clearTimeout(timer);
    expect(code).toBe(2);
    expect(output).toMatch(/Cannot reach MySQL at mysql:\/\/root@127\.0\.0\.1:1\/nowhere/);
    expect(output).toMatch(/worker \d exited during start-up; stopping/);
  }, 40_000);
});

describe('serve --workers 2', () => {
  let gw: Gateway;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    gw = await startGateway({ SKADI_WORKERS: '2', SKADI_PORT: String(port) });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('serves requests from both workers, and /metrics and the logs say which worker is which', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await workerOf(false, gw.base));
    expect([...seen].sort()).toEqual([1, 2]);
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    expect(metrics).toMatch(/skadi_long_polls_waiting\{worker="1"\} \d+/);
    expect(metrics).toMatch(/skadi_long_polls_waiting\{worker="2"\} \d+/);
    expect(gw.output()).toMatch(/"worker":1,[^\n]*worker 1 is ready/);
    expect(gw.output()).toMatch(/"worker":2,[^\n]*worker 2 is ready/);
    expect(gw.output()).toMatch(/"worker":"primary"[^\n]*listening on http:\/\/127\.0\.0\.1:\d+ with 2 workers/);
  });

  it('hands a job pushed through one worker at once to an agent long-polling the other', async () => {
    // Each pool holds one connection, so the poll stays on the worker that answered its /healthz.
    const pollPool = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const pushPool = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const pollWorker = await workerOf(pollPool, gw.base);
      let pushWorker = await workerOf(pushPool, gw.base);
      for (let i = 0; i < 20 && pushWorker === pollWorker; i++) {
        pushPool.destroy();
        pushWorker = await workerOf(pushPool, gw.base);
      }
      expect(pushWorker).not.toBe(pollWorker);
      // The poll waits a minute, longer than this test may take: the job it gets came with the push's wake-up, not at
      // the end of its wait.
      const poll = request(pollPool, gw.base, 'GET', '/agent/job?wait=60', gw.agentToken);
      await eventually(
        async () => (await fetch(`${gw.base}/metrics`)).text().then((t) => /skadi_long_polls_waiting\{worker="\d"\} 1/.test(t)),
        10_000,
        'the poll to wait',
      );
      const pushed = await request(pushPool, gw.base, 'POST', '/job/add', gw.userToken, { message: `${gw.agentName} uptime` });
      expect(pushed.status).toBe(201);
      const answer = await poll;
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ id: pushed.body.id, message: 'uptime' });
      expect(
        (await request(pollPool, gw.base, 'PUT', `/agent/jobs/${pushed.body.id}/succeed`, gw.agentToken, { result: 'up' })).status,
      ).toBe(204);
    } finally {
      pollPool.destroy();
      pushPool.destroy();
    }
  }, 40_000);

  it('replaces a killed worker', async () => {
    const before = workerPids(gw.output());
    expect(before.size).toBe(2);
    process.kill(before.get(1)!, 'SIGKILL');
    const replaced = await eventually(
      () => {
        const pid = workerPids(gw.output()).get(1);
        return pid !== before.get(1) ? pid : undefined;
      },
      20_000,
      'worker 1 to be started again',
    );
    expect(gw.output()).toMatch(/worker 1 died \(SIGKILL\); restarting it in \d+ ms/);
    await eventually(
      () => (gw.output().split(`worker 1 started (pid ${replaced})`)[1] ?? '').includes('worker 1 is ready'),
      20_000,
      'the new worker 1 to be ready',
    );
    const seen = new Set<number>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await workerOf(false, gw.base));
    expect([...seen].sort()).toEqual([1, 2]);
    expect(alive(before.get(2)!)).toBe(true); // the other worker went on serving
    expect(gw.child.exitCode).toBeNull();
  }, 60_000);

  it('stops every worker on SIGTERM without losing an accepted job', async () => {
    const handled: string[] = [];
    const sdk = new SdkAgent({ server: gw.base, token: gw.agentToken, waitSeconds: 5 });
    const loop = sdk.start((job) => {
      handled.push(job.id);
      return 'done';
    });
    try {
      await eventually(() => gw.core.agents.isOnline(gw.agentId), 10_000, 'the agent to poll');
      // Pushers keep pushing through the stop; every 201 is a job that must not be lost.
      const accepted: string[] = [];
      let pushing = true;
      const pushers = Array.from({ length: 8 }, async () => {
        while (pushing) {
          try {
            const res = await request(false, gw.base, 'POST', '/job/add', gw.userToken, {
              message: `${gw.agentName} echo ${accepted.length}`,
            });
            if (res.status === 201) accepted.push(res.body.id);
          } catch {
            // the node is stopping: refused connections are not accepted jobs
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      });
      await eventually(() => accepted.length >= 40, 20_000, 'jobs to be accepted');
      const pids = [...workerPids(gw.output()).values()];
      const exitCode = await stopChild(gw.child);
      pushing = false;
      await Promise.all(pushers);
      expect(exitCode).toBe(0);
      expect(pids.filter(alive)).toEqual([]);
      const stopping = gw.output().slice(gw.output().indexOf('stopping the workers'));
      expect(stopping).toMatch(/"workerNumber":1,"code":0,[^\n]*worker 1 stopped/);
      expect(stopping).toMatch(/"workerNumber":2,"code":0,[^\n]*worker 2 stopped/);
      expect(stopping).not.toMatch(/did not stop within|"level":50|"level":60/);
      // Every accepted job is committed; started again on the same port, the gateway runs them all.
      for (const id of accepted) expect((await gw.core.jobs.get(id, null)).id).toBe(id);
      const again = await startServe({ ...gw.env, SKADI_PORT: String(port) });
      try {
        const unfinished = async () =>
          (await Promise.all(accepted.map((id) => gw.core.jobs.get(id, null)))).filter((j) => j.status !== 'succeeded');
        try {
          await eventually(async () => (await unfinished()).length === 0, 60_000, `all ${accepted.length} accepted jobs to succeed`);
        } catch (err) {
          // Say which jobs are stuck, in what state, and what both gateways and the agent said of them.
          const stuck = await unfinished();
          const said = (text: string) => text.split('\n').filter((line) => stuck.some((j) => line.includes(j.id)));
          throw new Error(
            `${(err as Error).message}\nstuck: ${JSON.stringify(stuck.map((j) => ({ id: j.id, status: j.status, reason: j.reason })))}` +
              `\nhandled: ${
                stuck
                  .filter((j) => handled.includes(j.id))
                  .map((j) => j.id)
                  .join(' ') || 'none'
              }` +
              `\nfirst gateway:\n${said(gw.output()).join('\n')}\nsecond gateway:\n${said(again.output()).join('\n')}`,
          );
        }
        expect(new Set(handled.filter((id) => accepted.includes(id))).size).toBe(accepted.length);
      } finally {
        await sdk.stop();
        await loop;
        await stopChild(again.child);
      }
    } finally {
      await sdk.stop();
    }
  }, 120_000);
});
