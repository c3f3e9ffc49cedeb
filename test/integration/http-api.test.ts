/** Every HTTP route of the agent and user APIs, every error status, on a real server over MariaDB and Redis. */
import nodeHttp from 'node:http';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { dropNamespace, eventually, openServer, readStream, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

const name = uniqueName();
let core: Core;
let http: HttpServer;
let base: string;
let userToken: string;
let agentToken: string;
let otherAgentToken: string;
let strangerToken: string;

beforeAll(async () => {
  ({ core, http, base } = await openServer(testConfig(name, { bodyLimitBytes: 8 * 1024 })));
  const ops = await userWithAgent(core, 'ops', 'web1');
  userToken = ops.userToken;
  agentToken = ops.agentToken;
  otherAgentToken = (await core.agents.create(ops.user.id, 'db1', 'database')).token;
  strangerToken = (await userWithAgent(core, 'stranger', 'web1')).agentToken;
  for (const token of [agentToken, otherAgentToken, strangerToken])
    expect((await call(base, 'GET', '/agent/job', { token })).status).toBe(204);
});
afterAll(async () => {
  await http.close();
  await core.close();
  await dropNamespace(name);
});

/** Pushes a job for web1 through the user API and takes it as web1; returns its id. */
async function takenJob(text = 'uptime'): Promise<string> {
  const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: `web1 ${text}` } });
  expect(pushed.status).toBe(201);
  const taken = await call(base, 'GET', '/agent/job', { token: agentToken });
  expect(taken.body).toEqual({ id: pushed.body.id, message: text });
  return pushed.body.id;
}

