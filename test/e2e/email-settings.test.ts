/**
 * E-mail settings end to end: start-up refusals of settings that cannot work, a gateway whose mailbox is unreachable,
 * and one whose processed folder is missing.
 */
import { ImapFlow } from 'imapflow';
import { call } from '../helpers/http';
import { eventually } from '../helpers/env';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { startGateway, type Gateway } from '../helpers/gateway';
import { rawMail } from '../helpers/mail';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink';
import { skadi } from '../helpers/process';

const base = { SKADI_EMAIL_IMAP_URL: 'imap://skadi:imap-password-123@127.0.0.1:1', SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none' };

describe('e-mail settings', () => {
  it.each([
    ['SKADI_EMAIL_SMTP_URL', { SKADI_EMAIL_FROM: 'skadi@example.net', SKADI_EMAIL_AUTHSERV_ID: 'mx.example.net' }],
    ['SKADI_EMAIL_FROM', { SKADI_EMAIL_SMTP_URL: 'smtp://127.0.0.1:1', SKADI_EMAIL_AUTHSERV_ID: 'mx.example.net' }],
    ['SKADI_EMAIL_AUTHSERV_ID', { SKADI_EMAIL_SMTP_URL: 'smtp://127.0.0.1:1', SKADI_EMAIL_FROM: 'skadi@example.net' }],
  ])('refuses to start without %s, in one line naming it', (name, settings) => {
    const run = skadi(['serve'], { ...base, ...settings });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(name);
  });

  it('keeps serving the API while the mailbox is unreachable, reports the channel down, and never logs the passwords', async () => {
    let gw: Gateway | undefined;
    try {
      gw = await startGateway({
        SKADI_EMAIL_IMAP_URL: 'imap://skadi:imap-password-123@127.0.0.1:1',
        SKADI_EMAIL_SMTP_URL: 'smtp://skadi:smtp-password-456@127.0.0.1:1',
        SKADI_EMAIL_FROM: 'skadi@example.net',
        SKADI_EMAIL_REQUIRE: 'none',
      });
      expect((await call(gw.base, 'GET', '/readyz')).status).toBe(200);
      expect(await gw.push('uptime')).toMatch(/^[0-9A-Z]{26}$/);
      const metrics = await call(gw.base, 'GET', '/metrics');
      expect(String(metrics.body)).toMatch(/skadi_channel_up\{channel="email"\} 0/);
      await eventually(() => gw!.output().includes('IMAP: could not connect'), 10_000, 'the failed connection logged');
      expect(gw.output()).toContain('SKADI_EMAIL_REQUIRE=none: every From address is believed');
      expect(gw.output()).not.toMatch(/imap-password-123|smtp-password-456/);
    } finally {
      await gw?.stop();
    }
  });

  (dovecotAvailable() ? it : it.skip)(
    'with the processed folder missing: says so, reads no mail and stays down until the folder exists',
    async () => {
      let dovecot: Dovecot | undefined;
      let smtp: SmtpSink | undefined;
      let gw: Gateway | undefined;
      try {
        dovecot = await startDovecot();
        smtp = await startSmtpSink();
        const mail = rawMail({
          from: 'alice@example.com',
          to: 'skadi@ops.example.net',
          subject: 'web1 uptime',
          messageId: '<waiting@example.com>',
        });
        await dovecot.append(mail);
        gw = await startGateway({
          SKADI_EMAIL_IMAP_URL: dovecot.url,
          SKADI_EMAIL_SMTP_URL: smtp.url,
          SKADI_EMAIL_FROM: 'skadi@ops.example.net',
          SKADI_EMAIL_REQUIRE: 'none',
          SKADI_EMAIL_PROCESSED_FOLDER: 'Done',
        });
        await eventually(
          () => gw!.output().includes('SKADI_EMAIL_PROCESSED_FOLDER \\"Done\\" does not exist on the IMAP server'),
          15_000,
          'the missing folder reported',
        );
        expect(String((await call(gw.base, 'GET', '/metrics')).body)).toMatch(/skadi_channel_up\{channel="email"\} 0/);
        expect((await dovecot.messages()).map((m) => [m.messageId, m.flags])).toEqual([['<waiting@example.com>', []]]);
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
          await client.mailboxCreate('Done');
        } finally {
          await client.logout().catch(() => client.close());
        }
        // At the next reconnect the folder is there: the waiting mail is handled and moved.
        await eventually(
          async () => (await dovecot!.messages('Done')).some((m) => m.messageId === '<waiting@example.com>'),
          20_000,
          'the mail moved to Done',
        );
        expect(await dovecot.messages()).toEqual([]);
      } finally {
        await gw?.stop();
        await smtp?.close();
        await dovecot?.stop();
      }
    },
    60_000,
  );
});
