/**
 * Replay protection for signed mail. A DKIM signature stays valid on every copy of a mail (a Cc, a list copy, one
 * resent with a new Message-ID when Message-ID is not signed), and for as long as the key is published. So a mail is
 * also keyed by the signatures it was authenticated by (their `b=`), and refused once it is older than the core
 * remembers keys: by its Date: and by the signature's `t=` (and `x=`, its expiry).
 */
import { createHash } from 'node:crypto';
import { DEDUP_RETENTION_MS } from '../contract';
import { aligned, dkimDomainOf, type HeaderField, type MethodResult } from './sender-auth';

/** How far a Date: or t= may lie in the future (clock skew); mail dated later is refused. */
export const MAX_FUTURE_MS = 3_600_000;
/** The oldest mail accepted: the core keeps keys DEDUP_RETENTION_MS after first sight, which may be MAX_FUTURE_MS early. */
export const MAX_AGE_MS = DEDUP_RETENTION_MS - MAX_FUTURE_MS;

/** The tags of one DKIM-Signature value (RFC 6376 tag-list), white space removed from the values. */
export function dkimTags(value: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (name && !(name in tags)) tags[name] = part.slice(eq + 1).replace(/\s+/g, '');
  }
  return tags;
}

/** The DKIM-Signature headers that the passing results name: their domain (header.i may be a subdomain of d=), and `b=` starting as header.b says. */
export function passingSignatures(headers: HeaderField[], passes: MethodResult[]): Record<string, string>[] {
  const signatures = headers.filter((h) => h.key === 'dkim-signature').map((h) => dkimTags(h.value));
  return signatures.filter((tags) =>
    passes.some((p) => {
      const b = p.props['header.b'];
      return aligned(dkimDomainOf(p), (tags.d ?? '').toLowerCase()) && (!b || (tags.b ?? '').toLowerCase().startsWith(b));
    }),
  );
}

/**
 * De-duplication keys of the signatures: one per distinct signature, hashed from its decoded bytes (the unused low
 * bits of the last base64 character can be changed without changing the signature, the bytes cannot).
 */
export function signatureKeys(signatures: Record<string, string>[]): string[] {
  const keys = signatures
    .filter((s) => s.b)
    .map((s) => `dkim:${createHash('sha256').update(Buffer.from(s.b, 'base64')).digest('hex').slice(0, 40)}`);
  return [...new Set(keys)];
}

/** Why a time stamp (ms) is outside the window, or null. */
function ageProblem(what: string, atMs: number, nowMs: number): string | null {
  if (atMs > nowMs + MAX_FUTURE_MS) return `${what} lies in the future`;
  if (atMs < nowMs - MAX_AGE_MS)
    return `${what} is older than ${Math.round(MAX_AGE_MS / 3_600_000)} h (a replay is not told apart after that)`;
  return null;
}

/** Why a signature is too old, expired, or does not say when it was made, or null. */
function signatureProblem(tags: Record<string, string>, nowMs: number): string | null {
  const seconds = (tag: string) => (/^\d{1,12}$/.test(tags[tag] ?? '') ? Number(tags[tag]) * 1000 : null);
  if (tags.x !== undefined && (seconds('x') === null || seconds('x')! < nowMs)) return `the DKIM signature of ${tags.d} has expired (x=)`;
  const t = seconds('t');
  if (t !== null) return ageProblem(`the DKIM signature of ${tags.d} (t=)`, t, nowMs);
  if (tags.t !== undefined) return `the DKIM signature of ${tags.d} has an unreadable t=`;
  const signed = (tags.h ?? '').toLowerCase().split(':');
  return signed.includes('date') ? null : `the DKIM signature of ${tags.d} has no t= and does not sign Date:`;
}

/** Why a mail is too old to be told apart from a replay, or null: by its one Date: header, then by each signature it passed with. */
export function replayProblem(dateValues: string[], signatures: Record<string, string>[], now: Date): string | null {
  if (dateValues.length !== 1) return dateValues.length ? 'more than one Date: header' : 'no Date: header';
  const date = Date.parse(dateValues[0]);
  if (Number.isNaN(date)) return 'an unreadable Date: header';
  const dated = ageProblem('the mail (Date:)', date, now.getTime());
  if (dated) return dated;
  for (const tags of signatures) {
    const problem = signatureProblem(tags, now.getTime());
    if (problem) return problem;
  }
  return null;
}
