/**
 * One wechaty bot, kept connected: it reconnects by itself after the puppet service drops or restarts, which wechaty
 * alone does not reliably do (a start while the service is down never retries, and its watchdog tries only once).
 */
import QRCode from 'qrcode';
import type { Logger } from 'pino';
import { log as wechatyLog, qrcodeValueToImageUrl, ScanStatus, types, WechatyBuilder, type Message, type Wechaty } from 'wechaty';
import { AdapterError } from '../contract';
import { puppetOptions, type WechatAdapterConfig } from './config';
import type { WechatMessageFacts } from './inbound';
import type { WechatRef } from './reply-ref';

/** How often the connection is checked, and the first and longest wait between two restarts of the puppet. */
const CHECK_MS = 1000;
const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 30_000;
/** Longest wait for the puppet to stop, and for one message to be sent. */
const STOP_TIMEOUT_MS = 5000;
const SAY_TIMEOUT_MS = 20_000;

/** Errors of a dropped puppet-service connection, after which the puppet must be reset. */
const CONNECTION_LOST = /\b(1 CANCELLED|14 UNAVAILABLE)\b|CANCELLED|UNAVAILABLE/;

/** What the connection reports to the adapter. */
export interface ConnectionListener {
  /** A message, as plain facts, with the time of the connection's first login. */
  message(facts: WechatMessageFacts, loggedInAt: Date): void;
}

/** Prints a login QR code on the terminal (stderr, so that JSON logs on stdout stay parseable). */
async function printQr(value: string): Promise<void> {
  const art = await QRCode.toString(value, { type: 'terminal', small: true });
  process.stderr.write(`\nScan this QR code with the WeChat app of the bot's account:\n${art}\n`);
}

