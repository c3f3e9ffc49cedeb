/**
 * The e-mail adapter: commands arrive in one IMAP mailbox (imapflow), are parsed by mailparser and accepted only from
 * authenticated senders; answers are threaded replies sent with nodemailer over SMTP.
 */
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { ChannelAdapter, InboundHandler, OutboundMessage } from '../contract';
import { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig } from './config';
import { normalizeMail } from './inbound';
import { MailboxWatcher, type MailOutcome } from './mailbox';
import { answerMail, translateSmtpError } from './outbound';
import { decodeRef, encodeRef, type EmailRef } from './reply-ref';

export { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig };

/** Creates the e-mail adapter (see emailEnabled for when to, and emailConfigProblem for settings that cannot work). */
export function createEmailAdapter(config: EmailAdapterConfig, log: Logger): ChannelAdapter {
  const transport = nodemailer.createTransport(config.smtpUrl);
  let handler: InboundHandler | null = null;

  /** One mail: skipped when too big or unreadable, dropped (no answer) when its sender is not authenticated, else handled. */
  const onMail = async (uid: number, source: Buffer | null, size: number): Promise<MailOutcome> => {
    if (!source) {
      log.warn({ uid, size, max: config.maxSizeBytes }, 'mail over SKADI_EMAIL_MAX_SIZE skipped');
      return 'done';
    }
    let verdict: ReturnType<typeof normalizeMail>;
    try {
      verdict = normalizeMail(await simpleParser(source, { skipImageLinks: true, skipTextLinks: true }), config);
    } catch (err) {
      log.warn({ uid, err: (err as Error).message }, 'malformed mail skipped');
      return 'done';
    }
    if ('refused' in verdict) {
      log.warn({ uid, reason: verdict.refused }, 'mail from an unauthenticated sender refused; no answer is sent');
      return 'done';
    }
    if ('ignored' in verdict) {
      log.info({ uid, reason: verdict.ignored }, 'mail ignored');
      return 'done';
    }
    if (!handler) return 'retry';
    try {
      await handler(verdict.message);
      return 'done';
    } catch (err) {
      log.error({ err, uid }, 'handling a mail failed; it will be tried again');
      return 'retry';
    }
  };

  const watcher = new MailboxWatcher(
    {
      url: config.imapUrl,
      mailbox: config.mailbox,
      processedFolder: config.processedFolder,
      maxSizeBytes: config.maxSizeBytes,
      log,
      onChange: (up) => log.info({ up }, up ? 'e-mail channel up' : 'e-mail channel down'),
    },
    onMail,
  );

  const sendTo = async (ref: EmailRef, message: OutboundMessage): Promise<string> => {
    const mail = answerMail(ref, message, config.from, config.maxOutputBytes);
    try {
      await transport.sendMail(mail);
    } catch (err) {
      throw translateSmtpError(err);
    }
    return encodeRef(ref);
  };

  return {
    name: 'email',
    access: { mode: config.access, tenants: config.allowedDomains },
    canEdit: false,
    async start(h) {
      handler = h;
      if (config.require === 'none') {
        log.warn('SKADI_EMAIL_REQUIRE=none: every From address is believed. Use it only for a mailbox that nothing but trusted systems can write to.');
      }
      watcher.start();
    },
    async send(replyTo, message) {
      if (message.replaces) return message.replaces; // mail has no edits; the core sends what matters as new messages
      return sendTo(decodeRef(replyTo), message);
    },
    sendPrivate: (_tenant, address, message) => sendTo({ a: address, s: `Skadi: ${message.text.split('\n')[0].slice(0, 60)}`, m: '', r: [] }, message),
    conversationKey: (replyTo) => decodeRef(replyTo).a,
    up: () => watcher.connected,
    async stop() {
      await watcher.stop();
      transport.close();
    },
  };
}
