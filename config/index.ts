/** Loads the gateway configuration once: defaults, then an optional YAML/JSON file, then SKADI_* variables. */
import fs from 'node:fs';
import YAML from 'yaml';
import { configSchema, SETTINGS, type Config, type SettingSpec } from './settings';

export { parseDuration, formatDuration } from './duration';
export { SETTINGS, type Config, type SettingSpec } from './settings';

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
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`config file ${file}: must be a mapping of setting: value`);
  return parsed as Record<string, unknown>;
}

/** The error of a raw value of a setting, naming the setting, where the value came from and (unless secret) the value. */
function settingError(spec: SettingSpec, raw: unknown, source: string, message: string | undefined): ConfigError {
  const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
  return new ConfigError(`setting ${spec.file} (${spec.env}) from ${source} = ${shown}: ${message ?? 'invalid'}`);
}

/** Parses one setting given another way (a command-line option), with the same checks and messages; source names it. */
export function parseSettingValue<K extends keyof Config>(key: K, raw: unknown, source: string): Config[K] {
  const spec = SETTINGS.find((s) => s.key === key);
  if (!spec) throw new Error(`no setting ${key}`);
  const result = configSchema.shape[key].safeParse(raw);
  if (!result.success) throw settingError(spec, raw, source, result.error.issues[0]?.message);
  return result.data as Config[K];
}

/** Loads and validates the configuration of a gateway process, or throws a ConfigError. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.SKADI_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const known = new Set(SETTINGS.map((s) => s.file));
  const unknown = Object.keys(fromFile).filter((key) => !known.has(key));
  if (unknown.length > 0) throw new ConfigError(`config file ${file}: unknown setting "${unknown[0]}" (known: ${[...known].join(', ')})`);

  // Each value from the environment, else the file; a missing one is given its default by the schema.
  const raw: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const spec of SETTINGS) {
    const envValue = env[spec.env];
    if (envValue !== undefined && envValue !== '') {
      raw[spec.key] = envValue;
      sources.set(spec.key, spec.env);
    } else if (spec.file in fromFile) {
      raw[spec.key] = fromFile[spec.file];
      sources.set(spec.key, `file ${file}`);
    }
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const spec = SETTINGS.find((s) => s.key === issue?.path[0])!;
    throw settingError(spec, raw[spec.key] ?? spec.default, sources.get(spec.key) ?? 'defaults', issue?.message);
  }
  return { ...result.data, ...options.overrides };
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
