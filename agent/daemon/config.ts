/** The daemon's YAML config: the original agent's format (debug, token, server, shortcuts, commands, templates) plus limits. */
import fs from 'node:fs';
import { z } from 'zod';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { parseDuration } from '../../config/duration';
import { RefusedMessage, splitWords } from '../words';
import { compileTemplate, TemplateSyntaxError } from './template';

/** The config file is wrong; the message names the file, the line and the problem. */
export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
  if (ms === null || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (e.g. 30s, 10m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

/** A command prefix: must split into words without shell operators, since commands run without a shell. */
const prefixText = z
  .string()
  .min(1, 'prefix is empty')
  .superRefine((text, ctx) => {
    try {
      if (splitWords(text).length === 0) ctx.addIssue({ code: 'custom', message: 'prefix has no words' });
    } catch (err) {
      if (!(err instanceof RefusedMessage)) throw err;
      ctx.addIssue({
        code: 'custom',
        message: `prefix cannot run without a shell (${err.message}); use a template or a shortcut for pipes and redirections`,
      });
    }
  });

/** A template's shell text: its quotes must close, so that each %s can be placed as a parameter. */
const templateText = z
  .string()
  .min(1, 'temp is empty')
  .superRefine((text, ctx) => {
    try {
      compileTemplate(text);
    } catch (err) {
      if (!(err instanceof TemplateSyntaxError)) throw err;
      ctx.addIssue({ code: 'custom', message: `temp has an ${err.message}` });
    }
  });

const common = { dir: z.string().optional(), timeout: duration.optional() };

const shortcut = z.object({ short: z.string().min(1), cmd: z.string().min(1), ...common });
const command = z.object({ prefix: prefixText, options: z.boolean().optional().default(false), ...common });
/** The first version of the original agent: `commands: [{msg, cmd, dir}]`, which are shortcuts. */
const legacyCommand = z.object({ msg: z.string().min(1), cmd: z.string().min(1), ...common });
const template = z.object({
  name: z.string().min(1).regex(/^\S+$/, 'name must be one word'),
  temp: templateText,
  options: z.boolean().optional().default(false),
  ...common,
});

/** Lists the original agent may leave empty or null; an empty one is worth a warning (probably a mistake). */
const LISTS = ['shortcuts', 'commands', 'templates'] as const;
const list = <T extends z.ZodType>(item: T) =>
  z
    .array(item)
    .nullish()
    .transform((v) => v ?? []);

const schema = z.object({
  debug: z.boolean().optional().default(false),
  token: z.string().optional(),
  server: z.string().url('server must be a URL like https://skadi.example.com').optional().default('http://127.0.0.1:1323'),
  shortcuts: list(shortcut),
  commands: list(z.union([command, legacyCommand])),
  templates: list(template),
  timeout: duration.optional().default(600_000),
  output_limit: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .optional()
    .default(64 * 1024),
  progress_interval: duration.optional().default(5000),
  env: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
    .optional()
    .default(['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER']),
  concurrency: z.number().int().min(1).max(64).optional().default(1),
  shell: z.string().optional().default('/bin/sh'),
});

/** The keys each entry kind knows; anything else is reported as a warning (the original agent ignored it too). */
const ENTRY_KEYS: Record<(typeof LISTS)[number], Set<string>> = {
  shortcuts: new Set(Object.keys(shortcut.shape)),
  commands: new Set([...Object.keys(command.shape), ...Object.keys(legacyCommand.shape)]),
  templates: new Set(Object.keys(template.shape)),
};

/** A shortcut: an exact message that runs a command line the owner wrote, through the shell. */
export interface Shortcut {
  short: string;
  cmd: string;
  dir?: string;
  timeoutMs?: number;
}

/** A command: an allowed program (with fixed leading arguments) plus the sender's words as arguments, no shell. */
export interface CommandEntry {
  prefix: string;
  prefixWords: string[];
  options: boolean;
  dir?: string;
  timeoutMs?: number;
}

/** A template: the owner's shell line whose %s placeholders take the sender's words as positional parameters. */
export interface Template {
  name: string;
  temp: string;
  /** The shell script that runs, with each %s rewritten as a parameter reference (see template.ts). */
  script: string;
  /** How many words the template takes. */
  placeholders: number;
  /** May the sender's words start with "-"? Default false: placeholders take values, not options. */
  options: boolean;
  dir?: string;
  timeoutMs?: number;
}

/** The validated daemon configuration. */
export interface AgentDaemonConfig {
  debug: boolean;
  token: string;
  server: string;
  shortcuts: Shortcut[];
  commands: CommandEntry[];
  templates: Template[];
  timeoutMs: number;
  outputLimit: number;
  progressIntervalMs: number;
  env: string[];
  concurrency: number;
  shell: string;
  /** Things the file has that the daemon ignores (unknown keys, empty lists), each with its line. */
  warnings: string[];
}

/** Parses config text; `env` may override token and server (SKADI_AGENT_TOKEN, SKADI_SERVER). */
export function parseAgentConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): AgentDaemonConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    const err = doc.errors[0];
    const pos = lines.linePos(err.pos[0]);
    throw new AgentConfigError(`${file}:${pos.line}: ${err.message.split('\n')[0]}`);
  }
  const raw = doc.toJS() ?? {};
  // The original agent's example leaves `token:` empty (YAML null): an empty or null value is "not set".
  const given = Object.fromEntries(Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== null && v !== ''));
  const parsed = schema.safeParse(given);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String);
    const keys = (issue as { keys?: string[] }).keys;
    const target = keys?.length ? [...path, keys[0]] : path;
    const node = doc.getIn(target, true) ?? doc.getIn(path, true) ?? doc.getIn(path.slice(0, -1), true);
    const line = isNode(node) && node.range ? lines.linePos(node.range[0]).line : 1;
    const where = path.length ? path.join('.') : 'top level';
    throw new AgentConfigError(`${file}:${line}: ${where}: ${issue.message}`);
  }
  const c = parsed.data;
  const warnings = configWarnings(raw, (path) => lineOf(doc, lines, path), file);
  const token = env.SKADI_AGENT_TOKEN || c.token;
  if (!token) throw new AgentConfigError(`${file}: token is required (or set SKADI_AGENT_TOKEN)`);
  const shortcuts: Shortcut[] = c.shortcuts.map((s) => ({ short: s.short, cmd: s.cmd, dir: s.dir, timeoutMs: s.timeout }));
  const commands: CommandEntry[] = [];
  for (const entry of c.commands) {
    if ('msg' in entry) shortcuts.push({ short: entry.msg, cmd: entry.cmd, dir: entry.dir, timeoutMs: entry.timeout });
    else
      commands.push({
        prefix: entry.prefix,
        prefixWords: splitWords(entry.prefix),
        options: entry.options,
        dir: entry.dir,
        timeoutMs: entry.timeout,
      });
  }
  return {
    debug: c.debug,
    token,
    server: env.SKADI_SERVER || c.server,
    shortcuts,
    commands,
    templates: c.templates.map((t) => ({
      name: t.name,
      temp: t.temp,
      ...compileTemplate(t.temp),
      options: t.options,
      dir: t.dir,
      timeoutMs: t.timeout,
    })),
    timeoutMs: c.timeout,
    outputLimit: c.output_limit,
    progressIntervalMs: c.progress_interval,
    env: c.env,
    concurrency: c.concurrency,
    shell: c.shell,
    warnings,
  };
}

