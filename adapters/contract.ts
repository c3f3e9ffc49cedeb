/** The contract every chat channel implements (Slack, Teams, WeChat, e-mail); the core never imports a chat SDK. */
import type Router from '@koa/router';

/** The core remembers the keys of handled inbound messages this long: an adapter refuses older messages it cannot tell from replays. */
export const DEDUP_RETENTION_MS = 24 * 3_600_000;

/** Channels Skadi speaks. */
export type ChannelName = 'slack' | 'teams' | 'wechat' | 'email';

/** A verified, parsed inbound message, normalized for the core. */
export interface InboundMessage {
  channel: ChannelName;
  /**
   * The sender's own organization, never the one that received the message: Slack the sender's team (`user_team`, so
   * a Slack Connect guest from another company is not taken for a member of the host workspace), Teams the tenant of
   * the sender, e-mail the sender's domain, WeChat the bot id. Access policies and identity keys use it. '' when the
   * adapter cannot establish it (a Teams roster that does not answer): only an identity an admin linked may then act.
   */
  tenant: string;
  senderId: string;
  senderName: string;
  /** The command text, with the bot mention or slash-command name stripped. */
  text: string;
  /** True in a direct message / private conversation (tokens are only ever sent there). */
  isPrivate: boolean;
  /** Opaque reply address that only this adapter encodes and decodes; stored on the job. */
  replyTo: string;
  /** The platform's id of the message, for de-duplicating retries. */
  messageId: string;
  /** Further keys of the same message (e.g. a mail's DKIM signature): it counts as seen when any of its keys was. */
  dedupKeys?: string[];
  receivedAt: Date;
  /** A decision made with a button on an earlier message (its reference, as send returned it): the answer edits it. */
  decides?: string;
}

/** What the core asks an adapter to post. */
export interface OutboundMessage {
  text: string;
  /** Output shown in a code block; the adapter cuts it to what the platform accepts and says so. */
  code?: string;
  /** Edit this earlier message (a reference returned by send) instead of posting a new one. */
  replaces?: string;
  /**
   * An approval request for this job: the adapter may add Approve / Deny buttons (or the like), whose use must come
   * back as the commands `approve <job id>` / `deny <job id>`, with `decides` naming this message.
   */
  approval?: { jobId: string };
}

/** Handles a normalized inbound message; resolves when the core has dealt with it. */
export type InboundHandler = (message: InboundMessage) => Promise<void>;

/** Who may use a channel: only linked identities, every member of allowed workspaces, or anyone. */
export type AccessMode = 'closed' | 'workspace' | 'open';

/** At most `count` messages to one conversation within any `windowMs`. */
export interface RateLimit {
  count: number;
  windowMs: number;
}

/** A channel adapter. */
export interface ChannelAdapter {
  readonly name: ChannelName;
  /** Who may use this channel, and (workspace mode) which tenants; empty means every verified tenant. */
  readonly access: { mode: AccessMode; tenants: string[] };
  /** False when posted messages cannot be edited (e-mail, WeChat): intermediate statuses are then not sent, and what would have replaced a message is posted as a new one. */
  readonly canEdit?: boolean;
  /** False when the platform has no threads (WeChat): each job message then starts with the agent name and the job's short id. */
  readonly threads?: boolean;
  /** The platform's limits per conversation; without them, one message per `notify_pace`. */
  readonly rateLimits?: readonly RateLimit[];
  /** Adds the channel's webhook routes (e.g. POST /slack/events) to the gateway's HTTP server, when it has any. */
  mount?(router: Router): void;
  /** Begins receiving: verify, parse, normalize each message and hand it to the handler after acknowledging the platform. */
  start(handler: InboundHandler, services: AdapterServices): Promise<void>;
  /** Posts in the conversation/thread of replyTo (or edits `replaces`); returns a reference to the posted message, usable as a replyTo that continues its thread. */
  send(replyTo: string, message: OutboundMessage): Promise<string>;
  /** Posts in a private conversation with one person; returns a reference like send. */
  sendPrivate(tenant: string, personId: string, message: OutboundMessage): Promise<string>;
  /** A key naming the conversation of a reply address, for pacing messages per conversation. */
  conversationKey(replyTo: string): string;
  /**
   * Whether the sender of a message the access policy refuses may be told so now (e.g. once a day per sender, so that
   * a flood of mail is not answered by a flood of refusals); leave it out to always tell them.
   */
  refusalAllowed?(message: InboundMessage): Promise<boolean>;
  /** Whether the channel's own connection is up now (the metric skadi_channel_up); leave it out when there is none (webhooks). */
  up?(): boolean;
  /** Stops receiving and finishes in-flight work. */
  stop(): Promise<void>;
}

/** A lease that one gateway node holds at a time, e.g. the right to be logged in to one WeChat account. */
export interface NodeLease {
  readonly ttlMs: number;
  /** Takes the lease when nobody holds it, or keeps it when this node does; false when another node holds it. */
  acquire(): Promise<boolean>;
  /** Lets it go at once (if this node holds it), so that another node takes over without waiting for it to lapse. */
  release(): Promise<void>;
}

/** Requests passed from any gateway node to the one node that can serve them (the holder of a lease). */
export interface NodeRelay {
  /** Sends a request to the serving node and waits for its answer; rejects after timeoutMs or when the server failed. */
  call(request: unknown, timeoutMs: number): Promise<unknown>;
  /**
   * Serves requests (one at a time, in order) until the returned stop function is called. The handler gets the time
   * (ms) after which its caller has given up: work done later would be done twice, as the caller tries again.
   */
  serve(handler: (request: unknown, deadline: number) => Promise<unknown>): () => Promise<void>;
}

/** Distinct events counted per key in fixed windows, shared by every gateway node (e.g. mails per sender). */
export interface WindowCounter {
  /**
   * Counts the event `eventId` of `key` once, however often and on whichever node it is counted; resolves with the
   * distinct events of the key's current window and whether this one had been counted before.
   */
  hit(key: string, eventId: string): Promise<{ count: number; repeated: boolean }>;
}

/** What the core lends an adapter at start: coordination between the gateway nodes of one installation. */
export interface AdapterServices {
  lease(name: string, ttlMs: number): NodeLease;
  relay(name: string): NodeRelay;
  /** A counter of events per key in windows of windowMs, named so that two uses never share counts. */
  counter(name: string, windowMs: number): WindowCounter;
}

/** Stable codes of the typed platform errors. */
export type AdapterErrorCode = 'rate_limited' | 'unauthorized' | 'not_found' | 'invalid' | 'transient';

/** A platform error translated into one of a few kinds. */
export class AdapterError extends Error {
  override name = 'AdapterError';
  constructor(
    readonly code: AdapterErrorCode,
    message: string,
    /** For rate_limited: how long the platform asked to wait. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** True when trying again later may succeed. */
  get retryable(): boolean {
    return this.code === 'rate_limited' || this.code === 'transient';
  }
}
