/**
 * Every chat command end to end: signed Slack requests to a real `skadi serve` (debug logging), the real core and
 * database, a real SDK agent, and the fake Slack Web API recording what the gateway posts.
 */
import { eventually } from '../helpers/env';
import { postToSlackEndpoint, slashCommandBody, startFakeSlack, type FakeSlack, type SlackCall } from '../helpers/fake-slack';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { call } from '../helpers/http';

const SECRET = 'commands-signing-secret';
const TEAM = 'T0CMD';
let slack: FakeSlack;
let gw: Gateway;
let agent: RunningAgent;

beforeAll(async () => {
  slack = await startFakeSlack(TEAM);
  gw = await startGateway({
    SKADI_SLACK_SIGNING_SECRET: SECRET,
    SKADI_SLACK_BOT_TOKEN: 'xoxb-commands-token',
    SKADI_SLACK_API_URL: slack.url,
    SKADI_NOTIFY_PACE: '20ms',
    SKADI_SWEEP_INTERVAL: '100ms',
    SKADI_LOG_LEVEL: 'debug', // library debug lines too: tokens must still never reach the log
  });
  await gw.core.identities.link(`slack:${TEAM}:UALICE`, 'ops', 'alice');
  agent = await gw.startAgent(async (job) => {
    if (job.message.startsWith('slow')) {
      await job.running('half way there');
      await eventually(() => updatesIn('CSLOW').some((u) => u.args.text.includes('⚙️')), 15_000, 'the running edit');
    }
    return `output of ${job.message}`;
  });
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await slack?.close();
});

/** Sends a slash command from the linked user in a channel. */
async function command(channel: string, text: string): Promise<void> {
  const res = await postToSlackEndpoint(
    gw.base,
    SECRET,
    slashCommandBody({ team: TEAM, user: 'UALICE', channel, text }),
    'application/x-www-form-urlencoded',
  );
  expect(res.status).toBe(200);
}

const postsIn = (channel: string): SlackCall[] => slack.posts().filter((c) => c.args.channel === channel);
const updatesIn = (channel: string): SlackCall[] => slack.calls.filter((c) => c.method === 'chat.update' && c.args.channel === channel);
/** Waits for a post in a channel whose text contains all the parts; returns it. */
const postWith = (channel: string, ...parts: string[]) =>
  parts.length === 0
    ? Promise.reject(new Error('postWith needs the text to look for'))
    : eventually(
        () => postsIn(channel).find((p) => parts.every((part) => String(p.args.text).includes(part))),
        15_000,
        `a post in ${channel} with ${parts.join(', ')}`,
      );
/** The direct message channel the fake opens with the user. */
const DM = 'DUALICE';

