/**
 * A local fake of the Microsoft side of a Teams bot: the OpenID metadata and signing keys of the Bot Framework
 * (an RSA key made here, tokens signed with node:crypto), the Entra token endpoint, and the Bot Connector (its
 * activities, conversations and roster: TeamsChannelAccounts with their tenantId).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const APP_ID = '00000000-aaaa-4bbb-8ccc-000000000001';
export const APP_PASSWORD = 'fake-client-secret';
export const TENANT = '11111111-2222-4333-8444-555555555555';
export const BOT_ID = `28:${APP_ID}`;
const ISSUER = 'https://api.botframework.com';

/** One call the bot made to the Bot Connector. */
export interface ConnectorCall {
  method: string;
  path: string;
  /** The conversation id, decoded. */
  conversationId: string;
  /** For a reply or an update: the activity id in the path. */
  activityId?: string;
  body: Record<string, any>;
  authorization: string;
}

/** The running fake. */
export interface FakeTeams {
  url: string;
  /** SKADI_TEAMS_OPENID_METADATA_URL */
  metadataUrl: string;
  /** SKADI_TEAMS_LOGIN_URL */
  loginUrl: string;
  /** The activities' serviceUrl: the fake Bot Connector. */
  serviceUrl: string;
  /** The SKADI_TEAMS_* settings of a gateway using this fake. */
  settings(extra?: Record<string, string>): Record<string, string>;
  calls: ConnectorCall[];
  /** The id the connector gave each posted activity. */
  postedIds: Map<ConnectorCall, string>;
  /** Creating a personal conversation is refused with 403, as when the app is not installed for the person. */
  refuseNewConversations: boolean;
  /** Connector calls without a valid bearer token get 401 (the Emulator takes them without). */
  requireToken: boolean;
  /** Access tokens the token endpoint handed out. */
  issuedTokens: string[];
  /** Token requests refused (wrong client id or secret). */
  refusedTokenRequests: number;
  /** The next `count` connector calls answer `status` (with Retry-After when given). */
  failNext(count: number, status: number, retryAfterSeconds?: number): void;
  /** Connector calls answered with an injected failure so far. */
  failedCalls: number;
  /**
   * The roster (GET /v3/conversations/{id}/members/{userId}), by Teams user id (`29:teams-<aad>`): an account given
   * here (null: 404, a number: that status), else `29:teams-<aad>` of TENANT.
   */
  members: Map<string, Record<string, unknown> | null | number>;
  /** Roster lookups so far: the conversation asked and the user id. */
  memberLookups: { conversationId: string; userId: string; authorization: string }[];
  /** A channel token: the right claims unless overridden; `key` signs with another key (a forged token). */
  token(claims?: Record<string, unknown>, options?: { key?: KeyObject; kid?: string }): string;
  close(): Promise<void>;
}

