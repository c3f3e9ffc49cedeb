/**
 * WeChat end to end: the real `skadi serve` with wechaty and wechaty-puppet-service, against a fake WeChat in its
 * own process (a PuppetServer serving the mock puppet), with MariaDB, Redis and the real SDK agent.
 */
import { eventually } from '../helpers/env';
import { answerMatching, BOT_ID, CONTACTS, ROOM_ID, startFakeWechat, type Answer, type FakeWechat, wechatUp } from '../helpers/fake-wechat';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';

const PACE_MS = 300;
let wechat: FakeWechat;
let gw: Gateway;
let agent: RunningAgent;

/** Jobs of the gateway's user, newest first. */
async function jobTexts(): Promise<string[]> {
  const [rows] = await gw.core.db.pool.query('SELECT message FROM jobs ORDER BY id');
  return (rows as { message: string }[]).map((r) => r.message);
}

const toAlice = (a: Answer) => a.to === CONTACTS.alice && a.roomId === null;

beforeAll(async () => {
  wechat = await startFakeWechat();
  // At debug level the gateway logs every message it drops ("WeChat message ignored", with the reason).
  gw = await startGateway({ ...wechat.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_WECHAT_PACE: `${PACE_MS}ms`, SKADI_LOG_LEVEL: 'debug' });
  await gw.core.identities.link(`wechat:${BOT_ID}:${CONTACTS.alice}`, 'ops');
  await gw.core.identities.link(`wechat:${BOT_ID}:${CONTACTS.bob}`, 'ops');
  agent = await gw.startAgent(async (job) => `output of ${job.message}`);
  await eventually(() => wechatUp(gw.base), 20_000, 'the WeChat channel up');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await wechat?.close();
});

