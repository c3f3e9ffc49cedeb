/** The inbound chat pipeline, the same for every channel: de-duplicate, check the sender, parse, run the command. */
import type { Logger } from 'pino';
import { AdapterError, type ChannelAdapter, type InboundHandler, type InboundMessage, type OutboundMessage } from '../../adapters/contract';
import { executeCommand, type CommandPort, type Conversation } from './execute';
import { parseCommand } from './parse';
import { toSkadiError } from '../errors';
import { identityKey, type IdentityService, type SenderCheck } from '../accounts/identities';
import type { IdentityRepo } from '../store/identities';

/** Collaborators of the chat pipeline. */
export interface ChatDeps {
  identities: IdentityService;
  identityRepo: IdentityRepo;
  port: CommandPort;
  log: Logger;
}

/** Attempts of one answer to a command when the platform says to try again (rate limit, a passing failure). */
const REPLY_ATTEMPTS = 4;
/** The longest wait between two attempts, whatever the platform's Retry-After. */
const REPLY_MAX_WAIT_MS = 10_000;

/**
 * Sends an answer, trying again on a retryable platform error: the acknowledgement of a command must get through
 * for its job to be queued (on a channel that cannot edit it, the job is queued anyway), and the message is already
 * marked as processed, so a redelivery would not repeat it.
 */
export async function sendWithRetries<T>(send: () => Promise<T>, baseDelayMs = 500): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof AdapterError) || !err.retryable || attempt >= REPLY_ATTEMPTS) throw err;
      const backoff = baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, Math.min(REPLY_MAX_WAIT_MS, err.retryAfterMs ?? backoff)));
    }
  }
}

/** The conversation an inbound message came from, answered through its adapter; `identityId` is the sender's row. */
function conversationOf(adapter: ChannelAdapter, message: InboundMessage, identityId: number): Conversation {
  return {
    channel: message.channel,
    replyTo: message.replyTo,
    isPrivate: message.isPrivate,
    canEdit: adapter.canEdit !== false,
    threads: adapter.threads !== false,
    identity: identityKey(message.channel, message.tenant, message.senderId),
    identityId,
    buttonMessage: message.decides,
    reply: (out: OutboundMessage) => sendWithRetries(() => adapter.send(message.replyTo, out)),
    replyPrivately: (out: OutboundMessage) => sendWithRetries(() => adapter.sendPrivate(message.tenant, message.senderId, out)),
  };
}

/** Builds the handler an adapter calls for each verified, normalized inbound message. */
export function createChatHandler(adapter: ChannelAdapter, deps: ChatDeps): InboundHandler {
  return async (message) => {
    const log = deps.log.child({
      channel: message.channel,
      messageId: message.messageId,
      tenant: message.tenant,
      sender: message.senderId,
    });
    const keys = [message.messageId, ...(message.dedupKeys ?? [])];
    if (!(await deps.identityRepo.markProcessed(message.channel, keys, new Date()))) {
      log.info('duplicate delivery ignored');
      return;
    }
    let check: SenderCheck;
    try {
      check = await deps.identities.check(message, adapter.access);
    } catch (err) {
      // Nothing was done for it yet (e.g. MySQL failed): forget it, so that the platform's redelivery or the mailbox's
      // next look is handled instead of being ignored as a duplicate.
      await deps.identityRepo
        .forgetProcessed(message.channel, keys)
        .catch((e) => log.warn({ err: e }, 'could not forget a message that failed; a redelivery will be ignored'));
      throw err;
    }
    if ('refusal' in check) {
      if (adapter.refusalAllowed && !(await adapter.refusalAllowed(message))) {
        log.info('refused an unknown sender, who was told so recently: no answer this time');
        return;
      }
      log.info('refused an unknown sender');
      await sendWithRetries(() => adapter.send(message.replyTo, { text: check.refusal }));
      return;
    }
    const convo = conversationOf(adapter, message, check.identity.id);
    const command = parseCommand(message.text);
    log.info({ userId: check.user.id, command: command.kind }, 'chat command');
    try {
      await executeCommand(command, check.user, convo, deps.port);
    } catch (err) {
      const known = toSkadiError(err);
      if (!known) log.error({ err }, 'chat command failed');
      await convo
        .reply({ text: known ? `❌ ${known.message}` : '❌ Something went wrong on the server; it has been logged.' })
        .catch((e) => log.warn({ err: e }, 'could not answer'));
    }
  };
}
