/** The Teams adapter's settings: SKADI_TEAMS_* in loadConfig, teamsConfigFrom, teamsEnabled, teamsConfigProblem and the Emulator mode's limits. */
import { ConfigError, loadConfig, redactConfig } from '../../config';
import { emulatorRefusal } from '../../adapters/teams/auth';
import { teamsConfigFrom, teamsConfigProblem, teamsEnabled, type TeamsAdapterConfig } from '../../adapters/teams/config';

const APP_ID = '0b3a6c1e-7a55-4c1f-9d2e-5f1a2b3c4d5e';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function teams(env: Record<string, string>): TeamsAdapterConfig {
  return teamsConfigFrom(loadConfig({ env }));
}

describe('Teams settings in loadConfig', () => {
  it('are off by default', () => {
    const config = teams({});
    expect(config).toMatchObject({
      appId: '',
      appPassword: '',
      appType: 'SingleTenant',
      tenantId: '',
      access: 'closed',
      allowedTenants: [],
      insecureNoAuth: false,
      loginUrl: 'https://login.microsoftonline.com',
    });
    expect(teamsEnabled(config)).toBe(false);
  });

  it('reads every SKADI_TEAMS_* variable', () => {
    const config = loadConfig({
      env: {
        SKADI_TEAMS_APP_ID: APP_ID,
        SKADI_TEAMS_APP_PASSWORD: 'Xy8Q~secret.value',
        SKADI_TEAMS_APP_TYPE: 'MultiTenant',
        SKADI_TEAMS_TENANT_ID: TENANT,
        SKADI_TEAMS_ACCESS: 'workspace',
        SKADI_TEAMS_ALLOWED_TENANTS: ` ${TENANT}, 11111111-2222-3333-4444-555555555555 ,`,
        SKADI_TEAMS_OPENID_METADATA_URL: 'http://127.0.0.1:3978/openid',
        SKADI_TEAMS_LOGIN_URL: 'http://127.0.0.1:3979//',
        SKADI_TEAMS_SERVICE_URL: 'http://127.0.0.1:3980/teams/',
        SKADI_TEAMS_INSECURE_NO_AUTH: 'yes',
      },
    });
    expect(config).toMatchObject({
      teamsAppId: APP_ID,
      teamsAppPassword: 'Xy8Q~secret.value',
      teamsAppType: 'MultiTenant',
      teamsTenantId: TENANT,
      teamsAccess: 'workspace',
      teamsAllowedTenants: [TENANT, '11111111-2222-3333-4444-555555555555'],
      teamsOpenIdMetadataUrl: 'http://127.0.0.1:3978/openid',
      teamsServiceUrl: 'http://127.0.0.1:3980/teams/',
      teamsInsecureNoAuth: true,
    });
    expect(teamsConfigFrom(config)).toEqual({
      appId: APP_ID,
      appPassword: 'Xy8Q~secret.value',
      appType: 'MultiTenant',
      tenantId: TENANT,
      access: 'workspace',
      allowedTenants: [TENANT, '11111111-2222-3333-4444-555555555555'],
      openIdMetadataUrl: 'http://127.0.0.1:3978/openid',
      loginUrl: 'http://127.0.0.1:3979',
      serviceUrl: 'http://127.0.0.1:3980/teams/',
      insecureNoAuth: true,
    });
  });

  it('names SKADI_TEAMS_APP_TYPE when its value is wrong', () => {
    const load = () => loadConfig({ env: { SKADI_TEAMS_APP_TYPE: 'Multitenant' } });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/SKADI_TEAMS_APP_TYPE.*must be SingleTenant, MultiTenant or UserAssignedMSI/);
  });

  it('hides the app password when the configuration is logged', () => {
    const shown = redactConfig(loadConfig({ env: { SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_APP_PASSWORD: 'Xy8Q~secret.value' } }));
    expect(shown.teamsAppPassword).toBe('***');
    expect(shown.teamsAppId).toBe(APP_ID);
    expect(JSON.stringify(shown)).not.toContain('Xy8Q~secret.value');
  });
});

