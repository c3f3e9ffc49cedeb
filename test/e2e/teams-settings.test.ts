/** Teams settings end to end: workspace access per tenant, start-up refusals of settings that cannot work, the Emulator mode. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { eventually } from '../helpers/env';
import { messageActivity, otherKey, postActivity, startFakeTeams, TENANT, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway } from '../helpers/gateway';
import { skadi } from '../helpers/process';

let teams: FakeTeams;
const gateways: Gateway[] = [];

beforeAll(async () => {
  teams = await startFakeTeams();
});
afterAll(async () => {
  for (const gw of gateways) await gw.stop();
  await teams?.close();
});

async function gatewayWith(settings: Record<string, string>): Promise<Gateway> {
  const gw = await startGateway({ ...teams.settings(), SKADI_NOTIFY_PACE: '20ms', ...settings });
  gateways.push(gw);
  return gw;
}

/** Sends `status` from a person of a tenant and returns the answer's text. */
async function statusAs(gw: Gateway, tenant: string, person: string, token = teams.token()): Promise<string> {
  const activity = messageActivity(teams, { text: 'status', from: person, tenant });
  expect((await postActivity(gw.base, activity, token)).status).toBe(200);
  const post = await eventually(
    () => teams.calls.find((c) => c.conversationId === activity.conversation.id && c.method === 'POST'),
    15_000,
    `the answer to ${person}`,
  );
  return String(post.body.text);
}

