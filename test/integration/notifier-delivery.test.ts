/** The notifier's delivery rules on real Redis streams: pacing, permanent refusals, callback answers, and no double reply. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SlackAdapter } from '../../adapters/slack';
import { encodeRef } from '../../adapters/slack/reply-ref';
import type { Core } from '../../cloud/core';
import { encodeOrigin } from '../../cloud/chat/origin';
import { dropNamespace, eventually, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { slackAdapterFor, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';

const PACE_MS = 300;
const name = uniqueName();
let core: Core;
let slack: FakeSlack;
let adapter: SlackAdapter;
let seq = 0;

beforeAll(async () => {
  const config = testConfig(name, {
    notifyMaxAttempts: 4,
    notifyRetryBaseMs: 50,
    notifyReclaimIdleMs: 3000,
    notifyPaceMs: PACE_MS,
    callbackAllow: ['127.0.0.1/32'],
  });
  core = await openCore(config, true);
  slack = await startFakeSlack();
  adapter = slackAdapterFor(slack);
});
afterAll(async () => {
  await core.close();
  await slack.close();
  await dropNamespace(name);
});

/** A fresh user (notified in a channel) with an agent that has polled. */
async function fresh(channel: string) {
  seq++;
  const made = await userWithAgent(core, `d${seq}`, `d${seq}`);
  await core.identityRepo.setNotifyTarget(made.user.id, 'slack', encodeRef({ c: channel }));
  await core.agents.recordPoll(made.agent, null);
  return made;
}

const calls = (method: string, channel: string) => slack.calls.filter((c) => c.method === method && c.args.channel === channel);
const deadLetters = async (stream: string) => (await core.redis.xrange(`${stream}:dead`, '-', '+')).map(([, fields]) => fields);
const field = (fields: string[], key: string) => fields[fields.indexOf(key) + 1];

/** A callback receiver that answers each request with the next scripted status (then 200). */
async function scriptedReceiver(...answers: { status: number; headers?: Record<string, string> }[]) {
  const hits: number[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push(Date.now());
      const next = answers.shift() ?? { status: 200 };
      res.writeHead(next.status, next.headers).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits, close: () => server.close() };
}

describe('notifier delivery', () => {
  let notifier: Awaited<ReturnType<Core['startNotifier']>>;
  beforeAll(async () => {
    notifier = await core.startNotifier([adapter]);
  });
  afterAll(async () => {
    slack.always(() => false, null);
    await notifier.stop();
  });

  it('paces messages to one conversation, and only that one', async () => {
    // When the notifier hands each post to the adapter: the pace is between those moments (when the fake Web API
    // receives them depends on a loaded machine's delays as well).
    const handedAt = new Map<string, number>();
    const send = adapter.send;
    adapter.send = (replyTo, message) => (handedAt.set(message.text, Date.now()), send(replyTo, message));
    try {
      const a = await fresh('CPACE');
      const b = await fresh('CFREE');
      for (let i = 0; i < 3; i++) await core.events.message({ kind: 'text', user_id: a.user.id, message: `paced ${i}` });
      await core.events.message({ kind: 'text', user_id: b.user.id, message: 'not held back' });
      const mine = () => calls('chat.postMessage', 'CPACE').filter((c) => String(c.args.text).startsWith('paced'));
      const paced = await eventually(() => mine().length >= 3 && mine(), 15_000, 'three paced posts');
      expect(paced.map((c) => c.args.text)).toEqual(['paced 0', 'paced 1', 'paced 2']);
      for (let i = 1; i < 3; i++) expect(handedAt.get(`paced ${i}`)! - handedAt.get(`paced ${i - 1}`)!).toBeGreaterThanOrEqual(PACE_MS - 5);
      const other = calls('chat.postMessage', 'CFREE')[0];
      expect(other.at).toBeLessThan(paced[2].at); // another conversation does not wait for this one's pace
    } finally {
      adapter.send = send;
    }
  });

  it('dead-letters at once, without retrying, what the platform refuses for good', async () => {
    const { user } = await fresh('CGONE');
    slack.always((method, args) => method === 'chat.postMessage' && args.channel === 'CGONE', {
      body: { ok: false, error: 'channel_not_found' },
    });
    await core.events.message({ kind: 'warning', user_id: user.id, message: 'to a deleted channel' });
    const dead = await eventually(
      async () => (await deadLetters(core.keys.messageStream)).find((f) => field(f, 'data').includes('to a deleted channel')),
      15_000,
      'the dead letter',
    );
    expect(field(dead, 'attempts')).toBe('1');
    expect(field(dead, 'error')).toContain('channel_not_found');
    expect(calls('chat.postMessage', 'CGONE').filter((c) => String(c.args.text).includes('to a deleted channel'))).toHaveLength(1);
  });

  it("retries a callback's 429 after its Retry-After, and takes a 4xx as final", async () => {
    const limited = await scriptedReceiver({ status: 429, headers: { 'retry-after': '1' } });
    const refusing = await scriptedReceiver({ status: 404 }, { status: 404 }, { status: 404 });
    try {
      const { agent } = await fresh('CCB');
      const retried = await core.jobs.push(agent, 'retried', { source: 'api', callback: limited.url });
      const refused = await core.jobs.push(agent, 'refused', { source: 'api', callback: refusing.url });
      await eventually(() => limited.hits.length >= 2, 15_000, 'the retry after 429');
      expect(limited.hits[1] - limited.hits[0]).toBeGreaterThanOrEqual(950); // Retry-After: 1 was honoured
      const dead = await eventually(
        async () => (await deadLetters(core.keys.jobStatusStream)).find((f) => field(f, 'data').includes(refused.id)),
        15_000,
        'the refused callback to be dead-lettered',
      );
      expect(field(dead, 'attempts')).toBe('1');
      expect(refusing.hits).toHaveLength(1);
      expect((await deadLetters(core.keys.jobStatusStream)).some((f) => field(f, 'data').includes(retried.id))).toBe(false);
    } finally {
      limited.close();
      refusing.close();
    }
  });

  it('posts the answer once when editing the acknowledgement fails and the delivery is retried', async () => {
    const { agent } = await fresh('CNOTIFY');
    const ackRef = encodeRef({ c: 'CREPLY', t: '1700000000.000001' });
    slack.script(
      'chat.update',
      { status: 500, body: { ok: false, error: 'internal_error' } },
      { status: 500, body: { ok: false, error: 'internal_error' } },
    );
    const { id } = await core.jobs.push(agent, 'answer once', { source: 'slack', origin: encodeOrigin('slack', ackRef) });
    await core.jobs.take(agent, 1);
    await core.jobs.report(agent, id, 'succeeded', 'the answer');
    const edits = () => calls('chat.update', 'CREPLY');
    await eventually(
      () => edits().some((c) => c.status === 200 && String(c.args.text).includes('succeeded')),
      15_000,
      'the acknowledgement to show the end',
    );
    const answers = calls('chat.postMessage', 'CREPLY').filter((c) => String(c.args.text).includes('the answer'));
    expect(answers).toHaveLength(1);
    expect(answers[0].args.thread_ts).toBe('1700000000.000001');
    expect(edits().filter((c) => c.status !== 200).length).toBeGreaterThanOrEqual(1); // the retry really happened
  });
});
