/**
 * Two-person approval through WeChat: the real `skadi serve` with wechaty against the fake WeChat process, MariaDB,
 * Redis and the real SDK agent. WeChat has no threads: job messages start with `web1 #<short id>`, and approvals are
 * the text commands `approve <short id>` / `deny <short id> [reason]`.
 */
import { eventually } from '../helpers/env';
import { answerMatching, BOT_ID, CONTACTS, ROOM_ID, startFakeWechat, type Answer, type FakeWechat, wechatUp } from '../helpers/fake-wechat';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { gateWeb1 } from '../helpers/approvals';

const ALICE_KEY = `wechat:${BOT_ID}:${CONTACTS.alice}`;
const BOB_KEY = `wechat:${BOT_ID}:${CONTACTS.bob}`;
let wechat: FakeWechat;
let gw: Gateway;
let agent: RunningAgent;
let ran: string[] = [];

/** Direct messages of the bot to a contact. */
const dmTo = (person: 'alice' | 'bob' | 'carol') => (a: Answer) => a.to === CONTACTS[person] && a.roomId === null;
const dmsTo = (person: 'alice' | 'bob' | 'carol') => wechat.answers.filter(dmTo(person));
const inRoom = (a: Answer) => a.roomId === ROOM_ID;

/** Waits for the approval request of a command among some answers; returns it with the job's ids. */
async function request(where: (a: Answer) => boolean, what: string): Promise<{ text: string; shortId: string; jobId: string }> {
  const found = await answerMatching(
    wechat,
    (a) => where(a) && a.text.includes('Approval needed') && a.text.includes(what),
    20_000,
    `the approval request for ${what}`,
  );
  const [, shortId] = /`approve ([0-9A-Z]{4})`/.exec(found.text) ?? [];
  const [, jobId] = /job ([0-9A-Z]{26})/.exec(found.text) ?? [];
  expect(shortId).toBeDefined();
  expect(jobId).toBeDefined();
  return { text: found.text, shortId, jobId };
}

const status = async (jobId: string) => (await gw.core.jobs.get(jobId, null)).status;

beforeAll(async () => {
  wechat = await startFakeWechat();
  gw = await startGateway({ ...wechat.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_WECHAT_PACE: '100ms' });
  ({ agent, ran } = await gateWeb1(gw, { alice: ALICE_KEY, bob: BOB_KEY }));
  await eventually(() => wechatUp(gw.base), 20_000, 'the WeChat channel up');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await wechat?.close();
});

it("a matching command waits; alice cannot approve it herself; bob's `approve <short id>` runs it, and the result goes to alice", async () => {
  wechat.say('alice', 'web1 deploy v1');
  const { text, shortId, jobId } = await request(dmTo('alice'), '`deploy v1`');
  expect(text.startsWith('🔐 Approval needed')).toBe(true);
  expect(text).toContain(`\`approve ${shortId}\``);
  expect(text).toContain(`\`deny ${shortId} [reason]\``);
  expect(text).toContain(`job ${jobId}`);
  expect(jobId.endsWith(shortId)).toBe(true);
  expect(await status(jobId)).toBe('awaiting_approval');
  // The acknowledgement names the same job by its short id, first.
  const ack = dmsTo('alice').find((a) => a.text.includes('queuing') && a.text.includes('`deploy v1`'));
  expect(ack?.text).toBe(`web1 #${shortId} ⏳ queuing · \`deploy v1\``);

  // Bob, the other account of ops, gets the request by direct message; alice gets it only once.
  const bobs = await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes('Approval needed') && a.text.includes(jobId),
    15_000,
    'the request to bob',
  );
  expect(bobs.text).toBe(text);
  await gw.notifierIdle(); // the request's delivery is over: whatever else it would send is sent by now
  expect(dmsTo('alice').filter((a) => a.text.includes('Approval needed') && a.text.includes(jobId))).toHaveLength(1);
  expect(wechat.answers.some((a) => a.to === CONTACTS.carol || inRoom(a))).toBe(false);

  // Alice's own approval is refused; the job still waits.
  const before = wechat.answers.length;
  wechat.say('alice', `approve ${shortId}`);
  const refusal = await answerMatching(
    wechat,
    (a) => wechat.answers.indexOf(a) >= before && dmTo('alice')(a),
    15_000,
    "the answer to alice's approval",
  );
  expect(refusal.text).toContain('You asked for this job yourself');
  // The refusal is the last thing the gateway does with alice's message, and a job still awaiting approval was never
  // handed out.
  expect(await status(jobId)).toBe('awaiting_approval');
  expect(ran).not.toContain('deploy v1');

  // Bob approves: answered to him, and the job runs.
  wechat.say('bob', `approve ${shortId}`);
  const approved = await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes('Approved'),
    15_000,
    "the answer to bob's approval",
  );
  expect(approved.text).toBe(`✅ Approved: queued for web1 \`deploy v1\` · job ${jobId}`);
  const result = await answerMatching(
    wechat,
    (a) => dmTo('alice')(a) && a.text.includes('succeeded') && a.text.includes('deploy v1'),
    20_000,
    'the result to alice',
  );
  expect(result.text).toBe(`web1 #${shortId} ✅ succeeded · \`deploy v1\`\noutput of deploy v1`);
  const job = await gw.core.jobs.get(jobId, null);
  expect(job.status).toBe('succeeded');
  expect(job.approval?.approvedBy).toBe(BOB_KEY);
  expect(ran.filter((m) => m === 'deploy v1')).toHaveLength(1);
  // The result is alice's alone.
  expect(dmsTo('bob').some((a) => a.text.includes('succeeded'))).toBe(false);

  // A second approval: the short id names only jobs still waiting; the full id finds this one decided.
  wechat.say('bob', `approve ${shortId}`);
  await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes(`No job of yours awaiting approval ends with ${shortId}`),
    15_000,
    'the answer to a second approval by short id',
  );
  wechat.say('bob', `approve ${jobId}`);
  await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes(`already approved by ${BOB_KEY}`),
    15_000,
    'the answer to a second approval',
  );
}, 60_000);

