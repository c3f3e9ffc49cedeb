/** Loads the gateway configuration once: defaults, then an optional YAML/JSON file, then SKADI_* variables. */
import fs from 'node:fs';
import YAML from 'yaml';
import { SETTINGS, type SettingSpec } from './settings';

export { parseDuration, formatDuration } from './duration';
export { SETTINGS, type SettingSpec } from './settings';

/** The validated settings of one gateway process. */
export interface Config {
  port: number;
  host: string;
  mysqlUrl: string;
  redisUrl: string;
  redisCluster: string[];
  redisPrefix: string;
  jobLeaseMs: number;
  approvalTimeoutMs: number;
  /** A delayed job due while its agent is offline waits this long for it, then expires. */
  delayedWaitMs: number;
  agentOfflineAfterMs: number;
  bodyLimitBytes: number;
  sweepIntervalMs: number;
  reconcileIntervalMs: number;
  eventMaxLen: number;
  maxWaitSeconds: number;
  authMaxFailures: number;
  authWindowMs: number;
  /** Trusted proxies: a hop count or addresses/CIDRs (empty: the socket address is the client's). */
  trustProxy: string[];
  maxPollsPerAgent: number;
  /** Worker processes of `serve` (1: no cluster). */
  workers: number;
  notifyMaxAttempts: number;
  notifyRetryBaseMs: number;
  notifyReclaimIdleMs: number;
  notifyPaceMs: number;
  /** Most events one notifier holds; it stops reading at it. */
  notifyMaxInFlight: number;
  /** Most deliveries under way at once to one conversation; the others wait in order. */
  notifyMaxInFlightPerConversation: number;
  /** CIDRs and host names that job callbacks may reach although they are not public. */
  callbackAllow: string[];
  callbackTimeoutMs: number;
  /** Server-side key of the per-user callback secrets; empty when not set. */
  secret: string;
  slackSigningSecret: string;
  slackBotToken: string;
  slackApiUrl: string;
  slackAccess: 'closed' | 'workspace' | 'open';
  slackAllowedTeams: string[];
  slackSocketMode: boolean;
  slackAppToken: string;
  slackBotUserId: string;
  slackAllowBots: boolean;
  teamsAppId: string;
  teamsAppPassword: string;
  teamsAppType: 'SingleTenant' | 'MultiTenant' | 'UserAssignedMSI';
  teamsTenantId: string;
  teamsAccess: 'closed' | 'workspace' | 'open';
  teamsAllowedTenants: string[];
  teamsOpenIdMetadataUrl: string;
  teamsLoginUrl: string;
  teamsServiceUrl: string;
  teamsInsecureNoAuth: boolean;
  emailImapUrl: string;
  emailMailbox: string;
  emailSmtpUrl: string;
  emailFrom: string;
  emailAuthservId: string;
  emailAuthFormat: 'rfc8601' | 'microsoft365';
  emailRequire: 'dkim' | 'spf' | 'dkim-or-spf' | 'none';
  emailAccess: 'closed' | 'workspace' | 'open';
  emailAllowedDomains: string[];
  emailProcessedFolder: string;
  emailMaxSizeBytes: number;
  emailMaxOutputBytes: number;
  emailSenderLimit: number;
  emailSenderWindowMs: number;
  emailTlsCa: string;
  wechatPuppet: string;
  wechatPuppetToken: string;
  wechatPuppetEndpoint: string;
  wechatPuppetTls: boolean;
  wechatAccess: 'closed' | 'open';
  wechatPaceMs: number;
  wechatMaxPerMinute: number;
  wechatLeaseMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** A setting has a wrong value; the message names the setting and what is wrong. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Where configuration comes from; the environment is injected so tests never touch process.env. */
export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  file?: string;
  overrides?: Partial<Config>;
}

/** Reads the config file (YAML or JSON) into a plain object. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${file}: must be a mapping of setting: value`);
  return parsed as Record<string, unknown>;
}

/** Validates one raw value against its setting, throwing a ConfigError that names it. */
function parseSetting(spec: SettingSpec, raw: unknown, source: string): unknown {
  const result = spec.schema.safeParse(raw);
  if (result.success) return result.data;
  const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
  throw new ConfigError(`setting ${spec.file} (${spec.env}) from ${source} = ${shown}: ${result.error.issues[0]?.message ?? 'invalid'}`);
}

/** Parses one setting given another way (a command-line option), with the same checks and messages; source names it. */
export function parseSettingValue(key: string, raw: unknown, source: string): unknown {
  const spec = SETTINGS.find((s) => s.key === key);
  if (!spec) throw new Error(`no setting ${key}`);
  return parseSetting(spec, raw, source);
}

/** Loads and validates the configuration of a gateway process, or throws a ConfigError. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.SKADI_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const known = new Set(SETTINGS.map((s) => s.file));
  const unknown = Object.keys(fromFile).filter((key) => !known.has(key));
  if (unknown.length > 0) throw new ConfigError(`config file ${file}: unknown setting "${unknown[0]}" (known: ${[...known].join(', ')})`);

  const config: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const envValue = env[spec.env];
    if (envValue !== undefined && envValue !== '') config[spec.key] = parseSetting(spec, envValue, spec.env);
    else if (spec.file in fromFile) config[spec.key] = parseSetting(spec, fromFile[spec.file], `file ${file}`);
    else config[spec.key] = parseSetting(spec, spec.default, 'defaults');
  }
  return { ...(config as unknown as Config), ...options.overrides };
}

/** The configuration with every secret replaced, safe to log. */
export function redactConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  for (const spec of SETTINGS) {
    if (!spec.secret) continue;
    const value = String(shown[spec.key] ?? '');
    shown[spec.key] = /^[a-z]+:\/\//.test(value) ? redactUrl(value) : value ? '***' : '';
  }
  return shown;
}

/** Hides the password of a URL, keeping where it points (useful in error messages). */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}
