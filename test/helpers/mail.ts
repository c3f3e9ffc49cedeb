/** Builds raw RFC 5322 mails (CRLF line ends) and Authentication-Results values for tests. */
import crypto from 'node:crypto';

/** What rawMail() puts in a mail. */
export interface RawMailOptions {
  from: string;
  to: string | string[];
  subject: string;
  text?: string;
  html?: string;
  /** With angle brackets; a random one when missing. */
  messageId?: string;
  references?: string | string[];
  inReplyTo?: string;
  /** Default now. */
  date?: Date;
  /** Full Authentication-Results header values, put first as a receiving server would. */
  authResults?: string[];
  extraHeaders?: Record<string, string>;
}

/** What authResults() reports. */
export interface AuthResultsOptions {
  dkim?: 'pass' | 'fail' | 'none';
  dkimDomain?: string;
  /** The DKIM selector (header.s) shown with dkimDomain; default `sel`. */
  dkimSelector?: string;
  spf?: 'pass' | 'fail';
  mailFrom?: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An RFC 5322 date in UTC, e.g. `Tue, 03 Jun 2025 10:00:00 +0000`. */
export function mailDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${time} +0000`;
}

/** A header value as is when it is ASCII, else as one UTF-8 encoded-word (RFC 2047). */
function encodeHeader(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The headers and CRLF body of one text part: 7bit when it may be, else base64 in 76-character lines. */
function textPart(type: 'plain' | 'html', content: string): { headers: string[]; body: string } {
  const body = content.replace(/\r?\n/g, '\r\n');
  const plain = /^[\x20-\x7e\r\n\t]*$/.test(body) && body.split('\r\n').every((line) => line.length <= 998);
  const headers = [`Content-Type: text/${type}; charset=utf-8`, `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}`];
  return {
    headers,
    body: plain
      ? body
      : (
          Buffer.from(content, 'utf8')
            .toString('base64')
            .match(/.{1,76}/g) ?? []
        ).join('\r\n'),
  };
}

/** The MIME headers and body: one text part, or multipart/alternative when there is both text and html. */
function mimeBody(text: string | undefined, html: string | undefined): { headers: string[]; body: string } {
  if (text === undefined || html === undefined) return html === undefined ? textPart('plain', text ?? '') : textPart('html', html);
  const boundary = `=_skadi_${crypto.randomBytes(8).toString('hex')}`;
  const parts = [textPart('plain', text), textPart('html', html)].map(
    (p) => `--${boundary}\r\n${p.headers.join('\r\n')}\r\n\r\n${p.body}\r\n`,
  );
  return { headers: [`Content-Type: multipart/alternative; boundary="${boundary}"`], body: `${parts.join('')}--${boundary}--` };
}

/**
 * The DKIM-Signature header that a `dkim=pass header.d=… header.s=…` result stands for, as the signer would have
 * written it (a real mail that passed carries its signature; its bytes are random here, the MX is what checked them).
 */
export function dkimSignatureFor(authResults: string, date: Date): string | null {
  const pass = /dkim=pass header\.d=(\S+) header\.s=(\S+)/.exec(authResults);
  if (!pass) return null;
  const b = crypto.randomBytes(256).toString('base64');
  return `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=${pass[1]}; s=${pass[2].replace(/;$/, '')}; t=${Math.floor(date.getTime() / 1000)}; h=from:to:cc:subject:date:reply-to:in-reply-to:references:mime-version:content-type; bh=${crypto.randomBytes(32).toString('base64')}; b=${b}`;
}

/** A raw mail as a CRLF string; a DKIM pass among its Authentication-Results comes with its DKIM-Signature. */
export function rawMail(options: RawMailOptions): string {
  const mime = mimeBody(options.text, options.html);
  const signatures = (options.authResults ?? [])
    .map((value) => dkimSignatureFor(value, options.date ?? new Date()))
    .filter((h): h is string => h !== null);
  const headers = [
    ...(options.authResults ?? []).map((value) => `Authentication-Results: ${value}`),
    ...signatures,
    `From: ${options.from}`,
    `To: ${([] as string[]).concat(options.to).join(', ')}`,
    `Subject: ${encodeHeader(options.subject)}`,
    `Date: ${mailDate(options.date ?? new Date())}`,
    `Message-ID: ${options.messageId ?? `<${crypto.randomUUID()}@test.example>`}`,
    ...(options.inReplyTo ? [`In-Reply-To: ${options.inReplyTo}`] : []),
    ...(options.references?.length ? [`References: ${([] as string[]).concat(options.references).join(' ')}`] : []),
    ...Object.entries(options.extraHeaders ?? {}).map(([name, value]) => `${name}: ${value}`),
    'MIME-Version: 1.0',
    ...mime.headers,
  ];
  return `${headers.join('\r\n')}\r\n\r\n${mime.body}\r\n`;
}

/** An Authentication-Results value, e.g. `mx.example.net; dkim=pass header.d=example.com header.s=sel; spf=pass smtp.mailfrom=a@example.com`. */
export function authResults(authservId: string, options: AuthResultsOptions): string {
  const results: string[] = [];
  if (options.dkim) {
    const domain =
      options.dkimDomain && options.dkim !== 'none' ? ` header.d=${options.dkimDomain} header.s=${options.dkimSelector ?? 'sel'}` : '';
    results.push(`dkim=${options.dkim}${domain}`);
  }
  if (options.spf) results.push(`spf=${options.spf}${options.mailFrom ? ` smtp.mailfrom=${options.mailFrom}` : ''}`);
  return `${authservId}; ${results.length ? results.join('; ') : 'none'}`;
}
