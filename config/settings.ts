/**
 * Every setting of the gateway: its name in the config file, its environment variable, how it is parsed, its default
 * and its help, each written once: the gateway's own here, each channel's in adapters/<channel>/config.ts. The
 * configuration type and docs/configuration.md (npm run docs:config) are made from this table.
 */
import net from 'node:net';
import os from 'node:os';
import { z } from 'zod';
import { bytes, duration, list, setting, settingInfo, url, type SettingInfo } from './kit';
import { EMAIL_SETTINGS } from '../adapters/email/config';
import { SLACK_SETTINGS } from '../adapters/slack/config';
import { TEAMS_SETTINGS } from '../adapters/teams/config';
import { WECHAT_SETTINGS } from '../adapters/wechat/config';

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
const hostPorts = list.pipe(z.array(z.string().regex(/^[\w.-]+:\d{1,5}$/, 'each node must be host:port, e.g. 127.0.0.1:7001')));
/** A hop count, or IPv4/IPv6 addresses and CIDRs (agent-api/client-address.ts reads them). */
const proxyTrust = list.pipe(
  z
    .array(z.string())
    .refine(
      (entries) => (entries.length === 1 && /^\d{1,2}$/.test(entries[0])) || entries.every(isCidr),
      'must be a number of proxy hops, or IP addresses and CIDRs such as 10.0.0.0/8,192.168.1.10',
    ),
);
/** CIDRs, addresses and host names (cloud/callback-guard.ts reads them). */
const callbackAllow = list.pipe(
  z
    .array(z.string())
    .refine(
      (entries) => entries.every((e) => isCidr(e) || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(e)),
      'must be CIDRs, IP addresses or host names, comma-separated, e.g. 10.0.0.0/8,hooks.internal',
    ),
);
/** The server-side key: empty (not set) or at least 32 characters. */
const serverSecret = z
  .string()
  .refine((v) => v === '' || v.length >= 32, 'must be at least 32 characters (e.g. the output of `openssl rand -hex 32`)');
