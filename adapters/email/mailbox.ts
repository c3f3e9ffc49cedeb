/**
 * Watches one IMAP mailbox with imapflow (IDLE, or polling where the server has none): each unseen mail is handed on
 * once, then marked seen (and moved, if configured); waiting mail is taken one per sender in turn. Reconnects with
 * backoff after any drop; unseen mail that arrived meanwhile is taken up at each connect.
 */
import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';

/** What happened to one mail; the watcher marks it seen afterwards in every case but `retry`. */
export type MailOutcome = 'done' | 'retry';

/** One unseen mail as the handler gets it: its raw source, or (when it is too big to download) its header only. */
export interface FetchedMail {
  uid: number;
  size: number;
  source: Buffer | null;
  /** The header block of a mail too big to download (null when the source is there). */
  headers: Buffer | null;
}

/** Handles one mail. */
export type MailHandler = (mail: FetchedMail) => Promise<MailOutcome>;

/** Where and how to watch. */
export interface MailboxOptions {
  url: string;
  mailbox: string;
  processedFolder: string;
  maxSizeBytes: number;
  /** PEM certificates trusted for the IMAP server's TLS (besides the system's), or undefined. */
  ca?: string;
  log: Logger;
  onChange(up: boolean): void;
}

/** An unseen mail waiting in the mailbox: its uid and who it says it is from (lower case). */
export interface Waiting {
  uid: number;
  sender: string;
}

/**
 * The order to handle waiting mail in: one mail of each sender in turn (by uid within a sender), so that a sender
 * with a hundred mails waiting delays another sender's one mail by one mail, not by a hundred.
 */
export function fairOrder(waiting: Waiting[]): number[] {
  const bySender = new Map<string, number[]>();
  for (const w of [...waiting].sort((a, b) => a.uid - b.uid)) {
    const uids = bySender.get(w.sender);
    if (uids) uids.push(w.uid);
    else bySender.set(w.sender, [w.uid]);
  }
  const queues = [...bySender.values()];
  const order: number[] = [];
  for (let round = 0; order.length < waiting.length; round++) {
    for (const uids of queues) if (round < uids.length) order.push(uids[round]);
  }
  return order;
}

/** Most envelopes asked for in one IMAP FETCH (a flood of unseen mail is read in several). */
const ENVELOPES_PER_FETCH = 500;
/** How long a mail whose handling failed waits before it is tried again. */
const RETRY_AFTER_MS = 5000;
const MAX_BACKOFF_MS = 30_000;

/** The IMAP connection settings of an imap:// or imaps:// URL. */
export function imapSettings(url: string): { host: string; port: number; secure: boolean; user: string; pass: string } {
  const u = new URL(url);
  const secure = u.protocol === 'imaps:';
  return {
    host: u.hostname,
    port: Number(u.port) || (secure ? 993 : 143),
    secure,
    user: decodeURIComponent(u.username),
    pass: decodeURIComponent(u.password),
  };
}

/** The processed folder is missing (already logged). */
class MissingFolderError extends Error {
  readonly code = 'EmailProcessedFolderMissing';
  constructor(folder: string) {
    super(`processed folder "${folder}" is missing`);
  }
}

