/** Settings of the WeChat adapter (from the gateway configuration: SKADI_WECHAT_*). */
import { z } from 'zod';
import { bool, duration, setting } from '../../config/kit';
import crypto from 'node:crypto';

/** The wechat settings (SKADI_WECHAT_*): their rows of the gateway's settings table (config/settings.ts). */
export const WECHAT_SETTINGS = {
  wechatPuppet: setting(
    'wechat_puppet',
    z.string().regex(/^(@[\w.-]+\/)?[\w.-]*$/, 'must be an npm package name, e.g. wechaty-puppet-service'),
    '',
    'wechaty puppet package: `wechaty-puppet-service`, `wechaty-puppet-wechat4u` or another one you installed (the WeChat adapter is enabled when it is set)',
  ),
  wechatPuppetToken: setting('wechat_puppet_token', z.string(), '', 'token of the puppet service (`wechaty-puppet-service`)', true),
  wechatPuppetEndpoint: setting(
    'wechat_puppet_endpoint',
    z
      .string()
      .regex(/^([\w.-]+|\[[\da-f:]+\]):\d{1,5}$/i, 'must be host:port, e.g. 10.0.0.5:8788')
      .or(z.literal('')),
    '',
    '`host:port` of the puppet service; when set it is dialled directly (no token discovery)',
  ),
  wechatPuppetTls: setting('wechat_puppet_tls', bool, true, 'TLS to the puppet service; `false` only for a service on a trusted network'),
  wechatAccess: setting(
    'wechat_access',
    z.enum(['closed', 'open'], { error: 'must be closed or open' }),
    'closed',
    'who may use Skadi from WeChat: `closed` (linked contacts) or `open` (anyone who can message the bot)',
  ),
  wechatPaceMs: setting(
    'wechat_pace',
    duration,
    '1.5s',
    'least time between two messages to one WeChat conversation (accounts that burst get banned)',
  ),
  wechatMaxPerMinute: setting(
    'wechat_max_per_minute',
    z.coerce.number().int().min(1).max(600),
    40,
    'most WeChat messages the bot sends in any minute, all conversations together',
  ),
  wechatLeaseMs: setting(
    'wechat_lease',
    duration,
    '30s',
    'with several gateway nodes, how long the logged-in node keeps its claim on the account without renewing it',
  ),
};

/** What the WeChat adapter needs. */
export interface WechatAdapterConfig {
  /** The wechaty puppet package, e.g. wechaty-puppet-service or wechaty-puppet-wechat4u. */
  puppet: string;
  /** The puppet service's token (wechaty-puppet-service). */
  token: string;
  /** host:port of the puppet service: dialled directly, without token discovery (empty: discovery). */
  endpoint: string;
  /** TLS to the puppet service. */
  tls: boolean;
  access: 'closed' | 'open';
  /** Least time between two messages to one conversation. */
  paceMs: number;
  /** Most messages sent in any minute, all conversations together. */
  maxPerMinute: number;
  /** How long the logged-in node's claim on the account lasts without renewal. */
  leaseMs: number;
}

/** The WeChat adapter is enabled when a puppet is named. */
export function wechatEnabled(config: WechatAdapterConfig): boolean {
  return config.puppet !== '';
}

/** Why the settings cannot work (one line for the start-up error), or null. */
export function wechatConfigProblem(config: WechatAdapterConfig, resolve: (name: string) => string = require.resolve): string | null {
  if (config.puppet === 'wechaty-puppet-service' && config.token === '') {
    return 'SKADI_WECHAT_PUPPET=wechaty-puppet-service needs SKADI_WECHAT_PUPPET_TOKEN (the token your puppet service provider gave you)';
  }
  if (config.puppet === 'wechaty-puppet-service' && !/^[A-Za-z0-9.-]+_./.test(config.token)) {
    // wechaty-puppet-service takes the TLS server name from the token's prefix, and quotes the token when it has none.
    return "SKADI_WECHAT_PUPPET_TOKEN must start with the service's name and an underscore, as provider tokens do (e.g. puppet_padlocal_…, or insecure_… for a service without TLS)";
  }
  try {
    resolve(config.puppet);
  } catch {
    return `SKADI_WECHAT_PUPPET=${config.puppet} is not installed: run \`npm install ${config.puppet}\` where Skadi is installed, or choose wechaty-puppet-service`;
  }
  return null;
}

/** The options wechaty hands to the puppet. */
export function puppetOptions(config: WechatAdapterConfig): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (config.token) options.token = config.token;
  if (config.endpoint) options.endpoint = config.endpoint;
  if (!config.tls) options.tls = { disable: true };
  return options;
}

/** The name of the account's lease: one per puppet and token, so that two installations' bots never share one. */
export function accountLeaseName(config: WechatAdapterConfig): string {
  const account = crypto.createHash('sha256').update(`${config.puppet}\n${config.token}\n${config.endpoint}`).digest('hex').slice(0, 16);
  return `wechat:${account}`;
}

/** The Wechat settings as the gateway configuration holds them. */
export type WechatSettings = z.infer<z.ZodObject<typeof WECHAT_SETTINGS>>;

/** The adapter settings from the gateway configuration. */
export function wechatConfigFrom(c: WechatSettings): WechatAdapterConfig {
  return {
    puppet: c.wechatPuppet,
    token: c.wechatPuppetToken,
    endpoint: c.wechatPuppetEndpoint,
    tls: c.wechatPuppetTls,
    access: c.wechatAccess,
    paceMs: c.wechatPaceMs,
    maxPerMinute: c.wechatMaxPerMinute,
    leaseMs: c.wechatLeaseMs,
  };
}
