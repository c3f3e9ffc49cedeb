/**
 * Watches one IMAP mailbox with imapflow (IDLE, or polling where the server has none): each unseen mail is handed on
 * once, then marked seen (and moved, if configured). Reconnects with backoff after any drop; unseen mail that arrived
 * meanwhile is taken up at each connect.
 */
import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';

/** What happened to one mail; the watcher marks it seen afterwards in every case but `retry`. */
export type MailOutcome = 'done' | 'retry';

/** Handles the raw source of one mail (null when it was too big to download). */
export type MailHandler = (uid: number, source: Buffer | null, size: number) => Promise<MailOutcome>;

/** Where and how to watch. */
export interface MailboxOptions {
  url: string;
  mailbox: string;
  processedFolder: string;
  maxSizeBytes: number;
  log: Logger;
  onChange(up: boolean): void;
}

const MAX_BACKOFF_MS = 30_000;

/** The IMAP connection settings of an imap:// or imaps:// URL. */
export function imapSettings(url: string): { host: string; port: number; secure: boolean; user: string; pass: string } {
  const u = new URL(url);
  const secure = u.protocol === 'imaps:';
  return { host: u.hostname, port: Number(u.port) || (secure ? 993 : 143), secure, user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
}

/** One mailbox being watched. */
export class MailboxWatcher {
  private client: ImapFlow | null = null;
  private stopped = false;
  private draining: Promise<void> | null = null;
  private again = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  connected = false;

  constructor(
    private readonly options: MailboxOptions,
    private readonly handle: MailHandler,
  ) {}

  /** Connects (in the background when the server is not there yet). */
  start(): void {
    void this.connect();
  }

  private setUp(up: boolean): void {
    if (up === this.connected) return;
    this.connected = up;
    this.options.onChange(up);
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++) * (0.75 + Math.random() / 2);
    this.options.log.info({ retryInMs: Math.round(delay) }, 'IMAP: reconnecting');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
    this.timer.unref();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { host, port, secure, user, pass } = imapSettings(this.options.url);
    const client = new ImapFlow({ host, port, secure, auth: { user, pass }, logger: false, connectionTimeout: 10_000, greetingTimeout: 10_000 });
    this.client = client;
    client.on('error', (err: Error) => this.options.log.warn({ err: err.message }, 'IMAP error'));
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = null;
      this.setUp(false);
      if (!this.stopped) this.scheduleReconnect();
    });
    client.on('exists', () => void this.drain());
    try {
      await client.connect();
      await client.mailboxOpen(this.options.mailbox);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message, host, port }, 'IMAP: could not connect');
      client.close();
      if (this.client === client) {
        this.client = null;
        this.setUp(false);
        this.scheduleReconnect();
      }
      return;
    }
    this.attempt = 0;
    this.setUp(true);
    this.options.log.info({ host, port, mailbox: this.options.mailbox }, 'IMAP: watching the mailbox');
    await this.drain();
  }

  /** Handles every unseen mail, one at a time; a call while draining makes the current drain go round once more. */
  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      do {
        this.again = false;
        await this.drainOnce().catch((err) => this.options.log.warn({ err: (err as Error).message }, 'IMAP: reading new mail failed'));
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.draining = null;
      // Wait for news in IDLE at once (imapflow would wait 15 s before entering it); a later command breaks it.
      if (this.client && !this.stopped) void this.client.idle().catch(() => undefined);
    });
    return this.draining;
  }

  private async drainOnce(): Promise<void> {
    const client = this.client;
    if (!client || this.stopped) return;
    const uids = (await client.search({ seen: false }, { uid: true })) || [];
    for (const uid of uids) {
      if (this.stopped || this.client !== client) return;
      const meta = await client.fetchOne(String(uid), { size: true }, { uid: true });
      if (!meta) continue;
      const size = meta.size ?? 0;
      const source = size > this.options.maxSizeBytes ? null : ((await client.fetchOne(String(uid), { source: true }, { uid: true })) || null)?.source ?? null;
      const outcome = await this.handle(uid, source, size);
      if (outcome === 'retry') {
        this.again = false;
        setTimeout(() => void this.drain(), 5000).unref(); // e.g. the database is down: try the mail again later
        return;
      }
      await client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
      if (this.options.processedFolder) await client.messageMove(String(uid), this.options.processedFolder, { uid: true });
    }
  }

  /** Stops watching and logs out. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.draining?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    if (client) await client.logout().catch(() => client.close());
    this.setUp(false);
  }
}
