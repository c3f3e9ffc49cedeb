/**
 * Sender authentication from Authentication-Results headers (RFC 8601). A From: header is trivially forged; only the
 * receiving server's own results count: headers whose authserv-id is ours, with a DKIM signature (or SPF) of the From
 * domain or a subdomain of it.
 */
import type { EmailRequirement } from './config';

/** One method's result in a header: `dkim=pass header.d=example.com`. */
interface MethodResult {
  method: string;
  result: string;
  props: Record<string, string>;
}

/** Removes RFC 5322 comments `( … )`, which may nest. */
function withoutComments(text: string): string {
  let out = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) out += ch;
  }
  return out;
}

/** Parses one Authentication-Results value into its authserv-id and results. */
export function parseAuthResults(value: string): { authservId: string; results: MethodResult[] } {
  const [head, ...parts] = withoutComments(value).split(';');
  const authservId = head.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const results: MethodResult[] = [];
  for (const part of parts) {
    const tokens = part.trim().split(/\s+/).filter(Boolean);
    const first = /^([a-z0-9_-]+)(?:\/[^=]*)?=([a-z]+)$/i.exec(tokens[0] ?? '');
    if (!first) continue;
    const props: Record<string, string> = {};
    for (const token of tokens.slice(1)) {
      const eq = token.indexOf('=');
      if (eq > 0) props[token.slice(0, eq).toLowerCase()] = token.slice(eq + 1).replace(/^"|"$/g, '').toLowerCase();
    }
    results.push({ method: first[1].toLowerCase(), result: first[2].toLowerCase(), props });
  }
  return { authservId, results };
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

/** Whether the sender is authenticated, and why not. */
export type SenderVerdict = { ok: true; by: string } | { ok: false; reason: string };

/** Checks a sender against the trusted Authentication-Results headers of a message. */
export function authenticateSender(headerValues: string[], fromAddress: string, authservId: string, require: EmailRequirement): SenderVerdict {
  if (require === 'none') return { ok: true, by: 'none (SKADI_EMAIL_REQUIRE=none)' };
  const fromDomain = domainOf(fromAddress);
  if (!fromDomain) return { ok: false, reason: 'no From address' };
  const trusted = headerValues.map(parseAuthResults).filter((h) => h.authservId === authservId.toLowerCase());
  if (trusted.length === 0) return { ok: false, reason: `no Authentication-Results header from ${authservId}` };
  const results = trusted.flatMap((h) => h.results);
  const dkim = results.some((r) => r.method === 'dkim' && r.result === 'pass' && aligned(r.props['header.d'] ?? domainOf(r.props['header.i'] ?? ''), fromDomain));
  const spf = results.some((r) => r.method === 'spf' && r.result === 'pass' && aligned(domainOf(r.props['smtp.mailfrom'] ?? '') || r.props['smtp.mailfrom'], fromDomain));
  if ((require === 'dkim' || require === 'dkim-or-spf') && dkim) return { ok: true, by: 'dkim' };
  if ((require === 'spf' || require === 'dkim-or-spf') && spf) return { ok: true, by: 'spf' };
  const seen = results.filter((r) => r.method === 'dkim' || r.method === 'spf').map((r) => `${r.method}=${r.result}${r.props['header.d'] ? ` header.d=${r.props['header.d']}` : ''}${r.props['smtp.mailfrom'] ? ` smtp.mailfrom=${r.props['smtp.mailfrom']}` : ''}`);
  return { ok: false, reason: `no aligned ${require === 'dkim-or-spf' ? 'dkim or spf' : require} pass for ${fromDomain} (${seen.join(', ') || 'no dkim or spf result'})` };
}
