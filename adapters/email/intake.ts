/**
 * What happens to each mail of the watched mailbox: parsed, judged (forged, automatic, oversized), counted against
 * its sender's limit, and handed to the core; the watcher marks it seen unless this says `retry`.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import type { Logger } from 'pino';
import type { InboundHandler, InboundMessage, OutboundMessage } from '../contract';
import { formatDuration } from '../../config/duration';
import type { EmailAdapterConfig } from './config';
import { normalizeMail } from './inbound';
import type { FetchedMail, MailOutcome } from './mailbox';
import { decodeRef, type EmailRef } from './reply-ref';
import type { SenderLimits } from './sender-limits';

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

/** Sends an answer in a thread (the adapter's SMTP side). */
export type ThreadSender = (ref: EmailRef, message: OutboundMessage) => Promise<string>;

/** The mail intake of one adapter; it takes mail once started (until then every mail is `retry`). */
export class MailIntake {
  private handler: InboundHandler | null = null;
  private limits: SenderLimits | null = null;

  constructor(
    private readonly config: EmailAdapterConfig,
    private readonly send: ThreadSender,
    private readonly log: Logger,
  ) {}

  /** Starts handing mail to the core, counted by these limits. */
  start(handler: InboundHandler, limits: SenderLimits): void {
    this.handler = handler;
    this.limits = limits;
  }

  /** One mail: skipped when too big or unreadable, dropped (no answer) when its sender is not authenticated, else handled. */
  readonly onMail = async (mail: FetchedMail): Promise<MailOutcome> => {
    if (!mail.source) return this.onOversized(mail);
    const parsed = await parseMail(mail.source);
    let verdict: ReturnType<typeof normalizeMail>;
    try {
      if (!parsed) throw new Error('mailparser could not read it');
      verdict = normalizeMail(parsed, this.config);
    } catch (err) {
      this.log.warn({ ...describeMail(mail.uid, parsed), err: (err as Error).message }, 'malformed mail skipped');
      return 'done';
    }
    const about = describeMail(mail.uid, parsed);
    if ('refused' in verdict) {
      this.log.warn({ ...about, reason: verdict.refused }, 'mail from an unauthenticated sender refused; no answer is sent');
      return 'done';
    }
    if ('ignored' in verdict) {
      this.log.info({ ...about, reason: verdict.ignored }, 'mail ignored');
      return 'done';
    }
    return this.runCommand(verdict.message, about);
  };

  /** True for the first refusal of a sender in a day (and when the count cannot be read: the refusal is sent). */
  async refusalAllowed(message: InboundMessage): Promise<boolean> {
    try {
      return !this.limits || (await this.limits.mayRefuse(message.senderId, message.messageId));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'the refusal count could not be read; the refusal is sent');
      return true;
    }
  }

  /** Hands an authenticated command mail to the core when its sender is within the limit. */
  private async runCommand(message: InboundMessage, about: Record<string, unknown>): Promise<MailOutcome> {
    if (!this.handler || !this.limits) return 'retry';
    try {
      const admission = await this.limits.admit(message.senderId, message.messageId);
      if (admission !== 'run') return await this.refuseOverLimit(message, admission === 'notice', about);
      await this.handler(message);
      return 'done';
    } catch (err) {
      this.log.error({ err, ...about }, 'handling a mail failed; it will be tried again');
      return 'retry';
    }
  }

  /** A command mail of a sender over SKADI_EMAIL_SENDER_LIMIT: not run; the first one of the window is answered why. */
  private async refuseOverLimit(message: InboundMessage, notice: boolean, about: Record<string, unknown>): Promise<MailOutcome> {
    const { senderLimit, senderWindowMs } = this.config;
    this.log.warn({ ...about, limit: senderLimit }, 'mail over SKADI_EMAIL_SENDER_LIMIT not run');
    if (!notice) return 'done';
    const text = `You sent more than ${senderLimit} commands within ${formatDuration(senderWindowMs)}: this one was not run, and neither will be the next ones for a while (they get no answer). Send it again later.`;
    await this.send(decodeRef(message.replyTo), { text }).catch(() => undefined); // already logged; the mail is not run either way
    return 'done';
  }

  /** A mail too big to download: logged from its header; its authenticated sender is told once why it was not run. */
  private async onOversized(mail: FetchedMail): Promise<MailOutcome> {
    const parsed = mail.headers ? await parseMail(mail.headers) : null;
    const about = { ...describeMail(mail.uid, parsed), size: mail.size, max: this.config.maxSizeBytes };
    this.log.warn(about, 'mail over SKADI_EMAIL_MAX_SIZE skipped');
    if (!parsed || !this.limits) return 'done';
    // Judged as if its body held a command, so that every check of a command's sender applies to this answer too.
    const verdict = normalizeMail({ ...parsed, text: 'too big to read' } as ParsedMail, this.config);
    if (!('message' in verdict)) return 'done';
    const { senderId, messageId, replyTo } = verdict.message;
    try {
      if ((await this.limits.admit(senderId, messageId)) !== 'run' || !(await this.limits.firstOversizedAnswer(messageId))) return 'done';
      const text = `Your mail was not run: it is ${mail.size} bytes, and this gateway reads mail of at most ${this.config.maxSizeBytes} bytes (SKADI_EMAIL_MAX_SIZE). Send the command alone, without attachments or long quotes.`;
      await this.send(decodeRef(replyTo), { text });
    } catch (err) {
      this.log.warn({ ...about, err: (err as Error).message }, 'could not tell the sender that the mail was too big');
    }
    return 'done';
  }
}
