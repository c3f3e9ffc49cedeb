/** The inbound chat pipeline, the same for every channel: de-duplicate, check the sender, parse, run the command. */
import type { Logger } from 'pino';
import type { ChannelAdapter, InboundHandler, InboundMessage } from '../adapters/contract';
import { executeCommand, type CommandPort, type Conversation } from './commands/execute';
import { parseCommand } from './commands/parse';
import { toSkadiError } from './errors';
import type { IdentityService } from './identities';
import type { IdentityRepo } from './store/identities';

/** Collaborators of the chat pipeline. */
export interface ChatDeps {
  identities: IdentityService;
  identityRepo: IdentityRepo;
  port: CommandPort;
  log: Logger;
}

/** The conversation an inbound message came from, answered through its adapter. */
function conversationOf(adapter: ChannelAdapter, message: InboundMessage): Conversation {
  return {
    channel: message.channel,
    replyTo: message.replyTo,
    isPrivate: message.isPrivate,
    reply: (out) => adapter.send(message.replyTo, out),
    replyPrivately: (out) => adapter.sendPrivate(message.tenant, message.senderId, out),
  };
}

/** Builds the handler an adapter calls for each verified, normalized inbound message. */
export function createChatHandler(adapter: ChannelAdapter, deps: ChatDeps): InboundHandler {
  return async (message) => {
    const log = deps.log.child({ channel: message.channel, messageId: message.messageId, tenant: message.tenant, sender: message.senderId });
    if (!(await deps.identityRepo.markProcessed(message.channel, message.messageId, new Date()))) {
      log.info('duplicate delivery ignored');
      return;
    }
    const convo = conversationOf(adapter, message);
    const check = await deps.identities.check(message, adapter.access);
    if ('refusal' in check) {
      log.info('refused an unknown sender');
      await convo.reply({ text: check.refusal });
      return;
    }
    const command = parseCommand(message.text);
    log.info({ userId: check.user.id, command: command.kind }, 'chat command');
    try {
      await executeCommand(command, check.user, convo, deps.port);
    } catch (err) {
      const known = toSkadiError(err);
      if (!known) log.error({ err }, 'chat command failed');
      await convo.reply({ text: known ? `❌ ${known.message}` : '❌ Something went wrong on the server; it has been logged.' }).catch((e) => log.warn({ err: e }, 'could not answer'));
    }
  };
}
