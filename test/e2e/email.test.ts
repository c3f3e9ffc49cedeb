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
});

/** A mail from alice, DKIM-signed by her domain as the receiving server saw it, unless told otherwise. */
function mailFrom(options: { subject: string; text?: string; from?: string; messageId?: string; auth?: string[]; html?: string }): { raw: string; messageId: string } {
  const messageId = options.messageId ?? `<cmd-${++seq}-${Date.now()}@example.com>`;
  const from = options.from ?? ALICE;
  const auth = options.auth ?? [authResults(AUTHSERV, { dkim: 'pass', dkimDomain: from.split('@')[1], spf: 'pass', mailFrom: from })];
  return { raw: rawMail({ from, to: 'skadi@ops.example.net', subject: options.subject, text: options.text, html: options.html, messageId, authResults: auth }), messageId };
}

/** The answers to one command mail (by its Message-ID), in order. */
const answersTo = (messageId: string) => smtp.mails.filter((m) => m.inReplyTo === messageId);

async function jobCount(g: Gateway = gw): Promise<number> {
  return (await g.core.jobs.list(null, null, 10_000)).length;
}

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
    await new Promise((r) => setTimeout(r, 300));
    expect(answersTo(mail.messageId)).toHaveLength(2); // no intermediate statuses by mail
    await eventually(async () => (await dovecot.messages()).find((m) => m.messageId === mail.messageId)?.flags.includes('\\Seen'), 10_000, 'the mail marked seen');
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
    const before = await jobCount();
    const mail = mailFrom({ subject: 'web1 forged', auth });
    await dovecot.append(mail.raw);
    await eventually(async () => (await dovecot.messages()).find((m) => m.messageId === mail.messageId)?.flags.includes('\\Seen'), 15_000, 'the mail handled');
    await new Promise((r) => setTimeout(r, 300));
    expect(await jobCount()).toBe(before);
    expect(smtp.mails.filter((m) => m.inReplyTo === mail.messageId || m.to.includes(ALICE) && m.subject.includes('forged'))).toEqual([]);
  });

  it('answers an authenticated but unlinked sender with a refusal, and makes no job', async () => {
    const before = await jobCount();
    const mail = mailFrom({ subject: 'web1 uptime', from: 'mallory@example.com' });
    await dovecot.append(mail.raw);
    const [refusal] = await eventually(() => answersTo(mail.messageId).length >= 1 && answersTo(mail.messageId), 15_000, 'the refusal');
    expect(refusal.text).toContain('skadi identity link email:example.com:mallory@example.com --user <name>');
    expect(await jobCount()).toBe(before);
  });

  it('gives one job for the same Message-ID delivered twice', async () => {
    const before = await jobCount();
    const mail = mailFrom({ subject: 'web1 once' });
    await dovecot.append(mail.raw);
    await dovecot.append(mail.raw);
    await eventually(() => answersTo(mail.messageId).length >= 2, 20_000, 'the answers');
    await eventually(async () => (await dovecot.messages()).filter((m) => m.messageId === mail.messageId).every((m) => m.flags.includes('\\Seen')), 10_000, 'both copies seen');
    expect(await jobCount()).toBe(before + 1);
    expect(answersTo(mail.messageId)).toHaveLength(2);
  });

  it('skips a 5 MB mail (its sender is told why, once) and a malformed one, and goes on', async () => {
    const big = mailFrom({ subject: 'web1 big', text: 'x'.repeat(5 * 1024 * 1024) });
    await dovecot.append(big.raw);
    await dovecot.append('this is not a mail at all\r\n\r\n\u0000\u0001');
    const next = mailFrom({ subject: 'web1 after-junk' });
    await dovecot.append(next.raw);
    await eventually(() => answersTo(next.messageId).length >= 2, 20_000, 'the mail after the junk answered');
    expect(answersTo(big.messageId).map((m) => m.text.includes('SKADI_EMAIL_MAX_SIZE'))).toEqual([true]);
    expect((await dovecot.messages()).every((m) => m.flags.includes('\\Seen'))).toBe(true);
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
    const second = await startServe(gw.env);
    try {
      const before = await jobCount();
      const mails = Array.from({ length: 6 }, (_, i) => mailFrom({ subject: `web1 both-${i}` }));
      for (const mail of mails) await dovecot.append(mail.raw);
      for (const mail of mails) await eventually(() => answersTo(mail.messageId).length >= 2, 30_000, `the answers to ${mail.messageId}`);
      await new Promise((r) => setTimeout(r, 500));
      expect(await jobCount()).toBe(before + mails.length);
      for (const mail of mails) expect(answersTo(mail.messageId)).toHaveLength(2);
    } finally {
      await stopChild(second.child);
    }
  }, 60_000);

  it('a gateway killed after recording a mail but before marking it seen does not run it again after a restart', async () => {
    const before = await jobCount();
    // The agent is not needed from here on; it would only poll a gateway that is gone.
    await agent.stop();
    const mail = mailFrom({ subject: 'web1 killed-midway' });
    await dovecot.append(mail.raw);
    await eventually(async () => (await jobCount()) === before + 1, 20_000, 'the job recorded');
    gw.child.kill('SIGKILL');
    await new Promise((r) => gw.child.once('exit', r));
    // Whether or not the flag got there before the kill, make the mail unseen again: the state of a kill just before it.
    const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user: dovecot.user, pass: dovecot.password }, logger: false });
    await client.connect();
    await client.mailboxOpen('INBOX');
    await client.messageFlagsRemove({ header: { 'message-id': mail.messageId } }, ['\\Seen']);
    await client.logout();
    expect((await dovecot.messages()).find((m) => m.messageId === mail.messageId)?.flags).not.toContain('\\Seen');
    const restarted = await startServe(gw.env);
    try {
      await eventually(async () => (await dovecot.messages()).find((m) => m.messageId === mail.messageId)?.flags.includes('\\Seen'), 20_000, 'the mail marked seen after the restart');
      await new Promise((r) => setTimeout(r, 300));
      expect(await jobCount()).toBe(before + 1);
      expect(restarted.output()).toContain('duplicate delivery ignored');
    } finally {
      await stopChild(restarted.child);
    }
  }, 60_000);
});
