/** E-mail floods and loops as pure functions: automatic mail, the headers of the gateway's own mail, fair order. */
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { isAutomatic, normalizeMail } from '../../adapters/email/inbound';
import { fairOrder } from '../../adapters/email/mailbox';
import { privateSubject } from '../../adapters/email';
import { emailConfigFrom, emailConfigProblem } from '../../adapters/email/config';
import { loadConfig } from '../../config';
import { answerMail, mailAddressOf } from '../../adapters/email/outbound';

const config = {
  from: 'Skadi <skadi@ops.example.net>',
  authservId: 'mx.ops.example.net',
  authFormat: 'rfc8601' as const,
  require: 'dkim' as const,
};
const signed = `Authentication-Results: mx.ops.example.net; dkim=pass header.d=example.com\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; t=${Math.floor(Date.now() / 1000)}; h=from:subject:date:in-reply-to:references; bh=AAAA; b=${'QUJD'.repeat(40)}`;
const parse = (headers: string[]) =>
  simpleParser(
    [signed, 'From: alice@example.com', 'Subject: web1 uptime', `Date: ${new Date().toUTCString()}`, ...headers, '', 'hello', ''].join(
      '\r\n',
    ),
  );

/** The raw mail nodemailer would send (headers and envelope), without a server. */
async function rendered(mail: ReturnType<typeof answerMail>): Promise<{ head: string; to: string[] }> {
  const info = await nodemailer.createTransport({ streamTransport: true, buffer: true }).sendMail(mail);
  return { head: info.message.toString().split('\r\n\r\n')[0], to: info.envelope.to as string[] };
}

describe('automatic mail', () => {
  it.each([
    ['Auto-Submitted: auto-replied'],
    ['X-Autoreply: yes'],
    ['X-Autorespond: vacation'],
    ['Precedence: auto_reply'],
    ['Precedence: bulk'],
    ['Return-Path: <>'],
    ['Return-Path: < >'],
  ])('is recognised by %s and never answered', async (header) => {
    const mail = await parse([header]);
    expect(isAutomatic(mail)).toBe(true);
    expect(normalizeMail(mail, config)).toEqual({ ignored: 'an automatic reply or bulk mail' });
  });

  it.each([['Auto-Submitted: no'], ['X-Autoreply: no'], ['Return-Path: <alice@example.com>'], ['Precedence: first-class']])(
    'is not claimed by %s',
    async (header) => {
      const mail = await parse([header]);
      expect(isAutomatic(mail)).toBe(false);
      expect('message' in normalizeMail(mail, config)).toBe(true);
    },
  );
});

describe("the gateway's own mail", () => {
  const ref = { a: 'alice@example.com', s: 'web1 uptime', m: '<m1@example.com>', r: [] };

  it('marks answers auto-replied and notices nobody asked for auto-generated, and asks Outlook not to answer either', async () => {
    const answer = await rendered(answerMail(ref, { text: 'done' }, config.from, 1000));
    expect(answer.head).toMatch(/^Auto-Submitted: auto-replied$/m);
    expect(answer.head).toMatch(/^X-Auto-Response-Suppress: All$/m);
    const notice = await rendered(answerMail({ ...ref, m: '' }, { text: 'agent offline' }, config.from, 1000, 'auto-generated'));
    expect(notice.head).toMatch(/^Auto-Submitted: auto-generated$/m);
    expect(notice.head).toMatch(/^X-Auto-Response-Suppress: All$/m);
  });

  it('sends to the one sender whose quoted local part holds a comma, not to the addresses inside it', async () => {
    const mail = await simpleParser(
      [
        signed,
        'From: "mallory@evil.example,alice"@example.com',
        'Subject: web1 uptime',
        `Date: ${new Date().toUTCString()}`,
        '',
        'x',
        '',
      ].join('\r\n'),
    );
    const verdict = normalizeMail(mail, config);
    if (!('message' in verdict)) throw new Error(JSON.stringify(verdict));
    const out = await rendered(answerMail(JSON.parse(verdict.message.replyTo), { text: 'no' }, config.from, 1000));
    expect(out.to).toEqual(['"mallory@evil.example,alice"@example.com']);
    expect(out.head).toMatch(/^To: "mallory@evil\.example,alice"@example\.com$/m);
    expect(out.head).toMatch(/^From: Skadi <skadi@ops\.example\.net>$/m);
  });

  it('reads the name and address of the From setting', () => {
    expect(mailAddressOf('Skadi <skadi@ops.example.net>')).toEqual({ name: 'Skadi', address: 'skadi@ops.example.net' });
    expect(mailAddressOf('"Skadi, ops" <skadi@ops.example.net>')).toEqual({ name: 'Skadi, ops', address: 'skadi@ops.example.net' });
    expect(mailAddressOf('skadi@ops.example.net')).toEqual({ name: '', address: 'skadi@ops.example.net' });
  });
});

describe('fair order of waiting mail', () => {
  it('takes one mail of each sender in turn, by uid within a sender', () => {
    const flood = Array.from({ length: 5 }, (_, i) => ({ uid: i + 1, sender: 'flood@example.com' }));
    const order = fairOrder([
      ...flood,
      { uid: 6, sender: 'alice@example.com' },
      { uid: 7, sender: 'bob@example.com' },
      { uid: 8, sender: 'alice@example.com' },
    ]);
    expect(order).toEqual([1, 6, 7, 2, 8, 3, 4, 5]);
    expect(fairOrder([])).toEqual([]);
  });
});

describe('the flood and TLS settings', () => {
  const email = {
    SKADI_EMAIL_IMAP_URL: 'imap://u:p@127.0.0.1:143',
    SKADI_EMAIL_SMTP_URL: 'smtp://127.0.0.1:25',
    SKADI_EMAIL_FROM: 'skadi@ops.example.net',
    SKADI_EMAIL_REQUIRE: 'none',
  };

  it('default to 30 commands per sender in 10 minutes and the system CAs only', () => {
    const adapter = emailConfigFrom(loadConfig({ env: email }));
    expect(adapter).toMatchObject({ senderLimit: 30, senderWindowMs: 600_000, tlsCaFile: '' });
    expect(emailConfigProblem(adapter)).toBeNull();
  });

  it('refuse a limit below one, and a CA file that cannot be read', () => {
    expect(() => loadConfig({ env: { ...email, SKADI_EMAIL_SENDER_LIMIT: '0' } })).toThrow(
      /email_sender_limit \(SKADI_EMAIL_SENDER_LIMIT\)/,
    );
    const adapter = emailConfigFrom(loadConfig({ env: { ...email, SKADI_EMAIL_TLS_CA: '/nonexistent/ca.pem' } }));
    expect(emailConfigProblem(adapter)).toMatch(/^SKADI_EMAIL_TLS_CA=\/nonexistent\/ca\.pem: the file cannot be read/);
  });
});

describe('private mail subjects', () => {
  it('never carry what the message quotes, such as a token', () => {
    const token = 'ska_0123456789abcdefghijklmnopqrstuvwx';
    expect(privateSubject(`Agent web1 created. Its token (shown only now): \`${token}\`\nPut it in …`)).toBe(
      'Skadi: Agent web1 created. Its token (shown only now): …',
    );
    expect(privateSubject(`New token of web1 (the old one stopped working): \`${token}\``)).not.toContain('ska_');
    expect(privateSubject('Your new user token: `sku_abc')).toBe('Skadi: Your new user token: …');
    expect(privateSubject('🔐 Approval needed: web1 to run x')).toBe('Skadi: 🔐 Approval needed: web1 to run x');
  });
});
