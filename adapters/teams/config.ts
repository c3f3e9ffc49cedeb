/** Settings of the Microsoft Teams adapter (from the gateway configuration: SKADI_TEAMS_*). */
import type { AccessMode } from '../contract';

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

/** The adapter settings from the gateway configuration. */
export function teamsConfigFrom(c: {
  teamsAppId: string; teamsAppPassword: string; teamsAppType: TeamsAppType; teamsTenantId: string; teamsAccess: AccessMode; teamsAllowedTenants: string[];
  teamsOpenIdMetadataUrl: string; teamsLoginUrl: string; teamsServiceUrl: string; teamsInsecureNoAuth: boolean;
}): TeamsAdapterConfig {
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
