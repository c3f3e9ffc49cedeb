/** Settings of the e-mail adapter (from the gateway configuration: SKADI_EMAIL_*). */
import fs from 'node:fs';
import type { AccessMode } from '../contract';
import type { AuthResultsFormat } from './auth-results';

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
  if (config.tlsCaFile && !readableFile(config.tlsCaFile)) return `SKADI_EMAIL_TLS_CA=${config.tlsCaFile}: the file cannot be read (a PEM file of CA certificates)`;
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

/** The adapter settings from the gateway configuration. */
export function emailConfigFrom(c: {
  emailImapUrl: string; emailMailbox: string; emailSmtpUrl: string; emailFrom: string; emailAuthservId: string; emailAuthFormat: AuthResultsFormat; emailRequire: EmailRequirement;
  emailAccess: AccessMode; emailAllowedDomains: string[]; emailProcessedFolder: string; emailMaxSizeBytes: number; emailMaxOutputBytes: number;
  emailSenderLimit: number; emailSenderWindowMs: number; emailTlsCa: string;
}): EmailAdapterConfig {
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
