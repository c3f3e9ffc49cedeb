/** Pure functions from a parsed mail (mailparser) to the core's InboundMessage: authenticate, find the command, normalize. */
import { createHash } from 'node:crypto';
import type { ParsedMail } from 'mailparser';
import type { InboundMessage } from '../contract';
import type { EmailAdapterConfig } from './config';
import { authenticateSender, domainOf, type HeaderField } from './sender-auth';
import { passingSignatures, replayProblem, signatureKeys } from './replay';
import { encodeRef } from './reply-ref';
import { addressOf, APPROVAL_ID_PREFIX } from './outbound';

/** A message for the core, or why the mail is not one (forged senders are refused: they never get an answer). */
export type MailVerdict = { message: InboundMessage } | { ignored: string } | { refused: string };

/** Every header of a mail in its order, with lower-case names and unfolded values. */
export function headerFields(mail: Pick<ParsedMail, 'headerLines'>): HeaderField[] {
  return (mail.headerLines ?? []).map((h) => ({
    key: h.key,
    value: h.line
      .slice(h.line.indexOf(':') + 1)
      .replace(/\r?\n[ \t]+/g, ' ')
      .trim(),
  }));
}

/** The values of every occurrence of a header, unfolded. */
export function headerValues(mail: Pick<ParsedMail, 'headerLines'>, name: string): string[] {
  return headerFields(mail)
    .filter((h) => h.key === name)
    .map((h) => h.value);
}

/** The first line of a body that is neither empty nor quoted, before any signature. */
export function firstCommandLine(text: string): string {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (raw === '-- ' || line === '--') break; // the signature separator
    if (line === '' || line.startsWith('>')) continue;
    return line;
  }
  return '';
}

/** Subjects that carry no command: empty, `skadi`, or a reply or forward (whose subject repeats an earlier command). */
function subjectHasCommand(subject: string): boolean {
  const s = subject.trim();
  return s !== '' && s.toLowerCase() !== 'skadi' && !/^(re|fw|fwd|aw|sv|wg)\s*:/i.test(s);
}

/** The command of a mail: its subject, else the first line of its text (an HTML-only mail's text rendering). */
export function commandOf(subject: string, text: string): string {
  return subjectHasCommand(subject) ? subject.trim() : firstCommandLine(text);
}

/** Headers that auto-responders set instead of (or besides) Auto-Submitted; any value but `no` marks the mail. */
const AUTORESPONDER_HEADERS = ['x-autoreply', 'x-autorespond'];
/** Precedence values of mail that nobody typed. */
const AUTOMATIC_PRECEDENCE = new Set(['bulk', 'junk', 'list', 'auto_reply']);

/**
 * True for mail that answers itself, which answering could loop with: auto-replies (RFC 3834 Auto-Submitted, and the
 * X-Autoreply / X-Autorespond of responders that set nothing else), bounces (the null sender: `Return-Path: <>`),
 * bulk and list mail.
 */
export function isAutomatic(mail: Pick<ParsedMail, 'headerLines'>): boolean {
  const first = (name: string) => headerValues(mail, name)[0]?.toLowerCase();
  const auto = first('auto-submitted');
  if (auto !== undefined && auto !== 'no') return true;
  if (AUTORESPONDER_HEADERS.some((name) => first(name) !== undefined && first(name) !== 'no')) return true;
  if (headerValues(mail, 'return-path').some((path) => /^<\s*>$/.test(path))) return true;
  return AUTOMATIC_PRECEDENCE.has(first('precedence') ?? '');
}

/** The de-duplication key: the Message-ID, else a hash of the headers that identify a mail. */
export function mailKey(mail: Pick<ParsedMail, 'messageId' | 'headerLines'>): string {
  const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 40);
  if (mail.messageId) return `mid:${hash(mail.messageId.trim().toLowerCase())}`;
  return `hdr:${hash(['from', 'to', 'date', 'subject'].map((h) => headerValues(mail, h).join(',')).join('\n'))}`;
}

/**
 * A reply to an approval request whose first line is only `approve` or `deny [reason]` decides on the request's job:
 * its id is taken from the Message-ID the reply answers (In-Reply-To, else References).
 */
