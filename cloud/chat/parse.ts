/** Parses chat command text (after the bot mention or slash-command name is stripped) — the same in every channel. */
import { parseDuration } from '../../config/duration';
import { MAX_AGENT_MESSAGE_CHARS, MAX_MESSAGE_CHARS, splitFirstWord } from '../lifecycle/job-text';

/** A parsed chat command. */
export type Command =
  | { kind: 'help' }
  | { kind: 'status' }
  | { kind: 'jobs'; agent: string | null }
  | { kind: 'agent-add'; name: string; alias: string | null }
  | { kind: 'agent-remove'; name: string }
  | { kind: 'agent-token'; name: string }
  | { kind: 'cancel'; jobId: string }
  | { kind: 'approve'; jobId: string }
  | { kind: 'deny'; jobId: string; reason: string }
  | { kind: 'agent-approval'; name: string; pattern: string | null }
  | { kind: 'delay'; delayMs: number; agent: string; text: string }
  | { kind: 'notify-here' }
  | { kind: 'token' }
  | { kind: 'job'; agent: string; text: string }
  | { kind: 'incomplete'; agent: string }
  | { kind: 'invalid'; message: string };

/** The usage text that `help` answers. */
export const HELP_TEXT = [
  'Skadi commands:',
  '`<agent> <job>` — run a job on one of your agents, e.g. `web1 uptime`',
  '`status` (or `agents`) — your agents, online or offline',
  '`jobs [agent]` — recent jobs and their status',
  '`delay <duration> <agent> <job>` — run later, e.g. `delay 1h30m db1 backup` (s, m, h, d)',
  '`cancel <job id>` — cancel a job that is still queued',
  '`approve <job id>` / `deny <job id> [reason]` — decide on a job that needs a second person (the short id from its message is enough)',
  "`agent approval <agent> <pattern>` / `agent approval <agent> clear` — jobs matching the pattern (e.g. `deploy *`) need another person's approval",
  '`agent add <name> [alias]` — a new agent; its token comes in a private message',
  '`agent remove <name>` / `agent token <name>` — delete an agent / give it a new token',
  '`notify here` — send your notifications (agent online/offline, messages) to this conversation',
  '`token` — a new user token for the HTTP API and CI (private conversations only; the old one stops working)',
  '`help` — this text',
].join('\n');

/** Longest chat command parsed; longer text is refused before any parsing. */
export const MAX_COMMAND_CHARS = MAX_AGENT_MESSAGE_CHARS + 64;

function parseAgentSubcommand(rest: string): Command {
  const [verb, args] = splitFirstWord(rest);
  const words = args.split(/\s+/).filter(Boolean);
  const usage = 'Use `agent add <name> [alias]`, `agent remove <name>`, `agent token <name>` or `agent approval <name> <pattern|clear>`.';
  switch (verb.toLowerCase()) {
    case 'add':
      if (words.length < 1 || words.length > 2)
        return { kind: 'invalid', message: `\`agent add\` takes a name and an optional alias. ${usage}` };
      return { kind: 'agent-add', name: words[0], alias: words[1] ?? null };
    case 'remove':
    case 'delete':
      if (words.length !== 1) return { kind: 'invalid', message: `\`agent remove\` takes one name. ${usage}` };
      return { kind: 'agent-remove', name: words[0] };
    case 'token':
      if (words.length !== 1) return { kind: 'invalid', message: `\`agent token\` takes one name. ${usage}` };
      return { kind: 'agent-token', name: words[0] };
    case 'approval': {
      const [name, pattern] = splitFirstWord(args);
      if (!name || !pattern)
        return {
          kind: 'invalid',
          message: 'Use `agent approval <agent> <pattern>` (e.g. `deploy *`, or `*` for every job) or `agent approval <agent> clear`.',
        };
      return { kind: 'agent-approval', name, pattern: pattern.toLowerCase() === 'clear' ? null : pattern };
    }
    default:
      return { kind: 'invalid', message: usage };
  }
}

/** Parses one command. */
export function parseCommand(text: string): Command {
  if (text.length > MAX_COMMAND_CHARS)
    return { kind: 'invalid', message: `That command is too long: a job takes at most ${MAX_MESSAGE_CHARS} characters.` };
  const [first, rest] = splitFirstWord(text);
  if (!first) return { kind: 'help' };
  switch (first.toLowerCase()) {
    case 'help':
      return { kind: 'help' };
    case 'status':
    case 'agents':
      return { kind: 'status' };
    case 'jobs':
      return { kind: 'jobs', agent: rest ? splitFirstWord(rest)[0] : null };
    case 'agent':
      return parseAgentSubcommand(rest);
    case 'cancel': {
      const [jobId, extra] = splitFirstWord(rest);
      if (!jobId || extra) return { kind: 'invalid', message: 'Use `cancel <job id>`.' };
      return { kind: 'cancel', jobId: jobId.toUpperCase() };
    }
    case 'approve': {
      const [jobId, extra] = splitFirstWord(rest);
      if (!jobId || extra) return { kind: 'invalid', message: 'Use `approve <job id>` (the short id from the request is enough).' };
      return { kind: 'approve', jobId };
    }
    case 'deny': {
      const [jobId, reason] = splitFirstWord(rest);
      if (!jobId) return { kind: 'invalid', message: 'Use `deny <job id> [reason]`.' };
      return { kind: 'deny', jobId, reason };
    }
    case 'delay': {
      const [when, afterWhen] = splitFirstWord(rest);
      const [agent, job] = splitFirstWord(afterWhen);
      const delayMs = when ? parseDuration(when) : null;
      if (delayMs === null || !agent || !job)
        return { kind: 'invalid', message: 'Use `delay <duration> <agent> <job>`, e.g. `delay 1h30m db1 backup`.' };
      return { kind: 'delay', delayMs, agent, text: job };
    }
    case 'notify':
      if (rest.toLowerCase() !== 'here') return { kind: 'invalid', message: 'Use `notify here`.' };
      return { kind: 'notify-here' };
    case 'token':
      if (rest) return { kind: 'invalid', message: '`token` takes no arguments (for an agent token, use `agent token <name>`).' };
      return { kind: 'token' };
    default:
      if (!rest) return { kind: 'incomplete', agent: first };
      return { kind: 'job', agent: first, text: rest };
  }
}