describe('Teams settings', () => {
  it('workspace: people of an allowed tenant act as its shared user; other tenants are refused', async () => {
    const gw = await gatewayWith({ SKADI_TEAMS_ACCESS: 'workspace', SKADI_TEAMS_ALLOWED_TENANTS: TENANT });
    expect(await statusAs(gw, TENANT, 'aad-ann')).toContain('You have no agents yet');
    expect(await statusAs(gw, 'other-tenant', 'aad-eve')).toContain('This workspace (other-tenant) is not allowed to use Skadi');
    const linked = (await gw.core.identities.list(null)).filter((i) => i.channel === 'teams');
    expect(linked.map((i) => `${i.tenant}:${i.externalId}`)).toEqual([`${TENANT}:aad-ann`]);
  });

  it('answers 503, not 401, while the signing keys cannot be fetched (OpenID metadata at a closed port), and creates nothing', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gw = await gatewayWith({ SKADI_TEAMS_OPENID_METADATA_URL: `http://127.0.0.1:${port}/openid` });
    const activity = messageActivity(teams, { text: 'status', from: 'keyless', tenant: TENANT });
    const answer = await postActivity(gw.base, activity, teams.token());
    expect(answer.status).toBe(503);
    // A forged token is still 401 once the keys can be had: the 503 is about the keys, not a softer refusal.
    const good = await gatewayWith({});
    expect(
      (
        await postActivity(
          good.base,
          messageActivity(teams, { text: 'status', from: 'forger', tenant: TENANT }),
          teams.token({}, { key: otherKey() }),
        )
      ).status,
    ).toBe(401);
    expect(teams.calls.some((c) => c.conversationId === activity.conversation.id)).toBe(false);
  });

  it('refuses to start with an app id but no password, in one line', () => {
    const run = skadi(['serve'], {
      SKADI_TEAMS_APP_ID: 'some-app',
      SKADI_TEAMS_TENANT_ID: TENANT,
      SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('SKADI_TEAMS_APP_PASSWORD');
  });

  it('refuses to start a single-tenant bot without its tenant id', () => {
    const run = skadi(['serve'], {
      SKADI_TEAMS_APP_ID: 'some-app',
      SKADI_TEAMS_APP_PASSWORD: 'secret',
      SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('SKADI_TEAMS_TENANT_ID');
  });

  it('refuses to start the Emulator mode beside app credentials, in one line, like other settings errors', () => {
    const env = { SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none', SKADI_TEAMS_INSECURE_NO_AUTH: 'true' };
    const missingPassword = skadi(['serve'], {
      SKADI_TEAMS_APP_ID: 'some-app',
      SKADI_TEAMS_TENANT_ID: TENANT,
      SKADI_MYSQL_URL: env.SKADI_MYSQL_URL,
    });
    for (const credentials of [
      { SKADI_TEAMS_APP_ID: 'some-app' },
      { SKADI_TEAMS_APP_ID: 'some-app', SKADI_TEAMS_APP_PASSWORD: 'secret', SKADI_TEAMS_TENANT_ID: TENANT },
    ]) {
      const run = skadi(['serve'], { ...env, ...credentials });
      expect(run.status).not.toBe(0);
      expect(run.status).toBe(missingPassword.status);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain('SKADI_TEAMS_INSECURE_NO_AUTH=true');
      expect(run.stderr).toContain('cannot be used with SKADI_TEAMS_APP_ID or SKADI_TEAMS_APP_PASSWORD');
      expect(run.stderr).not.toContain('secret');
    }
  });

  it('Emulator mode refuses Teams activities and answers to anywhere but loopback, and never calls them', async () => {
    const gw = await gatewayWith({ SKADI_TEAMS_APP_ID: '', SKADI_TEAMS_APP_PASSWORD: '', SKADI_TEAMS_INSECURE_NO_AUTH: 'true' });
    await gw.core.identities.link(`teams:${TENANT}:aad-emu2`, 'ops', 'emu2');
    // A receiver on this machine's own network address stands for an internal service the request names.
    const reached: string[] = [];
    const internal = http.createServer((req, res) => {
      reached.push(`${req.method} ${req.url}`);
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"x"}');
    });
    const address = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    await new Promise<void>((resolve) => internal.listen(0, address ?? '127.0.0.1', resolve));
    const internalUrl = `http://${address ?? '192.0.2.1'}:${(internal.address() as AddressInfo).port}/teams/`;
    teams.requireToken = false;
    try {
      const jobs = (await gw.core.jobs.list(null, null, 1000)).length;
      const asTeams: Record<string, any> = {
        ...messageActivity(teams, { text: 'web1 uptime', from: 'aad-emu2' }),
        serviceUrl: internalUrl,
      };
      const refused = await postActivity(gw.base, asTeams, null);
      expect(refused.status).toBe(401);
      expect(refused.body.message).toContain('channelId emulator');
      const teamsLoopback = await postActivity(gw.base, messageActivity(teams, { text: 'web1 uptime', from: 'aad-emu2' }), null);
      expect(teamsLoopback.status).toBe(401);
      const elsewhere = await postActivity(gw.base, { ...asTeams, channelId: 'emulator' }, null);
      expect(elsewhere.status).toBe(401);
      expect(elsewhere.body.message).toContain('loopback');
      // Each refusal is decided before anything is handed on (the 401 is the whole answer), so nothing of them is
      // under way; a later Emulator activity is answered, so the channel works and the counts below are not empty
      // for want of it.
      const sentinel = {
        ...messageActivity(teams, { text: 'status', from: 'aad-emu2' }),
        channelId: 'emulator',
        conversation: { id: 'a:emulator-sentinel', conversationType: 'personal', tenantId: TENANT },
      };
      expect((await postActivity(gw.base, sentinel, null)).status).toBe(200);
      await eventually(
        () => teams.calls.find((c) => c.conversationId === 'a:emulator-sentinel' && c.method === 'POST'),
        15_000,
        'the answer to the Emulator',
      );
      expect(reached).toEqual([]);
      expect(
        teams.calls.filter((c) => c.conversationId === asTeams.conversation.id && String(c.body.text ?? '').includes('uptime')),
      ).toEqual([]);
      expect((await gw.core.jobs.list(null, null, 1000)).length).toBe(jobs);
    } finally {
      teams.requireToken = true;
      await new Promise((resolve) => internal.close(resolve));
    }
  });

  it('Emulator mode accepts requests without a token and says so loudly at start', async () => {
    const gw = await gatewayWith({ SKADI_TEAMS_APP_ID: '', SKADI_TEAMS_APP_PASSWORD: '', SKADI_TEAMS_INSECURE_NO_AUTH: 'true' });
    expect(gw.output()).toContain('SKADI_TEAMS_INSECURE_NO_AUTH is on');
    await gw.core.identities.link(`teams:${TENANT}:aad-emu`, 'ops', 'emu');
    const activity: Record<string, any> = { ...messageActivity(teams, { text: 'status', from: 'aad-emu' }), channelId: 'emulator' };
    teams.requireToken = false;
    try {
      expect((await postActivity(gw.base, activity, null)).status).toBe(200);
      const post = await eventually(
        () =>
          teams.calls.find(
            (c) => c.conversationId === activity.conversation.id && c.method === 'POST' && String(c.body.text).includes('web1'),
          ),
        15_000,
        'the answer',
      );
      expect(post.authorization).toBe('');
    } finally {
      teams.requireToken = true;
    }
  });
});
