/**
 * E-mail end to end: a real Dovecot mailbox (mail enters with IMAP APPEND), a real `skadi serve` and agent, and an
 * in-process SMTP sink that captures the answers.
 */
import { eventually } from '../helpers/env';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { authResults, rawMail } from '../helpers/mail';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';
import { startServe, stopChild } from '../helpers/process';
import { ImapFlow } from 'imapflow';

const AUTHSERV = 'mx.skadi.test';
const ALICE = 'alice@example.com';
const run = dovecotAvailable() ? describe : describe.skip;

let dovecot: Dovecot;
let smtp: SmtpSink;
let gw: Gateway;
let agent: RunningAgent;
let seq = 0;

/** The SKADI_EMAIL_* settings of a gateway on the test mailbox. */
const emailSettings = (): Record<string, string> => ({
  SKADI_EMAIL_IMAP_URL: dovecot.url,
  SKADI_EMAIL_SMTP_URL: smtp.url,
  SKADI_EMAIL_FROM: 'Skadi <skadi@ops.example.net>',
  SKADI_EMAIL_AUTHSERV_ID: AUTHSERV,
  SKADI_NOTIFY_PACE: '20ms',
  SKADI_EMAIL_SENDER_LIMIT: '1000', // alice's sentinels count too; the limit has its own tests (email-floods)
});

/** A mail from alice, DKIM-signed by her domain as the receiving server saw it, unless told otherwise. */
function mailFrom(options: { subject: string; text?: string; from?: string; messageId?: string; auth?: string[]; html?: string }): {
  raw: string;
  messageId: string;
} {
  const messageId = options.messageId ?? `<cmd-${++seq}-${Date.now()}@example.com>`;
  const from = options.from ?? ALICE;
  const auth = options.auth ?? [authResults(AUTHSERV, { dkim: 'pass', dkimDomain: from.split('@')[1], spf: 'pass', mailFrom: from })];
  return {
    raw: rawMail({
      from,
      to: 'skadi@ops.example.net',
      subject: options.subject,
      text: options.text,
      html: options.html,
      messageId,
      authResults: auth,
    }),
    messageId,
  };
}

/** The answers to one command mail (by its Message-ID), in order. */
const answersTo = (messageId: string) => smtp.mails.filter((m) => m.inReplyTo === messageId);

/**
 * A test's own agent, which nothing polls for unless the test starts it: a test counts the jobs of its agent alone, so
 * that a job another test left behind (one that failed half-way) never shifts its count.
 */
let agents = 0;
async function ownAgent(): Promise<string> {
  const { name } = await gw.addAgent(`mail${++agents}`);
  return name;
}

/**
 * Mails alice's command for web1 and waits for its result. The mailbox hands one sender's mails on one at a time, in
 * the order they arrived, and the answers to one address go out in the order of their events: once the sentinel's
 * result is in, every mail alice sent before it has been handled, and every answer to her before it has been sent.
 */
async function sentinel(): Promise<void> {
  const mail = mailFrom({ subject: `web1 sentinel-${Math.random().toString(36).slice(2, 8)}` });
  await dovecot.append(mail.raw);
  await eventually(() => answersTo(mail.messageId).some((m) => m.text.includes('— succeeded')), 20_000, 'the result of the sentinel');
}

/** Whether the mailbox shows a mail seen: the gateway marks a mail seen only once it has handled it, answers included. */
const seen = async (messageId: string) => (await dovecot.messages()).find((m) => m.messageId === messageId)?.flags.includes('\\Seen');

beforeAll(async () => {
  if (!dovecotAvailable()) return;
  dovecot = await startDovecot();
  smtp = await startSmtpSink();
  gw = await startGateway(emailSettings());
  await gw.core.identities.link(`email:example.com:${ALICE}`, 'ops', 'alice');
  agent = await gw.startAgent(async (job) => `output of ${job.message}`);
}, 60_000);

afterAll(async () => {
  const step = async (what: string, fn: () => Promise<unknown> | undefined) => {
    const started = Date.now();
    await fn();
    if (Date.now() - started > 5000) console.warn(`teardown: ${what} took ${Date.now() - started} ms`);
  };
  await step('agent', () => agent?.stop());
  await step('gateway', () => gw?.stop());
  await step('smtp', () => smtp?.close());
  await step('dovecot', () => dovecot?.stop());
}, 60_000);

