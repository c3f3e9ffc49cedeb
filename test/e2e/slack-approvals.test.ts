/** Two-person approval through Slack: a real `skadi serve`, signed requests, the real SDK agent, a fake Web API. */
import { eventually } from '../helpers/env';
import { eventBody, postToSlackEndpoint, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { gateWeb1 } from '../helpers/approvals';
import { call } from '../helpers/http';

const SECRET = 'test-signing-secret';
const TEAM = 'T0APPR';
let slack: FakeSlack;
let gw: Gateway;
let agent: RunningAgent;
let ran: string[] = [];

beforeAll(async () => {
  slack = await startFakeSlack(TEAM);
  gw = await startGateway({
    SKADI_SLACK_SIGNING_SECRET: SECRET,
    SKADI_SLACK_BOT_TOKEN: 'xoxb-test-token',
    SKADI_SLACK_API_URL: slack.url,
    SKADI_NOTIFY_PACE: '20ms',
  });
  await gw.core.users.create('other');
  await gw.core.identities.link(`slack:${TEAM}:UEVE`, 'other', 'eve');
  ({ agent, ran } = await gateWeb1(gw, { alice: `slack:${TEAM}:UALICE`, bob: `slack:${TEAM}:UBOB` }));
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await slack?.close();
});

let ts = 1700001000;
/** A signed app_mention from a user in a channel; returns the message's ts (its thread). */
async function mention(user: string, channel: string, text: string): Promise<string> {
  const at = `${ts++}.000100`;
  const res = await postToSlackEndpoint(
    gw.base,
    SECRET,
    eventBody(TEAM, { type: 'app_mention', user, text: `<@UBOT> ${text}`, ts: at, channel, event_ts: at }),
    'application/json',
  );
  expect(res.status).toBe(200);
  return at;
}

const postsIn = (channel: string) => slack.posts().filter((c) => c.args.channel === channel);
const textsIn = (channel: string) => postsIn(channel).map((p) => String(p.args.text));

/** Waits for the approval request in a channel and returns the job's short id. */
async function requestIn(channel: string, what: string): Promise<{ shortId: string; jobId: string }> {
  const request = await eventually(
    () => textsIn(channel).find((t) => t.includes('Approval needed') && t.includes(what)),
    15_000,
    `the approval request for ${what}`,
  );
  const [, shortId] = /approve ([0-9A-Z]{4})/.exec(request)!;
  const [, jobId] = /job ([0-9A-Z]{26})/.exec(request)!;
  return { shortId, jobId };
}

it("a matching command waits; the requester cannot approve it, another user cannot either; bob can, and the output lands in alice's thread", async () => {
  const thread = await mention('UALICE', 'C1', 'web1 deploy v42');
  const { shortId, jobId } = await requestIn('C1', 'deploy v42');
  expect((await gw.core.jobs.get(jobId, null)).status).toBe('awaiting_approval');
  expect(await (await fetch(`${gw.base}/metrics`)).text()).toMatch(/skadi_jobs\{status="awaiting_approval"\} 1\n/);
  // Bob, the other account of ops, got the request privately.
  await eventually(
    () => textsIn('DUBOB').some((t) => t.includes('Approval needed') && t.includes('deploy v42')),
    10_000,
    'the private request to bob',
  );
  await gw.notifierIdle(); // the request's delivery is over: a copy to alice would have been sent by now
  expect(textsIn('DUALICE').some((t) => t.includes('deploy v42'))).toBe(false);

  await mention('UALICE', 'C1', `approve ${shortId}`);
  await eventually(() => textsIn('C1').some((t) => t.includes('You asked for this job yourself')), 10_000, 'the refusal of self-approval');
  await mention('UEVE', 'C1', `approve ${jobId}`);
  await eventually(
    () => textsIn('C1').some((t) => t.includes('only the accounts linked to the user who owns it')),
    10_000,
    'the refusal of another user',
  );
  expect((await gw.core.jobs.get(jobId, null)).status).toBe('awaiting_approval');
  expect(ran).not.toContain('deploy v42');

  await mention('UBOB', 'C1', `approve ${shortId}`);
  await eventually(() => textsIn('C1').some((t) => t.includes('✅ Approved: queued for web1')), 10_000, 'the approval answer');
  const result = await eventually(
    () => postsIn('C1').find((p) => p.args.thread_ts === thread && String(p.args.text).includes('deploy v42` — succeeded')),
    15_000,
    "the result in alice's thread",
  );
  expect(String(result.args.text)).toContain('output of deploy v42');
  const job = await gw.core.jobs.get(jobId, null);
  expect(job.approval?.approvedBy).toBe(`slack:${TEAM}:UBOB`);
  expect(ran.filter((m) => m === 'deploy v42')).toHaveLength(1);

  await mention('UBOB', 'C1', `approve ${jobId}`);
  await eventually(
    () => textsIn('C1').some((t) => t.includes(`already approved by slack:${TEAM}:UBOB`)),
    10_000,
    'the answer to a second approval',
  );
}, 60_000);

/** A signed block_actions payload: a click on Approve or Deny of a posted request. */
async function click(
  user: string,
  post: { args: Record<string, any>; answer: Record<string, unknown> },
  verb: 'approve' | 'deny',
  jobId: string,
): Promise<number> {
  const payload = {
    type: 'block_actions',
    team: { id: TEAM },
    user: { id: user, team_id: TEAM, username: user.toLowerCase() },
    trigger_id: `trig-${Math.random().toString(36).slice(2)}`,
    channel: { id: post.args.channel },
    container: { type: 'message', channel_id: post.args.channel, message_ts: post.answer.ts },
    message: { ts: post.answer.ts, text: post.args.text },
    actions: [{ type: 'button', action_id: `skadi_${verb}`, block_id: 'skadi_approval', value: jobId, action_ts: `${ts++}.5` }],
  };
  const res = await postToSlackEndpoint(
    gw.base,
    SECRET,
    `payload=${encodeURIComponent(JSON.stringify(payload))}`,
    'application/x-www-form-urlencoded',
  );
  return res.status;
}

it('the Approve button of the private request approves, and the request is edited to show the decision', async () => {
  const thread = await mention('UALICE', 'C5', 'web1 deploy v44');
  const { jobId } = await requestIn('C5', 'deploy v44');
  const privately = await eventually(
    () => postsIn('DUBOB').find((p) => String(p.args.text).includes('deploy v44')),
    10_000,
    'the private request to bob',
  );
  const blocks = typeof privately.args.blocks === 'string' ? JSON.parse(privately.args.blocks) : privately.args.blocks;
  const buttons = blocks.find((b: any) => b.type === 'actions').elements;
  expect(buttons.map((b: any) => [b.action_id, b.value])).toEqual([
    ['skadi_approve', jobId],
    ['skadi_deny', jobId],
  ]);
  // A forged click (bad signature) changes nothing.
  const forged = await postToSlackEndpoint(
    gw.base,
    'wrong-secret',
    `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'UBOB' }, actions: [{ action_id: 'skadi_approve', value: jobId }] }))}`,
    'application/x-www-form-urlencoded',
  );
  expect(forged.status).toBe(401);
  expect((await gw.core.jobs.get(jobId, null)).status).toBe('awaiting_approval');

  expect(await click('UBOB', privately, 'approve', jobId)).toBe(200);
  const edit = await eventually(
    () => slack.calls.find((c) => c.method === 'chat.update' && c.args.channel === 'DUBOB' && c.args.ts === privately.answer.ts),
    10_000,
    'the request edited',
  );
  expect(String(edit.args.text)).toContain('✅ Approved: queued for web1');
  await eventually(
    () => postsIn('C5').some((p) => p.args.thread_ts === thread && String(p.args.text).includes('deploy v44` — succeeded')),
    15_000,
    "the result in alice's thread",
  );
  expect((await gw.core.jobs.get(jobId, null)).approval?.approvedBy).toBe(`slack:${TEAM}:UBOB`);
}, 30_000);

it("the Deny button denies; alice's own click on Approve is refused", async () => {
  await mention('UALICE', 'C6', 'web1 deploy v45');
  const { jobId } = await requestIn('C6', 'deploy v45');
  const inChannel = postsIn('C6').find(
    (p) => String(p.args.text).includes('Approval needed') && String(p.args.text).includes('deploy v45'),
  )!;
  expect(await click('UALICE', inChannel, 'approve', jobId)).toBe(200);
  await eventually(() => textsIn('C6').some((t) => t.includes('You asked for this job yourself')), 10_000, 'the refusal');
  expect(await click('UBOB', inChannel, 'deny', jobId)).toBe(200);
  await eventually(async () => (await gw.core.jobs.get(jobId, null)).status === 'canceled', 10_000, 'the job denied');
  await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
  expect(ran).not.toContain('deploy v45');
}, 30_000);

it('a denied job never runs', async () => {
  await mention('UALICE', 'C2', 'web1 deploy v43');
  const { shortId, jobId } = await requestIn('C2', 'deploy v43');
  await mention('UBOB', 'C2', `deny ${shortId} not during the freeze`);
  await eventually(() => textsIn('C2').some((t) => t.includes('🚫 Denied: web1')), 10_000, 'the denial answer');
  const job = await gw.core.jobs.get(jobId, null);
  expect(job.status).toBe('canceled');
  expect(job.reason).toBe(`denied by slack:${TEAM}:UBOB: not during the freeze`);
  await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
  expect(ran).not.toContain('deploy v43');
}, 30_000);

it('a command that matches no pattern runs at once', async () => {
  const thread = await mention('UALICE', 'C3', 'web1 uptime');
  await eventually(
    () => postsIn('C3').some((p) => p.args.thread_ts === thread && String(p.args.text).includes('uptime` — succeeded')),
    15_000,
    'the result',
  );
  expect(textsIn('C3').some((t) => t.includes('Approval needed'))).toBe(false);
}, 30_000);

it('sets patterns from chat', async () => {
  await mention('UALICE', 'C4', 'agent approval web1 restart *');
  await eventually(() => textsIn('C4').some((t) => t.includes('now need another person')), 10_000, 'the answer');
  const owner = await gw.core.users.byName('ops');
  await eventually(
    async () => (await gw.core.agents.byName(owner.id, 'web1')).approvalPatterns.includes('restart *'),
    5000,
    'the pattern stored',
  );
  await mention('UALICE', 'C4', 'web1 restart nginx');
  await requestIn('C4', 'restart nginx');
}, 30_000);

it('quoting or escaping the first word does not get around a pattern', async () => {
  for (const [i, text] of ['"deploy" v50', "de'ploy' v51", 'd\\eploy v52'].entries()) {
    await mention('UALICE', 'C5', `web1 ${text}`);
    const { jobId } = await requestIn('C5', `v5${i}`);
    expect((await gw.core.jobs.get(jobId, null)).status).toBe('awaiting_approval');
  }
  // A later command that runs proves the gated ones were not handed out meanwhile.
  const thread = await mention('UALICE', 'C5', 'web1 uptime');
  await eventually(
    () => postsIn('C5').some((p) => p.args.thread_ts === thread && String(p.args.text).includes('uptime` — succeeded')),
    15_000,
    'the sentinel result',
  );
  expect(ran.filter((m) => /v5[012]/.test(m))).toEqual([]);
}, 30_000);

it('clearing the patterns from chat needs a second person; until then gated jobs still wait', async () => {
  const owner = await gw.core.users.byName('ops');
  await mention('UALICE', 'C6', 'agent approval web1 clear');
  await eventually(() => textsIn('C6').some((t) => t.includes('needs a second person')), 10_000, 'the request to clear');
  await mention('UALICE', 'C6', 'agent approval web1 clear');
  await eventually(
    () => textsIn('C6').filter((t) => t.includes('needs a second person')).length === 2,
    10_000,
    'the second answer to alice',
  );
  expect((await gw.core.agents.byName(owner.id, 'web1')).approvalPatterns).toContain('deploy *');
  // Neither answer cleared anything.
  await mention('UALICE', 'C6', 'web1 deploy v60');
  await requestIn('C6', 'deploy v60');

  await mention('UBOB', 'C6', 'agent approval web1 clear');
  await eventually(
    () => textsIn('C6').some((t) => t.includes('no longer need approval (a second person agreed)')),
    10_000,
    'the patterns cleared',
  );
  const [rows] = await gw.core.db.pool.query('SELECT approval_patterns, approval_clear_by FROM agents WHERE user_id = ? AND name = ?', [
    owner.id,
    'web1',
  ]);
  expect(rows).toEqual([{ approval_patterns: null, approval_clear_by: null }]);
  // Tightening again takes one person. The answer is what the gateway does last (after it forgot its cached copy of
  // the agent): only then may the next test rely on the pattern.
  await mention('UALICE', 'C6', 'agent approval web1 deploy *');
  await eventually(() => textsIn('C6').some((t) => t.includes('now need another person')), 10_000, 'the answer to the tightening');
  expect((await gw.core.agents.byName(owner.id, 'web1')).approvalPatterns).toContain('deploy *');
}, 30_000);

it('a user token handed to alice in chat pushes a gated job that neither it nor alice can approve; bob can', async () => {
  await mention('UALICE', 'DUALICE', 'token');
  const dm = await eventually(() => textsIn('DUALICE').find((t) => t.includes('Your new user token')), 10_000, 'the token in the DM');
  const token = /`(sku_[A-Za-z0-9_-]+)`/.exec(dm)![1];
  const pushed = await call(gw.base, 'POST', '/job/add', { token, body: { message: 'web1 deploy v70' } });
  expect(pushed.body.status).toBe('awaiting_approval');
  const self = await call(gw.base, 'POST', `/jobs/${pushed.body.id}/approve`, { token });
  expect({ status: self.status, error: self.body.error }).toEqual({ status: 403, error: 'SelfApproval' });
  await mention('UALICE', 'C7', `approve ${pushed.body.id}`);
  await eventually(() => textsIn('C7').some((t) => t.includes('You asked for this job yourself')), 10_000, 'the refusal in chat');
  expect((await gw.core.jobs.get(pushed.body.id, null)).status).toBe('awaiting_approval');
  await mention('UBOB', 'C7', `approve ${pushed.body.id}`);
  await eventually(() => ran.includes('deploy v70'), 15_000, 'the job to run after bob approved');
}, 30_000);