/** A JWT signed with RS256. */
export function signJwt(payload: Record<string, unknown>, key: KeyObject, kid: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ alg: 'RS256', typ: 'JWT', kid, x5t: kid })}.${part(payload)}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), key).toString('base64url')}`;
}

/** A fresh RSA private key (for forged tokens). */
export function otherKey(): KeyObject {
  return createPrivateKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => resolve(text));
  });
}

/** Starts the fake on a free port. */
export async function startFakeTeams(): Promise<FakeTeams> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `key-${randomBytes(4).toString('hex')}`;
  const jwk = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  const calls: ConnectorCall[] = [];
  const postedIds = new Map<ConnectorCall, string>();
  const issuedTokens: string[] = [];
  let failures: { count: number; status: number; retryAfter?: number } = { count: 0, status: 0 };
  let activitySeq = 0;
  let url = '';

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/.well-known/openidconfiguration') {
      return json(res, 200, {
        issuer: ISSUER,
        jwks_uri: `${url}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      });
    }
    if (req.method === 'GET' && path === '/v1/.well-known/keys') {
      return json(res, 200, { keys: [{ kty: 'RSA', use: 'sig', kid, x5t: kid, n: jwk.n, e: jwk.e, endorsements: ['msteams'] }] });
    }
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (req.method === 'POST' && token) {
      const form = new URLSearchParams(body);
      if (
        form.get('client_id') !== APP_ID ||
        form.get('client_secret') !== APP_PASSWORD ||
        token[1] !== TENANT ||
        form.get('grant_type') !== 'client_credentials'
      ) {
        fake.refusedTokenRequests++;
        return json(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
      }
      const accessToken = `fake-access-${randomBytes(8).toString('hex')}`;
      issuedTokens.push(accessToken);
      return json(res, 200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: accessToken });
    }
    const member = /^\/teams\/v3\/conversations\/([^/]+)\/members\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && member)
      return answerMember(res, decodeURIComponent(member[1]), decodeURIComponent(member[2]), String(req.headers.authorization ?? ''));
    const connector = /^\/teams\/v3\/conversations(?:\/([^/]+)\/activities(?:\/([^/]+))?)?$/.exec(path);
    if (connector) {
      const call: ConnectorCall = {
        method: req.method ?? '',
        path,
        conversationId: connector[1] ? decodeURIComponent(connector[1]) : '',
        activityId: connector[2] ? decodeURIComponent(connector[2]) : undefined,
        body: body ? JSON.parse(body) : {},
        authorization: String(req.headers.authorization ?? ''),
      };
      calls.push(call);
      if (fake.requireToken && !issuedTokens.some((t) => call.authorization === `Bearer ${t}`))
        return json(res, 401, { error: { code: 'Unauthorized', message: 'no valid bearer token' } });
      if (failures.count > 0) {
        failures.count--;
        fake.failedCalls++;
        return json(
          res,
          failures.status,
          { error: { code: 'Throttled', message: 'injected failure' } },
          failures.retryAfter !== undefined ? { 'retry-after': String(failures.retryAfter) } : {},
        );
      }
      if (!connector[1]) {
        if (fake.refuseNewConversations)
          return json(res, 403, { error: { code: 'Forbidden', message: 'The bot is not installed for the user' } });
        const member = String(call.body.members?.[0]?.id ?? 'nobody');
        return json(res, 201, { id: `a:personal-${member}`, activityId: '' });
      }
      if (req.method === 'PUT') return json(res, 200, { id: call.activityId });
      const id = `act-${++activitySeq}`;
      postedIds.set(call, id);
      return json(res, 201, { id });
    }
    json(res, 404, { error: 'not found' });
  });
  /** The roster's answer about one member: a TeamsChannelAccount as the Bot Connector gives it. */
  function answerMember(res: http.ServerResponse, conversationId: string, userId: string, authorization: string) {
    fake.memberLookups.push({ conversationId, userId, authorization });
    if (fake.requireToken && !issuedTokens.some((t) => authorization === `Bearer ${t}`))
      return json(res, 401, { error: { code: 'Unauthorized', message: 'no valid bearer token' } });
    const given = fake.members.get(userId);
    if (given === null) return json(res, 404, { error: { code: 'NotFound', message: 'The user is not a member of the conversation' } });
    if (typeof given === 'number') return json(res, given, { error: { code: 'Failure', message: 'injected failure' } });
    const aad = /^29:teams-(.+)$/.exec(userId)?.[1] ?? '';
    const account = {
      id: userId,
      name: aad,
      aadObjectId: aad,
      objectId: aad,
      userPrincipalName: `${aad}@example.com`,
      tenantId: TENANT,
      userRole: 'user',
    };
    return json(res, 200, { ...account, ...(given ?? {}) });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const serviceUrl = `${url}/teams/`;

  const fake: FakeTeams = {
    url,
    metadataUrl: `${url}/v1/.well-known/openidconfiguration`,
    loginUrl: url,
    serviceUrl,
    settings: (extra = {}) => ({
      SKADI_TEAMS_APP_ID: APP_ID,
      SKADI_TEAMS_APP_PASSWORD: APP_PASSWORD,
      SKADI_TEAMS_TENANT_ID: TENANT,
      SKADI_TEAMS_OPENID_METADATA_URL: `${url}/v1/.well-known/openidconfiguration`,
      SKADI_TEAMS_LOGIN_URL: url,
      SKADI_TEAMS_SERVICE_URL: serviceUrl,
      ...extra,
    }),
    calls,
    postedIds,
    issuedTokens,
    refusedTokenRequests: 0,
    requireToken: true,
    refuseNewConversations: false,
    failedCalls: 0,
    members: new Map(),
    memberLookups: [],
    failNext(count, status, retryAfterSeconds) {
      failures = { count, status, retryAfter: retryAfterSeconds };
    },
    token(claims = {}, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss: ISSUER, aud: APP_ID, serviceurl: serviceUrl, nbf: now - 10, iat: now - 10, exp: now + 3600, ...claims };
      for (const [name, value] of Object.entries(payload)) if (value === undefined) delete (payload as Record<string, unknown>)[name];
      return signJwt(payload, options.key ?? privateKey, options.kid ?? kid);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return fake;
}

/** The channel and team of a channel message: a shared channel says so in its `type` (and `membershipType`). */
function channelOf(shared: boolean): Record<string, unknown> {
  if (!shared) return { channel: { id: '19:channel-general@thread.tacv2' }, team: { id: '19:team@thread.tacv2' } };
  return {
    channel: { id: '19:shared-partners@thread.tacv2', type: 'shared', membershipType: 'shared', name: 'Partners' },
    team: { id: '19:team@thread.tacv2' },
  };
}

/** The activity Teams sends for a message; `kind` chooses a personal chat, a group chat or a channel. */
export function messageActivity(
  fake: Pick<FakeTeams, 'serviceUrl'>,
  options: {
    kind?: 'personal' | 'groupChat' | 'channel';
    text: string;
    from?: string;
    fromName?: string;
    id?: string;
    conversationId?: string;
    mention?: boolean;
    tenant?: string;
    /** A Teams Connect shared channel (kind channel): the conversation and channelData name the host's tenant. */
    shared?: boolean;
  },
): Record<string, any> {
  const kind = options.kind ?? 'personal';
  const id = options.id ?? `${Date.now()}${Math.floor(Math.random() * 1000)}`;
  const from = options.from ?? 'aad-alice';
  const mention = options.mention ?? kind !== 'personal';
  const tenant = options.tenant ?? TENANT;
  const conversationId =
    options.conversationId ??
    (kind === 'personal'
      ? `a:personal-${from}`
      : kind === 'groupChat'
        ? '19:group-chat@thread.v2'
        : `${options.shared ? '19:shared-partners' : '19:channel-general'}@thread.tacv2;messageid=${id}`);
  return {
    type: 'message',
    id,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: fake.serviceUrl,
    from: { id: `29:teams-${from}`, name: options.fromName ?? 'Alice', aadObjectId: from },
    conversation: { id: conversationId, conversationType: kind, tenantId: tenant, isGroup: kind !== 'personal' },
    recipient: { id: BOT_ID, name: 'Skadi' },
    text: mention ? `<at>Skadi</at> ${options.text}` : options.text,
    textFormat: 'plain',
    entities: mention ? [{ type: 'mention', text: '<at>Skadi</at>', mentioned: { id: BOT_ID, name: 'Skadi' } }] : [],
    channelData: { tenant: { id: tenant }, ...(kind === 'channel' ? channelOf(options.shared === true) : {}) },
  };
}

/** POSTs an activity to the gateway's /api/messages with a bearer token (or none). */
export async function postActivity(
  base: string,
  activity: Record<string, unknown>,
  token: string | null,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/api/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(activity),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}
