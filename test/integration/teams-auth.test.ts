// The Teams adapter's authentication in-process, against the local fake of the Microsoft side: which tokens count,
// which failures are the sender's (401) and which are ours (signing keys unreachable: 503), and the Emulator mode's
// limits. The end-to-end files drive the same through the gateway's /api/messages.
import net from 'node:net';
import { AuthenticationError } from 'botframework-connector';
import type { Activity } from 'botbuilder';
import { loadConfig } from '../../config';
import {
  authOutcomes,
  createTeamsAuthentication,
  emulatorRefusal,
  isLoopbackServiceUrl,
  msalClient,
  type AuthOutcome,
} from '../../adapters/teams/auth';
import { teamsConfigFrom, type TeamsAdapterConfig } from '../../adapters/teams/config';
import { APP_ID, TENANT, messageActivity, otherKey, startFakeTeams, type FakeTeams } from '../helpers/fake-teams';

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Teams authentication', () => {
  let fake: FakeTeams;
  let config: TeamsAdapterConfig;

  beforeAll(async () => {
    fake = await startFakeTeams();
    config = teamsConfigFrom(loadConfig({ env: fake.settings() }));
  });
  afterAll(() => fake.close());

  /** Authenticates an activity with a header; resolves with botbuilder's result or the error, and the outcome. */
  async function authenticate(
    header: string,
    activity: Record<string, unknown> = messageActivity(fake, { text: 'web1 uptime' }),
    settings = config,
  ) {
    const outcome: AuthOutcome = {};
    const auth = createTeamsAuthentication(settings);
    try {
      const result = await authOutcomes.run(outcome, () => auth.authenticateRequest(activity as unknown as Activity, header));
      return { result, outcome };
    } catch (err) {
      return { err: err as AuthenticationError, outcome };
    }
  }

  it("accepts a token signed by the Bot Framework key, for this app, for the activity's service URL", async () => {
    const { result, err, outcome } = await authenticate(`Bearer ${fake.token()}`);
    expect(err).toBeUndefined();
    expect(outcome).toEqual({});
    expect(result!.claimsIdentity.isAuthenticated).toBe(true);
    expect(result!.claimsIdentity.getClaimValue('aud')).toBe(APP_ID);
  });

  it.each([
    ['signed with another key', () => fake.token({}, { key: otherKey() })],
    ['for another app', () => fake.token({ aud: '00000000-aaaa-4bbb-8ccc-000000000999' })],
    ['from another issuer', () => fake.token({ iss: 'https://evil.example.com' })],
    [
      'expired',
      () =>
        fake.token({
          exp: Math.floor(Date.now() / 1000) - 600,
          nbf: Math.floor(Date.now() / 1000) - 7200,
          iat: Math.floor(Date.now() / 1000) - 7200,
        }),
    ],
    ['not yet valid', () => fake.token({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ['for another service URL', () => fake.token({ serviceurl: 'https://evil.example.com/teams/' })],
    ['with an unknown key id', () => fake.token({}, { kid: 'no-such-key' })],
  ])("refuses a token %s as the sender's fault (401)", async (_what, token) => {
    const { result, err, outcome } = await authenticate(`Bearer ${token()}`);
    expect(result).toBeUndefined();
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err!.statusCode).toBe(401);
    expect(outcome.unavailable).toBeUndefined();
    expect(outcome.refused).toEqual(expect.any(String));
  });

  it('refuses a missing or malformed header (401)', async () => {
    for (const header of ['', 'Bearer', 'Bearer not.a.jwt', `Basic ${fake.token()}`]) {
      const { result, err, outcome } = await authenticate(header);
      expect({ header, ok: result !== undefined, status: err?.statusCode, unavailable: outcome.unavailable }).toEqual({
        header,
        ok: false,
        status: 401,
        unavailable: undefined,
      });
    }
  });

  it("reports unreachable signing keys as unavailable (503), not as the sender's fault", async () => {
    const port = await deadPort();
    const settings = { ...config, openIdMetadataUrl: `http://127.0.0.1:${port}/v1/.well-known/openidconfiguration` };
    const { result, err, outcome } = await authenticate(`Bearer ${fake.token()}`, undefined, settings);
    expect(result).toBeUndefined();
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(outcome.refused).toBeUndefined();
    expect(outcome.unavailable).toEqual(expect.any(String));
  });

  it("gets outbound tokens from the bot's own tenant, or botframework.com for a multi-tenant bot", async () => {
    const scopes = ['https://api.botframework.com/.default'];
    const single = await msalClient(config).acquireTokenByClientCredential({ scopes });
    expect(fake.issuedTokens).toContain(single?.accessToken);
    const refusedBefore = fake.refusedTokenRequests;
    // The fake hands tokens out only at /<TENANT>/…: a multi-tenant bot asks at /botframework.com/… and is refused there.
    await expect(msalClient({ ...config, appType: 'MultiTenant' }).acquireTokenByClientCredential({ scopes })).rejects.toThrow();
    expect(fake.refusedTokenRequests).toBe(refusedBefore + 1);
    await expect(msalClient({ ...config, appPassword: 'wrong' }).acquireTokenByClientCredential({ scopes })).rejects.toThrow();
    expect(fake.refusedTokenRequests).toBe(refusedBefore + 2);
    expect(config.tenantId).toBe(TENANT);
  });

  it('answers a verified activity through the Bot Connector with a token of the app, got from the configured login', async () => {
    const activity = messageActivity(fake, { text: 'web1 uptime' });
    const { result, err } = await authenticate(`Bearer ${fake.token()}`, activity);
    expect(err).toBeUndefined();
    const client = await result!.connectorFactory!.create(fake.serviceUrl, result!.audience);
    const issuedBefore = fake.issuedTokens.length;
    await client.conversations.replyToActivity(activity.conversation.id, activity.id, { type: 'message', text: 'up 3 days' });
    const reply = fake.calls.at(-1)!;
    expect(reply).toMatchObject({
      method: 'POST',
      conversationId: activity.conversation.id,
      activityId: activity.id,
      body: { text: 'up 3 days' },
    });
    expect(fake.issuedTokens.length).toBe(issuedBefore + 1);
    expect(reply.authorization).toBe(`Bearer ${fake.issuedTokens.at(-1)}`);
  });
});

