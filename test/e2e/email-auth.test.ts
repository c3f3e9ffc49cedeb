/**
 * E-mail sender authentication and replays, end to end: mail DKIM-signed in the test with a key made in the test,
 * passed through a border MX (mailauth verifying, as docs/email.md asks of the MX), delivered to a real Dovecot, read by a
 * real `skadi serve` on real MariaDB and Redis. What must not run is followed by a sentinel mail: once the sentinel
 * is answered, the mail before it has been handled.
 */
import crypto from 'node:crypto';
import { eventually } from '../helpers/env';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { borderMx, dkimKey, signMail, type BorderMx, type DkimKey } from '../helpers/border-mx';
import { rawMail } from '../helpers/mail';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink';
import { startGateway, type Gateway, type RunningAgent } from '../helpers/gateway';

const AUTHSERV = 'mx.skadi.test';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const DAY_MS = 24 * 3_600_000;
const run = dovecotAvailable() ? describe : describe.skip;

let dovecot: Dovecot;
let smtp: SmtpSink;
let gw: Gateway;
let agent: RunningAgent;
let mx: BorderMx;
let key: DkimKey;
let seq = 0;

/** A new Message-ID. */
const newMessageId = () => `<auth-${++seq}-${crypto.randomUUID()}@example.com>`;

/** An unsigned mail from alice (or `from`), dated `date`. */
function plainMail(
  subject: string,
  options: { from?: string; messageId?: string; date?: Date; authResults?: string[]; extraHeaders?: Record<string, string> } = {},
): string {
  return rawMail({
    from: options.from ?? ALICE,
    to: 'skadi@ops.example.net',
    subject,
    text: 'thanks\n',
    messageId: options.messageId ?? newMessageId(),
    date: options.date,
    authResults: options.authResults,
    extraHeaders: options.extraHeaders,
  });
}

/** The Message-ID of a raw mail (its first one). */
const messageIdOf = (raw: string) => /^Message-ID: (.*)$/im.exec(raw)![1].trim();

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The mail with the unused low bit of its signature's last base64 character flipped: other text, the same signature. */
function withRewrittenSignature(raw: string): string {
  const match = /( b=[A-Za-z0-9+/\r\n\t ]*?)([A-Za-z0-9+/])(==\r\n(?![ \t]))/.exec(raw);
  if (!match) throw new Error('no b= ending in == in the mail');
  const flipped = BASE64[BASE64.indexOf(match[2]) ^ 1];
  return raw.slice(0, match.index) + match[1] + flipped + match[3] + raw.slice(match.index + match[0].length);
}

/** The answers to one command mail (by its Message-ID), in order. */
const answersTo = (messageId: string) => smtp.mails.filter((m) => m.inReplyTo === messageId);

/** Jobs whose command is exactly `message`. */
async function jobsFor(message: string): Promise<number> {
  return (await gw.core.jobs.list(null, null, 10_000)).filter((j) => j.message === message).length;
}

/** Sends alice's signed sentinel through the MX and waits for both its answers: every mail before it has been handled. */
async function sentinel(): Promise<void> {
  const raw = await signMail(plainMail(`web1 sentinel-${++seq}`), key);
  await mx.deliver(raw, { mailFrom: ALICE });
  await eventually(() => answersTo(messageIdOf(raw)).length >= 2, 20_000, 'the sentinel answered').catch((err: Error) => {
    throw new Error(`${err.message}; the gateway's log ends:\n${gw.output().slice(-4000)}`);
  });
}

/** Asserts that a mail ran no job and got no answer (call after sentinel()). */
async function expectNotRun(raw: string, command: string, before: number): Promise<void> {
  expect(answersTo(messageIdOf(raw))).toEqual([]);
  expect(await jobsFor(command)).toBe(before);
}

beforeAll(async () => {
  if (!dovecotAvailable()) return;
  key = dkimKey('example.com');
  dovecot = await startDovecot();
  smtp = await startSmtpSink();
  gw = await startGateway({
    SKADI_EMAIL_IMAP_URL: dovecot.url,
    SKADI_EMAIL_SMTP_URL: smtp.url,
    SKADI_EMAIL_FROM: 'Skadi <skadi@ops.example.net>',
    SKADI_EMAIL_AUTHSERV_ID: AUTHSERV,
    SKADI_NOTIFY_PACE: '20ms',
  });
  await gw.core.identities.link(`email:example.com:${ALICE}`, 'ops', 'alice');
  await gw.core.identities.link(`email:example.com:${BOB}`, 'ops', 'bob');
  agent = await gw.startAgent(async (job) => `output of ${job.message}`);
  mx = borderMx(AUTHSERV, [key], dovecot);
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await gw?.stop();
  await smtp?.close();
  await dovecot?.stop();
}, 60_000);

