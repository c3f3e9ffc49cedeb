/** Agent and user tokens: random, shown once, stored only as SHA-256 hashes and compared in constant time. */
import crypto from 'node:crypto';

/** The kinds of token; the prefix lets a leaked token be recognised (and grepped for) at a glance. */
export type TokenKind = 'agent' | 'user';

const PREFIX: Record<TokenKind, string> = { agent: 'ska_', user: 'sku_' };

/** A new random token of the given kind (192 bits of entropy). */
export function newToken(kind: TokenKind): string {
  return PREFIX[kind] + crypto.randomBytes(24).toString('base64url');
}

/** The hex SHA-256 of a token, as stored in MySQL. */
export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const presented = Buffer.from(hashToken(token), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && crypto.timingSafeEqual(presented, stored);
}

/** True when a string has the shape of a token at all (cheap rejection before any lookup). */
export function looksLikeToken(token: string): boolean {
  return token.length >= 8 && token.length <= 128 && /^[\w-]+$/.test(token);
}