describe('the Emulator mode', () => {
  it.each([
    ['http://127.0.0.1:3978/', true],
    ['http://127.9.9.9', true],
    ['https://localhost:1234/x', true],
    ['http://[::1]:3978', true],
    ['http://[::ffff:127.0.0.1]:3978', true],
    ['http://10.0.0.1:3978', false],
    ['http://128.0.0.1', false],
    ['http://[::ffff:10.0.0.1]', false],
    ['http://[::2]', false],
    ['http://127.0.0.1.evil.example.com', false],
    ['http://localhost.evil.example.com', false],
    ['ftp://127.0.0.1/', false],
    ['file:///etc/passwd', false],
    ['not a url', false],
    [undefined, false],
    [42, false],
  ])('takes %j as a loopback service URL: %s', (url, loopback) => {
    expect(isLoopbackServiceUrl(url)).toBe(loopback);
  });

  it('accepts only Emulator activities that answer to this machine', () => {
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://localhost:50000' })).toBeNull();
    expect(emulatorRefusal({ channelId: 'msteams', serviceUrl: 'http://localhost:50000' })).toMatch(
      /only Bot Framework Emulator activities/,
    );
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'https://smba.trafficmanager.net/teams/' })).toMatch(/loopback serviceUrl/);
    expect(emulatorRefusal({ channelId: 'emulator' })).toMatch(/loopback serviceUrl/);
    expect(emulatorRefusal(null)).toMatch(/only Bot Framework Emulator activities/);
  });
});