run('e-mail sender authentication through a real DKIM chain', () => {
  it('runs a command from a mail signed with a real DKIM key and verified by the MX', async () => {
    const raw = await signMail(plainMail('web1 signed-uptime'), key);
    const delivered = await mx.deliver(raw, { mailFrom: ALICE });
    expect(delivered).toMatch(/^Received: [\s\S]*?\r\nAuthentication-Results: mx\.skadi\.test;\r\n dkim=pass header\.i=@example\.com/);
    const [, result] = await eventually(
      () => answersTo(messageIdOf(raw)).length >= 2 && answersTo(messageIdOf(raw)),
      20_000,
      'two answers',
    );
    expect(result.text).toContain('output of signed-uptime');
  });

  it('runs a signed mail once: a copy with a new Message-ID (not signed, as by OpenDKIM) is a replay', async () => {
    const original = await signMail(plainMail('web1 replayed-once'), key);
    await mx.deliver(original, { mailFrom: ALICE });
    await eventually(() => answersTo(messageIdOf(original)).length >= 2, 20_000, 'the original answered');
    const copy = original.replace(/^Message-ID: [^\r\n]*/im, `Message-ID: ${newMessageId()}`);
    const delivered = await mx.deliver(copy, { mailFrom: ALICE });
    expect(delivered).toMatch(/dkim=pass header\.i=@example\.com/); // the signature still verifies on the copy
    const rewritten = withRewrittenSignature(copy).replace(/^Message-ID: [^\r\n]*/im, `Message-ID: ${newMessageId()}`);
    expect(rewritten).not.toBe(copy);
    expect(await mx.deliver(rewritten, { mailFrom: ALICE })).toMatch(/dkim=pass header\.i=@example\.com/);
    await sentinel();
    await expectNotRun(copy, 'replayed-once', 1);
    await expectNotRun(rewritten, 'replayed-once', 1);
  });

  it.each([
    ['dated and signed 30 days ago', -30 * DAY_MS],
    ['dated and signed 25 hours ago', -25 * 3_600_000],
    ['dated and signed 3 days ahead', 3 * DAY_MS],
  ])('refuses a mail %s (its signature verifies, but a replay could not be told apart)', async (_what, offsetMs) => {
    const when = new Date(Date.now() + offsetMs);
    const command = `aged-${seq}`;
    const raw = await signMail(plainMail(`web1 ${command}`, { date: when }), key, { signTime: when });
    expect(await mx.deliver(raw, { mailFrom: ALICE })).toMatch(/dkim=pass header\.i=@example\.com/);
    await sentinel();
    await expectNotRun(raw, command, 0);
  });

  it("refuses a pass forged below the MX's own fail (an MX that does not strip incoming headers)", async () => {
    const forged = `${AUTHSERV}; dkim=pass header.d=example.com header.s=sel`;
    const raw = plainMail('web1 forged-below', { authResults: [forged] });
    const delivered = await mx.deliver(raw, { mailFrom: 'mallory@evil.example', strip: false });
    expect(delivered.indexOf('dkim=none')).toBeLessThan(delivered.indexOf(forged));
    await sentinel();
    await expectNotRun(raw, 'forged-below', 0);
  });

  it('strips incoming headers with its id as docs/email.md says, so the forged pass never reaches the mailbox', async () => {
    const raw = plainMail('web1 forged-stripped', { authResults: [`${AUTHSERV}; dkim=pass header.d=example.com`] });
    const delivered = await mx.deliver(raw, { mailFrom: 'mallory@evil.example' });
    expect(delivered).not.toContain('dkim=pass header.d=example.com');
    await sentinel();
    await expectNotRun(raw, 'forged-stripped', 0);
  });

  it.each([
    ['a trailing garbage token', `${AUTHSERV}; dkim=pass header.d=example.com header.s=sel garbage`],
    ['a pass inside a quoted reason', `${AUTHSERV}; dkim=fail reason="x; dkim=pass header.d=example.com"`],
    ['an unclosed comment', `${AUTHSERV}; dkim=pass header.d=example.com (unclosed`],
  ])('refuses a trusted header with %s (one a verifier kept as it could not parse it)', async (_what, header) => {
    const command = `malformed-${seq}`;
    const raw = `Received: from sender.example (sender.example [192.0.2.25]) by ${AUTHSERV} (Postfix) with ESMTP id 1; Tue, 1 Dec 2026 10:00:00 +0000\r\n${plainMail(`web1 ${command}`, { authResults: [header] })}`;
    await dovecot.append(raw);
    await sentinel();
    await expectNotRun(raw, command, 0);
  });

  it("refuses alice's signed mail with bob's From: put on top (the signature covers the bottom one)", async () => {
    const signed = await signMail(plainMail('web1 two-froms'), key);
    const raw = `From: ${BOB}\r\n${signed}`;
    expect(await mx.deliver(raw, { mailFrom: ALICE })).toMatch(/dkim=pass header\.i=@example\.com/);
    await sentinel();
    await expectNotRun(raw, 'two-froms', 0);
  });
});

