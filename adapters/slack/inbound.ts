/** Pure functions from Slack payloads to the core's InboundMessage: parse, filter, normalize. */
import type { InboundMessage } from '../contract';
import { encodeRef } from './reply-ref';

/** Who the bot is, to ignore its own messages. */
export interface BotIdentity {
  userId: string;
  botId: string;
}

/** Parses a request body as Slack sends it: JSON (events), a form (slash commands), or a form with a JSON `payload` (interactions). */
export function parseSlackBody(raw: string, contentType: string): Record<string, any> {
  if (contentType.includes('application/x-www-form-urlencoded')) {
    const form = Object.fromEntries(new URLSearchParams(raw));
    return typeof form.payload === 'string' ? JSON.parse(form.payload) : form;
  }
  return raw ? JSON.parse(raw) : {};
}

/** Removes leading bot mentions (`<@U123>` or `<@U123|name>`) from a message. */
export function stripMentions(text: string): string {
  return text.replace(/^(\s*<@[A-Z0-9]+(\|[^>]*)?>[\s,:]*)+/i, '').trim();
}

/** Slack escapes &, < and > in message text; commands want them back. */
function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * The sender's own team, never the one that received the message: in a Slack Connect channel a user of another
 * organization posts into the host workspace (`team_id`), but `user_team` / `source_team` name their own. With
 * Enterprise Grid the user's team is used too (the enterprise id only when Slack gives nothing else).
 */
function senderTeam(...candidates: unknown[]): string {
  for (const candidate of candidates) if (typeof candidate === 'string' && candidate) return candidate;
  return '';
}

/** A slash command (`/skadi web1 uptime`). */
export function normalizeSlashCommand(command: Record<string, any>, receivedAt = new Date()): InboundMessage {
  const isPrivate = command.channel_name === 'directmessage' || String(command.channel_id).startsWith('D');
  return {
    channel: 'slack',
    tenant: senderTeam(command.user_team_id, command.user?.team_id, command.team_id),
    senderId: String(command.user_id),
    senderName: String(command.user_name ?? ''),
    text: unescapeSlack(String(command.text ?? '')).trim(),
    isPrivate,
    replyTo: encodeRef(isPrivate ? { c: String(command.channel_id), flat: 1 } : { c: String(command.channel_id) }),
    messageId: `command:${command.trigger_id ?? `${command.team_id}:${command.user_id}:${Date.now()}`}`,
    receivedAt,
  };
}

/** True when a message event should be ignored: the bot's own, other bots (unless allowed), edits and other subtypes. */
export function isIgnoredMessage(event: Record<string, any>, bot: BotIdentity | null, allowBots: boolean): boolean {
  if (event.subtype && event.subtype !== 'bot_message') return true; // edits, deletions, joins, …
  if (bot && (event.user === bot.userId || (event.bot_id && event.bot_id === bot.botId))) return true;
  if ((event.bot_id || event.subtype === 'bot_message') && !allowBots) return true;
  return false;
}

/** The fields every message event shares; the caller decides privacy and where answers go. */
function fromEvent(
  event: Record<string, any>,
  body: Record<string, any>,
  isPrivate: boolean,
  replyTo: string,
  receivedAt: Date,
): InboundMessage {
  return {
    channel: 'slack',
    tenant: senderTeam(event.user_team, event.source_team, event.user_profile?.team, event.team, body.team_id),
    senderId: String(event.user ?? event.bot_id ?? ''),
    senderName: '',
    text: unescapeSlack(stripMentions(String(event.text ?? ''))),
    isPrivate,
    replyTo,
    messageId: `event:${body.event_id ?? `${event.channel}:${event.ts}`}`,
    receivedAt,
  };
}

/** An `app_mention` in a channel: answered in the thread of that message. */
export function normalizeMention(event: Record<string, any>, body: Record<string, any>, receivedAt = new Date()): InboundMessage {
  return fromEvent(event, body, false, encodeRef({ c: String(event.channel), t: String(event.thread_ts ?? event.ts) }), receivedAt);
}

/** A click on Approve or Deny of an approval request (`block_actions`): the command `approve|deny <job id>`. */
export function normalizeApprovalAction(body: Record<string, any>, receivedAt = new Date()): InboundMessage | null {
  const action = Array.isArray(body.actions) ? body.actions[0] : null;
  const verb = action?.action_id === 'skadi_approve' ? 'approve' : action?.action_id === 'skadi_deny' ? 'deny' : null;
  const channel = String(body.channel?.id ?? body.container?.channel_id ?? '');
  const ts = String(body.message?.ts ?? body.container?.message_ts ?? '');
  if (!verb || typeof action.value !== 'string' || !/^[0-9A-Z]{26}$/.test(action.value) || !channel || !ts || !body.user?.id) return null;
  const thread = body.message?.thread_ts ?? body.container?.thread_ts;
  const isPrivate = channel.startsWith('D');
  return {
    channel: 'slack',
    tenant: senderTeam(body.user.team_id, body.team?.id),
    senderId: String(body.user.id),
    senderName: String(body.user.username ?? body.user.name ?? ''),
    text: `${verb} ${action.value}`,
    isPrivate,
    replyTo: encodeRef(isPrivate ? { c: channel, flat: 1 } : { c: channel, t: String(thread ?? ts) }),
    messageId: `action:${body.trigger_id ?? `${channel}:${ts}:${action.action_ts}`}`,
    receivedAt,
    decides: encodeRef({ c: channel, m: ts }),
  };
}

/** A direct message to the bot: answered in the DM. */
export function normalizeDirectMessage(event: Record<string, any>, body: Record<string, any>, receivedAt = new Date()): InboundMessage {
  const replyTo = event.thread_ts
    ? { c: String(event.channel), t: String(event.thread_ts) }
    : { c: String(event.channel), flat: 1 as const };
  return fromEvent(event, body, true, encodeRef(replyTo), receivedAt);
}
