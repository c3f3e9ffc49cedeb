/** The Slack reply address: channel, thread, message — opaque to the core. */

/** A decoded reply address. `t`: thread to post in; `m`: a message to edit; `flat`: never start a thread (DMs). */
export interface SlackRef {
  c: string;
  t?: string;
  m?: string;
  flat?: 1;
}

/** Encodes a reply address. */
export function encodeRef(ref: SlackRef): string {
  return JSON.stringify(ref);
}

/** Decodes a reply address; throws on anything else. */
export function decodeRef(text: string): SlackRef {
  const ref = JSON.parse(text) as SlackRef;
  if (!ref || typeof ref.c !== 'string') throw new Error('not a Slack reply address');
  return ref;
}

/** The address of a message just posted: editing it, and continuing its thread (unless the conversation is flat). */
export function postedRef(where: SlackRef, ts: string): SlackRef {
  return where.flat ? { c: where.c, m: ts, flat: 1 } : { c: where.c, t: where.t ?? ts, m: ts };
}
