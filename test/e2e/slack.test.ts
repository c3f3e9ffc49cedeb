/** Slack end to end: signed requests to a real `skadi serve`, a real SDK agent, and a local fake of Slack's Web API. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '../helpers/env';
import { eventBody, postToSlackEndpoint, slashCommandBody, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';

const SECRET = 'test-signing-secret';
const TEAM = 'T0TEST';
let slack: FakeSlack;
let gw: Gateway;
let agent: RunningAgent;

beforeAll(async () => {
  slack = await startFakeSlack(TEAM);
  gw = await startGateway({
    SKADI_SLACK_SIGNING_SECRET: SECRET,
    SKADI_SLACK_BOT_TOKEN: 'xoxb-test-token',
    SKADI_SLACK_API_URL: slack.url,
    SKADI_NOTIFY_PACE: '20ms',
  });
  await gw.core.identities.link(`slack:${TEAM}:UALICE`, 'ops', 'alice');
  agent = await gw.startAgent(async (job) => {
    if (job.message.startsWith('slow')) await new Promise((r) => setTimeout(r, 300));
    return `output of ${job.message}`;
  });
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await slack?.close();
});

async function jobCount(): Promise<number> {
  return (await gw.core.jobs.list(null, null, 1000)).length;
}

/** Sends a command that must create a job and be answered, and waits for its answer: whatever was sent before it has been handled. */
async function sentinel(channel: string): Promise<void> {
  const mark = `sentinel-${Math.random().toString(36).slice(2, 8)}`;
  const res = await postToSlackEndpoint(gw.base, SECRET, slashCommandBody({ team: TEAM, user: 'UALICE', channel, text: `web1 ${mark}` }), 'application/x-www-form-urlencoded');
  expect(res.status).toBe(200);
  await eventually(() => postsIn(channel).some((p) => String(p.args.text).includes(`${mark}\` — succeeded`)), 15_000, `the answer to ${mark}`);
}

/** The Slack posts to a channel, in order. */
const postsIn = (channel: string) => slack.posts().filter((c) => c.args.channel === channel);

