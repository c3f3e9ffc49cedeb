/** The Slack adapter: Bolt receives (HTTP on the gateway's port, or Socket Mode), the Web API answers in the thread. */
import type Router from '@koa/router';
import { App, LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from 'pino';
import type { ChannelAdapter, InboundMessage, OutboundMessage } from '../contract';
import { InboundWork } from '../inbound-work';
import { slackConfigFrom, slackEnabled, type SlackAdapterConfig } from './config';
import {
  isIgnoredMessage,
  normalizeApprovalAction,
  normalizeDirectMessage,
  normalizeMention,
  normalizeSlashCommand,
  type BotIdentity,
} from './inbound';
import { renderBlocks, renderText, translateSlackError } from './outbound';
import { KoaSlackReceiver } from './receiver';
import { decodeRef, encodeRef, postedRef } from './reply-ref';

export { slackConfigFrom, slackEnabled, type SlackAdapterConfig };

/** The Slack adapter, plus the route it serves on the gateway's HTTP server. */
export interface SlackAdapter extends ChannelAdapter {
  /** Adds POST /slack/events to the gateway's router (HTTP mode). */
  mount(router: Router): void;
}

/** Bolt's logger interface on top of pino. */
function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.WARN;
  const at =
    (fn: 'debug' | 'info' | 'warn' | 'error') =>
    (...msgs: unknown[]) =>
      log[fn]({ part: 'bolt' }, msgs.map(String).join(' '));
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** Creates the Slack adapter (see slackEnabled for when to). */
export function createSlackAdapter(config: SlackAdapterConfig, log: Logger): SlackAdapter {
  const receiver = config.socketMode ? null : new KoaSlackReceiver(config.signingSecret, log);
  const clientOptions = { slackApiUrl: config.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true };
  const app = new App({
    token: config.botToken,
    // Socket Mode opens its connection through apps.connections.open on the same (configurable) API URL.
    ...(receiver
      ? { receiver }
      : { socketMode: true, appToken: config.appToken, installerOptions: { clientOptions: { slackApiUrl: config.apiUrl } } }),
    tokenVerificationEnabled: false, // Slack may be unreachable at start: never crash on it
    logger: boltLogger(log),
    clientOptions,
  });
  let bot: BotIdentity | null = config.botUserId ? { userId: config.botUserId, botId: '' } : null;
  const work = new InboundWork(log, 'Slack');
  /** Hands a message to the core after Slack has been acknowledged. */
  const deliver = (message: InboundMessage) => work.deliver(message);

  app.command(/.*/, async ({ command, ack }) => {
    await ack();
    deliver(normalizeSlashCommand(command as unknown as Record<string, any>));
  });
  app.event('app_mention', async ({ event, body }) => {
    if (isIgnoredMessage(event as Record<string, any>, bot, config.allowBots)) return;
    deliver(normalizeMention(event as Record<string, any>, body as Record<string, any>));
  });
  app.message(async ({ message, body }) => {
    const event = message as Record<string, any>;
    if (event.channel_type !== 'im' || isIgnoredMessage(event, bot, config.allowBots)) return;
    deliver(normalizeDirectMessage(event, body as Record<string, any>));
  });
  // Approve / Deny buttons of an approval request: Bolt has verified the request; the decision is a command like any other.
  app.action(/^skadi_(approve|deny)$/, async ({ ack, body }) => {
    await ack();
    const message = normalizeApprovalAction(body as unknown as Record<string, any>);
    if (message) deliver(message);
  });
  app.error(async (err) => log.error({ err }, 'Slack error'));

  /** Learns the bot's ids with auth.test, retrying in the background while Slack is unreachable. */
  const lookUpBot = async (attempt = 0): Promise<void> => {
    if (work.isStopped || bot?.botId) return;
    try {
      const auth = await app.client.auth.test();
      bot = { userId: String(auth.user_id ?? bot?.userId ?? ''), botId: String(auth.bot_id ?? '') };
      log.info({ team: auth.team_id, botUserId: bot.userId }, 'Slack adapter connected');
    } catch (err) {
      const delay = Math.min(60_000, 1000 * 2 ** attempt);
      log.warn({ err: translateSlackError(err).message, retryInMs: delay }, 'Slack auth.test failed; retrying');
      setTimeout(() => void lookUpBot(attempt + 1), delay).unref();
    }
  };

  const post = async (where: ReturnType<typeof decodeRef>, message: OutboundMessage): Promise<string> => {
    try {
      if (message.replaces) {
        const target = decodeRef(message.replaces);
        await app.client.chat.update({ channel: target.c, ts: target.m!, text: renderText(message), blocks: renderBlocks(message) ?? [] });
        return message.replaces;
      }
      const blocks = renderBlocks(message);
      const res = await app.client.chat.postMessage({
        channel: where.c,
        thread_ts: where.t,
        text: renderText(message),
        ...(blocks ? { blocks } : {}),
        unfurl_links: false,
        unfurl_media: false,
      });
      return encodeRef(postedRef({ ...where, c: String(res.channel ?? where.c) }, String(res.ts)));
    } catch (err) {
      throw translateSlackError(err);
    }
  };

  return {
    name: 'slack',
    access: { mode: config.access, tenants: config.allowedTeams },
    mount(router) {
      if (receiver) router.post('/slack/events', (ctx) => receiver.handle(ctx));
    },
    async start(handler) {
      work.start(handler);
      void lookUpBot();
      const connect = async (attempt: number): Promise<void> => {
        try {
          await app.start();
        } catch (err) {
          const delay = Math.min(60_000, 1000 * 2 ** attempt);
          log.warn({ err: (err as Error).message, retryInMs: delay }, 'Slack Socket Mode connection failed; retrying');
          setTimeout(() => void connect(attempt + 1), delay).unref();
        }
      };
      await connect(0);
    },
    send: (replyTo, message) => post(decodeRef(replyTo), message),
    async sendPrivate(_tenant, personId, message) {
      let channel: string;
      try {
        const opened = await app.client.conversations.open({ users: personId });
        channel = String(opened.channel?.id);
      } catch (err) {
        throw translateSlackError(err);
      }
      return post({ c: channel, flat: 1 }, message);
    },
    conversationKey: (replyTo) => decodeRef(replyTo).c,
    async stop() {
      await work.stop();
      await app.stop().catch(() => undefined);
    },
  };
}
