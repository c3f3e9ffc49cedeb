/**
 * The e-mail adapter: commands arrive in one IMAP mailbox (imapflow), are parsed by mailparser and accepted only from
 * authenticated senders; answers are threaded replies sent with nodemailer over SMTP.
 */
import fs from 'node:fs';
import { simpleParser, type ParsedMail } from 'mailparser';
import nodemailer from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Logger } from 'pino';
import type { ChannelAdapter, InboundHandler, InboundMessage, OutboundMessage } from '../contract';
import { formatDuration } from '../../config/duration';
import { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig } from './config';
import { normalizeMail } from './inbound';
import { MailboxWatcher, type FetchedMail, type MailOutcome } from './mailbox';
import { answerMail, translateSmtpError, type AutoSubmitted } from './outbound';
import { decodeRef, encodeRef, type EmailRef } from './reply-ref';
import { SenderLimits } from './sender-limits';

export { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig };

/** Longest text of a header shown in a log line. */
const LOGGED_HEADER_CHARS = 200;

/** What a log line says about a mail: its uid, and who it claims to be from, its Message-ID and its subject. */
function describeMail(uid: number, mail: ParsedMail | null): Record<string, unknown> {
  const cut = (text: unknown) => String(text ?? '').slice(0, LOGGED_HEADER_CHARS);
  return mail ? { uid, from: cut(mail.from?.text), messageId: cut(mail.messageId), subject: cut(mail.subject) } : { uid };
}

/** Parses a mail (or a header block); null when mailparser cannot. */
async function parseMail(source: Buffer): Promise<ParsedMail | null> {
  return simpleParser(source, { skipImageLinks: true, skipTextLinks: true }).catch(() => null);
}

/** nodemailer's options of an SMTP URL, trusting `ca` too (createTransport drops every option given beside a URL). */
function smtpOptions(url: string, ca: string | undefined): SMTPConnection.Options {
  const options = parseConnectionUrl(url);
  return ca ? { ...options, tls: { ...options.tls, ca } } : options;
}

