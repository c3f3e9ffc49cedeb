/** One agent cannot fill Redis: events carry a bounded result tail, running events are throttled, dead letters are capped. */
import { encodeRef } from '../../adapters/slack/reply-ref';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { EVENT_RESULT_BYTES } from '../../cloud/lifecycle/events';
import { DEAD_LETTER_MAXLEN } from '../../cloud/notifier/notifier';
import { dropNamespace, eventually, openServer, readStream, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { slackAdapterFor, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { call } from '../helpers/http';

const name = uniqueName();
let core: Core;
let http: HttpServer;
let base: string;
let slack: FakeSlack;
let userToken: string;
let agentToken: string;

beforeAll(async () => {
  ({ core, http, base } = await openServer(testConfig(name, { notifyMaxAttempts: 2, notifyRetryBaseMs: 20 })));
  ({ userToken, agentToken } = await userWithAgent(core, 'ops', 'web1'));
  expect((await call(base, 'GET', '/agent/job', { token: agentToken })).status).toBe(204); // online
  slack = await startFakeSlack();
});
afterAll(async () => {
  await http.close();
  await core.close();
  await slack.close();
  await dropNamespace(name);
});

/** Pushes a job and takes it as the agent; returns its id. */
async function takenJob(text: string): Promise<string> {
  const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: `web1 ${text}` } });
  const taken = await call(base, 'GET', '/agent/job?wait=5', { token: agentToken });
  expect(taken.body.id).toBe(pushed.body.id);
  return pushed.body.id;
}

const eventsOf = async (id: string) => (await readStream(core, core.keys.jobStatusStream)).filter((e) => e.job_id === id);

describe('bounded events', () => {
  it('carries only the end of a large result in events; the whole result stays in MySQL', async () => {
    const id = await takenJob('big output');
    const big = 'x'.repeat(60_000) + 'THE END';
    expect((await call(base, 'PUT', `/agent/jobs/${id}/running`, { token: agentToken, body: { result: big } })).status).toBe(204);
    expect((await call(base, 'PUT', `/agent/jobs/${id}/succeed`, { token: agentToken, body: { result: big } })).status).toBe(204);
    const [running, succeeded] = (await eventsOf(id)).filter((e) => e.status !== 'sent' && e.status !== 'queuing');
    expect(running.result.length).toBeLessThan(EVENT_RESULT_BYTES.running + 100);
    expect(succeeded.result.length).toBeLessThan(EVENT_RESULT_BYTES.final + 100);
    for (const event of [running, succeeded])
      expect(event.result).toMatch(/^…\[\d+ bytes before this; the whole result: GET \/jobs\/:id\]\n/);
    expect(succeeded.result.endsWith('THE END')).toBe(true);
    expect((await call(base, 'GET', `/jobs/${id}`, { token: userToken })).body.result).toBe(big);
  });

  it('renews the lease on every running report but appends at most about one running event a second', async () => {
    const id = await takenJob('chatty');
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      expect((await call(base, 'PUT', `/agent/jobs/${id}/running`, { token: agentToken, body: { result: `step ${i}` } })).status).toBe(204);
    }
    const seconds = (Date.now() - started) / 1000;
    const running = (await eventsOf(id)).filter((e) => e.status === 'running');
    expect(running.length).toBeGreaterThanOrEqual(1);
    expect(running.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    expect((await core.jobs.get(id, null)).result).toBe('step 49');
  });

  it('caps the dead-letter stream, keeping the newest failures', async () => {
    const dead = `${core.keys.messageStream}:dead`;
    const fill = core.redis.pipeline();
    for (let i = 0; i < DEAD_LETTER_MAXLEN + 2000; i++) fill.xadd(dead, '*', 'type', 'message', 'data', '{}', 'error', 'old');
    await fill.exec();
    const adapter = slackAdapterFor(slack);
    const { user } = await userWithAgent(core, 'dead', 'deadagent');
    await core.identityRepo.setNotifyTarget(user.id, 'slack', encodeRef({ c: 'CDEAD' }));
    slack.always((method, args) => method === 'chat.postMessage' && args.channel === 'CDEAD', {
      body: { ok: false, error: 'channel_not_found' },
    });
    const notifier = await core.startNotifier([adapter]);
    try {
      await core.events.message({ kind: 'info', user_id: user.id, message: 'the newest failure' });
      await eventually(
        async () => {
          const [[, fields]] = await core.redis.xrevrange(dead, '+', '-', 'COUNT', 1);
          return fields.some((f) => f.includes('the newest failure'));
        },
        10_000,
        'the dead letter',
      );
      // MAXLEN ~ trims whole stream nodes (100 entries by default), so the length is the cap or a little above.
      expect(await core.redis.xlen(dead)).toBeLessThanOrEqual(DEAD_LETTER_MAXLEN + 200);
    } finally {
      slack.always(() => false, null);
      await notifier.stop();
    }
  });
});
