/** Pure functions from Bot Framework activities to the core's InboundMessage: filter, strip the mention, normalize. */
import { createHash } from 'node:crypto';
import { TurnContext, type Activity } from 'botbuilder';
import { z } from 'zod';
import type { InboundMessage } from '../contract';
import { encodeRef } from './reply-ref';

/** A message for the core, or why the activity is not one. */
export type ActivityVerdict = { message: InboundMessage } | { ignored: string };

/** The tenant of the conversation (Teams puts it in two places; '' when they disagree). It is the host's, not always the sender's. */
export function conversationTenantOf(activity: Partial<Activity>): string {
  const named = [activity.conversation?.tenantId, activity.channelData?.tenant?.id].filter(
    (t): t is string => typeof t === 'string' && t !== '',
  );
  return new Set(named).size === 1 ? named[0] : '';
}

/** What the Bot Connector's roster says of the sender (a TeamsChannelAccount), as far as it is read. */
export interface RosterAccount {
  id?: string;
  aadObjectId?: string;
  objectId?: string;
  tenantId?: string;
  userRole?: string;
}

/**
 * True when the sender's own tenant must be asked of the roster: in a channel or a group chat the conversation is the
 * host's, and a shared channel or a chat with another organization has members of other tenants. A personal chat
 * with the bot is always in the sender's own tenant.
 */
export function needsRosterLookup(activity: Partial<Activity>): boolean {
  return activity.conversation?.conversationType !== 'personal';
}

/** True for a Teams Connect shared channel (the Bot Connector says `type`, Graph `membershipType`). */
function isSharedChannel(activity: Partial<Activity>): boolean {
  const channel = activity.channelData?.channel as { type?: unknown; membershipType?: unknown } | undefined;
  return channel?.type === 'shared' || channel?.membershipType === 'shared';
}

/**
 * The conversation whose roster knows the sender: a shared channel's own (its members from other teams and
 * organizations are not in the host team's roster), the team's for its other channels (as TeamsInfo.getMember
 * asks), else the conversation itself.
 */
export function rosterOf(activity: Partial<Activity>): string {
  const channelData = activity.channelData as { channel?: { id?: unknown }; team?: { id?: unknown } } | undefined;
  const conversation = String(activity.conversation?.id ?? '').split(';')[0];
  if (activity.conversation?.conversationType !== 'channel') return conversation;
  const channel = typeof channelData?.channel?.id === 'string' ? channelData.channel.id : conversation;
  if (isSharedChannel(activity)) return channel;
  return typeof channelData?.team?.id === 'string' ? channelData.team.id : channel;
}

/**
 * The sender's own tenant, never the host's: a personal chat's, else the tenant the roster gives for the sender's
 * account (when the account is the sender's and not anonymous). '' when it cannot be established: the core then lets
 * only an identity an admin linked act.
 */
export function senderTenantOf(activity: Partial<Activity>, account?: RosterAccount | null): string {
  if (!needsRosterLookup(activity)) return conversationTenantOf(activity);
  if (!account || typeof account.tenantId !== 'string' || account.userRole === 'anonymous') return '';
  const aad = account.aadObjectId ?? account.objectId;
  const sameId = account.id !== undefined && account.id === activity.from?.id;
  const sameAad = aad !== undefined && aad === activity.from?.aadObjectId;
  const contradicts = (account.id !== undefined && !sameId) || (aad !== undefined && activity.from?.aadObjectId !== undefined && !sameAad);
  return !contradicts && (sameId || sameAad) ? account.tenantId : '';
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
  const botMentions = (activity.entities ?? []).filter(
    (e) => e.type === 'mention' && (e as { mentioned?: { id?: string } }).mentioned?.id === activity.recipient.id,
  );
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
  channelData: z
    .object({ tenant: z.object({ id: z.string() }).optional() })
    .passthrough()
    .optional(),
});

/**
 * Normalizes a verified activity; personal chats always, group chats and channels only when they @mention the bot.
 * The tenant of a group chat's or channel's sender is '' until the roster names it (see senderTenantOf).
 */
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
  const conversation = threadOf(activity);
  const where = { s: activity.serviceUrl, c: conversation, k: kind, tn: conversationTenantOf(activity), b: activity.recipient.id };
  return {
    message: {
      channel: 'teams',
      tenant: senderTenantOf(activity),
      senderId: String(activity.from.aadObjectId || activity.from.id),
      senderName: String(activity.from.name ?? ''),
      text,
      isPrivate,
      replyTo: encodeRef(where),
      messageId: `activity:${createHash('sha256')
        .update(`${activity.conversation.id}\n${activity.id ?? ''}`)
        .digest('hex')
        .slice(0, 40)}`,
      receivedAt,
      ...(decision?.card ? { decides: encodeRef({ ...where, m: decision.card }) } : {}),
    },
  };
}

/** Approve / Deny on an approval request's card (Action.Submit): the command, and the card's activity id. */
function cardDecision(activity: Activity): { text: string; card: string | undefined } | null {
  const value = activity.value as { skadi?: unknown; job?: unknown } | undefined;
  if (!value || (value.skadi !== 'approve' && value.skadi !== 'deny') || typeof value.job !== 'string' || !/^[0-9A-Z]{26}$/.test(value.job))
    return null;
  return { text: `${value.skadi} ${value.job}`, card: activity.replyToId };
}
