/**
 * Texts from chat and mail platforms fitted to the columns they are stored in. MariaDB counts a VARCHAR's length in
 * characters (code points), JavaScript in UTF-16 units: texts are cut on code points, never inside a surrogate pair.
 */
import { createHash } from 'node:crypto';

/** Column widths, in characters, of the texts written from platforms (see the migrations). */
export const COLUMN_CHARS = {
  identityTenant: 128,
  identityExternalId: 190,
  identityDisplayName: 190,
  processedMessageId: 190,
  jobSource: 64,
  jobPerson: 400,
  jobReason: 255,
} as const;

/** The first `max` characters of a text, cut between code points. */
export function fitText(text: string, max: number): string {
  if (text.length <= max) return text; // UTF-16 units are never fewer than code points
  let end = 0;
  let count = 0;
  while (end < text.length && count < max) {
    const code = text.charCodeAt(end);
    const pair = code >= 0xd800 && code <= 0xdbff && end + 1 < text.length && (text.charCodeAt(end + 1) & 0xfc00) === 0xdc00;
    end += pair ? 2 : 1;
    count++;
  }
  return text.slice(0, end);
}

/** fitText for a column that may be NULL. */
export function fitNullable(text: string | null | undefined, max: number): string | null {
  return text === null || text === undefined ? null : fitText(text, max);
}

/**
 * A key (an identity's tenant or account id, a message id) that fits its column: unchanged when it does, else its
 * start and a hash of the whole, so two long keys that begin alike stay two keys. The same input always gives the
 * same key, so lookups find what was stored; a key that fits is its own result, so a stored key finds itself.
 * With `ascii`, a key with other characters is replaced by its hash too (for ASCII columns).
 */
export function fitKey(text: string, max: number, ascii = false): string {
  const plain = !ascii || /^[\x20-\x7e]*$/.test(text);
  if (plain && [...fitText(text, max + 1)].length <= max) return text;
  const hash = `~${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
  const head = plain ? fitText(text, max - hash.length) : '';
  return `${head}${hash}`;
}
