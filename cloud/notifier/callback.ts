/** Job callbacks: every status change POSTed as JSON to the job's URL, signed with HMAC-SHA256, pinned to checked addresses. */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { AdapterError } from '../../adapters/contract';
import type { CallbackGuard, CallbackTarget, ResolvedAddress } from './callback-guard';
import type { CallbackKeys } from '../accounts/callback-secret';

/** Header carrying `sha256=<hex HMAC of "<timestamp>.<body>">`, keyed by the user's callback secret. */
export const SIGNATURE_HEADER = 'x-skadi-signature';
/** Header carrying the same signature keyed by the hex SHA-256 of the user token (sent for one release, to migrate). */
export const LEGACY_SIGNATURE_HEADER = 'x-skadi-signature-legacy';
/** Header carrying the Unix time (seconds) that was signed. */
export const TIMESTAMP_HEADER = 'x-skadi-timestamp';

/** The signature of a callback body under one key. */
export function signCallback(key: string, timestamp: number, body: string): string {
  return 'sha256=' + crypto.createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex');
}

/** Verifies a callback signature in constant time (what a receiver does; also used by the tests). */
export function verifyCallback(key: string, timestamp: number, body: string, signature: string): boolean {
  const expected = Buffer.from(signCallback(key, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}

/** What a callback POST needs besides its URL. */
export interface CallbackPost {
  keys: CallbackKeys;
  payload: unknown;
  guard: CallbackGuard;
  /** Longest time for the whole exchange: resolving, connecting, sending, and the status line with headers. */
  timeoutMs: number;
}

/** The part of an answer that matters: the body is never read. */
interface CallbackAnswer {
  status: number;
  retryAfter: string | undefined;
}

/** POSTs one callback; throws an AdapterError (transient for network errors, timeouts, 5xx and 429; final otherwise, 3xx included). */
export async function postCallback(url: string, post: CallbackPost): Promise<void> {
  const started = Date.now();
  const target = await within(post.guard.target(url), post.timeoutMs, `callback host lookup took more than ${post.timeoutMs} ms`);
  const body = JSON.stringify(post.payload);
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'skadi-callback',
    [SIGNATURE_HEADER]: signCallback(post.keys.current ?? post.keys.legacy, timestamp, body),
    [LEGACY_SIGNATURE_HEADER]: signCallback(post.keys.legacy, timestamp, body),
    [TIMESTAMP_HEADER]: String(timestamp),
  };
  let answer: CallbackAnswer;
  try {
    answer = await exchange(
      target,
      headers,
      body,
      Math.max(1, post.timeoutMs - (Date.now() - started)),
      `no answer within ${post.timeoutMs} ms`,
    );
  } catch (err) {
    throw new AdapterError('transient', `callback ${target.url.host} unreachable: ${(err as Error).message}`);
  }
  checkAnswer(answer);
}

/** The promise's value, or a transient AdapterError when it takes more than ms (a slow resolver cannot be aborted, only left). */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new AdapterError('transient', message)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Maps a status to success or an AdapterError. */
function checkAnswer({ status, retryAfter }: CallbackAnswer): void {
  if (status >= 200 && status < 300) return;
  if (status >= 300 && status < 400) throw new AdapterError('invalid', `callback answered ${status}; redirects are not followed`);
  if (status === 429) {
    const seconds = Number(retryAfter);
    throw new AdapterError('rate_limited', 'callback answered 429', retryAfter && Number.isFinite(seconds) ? seconds * 1000 : undefined);
  }
  if (status >= 500) throw new AdapterError('transient', `callback answered ${status}`);
  throw new AdapterError(status === 401 || status === 403 ? 'unauthorized' : 'not_found', `callback answered ${status}`);
}

/** A lookup that answers with the checked addresses only, so the connection goes where the check looked (no DNS rebinding). */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0].address, addresses[0].family);
  };
}

/** Sends the POST and resolves at the status line; the response is destroyed unread, and everything ends within timeoutMs. */
function exchange(
  target: CallbackTarget,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  timeoutMessage: string,
): Promise<CallbackAnswer> {
  return new Promise((resolve, reject) => {
    const send = target.url.protocol === 'https:' ? https.request : http.request;
    const lookup = target.addresses.length ? pinnedLookup(target.addresses) : undefined;
    const req = send(target.url, { method: 'POST', headers, agent: false, lookup }, (res) => {
      clearTimeout(timer);
      res.on('error', () => undefined);
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.destroy();
      req.destroy();
    });
    const timer = setTimeout(() => req.destroy(new Error(timeoutMessage)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
