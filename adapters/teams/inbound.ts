/** Pure functions from Bot Framework activities to the core's InboundMessage: filter, strip the mention, normalize. */
import { createHash } from 'node:crypto';
import { TurnContext, type Activity } from 'botbuilder';
import type { InboundMessage } from '../contract';
import { encodeRef } from './reply-ref';

/** A message for the core, or why the activity is not one. */
export type ActivityVerdict = { message: InboundMessage } | { ignored: string };

/** The tenant of the conversation (Teams puts it in two places). */
export function tenantOf(activity: Partial<Activity>): string {
  return String(activity.conversation?.tenantId || activity.channelData?.tenant?.id || '');
}

/** True when the activity @mentions its recipient (the bot). */
function mentionsBot(activity: Partial<Activity>): boolean {
  const bot = activity.recipient?.id;
  return (activity.entities ?? []).some((e) => e.type === 'mention' && (e as { mentioned?: { id?: string } }).mentioned?.id === bot);
}

/** A channel message's conversation id names its thread; a root post without `;messageid=` starts one at itself. */
function threadOf(activity: Partial<Activity>): string {
  const id = String(activity.conversation?.id ?? '');
  if (activity.conversation?.conversationType !== 'channel' || id.includes(';messageid=')) return id;
  return `${id};messageid=${activity.id}`;
}

/** The command text: the bot's mention removed, Teams' non-breaking spaces made plain. */
function commandText(activity: Partial<Activity>): string {
  let text: string;
  try {
    text = TurnContext.removeRecipientMention(activity as Activity);
  } catch {
    text = String(activity.text ?? '').replace(/<at>[^<]*<\/at>/g, ''); // a mention entity without its text
  }
  return String(text ?? '')
    .replace(/&nbsp;|\u00a0/g, ' ')
    .trim();
}

/** Normalizes a verified activity; personal chats always, group chats and channels only when they @mention the bot. */
export function normalizeActivity(activity: Partial<Activity>, receivedAt = new Date()): ActivityVerdict {
  if (activity.type !== 'message') return { ignored: `a ${activity.type ?? 'typeless'} activity` };
  if (!activity.from?.id || !activity.recipient?.id || !activity.conversation?.id || !activity.serviceUrl) return { ignored: 'incomplete activity' };
  if (activity.from.id === activity.recipient.id) return { ignored: "the bot's own message" };
  const kind = String(activity.conversation.conversationType ?? 'personal');
  const isPrivate = kind === 'personal';
  if (!isPrivate && !mentionsBot(activity)) return { ignored: 'a group message without a mention of the bot' };
  const text = commandText(activity);
  if (!text) return { ignored: 'no text' };
  const tenant = tenantOf(activity);
  const conversation = threadOf(activity);
  return {
    message: {
      channel: 'teams',
      tenant,
      senderId: String(activity.from.aadObjectId || activity.from.id),
      senderName: String(activity.from.name ?? ''),
      text,
      isPrivate,
      replyTo: encodeRef({ s: activity.serviceUrl, c: conversation, k: kind, tn: tenant, b: activity.recipient.id }),
      messageId: `activity:${createHash('sha256').update(`${activity.conversation.id}\n${activity.id ?? ''}`).digest('hex').slice(0, 40)}`,
      receivedAt,
    },
  };
}
