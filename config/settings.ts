/** Every setting of the gateway: its name in the config file, its environment variable, and how it is parsed. */
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
const url = (protocols: string[]) =>
  z.string().refine((text) => {
    try {
      return protocols.includes(new URL(text).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

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
  setting('mysqlUrl', 'mysql_url', url(['mysql:', 'mariadb:']), 'mysql://root@127.0.0.1:3306/skadi', 'MySQL/MariaDB database (created if missing)', true),
  setting('redisUrl', 'redis_url', url(['redis:', 'rediss:']), 'redis://127.0.0.1:6379/0', 'Redis server', true),
  setting('redisPrefix', 'redis_prefix', z.string().min(1).max(64).regex(/^[\w:.-]+$/, 'letters, digits and _ : . - only'), 'skadi:', 'prefix of every Redis key and stream'),
  setting('jobLeaseMs', 'job_lease', duration, '10m', 'a sent or running job with no report for this long expires'),
  setting('agentOfflineAfterMs', 'agent_offline_after', duration, '3m', 'an agent that has not polled for this long is offline'),
  setting('bodyLimitBytes', 'body_limit', bytes, '1mb', 'largest accepted HTTP request body'),
  setting('sweepIntervalMs', 'sweep_interval', duration, '1s', 'how often each node looks for overdue leases, offline agents and due delayed jobs'),
  setting('reconcileIntervalMs', 'reconcile_interval', duration, '30s', 'how often each node compares Redis with MySQL and repairs Redis'),
  setting('eventMaxLen', 'event_maxlen', z.coerce.number().int().min(1000), 1_000_000, 'approximate length cap of each Redis event stream'),
  setting('maxWaitSeconds', 'max_wait', z.coerce.number().int().min(0).max(600), 60, 'longest accepted ?wait= of a long poll, in seconds'),
  setting('logLevel', 'log_level', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'log level'),
] as const;
