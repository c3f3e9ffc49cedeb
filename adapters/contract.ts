/** The contract every chat channel implements (Slack, Teams, WeChat, e-mail); the core never imports a chat SDK. */

/** Channels Skadi speaks. */
export type ChannelName = 'slack' | 'teams' | 'wechat' | 'email';

/** A verified, parsed inbound message, normalized for the core. */
export interface InboundMessage {
  channel: ChannelName;
  /** Workspace / tenant / bot id; empty for e-mail. */
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
  receivedAt: Date;
}

/** What the core asks an adapter to post. */
export interface OutboundMessage {
  text: string;
  /** Pre-formatted output (shown in a code block where the platform has one). */
  code?: string;
  /** When set, edit this earlier message (returned by send) instead of posting a new one. */
  replaces?: string;
}

/** Handles a normalized inbound message; resolves when the core has taken it. */
export type InboundHandler = (message: InboundMessage) => Promise<void>;

/** A channel adapter. */
export interface ChannelAdapter {
  readonly name: ChannelName;
  /** Begins receiving: verify, parse, normalize each message and hand it to the handler after acknowledging the platform. */
  start(handler: InboundHandler): Promise<void>;
  /** Answers in the originating thread; returns the posted message's id (for later edits). */
  send(replyTo: string, message: OutboundMessage): Promise<string>;
  /** Stops receiving and finishes in-flight work. */
  stop(): Promise<void>;
}

/** Stable codes of the typed platform errors. */
export type AdapterErrorCode = 'rate_limited' | 'unauthorized' | 'not_found' | 'transient';

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
}