/** The line of a config path (1 when it cannot be found). */
function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: (string | number)[]): number {
  const node = doc.getIn(path, true);
  return isNode(node) && node.range ? lines.linePos(node.range[0]).line : 1;
}

/** Warnings for keys the daemon does not know and for empty lists: the original agent accepted both silently. */
function configWarnings(raw: Record<string, unknown>, line: (path: (string | number)[]) => number, file: string): string[] {
  const warnings: string[] = [];
  const known = new Set(Object.keys(schema.shape));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) warnings.push(`${file}:${line([key])}: unknown key "${key}" is ignored`);
  }
  for (const name of LISTS) {
    const entries = raw[name];
    if (name in raw && (!Array.isArray(entries) || entries.length === 0)) warnings.push(`${file}:${line([name])}: ${name} is empty`);
    if (!Array.isArray(entries)) continue;
    entries.forEach((entry, index) => {
      for (const key of Object.keys(entry ?? {})) {
        if (!ENTRY_KEYS[name].has(key))
          warnings.push(`${file}:${line([name, index, key])}: ${name}.${index}: unknown key "${key}" is ignored`);
      }
    });
  }
  return warnings;
}

/**
 * The config file to use: the given one, else /etc/skadi/skadi.yml, else ./skadi.yml. The system file comes first
 * (the original agent preferred ./skadi.yml): a daemon started from whatever directory must not take its allow-list
 * from a file there.
 */
export function findConfigFile(given?: string): string {
  if (given) return given;
  for (const candidate of ['/etc/skadi/skadi.yml', 'skadi.yml']) if (fs.existsSync(candidate)) return candidate;
  throw new AgentConfigError('no config file: looked for /etc/skadi/skadi.yml and ./skadi.yml (or pass --config <file>)');
}

/** An agent token as `skadi agent add` prints it. */
const AGENT_TOKEN = /^ska_[\w-]{32}$/;

/** The original agent's `skadi <token>`: sets `token:` in the config file, keeping its comments; refuses a file that would not load. */
export function writeTokenToConfig(file: string, token: string): void {
  if (!AGENT_TOKEN.test(token)) {
    throw new AgentConfigError(
      `"${token.slice(0, 40)}" is not an agent token (ska_ and 32 characters); \`skadi agent add <name> --user <user>\` or \`skadi agent token <name> --user <user>\` prints one`,
    );
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new AgentConfigError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  // The `token:` line is rewritten in place (its comment kept), or added at the end: the rest of the file stays as written.
  const line = /^token:[ \t]*(?:"[^"\n]*"|'[^'\n]*'|[^#\n]*?)([ \t]+#[^\n]*)?$/m;
  const updated = line.test(text)
    ? text.replace(line, (_all, comment = '') => `token: "${token}"${comment}`)
    : `${text}${text && !text.endsWith('\n') ? '\n' : ''}token: "${token}"\n`;
  if (parseAgentConfig(updated, file, {}).token !== token)
    throw new AgentConfigError(`${file}: its token: line could not be rewritten; set the token by hand`);
  fs.writeFileSync(file, updated); // an existing file keeps its mode
}

/** Reads and parses a config file. */
export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentDaemonConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new AgentConfigError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  return parseAgentConfig(text, file, env);
}

/** Warnings about how the agent is deployed: a token file others can read, a token sent in clear over the network. */
export function deploymentWarnings(
  file: string,
  config: Pick<AgentDaemonConfig, 'server' | 'token'>,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const warnings: string[] = [];
  const tokenInFile = !env.SKADI_AGENT_TOKEN;
  try {
    const mode = fs.statSync(file).mode;
    if (tokenInFile && mode & 0o044)
      warnings.push(
        `${file} holds the agent token and is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
      );
  } catch {
    // the file was read a moment ago; a race with its removal is not worth a warning
  }
  const url = new URL(config.server);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.');
  if (url.protocol === 'http:' && !loopback)
    warnings.push(`server ${config.server} is plain http: the agent token and every job cross the network unencrypted; use https`);
  return warnings;
}
