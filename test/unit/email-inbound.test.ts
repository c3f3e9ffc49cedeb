/** E-mail inbound and outbound as pure functions: the command of a mail, its key, its normalized form, and the answers. */
import { simpleParser } from 'mailparser';
import { emailConfigProblem, type EmailAdapterConfig } from '../../adapters/email/config';
import { commandOf, firstCommandLine, mailKey, normalizeMail } from '../../adapters/email/inbound';
import { answerMail, renderBodies, replySubject, translateSmtpError } from '../../adapters/email/outbound';
import { decodeRef } from '../../adapters/email/reply-ref';
import { mailDate } from '../helpers/mail';

const config = {
  from: 'skadi@ops.example.net',
  authservId: 'mx.ops.example.net',
  authFormat: 'rfc8601' as const,
  require: 'dkim' as const,
};
/** A mail of these headers (dated now unless they have a Date:). */
const raw = (headers: string[], body = 'hello\r\n') => {
  const dated = headers.some((h) => /^date:/i.test(h)) ? headers : [...headers, `Date: ${mailDate(new Date())}`];
  return [...dated, 'Content-Type: text/plain; charset=utf-8', '', body].join('\r\n');
};
const signed = `Authentication-Results: mx.ops.example.net; dkim=pass header.d=example.com\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; t=${Math.floor(Date.now() / 1000)}; h=from:subject:date:in-reply-to:references; bh=AAAA; b=${'QUJD'.repeat(40)}`;

describe('the command of a mail', () => {
  it('is the subject, else the first unquoted line before the signature', () => {
    expect(commandOf('web1 uptime', 'ignored')).toBe('web1 uptime');
    expect(commandOf('', '\n> web1 rm -rf /\n  web1 df -h \nmore')).toBe('web1 df -h');
    expect(commandOf('SKADI', 'web1 ps')).toBe('web1 ps');
    expect(commandOf('Re: web1 uptime', 'web1 free -m\n\nOn Monday Skadi wrote:\n> ✅ web1')).toBe('web1 free -m');
    expect(firstCommandLine('-- \nweb1 reboot')).toBe('');
    expect(firstCommandLine('\n\n--\nweb1 reboot')).toBe('');
  });
});

describe('normalizeMail', () => {
  it('normalizes an authenticated mail: tenant the domain, sender the address, private, threaded reply address', async () => {
    const mail = await simpleParser(
      raw([
        signed,
        'From: Alice <Alice@Example.com>',
        'To: skadi@ops.example.net',
        'Subject: web1 uptime',
        'Message-ID: <m1@example.com>',
        'References: <a@x> <b@x>',
      ]),
    );
    const verdict = normalizeMail(mail, config);
    if (!('message' in verdict)) throw new Error(JSON.stringify(verdict));
    expect(verdict.message).toMatchObject({
      channel: 'email',
      tenant: 'example.com',
      senderId: 'alice@example.com',
      senderName: 'Alice',
      text: 'web1 uptime',
      isPrivate: true,
    });
    expect(decodeRef(verdict.message.replyTo)).toEqual({
      a: 'alice@example.com',
      s: 'web1 uptime',
      m: '<m1@example.com>',
      r: ['<a@x>', '<b@x>'],
    });
    expect(verdict.message.messageId).toMatch(/^mid:[0-9a-f]{40}$/);
  });

  it('refuses a mail without trusted authentication, and ignores its own, automatic and empty mail', async () => {
    const forged = await simpleParser(
      raw(['Authentication-Results: mx.evil.example; dkim=pass header.d=example.com', 'From: alice@example.com', 'Subject: web1 x']),
    );
    expect(normalizeMail(forged, config)).toHaveProperty('refused');
    const own = await simpleParser(raw([signed, 'From: skadi@ops.example.net', 'Subject: web1 x']));
    expect(normalizeMail(own, config)).toHaveProperty('ignored');
    const auto = await simpleParser(raw([signed, 'From: alice@example.com', 'Auto-Submitted: auto-replied', 'Subject: web1 x']));
    expect(normalizeMail(auto, config)).toHaveProperty('ignored');
    const empty = await simpleParser(raw([signed, 'From: alice@example.com', 'Subject: '], '\r\n> quoted only\r\n'));
    expect(normalizeMail(empty, config)).toHaveProperty('ignored');
  });

  it('refuses a mail with two From: headers or two From addresses (verifiers and parsers may read different ones)', async () => {
    const twoHeaders = await simpleParser(raw([signed, 'From: alice@example.com', 'From: mallory@evil.example', 'Subject: web1 x']));
    expect(normalizeMail(twoHeaders, config)).toEqual({ refused: 'more than one From: header' });
    const twoAddresses = await simpleParser(raw([signed, 'From: alice@example.com, mallory@evil.example', 'Subject: web1 x']));
    expect(normalizeMail(twoAddresses, config)).toEqual({ refused: 'more than one From address' });
  });

  it('reads an HTML-only mail as text', async () => {
    const mail = await simpleParser(
      [
        signed,
        'From: alice@example.com',
        'Subject: skadi',
        `Date: ${mailDate(new Date())}`,
        'Content-Type: text/html',
        '',
        '<p>web1 uptime</p><p>thanks</p>',
      ].join('\r\n'),
    );
    const verdict = normalizeMail(mail, config);
    expect('message' in verdict && verdict.message.text).toBe('web1 uptime');
  });

  it('keys a mail by its Message-ID, or by its headers when it has none', async () => {
    const a = await simpleParser(raw(['From: a@example.com', 'Subject: x', 'Message-ID: <same@x>']));
    const b = await simpleParser(raw(['From: b@example.com', 'Subject: y', 'Message-ID: <same@x>']));
    expect(mailKey(a)).toBe(mailKey(b));
    const c = await simpleParser(raw(['From: a@example.com', 'Subject: x', 'Date: Sun, 29 Nov 2026 06:00:00 +0000']));
    const d = await simpleParser(raw(['From: a@example.com', 'Subject: x', 'Date: Sun, 29 Nov 2026 06:00:01 +0000']));
    expect(mailKey(c)).toMatch(/^hdr:/);
    expect(mailKey(c)).not.toBe(mailKey(d));
  });
});