run('e-mail', () => {
  it('runs a command in the subject and answers in the thread: acknowledgement, then the output', async () => {
    const mail = mailFrom({ subject: 'web1 uptime', text: 'please\n' });
    await dovecot.append(mail.raw);
    const [ack, result] = await eventually(() => answersTo(mail.messageId).length >= 2 && answersTo(mail.messageId), 20_000, 'two answers');
    for (const answer of [ack, result]) {
      expect(answer.subject).toBe('Re: web1 uptime');
      expect(answer.to).toEqual([ALICE]);
      expect(answer.references).toEqual([mail.messageId]);
      expect(answer.messageId).toMatch(/@ops\.example\.net>$/);
    }
    expect(ack.text).toContain('⏳ web1: `uptime` — queuing · job ');
    expect(result.text).toContain('✅ web1: `uptime` — succeeded');
    expect(result.text).toContain('output of uptime');
    expect(result.html).toContain('<pre');
    expect(result.html).toContain('output of uptime');
    await eventually(() => seen(mail.messageId), 10_000, 'the mail marked seen');
    await sentinel();
    expect(answersTo(mail.messageId)).toHaveLength(2); // no intermediate statuses by mail
  });

  it('reads the command from the first line of the body, past quotes, before the signature', async () => {
    const mail = mailFrom({ subject: 'Skadi', text: '\n> web1 rm -rf /\n\nweb1 df -h\nthanks\n-- \nweb1 reboot\n' });
    await dovecot.append(mail.raw);
    const [, result] = await eventually(() => answersTo(mail.messageId).length >= 2 && answersTo(mail.messageId), 20_000, 'two answers');
    expect(result.text).toContain('output of df -h');
    expect(result.subject).toBe('Re: Skadi');
  });

  it.each([
    ['dkim=fail', [authResults(AUTHSERV, { dkim: 'fail', dkimDomain: 'example.com' })]],
    ['a pass from another authserv-id', [authResults('mx.attacker.example', { dkim: 'pass', dkimDomain: 'example.com' })]],
    ['no Authentication-Results header', []],
    ['dkim=pass for an unaligned domain', [authResults(AUTHSERV, { dkim: 'pass', dkimDomain: 'example.org' })]],
  ])('refuses %s: no job and no mail', async (_what, auth) => {
    const name = await ownAgent();
    const mail = mailFrom({ subject: `${name} forged`, auth });
    await dovecot.append(mail.raw);
    await eventually(() => seen(mail.messageId), 15_000, 'the mail handled');
    await sentinel();
    expect(await gw.jobCount(name)).toBe(0);
    expect(smtp.mails.filter((m) => m.inReplyTo === mail.messageId || (m.to.includes(ALICE) && m.subject.includes('forged')))).toEqual([]);
  });

  it('answers an authenticated but unlinked sender with a refusal, and makes no job', async () => {
    const name = await ownAgent();
    const mail = mailFrom({ subject: `${name} uptime`, from: 'mallory@example.com' });
    await dovecot.append(mail.raw);
    // The refusal is the last thing the gateway does with the mail: once it is sent, the mail is handled.
    const [refusal] = await eventually(() => answersTo(mail.messageId).length >= 1 && answersTo(mail.messageId), 15_000, 'the refusal');
    expect(refusal.text).toContain('skadi identity link email:example.com:mallory@example.com --user <name>');
    expect(await gw.jobCount(name)).toBe(0);
  });

  it('gives one job for the same Message-ID delivered twice', async () => {
    const own = await gw.startAgent(async (job) => `output of ${job.message}`, 'once1');
    try {
      const mail = mailFrom({ subject: `${own.name} once` });
      await dovecot.append(mail.raw);
      await dovecot.append(mail.raw);
      await eventually(() => answersTo(mail.messageId).length >= 2, 20_000, 'the answers');
      const copies = async () => (await dovecot.messages()).filter((m) => m.messageId === mail.messageId);
      expect(await copies()).toHaveLength(2);
      // Each copy is marked seen once handled; then the sentinel shows that every answer to alice is out.
      await eventually(async () => (await copies()).every((m) => m.flags.includes('\\Seen')), 10_000, 'both copies seen');
      await sentinel();
      expect(await gw.jobCount(own.name)).toBe(1);
      expect(answersTo(mail.messageId)).toHaveLength(2);
    } finally {
      await own.stop();
    }
  });

  it('skips a 5 MB mail (its sender is told why, once) and a malformed one, and goes on', async () => {
    const big = mailFrom({ subject: 'web1 big', text: 'x'.repeat(5 * 1024 * 1024) });
    await dovecot.append(big.raw);
    await dovecot.append('this is not a mail at all\r\n\r\n\u0000\u0001');
    const next = mailFrom({ subject: 'web1 after-junk' });
    await dovecot.append(next.raw);
    await eventually(() => answersTo(next.messageId).length >= 2, 20_000, 'the mail after the junk answered');
    expect(answersTo(big.messageId).map((m) => m.text.includes('SKADI_EMAIL_MAX_SIZE'))).toEqual([true]);
    const messages = await dovecot.messages();
    expect(messages.map((m) => m.messageId)).toEqual(expect.arrayContaining([big.messageId, next.messageId]));
    expect(messages.length).toBeGreaterThanOrEqual(3); // the malformed one too
    expect(messages.filter((m) => !m.flags.includes('\\Seen'))).toEqual([]);
    expect(gw.output()).toContain('mail over SKADI_EMAIL_MAX_SIZE skipped');
  });

  it('reconnects after Dovecot restarts and handles the next mail', async () => {
    await dovecot.restart({ kill: true });
    const mail = mailFrom({ subject: 'web1 after-restart' });
    await dovecot.append(mail.raw);
    await eventually(() => answersTo(mail.messageId).length >= 2, 40_000, 'the answer after the IMAP restart');
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    expect(metrics).toMatch(/skadi_channel_up\{channel="email"\} 1/);
    expect(gw.output()).toContain('e-mail channel down');
  }, 60_000);

  it('retries a temporary SMTP failure', async () => {
    smtp.failNext(2, 451);
    const mail = mailFrom({ subject: 'web1 smtp-flaky' });
    await dovecot.append(mail.raw);
    await eventually(() => answersTo(mail.messageId).length >= 2, 30_000, 'the answers despite 451s');
  }, 40_000);

  it('a second node on the same mailbox: each mail gives exactly one job', async () => {
    const own = await gw.startAgent(async (job) => `output of ${job.message}`, 'both1');
    const mails = Array.from({ length: 6 }, (_, i) => mailFrom({ subject: `${own.name} both-${i}` }));
    try {
      const second = await startServe(gw.env);
      try {
        for (const mail of mails) await dovecot.append(mail.raw);
        for (const mail of mails) await eventually(() => answersTo(mail.messageId).length >= 2, 30_000, `the answers to ${mail.messageId}`);
      } finally {
        // A stopping node finishes the mail in hand first: once it is gone, it handles nothing more.
        await stopChild(second.child);
      }
      // The first node handles alice's sentinel after every mail it had taken up before it.
      await sentinel();
      expect(await gw.jobCount(own.name)).toBe(mails.length);
      expect(mails.map((mail) => answersTo(mail.messageId).length)).toEqual(mails.map(() => 2));
    } finally {
      await own.stop();
    }
  }, 60_000);

  it('a gateway killed after recording a mail but before marking it seen does not run it again after a restart', async () => {
    const name = await ownAgent();
    // The agent is not needed from here on; it would only poll a gateway that is gone.
    await agent.stop();
    const mail = mailFrom({ subject: `${name} killed-midway` });
    await dovecot.append(mail.raw);
    await eventually(async () => (await gw.jobCount(name)) === 1, 20_000, 'the job recorded');
    gw.child.kill('SIGKILL');
    await new Promise((r) => gw.child.once('exit', r));
    // Whether or not the flag got there before the kill, make the mail unseen again: the state of a kill just before it.
    const client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: dovecot.user, pass: dovecot.password },
      logger: false,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      await client.messageFlagsRemove({ header: { 'message-id': mail.messageId } }, ['\\Seen']);
    } finally {
      await client.logout().catch(() => client.close());
    }
    expect((await dovecot.messages()).find((m) => m.messageId === mail.messageId)?.flags).not.toContain('\\Seen');
    const restarted = await startServe(gw.env);
    try {
      await eventually(() => seen(mail.messageId), 20_000, 'the mail marked seen after the restart');
      // Marked seen once handled: the restarted node has handled it, and logged that it found it handled already.
      await eventually(
        () => restarted.output().includes('duplicate delivery ignored'),
        10_000,
        'the restarted node to find it handled already',
      );
      expect(await gw.jobCount(name)).toBe(1);
    } finally {
      await stopChild(restarted.child);
    }
  }, 60_000);
});
