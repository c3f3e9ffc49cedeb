/** Job callbacks: every status change POSTed as JSON to the job's URL, signed with HMAC-SHA256. */
import crypto from 'node:crypto';
import { AdapterError } from '../../adapters/contract';

/** Header carrying `sha256=<hex HMAC of "<timestamp>.<body>">`. */
export const SIGNATURE_HEADER = 'x-skadi-signature';
/** Header carrying the Unix time (seconds) that was signed. */
export const TIMESTAMP_HEADER = 'x-skadi-timestamp';

/** The signature of a callback body: HMAC-SHA256 keyed by the hex SHA-256 of the owner's user token. */
export function signCallback(key: string, timestamp: number, body: string): string {
  return 'sha256=' + crypto.createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex');
}

/** Verifies a callback signature in constant time (what a receiver does; also used by the tests). */
export function verifyCallback(key: string, timestamp: number, body: string, signature: string): boolean {
  const expected = Buffer.from(signCallback(key, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}

/** POSTs one callback; throws an AdapterError (transient for network errors, 5xx and 429; not_found otherwise). */
export async function postCallback(url: string, key: string, payload: unknown, timeoutMs = 10_000): Promise<void> {
  const body = JSON.stringify(payload);
  const timestamp = Math.floor(Date.now() / 1000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'content-type': 'application/json', 'user-agent': 'skadi-callback', [SIGNATURE_HEADER]: signCallback(key, timestamp, body), [TIMESTAMP_HEADER]: String(timestamp) },
    });
    await res.arrayBuffer();
  } catch (err) {
    throw new AdapterError('transient', `callback ${new URL(url).host} unreachable: ${(err as Error).message}`);
  }
  if (res.ok) return;
  if (res.status === 429) {
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new AdapterError('rate_limited', `callback answered 429`, Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined);
  }
  if (res.status >= 500) throw new AdapterError('transient', `callback answered ${res.status}`);
  throw new AdapterError(res.status === 401 || res.status === 403 ? 'unauthorized' : 'not_found', `callback answered ${res.status}`);
}
