/**
 * E-mail floods, loops and retries end to end: a real Dovecot mailbox, a real `skadi serve` and SDK agent, and an
 * in-process SMTP sink that captures (or, for a while, refuses) the gateway's mail.
 */
import { ImapFlow } from 'imapflow';
import { Agent } from '../../agent/sdk';
import { eventually } from '../helpers/env';
import { call } from '../helpers/http';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { startGateway, type Gateway } from '../helpers/gateway';
import { authResults, rawMail } from '../helpers/mail';
import { startServe, stopChild } from '../helpers/process';
import { startSmtpSink, type SmtpSink, type SinkMail } from '../helpers/smtp-sink';

const AUTHSERV = 'mx.skadi.test';
const ALICE = 'alice@example.com';
const MALLORY = 'mallory@example.com';
const SENDER_LIMIT = 20;
const FLOOD = 30;
const run = dovecotAvailable() ? describe : describe.skip;

let dovecot: Dovecot;
let smtp: SmtpSink;
let gw: Gateway;
/** The gateway node in use (the one startGateway started, until the flood test replaces it). */
let node: { child: import('node:child_process').ChildProcess; port: number; output: () => string };
let agent: { stop(): Promise<void> } | null = null;
let seq = 0;

/** A mail authenticated for its From domain (DKIM and SPF pass, as the receiving server saw it) unless told otherwise. */
function mailFrom(options: { subject: string; from?: string; text?: string; auth?: string[]; headers?: Record<string, string> }): {
  raw: string;
  messageId: string;
} {
  const messageId = `<flood-${++seq}-${Date.now()}@example.com>`;
  const from = options.from ?? ALICE;
  const domain = from.split('@')[1].replace(/>$/, '');
  const auth = options.auth ?? [authResults(AUTHSERV, { dkim: 'pass', dkimDomain: domain, spf: 'pass', mailFrom: from })];
  const raw = rawMail({
    from,
    to: 'skadi@ops.example.net',
    subject: options.subject,
    text: options.text ?? 'sent by a test\n',
    messageId,
    authResults: auth,
    extraHeaders: options.headers,
  });
  return { raw, messageId };
}