describe('teamsEnabled / teamsConfigProblem', () => {
  it('is enabled by an app id or by the Emulator mode', () => {
    expect(teamsEnabled(teams({ SKADI_TEAMS_APP_ID: APP_ID }))).toBe(true);
    expect(teamsEnabled(teams({ SKADI_TEAMS_INSECURE_NO_AUTH: 'true' }))).toBe(true);
  });

  it('asks for the password of an app id, except for a managed identity', () => {
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_TENANT_ID: TENANT }))).toMatch(/SKADI_TEAMS_APP_PASSWORD/);
    expect(
      teamsConfigProblem(teams({ SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_APP_TYPE: 'UserAssignedMSI', SKADI_TEAMS_TENANT_ID: TENANT })),
    ).toBeNull();
  });

  it('asks for the tenant of a single-tenant app or managed identity, not of a multi-tenant one', () => {
    const base = { SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_APP_PASSWORD: 'secret' };
    expect(teamsConfigProblem(teams(base))).toMatch(/SKADI_TEAMS_TENANT_ID/);
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_APP_TYPE: 'UserAssignedMSI' }))).toMatch(
      /UserAssignedMSI.*SKADI_TEAMS_TENANT_ID/,
    );
    expect(teamsConfigProblem(teams({ ...base, SKADI_TEAMS_APP_TYPE: 'MultiTenant' }))).toBeNull();
    expect(teamsConfigProblem(teams({ ...base, SKADI_TEAMS_TENANT_ID: TENANT }))).toBeNull();
  });

  it('has nothing to say in the Emulator mode alone, and refuses it beside app credentials', () => {
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_INSECURE_NO_AUTH: 'true' }))).toBeNull();
    const both = /SKADI_TEAMS_INSECURE_NO_AUTH.*cannot be used with SKADI_TEAMS_APP_ID or SKADI_TEAMS_APP_PASSWORD/;
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_INSECURE_NO_AUTH: 'true' }))).toMatch(both);
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_APP_PASSWORD: 'secret', SKADI_TEAMS_INSECURE_NO_AUTH: 'true' }))).toMatch(both);
    expect(
      teamsConfigProblem(
        teams({
          SKADI_TEAMS_APP_ID: APP_ID,
          SKADI_TEAMS_APP_PASSWORD: 'secret',
          SKADI_TEAMS_TENANT_ID: TENANT,
          SKADI_TEAMS_INSECURE_NO_AUTH: 'true',
        }),
      ),
    ).toMatch(both);
    expect(teamsConfigProblem(teams({ SKADI_TEAMS_APP_ID: APP_ID, SKADI_TEAMS_INSECURE_NO_AUTH: 'true' }))!.split('\n')).toHaveLength(1);
  });
});

describe('emulatorRefusal', () => {
  it('takes only Emulator activities whose answers go to a loopback service URL', () => {
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://localhost:5000/' })).toBeNull();
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://127.0.0.1:5000/' })).toBeNull();
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://127.9.9.9:5000/' })).toBeNull();
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://[::1]:5000/' })).toBeNull();
    expect(emulatorRefusal({ channelId: 'emulator', serviceUrl: 'http://[::ffff:127.0.0.1]:5000/' })).toBeNull();
  });

  it.each([
    ['a Teams activity', { channelId: 'msteams', serviceUrl: 'http://127.0.0.1:5000/' }, /channelId emulator/],
    ['no channel', { serviceUrl: 'http://127.0.0.1:5000/' }, /channelId emulator/],
    ['an internal service URL', { channelId: 'emulator', serviceUrl: 'http://10.0.0.5:6379/' }, /loopback/],
    ['the metadata service', { channelId: 'emulator', serviceUrl: 'http://169.254.169.254/latest/' }, /loopback/],
    ['a public name', { channelId: 'emulator', serviceUrl: 'https://smba.trafficmanager.net/teams/' }, /loopback/],
    ['a name that merely starts like loopback', { channelId: 'emulator', serviceUrl: 'http://127.0.0.1.evil.example/' }, /loopback/],
    ['another scheme', { channelId: 'emulator', serviceUrl: 'file:///etc/passwd' }, /loopback/],
    ['no service URL', { channelId: 'emulator' }, /loopback/],
  ])('refuses %s', (_what, body, reason) => {
    expect(emulatorRefusal(body)).toMatch(reason);
  });
});