it('a direct message gives one job, acknowledged and answered to the contact with the agent and short id first', async () => {
  wechat.say('alice', 'web1 uptime');
  const final = await answerMatching(
    wechat,
    (a) => toAlice(a) && a.text.includes('succeeded') && a.text.includes('uptime'),
    20_000,
    'the result',
  );
  const ack = wechat.answers.find((a) => toAlice(a) && a.text.includes('queuing') && a.text.includes('uptime'))!;
  expect(ack.text).toMatch(/^web1 #[0-9A-Z]{4} ⏳ queuing · `uptime`$/);
  const shortId = /#([0-9A-Z]{4})/.exec(ack.text)![1];
  expect(final.text).toBe(`web1 #${shortId} ✅ succeeded · \`uptime\`\noutput of uptime`);
  expect(wechat.answers.indexOf(ack)).toBeLessThan(wechat.answers.indexOf(final));
  expect((await jobTexts()).filter((t) => t === 'uptime')).toHaveLength(1);
  // Intermediate statuses are not sent: exactly the acknowledgement and the result.
  expect(wechat.answers.filter((a) => a.text.includes('`uptime`'))).toHaveLength(2);
}, 30_000);

it('a room mention is answered in the room, mentioning the sender', async () => {
  wechat.say('bob', 'web1 df -h', { room: true, mention: true });
  const final = await answerMatching(
    wechat,
    (a) => a.roomId === ROOM_ID && a.text.includes('succeeded') && a.text.includes('df -h'),
    20_000,
    'the result in the room',
  );
  expect(final.text).toMatch(/^@Bob\s+web1 #[0-9A-Z]{4} ✅ succeeded · `df -h`\noutput of df -h$/);
  expect(wechat.answers.some((a) => a.roomId === ROOM_ID && /^@Bob\s+web1 #[0-9A-Z]{4} ⏳ queuing/.test(a.text))).toBe(true);
}, 30_000);

it("ignores a room message without a mention, the bot's own message, a picture and replayed history", async () => {
  const before = await jobTexts();
  const logged = gw.output().length;
  wechat.say('alice', 'web1 no-mention', { room: true });
  wechat.say('alice', 'web1 old-history', { old: true });
  wechat.say('alice', 'web1 picture', { image: true });
  wechat.say('bot', 'web1 said-by-bot');
  wechat.say('alice', 'web1 marker');
  await answerMatching(wechat, (a) => toAlice(a) && a.text.includes('succeeded') && a.text.includes('marker'), 20_000, 'the marker');
  // The room message is read on its own path (its mentions are looked up), so the marker's answer does not prove it
  // handled; the gateway's own word that it dropped each of the four does.
  const reasons = [
    'a room message that does not mention the bot',
    'sent before the login (replayed history)',
    'not a text message',
    "the bot's own message",
  ];
  const dropped = () =>
    gw
      .output()
      .slice(logged)
      .split('\n')
      .filter((line) => line.includes('WeChat message ignored'));
  for (const reason of reasons)
    await eventually(() => dropped().some((line) => line.includes(JSON.stringify(reason))), 10_000, `a message dropped as ${reason}`);
  expect((await jobTexts()).slice(before.length)).toEqual(['marker']);
}, 30_000);

it('refuses an unlinked contact with the exact link command, and queues nothing', async () => {
  wechat.say('carol', 'web1 whoami');
  const refusal = await answerMatching(wechat, (a) => a.to === CONTACTS.carol, 15_000, 'the refusal');
  expect(refusal.text).toContain(`skadi identity link wechat:${BOT_ID}:${CONTACTS.carol} --user <name>`);
  expect(await jobTexts()).not.toContain('whoami');
}, 30_000);

it('paces ten quick commands in one conversation: in order, none lost', async () => {
  const before = wechat.answers.length;
  const logged = gw.output().length;
  const names = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
  for (const name of names) wechat.say('alice', `web1 ${name}`);
  const mine = () => wechat.answers.slice(before).filter(toAlice);
  await eventually(() => mine().filter((a) => a.text.includes('succeeded')).length === 10, 40_000, 'ten results');
  const answers = mine();
  expect(answers).toHaveLength(20);
  // Acknowledgements come in the order the commands were sent.
  const acks = answers.filter((a) => a.text.includes('queuing')).map((a) => /`(burst-\d)`/.exec(a.text)![1]);
  expect(acks).toEqual(names);
  for (const name of names) expect(answers.filter((a) => a.text.includes(`\`${name}\``) && a.text.includes('succeeded'))).toHaveLength(1);
  // Never two messages to one conversation closer than the pace (a little timer slack allowed), measured where the
  // gateway lets each one go (its debug line): when they reach the fake WeChat depends on a loaded machine's delays.
  const sendsToAlice = () =>
    gw
      .output()
      .slice(logged)
      .split('\n')
      .filter((line) => line.includes('"msg":"WeChat send starts"') && line.includes(`"conversation":"${CONTACTS.alice}"`));
  const starts = (await eventually(() => sendsToAlice().length >= 20 && sendsToAlice(), 10_000, 'the twenty sends logged')).map(
    (line) => JSON.parse(line).time as number,
  );
  expect(starts).toHaveLength(20);
  for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBeGreaterThanOrEqual(PACE_MS - 5);
}, 60_000);

it('reconnects by itself when the fake WeChat is killed and restarted 5 s later', async () => {
  const startsBefore = wechat.clientStarts();
  await wechat.kill();
  await eventually(async () => !(await wechatUp(gw.base)), 15_000, 'the WeChat channel down');
  await new Promise((r) => setTimeout(r, 5000));
  await wechat.restart();
  await eventually(() => wechat.clientStarts() > startsBefore, 30_000, 'the gateway to connect again');
  await eventually(() => wechatUp(gw.base), 15_000, 'the WeChat channel up again');
  wechat.say('alice', 'web1 after-restart');
  await answerMatching(
    wechat,
    (a) => toAlice(a) && a.text.includes('succeeded') && a.text.includes('after-restart'),
    20_000,
    'the answer after the restart',
  );
  expect(gw.child.exitCode).toBeNull();
  expect(gw.output()).toContain('WeChat channel down');
}, 90_000);
