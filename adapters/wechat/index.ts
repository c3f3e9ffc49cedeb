/**
 * The WeChat adapter: a wechaty bot on the configured puppet. Direct messages and room messages that mention the bot
 * are commands; answers are paced (accounts that burst get banned). With several gateway nodes, the one holding the
 * account's lease is logged in; the others stand by, and relay what they have to send to it.
 */
import type { Logger } from 'pino';
import { AdapterError, type AdapterErrorCode, type AdapterServices, type ChannelAdapter, type NodeLease, type NodeRelay, type OutboundMessage } from '../contract';
import { InboundWork } from '../inbound-work';
import { accountLeaseName, wechatConfigFrom, wechatConfigProblem, wechatEnabled, type WechatAdapterConfig } from './config';
import { WechatConnection } from './connection';
import { normalizeWechatMessage } from './inbound';
import { wechatPacing } from './pacing';
import { renderText, translateWechatError } from './outbound';
import { decodeRef, encodeRef, type WechatRef } from './reply-ref';

export { wechatConfigFrom, wechatConfigProblem, wechatEnabled, type WechatAdapterConfig };

/** How long a standby node waits for the logged-in node to send what it relayed (pacing may keep it waiting). */
const RELAY_TIMEOUT_MS = 120_000;

/** A send relayed from a standby node, and its outcome. */
type RelayedSend = { ref: WechatRef; message: OutboundMessage };
type RelayedOutcome = { ok: true } | { error: { code: AdapterErrorCode; message: string; retryAfterMs?: number } };

/** Creates the WeChat adapter (see wechatEnabled for when to, and wechatConfigProblem for settings that cannot work). */
export function createWechatAdapter(config: WechatAdapterConfig, log: Logger): ChannelAdapter {
  const work = new InboundWork(log, 'WeChat');
  const paced = wechatPacing(config.paceMs, { count: config.maxPerMinute, windowMs: 60_000 });
  let connection: WechatConnection | null = null;
  let relay: NodeRelay | null = null;
  let lease: NodeLease | null = null;
  let stopRelay: (() => Promise<void>) | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;
  let leaseLoop: Promise<void> = Promise.resolve();

  /** Sends from this node, which is logged in: in order per conversation, within both limits. */
  const sendHere = (ref: WechatRef, message: OutboundMessage): Promise<void> =>
    paced(ref.c, async () => {
      if (!connection) throw new AdapterError('transient', 'WeChat is not logged in on this node');
      try {
        await connection.say(ref, renderText(message));
      } catch (err) {
        throw translateWechatError(err);
      }
    });

  /** Sends here when this node is the logged-in one, else through the node that is. */
  const deliver = async (ref: WechatRef, message: OutboundMessage): Promise<string> => {
    if (connection || !relay) {
      await sendHere(ref, message);
      return encodeRef(ref);
    }
    let outcome: RelayedOutcome;
    try {
      outcome = (await relay.call({ ref, message } satisfies RelayedSend, RELAY_TIMEOUT_MS)) as RelayedOutcome;
    } catch (err) {
      throw new AdapterError('transient', `no gateway node is logged in to WeChat: ${(err as Error).message}`);
    }
    if ('error' in outcome) throw new AdapterError(outcome.error.code, outcome.error.message, outcome.error.retryAfterMs);
    log.debug({ conversation: ref.c }, 'sent through the gateway node logged in to WeChat');
    return encodeRef(ref);
  };

  /** Serves what standby nodes relay. */
  const serveRelayed = async (request: unknown): Promise<RelayedOutcome> => {
    const { ref, message } = request as RelayedSend;
    try {
      await sendHere(ref, message);
      return { ok: true };
    } catch (err) {
      const e = translateWechatError(err);
      return { error: { code: e.code, message: e.message, retryAfterMs: e.retryAfterMs } };
    }
  };

  /** Logs in here (this node took the lease). */
  const takeOver = async () => {
    log.info('this node holds the WeChat account; logging in');
    connection = new WechatConnection(config, log, {
      message: (facts, loggedInAt) => {
        const verdict = normalizeWechatMessage(facts, loggedInAt);
        if ('ignored' in verdict) return void log.debug({ messageId: facts.id, reason: verdict.ignored }, 'WeChat message ignored');
        work.deliver(verdict.message, facts.roomId ?? facts.talkerId); // in order per conversation
      },
      change: () => undefined,
    });
    if (relay) stopRelay = relay.serve(serveRelayed);
    await connection.start();
  };

  /** Logs out here (stopping, or the lease went to another node). */
  const standDown = async () => {
    const current = connection;
    connection = null;
    await stopRelay?.();
    stopRelay = null;
    await current?.stop();
  };

  /** Holds the account's lease while running: takes it when free, renews it, and stands down when it is lost. */
  const holdLease = async (account: NodeLease) => {
    let renewedAt = 0;
    let standingBy = false;
    while (!stopped) {
      const holds = await account.acquire().catch((err) => (log.warn({ err: String(err) }, 'the WeChat lease could not be renewed (Redis)'), null));
      if (stopped) break;
      if (holds) {
        renewedAt = Date.now();
        standingBy = false;
        if (!connection) await takeOver();
      } else if (connection && (holds === false || Date.now() - renewedAt > account.ttlMs)) {
        log.warn('another gateway node may now hold the WeChat account; logging out here');
        await standDown();
      } else if (holds === false && !standingBy) {
        standingBy = true;
        log.info('another gateway node is logged in to the WeChat account; standing by');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(200, account.ttlMs / 3));
        wake = () => (clearTimeout(timer), resolve());
      });
    }
  };

  const send = (replyTo: string, message: OutboundMessage): Promise<string> => {
    if (message.replaces) return Promise.resolve(message.replaces); // no edits: the core sends what matters as new messages
    return deliver(decodeRef(replyTo), message);
  };

  return {
    name: 'wechat',
    access: { mode: config.access, tenants: [] },
    canEdit: false,
    threads: false,
    async start(handler, services: AdapterServices) {
      work.start(handler);
      if (!config.tls && config.puppet === 'wechaty-puppet-service') {
        log.warn('SKADI_WECHAT_PUPPET_TLS=false: the puppet service connection is not encrypted. Use it only on a trusted network.');
      }
      relay = services.relay(accountLeaseName(config));
      lease = services.lease(accountLeaseName(config), config.leaseMs);
      leaseLoop = holdLease(lease).catch((err) => log.error({ err }, 'the WeChat lease loop stopped'));
    },
    send,
    /** Only ever a direct message to the contact (tokens must not reach a room). */
    sendPrivate: (tenant, personId, message) => deliver({ b: tenant, c: personId, r: 0 }, message),
    conversationKey: (replyTo) => decodeRef(replyTo).c,
    up: () => connection?.up ?? false,
    async stop() {
      stopped = true;
      wake?.();
      await leaseLoop;
      await work.stop();
      const held = connection !== null;
      await standDown();
      if (held) {
        await lease?.release().catch((err) => log.warn({ err: String(err) }, 'the WeChat lease could not be released; another node takes over when it lapses'));
        log.info('stopped WeChat on this node; another node can take over now');
      }
    },
  };
}