describe('health, readiness, metrics', () => {
  it('answers /status, /healthz, /readyz and /metrics', async () => {
    expect((await call(base, 'GET', '/status')).status).toBe(204);
    expect((await call(base, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await call(base, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
    await takenJob();
    const metrics = await call(base, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    for (const metric of [
      'skadi_jobs{status="sent"}',
      'skadi_agents_online',
      'skadi_http_request_duration_seconds_bucket',
      'skadi_job_transitions_total{status="queuing"}',
    ]) {
      expect(metrics.body).toContain(metric);
    }
  });
});

describe('agent API', () => {
  it('refuses missing, malformed and wrong tokens with 401', async () => {
    expect(await call(base, 'GET', '/agent/job')).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect((await call(base, 'GET', '/agent/job', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    expect((await call(base, 'GET', '/agent/job', { token: 'ska_' + 'x'.repeat(32) })).status).toBe(401);
    expect((await call(base, 'GET', '/agent/job', { token: userToken })).status).toBe(401);
  });

  it('refuses a disabled agent with 403, and jobs for it', async () => {
    const user = await core.users.byName('ops');
    const { token } = await core.agents.create(user.id, 'old1');
    await core.agents.setAvailable(user.id, 'old1', false);
    expect(await call(base, 'GET', '/agent/job', { token })).toMatchObject({ status: 403, body: { error: 'AgentUnavailable' } });
    expect((await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'old1 ls' } })).status).toBe(403);
  });

  it('answers 204 with no job and 200 {id,message} with one', async () => {
    expect((await call(base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204);
    await takenJob('df -h');
  });

  it('holds ?wait=N until a job is pushed', async () => {
    const poll = call(base, 'GET', '/agent/job?wait=20', { token: agentToken });
    await eventually(() => core.dispatcher.waiting > 0, 5000, 'the poll to wait');
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 hello' } });
    expect((await poll).body).toEqual({ id: pushed.body.id, message: 'hello' });
  });

  it('validates ?wait', async () => {
    expect(await call(base, 'GET', '/agent/job?wait=abc', { token: agentToken })).toMatchObject({
      status: 400,
      body: { error: 'BadRequest' },
    });
    expect((await call(base, 'GET', '/agent/job?wait=61', { token: agentToken })).status).toBe(400);
    expect((await call(base, 'GET', '/agent/job?wait=-1', { token: agentToken })).status).toBe(400);
  });

  it('takes running, succeed and fail reports (204) and is idempotent on the same end', async () => {
    const id = await takenJob();
    expect((await call(base, 'PUT', `/agent/jobs/${id}/running`, { token: agentToken, body: { result: 'working' } })).status).toBe(204);
    expect((await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: 'ok' } })).status).toBe(204);
    expect((await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: 'ok' } })).status).toBe(204);
    expect(await call(base, 'PUT', `/agent/jobs/${id}/fail`, { token: agentToken, body: { result: 'no' } })).toMatchObject({
      status: 409,
      body: { error: 'JobFinished' },
    });
    const failed = await takenJob();
    expect((await call(base, 'PUT', `/agent/jobs/${failed}/fail`, { token: agentToken, body: { result: 'exit 2' } })).status).toBe(204);
    expect((await core.jobs.get(failed, null)).status).toBe('failed');
  });

  it("answers 404 for another agent's job, unknown ids and path tricks", async () => {
    const id = await takenJob();
    for (const token of [otherAgentToken, strangerToken]) {
      expect(await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token, body: { result: 'x' } })).toMatchObject({
        status: 404,
        body: { error: 'JobNotFound' },
      });
    }
    expect((await call(base, 'PUT', '/agent/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/succeed', { token: agentToken, body: {} })).status).toBe(404);
    expect((await call(base, 'PUT', '/agent/jobs/..%2F..%2Fetc%2Fpasswd/succeed', { token: agentToken, body: {} })).status).toBe(404);
    expect((await core.jobs.get(id, null)).status).toBe('sent');
  });

  it('answers 400 to bad JSON and wrong types, 413 to oversized bodies', async () => {
    const id = await takenJob();
    expect(
      await call(base, 'PUT', `/agent/jobs/${id}/succeed`, {
        token: agentToken,
        body: '{"result":',
        headers: { 'content-type': 'application/json' },
      }),
    ).toMatchObject({ status: 400, body: { error: 'InvalidJSON' } });
    expect(await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: 42 } })).toMatchObject({
      status: 400,
      body: { error: 'BadRequest' },
    });
    expect(
      (
        await call(base, 'PUT', `/agent/jobs/${id}/succeed`, {
          token: agentToken,
          body: '[1,2]',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(400);
    const big = await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: 'x'.repeat(10_000) } });
    expect(big).toMatchObject({ status: 413, body: { error: 'TooLarge' } });
    expect((await core.jobs.get(id, null)).status).toBe('sent');
  });

  it('answers 413 to a chunked body past the limit that declares no length, without reading it all', async () => {
    const id = await takenJob();
    const answer = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
      const req = nodeHttp.request(`${base}/agent/jobs/${id}/succeed`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      });
      let sent = 0;
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }));
      });
      req.on('error', (err) => (answered ? undefined : reject(err)));
      expect(req.getHeader('content-length')).toBeUndefined();
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const more = () => {
        // Up to 10 MB, one chunk at a time; stop once the server has answered.
        while (!answered && sent < 10 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', more);
        }
        req.end();
      };
      req.write('{"result":"');
      more();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'TooLarge' });
    expect((await core.jobs.get(id, null)).status).toBe('sent');
  });

  it('adds a job for another agent of the same user (by name or alias), 404 for unknown agents', async () => {
    const added = await call(base, 'POST', '/agent/job/add', { token: agentToken, body: { message: 'database vacuum' } });
    expect(added).toMatchObject({ status: 201, body: { status: 'queuing' } });
    expect((await call(base, 'GET', '/agent/job', { token: otherAgentToken })).body).toEqual({ id: added.body.id, message: 'vacuum' });
    expect((await core.jobs.get(added.body.id, null)).source).toBe('agent:web1');
    const unknown = await call(base, 'POST', '/agent/job/add', { token: agentToken, body: { message: 'nosuch ls' } });
    expect(unknown).toMatchObject({ status: 404, body: { error: 'AgentNotFound' } });
    expect(unknown.body.message).toContain('web1');
    expect(
      (await call(base, 'POST', '/agent/job/add', { token: agentToken, body: { message: 'db1 ' + 'x'.repeat(4097) } })).body.error,
    ).toBe('MessageTooLong');
    expect((await call(base, 'POST', '/agent/job/add', { token: agentToken, body: {} })).status).toBe(400);
  });

  it('stores delayed jobs from a duration or minutes/hours/days', async () => {
    const before = Date.now();
    const a = await call(base, 'POST', '/agent/job/delayed', {
      token: agentToken,
      body: { message: 'backup', duration: '1h30m', agent: 'db1' },
    });
    expect(a).toMatchObject({ status: 201, body: { agent: 'db1' } });
    expect(
      await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'x', duration: '1h', agent: 'nosuch' } }),
    ).toMatchObject({ status: 404, body: { error: 'AgentNotFound' } });
    expect(Date.parse(a.body.due_at) - before).toBeGreaterThanOrEqual(5_400_000 - 1000);
    const b = await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'rotate logs', hours: 1, minutes: 5 } });
    expect(b).toMatchObject({ status: 201, body: { agent: 'web1' } });
    expect((await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'x', duration: 'soon' } })).status).toBe(
      400,
    );
    expect(await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'x' } })).toMatchObject({
      status: 400,
      body: { error: 'InvalidDuration' },
    });
    expect((await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'x', minutes: 'five' } })).status).toBe(
      400,
    );
  });

  it('sends messages (202) to the message stream', async () => {
    for (const path of [
      '/agent/message/info',
      '/agent/message/warning',
      '/agent/message/text',
      '/agent/message/auto',
      '/agent/info',
      '/agent/warning',
    ]) {
      const res = await call(base, 'POST', path, { token: agentToken, body: { message: `from ${path}` } });
      expect(res.status).toBe(202);
    }
    const events = await readStream(core, core.keys.messageStream);
    expect(events.find((e) => e.message === 'from /agent/message/warning')).toMatchObject({ kind: 'warning', agent: 'web1' });
    expect((await call(base, 'POST', '/agent/message/info', { token: agentToken, body: { message: '' } })).status).toBe(400);
  });
});