export function withApprovalJob(command: string, answered: string[]): string {
  const match = /^(approve|deny)\b\s*(.*)$/is.exec(command);
  if (!match) return command;
  const [, verb, rest] = match;
  const named = /^[0-9A-Z]{26}\b/i.test(rest) || (verb.toLowerCase() === 'approve' && /^[0-9A-Z]{3,25}$/i.test(rest.trim()));
  if (named) return command;
  for (const id of answered) {
    const job = id.split(APPROVAL_ID_PREFIX)[1]?.match(/^([0-9A-Z]{26})\./)?.[1];
    if (job) return `${verb.toLowerCase()} ${job}${rest.trim() ? ` ${rest.trim()}` : ''}`;
  }
  return command;
}

/** Why the From of a mail is ambiguous, or null: verifiers check one From: header and address, mailparser reads another. */
function fromProblem(mail: ParsedMail): string | null {
  if (headerValues(mail, 'from').length > 1) return 'more than one From: header';
  if ((mail.from?.value?.length ?? 0) > 1) return 'more than one From address';
  return null;
}

/** The settings normalizeMail uses. */
export type InboundSettings = Pick<EmailAdapterConfig, 'from' | 'authservId' | 'authFormat' | 'require'>;

/** A sender check that passed: the extra de-duplication keys, and the headers a passing DKIM signature covers (null: no DKIM). */
interface SenderChecked {
  keys: string[];
  signed: Set<string> | null;
}

/** Authenticates the sender of a mail and checks it is no replay; what it learned, or why the mail is refused. */
function checkSender(mail: ParsedMail, address: string, config: InboundSettings, now: Date): SenderChecked | { refused: string } {
  const headers = headerFields(mail);
  const auth = authenticateSender(headers, address, { authservId: config.authservId, format: config.authFormat, require: config.require });
  if (!auth.ok) return { refused: auth.reason };
  if (config.require === 'none') return { keys: [], signed: null };
  const signatures = passingSignatures(headers, auth.dkim);
  // Without the signature that passed, a copy resent with a new Message-ID could not be told from the first.
  if (auth.by === 'dkim' && signatures.length === 0)
    return { refused: "the DKIM signature that passed is not among the mail's DKIM-Signature headers" };
  const replay = replayProblem(headerValues(mail, 'date'), signatures, now);
  if (replay) return { refused: replay };
  const signed =
    auth.by === 'dkim'
      ? new Set(
          signatures.flatMap((s) =>
            (s.h ?? '')
              .toLowerCase()
              .split(':')
              .map((h) => h.trim()),
          ),
        )
      : null;
  return { keys: signatureKeys(signatures), signed };
}

/** Normalizes a parsed mail whose sender authentication passes. */
export function normalizeMail(mail: ParsedMail, config: InboundSettings, receivedAt = new Date()): MailVerdict {
  const ambiguous = fromProblem(mail);
  if (ambiguous) return { refused: ambiguous };
  const sender = mail.from?.value?.[0];
  const address = String(sender?.address ?? '').toLowerCase();
  if (!address || !domainOf(address)) return { ignored: 'no From address' };
  if (address === addressOf(config.from).toLowerCase()) return { ignored: 'mail from the gateway itself' };
  if (isAutomatic(mail)) return { ignored: 'an automatic reply or bulk mail' };
  const auth = checkSender(mail, address, config, receivedAt);
  if ('refused' in auth) return auth;
  const subject = String(mail.subject ?? '');
  const references = Array.isArray(mail.references) ? mail.references : mail.references ? [mail.references] : [];
  // The mail answered first (In-Reply-To), then References from the newest: an older request in the chain is not it.
  // Of a DKIM-signed mail only what the signature covers counts: a copy with an added References header decides nothing.
  const covers = (header: string) => auth.signed === null || auth.signed.has(header);
  const answered = [
    ...(covers('in-reply-to') ? [String(mail.inReplyTo ?? '')] : []),
    ...(covers('references') ? [...references].reverse() : []),
  ];
  const text = withApprovalJob(commandOf(subject, String(mail.text ?? '')), answered);
  if (!text) return { ignored: 'no command in the subject or the first line' };
  return {
    message: {
      channel: 'email',
      tenant: domainOf(address),
      senderId: address,
      senderName: String(sender?.name ?? ''),
      text,
      isPrivate: true,
      replyTo: encodeRef({ a: address, s: subject, m: mail.messageId ?? '', r: references }),
      messageId: mailKey(mail),
      ...(auth.keys.length ? { dedupKeys: auth.keys } : {}),
      receivedAt,
    },
  };
}
