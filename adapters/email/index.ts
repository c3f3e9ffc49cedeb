/**
 * The e-mail adapter: commands arrive in one IMAP mailbox (imapflow), are parsed by mailparser and accepted only from
 * authenticated senders; answers are threaded replies sent with nodemailer over SMTP.
 */
import fs from 'node:fs';
import nodemailer from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Logger } from 'pino';
import type { ChannelAdapter, OutboundMessage } from '../contract';
import { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig } from './config';
import { MailIntake } from './intake';
import { MailboxWatcher } from './mailbox';
import { answerMail, translateSmtpError, type AutoSubmitted } from './outbound';
import { decodeRef, encodeRef, type EmailRef } from './reply-ref';
import { SenderLimits } from './sender-limits';

export { emailConfigFrom, emailConfigProblem, emailEnabled, type EmailAdapterConfig };

/** nodemailer's options of an SMTP URL, trusting `ca` too (createTransport drops every option given beside a URL). */
function smtpOptions(url: string, ca: string | undefined): SMTPConnection.Options {
  const options = parseConnectionUrl(url);
  return ca ? { ...options, tls: { ...options.tls, ca } } : options;
}

/**
 * The subject of a private message: its first line without what it quotes (`…`), so that a token or code shown in
 * the message never reaches a subject line, which mail servers log and mail readers list.
 */
export function privateSubject(text: string): string {
  return `Skadi: ${text
    .split('\n')[0]
    .replace(/`[^`]*`?/g, '…')
    .slice(0, 60)}`;
}

/** Creates the e-mail adapter (see emailEnabled for when to, and emailConfigProblem for settings that cannot work). */
export function createEmailAdapter(config: EmailAdapterConfig, log: Logger): ChannelAdapter {
  const ca = config.tlsCaFile ? fs.readFileSync(config.tlsCaFile, 'utf8') : undefined;
  const transport = nodemailer.createTransport(smtpOptions(config.smtpUrl, ca));

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

  const intake = new MailIntake(config, (ref, message) => sendTo(ref, message), log);
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
    intake.onMail,
  );

  return {
    name: 'email',
    access: { mode: config.access, tenants: config.allowedDomains },
    canEdit: false,
    async start(handler, services) {
      intake.start(handler, new SenderLimits(services, config.senderLimit, config.senderWindowMs));
      if (config.require === 'none') {
        log.warn(
          'SKADI_EMAIL_REQUIRE=none: every From address is believed. Use it only for a mailbox that nothing but trusted systems can write to.',
        );
      }
      watcher.start();
    },
    refusalAllowed: (message) => intake.refusalAllowed(message),
    async send(replyTo, message) {
      if (message.replaces) return message.replaces; // mail has no edits; the core sends what matters as new messages
      return sendTo(decodeRef(replyTo), message);
    },
    sendPrivate: (_tenant, address, message) =>
      sendTo({ a: address, s: privateSubject(message.text), m: '', r: [] }, message, 'auto-generated'),
    conversationKey: (replyTo) => decodeRef(replyTo).a,
    up: () => watcher.connected,
    async stop() {
      await watcher.stop();
      transport.close();
    },
  };
}
