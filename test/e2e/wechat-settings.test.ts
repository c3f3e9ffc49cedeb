/** WeChat settings end to end: start-up refusals, and a gateway that starts before its puppet service is up. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { call } from '../helpers/http';
import { eventually } from '../helpers/env';
import { startFakeWechat, type FakeWechat, wechatUp } from '../helpers/fake-wechat';
import { startGateway, type Gateway } from '../helpers/gateway';
import { skadi } from '../helpers/process';

const noMysql = { SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none' };

describe('WeChat settings', () => {
  it('refuses to start a puppet service without its token, in one line naming the setting', () => {
    const run = skadi(['serve'], { ...noMysql, SKADI_WECHAT_PUPPET: 'wechaty-puppet-service' });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('SKADI_WECHAT_PUPPET_TOKEN');
  });

  it('refuses a puppet service token without the service name prefix, without printing the token', () => {
    const run = skadi(['serve'], {
      ...noMysql,
      SKADI_WECHAT_PUPPET: 'wechaty-puppet-service',
      SKADI_WECHAT_PUPPET_TOKEN: 'plainsecret0123456789',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('must start with the service');
    expect(run.stdout + run.stderr).not.toContain('plainsecret0123456789');
  });

  it('refuses a puppet package that is not installed, saying how to install it', () => {
    const run = skadi(['serve'], { ...noMysql, SKADI_WECHAT_PUPPET: 'wechaty-puppet-nosuch' });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('npm install wechaty-puppet-nosuch');
  });

  it('refuses an access mode WeChat does not have', () => {
    const run = skadi(['serve'], {
      ...noMysql,
      SKADI_WECHAT_PUPPET: 'wechaty-puppet-service',
      SKADI_WECHAT_PUPPET_TOKEN: 't',
      SKADI_WECHAT_ACCESS: 'workspace',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('closed or open');
  });

  it('serves the API while the puppet service is not up yet, logs in once it is, and never logs the token', async () => {
    // A port nothing listens on yet; the fake WeChat is started there later.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    let wechat: FakeWechat | undefined;
    let gw: Gateway | undefined;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-wechat-home-'));
    try {
      const token = `insecure_not-up-yet-${Date.now()}`;
      gw = await startGateway({
        HOME: home,
        SKADI_WECHAT_PUPPET: 'wechaty-puppet-service',
        SKADI_WECHAT_PUPPET_TOKEN: token,
        SKADI_WECHAT_PUPPET_ENDPOINT: `127.0.0.1:${port}`,
        SKADI_WECHAT_PUPPET_TLS: 'false',
      });
      expect((await call(gw.base, 'GET', '/readyz')).status).toBe(200);
      expect(await gw.push('uptime')).toMatch(/^[0-9A-Z]{26}$/);
      expect(await wechatUp(gw.base)).toBe(false);
      expect(gw.output()).toContain('SKADI_WECHAT_PUPPET_TLS=false');
      // wechaty alone would never try again after a start against a service that is down: the service comes up only
      // once the gateway has tried to start the puppet again.
      await eventually(() => gw!.output().includes('starting the WeChat puppet again'), 30_000, 'the gateway to try the puppet again');
      wechat = await startFakeWechat({ port, token });
      await eventually(() => wechatUp(gw!.base), 40_000, 'the WeChat channel up once the service is');
      await eventually(() => gw!.output().includes('WeChat bot logged in'), 5000, 'the login logged');
      expect(gw.output()).not.toContain(token);
    } finally {
      await gw?.stop();
      await wechat?.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  }, 90_000);
});
