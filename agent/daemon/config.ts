/** The daemon's YAML config: the original agent's format (debug, token, server, shortcuts, commands, templates) plus limits. */
import fs from 'node:fs';
import { z } from 'zod';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { parseDuration } from '../../config/duration';
import { RefusedMessage, splitWords } from './words';

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

/** Owner-written argv text (a command prefix or template): must split into words without shell operators. */
const argvText = (what: string) =>
  z.string().min(1, `${what} is empty`).superRefine((text, ctx) => {
    try {
      if (splitWords(text.replace(/%s/g, 'x')).length === 0) ctx.addIssue({ code: 'custom', message: `${what} has no words` });
    } catch (err) {
      if (!(err instanceof RefusedMessage)) throw err;
      ctx.addIssue({ code: 'custom', message: `${what} cannot run without a shell (${err.message}); use a shortcut or a script for pipes and redirections` });
    }
  });

const common = { dir: z.string().optional(), timeout: duration.optional() };

const shortcut = z.object({ short: z.string().min(1), cmd: z.string().min(1), ...common }).strict();
const command = z
  .object({ prefix: argvText('prefix'), options: z.boolean().optional().default(true), ...common })
  .strict();
/** The first version of the original agent: `commands: [{msg, cmd, dir}]`, which are shortcuts. */
const legacyCommand = z.object({ msg: z.string().min(1), cmd: z.string().min(1), ...common }).strict();
const template = z
  .object({ name: z.string().min(1).regex(/^\S+$/, 'name must be one word'), temp: argvText('temp'), options: z.boolean().optional().default(false), ...common })
  .strict();

const schema = z
  .object({
    debug: z.boolean().optional().default(false),
    token: z.string().optional(),
    server: z.string().url('server must be a URL like https://skadi.example.com').optional().default('http://127.0.0.1:1323'),
    shortcuts: z.array(shortcut).nullish().transform((v) => v ?? []),
    commands: z.array(z.union([command, legacyCommand])).nullish().transform((v) => v ?? []),
    templates: z.array(template).nullish().transform((v) => v ?? []),
    timeout: duration.optional().default(600_000),
    output_limit: z.number().int().min(1024).max(16 * 1024 * 1024).optional().default(64 * 1024),
    progress_interval: duration.optional().default(5000),
    env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).optional().default(['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER']),
    concurrency: z.number().int().min(1).max(64).optional().default(1),
    shell: z.string().optional().default('/bin/sh'),
  })
  .strict();

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

/** A template: the owner's argv with %s placeholders filled from the sender's words, no shell. */
export interface Template {
  name: string;
  temp: string;
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
  const parsed = schema.safeParse(raw);
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
  const token = env.SKADI_AGENT_TOKEN || c.token;
  if (!token) throw new AgentConfigError(`${file}: token is required (or set SKADI_AGENT_TOKEN)`);
  const shortcuts: Shortcut[] = c.shortcuts.map((s) => ({ short: s.short, cmd: s.cmd, dir: s.dir, timeoutMs: s.timeout }));
  const commands: CommandEntry[] = [];
  for (const entry of c.commands) {
    if ('msg' in entry) shortcuts.push({ short: entry.msg, cmd: entry.cmd, dir: entry.dir, timeoutMs: entry.timeout });
    else commands.push({ prefix: entry.prefix, prefixWords: splitWords(entry.prefix), options: entry.options, dir: entry.dir, timeoutMs: entry.timeout });
  }
  return {
    debug: c.debug,
    token,
    server: env.SKADI_SERVER || c.server,
    shortcuts,
    commands,
    templates: c.templates.map((t) => ({ name: t.name, temp: t.temp, options: t.options, dir: t.dir, timeoutMs: t.timeout })),
    timeoutMs: c.timeout,
    outputLimit: c.output_limit,
    progressIntervalMs: c.progress_interval,
    env: c.env,
    concurrency: c.concurrency,
    shell: c.shell,
  };
}

/** The config file to use: the given one, else /etc/skadi/skadi.yml, else ./skadi.yml. */
export function findConfigFile(given?: string): string {
  if (given) return given;
  for (const candidate of ['/etc/skadi/skadi.yml', 'skadi.yml']) if (fs.existsSync(candidate)) return candidate;
  throw new AgentConfigError('no config file: looked for /etc/skadi/skadi.yml and ./skadi.yml (or pass --config <file>)');
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
