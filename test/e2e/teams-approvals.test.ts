/**
 * Two-person approval through Teams: a real `skadi serve` with botbuilder, the real SDK agent, and the local fake of the
 * Microsoft side. Approval requests carry an Adaptive Card; its Approve / Deny submits come back as message activities
 * with `value: {skadi, job}` and `replyToId` naming the card, and a decision replaces the card (a PUT on the connector).
 */
import { eventually } from '../helpers/env';
import { messageActivity, postActivity, startFakeTeams, TENANT, type ConnectorCall, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { gateWeb1 } from '../helpers/approvals';

let teams: FakeTeams;
let gw: Gateway;
let agent: RunningAgent;
let ran: string[] = [];

const ALICE = 'aad-alice';
const BOB = 'aad-bob';
const EVE = 'aad-eve';
/** The personal conversation of each person: where they write to the bot, and where the bot's private messages go. */
const chatOf = (person: string) => `a:personal-${person}`;
const identityOf = (person: string) => `teams:${TENANT}:${person}`;

beforeAll(async () => {
  teams = await startFakeTeams();
  // At debug level the gateway logs every activity it drops ("Teams activity ignored", with its id): the signal that
  // a card submit was judged and left, since Teams activities are handled concurrently and no later one proves it.
  gw = await startGateway({ ...teams.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_NOTIFY_RETRY_BASE: '100ms', SKADI_LOG_LEVEL: 'debug' });
  await gw.core.users.create('other');
  await gw.core.identities.link(identityOf(EVE), 'other', 'eve');
  ({ agent, ran } = await gateWeb1(gw, { alice: identityOf(ALICE), bob: identityOf(BOB) }));
  // The agent's coming online is told privately to alice (a conversation the bot opens): let it pass before the tests.
  await eventually(
    () => teams.calls.some((c) => c.conversationId === chatOf(ALICE) && String(c.body.text ?? '').includes('Agent web1 is online')),
    10_000,
    'the online notice',
  );
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await teams?.close();
});

let seq = 0;
const nextId = () => `17000${Date.now()}${++seq}`;
const NAMES: Record<string, string> = { [ALICE]: 'Alice', [BOB]: 'Bob', [EVE]: 'Eve' };

/** A person writes a command to the bot: in their personal chat, or with a mention in a channel (a new thread). */
async function say(from: string, text: string, kind: 'personal' | 'channel' = 'personal'): Promise<Record<string, any>> {
  const activity = messageActivity(teams, { kind, text, from, fromName: NAMES[from], id: nextId() });
  const res = await postActivity(gw.base, activity, teams.token());
  expect(res.status).toBe(200);
  return activity;
}

/** The activity Teams sends when a person presses a button (Action.Submit) of a card: data in `value`, no text. */
function submitActivity(
  from: string,
  conversationId: string,
  cardId: string | undefined,
  value: unknown,
  kind: 'personal' | 'channel' = 'personal',
): Record<string, any> {
  const activity = messageActivity(teams, { kind, text: '', mention: false, from, fromName: NAMES[from], conversationId, id: nextId() });
  delete activity.text;
  return { ...activity, value, ...(cardId !== undefined ? { replyToId: cardId } : {}) };
}

/** Posts a card submit, signed like any activity; returns the HTTP status. */
async function submit(
  from: string,
  conversationId: string,
  cardId: string | undefined,
  value: unknown,
  kind: 'personal' | 'channel' = 'personal',
): Promise<number> {
  return (await postActivity(gw.base, submitActivity(from, conversationId, cardId, value, kind), teams.token())).status;
}

const callsIn = (conversationId: string): ConnectorCall[] => teams.calls.filter((c) => c.conversationId === conversationId);
const postsIn = (conversationId: string, about: string) =>
  callsIn(conversationId).filter((c) => c.method === 'POST' && String(c.body.text ?? '').includes(about));
const putsOf = (conversationId: string, activityId: string) =>
  callsIn(conversationId).filter((c) => c.method === 'PUT' && c.activityId === activityId);
const requestsIn = (conversationId: string, what: string) =>
  postsIn(conversationId, 'Approval needed').filter((c) => String(c.body.text).includes(what));

async function jobCount(): Promise<number> {
  return (await gw.core.jobs.list(null, null, 1000)).length;
}

/** One approval request as posted: the connector call, and the activity id the connector gave it (the card's id). */
interface Request {
  call: ConnectorCall;
  cardId: string;
}

/** Waits for the (single) approval request about `what` in a conversation. */
async function requestIn(conversationId: string, what: string): Promise<Request> {
  const [call] = await eventually(
    () => requestsIn(conversationId, what).length >= 1 && requestsIn(conversationId, what),
    15_000,
    `the approval request for ${what} in ${conversationId}`,
  );
  const cardId = teams.postedIds.get(call);
  expect(cardId).toMatch(/^act-\d+$/);
  return { call, cardId: cardId! };
}

/** Alice asks for a job that needs approval; waits for the request where she asked and for bob's private one. */
async function askForApproval(
  what: string,
  kind: 'personal' | 'channel' = 'personal',
): Promise<{ jobId: string; shortId: string; conversation: string; here: Request; toBob: Request; since: number }> {
  const since = teams.calls.length;
  const activity = await say(ALICE, `web1 ${what}`, kind);
  const conversation = String(activity.conversation.id);
  const here = await requestIn(conversation, what);
  const [, shortId] = /`approve ([0-9A-Z]{4})`/.exec(String(here.call.body.text)) ?? [];
  const [, jobId] = /job ([0-9A-Z]{26})$/.exec(String(here.call.body.text)) ?? [];
  expect(shortId).toBeDefined();
  expect(jobId).toBeDefined();
  const toBob = await requestIn(chatOf(BOB), what);
  return { jobId, shortId, conversation, here, toBob, since };
}

/** The Approve / Deny buttons of a posted request: [type, title, data] of each action of its Adaptive Card. */
function cardButtons(call: ConnectorCall): unknown[] {
  const attachments = call.body.attachments ?? [];
  expect(attachments).toHaveLength(1);
  expect(attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
  return (attachments[0].content?.actions ?? []).map((a: any) => [a.type, a.title, a.data]);
}

const status = async (jobId: string) => (await gw.core.jobs.get(jobId, null)).status;

/** Posts a card submit and waits for the gateway to log that it dropped it (judged before its HTTP answer). */
async function submitIgnored(from: string, conversationId: string, cardId: string, value: unknown): Promise<void> {
  const activity = submitActivity(from, conversationId, cardId, value);
  expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
  const ignored = (line: string) => line.includes('Teams activity ignored') && line.includes(`"activityId":"${activity.id}"`);
  await eventually(() => gw.output().split('\n').some(ignored), 10_000, `the submit ${JSON.stringify(value)} dropped`);
}

describe('Teams approvals', () => {
  it("a matching command waits; the request with its card goes to alice's chat, and privately to bob", async () => {
    const { jobId, shortId, here, toBob, since } = await askForApproval('deploy v1');
    expect(await status(jobId)).toBe('awaiting_approval');
    expect(shortId).toBe(jobId.slice(-4));

    const text = String(here.call.body.text);
    expect(text.startsWith('🔐 Approval needed')).toBe(true);
    expect(text).toContain(`approve ${shortId}`);
    expect(text).toContain(`job ${jobId}`);
    expect(text).toContain('deploy v1');
    const buttons = [
      ['Action.Submit', 'Approve', { skadi: 'approve', job: jobId }],
      ['Action.Submit', 'Deny', { skadi: 'deny', job: jobId }],
    ];
    expect(cardButtons(here.call)).toEqual(buttons);

    // Bob, the other account of ops, got the same request in a personal conversation the bot opened with him.
    expect(String(toBob.call.body.text)).toBe(text);
    expect(cardButtons(toBob.call)).toEqual(buttons);
    await gw.notifierIdle(); // the request's delivery is over: any other conversation it would open is opened by now
    const opened = teams.calls.slice(since).filter((c) => c.method === 'POST' && c.path === '/teams/v3/conversations');
    expect(opened.map((c) => [c.body.members?.[0]?.id, c.body.tenantId])).toEqual([[BOB, TENANT]]);
    // Alice asked: she gets it once, where she asked, never also privately; eve (another user) never.
    expect(requestsIn(chatOf(ALICE), 'deploy v1')).toHaveLength(1);
    expect(requestsIn(chatOf(BOB), 'deploy v1')).toHaveLength(1);
    expect(callsIn(chatOf(EVE))).toEqual([]);
    // Her acknowledgement now shows that the job waits.
    const [ack] = postsIn(chatOf(ALICE), '⏳ web1: `deploy v1` — queuing');
    expect(ack).toBeDefined();
    await eventually(
      () =>
        putsOf(chatOf(ALICE), teams.postedIds.get(ack)!).some((c) =>
          String(c.body.text).includes('🔐 web1: `deploy v1` — awaiting_approval'),
        ),
      10_000,
      'the acknowledgement to show the wait',
    );
    expect(ran).not.toContain('deploy v1');
  }, 30_000);

  it("alice's own Approve on the card is refused, eve's is refused too, and the job still waits", async () => {
    const { jobId, here } = await askForApproval('deploy v2');
    expect(await submit(ALICE, chatOf(ALICE), here.cardId, { skadi: 'approve', job: jobId })).toBe(200);
    const [refusal] = await eventually(
      () =>
        postsIn(chatOf(ALICE), 'You asked for this job yourself').length >= 1 && postsIn(chatOf(ALICE), 'You asked for this job yourself'),
      10_000,
      'the refusal of self-approval',
    );
    expect(refusal.body.text).toMatch(/^❌ /);
    // Eve belongs to another user: even with the job's id in a forged submit, she may not decide.
    expect(await submit(EVE, chatOf(EVE), 'act-999999', { skadi: 'approve', job: jobId })).toBe(200);
    await eventually(
      () => postsIn(chatOf(EVE), 'only the accounts linked to the user who owns it').length >= 1,
      10_000,
      'the refusal of another user',
    );
    // Each refusal is the last thing the gateway does with its submit: both are handled.
    expect(await status(jobId)).toBe('awaiting_approval');
    expect((await gw.core.jobs.get(jobId, null)).approval?.approvedBy ?? null).toBeNull();
    // A refused decision leaves the card (and its buttons) as it was.
    expect(putsOf(chatOf(ALICE), here.cardId)).toEqual([]);
    expect(ran).not.toContain('deploy v2');
  }, 30_000);

  it("bob's Approve on his card runs the job, the output lands in alice's chat, and his card shows the decision", async () => {
    const { jobId, toBob } = await askForApproval('deploy v3');
    expect(ran).not.toContain('deploy v3');
    expect(await submit(BOB, chatOf(BOB), toBob.cardId, { skadi: 'approve', job: jobId })).toBe(200);

    const [edit] = await eventually(
      () => putsOf(chatOf(BOB), toBob.cardId).length >= 1 && putsOf(chatOf(BOB), toBob.cardId),
      10_000,
      "bob's card updated",
    );
    expect(String(edit.body.text)).toContain('✅ Approved: queued for web1 `deploy v3`');
    expect(String(edit.body.text)).toContain(`job ${jobId}`);
    expect(edit.body.attachments ?? []).toEqual([]); // the buttons go
    expect(postsIn(chatOf(BOB), 'Approved')).toEqual([]); // replaced, not answered as a new message

    const [result] = await eventually(
      () => postsIn(chatOf(ALICE), '`deploy v3` — succeeded').length >= 1 && postsIn(chatOf(ALICE), '`deploy v3` — succeeded'),
      15_000,
      "the result in alice's chat",
    );
    expect(String(result.body.text)).toContain('output of deploy v3');
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.status).toBe('succeeded');
    expect(job.approval?.approvedBy).toBe(identityOf(BOB));
    expect(ran.filter((m) => m === 'deploy v3')).toHaveLength(1);

    // Pressing Approve again: told it is decided already, and nothing runs twice.
    expect(await submit(BOB, chatOf(BOB), toBob.cardId, { skadi: 'approve', job: jobId })).toBe(200);
    await eventually(
      () => postsIn(chatOf(BOB), `already approved by ${identityOf(BOB)}`).length >= 1,
      10_000,
      'the answer to a second approval',
    );
    await gw.drainQueue(); // a later job of web1 has run: a second copy of deploy v3 would have been handed out before it
    expect(ran.filter((m) => m === 'deploy v3')).toHaveLength(1);
  }, 45_000);

  it('Deny on the card in a channel thread cancels the job, which never runs, and the card shows the denial', async () => {
    const { jobId, conversation, here } = await askForApproval('deploy v4', 'channel');
    expect(conversation).toContain(';messageid=');
    expect(cardButtons(here.call)).toEqual([
      ['Action.Submit', 'Approve', { skadi: 'approve', job: jobId }],
      ['Action.Submit', 'Deny', { skadi: 'deny', job: jobId }],
    ]);
    // A submit in a channel carries no mention of the bot: it is handled all the same.
    expect(await submit(BOB, conversation, here.cardId, { skadi: 'deny', job: jobId }, 'channel')).toBe(200);
    await eventually(async () => (await status(jobId)) === 'canceled', 10_000, 'the job denied');
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.reason).toBe(`denied by ${identityOf(BOB)}`);
    expect(job.approval?.deniedBy).toBe(identityOf(BOB));
    const [edit] = await eventually(
      () => putsOf(conversation, here.cardId).length >= 1 && putsOf(conversation, here.cardId),
      10_000,
      'the card in the thread updated',
    );
    expect(String(edit.body.text)).toContain('🚫 Denied: web1 `deploy v4`');
    expect(edit.body.attachments ?? []).toEqual([]);
    await eventually(() => postsIn(conversation, '`deploy v4` — canceled').length >= 1, 10_000, 'the end of the job in the thread');
    await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
    expect(ran).not.toContain('deploy v4');
  }, 30_000);

  it('typed `deny <short id> <reason>` works too, answered as a new message', async () => {
    const { jobId, shortId, toBob } = await askForApproval('deploy v5');
    await say(BOB, `deny ${shortId} not during the freeze`);
    await eventually(() => postsIn(chatOf(BOB), '🚫 Denied: web1 `deploy v5`').length >= 1, 10_000, 'the denial answer');
    const job = await gw.core.jobs.get(jobId, null);
    expect(job.status).toBe('canceled');
    expect(job.reason).toBe(`denied by ${identityOf(BOB)}: not during the freeze`);
    expect(putsOf(chatOf(BOB), toBob.cardId)).toEqual([]); // a typed decision does not touch the card
    await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
    expect(ran).not.toContain('deploy v5');
  }, 30_000);

  it('a card submit with a malformed value gets 200, creates nothing and decides nothing', async () => {
    const { jobId, toBob } = await askForApproval('deploy v6');
    const before = await jobCount();
    const callsBefore = callsIn(chatOf(BOB)).length;
    const malformed: unknown[] = [
      { skadi: 'approve', job: 'not-an-id' },
      { skadi: 'approve', job: jobId.toLowerCase() },
      { skadi: 'approve', job: `${jobId} ` },
      { skadi: 'approve', job: jobId.slice(-4) },
      { skadi: 'approve', job: 42 },
      { skadi: 'approve', job: [jobId] },
      { skadi: 'approve' },
      { skadi: 'run', job: jobId },
      { skadi: 'APPROVE', job: jobId },
      { job: jobId },
      `approve ${jobId}`,
      null,
    ];
    // Each one is dropped before its HTTP answer, and the gateway logs so: none was handed on.
    for (const value of malformed) await submitIgnored(BOB, chatOf(BOB), toBob.cardId, value);
    expect(await jobCount()).toBe(before);
    expect(await status(jobId)).toBe('awaiting_approval');
    expect(callsIn(chatOf(BOB)).slice(callsBefore)).toEqual([]); // no answer, no edit of the card
    expect(ran).not.toContain('deploy v6');

    // The same submit with a well-formed value is handled (so the silence above was not just slowness).
    expect(await submit(BOB, chatOf(BOB), toBob.cardId, { skadi: 'deny', job: jobId })).toBe(200);
    await eventually(
      () => putsOf(chatOf(BOB), toBob.cardId).some((c) => String(c.body.text).includes('🚫 Denied: web1 `deploy v6`')),
      10_000,
      'the well-formed deny',
    );
    expect(await status(jobId)).toBe('canceled');
    expect(await jobCount()).toBe(before);
  }, 30_000);
});
