/** E-mail settings end to end: start-up refusals of settings that cannot work, and a gateway whose mailbox is unreachable. */
import { call } from '../helpers/http';
import { eventually } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
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
});
