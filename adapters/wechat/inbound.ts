/** WeChat messages, reduced to plain facts, become normalized inbound messages (or are ignored, with the reason). */
import type { InboundMessage } from '../contract';
import { encodeRef } from './reply-ref';

/** What the adapter reads off a wechaty message before deciding anything. */
export interface WechatMessageFacts {
  id: string;
  botId: string;
  talkerId: string;
  talkerName: string;
  /** The room it was said in; null for a direct message. */
  roomId: string | null;
  /** Said by the bot's own account. */
  self: boolean;
  isText: boolean;
  text: string;
  /** In a room: whether the message @mentions the bot. */
  mentionsBot: boolean;
  /** In a room: the text without the mentions. */
  mentionText: string;
  sentAt: Date;
}

/** The verdict on one message. */
export type WechatVerdict = { message: InboundMessage } | { ignored: string };

/** Clock difference tolerated between WeChat's timestamps and ours when history replayed at login is told apart. */
export const LOGIN_SKEW_MS = 2000;

/** Normalizes a message received after `loggedInAt` (WeChat replays recent history at login: older ones are ignored). */
export function normalizeWechatMessage(facts: WechatMessageFacts, loggedInAt: Date, now = new Date()): WechatVerdict {
  if (facts.self) return { ignored: "the bot's own message" };
  if (!facts.isText) return { ignored: 'not a text message' };
  if (facts.sentAt.getTime() < loggedInAt.getTime() - LOGIN_SKEW_MS) return { ignored: 'sent before the login (replayed history)' };
  if (facts.roomId && !facts.mentionsBot) return { ignored: 'a room message that does not mention the bot' };
  const text = (facts.roomId ? facts.mentionText : facts.text).trim();
  if (!text) return { ignored: 'an empty message' };
  const inRoom = facts.roomId !== null;
  return {
    message: {
      channel: 'wechat',
      tenant: facts.botId,
      senderId: facts.talkerId,
      senderName: facts.talkerName,
      text,
      isPrivate: !inRoom,
      replyTo: encodeRef(
        inRoom ? { b: facts.botId, c: facts.roomId!, r: 1, p: facts.talkerId } : { b: facts.botId, c: facts.talkerId, r: 0 },
      ),
      messageId: `${facts.botId}:${facts.id}`,
      receivedAt: now,
    },
  };
}
