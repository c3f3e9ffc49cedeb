/** Proves the e-mail test harness: a private Dovecot (APPEND, listing, restart), the SMTP sink and the mail builder. */
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { authResults, rawMail } from '../helpers/mail';
import { borderMx, dkimKey, dropHeaders, signMail, stripPattern } from '../helpers/border-mx';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink';

const NO_DOVECOT = '/usr/sbin/dovecot is missing (apt-get install dovecot-imapd): the Dovecot tests are skipped';
const withDovecot = dovecotAvailable() ? describe : describe.skip;
if (!dovecotAvailable()) console.warn(`mail-harness: ${NO_DOVECOT}`);

/** Logs in with imapflow and out again; resolves true when that works. */
async function canLogin(d: Dovecot, pass = d.password): Promise<boolean> {
  const client = new ImapFlow({ host: d.host, port: d.port, secure: false, auth: { user: d.user, pass }, logger: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.logout();
    return true;
  } catch {
    client.close();
    return false;
  }
}

withDovecot(dovecotAvailable() ? 'Dovecot harness' : `Dovecot harness (${NO_DOVECOT})`, () => {
  let dovecot: Dovecot;
  let other: Dovecot;

  beforeAll(async () => {
    // Each start waits for its own server to take logins (or fails after its own timeout); whichever started is
    // kept, so that afterAll stops it even when the other failed.
    const [first, second] = await Promise.allSettled([startDovecot(), startDovecot({ users: { ops: 'pw1', alice: 'pw2' } })]);
    if (first.status === 'fulfilled') dovecot = first.value;
    if (second.status === 'fulfilled') other = second.value;
    for (const started of [first, second]) if (started.status === 'rejected') throw started.reason;
  });

  afterAll(async () => {
    await Promise.all([dovecot?.stop(), other?.stop()]);
  });

  it('is a Dovecot of its own on 127.0.0.1', async () => {
    expect(dovecot.url).toBe(`imap://skadi:secret@127.0.0.1:${dovecot.port}`);
    expect(other.port).not.toBe(dovecot.port);
    expect(other.dir).not.toBe(dovecot.dir);
    expect(await canLogin(dovecot)).toBe(true);
    expect(await canLogin(dovecot, 'wrong')).toBe(false);
    expect(dovecot.log()).toContain('starting up for imap');
  });

  it('lists an appended mail with its subject, Message-ID and flags', async () => {
    const auth = authResults('mx.example.net', { dkim: 'pass', dkimDomain: 'example.com', spf: 'pass', mailFrom: 'alice@example.com' });
    const raw = rawMail({
      from: 'alice@example.com',
      to: 'skadi@example.net',
      subject: 'web1 uptime',
      text: 'hi',
      messageId: '<h1@example.com>',
      authResults: [auth],
    });
    await dovecot.append(raw);
    const [mail] = await dovecot.messages();
    expect(mail).toMatchObject({ subject: 'web1 uptime', messageId: '<h1@example.com>' });
    expect(mail.uid).toBeGreaterThan(0);
    expect(mail.flags).not.toContain('\\Seen');
  });

  it('appends to another mailbox, creating it', async () => {
    await dovecot.append(rawMail({ from: 'a@example.com', to: 'b@example.com', subject: 'archived' }), 'Archive');
    expect((await dovecot.messages('Archive')).map((m) => m.subject)).toEqual(['archived']);
    expect(await dovecot.messages()).toHaveLength(1);
  });

  it('keeps the mail over a restart and accepts logins again', async () => {
    const port = dovecot.port;
    await dovecot.restart();
    expect(dovecot.port).toBe(port);
    expect(await canLogin(dovecot)).toBe(true);
    expect((await dovecot.messages()).map((m) => m.subject)).toEqual(['web1 uptime']);
  });

  it('serves the extra users of another instance', async () => {
    expect(other.user).toBe('ops');
    await other.append(rawMail({ from: 'a@example.com', to: 'ops@example.com', subject: 'for ops' }));
    expect((await other.messages()).map((m) => m.subject)).toEqual(['for ops']);
  });
});

describe('SMTP sink', () => {
  let sink: SmtpSink;
  let transport: nodemailer.Transporter;

  beforeAll(async () => {
    sink = await startSmtpSink();
    transport = nodemailer.createTransport(sink.url);
  });

  afterAll(async () => {
    transport?.close();
    await sink?.close();
  });

  it('parses what nodemailer sends', async () => {
    await transport.sendMail({
      from: 'Skadi <skadi@ops.example.net>',
      to: 'alice@example.com',
      subject: 'Re: web1 uptime',
      inReplyTo: '<h1@example.com>',
      references: ['<h0@example.com>', '<h1@example.com>'],
      text: 'up 3 days',
      html: '<p>up 3 days</p>',
    });
    expect(sink.mails).toHaveLength(1);
    expect(sink.mails[0]).toMatchObject({
      from: 'skadi@ops.example.net',
      to: ['alice@example.com'],
      subject: 'Re: web1 uptime',
      inReplyTo: '<h1@example.com>',
      references: ['<h0@example.com>', '<h1@example.com>'],
      text: 'up 3 days',
      html: '<p>up 3 days</p>',
    });
    expect(sink.mails[0].messageId).toMatch(/^<.+@.+>$/);
    expect(sink.mails[0].raw).toContain('Subject: Re: web1 uptime');
  });

  it('refuses the next mails with the code asked for, then accepts again', async () => {
    sink.failNext(2);
    const send = () => transport.sendMail({ from: 'skadi@ops.example.net', to: 'alice@example.com', subject: 'flaky', text: 'x' });
    await expect(send()).rejects.toMatchObject({ responseCode: 451 });
    await expect(send()).rejects.toMatchObject({ responseCode: 451 });
    await send();
    sink.failNext(1, 550);
    await expect(send()).rejects.toMatchObject({ responseCode: 550 });
    expect(sink.mails.map((m) => m.subject)).toEqual(['Re: web1 uptime', 'flaky']);
  });
});

describe('rawMail', () => {
  it('builds a multipart/alternative mail that the sink parses back', async () => {
    const sink = await startSmtpSink();
    const transport = nodemailer.createTransport(sink.url);
    try {
      const raw = rawMail({
        from: 'alice@example.com',
        to: ['skadi@example.net'],
        subject: 'Grüße',
        text: 'plain\nline 2',
        html: '<b>bold</b>',
        references: '<a@x>',
        inReplyTo: '<a@x>',
      });
      expect(raw).not.toMatch(/[^\r]\n/);
      await transport.sendMail({ envelope: { from: 'alice@example.com', to: ['skadi@example.net'] }, raw });
      expect(sink.mails[0]).toMatchObject({
        subject: 'Grüße',
        text: 'plain\nline 2',
        html: '<b>bold</b>',
        references: ['<a@x>'],
        inReplyTo: '<a@x>',
      });
    } finally {
      transport.close();
      await sink.close();
    }
  });

  it('writes Authentication-Results values', () => {
    expect(authResults('mx.example.net', { dkim: 'pass', dkimDomain: 'example.com', spf: 'pass', mailFrom: 'alice@example.com' })).toBe(
      'mx.example.net; dkim=pass header.d=example.com header.s=sel; spf=pass smtp.mailfrom=alice@example.com',
    );
    expect(authResults('mx.example.net', { dkim: 'none' })).toBe('mx.example.net; dkim=none');
    expect(authResults('mx.example.net', {})).toBe('mx.example.net; none');
  });
});

describe('border MX (mailauth)', () => {
  const mail = rawMail({ from: 'alice@example.com', to: 'skadi@ops.example.net', subject: 'web1 uptime', text: 'hi\n' });

  it('drops incoming Authentication-Results with its id as the header_checks line of docs/email.md does, folded ones too, and no others', () => {
    const raw = `Authentication-Results: mx.example.com; dkim=pass\r\nAuthentication-Results:\r\n\tmx.example.com;\r\n dkim=pass header.d=example.com\r\nAuthentication-Results: other.example.net; dkim=pass\r\n${mail}`;
    const kept = dropHeaders(raw, stripPattern('mx.example.com'));
    expect(kept).not.toContain('mx.example.com;');
    expect(kept).toContain('Authentication-Results: other.example.net; dkim=pass\r\nFrom: alice@example.com\r\n');
    expect(kept.slice(kept.indexOf('\r\n\r\n'))).toBe(mail.slice(mail.indexOf('\r\n\r\n')));
  });

  withDovecot('delivering', () => {
    let dovecot: Dovecot;
    beforeAll(async () => {
      dovecot = await startDovecot();
    });
    afterAll(async () => {
      await dovecot?.stop();
    });

    it('stamps dkim=pass on a mail signed with the test key, and no pass once its body or a signed header is changed', async () => {
      const key = dkimKey('example.com');
      const mx = borderMx('mx.example.com', [key], dovecot);
      const signed = await signMail(mail, key);
      expect(await mx.deliver(signed, { mailFrom: 'alice@example.com' })).toMatch(
        /^Received: [\s\S]*?\r\nAuthentication-Results: mx\.example\.com;\r\n dkim=pass header\.i=@example\.com header\.s=sel/,
      );
      expect(await mx.deliver(signed.replace('hi\r\n', 'rm -rf /\r\n'), { mailFrom: 'alice@example.com' })).toMatch(
        /Authentication-Results: mx\.example\.com;\r\n dkim=neutral \(body hash did not verify\)/,
      );
      expect(await mx.deliver(signed.replace('Subject: web1 uptime', 'Subject: web1 reboot'), { mailFrom: 'alice@example.com' })).toMatch(
        /Authentication-Results: mx\.example\.com;\r\n dkim=fail/,
      );
      expect(await dovecot.messages()).toHaveLength(3);
    });
  });
});
