/** Teams settings end to end: workspace access per tenant, start-up refusals of settings that cannot work, the Emulator mode. */
import { eventually } from '../helpers/env';
import { messageActivity, postActivity, startFakeTeams, TENANT, type FakeTeams } from '../helpers/fake-teams';
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
  const post = await eventually(() => teams.calls.find((c) => c.conversationId === activity.conversation.id && c.method === 'POST'), 15_000, `the answer to ${person}`);
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

  it('refuses to start with an app id but no password, in one line', () => {
    const run = skadi(['serve'], { SKADI_TEAMS_APP_ID: 'some-app', SKADI_TEAMS_TENANT_ID: TENANT, SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none' });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('SKADI_TEAMS_APP_PASSWORD');
  });

  it('refuses to start a single-tenant bot without its tenant id', () => {
    const run = skadi(['serve'], { SKADI_TEAMS_APP_ID: 'some-app', SKADI_TEAMS_APP_PASSWORD: 'secret', SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/none' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('SKADI_TEAMS_TENANT_ID');
  });

  it('Emulator mode accepts requests without a token and says so loudly at start', async () => {
    const gw = await gatewayWith({ SKADI_TEAMS_APP_ID: '', SKADI_TEAMS_APP_PASSWORD: '', SKADI_TEAMS_INSECURE_NO_AUTH: 'true' });
    expect(gw.output()).toContain('SKADI_TEAMS_INSECURE_NO_AUTH is on');
    await gw.core.identities.link(`teams:${TENANT}:aad-emu`, 'ops', 'emu');
    const activity = { ...messageActivity(teams, { text: 'status', from: 'aad-emu' }), channelId: 'emulator' };
    teams.requireToken = false;
    try {
      expect((await postActivity(gw.base, activity, null)).status).toBe(200);
      const post = await eventually(() => teams.calls.find((c) => c.conversationId === activity.conversation.id && c.method === 'POST' && String(c.body.text).includes('web1')), 15_000, 'the answer');
      expect(post.authorization).toBe('');
    } finally {
      teams.requireToken = true;
    }
  });
});