/** True for an IPv4 or IPv6 address, with an optional prefix length that fits it. */
function isCidr(text: string): boolean {
  const [address, prefix, extra] = text.split('/');
  const family = net.isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/** The gateway's own settings (the channels' are in their adapters' config.ts). */
const GATEWAY_SETTINGS = {
  port: setting('port', port, 1323, 'HTTP port of the gateway'),
  host: setting('host', z.string().min(1), '0.0.0.0', 'address the HTTP server binds to'),
  workers: setting(
    'workers',
    workerCount,
    1,
    'processes of `skadi serve` on the port (node:cluster), each a full node; `auto`: one per CPU core (`serve --workers` overrides it)',
  ),
  mysqlUrl: setting(
    'mysql_url',
    url(['mysql:', 'mariadb:']),
    'mysql://root@127.0.0.1:3306/skadi',
    'MySQL/MariaDB database (created if missing)',
    true,
  ),
  redisUrl: setting(
    'redis_url',
    url(['redis:', 'rediss:']),
    'redis://127.0.0.1:6379/0',
    'Redis server; with `redis_cluster` set, only its user, password and `rediss:` (TLS) are used',
    true,
  ),
  redisCluster: setting(
    'redis_cluster',
    hostPorts,
    '',
    'Redis Cluster seed nodes, `host:port,host:port,…`; set it to run on a cluster instead of one server (see `redis_url`)',
  ),
  redisPrefix: setting(
    'redis_prefix',
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[\w:.-]+$/, 'letters, digits and _ : . - only'),
    'skadi:',
    'prefix of every Redis key, channel and stream, so that installations can share a Redis',
  ),
  jobLeaseMs: setting('job_lease', duration, '10m', 'a sent or running job with no report for this long expires'),
  approvalTimeoutMs: setting('approval_timeout', duration, '1h', 'a job that needs approval and gets no decision for this long expires'),
  delayedWaitMs: setting(
    'delayed_wait',
    duration,
    '1d',
    'a delayed job due while its agent is offline waits this long for the agent to poll again, then expires',
  ),
  agentOfflineAfterMs: setting('agent_offline_after', duration, '3m', 'an agent that has not polled for this long is offline'),
  bodyLimitBytes: setting(
    'body_limit',
    bytes,
    '1mb',
    'largest accepted HTTP request body; a larger one gets 413, and its rest is read and dropped (up to 32 MB or 5 s) so that a client still sending can read the answer',
  ),
  sweepIntervalMs: setting(
    'sweep_interval',
    duration,
    '1s',
    'how often each node looks for overdue leases, offline agents and due delayed jobs',
  ),
  reconcileIntervalMs: setting('reconcile_interval', duration, '30s', 'how often each node compares Redis with MySQL and repairs Redis'),
  eventMaxLen: setting('event_maxlen', z.coerce.number().int().min(1000), 1_000_000, 'approximate length cap of each Redis event stream'),
  maxWaitSeconds: setting('max_wait', z.coerce.number().int().min(0).max(600), 60, 'longest accepted `?wait=` of a long poll, in seconds'),
  authMaxFailures: setting(
    'auth_max_failures',
    z.coerce.number().int().min(1),
    30,
    "failed authentications per client address within `auth_window`; past it the address's bad credentials get 429 (not 401) until the window ends, and its checks run one at a time; a valid token from that address is still accepted",
  ),
  authWindowMs: setting('auth_window', duration, '1m', 'window of `auth_max_failures` (counted in Redis, so shared by every node)'),
  trustProxy: setting(
    'trust_proxy',
    proxyTrust,
    '',
    'proxies trusted to give the client address in `X-Forwarded-For`: a hop count (`1` for one load balancer), or addresses and CIDRs, comma-separated (`10.0.0.0/8,fd00::/8`); the client is the nearest address that is not a trusted proxy; empty: none, the client is the socket address and the header is ignored',
  ),
  maxPollsPerAgent: setting(
    'max_polls_per_agent',
    z.coerce.number().int().min(1).max(1000),
    4,
    'long polls one agent may hold open on a node; a further one answers the oldest with 204 (its client polls again or has gone)',
  ),
  notifyMaxAttempts: setting(
    'notify_max_attempts',
    z.coerce.number().int().min(1).max(100),
    8,
    'delivery attempts of one event before it goes to the dead-letter stream',
  ),
  notifyRetryBaseMs: setting('notify_retry_base', duration, '1s', 'first delay before retrying a failed delivery (doubles, with jitter)'),
  notifyReclaimIdleMs: setting(
    'notify_reclaim_idle',
    duration,
    '60s',
    'events pending this long on a notifier that died are delivered by another',
  ),
  notifyPaceMs: setting('notify_pace', duration, '1s', 'least time between two messages to one conversation'),
  notifyMaxInFlight: setting(
    'notify_max_in_flight',
    z.coerce.number().int().min(1).max(100_000),
    1000,
    "most events a notifier holds at once (being delivered, waiting for their pace or their conversation's turn, retrying); at it the notifier stops reading the streams and the rest waits in Redis (see [Notifications and callbacks](notifications.md))",
  ),
  notifyMaxInFlightPerConversation: setting(
    'notify_max_in_flight_per_conversation',
    z.coerce.number().int().min(1).max(100_000),
    100,
    'most deliveries under way at once to one conversation; the next ones for it wait their turn, in order, and count in `notify_max_in_flight`',
  ),
  callbackAllow: setting(
    'callback_allow',
    callbackAllow,
    '',
    'internal receivers job callbacks may reach: CIDRs, addresses and host names, comma-separated, e.g. `10.20.0.0/16,hooks.internal` (empty: only public addresses)',
  ),
  callbackTimeoutMs: setting(
    'callback_timeout',
    duration,
    '10s',
    'longest time one callback POST may take, from resolving the name to the status line of the answer',
  ),
  secret: setting(
    'secret',
    serverSecret,
    '',
    "server-side key (at least 32 characters, e.g. from `openssl rand -hex 32`) from which each user's callback secret is derived; the same on every node",
    true,
  ),
};

/** Every setting, in the order the documentation lists them. */
export const SETTINGS_SHAPE = {
  ...GATEWAY_SETTINGS,
  ...SLACK_SETTINGS,
  ...TEAMS_SETTINGS,
  ...EMAIL_SETTINGS,
  ...WECHAT_SETTINGS,
  logLevel: setting(
    'log_level',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    'info',
    'log level: `fatal`, `error`, `warn`, `info`, `debug`, `trace`, or `silent`',
  ),
};

/** The configuration's schema: one object of every setting. */
export const configSchema = z.object(SETTINGS_SHAPE);

/** The validated settings of one gateway process. */
export type Config = z.infer<typeof configSchema>;

/** One setting: its key in Config, its value type, and what the table says of it. */
export interface SettingSpec extends SettingInfo {
  key: keyof Config;
  schema: z.ZodType;
}

/** The settings table as rows, in order. */
export const SETTINGS: readonly SettingSpec[] = Object.entries(SETTINGS_SHAPE).map(([key, schema]) => ({
  key: key as keyof Config,
  schema,
  ...settingInfo(schema),
}));
