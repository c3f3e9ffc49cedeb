/**
 * Bot Framework authentication for the Teams adapter, all of it botbuilder's: inbound JWTs checked by
 * ConfigurationBotFrameworkAuthentication against configurable OpenID metadata, outbound tokens from MSAL against a
 * configurable login URL. Every failure to authenticate a request becomes an AuthenticationError (401).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BlockList, isIP } from 'node:net';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { ConfigurationBotFrameworkAuthentication } from 'botbuilder';
import {
  AuthenticationConstants,
  AuthenticationError,
  BotFrameworkAuthentication,
  JwtTokenProviderFactory,
  ManagedIdentityServiceClientCredentialsFactory,
  MsalServiceClientCredentialsFactory,
  type AuthenticateRequestResult,
  type ClaimsIdentity,
  type ServiceClientCredentialsFactory,
} from 'botframework-connector';
import type { Activity } from 'botbuilder';
import type { TeamsAdapterConfig } from './config';

/** What one inbound request's authentication came to, read by the HTTP handler after botbuilder is done. */
export interface AuthOutcome {
  /** Why the request was refused (401), or why it could not be checked (503). */
  refused?: string;
  unavailable?: string;
}

/** Loopback addresses: the only place an unauthenticated (Emulator) activity may have the answers sent to. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True when a service URL is http(s) on a loopback address (or localhost). */
export function isLoopbackServiceUrl(serviceUrl: unknown): boolean {
  let url: URL;
  try {
    url = new URL(String(serviceUrl));
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why the Emulator mode (no authentication) refuses an activity, or null: only the Bot Framework Emulator's own
 * activities (channelId `emulator`) whose answers go to a loopback service URL; anything else could be anyone.
 */
export function emulatorRefusal(body: unknown): string | null {
  const activity = (body ?? {}) as { channelId?: unknown; serviceUrl?: unknown };
  if (activity.channelId !== 'emulator')
    return 'without authentication only Bot Framework Emulator activities (channelId emulator) are accepted';
  if (!isLoopbackServiceUrl(activity.serviceUrl))
    return 'without authentication answers go only to a loopback serviceUrl (the Emulator on this machine)';
  return null;
}

/** Per request, the outcome of its authentication (botbuilder itself reports every failure as the same 401). */
export const authOutcomes = new AsyncLocalStorage<AuthOutcome>();

/** The tenant in the token endpoint's path: the bot's own, or botframework.com for a multi-tenant bot. */
function tokenTenant(config: TeamsAdapterConfig): string {
  return config.appType === 'MultiTenant' ? 'botframework.com' : config.tenantId;
}

/**
 * MSAL over the configured login URL. MSAL refuses `http:` authorities and looks authorities up at
 * login.microsoftonline.com, so it is given the endpoints itself (authorityMetadata) under an https name it knows.
 */
export function msalClient(config: TeamsAdapterConfig): ConfidentialClientApplication {
  const login = new URL(config.loginUrl);
  const base = `${config.loginUrl}/${tokenTenant(config)}`;
  const authority = `https://${login.host}/${tokenTenant(config)}`;
  return new ConfidentialClientApplication({
    auth: {
      clientId: config.appId,
      clientSecret: config.appPassword,
      authority,
      knownAuthorities: [login.host],
      authorityMetadata: JSON.stringify({
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        issuer: `${base}/v2.0`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      }),
    },
    system: { loggerOptions: { piiLoggingEnabled: false, loggerCallback: () => undefined } },
  });
}

/** Where outbound tokens come from: the app's secret (MSAL), a managed identity, or nothing (Emulator mode). */
function credentialsFactory(config: TeamsAdapterConfig): ServiceClientCredentialsFactory {
  if (config.insecureNoAuth)
    return new MsalServiceClientCredentialsFactory('', msalClient({ ...config, appId: 'none', appPassword: 'none', tenantId: 'none' }));
  if (config.appType === 'UserAssignedMSI')
    return new ManagedIdentityServiceClientCredentialsFactory(config.appId, new JwtTokenProviderFactory());
  return new MsalServiceClientCredentialsFactory(config.appId, msalClient(config));
}

/** True when a failure is the metadata or its keys being unreachable, not the request being wrong. */
function isMetadataFailure(err: unknown): boolean {
  const message = String((err as Error)?.message ?? err);
  return /Failed to load (openID config|Keys)|fetch failed|ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|network|socket hang up|invalid json/i.test(
    message,
  );
}

/**
 * botbuilder's authentication with every failure of a request made an AuthenticationError: the library throws plain
 * errors for a bad signature or a token not yet valid, which its HTTP handler would answer with 500. The reason is
 * kept for the handler: a refusal, or (unreachable metadata) a failure that is not the sender's fault.
 */
class RefusingAuthentication extends BotFrameworkAuthentication {
  constructor(private readonly inner: BotFrameworkAuthentication) {
    super();
  }

  async authenticateRequest(activity: Activity, authHeader: string): Promise<AuthenticateRequestResult> {
    try {
      return await this.inner.authenticateRequest(activity, authHeader);
    } catch (err) {
      const outcome = authOutcomes.getStore();
      const reason = String((err as Error)?.message ?? err).split('\n')[0];
      if (outcome) {
        if (isMetadataFailure(err)) outcome.unavailable = reason;
        else outcome.refused = reason;
      }
      throw err instanceof AuthenticationError ? err : new AuthenticationError(reason, 401);
    }
  }

  authenticateStreamingRequest(authHeader: string, channelIdHeader: string) {
    return this.inner.authenticateStreamingRequest(authHeader, channelIdHeader);
  }

  createConnectorFactory(claimsIdentity: ClaimsIdentity) {
    return this.inner.createConnectorFactory(claimsIdentity);
  }

  createUserTokenClient(claimsIdentity: ClaimsIdentity) {
    return this.inner.createUserTokenClient(claimsIdentity);
  }

  override createBotFrameworkClient() {
    return this.inner.createBotFrameworkClient();
  }

  override getOriginatingAudience(): string {
    return this.inner.getOriginatingAudience();
  }

  override authenticateChannelRequest(authHeader: string) {
    return this.inner.authenticateChannelRequest(authHeader);
  }
}

/**
 * The Bot Framework authentication of the adapter. Setting one endpoint puts botbuilder in its custom mode, where
 * none has a default, so all are set: the public cloud's values, with the metadata and login URLs from the settings.
 */
export function createTeamsAuthentication(config: TeamsAdapterConfig): BotFrameworkAuthentication {
  const botFramework = AuthenticationConstants.ToBotFromChannelTokenIssuer; // https://api.botframework.com
  const inner = new ConfigurationBotFrameworkAuthentication(
    {
      MicrosoftAppId: config.appId,
      MicrosoftAppTenantId: config.tenantId,
      MicrosoftAppType: config.appType,
      ValidateAuthority: true,
      ToChannelFromBotLoginUrl: `${config.loginUrl}/${tokenTenant(config)}`,
      ToChannelFromBotOAuthScope: botFramework,
      ToBotFromChannelTokenIssuer: botFramework,
      OAuthUrl: botFramework,
      ToBotFromChannelOpenIdMetadataUrl: config.openIdMetadataUrl,
      ToBotFromEmulatorOpenIdMetadataUrl: config.openIdMetadataUrl,
      CallerId: 'urn:botframework:azure',
    },
    credentialsFactory(config),
  );
  return new RefusingAuthentication(inner);
}
