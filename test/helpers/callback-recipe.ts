/**
 * The callback signing recipe of docs/notifications.md, computed here by hand rather than with the gateway's own functions, so that
 * a change to what the gateway signs, or how it derives a secret, makes the tests that use it fail.
 */
import crypto from 'node:crypto';

/** Header names as a receiver reads them (Node lower-cases them). */
export const SIGNATURE_HEADER = 'x-skadi-signature';
export const LEGACY_SIGNATURE_HEADER = 'x-skadi-signature-legacy';
export const TIMESTAMP_HEADER = 'x-skadi-timestamp';

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed by the given key. */
export function signatureOf(key: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The legacy key: the hex SHA-256 of the user token. */
export function legacyKeyOf(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** A user's callback secret: `whsec_` and the base64url HMAC-SHA256 of "skadi-callback-secret:<user id>:<salt>", keyed by SKADI_SECRET. */
export function callbackSecretOf(serverSecret: string, userId: number, salt: string): string {
  return `whsec_${crypto.createHmac('sha256', serverSecret).update(`skadi-callback-secret:${userId}:${salt}`).digest('base64url')}`;
}

/** True when a received callback carries, in `header`, the signature the recipe gives for `key`. */
export function signedWith(
  request: { headers: Record<string, string | string[] | undefined>; body: string },
  key: string,
  header = SIGNATURE_HEADER,
): boolean {
  return request.headers[header] === signatureOf(key, String(request.headers[TIMESTAMP_HEADER]), request.body);
}