it("bob's `deny <short id> <reason>` cancels the job with his reason; it never runs", async () => {
  wechat.say('alice', 'web1 deploy v2');
  const { shortId, jobId } = await request(dmTo('alice'), '`deploy v2`');
  await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes('Approval needed') && a.text.includes(jobId),
    15_000,
    'the request to bob',
  );
  wechat.say('bob', `deny ${shortId} not during the freeze`);
  const denied = await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes('Denied') && a.text.includes(jobId),
    15_000,
    'the answer to the denial',
  );
  expect(denied.text).toBe(`🚫 Denied: web1 \`deploy v2\` · job ${jobId}`);
  const job = await gw.core.jobs.get(jobId, null);
  expect(job.status).toBe('canceled');
  expect(job.reason).toBe(`denied by ${BOB_KEY}: not during the freeze`);
  expect(job.approval?.deniedBy).toBe(BOB_KEY);
  // Alice hears of the end, under the job's short id.
  const ended = await answerMatching(
    wechat,
    (a) => dmTo('alice')(a) && a.text.startsWith(`web1 #${shortId} 🚫 canceled`),
    15_000,
    'the end to alice',
  );
  expect(ended.text).toContain('not during the freeze');
  await gw.drainQueue(); // a later job of web1 has run: the denied one would have been handed out before it
  expect(ran).not.toContain('deploy v2');
}, 60_000);

it('an unlinked contact cannot approve, and a command that matches no pattern runs at once', async () => {
  wechat.say('alice', 'web1 deploy v3');
  const { shortId, jobId } = await request(dmTo('alice'), '`deploy v3`');
  wechat.say('carol', `approve ${shortId}`);
  const refusal = await answerMatching(wechat, dmTo('carol'), 15_000, 'the answer to carol');
  expect(refusal.text).toContain(`skadi identity link wechat:${BOT_ID}:${CONTACTS.carol} --user <name>`);
  expect(await status(jobId)).toBe('awaiting_approval');

  wechat.say('alice', 'web1 uptime');
  const result = await answerMatching(
    wechat,
    (a) => dmTo('alice')(a) && a.text.includes('succeeded') && a.text.includes('`uptime`'),
    20_000,
    'the result',
  );
  expect(result.text).toMatch(/^web1 #[0-9A-Z]{4} ✅ succeeded · `uptime`\noutput of uptime$/);
  expect(wechat.answers.some((a) => a.text.includes('Approval needed') && a.text.includes('`uptime`'))).toBe(false);
  expect(ran).not.toContain('deploy v3');
}, 60_000);

it('a command in the room gets its request in the room; bob approves there and the result comes back to the room', async () => {
  wechat.say('alice', 'web1 deploy v4', { room: true, mention: true });
  const { text, shortId, jobId } = await request(inRoom, '`deploy v4`');
  expect(text).toMatch(/^@Alice\s+🔐 Approval needed/);
  await answerMatching(
    wechat,
    (a) => dmTo('bob')(a) && a.text.includes('Approval needed') && a.text.includes(jobId),
    15_000,
    'the request to bob',
  );
  // Alice is the requester: no private copy to her (the request's delivery is over once the notifier is idle).
  await gw.notifierIdle();
  expect(dmsTo('alice').some((a) => a.text.includes(jobId))).toBe(false);

  wechat.say('bob', `approve ${shortId}`, { room: true, mention: true });
  await answerMatching(
    wechat,
    (a) => inRoom(a) && /^@Bob\s+✅ Approved: queued for web1/.test(a.text),
    15_000,
    'the approval answered in the room',
  );
  const result = await answerMatching(
    wechat,
    (a) => inRoom(a) && a.text.includes(`web1 #${shortId} ✅ succeeded`),
    20_000,
    'the result in the room',
  );
  expect(result.text).toMatch(new RegExp(`^@Alice\\s+web1 #${shortId} ✅ succeeded · \`deploy v4\`\\noutput of deploy v4$`));
  expect((await gw.core.jobs.get(jobId, null)).approval?.approvedBy).toBe(BOB_KEY);
}, 60_000);
