/** The notifier on real Redis streams, delivering through the real Slack adapter to a fake Slack Web API, and to callback URLs. */
import http from 'node:http';
import type { SlackAdapter } from '../../adapters/slack';
import { encodeRef } from '../../adapters/slack/reply-ref';
import type { Core } from '../../cloud/core';
import { legacyKeyOf, LEGACY_SIGNATURE_HEADER, signedWith } from '../helpers/callback-recipe';
import { dropNamespace, eventually, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { slackAdapterFor, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';

const name = uniqueName();
let core: Core;
let slack: FakeSlack;
let adapter: SlackAdapter;
let seq = 0;

beforeAll(async () => {
  const callbackAllow = ['127.0.0.1/32']; // the callback receiver below listens on loopback
  core = await openCore(
    testConfig(name, { notifyMaxAttempts: 3, notifyRetryBaseMs: 50, notifyReclaimIdleMs: 3000, notifyPaceMs: 10, callbackAllow }),
    true,
  );
  slack = await startFakeSlack();
  adapter = slackAdapterFor(slack);
});
afterAll(async () => {
  await core.close();
  await slack.close();
  await dropNamespace(name);
});

/** A user whose notifications go to a Slack channel. */
async function userNotifiedIn(channel: string) {
  seq++;
  const made = await userWithAgent(core, `n${seq}`, `a${seq}`);
  await core.identityRepo.setNotifyTarget(made.user.id, 'slack', encodeRef({ c: channel }));
  return made;
}

const posted = (channel: string) => slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === channel);

/** Waits until a notifier group has acknowledged everything it read: no delivery of those events can happen after this. */
async function allAcknowledged(group: string, stream = core.keys.messageStream): Promise<void> {
  await eventually(async () => ((await core.redis.xpending(stream, group)) as [number])[0] === 0, 15_000, 'every event to be acknowledged');
}

describe('notifier', () => {
  it('waits for Retry-After on 429 and then delivers the message once', async () => {
    const notifier = await core.startNotifier([adapter]);
    try {
      const { user } = await userNotifiedIn('CRATE');
      slack.script('chat.postMessage', { status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } });
      await core.events.message({ kind: 'info', user_id: user.id, message: 'deploy finished' });
      const calls = await eventually(() => posted('CRATE').length >= 2 && posted('CRATE'), 10_000, 'the retry');
      await allAcknowledged(notifier.group);
      expect(posted('CRATE').map((c) => c.status)).toEqual([429, 200]);
      expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(950); // Retry-After: 1 was honoured
      expect(calls[1].args.text).toBe('ℹ️ deploy finished');
    } finally {
      await notifier.stop();
    }
  });

  it('dead-letters an event that keeps failing, without blocking the others', async () => {
    const notifier = await core.startNotifier([adapter]);
    try {
      const bad = await userNotifiedIn('CBAD');
      const good = await userNotifiedIn('CGOOD');
      slack.always((method, args) => method === 'chat.postMessage' && args.channel === 'CBAD', {
        body: { ok: false, error: 'internal_error' },
      });
      await core.events.message({ kind: 'warning', user_id: bad.user.id, message: 'never arrives' });
      await core.events.message({ kind: 'info', user_id: good.user.id, message: 'arrives' });
      await eventually(() => posted('CGOOD').some((c) => c.status === 200), 5000, 'the good message');
      const dead = await eventually(
        async () => {
          const entries = await core.redis.xrange(`${core.keys.messageStream}:dead`, '-', '+');
          return entries.length > 0 && entries;
        },
        10_000,
        'the dead letter',
      );
      const fields = dead[0][1];
      expect(JSON.parse(fields[fields.indexOf('data') + 1]).message).toBe('never arrives');
      expect(fields[fields.indexOf('error') + 1]).toContain('internal_error');
      expect(fields[fields.indexOf('attempts') + 1]).toBe('3');
      expect(posted('CBAD')).toHaveLength(3);
      const pending = (await core.redis.xpending(core.keys.messageStream, notifier.group)) as [number, ...unknown[]];
      expect(pending[0]).toBe(0);
    } finally {
      slack.always(() => false, null);
      await notifier.stop();
    }
  });

  it('delivers what a crashed notifier left pending, through another one', async () => {
    const crashing = await core.startNotifier([adapter]);
    const { user } = await userNotifiedIn('CSLOW');
    slack.always((method, args) => method === 'chat.postMessage' && args.channel === 'CSLOW', {
      delayMs: 1500,
      status: 500,
      body: { ok: false },
    });
    await core.events.message({ kind: 'text', user_id: user.id, message: 'survives a crash' });
    // Its first attempt failed, so it holds the entry (pending) for a retry; anything it still has out fails too.
    await eventually(() => posted('CSLOW').some((c) => c.status === 500), 5000, 'the first attempt to fail');
    crashing.abandon(); // as if the process died mid-delivery: nothing acknowledged
    slack.always(() => false, null);
    const rescuer = await core.startNotifier([adapter]);
    try {
      await eventually(() => posted('CSLOW').some((c) => c.status === 200), 15_000, 'the rescue');
      await allAcknowledged(rescuer.group);
      expect(posted('CSLOW').filter((c) => c.status === 200)).toHaveLength(1);
      expect(posted('CSLOW').find((c) => c.status === 200)!.args.text).toBe('survives a crash');
    } finally {
      await rescuer.stop();
    }
  });

  it('shares the work between several notifiers, delivering each event once', async () => {
    const notifiers = await Promise.all([core.startNotifier([adapter]), core.startNotifier([adapter])]);
    try {
      const users = await Promise.all(Array.from({ length: 4 }, (_, i) => userNotifiedIn(`CMANY${i}`)));
      for (let i = 0; i < 20; i++) await core.events.message({ kind: 'text', user_id: users[i % 4].user.id, message: `m${i}` });
      const all = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && /^CMANY/.test(c.args.channel) && c.status === 200);
      await eventually(() => all().length >= 20, 10_000, 'twenty deliveries');
      await allAcknowledged(notifiers[0].group);
      expect(
        all()
          .map((c) => c.args.text)
          .sort(),
      ).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`).sort());
    } finally {
      await Promise.all(notifiers.map((n) => n.stop()));
    }
  });

  it('POSTs every status of a job with a callback URL as signed JSON', async () => {
    const received: { body: string; headers: http.IncomingHttpHeaders }[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const notifier = await core.startNotifier([adapter]);
    try {
      seq++;
      const { user, agent, userToken } = await userWithAgent(core, `cb${seq}`, `cb${seq}`);
      const secret = await core.users.callbackSecret(user.name);
      await core.agents.recordPoll(agent, null);
      const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
      const { id } = await core.jobs.push(agent, 'deploy v2', { source: 'api', callback: url });
      await core.jobs.take(agent, 1);
      await core.jobs.report(agent, id, 'succeeded', 'deployed');
      await eventually(() => received.length >= 3, 10_000, 'three callbacks');
      const statuses = received.map((r) => JSON.parse(r.body).status).sort();
      expect(statuses).toEqual(['queuing', 'sent', 'succeeded']);
      for (const r of received) {
        expect(signedWith(r, secret)).toBe(true);
        expect(signedWith(r, legacyKeyOf(userToken), LEGACY_SIGNATURE_HEADER)).toBe(true);
        expect(JSON.parse(r.body)).toMatchObject({ id, agent: agent.name, message: 'deploy v2' });
      }
      expect(JSON.parse(received.find((r) => r.body.includes('succeeded'))!.body).result).toBe('deployed');
    } finally {
      await notifier.stop();
      receiver.close();
    }
  });

  it('sends nothing for callback "disable", and the final result of an API job to the notify target', async () => {
    const notifier = await core.startNotifier([adapter]);
    try {
      const { agent } = await userNotifiedIn('CAPI');
      await core.agents.recordPoll(agent, null);
      const quiet = await core.jobs.push(agent, 'quiet', { source: 'api', callback: 'disable' });
      const loud = await core.jobs.push(agent, 'loud', { source: 'api' });
      await core.jobs.take(agent, 2);
      await core.jobs.report(agent, quiet.id, 'succeeded', 'shh');
      await core.jobs.report(agent, loud.id, 'failed', 'exit 3');
      const post = await eventually(() => posted('CAPI').find((c) => c.args.text.includes('loud')), 10_000, 'the API job result');
      expect(post.args.text).toContain(`❌ ${agent.name}: \`loud\` — failed`);
      expect(post.args.text).toContain('exit 3');
      await allAcknowledged(notifier.group, core.keys.jobStatusStream);
      expect(posted('CAPI').some((c) => c.args.text.includes('quiet'))).toBe(false);
    } finally {
      await notifier.stop();
    }
  });
});
