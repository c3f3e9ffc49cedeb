/** Per-user callback secrets: HMAC of the server-side key (SKADI_SECRET) over the user id and a random salt kept in MySQL. */
import crypto from 'node:crypto';

/** The keys that sign a user's callbacks. */
export interface CallbackKeys {
  /** The user's callback secret; null when SKADI_SECRET is not set or the user has no salt yet. */
  current: string | null;
  /** The hex SHA-256 of the user token (the key before callback secrets; sent for one release). */
  legacy: string;
}

/** A new random salt (128 bits, hex): a new salt is a new callback secret. */
export function newCallbackSalt(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** The callback secret of a user; the database alone (id, salt) cannot produce it. */
export function deriveCallbackSecret(serverSecret: string, userId: number, salt: string): string {
  return 'whsec_' + crypto.createHmac('sha256', serverSecret).update(`skadi-callback-secret:${userId}:${salt}`).digest('base64url');
}

/** The signing keys of a user with this token hash and salt. */
export function callbackKeysOf(user: { id: number; tokenHash: string; callbackSalt: string | null }, serverSecret: string): CallbackKeys {
  const current = serverSecret && user.callbackSalt ? deriveCallbackSecret(serverSecret, user.id, user.callbackSalt) : null;
  return { current, legacy: user.tokenHash };
}
