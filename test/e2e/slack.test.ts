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

/**
 * A test's own agent, which nothing polls for: the jobs a test counts are those of its agent alone, so that a job
 * another test left behind (one that failed half-way) never shifts its count.
 */
async function ownAgent(name: string): Promise<string> {
  await gw.addAgent(name);
  return name;
}

/**
 * Sends a command for a test's agent that must create a job, and waits for its acknowledgement and its job (queued as
 * the last step of handling the command). The Slack adapter hands messages on concurrently, not in order, so this
 * does not prove an earlier handed-on message done: the tests use it after requests refused before being handed on (a
 * 401), or whose own last answer was seen; it shows that the channel still takes commands, and its job is the one to
 * expect.
 */
async function sentinel(channel: string, agentName: string): Promise<void> {
  const mark = `sentinel-${Math.random().toString(36).slice(2, 8)}`;
  const res = await postToSlackEndpoint(
    gw.base,
    SECRET,
    slashCommandBody({ team: TEAM, user: 'UALICE', channel, text: `${agentName} ${mark}` }),
    'application/x-www-form-urlencoded',
  );
  expect(res.status).toBe(200);
  await eventually(
    () => postsIn(channel).some((p) => String(p.args.text).includes(`${agentName}: \`${mark}\``)),
    15_000,
    `the acknowledgement of ${mark}`,
  );
  const agent = (await gw.core.agents.list(null)).find((a) => a.name === agentName)!;
  await eventually(
    async () => (await gw.core.jobs.list(null, agent.id, 100)).some((j) => j.message === mark),
    10_000,
    `the job of ${mark}`,
  );
}

/** The Slack posts to a channel, in order. */
const postsIn = (channel: string) => slack.posts().filter((c) => c.args.channel === channel);

