/** Pure functions from Bot Framework activities to the core's InboundMessage: filter, strip the mention, normalize. */
import { createHash } from 'node:crypto';
import { TurnContext, type Activity } from 'botbuilder';
import { z } from 'zod';
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

/** The command text: the bot's mention removed (a leading `<at>…</at>` when its entity lacks the text), spaces made plain. */
function commandText(activity: Activity): string {
  let text = String(activity.text ?? '');
  const botMentions = (activity.entities ?? []).filter((e) => e.type === 'mention' && (e as { mentioned?: { id?: string } }).mentioned?.id === activity.recipient.id);
  if (botMentions.some((e) => typeof (e as { text?: unknown }).text !== 'string')) text = text.replace(/^\s*<at>[^<]*<\/at>/i, '');
  else text = TurnContext.removeRecipientMention({ ...activity, text } as Activity) ?? text;
  return text.replace(/&nbsp;|\u00a0/g, ' ').trim();
}

const account = z.object({ id: z.string().min(1), name: z.string().optional(), aadObjectId: z.string().optional() });
/** The fields of a message activity that are read; a token only proves who sent it, not that its fields have these types. */
const messageShape = z.object({
  type: z.literal('message'),
  id: z.string().optional(),
  serviceUrl: z.string().min(1),
  from: account,
  recipient: account,
  conversation: z.object({ id: z.string().min(1), conversationType: z.string().optional(), tenantId: z.string().optional() }),
  text: z.string().optional(),
  replyToId: z.string().optional(),
  value: z.unknown().optional(),
  entities: z.array(z.object({ type: z.string() }).passthrough()).optional(),
  channelData: z.object({ tenant: z.object({ id: z.string() }).optional() }).passthrough().optional(),
});

/** Normalizes a verified activity; personal chats always, group chats and channels only when they @mention the bot. */
export function normalizeActivity(input: Partial<Activity>, receivedAt = new Date()): ActivityVerdict {
  if (input.type !== 'message') return { ignored: `a ${typeof input.type === 'string' ? input.type : 'typeless'} activity` };
  const parsed = messageShape.safeParse(input);
  if (!parsed.success) return { ignored: `a malformed message activity (${parsed.error.issues[0]?.path.join('.')})` };
  const activity = parsed.data as unknown as Activity;
  if (activity.from.id === activity.recipient.id) return { ignored: "the bot's own message" };
  const kind = String(activity.conversation.conversationType ?? 'personal');
  const isPrivate = kind === 'personal';
  const decision = cardDecision(activity);
  if (!decision && !isPrivate && !mentionsBot(activity)) return { ignored: 'a group message without a mention of the bot' };
  const text = decision ? decision.text : commandText(activity);
  if (!text) return { ignored: 'no text' };
  const tenant = tenantOf(activity);
  const conversation = threadOf(activity);
  const where = { s: activity.serviceUrl, c: conversation, k: kind, tn: tenant, b: activity.recipient.id };
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
      ...(decision?.card ? { decides: encodeRef({ ...where, m: decision.card }) } : {}),
    },
  };
}

/** Approve / Deny on an approval request's card (Action.Submit): the command, and the card's activity id. */
function cardDecision(activity: Activity): { text: string; card: string | undefined } | null {
  const value = activity.value as { skadi?: unknown; job?: unknown } | undefined;
  if (!value || (value.skadi !== 'approve' && value.skadi !== 'deny') || typeof value.job !== 'string' || !/^[0-9A-Z]{26}$/.test(value.job)) return null;
  return { text: `${value.skadi} ${value.job}`, card: activity.replyToId };
}
