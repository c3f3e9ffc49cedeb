/**
 * What settings are made of: the value types they share (durations, sizes, lists, URLs…) and `setting()`, which gives
 * a value type its name in the config file, its SKADI_* variable, its default and its help. The gateway's table
 * (config/settings.ts) and each channel's rows (adapters/<channel>/config.ts) are written with it, once.
 */
import { z } from 'zod';
import { parseDuration } from './duration';

/** A duration: milliseconds, or text such as 500ms, 30s, 10m, 1h30m. */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === null || !Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 30s, 10m, 1h30m)` });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes: a number, or text such as 64kb, 1mb. */
export const bytes = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const match = /^(\d+)\s*(b|kb|kib|mb|mib)?$/i.exec(String(value).trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 65536, 64kb, 1mb)` });
    return z.NEVER;
  }
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1;
  return Number(match[1]) * factor;
});

/** true/false, 1/0 or yes/no. */
export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

/** A list: comma-separated text, or an array in the config file. */
export const list = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));

/** Who may use a chat channel: linked identities only, whole workspaces (tenants, domains), or anyone. */
export const access = z.enum(['closed', 'workspace', 'open'], { error: 'must be closed, workspace or open' });

/** A URL with one of the given protocols (`http:`, `mysql:`…). */
export const url = (protocols: string[]) =>
  z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  );

/** What a setting is besides its value type. */
export interface SettingInfo {
  /** Its name in the config file, e.g. `job_lease`. */
  file: string;
  /** Its environment variable: SKADI_ and the file name in capitals. */
  env: string;
  /** Never logged or shown. */
  secret: boolean;
  /** The default, as it would be written in the config file. */
  default: unknown;
  /** One line for the documentation. */
  help: string;
}

const infos = z.registry<SettingInfo>();

/** A setting: its value type with its default (parsed like any value) and what the table says of it. */
export function setting<S extends z.ZodType>(file: string, schema: S, def: z.input<S>, help: string, secret = false) {
  const withDefault = schema.prefault(def as never);
  infos.add(withDefault, { file, env: `SKADI_${file.toUpperCase()}`, secret, default: def, help });
  return withDefault;
}

/** The name, variable, default and help of a setting made by setting(). */
export function settingInfo(schema: z.ZodType): SettingInfo {
  const info = infos.get(schema);
  if (!info) throw new Error('not a setting made by setting()');
  return info;
}
