/**
 * E-mail over TLS with an internal CA: a real Dovecot offering STARTTLS and an SMTP sink offering STARTTLS, both with a
 * certificate of a CA that the system does not know; SKADI_EMAIL_TLS_CA makes the gateway trust it for both.
 */
import { eventually } from '../helpers/env';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot';
import { startGateway, type Gateway } from '../helpers/gateway';
import { rawMail } from '../helpers/mail';
import { skadi } from '../helpers/process';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink';
import { makeTestCa, type TestCa } from '../helpers/test-ca';
import fs from 'node:fs';

const run = dovecotAvailable() ? describe : describe.skip;

run('e-mail with an internal CA', () => {
  let ca: TestCa;
  let dovecot: Dovecot;
  let smtp: SmtpSink;
  let gw: Gateway | undefined;

  beforeAll(async () => {
    ca = makeTestCa();
    dovecot = await startDovecot({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
    smtp = await startSmtpSink({ tls: { key: fs.readFileSync(ca.keyFile, 'utf8'), cert: fs.readFileSync(ca.certFile, 'utf8') } });
  }, 60_000);

  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  afterAll(async () => {
    await smtp?.close();
    await dovecot?.stop();
    ca?.remove();
  });

  const settings = () => ({
    SKADI_EMAIL_IMAP_URL: dovecot.url,
    SKADI_EMAIL_SMTP_URL: smtp.url,
    SKADI_EMAIL_FROM: 'skadi@ops.example.net',
    SKADI_EMAIL_REQUIRE: 'none',
  });

  it('reads mail over IMAP STARTTLS and answers over SMTP STARTTLS, trusting SKADI_EMAIL_TLS_CA', async () => {
    gw = await startGateway({ ...settings(), SKADI_EMAIL_TLS_CA: ca.caFile });
    await gw.core.identities.link('email:example.com:alice@example.com', 'ops', 'alice');
    const messageId = '<tls-1@example.com>';
    await dovecot.append(rawMail({ from: 'alice@example.com', to: 'skadi@ops.example.net', subject: 'web1 uptime', messageId }));
    const ack = await eventually(() => smtp.mails.find((m) => m.inReplyTo === messageId), 20_000, 'the acknowledgement');
    expect(ack.text).toContain('web1: `uptime`');
    expect(gw.output()).not.toContain('unable to verify the first certificate');
  }, 40_000);

  it('refuses to start when SKADI_EMAIL_TLS_CA cannot be read, in one line naming it', () => {
    const result = skadi(['serve'], {
      ...settings(),
      SKADI_EMAIL_TLS_CA: '/nonexistent/ca.pem',
      SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none',
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('SKADI_EMAIL_TLS_CA');
  });
});
