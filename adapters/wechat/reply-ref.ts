/** The WeChat reply address: the bot, the conversation (a room or a contact), and whom to mention in a room. */

/** A decoded reply address. */
export interface WechatRef {
  /** The logged-in bot's id. */
  b: string;
  /** The conversation: a room id or a contact id. */
  c: string;
  /** 1 when c is a room. */
  r: 0 | 1;
  /** In a room: the contact the answer mentions (the sender of the command). */
  p?: string;
}

/** Encodes a reply address. */
export function encodeRef(ref: WechatRef): string {
  return JSON.stringify(ref);
}

/** Decodes a reply address; throws on anything else. */
export function decodeRef(text: string): WechatRef {
  const ref = JSON.parse(text) as WechatRef;
  if (!ref || typeof ref.b !== 'string' || typeof ref.c !== 'string' || ref.c === '' || (ref.r !== 0 && ref.r !== 1))
    throw new Error('not a WeChat reply address');
  return ref;
}