/** Creates the e-mail adapter (see emailEnabled for when to, and emailConfigProblem for settings that cannot work). */
export function createEmailAdapter(config: EmailAdapterConfig, log: Logger): ChannelAdapter {
  const ca = config.tlsCaFile ? fs.readFileSync(config.tlsCaFile, 'utf8') : undefined;
  const transport = nodemailer.createTransport(smtpOptions(config.smtpUrl, ca));
  let handler: InboundHandler | null = null;
  let limits: SenderLimits | null = null;

  const sendTo = async (ref: EmailRef, message: OutboundMessage, kind: AutoSubmitted = 'auto-replied'): Promise<string> => {
    const mail = answerMail(ref, message, config.from, config.maxOutputBytes, kind);
    try {
      await transport.sendMail(mail);
    } catch (err) {
      const failure = translateSmtpError(err);
      log.warn({ code: failure.code, err: failure.message, messageId: mail.messageId }, 'sending a mail failed');
      throw failure;
    }
    return encodeRef(ref);
  };

  /** A command mail of a sender over SKADI_EMAIL_SENDER_LIMIT: not run; the first one of the window is answered why. */
  const refuseOverLimit = async (message: InboundMessage, notice: boolean, about: Record<string, unknown>): Promise<MailOutcome> => {
    log.warn({ ...about, limit: config.senderLimit }, 'mail over SKADI_EMAIL_SENDER_LIMIT not run');
    if (!notice) return 'done';
    const text = `You sent more than ${config.senderLimit} commands within ${formatDuration(config.senderWindowMs)}: this one was not run, and neither will be the next ones for a while (they get no answer). Send it again later.`;
    await sendTo(decodeRef(message.replyTo), { text }).catch(() => undefined); // already logged; the mail is not run either way
    return 'done';
  };

  /** Hands an authenticated command mail to the core when its sender is within the limit. */
  const runCommand = async (message: InboundMessage, about: Record<string, unknown>): Promise<MailOutcome> => {
    if (!handler || !limits) return 'retry';
    try {
      const admission = await limits.admit(message.senderId, message.messageId);
      if (admission !== 'run') return await refuseOverLimit(message, admission === 'notice', about);
      await handler(message);
      return 'done';
    } catch (err) {
      log.error({ err, ...about }, 'handling a mail failed; it will be tried again');
      return 'retry';
    }
  };

  /** A mail too big to download: logged from its header; its authenticated sender is told once why it was not run. */
  const onOversized = async (mail: FetchedMail): Promise<MailOutcome> => {
    const parsed = mail.headers ? await parseMail(mail.headers) : null;
    const about = { ...describeMail(mail.uid, parsed), size: mail.size, max: config.maxSizeBytes };
    log.warn(about, 'mail over SKADI_EMAIL_MAX_SIZE skipped');
    if (!parsed || !limits) return 'done';
    // Judged as if its body held a command, so that every check of a command's sender applies to this answer too.
    const verdict = normalizeMail({ ...parsed, text: 'too big to read' } as ParsedMail, config);
    if (!('message' in verdict)) return 'done';
    const { senderId, messageId, replyTo } = verdict.message;
    try {
      if ((await limits.admit(senderId, messageId)) !== 'run' || !(await limits.firstOversizedAnswer(messageId))) return 'done';
      const text = `Your mail was not run: it is ${mail.size} bytes, and this gateway reads mail of at most ${config.maxSizeBytes} bytes (SKADI_EMAIL_MAX_SIZE). Send the command alone, without attachments or long quotes.`;
      await sendTo(decodeRef(replyTo), { text });
    } catch (err) {
      log.warn({ ...about, err: (err as Error).message }, 'could not tell the sender that the mail was too big');
    }
    return 'done';
  };

  /** One mail: skipped when too big or unreadable, dropped (no answer) when its sender is not authenticated, else handled. */
  const onMail = async (mail: FetchedMail): Promise<MailOutcome> => {
    if (!mail.source) return onOversized(mail);
    const parsed = await parseMail(mail.source);
    let verdict: ReturnType<typeof normalizeMail>;
    try {
      if (!parsed) throw new Error('mailparser could not read it');
      verdict = normalizeMail(parsed, config);
    } catch (err) {
      log.warn({ ...describeMail(mail.uid, parsed), err: (err as Error).message }, 'malformed mail skipped');
      return 'done';
    }
    const about = describeMail(mail.uid, parsed);
    if ('refused' in verdict) {
      log.warn({ ...about, reason: verdict.refused }, 'mail from an unauthenticated sender refused; no answer is sent');
      return 'done';
    }
    if ('ignored' in verdict) {
      log.info({ ...about, reason: verdict.ignored }, 'mail ignored');
      return 'done';
    }
    return runCommand(verdict.message, about);
  };

  const watcher = new MailboxWatcher(
    {
      url: config.imapUrl,
      mailbox: config.mailbox,
      processedFolder: config.processedFolder,
      maxSizeBytes: config.maxSizeBytes,
      ca,
      log,
      onChange: (up) => log.info({ up }, up ? 'e-mail channel up' : 'e-mail channel down'),
    },
    onMail,
  );

  return {
    name: 'email',
    access: { mode: config.access, tenants: config.allowedDomains },
    canEdit: false,
    async start(h, services) {
      handler = h;
      limits = new SenderLimits(services, config.senderLimit, config.senderWindowMs);
      if (config.require === 'none') {
        log.warn('SKADI_EMAIL_REQUIRE=none: every From address is believed. Use it only for a mailbox that nothing but trusted systems can write to.');
      }
      watcher.start();
    },
    async refusalAllowed(message) {
      try {
        return !limits || (await limits.mayRefuse(message.senderId, message.messageId));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'the refusal count could not be read; the refusal is sent');
        return true;
      }
    },
    async send(replyTo, message) {
      if (message.replaces) return message.replaces; // mail has no edits; the core sends what matters as new messages
      return sendTo(decodeRef(replyTo), message);
    },
    sendPrivate: (_tenant, address, message) => sendTo({ a: address, s: `Skadi: ${message.text.split('\n')[0].slice(0, 60)}`, m: '', r: [] }, message, 'auto-generated'),
    conversationKey: (replyTo) => decodeRef(replyTo).a,
    up: () => watcher.connected,
    async stop() {
      await watcher.stop();
      transport.close();
    },
  };
}
