/** The e-mail reply address: who wrote, and the message the answers thread under — opaque to the core. */

/** A decoded reply address. */
export interface EmailRef {
  /** The address answers go to. */
  a: string;
  /** The subject of the command's mail (answers are `Re: <subject>`). */
  s: string;
  /** The command's Message-ID (with its angle brackets); empty for a new conversation. */
  m: string;
  /** The command's References. */
  r: string[];
}

/** Encodes a reply address. */
export function encodeRef(ref: EmailRef): string {
  return JSON.stringify(ref);
}

/** Decodes a reply address; throws on anything else. */
export function decodeRef(text: string): EmailRef {
  const ref = JSON.parse(text) as EmailRef;
  if (!ref || typeof ref.a !== 'string' || typeof ref.s !== 'string' || !Array.isArray(ref.r))
    throw new Error('not an e-mail reply address');
  return ref;
}
