/**
 * A real DKIM chain for tests: keys made in the test, mail signed with them (mailauth's signer), and a border MX that
 * does what docs/email.md asks of one: it drops incoming Authentication-Results headers with its own id (the Postfix
 * header_checks line), verifies DKIM and SPF with mailauth against the test's keys, writes its Received: and
 * Authentication-Results: headers on top, and delivers the mail to a Dovecot mailbox.
 */
import crypto from 'node:crypto';
import { authenticate } from 'mailauth';
import { dkimSign } from 'mailauth/lib/dkim/sign';
import type { Dovecot } from './dovecot';
import { mailDate } from './mail';

/** A DKIM key of one domain and selector; `txt` is the DNS record that publishes it. */
export interface DkimKey {
  domain: string;
  selector: string;
  privateKey: string;
  txt: string;
}

/** How to sign: which headers (OpenDKIM's default set leaves out Message-ID), when (t=), until when (x=). */
export interface SignOptions {
  headerList?: string[];
  signTime?: Date;
  expires?: Date;
}

/** The headers OpenDKIM signs by default (its SignHeaders list, as far as a test mail has them): no Message-ID. */
export const OPENDKIM_SIGNED_HEADERS = [
  'From',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Reply-To',
  'In-Reply-To',
  'References',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
];

/** A new 2048-bit RSA key for a domain. */
export function dkimKey(domain: string, selector = 'sel'): DkimKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { domain, selector, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt: `v=DKIM1; k=rsa; p=${p}` };
}

/** The mail with a DKIM-Signature header of the key on top. */
export async function signMail(raw: string, key: DkimKey, options: SignOptions = {}): Promise<string> {
  // mailauth takes headerList as a colon-separated list and reads expires, neither as its types say.
  const signOptions: Record<string, unknown> = {
    canonicalization: 'relaxed/relaxed',
    headerList: (options.headerList ?? OPENDKIM_SIGNED_HEADERS).join(':'),
    // Always given: without it mailauth reads the clock twice (for the signed header and the one it writes), and a
    // signature made across a half second carries another t= than the one it signed, so it fails as "bad signature".
    signTime: options.signTime ?? new Date(),
    expires: options.expires,
    signatureData: [{ signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey }],
  };
  const signed = await dkimSign(raw, signOptions as unknown as Parameters<typeof dkimSign>[1]);
  if (signed.errors?.length) throw new Error(`signing failed: ${JSON.stringify(signed.errors)}`);
  return signed.signatures + raw;
}

/** A DNS resolver for mailauth that knows only the test's keys (every other name does not exist). */
function resolverOf(keys: DkimKey[]) {
  return async (name: string, type: string): Promise<string[][]> => {
    const key = keys.find((k) => `${k.selector}._domainkey.${k.domain}` === name.toLowerCase());
    if (key && type === 'TXT') return [[key.txt]];
    throw Object.assign(new Error(`${name} ${type}: not found`), { code: 'ENOTFOUND' });
  };
}

/** Drops every header field (with its folded lines) whose whole text matches the pattern, as Postfix header_checks IGNORE does. */
export function dropHeaders(raw: string, pattern: RegExp): string {
  const end = raw.indexOf('\r\n\r\n');
  const fields = raw.slice(0, end).split(/\r\n(?![ \t])/);
  return [...fields.filter((f) => !pattern.test(f)), ''].join('\r\n') + raw.slice(end + 2);
}

/** One delivery through the MX: where it came from; `strip: false` plays an MX that is not set up as docs/email.md says. */
export interface Delivery {
  ip?: string;
  helo?: string;
  mailFrom: string;
  rcptTo?: string;
  strip?: boolean;
}

/** A border MX in front of one mailbox. */
export interface BorderMx {
  /** Receives a mail, stamps it, delivers it to the mailbox; returns the mail as delivered. */
  deliver(raw: string, delivery: Delivery): Promise<string>;
}

/** The Postfix header_checks pattern of docs/email.md for an authserv-id: `/^Authentication-Results:\s*mx\.example\.com\b/ IGNORE`. */
export function stripPattern(authservId: string): RegExp {
  return new RegExp(`^Authentication-Results:\\s*${authservId.replace(/\./g, '\\.')}\\b`, 'i');
}

/** A border MX named `authservId` that knows the given DKIM keys and delivers to the Dovecot's INBOX. */
export function borderMx(authservId: string, keys: DkimKey[], dovecot: Dovecot): BorderMx {
  return {
    async deliver(raw, delivery) {
      const { ip = '192.0.2.25', helo = 'sender.example', mailFrom, rcptTo = 'skadi@ops.example.net' } = delivery;
      const received = `Received: from ${helo} (${helo} [${ip}])\r\n\tby ${authservId} (skadi test MX) with ESMTP id ${crypto.randomBytes(5).toString('hex')}\r\n\tfor <${rcptTo}>; ${mailDate(new Date())}\r\n`;
      const incoming = delivery.strip === false ? raw : dropHeaders(raw, stripPattern(authservId));
      const result = await authenticate(incoming, {
        ip,
        helo,
        mta: authservId,
        sender: mailFrom,
        resolver: resolverOf(keys),
        disableArc: true,
        disableBimi: true,
      } as Parameters<typeof authenticate>[1]);
      const stamped = received + result.headers + incoming;
      await dovecot.append(stamped);
      return stamped;
    },
  };
}
