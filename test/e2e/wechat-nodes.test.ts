/** WeChat with two gateway nodes: only the lease holder logs in; the other relays its answers, and takes over when it stops. */
import { Agent } from '../../agent/sdk';
import { eventually } from '../helpers/env';
import { answerMatching, BOT_ID, CONTACTS, startFakeWechat, type FakeWechat, wechatUp } from '../helpers/fake-wechat';
import { startGateway, type Gateway } from '../helpers/gateway';
import { startServe, stopChild } from '../helpers/process';

let wechat: FakeWechat;
let first: Gateway;
let second: Awaited<ReturnType<typeof startServe>>;
let secondBase: string;
let third: Awaited<ReturnType<typeof startServe>> | undefined;
let agent: Agent;
let agentLoop: Promise<void>;

const settings = { SKADI_WECHAT_LEASE: '3s', SKADI_NOTIFY_PACE: '20ms', SKADI_WECHAT_PACE: '50ms' };

beforeAll(async () => {
  wechat = await startFakeWechat();
  first = await startGateway({ ...wechat.settings(), ...settings });
  await eventually(() => wechatUp(first.base), 20_000, 'the first node logged in');
  second = await startServe({ ...first.env, ...wechat.settings(), SKADI_LOG_LEVEL: 'debug' }); // the same installation, its own HOME
  secondBase = `http://127.0.0.1:${second.port}`;
  await first.core.identities.link(`wechat:${BOT_ID}:${CONTACTS.alice}`, 'ops');
  // The agent polls the second node: it stays up for the whole file.
  agent = new Agent({ server: secondBase, token: first.agentToken });
  agentLoop = agent.start(async (job) => `output of ${job.message}`);
  await eventually(() => first.core.agents.isOnline(first.agentId), 10_000, 'the agent online');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await agentLoop;
  if (second) await stopChild(second.child);
  if (third) await stopChild(third.child);
  await first?.stop();
  await wechat?.close();
});

it('logs in on one node only; the other stands by and its deliveries reach WeChat through the first', async () => {
  await eventually(() => second.output().includes('standing by'), 10_000, 'the second node standing by');
  expect(await wechatUp(secondBase)).toBe(false);
  expect(wechat.clientStarts()).toBe(1);
  // Both nodes' notifiers deliver job events; every answer reaches the contact, whichever node picked it up. Commands
  // go on until the standby node has delivered (relayed) at least one: which notifier reads an event is chance.
  const relayed = () => second.output().includes('sent through the gateway node logged in to WeChat');
  for (let i = 0; i < 12 && !relayed(); i++) {
    wechat.say('alice', `web1 job-${i}`);
    await answerMatching(
      wechat,
      (a) => a.to === CONTACTS.alice && a.text.includes(`\`job-${i}\``) && a.text.includes('succeeded'),
      20_000,
      `the result of job-${i}`,
    );
  }
  expect(relayed()).toBe(true);
  expect(wechat.clientStarts()).toBe(1);
}, 60_000);

it('the other node takes over when the logged-in one stops', async () => {
  expect(await stopChild(first.child)).toBe(0);
  await eventually(() => wechatUp(secondBase), 20_000, 'the second node logged in');
  expect(wechat.clientStarts()).toBe(2);
  wechat.say('alice', 'web1 after-takeover');
  await answerMatching(
    wechat,
    (a) => a.to === CONTACTS.alice && a.text.includes('after-takeover') && a.text.includes('succeeded'),
    20_000,
    'the answer from the second node',
  );
}, 60_000);

it("a node that stands by takes over once a crashed node's lease lapses", async () => {
  // A third node joins and stands by; the logged-in (second) node is killed without a chance to let the lease go.
  third = await startServe({ ...first.env, ...wechat.settings() });
  const thirdBase = `http://127.0.0.1:${third.port}`;
  await eventually(() => third!.output().includes('standing by'), 10_000, 'the third node standing by');
  await agent.stop();
  await agentLoop;
  agent = new Agent({ server: thirdBase, token: first.agentToken });
  agentLoop = agent.start(async (job) => `output of ${job.message}`);
  const killedAt = Date.now();
  second.child.kill('SIGKILL');
  await eventually(() => wechatUp(thirdBase), 20_000, 'the third node logged in');
  // Not before the 3 s lease could lapse: it was renewed at most a second before the kill.
  expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1500);
  wechat.say('alice', 'web1 after-crash');
  await answerMatching(
    wechat,
    (a) => a.to === CONTACTS.alice && a.text.includes('after-crash') && a.text.includes('succeeded'),
    20_000,
    'the answer from the third node',
  );
}, 60_000);
