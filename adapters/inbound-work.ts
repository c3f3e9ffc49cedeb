/** Hands verified messages to the core after the platform has had its answer, and lets stop() wait for them. */
import type { Logger } from 'pino';
import type { InboundHandler, InboundMessage } from './contract';

/** The messages a webhook adapter is still handling. */
export class InboundWork {
  private handler: InboundHandler | null = null;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly log: Logger,
    private readonly channel: string,
  ) {}

  /** Starts handing messages to the core. */
  start(handler: InboundHandler): void {
    this.handler = handler;
  }

  /** Hands one message on in the background; never throws into the platform's SDK. */
  deliver(message: InboundMessage): void {
    const handler = this.handler;
    if (!handler || this.stopped) return;
    const work = handler(message)
      .catch((err) => this.log.error({ err, messageId: message.messageId }, `handling a ${this.channel} message failed`))
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
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