describe('Slack', () => {
  it('runs a signed slash command: acknowledgement in the channel, result in its thread', async () => {
    const res = await postToSlackEndpoint(
      gw.base,
      SECRET,
      slashCommandBody({ team: TEAM, user: 'UALICE', channel: 'C1', text: 'web1 slow uptime' }),
      'application/x-www-form-urlencoded',
    );
    expect(res.status).toBe(200);
    const [ack, result] = await eventually(() => postsIn('C1').length >= 2 && postsIn('C1'), 15_000, 'ack and result');
    expect(ack.args.thread_ts).toBeUndefined();
    expect(ack.args.text).toContain('⏳ web1: `slow uptime`');
    expect(result.args.thread_ts).toBe(ack.answer.ts); // in the thread of the acknowledgement
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
    const res = await postToSlackEndpoint(
      gw.base,
      SECRET,
      eventBody(TEAM, {
        type: 'app_mention',
        user: 'UALICE',
        text: '<@UBOT> web1 df -h',
        ts: '1700000000.000200',
        channel: 'C2',
        event_ts: '1700000000.000200',
      }),
      'application/json',
    );
    expect(res.status).toBe(200);
    const posts = await eventually(() => postsIn('C2').length >= 2 && postsIn('C2'), 15_000, 'mention replies');
    for (const post of posts) expect(post.args.thread_ts).toBe('1700000000.000200');
    expect(posts[1].args.text).toContain('output of df -h');
  });

  it('answers a direct message in the DM', async () => {
    await postToSlackEndpoint(
      gw.base,
      SECRET,
      eventBody(TEAM, { type: 'message', channel_type: 'im', user: 'UALICE', text: 'status', ts: '1700000001.000100', channel: 'D9' }),
      'application/json',
    );
    const [reply] = await eventually(() => postsIn('D9').length >= 1 && postsIn('D9'), 10_000, 'DM reply');
    expect(reply.args.thread_ts).toBeUndefined();
    expect(reply.args.text).toContain('🟢 web1 — online');
  });

  it('refuses a bad or stale signature with 401 and creates no job', async () => {
    const name = await ownAgent('sig1');
    const body = slashCommandBody({ team: TEAM, user: 'UALICE', channel: 'C3', text: `${name} uptime` });
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/x-www-form-urlencoded', { badSignature: true })).status).toBe(
      401,
    );
    const stale = Math.floor(Date.now() / 1000) - 600;
    expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/x-www-form-urlencoded', { timestamp: stale })).status).toBe(401);
    const unsigned = await fetch(`${gw.base}/slack/events`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(unsigned.status).toBe(401);
    await sentinel('C3', name);
    expect(await gw.jobCount(name)).toBe(1); // the sentinel's job only
    expect(postsIn('C3').filter((p) => !String(p.args.text).includes('sentinel'))).toHaveLength(0);
  });

  it('refuses an unlinked user (closed access) and queues nothing', async () => {
    const name = await ownAgent('unl1');
    await postToSlackEndpoint(
      gw.base,
      SECRET,
      slashCommandBody({ team: TEAM, user: 'UBOB', channel: 'C4', text: `${name} uptime` }),
      'application/x-www-form-urlencoded',
    );
    // The refusal is the last thing the gateway does with the message: once it is posted, the message is handled.
    const [refusal] = await eventually(() => postsIn('C4').length >= 1 && postsIn('C4'), 10_000, 'refusal');
    expect(refusal.args.text).toContain(`skadi identity link slack:${TEAM}:UBOB --user`);
    expect(await gw.jobCount(name)).toBe(0);
    await sentinel('C4', name);
    expect(await gw.jobCount(name)).toBe(1); // the sentinel's job only
  });

  it("ignores Slack's retry of an event it already handled", async () => {
    const ran: string[] = [];
    const own = await gw.startAgent(async (job) => (ran.push(job.message), `output of ${job.message}`), 'rty1');
    const name = own.name;
    try {
      const body = eventBody(
        TEAM,
        { type: 'app_mention', user: 'UALICE', text: `<@UBOT> ${name} whoami`, ts: '1700000002.000100', channel: 'C5' },
        'EvRETRY0001',
      );
      expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/json')).status).toBe(200);
      expect(
        (
          await postToSlackEndpoint(gw.base, SECRET, body, 'application/json', {
            headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
          })
        ).status,
      ).toBe(200);
      await eventually(() => postsIn('C5').length >= 2, 10_000, 'the one job to finish');
      // Slack messages are handled concurrently, so no later message proves the retry handled: its own log line does
      // (whichever of the two copies came second is the one ignored).
      await eventually(
        () =>
          gw
            .output()
            .split('\n')
            .some((line) => line.includes('duplicate delivery ignored') && line.includes('EvRETRY0001')),
        10_000,
        'the retry to be ignored',
      );
      expect(await gw.jobCount(name)).toBe(1);
      expect(ran).toEqual(['whoami']);
      expect(postsIn('C5')).toHaveLength(2); // acknowledgement and result of the one job
    } finally {
      await own.stop();
    }
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
    let offline: Gateway | undefined;
    try {
      offline = await startGateway({
        SKADI_SLACK_SIGNING_SECRET: SECRET,
        SKADI_SLACK_BOT_TOKEN: 'xoxb-test-token',
        SKADI_SLACK_API_URL: apiUrl,
        SKADI_SLACK_BOT_USER_ID: 'UBOT',
      });
      expect((await fetch(`${offline.base}/healthz`)).status).toBe(200);
      const before = calls;
      expect(
        (
          await postToSlackEndpoint(
            offline.base,
            SECRET,
            eventBody(TEAM, { type: 'app_mention', user: 'U1', text: 'hi', ts: '1.1', channel: 'C9' }),
            'application/json',
          )
        ).status,
      ).toBe(200);
      // The refusal is posted, fails, and is tried again: only then is the process checked.
      await eventually(() => calls >= before + 2, 15_000, 'the refusal to be posted and retried');
      expect(offline.child.exitCode).toBeNull();
      expect((await fetch(`${offline.base}/healthz`)).status).toBe(200);
    } finally {
      await offline?.stop();
      down.close();
    }
  });

  it('answers url_verification', async () => {
    const res = await postToSlackEndpoint(
      gw.base,
      SECRET,
      JSON.stringify({ type: 'url_verification', challenge: 'abc123', token: 'x' }),
      'application/json',
    );
    expect(JSON.parse(res.text)).toEqual({ challenge: 'abc123' });
  });
});
