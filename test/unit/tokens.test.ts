/** Tokens and credentials at the HTTP edge: the documented hash (SHA-256 hex, computed here by hand), the shape check, the header forms. */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import { bearerToken, clientIp, userToken } from '../../agent-api/auth';
import { hashToken, looksLikeToken, newToken, tokenMatches } from '../../cloud/accounts/tokens';

const sha256 = (text: string) => crypto.createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');

describe('tokens', () => {
  it('are random, prefixed by kind, 24 bytes of base64url', () => {
    const agent = newToken('agent');
    const user = newToken('user');
    expect(agent).toMatch(/^ska_[A-Za-z0-9_-]{32}$/);
    expect(user).toMatch(/^sku_[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(agent.slice(4), 'base64url')).toHaveLength(24);
    expect(new Set(Array.from({ length: 50 }, () => newToken('agent'))).size).toBe(50);
  });

  it('are stored as the hex SHA-256 of their UTF-8 text', () => {
    expect(hashToken('ska_abc')).toBe(sha256('ska_abc'));
    expect(hashToken('ska_ü')).toBe(sha256('ska_ü'));
    expect(hashToken('x')).toBe('2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
  });

  it('match only their own hash', () => {
    const token = newToken('user');
    expect(tokenMatches(token, sha256(token))).toBe(true);
    expect(tokenMatches(token, sha256(token).toUpperCase())).toBe(true); // hex is read, not compared as text
    expect(tokenMatches(`${token}x`, sha256(token))).toBe(false);
    expect(tokenMatches(token, sha256(`${token}x`))).toBe(false);
    expect(tokenMatches(token, sha256(token).slice(0, 62))).toBe(false);
    expect(tokenMatches(token, `${sha256(token)}00`)).toBe(false);
    expect(tokenMatches(token, '')).toBe(false);
  });

  it('are refused before any lookup when they cannot be one', () => {
    expect(looksLikeToken('a'.repeat(8))).toBe(true);
    expect(looksLikeToken('a'.repeat(7))).toBe(false);
    expect(looksLikeToken('a'.repeat(128))).toBe(true);
    expect(looksLikeToken('a'.repeat(129))).toBe(false);
    expect(looksLikeToken('ska_AZaz09-_')).toBe(true);
    for (const bad of ['ska_abc def', 'ska_abc/def', 'ska_abc.def', "ska_abc'def", 'ska_abcdéf', 'ska_abc\ndef', `ska_abcdef\n`])
      expect(looksLikeToken(bad)).toBe(false);
  });
});

/** The parts of a Koa context the credential functions read. */
function ctx(options: {
  authorization?: string;
  method?: string;
  query?: Record<string, unknown>;
  ip?: string;
  clientAddress?: string;
}): Context {
  return {
    get: (name: string) => (name.toLowerCase() === 'authorization' ? (options.authorization ?? '') : ''),
    method: options.method ?? 'GET',
    query: options.query ?? {},
    state: options.clientAddress ? { clientAddress: options.clientAddress } : {},
    request: { ip: options.ip ?? '' },
  } as unknown as Context;
}

describe('credentials of a request', () => {
  it('read a bearer token, in any case of "Bearer", with white space around it', () => {
    expect(bearerToken(ctx({ authorization: 'Bearer ska_abcdefgh' }))).toBe('ska_abcdefgh');
    expect(bearerToken(ctx({ authorization: 'bearer   ska_abcdefgh  ' }))).toBe('ska_abcdefgh');
    expect(bearerToken(ctx({ authorization: 'BEARER\tska_abcdefgh' }))).toBe('ska_abcdefgh');
    for (const header of ['', 'Bearer', 'Bearer ', 'Basic ska_abcdefgh', 'Bearer a b', 'xBearer ska_abcdefgh', 'Bearerska_abcdefgh']) {
      expect(bearerToken(ctx({ authorization: header }))).toBeUndefined();
    }
  });

  it('take ?token= from user GET requests only, and the header first', () => {
    expect(userToken(ctx({ query: { token: 'sku_query' } }))).toBe('sku_query');
    expect(userToken(ctx({ authorization: 'Bearer sku_header', query: { token: 'sku_query' } }))).toBe('sku_header');
    expect(userToken(ctx({ method: 'POST', query: { token: 'sku_query' } }))).toBeUndefined();
    expect(userToken(ctx({ query: { token: ['a', 'b'] } }))).toBeUndefined();
    expect(userToken(ctx({}))).toBeUndefined();
  });

  it("take the client address a trusted proxy named, else the socket's", () => {
    expect(clientIp(ctx({ ip: '10.0.0.9', clientAddress: '203.0.113.5' }))).toBe('203.0.113.5');
    expect(clientIp(ctx({ ip: '10.0.0.9' }))).toBe('10.0.0.9');
    expect(clientIp(ctx({}))).toBeNull();
  });
});