/** A logged-in (or logging-in) wechaty bot with a watchdog. */
export class WechatConnection {
  private readonly bot: Wechaty;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private wasUp = false;
  private firstLoginAt: Date | null = null;
  private retryMs = FIRST_RETRY_MS;
  private nextStartAt = 0;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly config: WechatAdapterConfig,
    private readonly log: Logger,
    private readonly listener: ConnectionListener,
  ) {
    wechatyLog.level(log.isLevelEnabled('debug') ? 'info' : 'silent');
    // Never a `name`: wechaty would write a memory-card file into the working directory.
    this.bot = WechatyBuilder.build({ puppet: config.puppet as never, puppetOptions: puppetOptions(config) });
    this.bot.on('error', (err) => this.onError(err));
    this.bot.on('scan', (qrcode, status) => void this.onScan(qrcode, status));
    this.bot.on('login', (user) => {
      this.firstLoginAt ??= new Date();
      this.log.info({ botId: user.id, name: user.name() }, 'WeChat bot logged in');
      this.check();
    });
    this.bot.on('logout', (user, reason) => {
      this.log.warn({ botId: user.id, reason }, 'WeChat bot logged out');
      this.check();
    });
    this.bot.on('message', (message) => void this.onMessage(message));
  }

  /** Starts the bot and the watchdog; resolves even when the puppet could not start yet (the watchdog retries). */
  async start(): Promise<void> {
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.starting = this.bot.start().catch((err) => this.log.warn({ err: this.clean(err) }, 'the WeChat puppet did not start; retrying'));
    await this.starting;
    this.check();
  }

  /** True while the bot is logged in and its puppet connected. */
  get up(): boolean {
    try {
      return !this.stopped && this.bot.isLoggedIn && this.bot.puppet.state.active() === true;
    } catch {
      return false; // no puppet (it could not be created)
    }
  }

  /** Posts a text in the conversation of a reply address, mentioning its person in a room. */
  async say(ref: WechatRef, text: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AdapterError('transient', `WeChat did not take the message within ${SAY_TIMEOUT_MS / 1000} s`)),
        SAY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.sayNow(ref, text), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async sayNow(ref: WechatRef, text: string): Promise<void> {
    if (!this.up) throw new AdapterError('transient', 'WeChat is not logged in right now');
    if (ref.r === 1) {
      const room = await this.bot.Room.find({ id: ref.c });
      if (!room) throw this.missing(`room ${ref.c}`);
      const mention = ref.p ? await this.bot.Contact.find({ id: ref.p }) : undefined;
      await (mention ? room.say(text, mention) : room.say(text));
      return;
    }
    const contact = await this.bot.Contact.find({ id: ref.c });
    if (!contact) throw this.missing(`contact ${ref.c}`);
    await contact.say(text);
  }

  /** Not found while connected; a passing failure when the connection went away meanwhile. */
  private missing(what: string): AdapterError {
    return this.up
      ? new AdapterError('not_found', `WeChat: ${what} not found`)
      : new AdapterError('transient', 'WeChat is not logged in right now');
  }

  /** Stops the watchdog and the bot (the account stays logged in at the puppet service). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.starting;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.bot.stop().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.check();
    // A bot whose stop timed out must not hand on messages any more; its late errors are dropped.
    (this.bot as unknown as NodeJS.EventEmitter).removeAllListeners();
    this.bot.on('error', () => undefined);
  }

  /** Restarts a stopped puppet (with backoff) and reports every change of the channel's state. */
  private check(): void {
    try {
      this.checkNow();
    } catch (err) {
      this.log.error({ err: this.clean(err) }, 'the WeChat puppet is unusable; check SKADI_WECHAT_PUPPET and its settings');
    }
  }

  private checkNow(): void {
    const up = this.up;
    if (up !== this.wasUp) {
      this.wasUp = up;
      this.log.info({ up }, up ? 'WeChat channel up' : 'WeChat channel down');
    }
    if (this.stopped) return;
    if (this.bot.puppet.state.active() === true) {
      this.retryMs = FIRST_RETRY_MS;
      return;
    }
    if (this.bot.puppet.state.inactive() !== true || Date.now() < this.nextStartAt) return;
    this.nextStartAt = Date.now() + this.retryMs;
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
    this.log.info('starting the WeChat puppet again');
    this.bot.puppet.start().catch((err) => this.log.debug({ err: this.clean(err) }, 'the WeChat puppet did not start'));
  }

  /** A dropped connection to the puppet service: reset the puppet so that the watchdog can start it again. */
  private onError(err: Error): void {
    if (this.stopped) return;
    const text = this.clean(err);
    if (CONNECTION_LOST.test(text)) {
      this.log.warn({ err: text }, 'lost the connection to the WeChat puppet; reconnecting');
      this.bot.puppet.reset().catch(() => undefined);
    } else {
      this.log.warn({ err: text }, 'WeChat puppet error');
    }
    this.check();
  }

  /** The first line of an error, without the puppet token (some puppets quote it in their errors). */
  private clean(err: unknown): string {
    const line = String((err as Error)?.message ?? err)
      .split('\n')[0]
      .slice(0, 300);
    return this.config.token ? line.split(this.config.token).join('***') : line;
  }

  private async onScan(qrcode: string, status: ScanStatus): Promise<void> {
    if (status !== ScanStatus.Waiting && status !== ScanStatus.Timeout) {
      this.log.info({ status: ScanStatus[status] }, 'WeChat login QR code');
      return;
    }
    this.log.warn(
      { url: qrcodeValueToImageUrl(qrcode) },
      'WeChat needs a login: scan the QR code (printed on the terminal, or open the URL) with the bot account',
    );
    await printQr(qrcode).catch(() => undefined);
  }

  /** Reads the facts of a message (wechaty loads contacts and rooms lazily) and hands them on. */
  private async onMessage(message: Message): Promise<void> {
    if (this.stopped) return;
    try {
      const room = message.room();
      const talker = message.talker();
      const facts: WechatMessageFacts = {
        id: message.id,
        botId: this.bot.currentUser.id,
        talkerId: talker.id,
        talkerName: talker.name(),
        roomId: room?.id ?? null,
        self: message.self(),
        isText: message.type() === types.Message.Text,
        text: message.text(),
        mentionsBot: room ? await message.mentionSelf() : false,
        mentionText: room ? await message.mentionText() : '',
        sentAt: message.date(),
      };
      this.listener.message(facts, this.firstLoginAt ?? new Date(0));
    } catch (err) {
      this.log.warn({ err: this.clean(err), messageId: message.id }, 'a WeChat message could not be read; ignored');
    }
  }
}
