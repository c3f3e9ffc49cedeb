/** Settings of the e-mail adapter (from the gateway configuration: SKADI_EMAIL_*). */
import { z } from 'zod';
import { access, bytes, duration, list, setting, url } from '../../config/kit';
import fs from 'node:fs';
import type { AccessMode } from '../contract';
import type { AuthResultsFormat } from './auth-results';

/** The email settings (SKADI_EMAIL_*): their rows of the gateway's settings table (config/settings.ts). */
export const EMAIL_SETTINGS = {
  emailImapUrl: setting(
    'email_imap_url',
    url(['imap:', 'imaps:']).or(z.literal('')),
    '',
    'mailbox that commands are sent to: `imap://user:pass@host:143` (STARTTLS when offered) or `imaps://…:993`; it enables the e-mail adapter',
    true,
  ),
  emailMailbox: setting('email_mailbox', z.string().min(1), 'INBOX', 'the IMAP folder watched for commands'),
  emailSmtpUrl: setting(
    'email_smtp_url',
    url(['smtp:', 'smtps:']).or(z.literal('')),
    '',
    "SMTP server for answers, in nodemailer's URL form: `smtp://user:pass@host:587` or `smtps://…:465`; required with `email_imap_url`",
    true,
  ),
  emailFrom: setting(
    'email_from',
    z
      .string()
      .regex(
        /^([^<>@\s]+@[^<>@\s]+|.*<[^<>@\s]+@[^<>@\s]+>)?$/,
        'must be an address, e.g. skadi@example.com or "Skadi <skadi@example.com>"',
      ),
    '',
    'the address answers come from; required with `email_imap_url`',
  ),
  emailAuthservId: setting(
    'email_authserv_id',
    z.string(),
    '',
    'authserv-id of your receiving mail server: only its `Authentication-Results` headers are trusted; required unless `email_require` is `none` or `email_auth_format` is `microsoft365`',
  ),
  emailAuthFormat: setting(
    'email_auth_format',
    z.enum(['rfc8601', 'microsoft365'], { error: 'must be rfc8601 or microsoft365' }),
    'rfc8601',
    "how the receiving server writes `Authentication-Results`: `rfc8601` (headers start with its authserv-id) or `microsoft365` (Exchange Online's form, no authserv-id)",
  ),
  emailRequire: setting(
    'email_require',
    z.enum(['dkim', 'spf', 'dkim-or-spf', 'none'], { error: 'must be dkim, spf, dkim-or-spf or none' }),
    'dkim',
    'what authenticates a sender: an aligned DKIM pass (`dkim`), an aligned SPF pass (`spf`), either (`dkim-or-spf`), or nothing (`none`: trusted writers only)',
  ),
  emailAccess: setting(
    'email_access',
    access,
    'closed',
    'who may use Skadi by mail: `closed` (linked addresses), `workspace` (whole domains) or `open`',
  ),
  emailAllowedDomains: setting(
    'email_allowed_domains',
    list,
    '',
    'workspace mode: allowed sender domains, comma-separated (empty: every authenticated domain)',
  ),
  emailProcessedFolder: setting('email_processed_folder', z.string(), '', 'folder handled mail is moved to (empty: it stays, marked seen)'),
  emailMaxSizeBytes: setting('email_max_size', bytes, '1mb', 'larger mail is skipped (marked seen, logged)'),
  emailMaxOutputBytes: setting('email_max_output', bytes, '100kb', 'most output in one answer mail (the tail is kept, with a note)'),
  emailSenderLimit: setting(
    'email_sender_limit',
    z.coerce.number().int().min(1),
    30,
    'command mails one sender may send per `email_sender_window`; later ones are not run (one notice per window)',
  ),
  emailSenderWindowMs: setting(
    'email_sender_window',
    duration,
    '10m',
    'window of `email_sender_limit` (counted in Redis, so shared by every node)',
  ),
  emailTlsCa: setting(
    'email_tls_ca',
    z.string(),
    '',
    'PEM file of CA certificates trusted for IMAP and SMTP TLS besides the system ones (an internal CA); if it cannot be read, start-up stops',
  ),
};

