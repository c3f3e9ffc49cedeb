/**
 * The WeChat adapter: a wechaty bot on the configured puppet. Direct messages and room messages that mention the bot
 * are commands; answers are paced (accounts that burst get banned). With several gateway nodes, the one holding the
 * account's lease is logged in; the others stand by, and relay what they have to send to it.
 */
import type { Logger } from 'pino';
import {
  AdapterError,
  type AdapterErrorCode,
  type AdapterServices,
  type ChannelAdapter,
  type NodeLease,
  type NodeRelay,
  type OutboundMessage,
} from '../contract';
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

/** Shortest lease: a renewal every third of it must fit between two checks. */
const MIN_LEASE_MS = 3000;

/** Creates the WeChat adapter (see wechatEnabled for when to, and wechatConfigProblem for settings that cannot work). */
export function createWechatAdapter(config: WechatAdapterConfig, log: Logger): ChannelAdapter {
  const work = new InboundWork(log, 'WeChat');
  const paced = wechatPacing(config.paceMs, { count: config.maxPerMinute, windowMs: 60_000 });
  const leaseMs = Math.max(MIN_LEASE_MS, config.leaseMs);
  let connection: WechatConnection | null = null;
  let relay: NodeRelay | null = null;
  let lease: NodeLease | null = null;
  let stopRelay: (() => Promise<void>) | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;
  let leaseLoop: Promise<void> = Promise.resolve();
  /** Logging in or out in the background, so that the lease keeps being renewed meanwhile. */
  let changing: Promise<void> = Promise.resolve();

  /**
   * Sends from this node, which is logged in: in order per conversation, within both limits. A send whose relaying
   * caller has given up by its turn (deadline) is not made: the caller tries again, and it would arrive twice.
   */
  const sendHere = (ref: WechatRef, message: OutboundMessage, deadline = Infinity): Promise<void> => {
    if (!connection) return Promise.reject(new AdapterError('transient', 'WeChat is not logged in on this node'));
    return paced(ref.c, async () => {
      if (!connection) throw new AdapterError('transient', 'WeChat is not logged in on this node');
      if (Date.now() > deadline) throw new AdapterError('transient', 'the relaying node gave up waiting; it sends again');
      log.debug({ conversation: ref.c }, 'WeChat send starts'); // when the pacing let it go
      try {
        await connection.say(ref, renderText(message));
      } catch (err) {
        throw translateWechatError(err);
      }
    });
  };

  /** Sends here when this node is the logged-in one, else through the node that is. */
  const deliver = async (ref: WechatRef, message: OutboundMessage): Promise<string> => {
    if (connection || !relay) {
      await sendHere(ref, message);
      return encodeRef(ref);
    }
    let outcome: RelayedOutcome | { relayError: string };
    try {
      outcome = (await relay.call({ ref, message } satisfies RelayedSend, RELAY_TIMEOUT_MS)) as RelayedOutcome | { relayError: string };
    } catch (err) {
      throw new AdapterError('transient', `no gateway node is logged in to WeChat: ${(err as Error).message}`);
    }
    if ('error' in outcome) throw new AdapterError(outcome.error.code, outcome.error.message, outcome.error.retryAfterMs);
    if (!('ok' in outcome)) throw new AdapterError('transient', `the logged-in node failed to send: ${outcome.relayError}`);
    log.debug({ conversation: ref.c }, 'sent through the gateway node logged in to WeChat');
    return encodeRef(ref);
  };

  /** Serves what standby nodes relay. */
  const serveRelayed = async (request: unknown, deadline: number): Promise<RelayedOutcome> => {
    const { ref, message } = request as RelayedSend;
    try {
      await sendHere(ref, message, deadline);
      return { ok: true };
    } catch (err) {
      const e = translateWechatError(err);
      return { error: { code: e.code, message: e.message, retryAfterMs: e.retryAfterMs } };
    }
  };

  /** Logs in here (this node took the lease). */
  const takeOver = async () => {
    if (connection || stopped) return; // already in (a renewal asked twice while logging in), or stopping
    log.info('this node holds the WeChat account; logging in');
    const current = new WechatConnection(config, log, {
      message: (facts, loggedInAt) => {
        const verdict = normalizeWechatMessage(facts, loggedInAt);
        if ('ignored' in verdict) return void log.debug({ messageId: facts.id, reason: verdict.ignored }, 'WeChat message ignored');
        work.deliver(verdict.message, facts.roomId ?? facts.talkerId); // in order per conversation
      },
    });
    connection = current;
    if (relay) stopRelay = relay.serve(serveRelayed);
    await current.start();
  };

  /** Logs out here (stopping, or the lease may be another node's now). */
  const standDown = async () => {
    const current = connection;
    connection = null;
    await stopRelay?.();
    stopRelay = null;
    await current?.stop();
  };

  /** One change at a time, in the background; a failure is logged and the loop goes on. */
  const change = (what: () => Promise<void>) => {
    changing = changing
      .then(what)
      .catch((err) => log.error({ err: String((err as Error)?.message ?? err) }, 'WeChat log-in or log-out failed'));
  };

  /** Holds the account's lease while running: takes it when free, renews it, and logs out when it may have lapsed. */
  const holdLease = async (account: NodeLease) => {
    let validUntil = 0;
    let standingBy = false;
    while (!stopped) {
      const asked = Date.now();
      const holds = await account
        .acquire()
        .catch((err) => (log.warn({ err: String(err) }, 'the WeChat lease could not be renewed (Redis)'), null));
      if (stopped) break;
      if (holds) {
        validUntil = asked + account.ttlMs; // counted from before the request: the lease cannot outlive it
        standingBy = false;
        if (!connection) change(takeOver);
      } else if (holds === false && !standingBy) {
        standingBy = true;
        log.info('another gateway node is logged in to the WeChat account; standing by');
      }
      if (connection && (holds === false || Date.now() > validUntil - account.ttlMs / 3)) {
        log.warn("the WeChat lease may be another node's now; logging out here");
        change(standDown);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, account.ttlMs / 3);
        wake = () => (clearTimeout(timer), resolve());
        if (stopped) wake();
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
      lease = services.lease(accountLeaseName(config), leaseMs);
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
      await changing;
      await work.stop();
      const held = connection !== null;
      await standDown();
      // Released whether or not it was used: the script removes it only when this node holds it.
      await lease
        ?.release()
        .catch((err) => log.warn({ err: String(err) }, 'the WeChat lease could not be released; another node takes over when it lapses'));
      if (held) log.info('stopped WeChat on this node; another node can take over now');
    },
  };
}