/** One mailbox being watched. */
export class MailboxWatcher {
  private client: ImapFlow | null = null;
  private stopped = false;
  private draining: Promise<void> | null = null;
  private again = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Mails whose handling failed, and when (ms) to try them again. */
  private readonly retryAt = new Map<number, number>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** The sender of each unseen mail seen so far, by uid (on the current connection: uids are per mailbox session). */
  private readonly senders = new Map<number, string>();
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
    const tls = this.options.ca ? { ca: this.options.ca } : undefined;
    const client = new ImapFlow({
      host,
      port,
      secure,
      auth: { user, pass },
      tls,
      logger: false,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
    });
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
      await this.checkProcessedFolder(client);
    } catch (err) {
      if (!(err instanceof MissingFolderError))
        this.options.log.warn({ err: (err as Error).message, host, port }, 'IMAP: could not connect');
      this.dropClient(client);
      return;
    }
    this.attempt = 0;
    this.senders.clear();
    this.retryAt.clear();
    this.setUp(true);
    this.options.log.info({ host, port, mailbox: this.options.mailbox }, 'IMAP: watching the mailbox');
    await this.drain();
  }

  /** Closes a client that could not be used, and tries again later. */
  private dropClient(client: ImapFlow): void {
    client.close();
    if (this.client !== client) return;
    this.client = null;
    this.setUp(false);
    this.scheduleReconnect();
  }

  /**
   * Refuses to read mail when the processed folder is missing: the mails could not be moved there, and would stay in
   * the watched folder. The channel stays down, and the check is made again at each reconnect.
   */
  private async checkProcessedFolder(client: ImapFlow): Promise<void> {
    const folder = this.options.processedFolder;
    if (!folder) return;
    const folders = await client.list();
    if (folders.some((f) => f.path === folder)) return;
    this.options.log.error(
      { folder, mailbox: this.options.mailbox },
      `SKADI_EMAIL_PROCESSED_FOLDER "${folder}" does not exist on the IMAP server: create it, or clear the setting. No mail is read until it exists.`,
    );
    throw new MissingFolderError(folder);
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
      this.armRetry();
      // Wait for news in IDLE at once (imapflow would wait 15 s before entering it); a later command breaks it.
      if (this.client && !this.stopped) void this.client.idle().catch(() => undefined);
    });
    return this.draining;
  }

  /** One round: the next mail of each sender (see fairOrder); another round follows while unseen mail is left. */
  private async drainOnce(): Promise<void> {
    const client = this.client;
    if (!client || this.stopped) return;
    const waiting = await this.waitingMail(client);
    const senders = new Set(waiting.map((w) => w.sender)).size;
    const round = fairOrder(waiting).slice(0, senders);
    if (round.length < waiting.length) this.again = true;
    for (const uid of round) {
      if (this.stopped || this.client !== client) return;
      const outcome = await this.handleOne(client, uid);
      if (outcome === null) continue; // gone meanwhile (another node moved it)
      if (outcome === 'retry') {
        this.retryLater(uid);
        continue;
      }
      this.retryAt.delete(uid);
      await client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
      if (this.options.processedFolder) await client.messageMove(String(uid), this.options.processedFolder, { uid: true });
    }
  }

  /** Leaves a mail unseen and tries it again later (e.g. the database is down); the other mails go on meanwhile. */
  private retryLater(uid: number): void {
    this.retryAt.set(uid, Date.now() + RETRY_AFTER_MS);
    this.armRetry();
  }

  /**
   * Drains again when the earliest mail waiting for a retry is due. Called after every drain too: a drain that ran
   * before some retry was due leaves it waiting, and without a new timer it would wait for the next new mail.
   */
  private armRetry(): void {
    if (this.retryTimer || this.stopped || this.retryAt.size === 0) return;
    const due = Math.min(...this.retryAt.values());
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        void this.drain();
      },
      Math.max(0, due - Date.now()) + 10,
    );
    this.retryTimer.unref();
  }

  /** The unseen mails not waiting for a retry, with their senders (read once per mail from its envelope). */
  private async waitingMail(client: ImapFlow): Promise<Waiting[]> {
    const unseen = (await client.search({ seen: false }, { uid: true })) || [];
    await this.learnSenders(client, unseen);
    const now = Date.now();
    return unseen
      .filter((uid) => this.senders.has(uid) && (this.retryAt.get(uid) ?? 0) <= now)
      .map((uid) => ({ uid, sender: this.senders.get(uid)! }));
  }

  /** Reads the envelope senders of the unseen mails not known yet, and forgets the mails no longer unseen. */
  private async learnSenders(client: ImapFlow, unseen: number[]): Promise<void> {
    const live = new Set(unseen);
    for (const uid of this.senders.keys()) if (!live.has(uid)) this.senders.delete(uid);
    for (const uid of this.retryAt.keys()) if (!live.has(uid)) this.retryAt.delete(uid);
    const unknown = unseen.filter((uid) => !this.senders.has(uid));
    for (let i = 0; i < unknown.length; i += ENVELOPES_PER_FETCH) {
      const chunk = unknown.slice(i, i + ENVELOPES_PER_FETCH).join(',');
      for await (const m of client.fetch(chunk, { uid: true, envelope: true }, { uid: true })) {
        this.senders.set(m.uid, String(m.envelope?.from?.[0]?.address ?? '').toLowerCase());
      }
    }
  }

  /** Fetches one mail (only its header when it is too big) and hands it on. */
  private async handleOne(client: ImapFlow, uid: number): Promise<MailOutcome | null> {
    const meta = await client.fetchOne(String(uid), { size: true }, { uid: true });
    if (!meta) return null;
    const size = meta.size ?? 0;
    if (size > this.options.maxSizeBytes) {
      const head = await client.fetchOne(String(uid), { headers: true }, { uid: true });
      return this.handle({ uid, size, source: null, headers: (head || null)?.headers ?? null });
    }
    const full = await client.fetchOne(String(uid), { source: true }, { uid: true });
    return this.handle({ uid, size, source: (full || null)?.source ?? null, headers: null });
  }

  /** Stops watching and logs out. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    await this.draining?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    if (client) await client.logout().catch(() => client.close());
    this.setUp(false);
  }
}
