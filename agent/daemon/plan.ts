/** Decides what a chat message may run: a shortcut, a command, a template, the help text, or nothing. */
import type { AgentDaemonConfig, CommandEntry } from './config';
import { RefusedMessage, splitWords } from '../words';
import { templateUsage } from './template';

/** What to do for a message. */
export type Plan =
  | { kind: 'help'; text: string }
  | { kind: 'shell'; label: string; command: string; args: string[]; dir?: string; timeoutMs: number }
  | { kind: 'exec'; label: string; argv: string[]; dir?: string; timeoutMs: number }
  | { kind: 'refuse'; reason: string };

/** The help text: everything this agent allows. */
export function helpText(config: AgentDaemonConfig): string {
  const lines: string[] = [];
  if (config.shortcuts.length) {
    lines.push('Shortcuts (the exact message runs the command):');
    for (const s of config.shortcuts) lines.push(`  ${s.short}  →  ${s.cmd}${s.dir ? `  (in ${s.dir})` : ''}`);
  }
  if (config.commands.length) {
    lines.push('Commands (your words become arguments; none may start with "-" unless options are allowed):');
    for (const c of config.commands)
      lines.push(`  ${c.prefix} [arguments…]${c.options ? '  (options allowed)' : ''}${c.dir ? `  (in ${c.dir})` : ''}`);
  }
  if (config.templates.length) {
    lines.push('Templates (each of your words fills one %s, as a single value):');
    for (const t of config.templates)
      lines.push(`  ${templateUsage(t.name, t.placeholders)}  →  ${t.temp}${t.dir ? `  (in ${t.dir})` : ''}`);
  }
  return lines.length ? lines.join('\n') : 'This agent allows nothing yet: add shortcuts, commands or templates to its config file.';
}

function matchCommand(commands: CommandEntry[], words: string[]): CommandEntry | null {
  let best: CommandEntry | null = null;
  for (const c of commands) {
    const fits = c.prefixWords.length <= words.length && c.prefixWords.every((w, i) => w === words[i]);
    if (fits && (!best || c.prefixWords.length > best.prefixWords.length)) best = c;
  }
  return best;
}

/** Plans a message: help/all, then shortcuts (exact text), templates (first word), commands (leading words). */
export function planMessage(config: AgentDaemonConfig, message: string): Plan {
  const text = message.trim();
  if (text === 'help' || text === 'all') return { kind: 'help', text: helpText(config) };
  const shortcut = config.shortcuts.find((s) => s.short === text);
  if (shortcut)
    return {
      kind: 'shell',
      label: shortcut.short,
      command: shortcut.cmd,
      args: [],
      dir: shortcut.dir,
      timeoutMs: shortcut.timeoutMs ?? config.timeoutMs,
    };
  let words: string[];
  try {
    words = splitWords(text);
  } catch (err) {
    if (err instanceof RefusedMessage) return { kind: 'refuse', reason: `refused: ${err.message}` };
    throw err;
  }
  if (words.length === 0) return { kind: 'refuse', reason: 'empty command; send "help" for what this agent allows' };
  const template = config.templates.find((t) => t.name === words[0]);
  if (template) {
    if (!template.options && words.slice(1).some((w) => w.startsWith('-'))) {
      return { kind: 'refuse', reason: `refused: "${template.name}" takes values, not options (arguments starting with "-")` };
    }
    const args = words.slice(1);
    if (args.length !== template.placeholders)
      return { kind: 'refuse', reason: `usage: ${templateUsage(template.name, template.placeholders)}` };
    return {
      kind: 'shell',
      label: template.name,
      command: template.script,
      args,
      dir: template.dir,
      timeoutMs: template.timeoutMs ?? config.timeoutMs,
    };
  }
  const command = matchCommand(config.commands, words);
  if (command) {
    const args = words.slice(command.prefixWords.length);
    if (!command.options && args.some((a) => a.startsWith('-'))) {
      return { kind: 'refuse', reason: `refused: "${command.prefix}" takes no options (arguments starting with "-")` };
    }
    return {
      kind: 'exec',
      label: command.prefix,
      argv: [...command.prefixWords, ...args],
      dir: command.dir,
      timeoutMs: command.timeoutMs ?? config.timeoutMs,
    };
  }
  return { kind: 'refuse', reason: `unknown command "${words[0]}"; send "help" for what this agent allows` };
}