/** Headers as Exchange Online writes them above a mail it received (no authserv-id in Authentication-Results). */
function exchangeOnline(authResults: string): string {
  return [
    'Received: from AM0PR01MB5678.eurprd01.prod.exchangelabs.com (2603:10a6:208:1::11) by AM0PR01MB1234.eurprd01.prod.exchangelabs.com with HTTPS; Tue, 1 Dec 2026 10:00:02 +0000',
    'Received: from mail-wr1-f54.example.com (209.85.221.54) by AM4PEPF00025F99.mail.protection.outlook.com (10.167.16.8) with Microsoft SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.8207.0 via Frontend Transport; Tue, 1 Dec 2026 10:00:01 +0000',
    `Authentication-Results: ${authResults}`,
    'Received-SPF: Pass (protection.outlook.com: domain of example.com designates 209.85.221.54 as permitted sender) receiver=protection.outlook.com; client-ip=209.85.221.54; helo=mail-wr1-f54.example.com; pr=C',
    '',
  ].join('\r\n');
}

const MS_PASS =
  'spf=pass (sender IP is 209.85.221.54) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100';
const MS_FAIL =
  'spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.com; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=example.com;compauth=fail reason=000';

run('e-mail from a Microsoft 365 mailbox (SKADI_EMAIL_AUTH_FORMAT=microsoft365)', () => {
  let msDovecot: Dovecot;
  let msGw: Gateway;
  let msAgent: RunningAgent;

  /** alice's mail, signed with the test key, as Exchange Online delivers it with these results. */
  const msMail = async (subject: string, results: string, below = '') =>
    exchangeOnline(results) + below + (await signMail(plainMail(subject), key));
  const msJobsFor = async (message: string) => (await msGw.core.jobs.list(null, null, 10_000)).filter((j) => j.message === message).length;
  const msSentinel = async () => {
    const raw = await msMail(`web1 ms-sentinel-${++seq}`, MS_PASS);
    await msDovecot.append(raw);
    await eventually(() => answersTo(messageIdOf(raw)).length >= 2, 20_000, 'the sentinel answered');
  };

  beforeAll(async () => {
    msDovecot = await startDovecot();
    msGw = await startGateway({
      SKADI_EMAIL_IMAP_URL: msDovecot.url,
      SKADI_EMAIL_SMTP_URL: smtp.url,
      SKADI_EMAIL_FROM: 'Skadi <skadi@ops.example.net>',
      SKADI_EMAIL_AUTH_FORMAT: 'microsoft365',
      SKADI_NOTIFY_PACE: '20ms',
    });
    await msGw.core.identities.link(`email:example.com:${ALICE}`, 'ops', 'alice');
    msAgent = await msGw.startAgent(async (job) => `output of ${job.message}`);
  }, 60_000);

  afterAll(async () => {
    await msAgent?.stop();
    await msGw?.stop();
    await msDovecot?.stop();
  }, 60_000);

  it('runs a command from a mail whose Exchange Online header passes, once: a copy with a new Message-ID is a replay', async () => {
    const raw = await msMail('web1 ms-uptime', MS_PASS);
    await msDovecot.append(raw);
    const [, result] = await eventually(
      () => answersTo(messageIdOf(raw)).length >= 2 && answersTo(messageIdOf(raw)),
      20_000,
      'two answers',
    );
    expect(result.text).toContain('output of ms-uptime');
    const copy = raw.replace(/^Message-ID: [^\r\n]*/im, `Message-ID: ${newMessageId()}`);
    await msDovecot.append(copy);
    await msSentinel();
    expect(answersTo(messageIdOf(copy))).toEqual([]);
    expect(await msJobsFor('ms-uptime')).toBe(1);
  });

  it('refuses its fail with a pass forged below it, and an RFC 8601 header a sender wrote', async () => {
    const forgedBelow = await msMail('web1 ms-forged', MS_FAIL, `Authentication-Results: ${MS_PASS}\r\n`);
    await msDovecot.append(forgedBelow);
    const rfcForm = await signMail(plainMail('web1 ms-rfc-form', { authResults: [`${AUTHSERV}; dkim=pass header.d=example.com`] }), key);
    await msDovecot.append(rfcForm);
    await msSentinel();
    expect(answersTo(messageIdOf(forgedBelow))).toEqual([]);
    expect(answersTo(messageIdOf(rfcForm))).toEqual([]);
    expect(await msJobsFor('ms-forged')).toBe(0);
    expect(await msJobsFor('ms-rfc-form')).toBe(0);
  });
});