describe('settings', () => {
  it("need an authserv-id for RFC 8601 headers, none for Microsoft 365's", () => {
    const settings = {
      imapUrl: 'imap://x@h',
      smtpUrl: 'smtp://h',
      from: 'skadi@ops.example.net',
      authservId: '',
      require: 'dkim',
    } as EmailAdapterConfig;
    expect(emailConfigProblem({ ...settings, authFormat: 'rfc8601' })).toContain('SKADI_EMAIL_AUTHSERV_ID');
    expect(emailConfigProblem({ ...settings, authFormat: 'microsoft365' })).toBeNull();
  });
});

describe('answers', () => {
  it('are threaded replies with their own Message-ID on the From domain', () => {
    const mail = answerMail(
      { a: 'alice@example.com', s: 'web1 uptime', m: '<m1@example.com>', r: ['<a@x>'] },
      { text: '✅ done' },
      'Skadi <skadi@ops.example.net>',
      1000,
    );
    expect(mail).toMatchObject({
      to: { name: '', address: 'alice@example.com' },
      subject: 'Re: web1 uptime',
      inReplyTo: '<m1@example.com>',
      references: ['<a@x>', '<m1@example.com>'],
    });
    expect(mail.messageId).toMatch(/^<[0-9a-f-]{36}@ops\.example\.net>$/);
    expect(replySubject('RE: x')).toBe('RE: x');
  });

  it('cut the output to its tail, with a note, in the text and in an escaped <pre>', () => {
    const bodies = renderBodies({ text: 'result', code: `${'a'.repeat(50)}<script>é` }, 20);
    expect(bodies.text).toContain('Output cut: the last 20 of 60 bytes are shown.');
    expect(bodies.html).toContain('&lt;script&gt;é</pre>');
    expect(bodies.html).not.toContain('<script>');
  });

  it('translate SMTP failures: 4xx passing, 5xx final', () => {
    expect(translateSmtpError({ responseCode: 451, message: 'try later' }).retryable).toBe(true);
    expect(translateSmtpError({ responseCode: 550, message: 'no such user' }).code).toBe('invalid');
    expect(translateSmtpError({ responseCode: 535, message: 'bad login' }).code).toBe('unauthorized');
    expect(translateSmtpError(new Error('connect ECONNREFUSED')).retryable).toBe(true);
  });
});