describe('user API', () => {
  it('adds jobs by POST and by the GET one-liner', async () => {
    const post = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 ls' } });
    expect(post).toMatchObject({ status: 201, body: { status: 'queuing' } });
    const get = await call(base, 'GET', `/job/add?token=${userToken}&msg=${encodeURIComponent('web1 ls -la')}`);
    expect(get).toMatchObject({ status: 201, body: { status: 'queuing' } });
    expect((await core.jobs.get(get.body.id, null)).message).toBe('ls -la');
    expect((await call(base, 'GET', '/job/add?token=nope&msg=web1+ls')).status).toBe(401);
    expect((await call(base, 'POST', `/job/add?token=${userToken}`, { body: { message: 'web1 ls' } })).status).toBe(401);
    await call(base, 'GET', '/agent/job', { token: agentToken });
    await call(base, 'GET', '/agent/job', { token: agentToken });
  });

  it("shows a job, waits for its end with ?wait, and hides other users' jobs", async () => {
    const id = await takenJob('sleep 1');
    const shown = await call(base, 'GET', `/jobs/${id}`, { token: userToken });
    expect(shown).toMatchObject({ status: 200, body: { id, status: 'sent', agent: 'web1', message: 'sleep 1' } });
    const waiting = call(base, 'GET', `/jobs/${id}?wait=20`, { token: userToken });
    // Report only once the request has read the job unfinished and waits: the answer must come from the wake-up.
    await eventually(() => core.waiters.isWaiting(id), 10_000, 'the ?wait request to wait');
    await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: 'slept' } });
    expect((await waiting).body).toMatchObject({ status: 'succeeded', result: 'slept' });
    expect((await waiting).body.succeeded_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
    const strangerUser = await core.users.rotateToken('stranger');
    expect(await call(base, 'GET', `/jobs/${id}`, { token: strangerUser })).toMatchObject({ status: 404, body: { error: 'JobNotFound' } });
  });

  it('cancels a queued job', async () => {
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'db1 later' } });
    expect(await call(base, 'POST', `/jobs/${pushed.body.id}/cancel`, { token: userToken })).toMatchObject({
      status: 200,
      body: { status: 'canceled' },
    });
    expect(await call(base, 'POST', `/jobs/${pushed.body.id}/cancel`, { token: userToken })).toMatchObject({
      status: 409,
      body: { error: 'NotCancelable' },
    });
    expect((await call(base, 'GET', '/agent/job', { token: otherAgentToken })).status).toBe(204);
  });

  it('sends messages (201) by POST and GET', async () => {
    expect(
      (await call(base, 'POST', '/message/info', { token: userToken, body: { message: 'deploy done', source: 'ci', color: '#00ff00' } }))
        .status,
    ).toBe(201);
    expect((await call(base, 'GET', `/message/warning?token=${userToken}&msg=disk+full`)).status).toBe(201);
    expect((await call(base, 'POST', '/message/info', { token: userToken, body: { message: 'x', color: 'green' } })).status).toBe(400);
    const events = await readStream(core, core.keys.messageStream);
    expect(events.find((e) => e.message === 'disk full')).toMatchObject({ kind: 'warning', agent: null });
  });

  it('answers unknown routes and methods with JSON errors', async () => {
    expect(await call(base, 'GET', '/nope')).toMatchObject({ status: 404, body: { error: 'NotFound' } });
    expect(await call(base, 'DELETE', '/job/add')).toMatchObject({ status: 405, body: { error: 'MethodNotAllowed' } });
  });
});
