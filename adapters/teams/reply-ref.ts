/** The Teams reply address: enough of a conversation reference to answer after a restart — opaque to the core. */
import type { ConversationReference } from 'botbuilder';

/** A decoded reply address. */
export interface TeamsRef {
  /** The Bot Connector URL of the conversation (activity.serviceUrl). */
  s: string;
  /** The conversation id; a channel thread's ends in `;messageid=<root>`. */
  c: string;
  /** The conversation type: personal, groupChat or channel. */
  k: string;
  /** The tenant. */
  tn: string;
  /** The bot's account id in the conversation (28:<app id>). */
  b: string;
  /** A message posted by the bot, to update in place. */
  m?: string;
}

/** Encodes a reply address. */
export function encodeRef(ref: TeamsRef): string {
  return JSON.stringify(ref);
}

/** Decodes a reply address; throws on anything else. */
export function decodeRef(text: string): TeamsRef {
  const ref = JSON.parse(text) as TeamsRef;
  if (!ref || typeof ref.s !== 'string' || typeof ref.c !== 'string' || typeof ref.b !== 'string')
    throw new Error('not a Teams reply address');
  return ref;
}

/** The address of a message just posted: the same conversation (and thread), and the message to update. */
export function postedRef(where: TeamsRef, activityId: string): TeamsRef {
  return { ...where, m: activityId };
}

/** The conversation reference botbuilder continues a conversation from. */
export function conversationReference(ref: TeamsRef): Partial<ConversationReference> {
  return {
    channelId: 'msteams',
    serviceUrl: ref.s,
    conversation: { id: ref.c, tenantId: ref.tn, conversationType: ref.k, isGroup: ref.k !== 'personal', name: '' },
    bot: { id: ref.b, name: '' },
  };
}
