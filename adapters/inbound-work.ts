/** Hands verified messages to the core after the platform has had its answer, and lets stop() wait for them. */
import type { Logger } from 'pino';
import type { InboundHandler, InboundMessage } from './contract';

/** The messages a webhook adapter is still handling. */
export class InboundWork {
  private handler: InboundHandler | null = null;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** The last message of each ordered conversation, which the next one waits for. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    private readonly log: Logger,
    private readonly channel: string,
  ) {}

  /** Starts handing messages to the core. */
  start(handler: InboundHandler): void {
    this.handler = handler;
  }

  /**
   * Hands one message on in the background; never throws into the platform's SDK. Messages with the same orderKey
   * (a conversation) are handled one after the other, so that their answers come in the order they were sent. A
   * message still being completed (a promise, which must not reject) is handed on once it is.
   */
  deliver(message: InboundMessage | Promise<InboundMessage>, orderKey?: string): void {
    const handler = this.handler;
    if (!handler || this.stopped) return;
    const previous = (orderKey && this.tails.get(orderKey)) || Promise.resolve();
    const work = previous
      .then(async () => {
        const complete = await message;
        await handler(complete).catch((err) =>
          this.log.error({ err, messageId: complete.messageId }, `handling a ${this.channel} message failed`),
        );
      })
      .catch((err) => this.log.error({ err }, `reading a ${this.channel} message failed`))
      .finally(() => {
        this.inFlight.delete(work);
        if (orderKey && this.tails.get(orderKey) === work) this.tails.delete(orderKey);
      });
    this.inFlight.add(work);
    if (orderKey) this.tails.set(orderKey, work);
  }

  /** Takes no more messages and waits (up to timeoutMs) for those being handled. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.inFlight]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** True once stop() was called. */
  get isStopped(): boolean {
    return this.stopped;
  }
}
