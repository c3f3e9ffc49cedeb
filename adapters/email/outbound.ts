/** Answer mails from OutboundMessages (threaded replies, text and HTML), and SMTP errors as AdapterErrors. */
import { randomUUID } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import { AdapterError, type OutboundMessage } from '../contract';
import { outputTail } from '../output-tail';
import type { EmailRef } from './reply-ref';
import { domainOf } from './sender-auth';

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The text and HTML parts: the line, then the output (its last maxOutputBytes, with a note when cut). */
export function renderBodies(message: OutboundMessage, maxOutputBytes: number): { text: string; html: string } {
  if (!message.code) return { text: `${message.text}\n`, html: `<p>${escapeHtml(message.text)}</p>` };
  const full = message.code.trimEnd();
  const shown = outputTail(full, maxOutputBytes);
  const note = shown.cut ? `Output cut: the last ${Buffer.byteLength(shown.text)} of ${Buffer.byteLength(full)} bytes are shown.` : '';
  return {
    text: `${message.text}\n\n${shown.text}\n${note ? `\n${note}\n` : ''}`,
    html: `<p>${escapeHtml(message.text)}</p>\n<pre style="font-family: monospace">${escapeHtml(shown.text)}</pre>${note ? `\n<p><em>${escapeHtml(note)}</em></p>` : ''}`,
  };
}

/** The bare address of `Name <address>` or `address`. */
export function addressOf(from: string): string {
  return (/<([^<>]+)>/.exec(from)?.[1] ?? from).trim();
}

/** The subject of an answer: `Re: <subject>` (once). */
export function replySubject(subject: string): string {
  const s = subject.trim() || 'Skadi';
  return /^re\s*:/i.test(s) ? s : `Re: ${s}`;
}

/** How the Message-ID of an approval request starts (then the job id and a dot). */
export const APPROVAL_ID_PREFIX = 'skadi-approval.';

/** An address as nodemailer takes it without parsing it again: a From such as `"a@x,b"@y` stays one recipient. */
export interface MailAddress {
  name: string;
  address: string;
}

/** The name and address of `Name <address>`, `"Name" <address>` or `address`. */
export function mailAddressOf(text: string): MailAddress {
  const address = addressOf(text);
  const angle = text.lastIndexOf('<');
  const name =
    angle > 0
      ? text
          .slice(0, angle)
          .trim()
          .replace(/^"(.*)"$/, '$1')
      : '';
  return { name, address };
}

/**
 * What a mail of the gateway is (RFC 3834): an answer to a command (`auto-replied`), or a notice nobody asked for in
 * that mail (`auto-generated`). Either way, mail servers and Outlook are asked not to answer it automatically.
 */
export type AutoSubmitted = 'auto-replied' | 'auto-generated';

/** A reply in the thread of the command's mail, with its own Message-ID on the From domain. */
export function answerMail(
  ref: EmailRef,
  message: OutboundMessage,
  from: string,
  maxOutputBytes: number,
  kind: AutoSubmitted = 'auto-replied',
): SendMailOptions & { messageId: string } {
  // An approval request's Message-ID names its job, so that a reply saying only `approve` or `deny` decides on it.
  const local = message.approval ? `${APPROVAL_ID_PREFIX}${message.approval.jobId}.${randomUUID()}` : randomUUID();
  const messageId = `<${local}@${domainOf(addressOf(from)) || 'skadi.invalid'}>`;
  return {
    from: mailAddressOf(from),
    to: { name: '', address: ref.a },
    subject: ref.m ? replySubject(ref.s) : ref.s || 'Skadi',
    messageId,
    ...(ref.m ? { inReplyTo: ref.m, references: [...ref.r, ref.m] } : {}),
    headers: { 'Auto-Submitted': kind, 'X-Auto-Response-Suppress': 'All' },
    ...renderBodies(message, maxOutputBytes),
  };
}

/** Translates a nodemailer/SMTP error into an AdapterError: 4xx and network failures are passing, 5xx final. */
export function translateSmtpError(err: unknown): AdapterError {
  const e = err as { responseCode?: number; code?: string; message?: string };
  const detail = String(e?.message ?? err)
    .split('\n')[0]
    .slice(0, 300);
  const code = e?.responseCode ?? 0;
  if (code >= 400 && code < 500) return new AdapterError('transient', `the mail server answered ${code}: ${detail}`);
  if (code === 535 || code === 530 || e?.code === 'EAUTH')
    return new AdapterError('unauthorized', `the mail server refused the login: ${detail}`);
  if (code >= 500) return new AdapterError('invalid', `the mail server refused the mail (${code}): ${detail}`);
  return new AdapterError('transient', `sending mail failed: ${detail}`);
}