describe('chat commands through Slack', () => {
  it('runs a job, edits the acknowledgement with ⚙️ and the output while it runs, then shows the end', async () => {
    await command('CSLOW', 'web1 slow build');
    const result = await postWith('CSLOW', '✅ web1: `slow build` — succeeded');
    expect(result.args.text).toContain('output of slow build');
    const running = updatesIn('CSLOW').find((u) => u.args.text.includes('⚙️'))!;
    expect(running.args.text).toContain('running');
    expect(running.args.text).toContain('half way there');
  });

  it('lists recent jobs with `jobs` and `jobs <agent>`', async () => {
    await command('CJOBS', 'jobs web1');
    const list = await postWith('CJOBS', 'slow build');
    expect(list.args.text).toContain('✅ web1');
    await command('CJOBS', 'jobs nosuch');
    await postWith('CJOBS', 'There is no agent named "nosuch". Your agents: web1');
  });

  it('runs a delayed job when due, answering in the thread of its announcement', async () => {
    await command('CDELAY', 'delay 1s web1 later');
    await postWith('CDELAY', '⏰ web1: `later` — in 1s');
    await eventually(
      () => updatesIn('CDELAY').some((u) => /⏰ web1: `later` — at .* UTC \(in 1s\) · job \w+/.test(u.args.text)),
      15_000,
      'the due time and job id',
    );
    await postWith('CDELAY', '✅ web1: `later` — succeeded', 'output of later');
  });

  it('adds an agent with its token only in a private message (through conversations.open), never in the log', async () => {
    await command('CADMIN', 'agent add quiet');
    await postWith('CADMIN', 'Agent quiet created. I sent you its token in a private message.');
    expect(slack.calls.some((c) => c.method === 'conversations.open' && c.args.users === 'UALICE')).toBe(true);
    const dm = await postWith(DM, 'Agent quiet created. Its token (shown only now)');
    const token = /`(ska_[\w-]+)`/.exec(dm.args.text)![1];
    expect(postsIn('CADMIN').some((p) => String(p.args.text).includes(token))).toBe(false);
    expect(gw.output()).toContain('"level":20'); // debug lines were written…
    expect(gw.output()).not.toContain(token); // …and none holds the token
    expect((await call(gw.base, 'GET', '/agent/job', { token })).status).toBe(204);
  });

  it('expires at once (⌛) a job for an agent that never polled', async () => {
    await command('CADMIN', 'agent add never');
    await postWith(DM, 'Agent never created.');
    await command('CEXP', 'never hello');
    await eventually(
      () => updatesIn('CEXP').some((u) => u.args.text.includes('⌛ never: `hello` — expired (agent offline)')),
      15_000,
      'the ⌛ edit',
    );
  });

  it('cancels a queued job (🚫), and only a queued one', async () => {
    await command('CCANCEL', 'quiet ls'); // quiet polled once: online, but nothing takes its jobs
    const ack = await postWith('CCANCEL', '⏳ quiet: `ls`');
    const id = /job (\w+)/.exec(ack.args.text)![1];
    await command('CCANCEL', `cancel ${id}`);
    await postWith('CCANCEL', `🚫 quiet: \`ls\` — canceled`, id);
    expect((await gw.core.jobs.get(id, null)).status).toBe('canceled');
    await command('CCANCEL', `cancel ${id}`);
    await postWith('CCANCEL', 'is canceled and can no longer be canceled');
  });

  it('rotates an agent token privately: the old one stops working', async () => {
    const old = /`(ska_[\w-]+)`/.exec((await postWith(DM, 'Agent quiet created.')).args.text)![1];
    await command('CADMIN', 'agent token quiet');
    await postWith('CADMIN', 'quiet has a new token; I sent it to you in a private message.');
    const fresh = /`(ska_[\w-]+)`/.exec((await postWith(DM, 'New token of quiet')).args.text)![1];
    expect((await call(gw.base, 'GET', '/agent/job', { token: old })).status).toBe(401);
    expect((await call(gw.base, 'GET', '/agent/job', { token: fresh })).status).toBe(204);
  });

  it('removes an agent: its queued jobs expire and its token stops working', async () => {
    const token = /`(ska_[\w-]+)`/.exec((await postWith(DM, 'New token of quiet')).args.text)![1];
    const pushed = await call(gw.base, 'POST', '/job/add', { token: gw.userToken, body: { message: 'quiet queued-before-removal' } });
    expect(pushed.body.status).toBe('queuing');
    await command('CADMIN', 'agent remove quiet');
    await postWith('CADMIN', 'Agent quiet removed; its token no longer works and its queued jobs expired.');
    expect(await gw.core.jobs.get(pushed.body.id, null)).toMatchObject({ status: 'expired', reason: 'agent removed' });
    expect((await call(gw.base, 'GET', '/agent/job', { token })).status).toBe(401);
  });

  it('sends notifications to the conversation chosen with `notify here`', async () => {
    await command('CNOTIFY', 'notify here');
    await postWith('CNOTIFY', '🔔 Notifications for ops');
    expect((await call(gw.base, 'POST', '/agent/message/info', { token: gw.agentToken, body: { message: 'disk 91% full' } })).status).toBe(
      202,
    );
    await postWith('CNOTIFY', 'ℹ️ web1: disk 91% full');
  });

  it('gives a new user token privately with `token`: the old one stops working', async () => {
    await command('CADMIN', 'token');
    await postWith('CADMIN', 'I sent you a new user token in a private message');
    const fresh = /`(sku_[\w-]+)`/.exec((await postWith(DM, 'Your new user token')).args.text)![1];
    expect(gw.output()).not.toContain(fresh);
    expect((await call(gw.base, 'GET', '/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: gw.userToken })).status).toBe(401);
    expect((await call(gw.base, 'GET', '/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: fresh })).status).toBe(404);
  });
});
