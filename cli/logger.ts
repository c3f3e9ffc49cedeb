/** The gateway's logger: JSON lines (or readable lines on a terminal), with secrets masked in every line whatever wrote it. */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { SETTINGS, type Config } from '../config';

/** Skadi tokens, Slack tokens, and bearer credentials, wherever they appear in a line (a library's debug dump included). */
const SECRET_PATTERN = /\b(sk[au]_|xox[abposr]-|xapp-|whsec_)[A-Za-z0-9_-]{6,}|(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}/g;

/** Masks token-shaped strings and the given secret values in a text. */
export function maskSecrets(text: string, literals: readonly string[] = []): string {
  let masked = text.replace(SECRET_PATTERN, (_, prefix: string | undefined, bearer: string | undefined) => `${prefix ?? bearer}***`);
  for (const literal of literals) if (masked.includes(literal)) masked = masked.split(literal).join('***');
  return masked;
}

/** The password of a secret URL, as written and decoded, when long enough to mask safely (a library may log it alone). */
function urlPasswords(text: string): string[] {
  try {
    const raw = new URL(text).password;
    return [raw, decodeURIComponent(raw)].filter((p) => p.length >= 8);
  } catch {
    return [];
  }
}

/** The configured secret values long enough to mask safely (short ones would blank ordinary words). */
function secretValues(config: Config): string[] {
  const values: string[] = [];
  for (const spec of SETTINGS) {
    const value = spec.secret ? (config as unknown as Record<string, unknown>)[spec.key] : undefined;
    if (typeof value === 'string' && value.length >= 8) values.push(value, JSON.stringify(value).slice(1, -1));
    if (typeof value === 'string' && /^[a-z]+:\/\//.test(value)) values.push(...urlPasswords(value));
  }
  return [...new Set(values)];
}

/** Where and how to log. */
export interface LoggerOptions {
  /** JSON lines even on a terminal. */
  json?: boolean;
  /** A file descriptor or stream; default stdout. */
  destination?: number | NodeJS.WritableStream;
  /** Base fields of every line. */
  base?: Record<string, unknown>;
  /** Level instead of the configured one. */
  level?: string;
}

/** Builds the logger: readable lines when it writes to a terminal (unless json), JSON lines otherwise; secrets masked. */
export function createLogger(config: Config, options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? 1;
  const literals = secretValues(config);
  const terminal = destination === 1 ? process.stdout.isTTY : destination === 2 ? process.stderr.isTTY : false;
  const settings: pino.LoggerOptions = {
    level: options.level ?? config.logLevel,
    ...(options.base ? { base: options.base } : {}),
    hooks: { streamWrite: (line) => maskSecrets(line, literals) },
  };
  if (terminal && !options.json) {
    return pino(settings, pretty({ colorize: true, destination, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return pino(settings, typeof destination === 'number' ? pino.destination(destination) : destination);
}
