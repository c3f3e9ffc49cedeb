/** Every setting of the gateway: its name in the config file, its environment variable, and how it is parsed. */
import net from 'node:net';
import os from 'node:os';
import { z } from 'zod';
import { parseDuration } from './duration';

const duration = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? value : parseDuration(value);
    if (ms === null || !Number.isFinite(ms) || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 30s, 10m, 1h30m)` });
      return z.NEVER;
    }
    return ms;
  });

const bytes = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const match = /^(\d+)\s*(b|kb|kib|mb|mib)?$/i.exec(String(value).trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 65536, 64kb, 1mb)` });
      return z.NEVER;
    }
    const unit = (match[2] ?? 'b').toLowerCase();
    const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1;
    return Number(match[1]) * factor;
  });

const port = z.coerce.number().int().min(0).max(65535);
/** A number of worker processes, or `auto`: one per CPU core. */
export const workerCount = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (String(value).trim().toLowerCase() === 'auto') return os.availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a number of workers (use 1 to 256, or auto for one per CPU core)` });
    return z.NEVER;
  }
  return n;
});
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const list = z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));
const hostPorts = list.pipe(
  z.array(z.string().regex(/^[\w.-]+:\d{1,5}$/, 'each node must be host:port, e.g. 127.0.0.1:7001')),
);
/** A hop count, or IPv4/IPv6 addresses and CIDRs (agent-api/client-address.ts reads them). */
const proxyTrust = list.pipe(
  z.array(z.string()).refine(
    (entries) => (entries.length === 1 && /^\d{1,2}$/.test(entries[0])) || entries.every(isCidr),
    'must be a number of proxy hops, or IP addresses and CIDRs such as 10.0.0.0/8,192.168.1.10',
  ),
);
/** CIDRs, addresses and host names (cloud/callback-guard.ts reads them). */
const callbackAllow = list.pipe(
  z.array(z.string()).refine(
    (entries) => entries.every((e) => isCidr(e) || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(e)),
    'must be CIDRs, IP addresses or host names, comma-separated, e.g. 10.0.0.0/8,hooks.internal',
  ),
);
/** The server-side key: empty (not set) or at least 32 characters. */
const serverSecret = z.string().refine((v) => v === '' || v.length >= 32, 'must be at least 32 characters (e.g. the output of `openssl rand -hex 32`)');
const access = z.enum(['closed', 'workspace', 'open'], { error: 'must be closed, workspace or open' });
const url = (protocols: string[]) =>
  z.string().refine((text) => {
    try {
      return protocols.includes(new URL(text).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

/** True for an IPv4 or IPv6 address, with an optional prefix length that fits it. */
function isCidr(text: string): boolean {
  const [address, prefix, extra] = text.split('/');
  const family = net.isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/** One setting: where it comes from and whether its value must never be logged. */
export interface SettingSpec {
  key: string;
  env: string;
  file: string;
  secret: boolean;
  schema: z.ZodType;
  default: unknown;
  help: string;
}

function setting(key: string, file: string, schema: z.ZodType, def: unknown, help: string, secret = false): SettingSpec {
  const env = 'SKADI_' + file.toUpperCase();
  return { key, env, file, secret, schema, default: def, help };
}

/** The settings table; README's configuration section lists the same. */
export const SETTINGS = [
  setting('port', 'port', port, 1323, 'HTTP port of the gateway'),
  setting('host', 'host', z.string().min(1), '0.0.0.0', 'address the HTTP server binds to'),
  setting('workers', 'workers', workerCount, 1, 'processes serving on the port (node:cluster), each a full node; auto: one per CPU core'),
  setting('mysqlUrl', 'mysql_url', url(['mysql:', 'mariadb:']), 'mysql://root@127.0.0.1:3306/skadi', 'MySQL/MariaDB database (created if missing)', true),
  setting('redisUrl', 'redis_url', url(['redis:', 'rediss:']), 'redis://127.0.0.1:6379/0', 'Redis server', true),
  setting('redisCluster', 'redis_cluster', hostPorts, '', 'Redis Cluster seed nodes (host:port,...); when set, redis_url only supplies the password and TLS'),
  setting('redisPrefix', 'redis_prefix', z.string().min(1).max(64).regex(/^[\w:.-]+$/, 'letters, digits and _ : . - only'), 'skadi:', 'prefix of every Redis key and stream'),
  setting('jobLeaseMs', 'job_lease', duration, '10m', 'a sent or running job with no report for this long expires'),
  setting('approvalTimeoutMs', 'approval_timeout', duration, '1h', 'a job that needs approval and gets no decision for this long expires'),
  setting('delayedWaitMs', 'delayed_wait', duration, '1d', 'a delayed job due while its agent is offline waits this long for the agent to poll again, then expires'),
  setting('agentOfflineAfterMs', 'agent_offline_after', duration, '3m', 'an agent that has not polled for this long is offline'),
  setting('bodyLimitBytes', 'body_limit', bytes, '1mb', 'largest accepted HTTP request body'),
  setting('sweepIntervalMs', 'sweep_interval', duration, '1s', 'how often each node looks for overdue leases, offline agents and due delayed jobs'),
  setting('reconcileIntervalMs', 'reconcile_interval', duration, '30s', 'how often each node compares Redis with MySQL and repairs Redis'),
  setting('eventMaxLen', 'event_maxlen', z.coerce.number().int().min(1000), 1_000_000, 'approximate length cap of each Redis event stream'),
  setting('maxWaitSeconds', 'max_wait', z.coerce.number().int().min(0).max(600), 60, 'longest accepted ?wait= of a long poll, in seconds'),
  setting('authMaxFailures', 'auth_max_failures', z.coerce.number().int().min(1), 30, 'failed authentications per client address within auth_window before it gets 429'),
  setting('authWindowMs', 'auth_window', duration, '1m', 'window of auth_max_failures (the address is refused until it ends)'),
  setting('trustProxy', 'trust_proxy', proxyTrust, '', 'proxies trusted to give the client address in X-Forwarded-For: a hop count, or CIDRs and addresses, comma-separated (empty: none)'),
  setting('maxPollsPerAgent', 'max_polls_per_agent', z.coerce.number().int().min(1).max(1000), 4, 'long polls one agent may hold open on a node; a further one answers the oldest with 204'),
  setting('notifyMaxAttempts', 'notify_max_attempts', z.coerce.number().int().min(1).max(100), 8, 'delivery attempts of one event before it goes to the dead-letter stream'),
  setting('notifyRetryBaseMs', 'notify_retry_base', duration, '1s', 'first delay before retrying a failed delivery (doubles, with jitter)'),
  setting('notifyReclaimIdleMs', 'notify_reclaim_idle', duration, '60s', 'events pending this long on a notifier that died are delivered by another'),
  setting('notifyPaceMs', 'notify_pace', duration, '1s', 'least time between two messages to one conversation'),
  setting('notifyMaxInFlight', 'notify_max_in_flight', z.coerce.number().int().min(1).max(100_000), 1000, 'most events a notifier holds at once (being delivered, waiting for their pace or turn, retrying); it stops reading the streams at it'),
  setting('notifyMaxInFlightPerConversation', 'notify_max_in_flight_per_conversation', z.coerce.number().int().min(1).max(100_000), 100, 'most deliveries under way at once to one conversation; the next ones wait their turn, in order'),
  setting('callbackAllow', 'callback_allow', callbackAllow, '', 'internal receivers job callbacks may reach: CIDRs and host names, comma-separated (empty: only public addresses)'),
  setting('callbackTimeoutMs', 'callback_timeout', duration, '10s', 'longest time one callback POST may take, from connecting to the answer'),
  setting('secret', 'secret', serverSecret, '', 'server-side key from which the per-user callback secrets are derived; the same on every node (32+ characters)', true),
  setting('slackSigningSecret', 'slack_signing_secret', z.string(), '', 'Slack app signing secret (the Slack adapter is enabled when it and the bot token are set)', true),
  setting('slackBotToken', 'slack_bot_token', z.string(), '', 'Slack bot token (xoxb-…)', true),
  setting('slackApiUrl', 'slack_api_url', url(['http:', 'https:']), 'https://slack.com/api/', 'Slack Web API base URL (a proxy, or a fake in tests)'),
  setting('slackAccess', 'slack_access', access, 'closed', 'who may use Skadi from Slack: closed (linked identities), workspace, open'),
  setting('slackAllowedTeams', 'slack_allowed_teams', list, '', 'workspace mode: allowed team ids, comma-separated (empty: every workspace the app is in)'),
  setting('slackSocketMode', 'slack_socket_mode', bool, false, 'receive events over Socket Mode instead of HTTP (no public URL needed)'),
  setting('slackAppToken', 'slack_app_token', z.string(), '', 'Slack app-level token (xapp-…) for Socket Mode', true),
  setting('slackBotUserId', 'slack_bot_user_id', z.string(), '', "the bot's user id; looked up with auth.test when empty"),
  setting('slackAllowBots', 'slack_allow_bots', bool, false, 'accept commands from other bots'),
  setting('teamsAppId', 'teams_app_id', z.string(), '', 'Microsoft App ID of the Azure Bot (the Teams adapter is enabled when it is set)'),
  setting('teamsAppPassword', 'teams_app_password', z.string(), '', 'client secret of the Azure Bot app registration', true),
  setting('teamsAppType', 'teams_app_type', z.enum(['SingleTenant', 'MultiTenant', 'UserAssignedMSI'], { error: 'must be SingleTenant, MultiTenant or UserAssignedMSI' }), 'SingleTenant', 'app type of the Azure Bot'),
  setting('teamsTenantId', 'teams_tenant_id', z.string(), '', "the bot's home tenant id (SingleTenant and UserAssignedMSI)"),
  setting('teamsAccess', 'teams_access', access, 'closed', 'who may use Skadi from Teams: closed (linked identities), workspace (whole tenants), open'),
  setting('teamsAllowedTenants', 'teams_allowed_tenants', list, '', 'workspace mode: allowed tenant ids, comma-separated (empty: every tenant the bot is in)'),
  setting('teamsOpenIdMetadataUrl', 'teams_openid_metadata_url', url(['http:', 'https:']), 'https://login.botframework.com/v1/.well-known/openidconfiguration', "OpenID metadata of the keys that sign the Bot Framework's requests (other clouds, or a fake in tests)"),
  setting('teamsLoginUrl', 'teams_login_url', url(['http:', 'https:']), 'https://login.microsoftonline.com', 'Microsoft Entra login base URL; the token endpoint is <url>/<tenant>/oauth2/v2.0/token'),
  setting('teamsServiceUrl', 'teams_service_url', url(['http:', 'https:']), 'https://smba.trafficmanager.net/teams/', 'Bot Connector URL for private chats with people who have not written since the start (the last one seen in a tenant is used first)'),
  setting('teamsInsecureNoAuth', 'teams_insecure_no_auth', bool, false, 'accept unauthenticated requests, for the Bot Framework Emulator only (never in production)'),
  setting('emailImapUrl', 'email_imap_url', url(['imap:', 'imaps:']).or(z.literal('')), '', 'mailbox that commands are sent to: imap://user:pass@host:143 or imaps://…:993 (the e-mail adapter is enabled when it is set)', true),
  setting('emailMailbox', 'email_mailbox', z.string().min(1), 'INBOX', 'the IMAP folder watched for commands'),
  setting('emailSmtpUrl', 'email_smtp_url', url(['smtp:', 'smtps:']).or(z.literal('')), '', 'SMTP server for answers: smtp://user:pass@host:587 or smtps://…:465', true),
  setting('emailFrom', 'email_from', z.string().regex(/^([^<>@\s]+@[^<>@\s]+|.*<[^<>@\s]+@[^<>@\s]+>)?$/, 'must be an address, e.g. skadi@example.com or "Skadi <skadi@example.com>"'), '', 'the address answers come from'),
  setting('emailAuthservId', 'email_authserv_id', z.string(), '', 'authserv-id of your receiving mail server: only its Authentication-Results headers are trusted'),
  setting('emailAuthFormat', 'email_auth_format', z.enum(['rfc8601', 'microsoft365'], { error: 'must be rfc8601 or microsoft365' }), 'rfc8601', 'how the receiving server writes Authentication-Results: rfc8601 (with its authserv-id) or microsoft365 (Exchange Online, no authserv-id)'),
  setting('emailRequire', 'email_require', z.enum(['dkim', 'spf', 'dkim-or-spf', 'none'], { error: 'must be dkim, spf, dkim-or-spf or none' }), 'dkim', 'what authenticates a sender: an aligned DKIM pass, SPF pass, either, or nothing (none: trusted writers only)'),
  setting('emailAccess', 'email_access', access, 'closed', 'who may use Skadi by mail: closed (linked addresses), workspace (whole domains), open'),
  setting('emailAllowedDomains', 'email_allowed_domains', list, '', 'workspace mode: allowed sender domains, comma-separated (empty: every authenticated domain)'),
  setting('emailProcessedFolder', 'email_processed_folder', z.string(), '', 'folder handled mail is moved to (empty: it stays, marked seen)'),
  setting('emailMaxSizeBytes', 'email_max_size', bytes, '1mb', 'larger mail is skipped (marked seen, logged)'),
  setting('emailMaxOutputBytes', 'email_max_output', bytes, '100kb', 'most output in one answer mail (the tail is kept, with a note)'),
  setting('emailSenderLimit', 'email_sender_limit', z.coerce.number().int().min(1), 30, 'command mails one sender may send per email_sender_window; later ones are not run (one notice per window)'),
  setting('emailSenderWindowMs', 'email_sender_window', duration, '10m', 'window of email_sender_limit (counted in Redis, so shared by every node)'),
  setting('emailTlsCa', 'email_tls_ca', z.string(), '', 'PEM file of CA certificates trusted for IMAP and SMTP TLS besides the system ones (an internal CA)'),
  setting('wechatPuppet', 'wechat_puppet', z.string().regex(/^(@[\w.-]+\/)?[\w.-]*$/, 'must be an npm package name, e.g. wechaty-puppet-service'), '', 'wechaty puppet package: wechaty-puppet-service, wechaty-puppet-wechat4u or another one you installed (the WeChat adapter is enabled when it is set)'),
  setting('wechatPuppetToken', 'wechat_puppet_token', z.string(), '', 'token of the puppet service (wechaty-puppet-service)', true),
  setting('wechatPuppetEndpoint', 'wechat_puppet_endpoint', z.string().regex(/^([\w.-]+|\[[\da-f:]+\]):\d{1,5}$/i, 'must be host:port, e.g. 10.0.0.5:8788').or(z.literal('')), '', 'host:port of the puppet service; when set it is dialled directly (no token discovery)'),
  setting('wechatPuppetTls', 'wechat_puppet_tls', bool, true, 'TLS to the puppet service; false only for a service on a trusted network'),
  setting('wechatAccess', 'wechat_access', z.enum(['closed', 'open'], { error: 'must be closed or open' }), 'closed', 'who may use Skadi from WeChat: closed (linked contacts) or open (anyone who can message the bot)'),
  setting('wechatPaceMs', 'wechat_pace', duration, '1.5s', 'least time between two messages to one WeChat conversation (accounts that burst get banned)'),
  setting('wechatMaxPerMinute', 'wechat_max_per_minute', z.coerce.number().int().min(1).max(600), 40, 'most WeChat messages the bot sends in any minute, all conversations together'),
  setting('wechatLeaseMs', 'wechat_lease', duration, '30s', 'with several gateway nodes, how long the logged-in node keeps its claim on the account without renewing it'),
  setting('logLevel', 'log_level', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'log level'),
] as const;
