/** A Bolt receiver served by the gateway's own Koa server (`POST /slack/events`), so one port serves everything. */
import type { App, Receiver, ReceiverEvent } from '@slack/bolt';
import { verifySlackRequest } from '@slack/bolt';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { parseSlackBody } from './inbound';

/** Slack wants an answer within 3 s; answer 200 a little before if a listener still runs without acknowledging. */
const ACK_DEADLINE_MS = 2500;

/** Hands verified Slack requests to a Bolt App; Bolt's own function checks the signature. */
export class KoaSlackReceiver implements Receiver {
  private app: App | null = null;

  constructor(
    private readonly signingSecret: string,
    private readonly log: Logger,
  ) {}

  /** Called by Bolt with the App. */
  init(app: App): void {
    this.app = app;
  }

  /** Nothing to start: the gateway's HTTP server is already listening. */
  async start(): Promise<void> {}

  /** Nothing to stop. */
  async stop(): Promise<void> {}

  /** Koa handler of POST /slack/events. */
  async handle(ctx: Context): Promise<void> {
    const raw = ctx.request.rawBody;
    try {
      verifySlackRequest({
        signingSecret: this.signingSecret,
        body: raw,
        headers: {
          'x-slack-signature': ctx.get('x-slack-signature'),
          'x-slack-request-timestamp': Number(ctx.get('x-slack-request-timestamp')),
        },
      });
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'Slack request with a bad signature refused');
      ctx.status = 401;
      ctx.body = { error: 'Unauthorized', message: 'The Slack signature is missing, wrong or stale.' };
      return;
    }
    let body: Record<string, any>;
    try {
      body = parseSlackBody(raw, ctx.get('content-type'));
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'BadRequest', message: 'The Slack payload could not be parsed.' };
      return;
    }
    if (body.type === 'url_verification') {
      ctx.body = { challenge: body.challenge };
      return;
    }
    if (body.ssl_check) {
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    ctx.body = await this.dispatch(body, ctx);
    ctx.status = 200;
  }

  /** Runs Bolt's listeners; resolves with what the listener acknowledged (or nothing at the deadline). */
  private async dispatch(body: Record<string, any>, ctx: Context): Promise<unknown> {
    if (!this.app) throw new Error('the Slack receiver was not initialised by Bolt');
    let acked = false;
    let answer!: (response: unknown) => void;
    const response = new Promise<unknown>((resolve) => (answer = resolve));
    const retryNum = Number(ctx.get('x-slack-retry-num'));
    const event: ReceiverEvent = {
      body,
      retryNum: Number.isFinite(retryNum) && retryNum > 0 ? retryNum : undefined,
      retryReason: ctx.get('x-slack-retry-reason') || undefined,
      customProperties: {},
      ack: async (reply?: unknown) => {
        if (acked) return;
        acked = true;
        answer(reply);
      },
    };
    this.app
      .processEvent(event)
      .catch((err) => this.log.error({ err }, 'Slack listener failed'))
      // Nothing acknowledged once Bolt is done (no listener matched, or it failed): answer now, not at the deadline.
      .finally(() => void event.ack());
    let timer: NodeJS.Timeout | undefined;
    const reply = await Promise.race([response, new Promise((resolve) => (timer = setTimeout(() => resolve(undefined), ACK_DEADLINE_MS)))]);
    clearTimeout(timer);
    return reply === undefined || reply === null ? '' : reply;
  }
}
