/**
 * Sender authentication from Authentication-Results headers (RFC 8601). A From: header is trivially forged, and so is
 * an Authentication-Results header: anyone can write one into a mail before sending it. Only what the receiving
 * server wrote counts: the topmost header with our authserv-id (servers add theirs above what they received), and
 * further ones with our id only above the first Received: header (where no sender can write). The trusted headers
 * must parse fully, and show a DKIM signature (or SPF) of the From domain or a subdomain of it.
 */
import type { EmailRequirement } from './config';
import {
  AuthResultsSyntaxError,
  leadingAuthservId,
  parseAuthResults,
  type AuthResults,
  type AuthResultsFormat,
  type MethodResult,
} from './auth-results';

export { parseAuthResults, type AuthResults, type AuthResultsFormat, type MethodResult };

/** One header of a mail, in the order of the mail: its lower-case name and unfolded value. */
export interface HeaderField {
  key: string;
  value: string;
}

/** What decides whether a sender is trusted. */
export interface SenderAuthSettings {
  authservId: string;
  format: AuthResultsFormat;
  require: EmailRequirement;
}

/** True when `domain` is the From domain or a subdomain of it (relaxed alignment). */
export function aligned(domain: string | undefined, fromDomain: string): boolean {
  if (!domain) return false;
  const d = domain.toLowerCase().replace(/\.$/, '');
  return d === fromDomain || d.endsWith(`.${fromDomain}`);
}

/** The domain of an address, lower-case ('' when there is none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** The Authentication-Results values written by the receiving server, or why there are none. */
export function trustedHeaders(
  headers: HeaderField[],
  authservId: string,
  format: AuthResultsFormat,
): { values: string[] } | { problem: string } {
  const results = headers.map((h, index) => ({ ...h, index })).filter((h) => h.key === 'authentication-results');
  if (format === 'microsoft365') {
    return results.length ? { values: [results[0].value] } : { problem: 'no Authentication-Results header (Microsoft 365 form)' };
  }
  const id = authservId.toLowerCase();
  const ours = results.filter((h) => leadingAuthservId(h.value) === id);
  if (ours.length === 0) return { problem: `no Authentication-Results header from ${authservId}` };
  const firstReceived = headers.findIndex((h) => h.key === 'received');
  const aboveReceived = firstReceived < 0 ? [] : ours.slice(1).filter((h) => h.index < firstReceived);
  return { values: [ours[0], ...aboveReceived].map((h) => h.value) };
}

/** Parses the trusted values; a value that cannot be fully read makes the mail untrusted. */
function parseTrusted(values: string[], format: AuthResultsFormat): { parsed: AuthResults[] } | { problem: string } {
  try {
    return { parsed: values.map((v) => parseAuthResults(v, format)) };
  } catch (err) {
    if (!(err instanceof AuthResultsSyntaxError)) throw err;
    return { problem: `the trusted Authentication-Results header cannot be read (${err.message})` };
  }
}

/** Whether the sender is authenticated (with the aligned DKIM passes it rests on), and why not. */
export type SenderVerdict = { ok: true; by: string; dkim: MethodResult[] } | { ok: false; reason: string };

/** The DKIM domain of a result: header.d, else the domain of header.i. */
export function dkimDomainOf(result: MethodResult): string {
  return result.props['header.d'] ?? domainOf(result.props['header.i'] ?? '');
}

/** One result as a log line shows it. */
function describeResult(r: MethodResult): string {
  const d = r.props['header.d'] ? ` header.d=${r.props['header.d']}` : '';
  const mailFrom = r.props['smtp.mailfrom'] ? ` smtp.mailfrom=${r.props['smtp.mailfrom']}` : '';
  return `${r.method}=${r.result}${d}${mailFrom}`;
}

/** Checks a sender against the Authentication-Results that the receiving server wrote into a mail. */
export function authenticateSender(headers: HeaderField[], fromAddress: string, settings: SenderAuthSettings): SenderVerdict {
  const { require, format } = settings;
  if (require === 'none') return { ok: true, by: 'none (SKADI_EMAIL_REQUIRE=none)', dkim: [] };
  const fromDomain = domainOf(fromAddress);
  if (!fromDomain) return { ok: false, reason: 'no From address' };
  const trusted = trustedHeaders(headers, settings.authservId, format);
  if ('problem' in trusted) return { ok: false, reason: trusted.problem };
  const parsed = parseTrusted(trusted.values, format);
  if ('problem' in parsed) return { ok: false, reason: parsed.problem };
  const results = parsed.parsed.flatMap((h) => h.results);
  const dkim = results.filter((r) => r.method === 'dkim' && r.result === 'pass' && aligned(dkimDomainOf(r), fromDomain));
  const spf = results.some(
    (r) =>
      r.method === 'spf' &&
      r.result === 'pass' &&
      aligned(domainOf(r.props['smtp.mailfrom'] ?? '') || r.props['smtp.mailfrom'], fromDomain),
  );
  if ((require === 'dkim' || require === 'dkim-or-spf') && dkim.length) return { ok: true, by: 'dkim', dkim };
  if ((require === 'spf' || require === 'dkim-or-spf') && spf) return { ok: true, by: 'spf', dkim: [] };
  const seen = results.filter((r) => r.method === 'dkim' || r.method === 'spf').map(describeResult);
  return {
    ok: false,
    reason: `no aligned ${require === 'dkim-or-spf' ? 'dkim or spf' : require} pass for ${fromDomain} (${seen.join(', ') || 'no dkim or spf result'})`,
  };
}