const answersTo = (messageId: string): SinkMail[] => smtp.mails.filter((m) => m.inReplyTo === messageId);
const mailsTo = (address: string): SinkMail[] => smtp.mails.filter((m) => m.to.includes(address));
const headerOf = (mail: SinkMail, name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(mail.raw.split('\r\n\r\n')[0])?.[1]?.trim();

/** Creates a folder of the test mailbox. */
async function createFolder(path: string): Promise<void> {
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
    await client.mailboxCreate(path);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Jobs of the test user whose message is `text`. */
async function jobsWith(text: string): Promise<number> {
  return (await gw.core.jobs.list(null, null, 10_000)).filter((j) => j.message === text).length;
}

/** Starts the SDK agent of web1 on the current node. */
async function startAgent(): Promise<void> {
  const sdk = new Agent({ server: `http://127.0.0.1:${node.port}`, token: gw.agentToken });
  const loop = sdk.start(async (job) => `output of ${job.message}`);
  agent = { stop: async () => (await sdk.stop(), await loop) };
  await eventually(() => gw.core.agents.isOnline(gw.agentId), 10_000, 'the agent to poll');
}

beforeAll(async () => {
  if (!dovecotAvailable()) return;
  dovecot = await startDovecot();
  smtp = await startSmtpSink();
  await createFolder('Done');
  gw = await startGateway({
    SKADI_EMAIL_IMAP_URL: dovecot.url,
    SKADI_EMAIL_SMTP_URL: smtp.url,
    SKADI_EMAIL_FROM: 'Skadi <skadi@ops.example.net>',
    SKADI_EMAIL_AUTHSERV_ID: AUTHSERV,
    SKADI_EMAIL_PROCESSED_FOLDER: 'Done',
    SKADI_EMAIL_SENDER_LIMIT: String(SENDER_LIMIT),
    SKADI_EMAIL_MAX_SIZE: '64kb',
    SKADI_NOTIFY_PACE: '20ms',
    SKADI_NOTIFY_RETRY_BASE: '200ms',
  });
  node = { child: gw.child, port: gw.port, output: gw.output };
  await gw.core.identities.link(`email:example.com:${ALICE}`, 'ops', 'alice');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  if (node) await stopChild(node.child);
  await gw?.stop();
  await smtp?.close();
  await dovecot?.stop();
}, 60_000);

run('e-mail floods, loops and retries', () => {
  it(`a flood of ${FLOOD} mails from an unlinked sender: one refusal, one limit notice, and a linked sender is served second`, async () => {
    // The flood waits in the mailbox while no gateway runs, then a linked sender's command arrives behind it.
    await stopChild(node.child);
    const flood = Array.from({ length: FLOOD }, (_, i) => mailFrom({ subject: `web1 flood-${i}`, from: MALLORY }));
    for (const mail of flood) await dovecot.append(mail.raw);
    const command = mailFrom({ subject: 'web1 behind-the-flood' });
    await dovecot.append(command.raw);

    const started = await startServe(gw.env);
    node = started;
    await eventually(() => answersTo(command.messageId).length >= 1, 20_000, "the linked sender's acknowledgement");
    const done = await eventually(
      async () => {
        const moved = await dovecot.messages('Done');
        return moved.length === FLOOD + 1 && moved;
      },
      30_000,
      'every mail handled and moved',
    );

    // Handled one sender after the other: the linked sender's mail came second, not after the flood.
    expect(done.map((m) => m.messageId).indexOf(command.messageId)).toBeLessThanOrEqual(1);
    const toMallory = mailsTo(MALLORY);
    expect(toMallory.filter((m) => m.text.includes('You are not linked to a Skadi user yet'))).toHaveLength(1);
    expect(toMallory.filter((m) => m.text.includes(`more than ${SENDER_LIMIT} commands`))).toHaveLength(1);
    expect(toMallory).toHaveLength(2);
    expect(node.output().match(/mail over SKADI_EMAIL_SENDER_LIMIT not run/g)).toHaveLength(FLOOD - SENDER_LIMIT);
    expect(await jobsWith('behind-the-flood')).toBe(1);
    await startAgent();
  }, 90_000);

  it('answers neither an X-Autoreply auto-responder nor a bounce from the null sender, and logs a forged mail by its headers', async () => {
    const autoreply = mailFrom({ subject: 'web1 out of office', headers: { 'X-Autoreply': 'yes' } });
    const bounce = mailFrom({
      subject: 'Undelivered Mail Returned to Sender',
      from: 'MAILER-DAEMON@example.com',
      headers: { 'Return-Path': '<>' },
    });
    const forged = mailFrom({
      subject: 'web1 forged-small',
      from: 'eve@example.com',
      auth: [authResults(AUTHSERV, { dkim: 'fail', dkimDomain: 'example.com' })],
    });
    const sentinel = mailFrom({ subject: 'web1 sentinel' });
    for (const mail of [autoreply, bounce, forged, sentinel]) await dovecot.append(mail.raw);
    // Mail is handled one at a time, each other sender's in the first round: once the sentinel is answered, all were handled.
    await eventually(() => answersTo(sentinel.messageId).length >= 2, 20_000, 'the answers to the sentinel');
    expect(answersTo(autoreply.messageId)).toEqual([]);
    expect(answersTo(bounce.messageId)).toEqual([]);
    expect(mailsTo('mailer-daemon@example.com')).toEqual([]);
    expect(await jobsWith('out of office')).toBe(0);
    // A refused mail is logged by what it claims, not only by its uid; its sender is never answered.
    expect(mailsTo('eve@example.com')).toEqual([]);
    const refused = node
      .output()
      .split('\n')
      .find((line) => line.includes('unauthenticated sender refused') && line.includes(forged.messageId));
    expect(refused).toContain('"subject":"web1 forged-small"');
    expect(refused).toContain('"from":"eve@example.com"');
  }, 40_000);

  it('marks answers auto-replied and unrequested notices auto-generated, both with X-Auto-Response-Suppress', async () => {
    const command = mailFrom({ subject: 'web1 headers' });
    await dovecot.append(command.raw);
    const answers = await eventually(() => answersTo(command.messageId).length >= 2 && answersTo(command.messageId), 20_000, 'two answers');
    for (const answer of answers) {
      expect(headerOf(answer, 'Auto-Submitted')).toBe('auto-replied');
      expect(headerOf(answer, 'X-Auto-Response-Suppress')).toBe('All');
    }
    // A job pushed through the API is reported to its owner privately: a notice nobody asked for by mail.
    const before = mailsTo(ALICE).length;
    const pushed = await call(`http://127.0.0.1:${node.port}`, 'POST', '/job/add', {
      token: gw.userToken,
      body: { message: 'web1 api-job' },
    });
    const id: string = pushed.body.id;
    const notice = await eventually(
      () =>
        mailsTo(ALICE)
          .slice(before)
          .find((m) => m.text.includes(id)),
      20_000,
      'the private notice',
    );
    expect(notice.inReplyTo).toBeUndefined();
    expect(headerOf(notice, 'Auto-Submitted')).toBe('auto-generated');
    expect(headerOf(notice, 'X-Auto-Response-Suppress')).toBe('All');
  }, 40_000);

  it('a command whose acknowledgement meets SMTP 451s is still run once and answered', async () => {
    smtp.failNext(6, 451); // more than the acknowledgement's attempts
    const command = mailFrom({ subject: 'web1 smtp-down' });
    await dovecot.append(command.raw);
    const result = await eventually(
      () => answersTo(command.messageId).find((m) => m.text.includes('succeeded')),
      40_000,
      'the result despite the 451s',
    );
    expect(result.text).toContain('output of smtp-down');
    expect(await jobsWith('smtp-down')).toBe(1);
    expect((await dovecot.messages('Done')).filter((m) => m.messageId === command.messageId)).toHaveLength(1);
  }, 60_000);

  it('an oversized mail is logged by From, Message-ID and Subject; only an authenticated sender is told why it was not run', async () => {
    const forged = mailFrom({
      subject: 'web1 big-forged',
      text: 'x'.repeat(100_000),
      auth: [authResults(AUTHSERV, { dkim: 'fail', dkimDomain: 'example.com' })],
    });
    const big = mailFrom({ subject: 'web1 big', text: 'y'.repeat(100_000) });
    await dovecot.append(forged.raw);
    await dovecot.append(big.raw);
    const [answer] = await eventually(
      () => answersTo(big.messageId).length >= 1 && answersTo(big.messageId),
      20_000,
      'the answer to the oversized mail',
    );
    expect(answer.text).toContain('SKADI_EMAIL_MAX_SIZE');
    expect(answer.text).toContain('was not run');
    expect(answersTo(forged.messageId)).toEqual([]);
    expect(await jobsWith('big')).toBe(0);
    const logged = node
      .output()
      .split('\n')
      .find((line) => line.includes('mail over SKADI_EMAIL_MAX_SIZE skipped') && line.includes(big.messageId));
    expect(logged).toContain('"subject":"web1 big"');
    expect(logged).toContain(`"from":"${ALICE}"`);
  }, 40_000);
});