/** Which authentication result makes a sender trusted. */
export type EmailRequirement = 'dkim' | 'spf' | 'dkim-or-spf' | 'none';

/** What the e-mail adapter needs. */
export interface EmailAdapterConfig {
  /** imap://user:pass@host:143 or imaps://user:pass@host:993 */
  imapUrl: string;
  mailbox: string;
  /** nodemailer's URL form: smtp://user:pass@host:587 or smtps://…:465 */
  smtpUrl: string;
  /** The address answers come from (and the domain of their Message-IDs). */
  from: string;
  /** The authserv-id of the receiving server: only its Authentication-Results headers are trusted. */
  authservId: string;
  /** How the receiving server writes its Authentication-Results (Microsoft 365 writes no authserv-id). */
  authFormat: AuthResultsFormat;
  require: EmailRequirement;
  access: AccessMode;
  /** Workspace mode: allowed sender domains (empty: every authenticated domain). */
  allowedDomains: string[];
  /** Where handled mail is moved (empty: it stays, marked seen). */
  processedFolder: string;
  maxSizeBytes: number;
  maxOutputBytes: number;
  /** Command mails one sender may send per senderWindowMs. */
  senderLimit: number;
  senderWindowMs: number;
  /** A PEM file of CA certificates trusted for IMAP and SMTP TLS ('' for the system ones only). */
  tlsCaFile: string;
}

/** The e-mail adapter is enabled when an IMAP URL is set. */
export function emailEnabled(config: EmailAdapterConfig): boolean {
  return config.imapUrl !== '';
}

/** Why the settings cannot work (one line for the start-up error), or null. */
export function emailConfigProblem(config: EmailAdapterConfig): string | null {
  if (config.smtpUrl === '') return 'SKADI_EMAIL_IMAP_URL is set but SKADI_EMAIL_SMTP_URL is not: answers are sent over SMTP';
  if (config.from === '') return 'SKADI_EMAIL_IMAP_URL is set but SKADI_EMAIL_FROM is not: the address answers come from';
  if (config.tlsCaFile && !readableFile(config.tlsCaFile))
    return `SKADI_EMAIL_TLS_CA=${config.tlsCaFile}: the file cannot be read (a PEM file of CA certificates)`;
  if (config.require !== 'none' && config.authFormat === 'rfc8601' && config.authservId === '') {
    return 'SKADI_EMAIL_IMAP_URL is set but SKADI_EMAIL_AUTHSERV_ID is not: without it no sender can be authenticated (see docs/email.md)';
  }
  return null;
}

/** True when the file exists and can be read. */
function readableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The Email settings as the gateway configuration holds them. */
export type EmailSettings = z.infer<z.ZodObject<typeof EMAIL_SETTINGS>>;

/** The adapter settings from the gateway configuration. */
export function emailConfigFrom(c: EmailSettings): EmailAdapterConfig {
  return {
    imapUrl: c.emailImapUrl,
    mailbox: c.emailMailbox,
    smtpUrl: c.emailSmtpUrl,
    from: c.emailFrom,
    authservId: c.emailAuthservId.toLowerCase(),
    authFormat: c.emailAuthFormat,
    require: c.emailRequire,
    access: c.emailAccess,
    allowedDomains: c.emailAllowedDomains.map((d) => d.toLowerCase()),
    processedFolder: c.emailProcessedFolder,
    maxSizeBytes: c.emailMaxSizeBytes,
    maxOutputBytes: c.emailMaxOutputBytes,
    senderLimit: c.emailSenderLimit,
    senderWindowMs: c.emailSenderWindowMs,
    tlsCaFile: c.emailTlsCa,
  };
}
