/**
 * Teams end to end: a real `skadi serve` with botbuilder, a real SDK agent, and a local fake of the Microsoft side
 * (OpenID metadata and keys, the token endpoint, the Bot Connector). Tokens are signed here with node:crypto.
 */
import { createHash } from 'node:crypto';
import { eventually } from '../helpers/env';
import { messageActivity, otherKey, postActivity, startFakeTeams, TENANT, type ConnectorCall, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';

let teams: FakeTeams;
let gw: Gateway;
let agent: RunningAgent;

beforeAll(async () => {
  teams = await startFakeTeams();
  gw = await startGateway({ ...teams.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_NOTIFY_RETRY_BASE: '100ms' });
  await gw.core.identities.link(`teams:${TENANT}:aad-alice`, 'ops', 'alice');
  agent = await gw.startAgent(async (job) => {
    if (job.message.startsWith('slow')) await new Promise((r) => setTimeout(r, 300));
    return `output of ${job.message}`;
  });
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await teams?.close();
});

/** The connector calls into a conversation (new messages and updates) that mention a text, in order. */
const callsIn = (conversationId: string, about: string): ConnectorCall[] =>
  teams.calls.filter((c) => c.conversationId === conversationId && String(c.body.text ?? '').includes(about));
const posts = (conversationId: string, about: string) => callsIn(conversationId, about).filter((c) => c.method === 'POST');
const updates = (conversationId: string, about: string) => callsIn(conversationId, about).filter((c) => c.method === 'PUT');

/**
 * A test's own agent, which nothing polls for: a test counts the jobs of its agent alone, so that a job another test
 * left behind (one that failed half-way) never shifts its count.
 */
let agents = 0;
async function ownAgent(): Promise<string> {
  const { name } = await gw.addAgent(`own${++agents}`);
  return name;
}

/** The jobs of an agent, by message. */
const jobsOf = async (name: string) =>
  (await gw.core.jobs.list(null, (await gw.core.agents.list(null)).find((a) => a.name === name)!.id, 100)).map((j) => j.message);

/**
 * Sends a command for a test's agent in a conversation, and waits for its acknowledgement and its job (queued as the
 * last step of handling it). The Teams adapter hands activities on concurrently, not in order, so this proves no
 * earlier handed-on activity done; it is sent after activities refused before being handed on, and shows that the
 * conversation still takes commands: its job is then the one to expect.
 */
async function sentinel(conversationId: string, agentName: string): Promise<void> {
  const mark = `sentinel-${Math.random().toString(36).slice(2, 8)}`;
  const activity = messageActivity(teams, { text: `${agentName} ${mark}`, conversationId });
  expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
  await eventually(() => posts(conversationId, `${agentName}: \`${mark}\``).length >= 1, 15_000, `the acknowledgement of ${mark}`);
  await eventually(async () => (await jobsOf(agentName)).includes(mark), 10_000, `the job of ${mark}`);
}

/** The gateway's id of a Teams activity (what its log lines name). */
const messageIdOf = (activity: Record<string, any>) =>
  `activity:${createHash('sha256').update(`${activity.conversation.id}\n${activity.id}`).digest('hex').slice(0, 40)}`;

describe('Teams', () => {
  it('runs a personal message: acknowledgement, updated in place, and the output in that conversation', async () => {
    const activity = messageActivity(teams, { text: 'web1 slow uptime', from: 'aad-alice' });
    const res = await postActivity(gw.base, activity, teams.token());
    expect(res.status).toBe(200);
    const conversation = activity.conversation.id;
    const [ack, result] = await eventually(
      () => posts(conversation, 'slow uptime').length >= 2 && posts(conversation, 'slow uptime'),
      15_000,
      'ack and result',
    );
    expect(ack.body.text).toContain('⏳ web1: `slow uptime`');
    expect(ack.activityId).toBeUndefined(); // posted to the conversation, not as a reply to a made-up activity id
    expect(result.body.text).toContain('✅ web1: `slow uptime` — succeeded');
    expect(result.body.text).toContain('```\noutput of slow uptime\n```');
    const edits = await eventually(
      () =>
        updates(conversation, 'slow uptime').some((u) => String(u.body.text).includes('succeeded')) && updates(conversation, 'slow uptime'),
      10_000,
      'the acknowledgement to show the end',
    );
    // Every update is of the acknowledgement, whose id the connector gave when it was posted.
    expect(new Set(edits.map((u) => u.activityId))).toEqual(new Set([teams.postedIds.get(ack)]));
  });

  it('runs and answers the command of a linked person whose display name is longer than its column (Entra allows 256)', async () => {
    const longName = Array.from({ length: 256 }, (_, i) => (i % 3 ? 'a' : '😀')).join(''); // 256 characters, 342 UTF-16 units
    const activity = messageActivity(teams, {
      text: 'web1 long-name',
      from: 'aad-alice',
      fromName: longName,
      conversationId: 'a:personal-long-name',
    });
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    await eventually(() => posts(activity.conversation.id, '`long-name` — succeeded').length >= 1, 15_000, 'the answer');
    const alice = (await gw.core.identities.list(null)).find((i) => i.externalId === 'aad-alice')!;
    expect([...String(alice.displayName)]).toHaveLength(190);
    expect(String(alice.displayName)).toBe([...longName].slice(0, 190).join(''));
  });

  it('sends every connector call with a bearer token from the login endpoint', async () => {
    expect(teams.calls.length).toBeGreaterThan(0);
    expect(teams.issuedTokens.length).toBeGreaterThan(0);
    for (const call of teams.calls) expect(teams.issuedTokens.map((t) => `Bearer ${t}`)).toContain(call.authorization);
    expect(teams.refusedTokenRequests).toBe(0);
  });

  it('answers a channel mention in its own thread, with the mention stripped', async () => {
    const activity = messageActivity(teams, { kind: 'channel', text: 'web1 df -h', id: '1700000000123' });
    expect(activity.conversation.id).toBe('19:channel-general@thread.tacv2;messageid=1700000000123');
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    const thread = activity.conversation.id;
    const [ack, result] = await eventually(
      () => posts(thread, 'df -h').length >= 2 && posts(thread, 'df -h'),
      15_000,
      'replies in the thread',
    );
    expect(ack.body.text).toContain('web1: `df -h`');
    expect(result.body.text).toContain('output of df -h');
    expect(result.body.conversation.id).toBe(thread);
  });

  it('handles a group chat only when the bot is mentioned; other activities get 200 and no job', async () => {
    const name = await ownAgent();
    const unmentioned = messageActivity(teams, { kind: 'groupChat', text: `${name} uptime`, mention: false });
    expect((await postActivity(gw.base, unmentioned, teams.token())).status).toBe(200);
    const update = { ...messageActivity(teams, { text: '' }), type: 'conversationUpdate', membersAdded: [{ id: 'x' }] };
    expect((await postActivity(gw.base, update, teams.token())).status).toBe(200);
    const reaction = { ...messageActivity(teams, { text: '' }), type: 'messageReaction', reactionsAdded: [{ type: 'like' }] };
    expect((await postActivity(gw.base, reaction, teams.token())).status).toBe(200);
    // The activities above are judged (and these dropped) before their HTTP answer, so nothing of them is left under
    // way; the mentioned command shows that the chat takes commands.
    const mentioned = messageActivity(teams, { kind: 'groupChat', text: `${name} group-check` });
    expect((await postActivity(gw.base, mentioned, teams.token())).status).toBe(200);
    await eventually(() => posts(mentioned.conversation.id, 'group-check').length >= 1, 15_000, 'the mentioned command acknowledged');
    await eventually(async () => (await jobsOf(name)).length >= 1, 10_000, 'its job');
    expect(await jobsOf(name)).toEqual(['group-check']);
  });

  it.each([
    ['no token', () => null],
    ['a wrong signature', () => teams.token({}, { key: otherKey() })],
    ['an unknown signing key', () => teams.token({}, { kid: 'unknown-key' })],
    ['a wrong audience', () => teams.token({ aud: 'another-bot' })],
    ['a wrong issuer', () => teams.token({ iss: 'https://evil.example' })],
    ['an expired token', () => teams.token({ exp: Math.floor(Date.now() / 1000) - 3600, nbf: Math.floor(Date.now() / 1000) - 7200 })],
    ['a token not valid yet', () => teams.token({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ['a foreign serviceurl', () => teams.token({ serviceurl: 'https://evil.example/teams/' })],
    ['a token that is not a JWT', () => 'not-a-jwt'],
  ])('refuses %s with 401 and creates nothing', async (_what, token) => {
    const name = await ownAgent();
    const before429 = teams.calls.length;
    const conversationId = `a:personal-refused-${name}`;
    const activity = messageActivity(teams, { text: `${name} must-not-run`, conversationId });
    const res = await postActivity(gw.base, activity, token());
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('Unauthorized');
    // botbuilder calls the turn handler, which hands the activity on, only for an authenticated request and before it
    // answers: after a 401 nothing of this activity is under way. A sentinel then shows that the same conversation
    // still takes commands, so that the counts below are not empty for want of a working channel.
    await sentinel(conversationId, name);
    expect(await jobsOf(name)).toEqual([expect.stringMatching(/^sentinel-/)]);
    expect(teams.calls.slice(before429).filter((c) => String(c.body.text ?? '').includes('must-not-run'))).toEqual([]);
  });

  it("logs refusals through the gateway's logger, never botbuilder's key dumps", () => {
    const output = gw.output();
    expect(output).toContain('Teams request with a missing or invalid token refused');
    expect(output).not.toContain('-----BEGIN');
    expect(output).not.toContain('Available keys');
    expect(output).not.toMatch(/TokenExpiredError|JsonWebTokenError/);
  });

  it('answers a malformed body with 400, never 5xx', async () => {
    const res = await fetch(`${gw.base}/api/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${teams.token()}` },
      body: '{"type": 5, "from": "x"',
    });
    expect(res.status).toBe(400);
    const odd = await postActivity(gw.base, { type: 7, conversation: 'x' }, teams.token());
    expect(odd.status).toBeGreaterThanOrEqual(400);
    expect(odd.status).toBeLessThan(500);
  });

  it('refuses an unlinked user in closed mode, naming the command that links them', async () => {
    const name = await ownAgent();
    const activity = messageActivity(teams, { text: `${name} uptime`, from: 'aad-mallory', fromName: 'Mallory' });
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    // The refusal is the last thing the gateway does with the activity: once it is posted, the activity is handled.
    const [refusal] = await eventually(
      () => posts(activity.conversation.id, 'not linked').length >= 1 && posts(activity.conversation.id, 'not linked'),
      10_000,
      'the refusal',
    );
    expect(refusal.body.text).toContain(`skadi identity link teams:${TENANT}:aad-mallory --user <name>`);
    expect(await jobsOf(name)).toEqual([]);
  });

  it('gives one job for the same activity delivered twice', async () => {
    const own = await gw.startAgent(async (job) => `output of ${job.message}`, 'dup1');
    try {
      const activity = messageActivity(teams, { text: `${own.name} once-only`, id: 'dup-1' });
      expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
      expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
      await eventually(() => posts(activity.conversation.id, 'once-only').length >= 2, 15_000, 'the answer');
      // Teams activities are handled concurrently, so no later activity proves the copy handled: its own log line
      // does (whichever of the two came second is the one ignored).
      const id = messageIdOf(activity);
      await eventually(
        () =>
          gw
            .output()
            .split('\n')
            .some((line) => line.includes('duplicate delivery ignored') && line.includes(id)),
        10_000,
        'the copy to be ignored',
      );
      expect(await jobsOf(own.name)).toEqual(['once-only']);
      expect(posts(activity.conversation.id, 'once-only')).toHaveLength(2);
    } finally {
      await own.stop();
    }
  });

  it('retries a 429 from the connector, after its Retry-After', async () => {
    const activity = messageActivity(teams, { text: 'web1 throttled' });
    const failedBefore = teams.failedCalls;
    teams.failNext(2, 429, 1);
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    await eventually(() => posts(activity.conversation.id, '`throttled` — succeeded').length >= 1, 20_000, 'the answer despite 429s');
    expect(teams.failedCalls - failedBefore).toBe(2);
  });

  it.each([412, 502, 504])('retries a %i from the connector', async (status) => {
    const activity = messageActivity(teams, { text: `web1 flaky-${status}` });
    const failedBefore = teams.failedCalls;
    teams.failNext(2, status);
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    await eventually(
      () => posts(activity.conversation.id, `\`flaky-${status}\` — succeeded`).length >= 1,
      20_000,
      `the answer despite ${status}s`,
    );
    expect(teams.failedCalls - failedBefore).toBe(2);
  });

  it('sends tokens only in a personal chat: asked in a channel, they go to a personal conversation it opens', async () => {
    const activity = messageActivity(teams, { kind: 'channel', text: 'token', id: '1700000000999' });
    expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
    const note = await eventually(
      () => posts(activity.conversation.id, 'private message').length >= 1 && posts(activity.conversation.id, 'private message'),
      10_000,
      'the note in the channel',
    );
    expect(note[0].body.text).not.toMatch(/skadi_u_|sku_/);
    const created = teams.calls.filter((c) => c.method === 'POST' && c.path === '/teams/v3/conversations');
    expect(created.some((c) => c.body.members?.[0]?.id === 'aad-alice' && c.body.tenantId === TENANT)).toBe(true);
  });

  it('says in the channel when Teams will not open a personal chat, and shows no token', async () => {
    teams.refuseNewConversations = true;
    try {
      const activity = messageActivity(teams, { kind: 'channel', text: 'token', id: '1700000001999' });
      expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
      const [answer] = await eventually(
        () =>
          posts(activity.conversation.id, 'could not send you a private message').length >= 1 &&
          posts(activity.conversation.id, 'could not send you a private message'),
        15_000,
        'the explanation',
      );
      expect(answer.body.text).toContain('Message me directly');
      expect(teams.calls.some((c) => /sku_/.test(JSON.stringify(c.body)) && c.conversationId === activity.conversation.id)).toBe(false);
    } finally {
      teams.refuseNewConversations = false;
    }
  });
});