describe('Slack', () => {
  it('runs a signed slash command: acknowledgement in the channel, result in its thread', async () => {
    const res = await postToSlackEndpoint(gw.base, SECRET, slashCommandBody({ team: TEAM, user: 'UALICE', channel: 'C1', text: 'web1 slow uptime' }), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    const [ack, result] = await eventually(() => postsIn('C1').length >= 2 && postsIn('C1'), 15_000, 'ack and result');
    expect(ack.args.thread_ts).toBeUndefined();
    expect(ack.args.text).toContain('⏳ web1: `slow uptime`');
    expect(result.args.thread_ts).toBeDefined();
    expect(result.args.text).toContain('✅ web1: `slow uptime` — succeeded');
    expect(result.args.text).toContain('```\noutput of slow uptime\n```');
    const edits = () => slack.calls.filter((c) => c.method === 'chat.update' && c.args.channel === 'C1');
    await eventually(() => edits().some((u) => u.args.text.includes('succeeded')), 10_000, 'the acknowledgement to show the end');
    const updates = edits();
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(new Set(updates.map((u) => u.args.ts)).size).toBe(1); // always the acknowledgement
    expect(updates[updates.length - 1].args.text).toContain('succeeded');
    expect(result.args.thread_ts).toBe(updates[0].args.ts);
  });

  it('answers an app_mention in the thread of that message', async () => {
    const res = await postToSlackEndpoint(gw.base, SECRET, eventBody(TEAM, { type: 'app_mention', user: 'UALICE', text: '<@UBOT> web1 df -h', ts: '1700000000.000200', channel: 'C2', event_ts: '1700000000.000200' }), 'application/json');
    expect(res.status).toBe(200);
    const posts = await eventually(() => postsIn('C2').length >= 2 && postsIn('C2'), 15_000, 'mention replies');
    for (const post of posts) expect(post.args.thread_ts).toBe('1700000000.000200');
    expect(posts[1].args.text).toContain('output of df -h');
  });

  it('answers a direct message in the DM', async () => {
    await postToSlackEndpoint(gw.base, SECRET, eventBody(TEAM, { type: 'message', channel_type: 'im', user: 'UALICE', text: 'status', ts: '1700000001.000100', channel: 'D9' }), 'application/json');
    const [reply] = await eventually(() => postsIn('D9').length >= 1 && postsIn('D9'), 10_000, 'DM reply');
    expect(reply.args.thread_ts).toBeUndefined();
    expect(reply.args.text).toContain('🟢 web1 — online');
  });

  it('refuses a bad or stale signature with 401 and creates no job', async () => {
    const before = await jobCount();
    const body = slashCommandBody({ team: TEAM, user: 'UALICE', channel: 'C3', text: 'web1 uptime' });
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/x-www-form-urlencoded', { badSignature: true })).status).toBe(401);
    const stale = Math.floor(Date.now() / 1000) - 600;
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/x-www-form-urlencoded', { timestamp: stale })).status).toBe(401);
    const unsigned = await fetch(`${gw.base}/slack/events`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(unsigned.status).toBe(401);
    await sentinel('C3');
    expect(await jobCount()).toBe(before + 1); // the sentinel's job only
    expect(postsIn('C3').filter((p) => !String(p.args.text).includes('sentinel'))).toHaveLength(0);
  });

  it('refuses an unlinked user (closed access) and queues nothing', async () => {
    const before = await jobCount();
    await postToSlackEndpoint(gw.base, SECRET, slashCommandBody({ team: TEAM, user: 'UBOB', channel: 'C4', text: 'web1 uptime' }), 'application/x-www-form-urlencoded');
    const [refusal] = await eventually(() => postsIn('C4').length >= 1 && postsIn('C4'), 10_000, 'refusal');
    expect(refusal.args.text).toContain(`skadi identity link slack:${TEAM}:UBOB --user`);
    await sentinel('C4');
    expect(await jobCount()).toBe(before + 1); // the sentinel's job only
  });

  it("ignores Slack's retry of an event it already handled", async () => {
    const before = await jobCount();
    const body = eventBody(TEAM, { type: 'app_mention', user: 'UALICE', text: '<@UBOT> web1 whoami', ts: '1700000002.000100', channel: 'C5' }, 'EvRETRY0001');
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/json')).status).toBe(200);
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/json', { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } })).status).toBe(200);
    await eventually(() => postsIn('C5').length >= 2, 10_000, 'the one job to finish');
    await sentinel('C5');
    expect(await jobCount()).toBe(before + 2); // the event's job and the sentinel's
    expect(postsIn('C5').filter((p) => !String(p.args.text).includes('sentinel'))).toHaveLength(2);
  });

  it('starts and serves even when the Slack API is down', async () => {
    // A Slack API that answers every call with 503: the gateway must start, answer, and survive the failed posts.
    let calls = 0;
    const down = http.createServer((_req, res) => {
      calls++;
      res.writeHead(503).end();
    });
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const apiUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/api/`;
    const offline = await startGateway({ SKADI_SLACK_SIGNING_SECRET: SECRET, SKADI_SLACK_BOT_TOKEN: 'xoxb-test-token', SKADI_SLACK_API_URL: apiUrl, SKADI_SLACK_BOT_USER_ID: 'UBOT' });
    try {
      expect((await fetch(`${offline.base}/healthz`)).status).toBe(200);
      const before = calls;
      expect((await postToSlackEndpoint(offline.base, SECRET, eventBody(TEAM, { type: 'app_mention', user: 'U1', text: 'hi', ts: '1.1', channel: 'C9' }), 'application/json')).status).toBe(200);
      // The refusal is posted, fails, and is tried again: only then is the process checked.
      await eventually(() => calls >= before + 2, 15_000, 'the refusal to be posted and retried');
      expect(offline.child.exitCode).toBeNull();
      expect((await fetch(`${offline.base}/healthz`)).status).toBe(200);
    } finally {
      await offline.stop();
      down.close();
    }
  });

  it('answers url_verification', async () => {
    const res = await postToSlackEndpoint(gw.base, SECRET, JSON.stringify({ type: 'url_verification', challenge: 'abc123', token: 'x' }), 'application/json');
    expect(JSON.parse(res.text)).toEqual({ challenge: 'abc123' });
  });
});
