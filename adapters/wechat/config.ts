/** Settings of the WeChat adapter (from the gateway configuration: SKADI_WECHAT_*). */
import crypto from 'node:crypto';

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
    return 'SKADI_WECHAT_PUPPET_TOKEN must start with the service\'s name and an underscore, as provider tokens do (e.g. puppet_padlocal_…, or insecure_… for a service without TLS)';
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

/** The adapter settings from the gateway configuration. */
export function wechatConfigFrom(c: {
  wechatPuppet: string; wechatPuppetToken: string; wechatPuppetEndpoint: string; wechatPuppetTls: boolean; wechatAccess: 'closed' | 'open';
  wechatPaceMs: number; wechatMaxPerMinute: number; wechatLeaseMs: number;
}): WechatAdapterConfig {
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
