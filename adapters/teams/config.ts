/** Settings of the Microsoft Teams adapter (from the gateway configuration: SKADI_TEAMS_*). */
import { z } from 'zod';
import { access, bool, list, setting, url } from '../../config/kit';
import type { AccessMode } from '../contract';

/** The teams settings (SKADI_TEAMS_*): their rows of the gateway's settings table (config/settings.ts). */
export const TEAMS_SETTINGS = {
  teamsAppId: setting('teams_app_id', z.string(), '', 'Microsoft App ID of the Azure Bot (the Teams adapter is enabled when it is set)'),
  teamsAppPassword: setting(
    'teams_app_password',
    z.string(),
    '',
    'client secret of the Azure Bot app registration; without it, unless `teams_app_type` is `UserAssignedMSI`, start-up stops with one line',
    true,
  ),
  teamsAppType: setting(
    'teams_app_type',
    z.enum(['SingleTenant', 'MultiTenant', 'UserAssignedMSI'], { error: 'must be SingleTenant, MultiTenant or UserAssignedMSI' }),
    'SingleTenant',
    'app type of the Azure Bot: `SingleTenant`, `MultiTenant` (tokens from `botframework.com`) or `UserAssignedMSI` (a managed identity, no secret)',
  ),
  teamsTenantId: setting(
    'teams_tenant_id',
    z.string(),
    '',
    "the bot's home tenant id, that of its app registration; needed unless `teams_app_type` is `MultiTenant`",
  ),
  teamsAccess: setting(
    'teams_access',
    access,
    'closed',
    'who may use Skadi from Teams: `closed` (linked identities), `workspace` (whole tenants) or `open`',
  ),
  teamsAllowedTenants: setting(
    'teams_allowed_tenants',
    list,
    '',
    'workspace mode: allowed tenant ids, comma-separated (empty: every tenant the bot is in)',
  ),
  teamsOpenIdMetadataUrl: setting(
    'teams_openid_metadata_url',
    url(['http:', 'https:']),
    'https://login.botframework.com/v1/.well-known/openidconfiguration',
    "OpenID metadata of the keys that sign the Bot Framework's requests (other clouds, or a local fake in tests)",
  ),
  teamsLoginUrl: setting(
    'teams_login_url',
    url(['http:', 'https:']),
    'https://login.microsoftonline.com',
    'Microsoft Entra login base URL; the token endpoint is `<url>/<tenant>/oauth2/v2.0/token`',
  ),
  teamsServiceUrl: setting(
    'teams_service_url',
    url(['http:', 'https:']),
    'https://smba.trafficmanager.net/teams/',
    "Bot Connector URL for private chats with people not seen since the start (the last one a tenant's messages came from is used first)",
  ),
  teamsInsecureNoAuth: setting(
    'teams_insecure_no_auth',
    bool,
    false,
    '`true` accepts requests without a token, for the Bot Framework Emulator only, never in production: only activities with channelId `emulator` and a loopback `serviceUrl` (others get 401 and are never answered); the gateway warns at start, and refuses to start when `teams_app_id` or `teams_app_password` is set too',
  ),
};

/** How the bot proves who it is to the Bot Connector. */
export type TeamsAppType = 'SingleTenant' | 'MultiTenant' | 'UserAssignedMSI';

/** What the Teams adapter needs. */
export interface TeamsAdapterConfig {
  appId: string;
  appPassword: string;
  appType: TeamsAppType;
  /** The bot's home tenant (SingleTenant, UserAssignedMSI). */
  tenantId: string;
  access: AccessMode;
  /** Workspace mode: allowed tenant ids (empty: every tenant the bot is in). */
  allowedTenants: string[];
  /** OpenID metadata whose keys sign the channel's requests. */
  openIdMetadataUrl: string;
  /** Entra login base URL, e.g. https://login.microsoftonline.com. */
  loginUrl: string;
  /** Bot Connector URL used for a private chat with someone not seen since the start. */
  serviceUrl: string;
  /** Emulator only: accept requests without a token. */
  insecureNoAuth: boolean;
}

/** The Teams adapter is enabled when an app id is set (or the Emulator mode is on). */
export function teamsEnabled(config: TeamsAdapterConfig): boolean {
  return config.appId !== '' || config.insecureNoAuth;
}

/** Why the settings cannot work (one line for the start-up error), or null. */
export function teamsConfigProblem(config: TeamsAdapterConfig): string | null {
  if (config.insecureNoAuth && (config.appId !== '' || config.appPassword !== '')) {
    return 'SKADI_TEAMS_INSECURE_NO_AUTH=true (the Bot Framework Emulator, without authentication) cannot be used with SKADI_TEAMS_APP_ID or SKADI_TEAMS_APP_PASSWORD: unset the app credentials, or the insecure setting';
  }
  if (config.insecureNoAuth) return null;
  if (config.appType !== 'UserAssignedMSI' && config.appPassword === '') {
    return 'SKADI_TEAMS_APP_ID is set but SKADI_TEAMS_APP_PASSWORD is not: give the client secret of the bot, or set SKADI_TEAMS_APP_TYPE=UserAssignedMSI';
  }
  if (config.appType !== 'MultiTenant' && config.tenantId === '') {
    return `SKADI_TEAMS_APP_TYPE=${config.appType} needs SKADI_TEAMS_TENANT_ID (the tenant of the bot's app registration)`;
  }
  return null;
}

/** The Teams settings as the gateway configuration holds them. */
export type TeamsSettings = z.infer<z.ZodObject<typeof TEAMS_SETTINGS>>;

/** The adapter settings from the gateway configuration. */
export function teamsConfigFrom(c: TeamsSettings): TeamsAdapterConfig {
  return {
    appId: c.teamsAppId,
    appPassword: c.teamsAppPassword,
    appType: c.teamsAppType,
    tenantId: c.teamsTenantId,
    access: c.teamsAccess,
    allowedTenants: c.teamsAllowedTenants,
    openIdMetadataUrl: c.teamsOpenIdMetadataUrl,
    loginUrl: c.teamsLoginUrl.replace(/\/+$/, ''),
    serviceUrl: c.teamsServiceUrl,
    insecureNoAuth: c.teamsInsecureNoAuth,
  };
}
