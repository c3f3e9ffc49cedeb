/** A chat adapter whose sends wait until the test releases them, as a platform that holds deliveries back would. */
import type { ChannelAdapter, ChannelName, OutboundMessage } from '../../adapters/contract';

/** One finished send: the conversation (reply address) and the text. */
export interface HeldSend {
  ref: string;
  text: string;
}

/** The adapter, with what it was asked to send and the control over its held sends. */
export interface HeldAdapter extends ChannelAdapter {
  /** Sends that finished, in the order they finished. */
  readonly sent: HeldSend[];
  /** Sends begun and not answered yet. */
  readonly waiting: number;
  /** Called at the start of every send (e.g. to sample the notifier's counts). */
  onSend: () => void;
  /** Answers every held send now, and every later one at once. */
  release(): void;
}

/** An adapter (named like a real channel, so routes to it resolve) whose conversation key is the reply address itself. */
export function createHeldAdapter(name: ChannelName = 'teams'): HeldAdapter {
  const held: (() => void)[] = [];
  let released = false;
  const sent: HeldSend[] = [];
  const send = async (ref: string, message: OutboundMessage): Promise<string> => {
    adapter.onSend();
    if (!released) await new Promise<void>((resolve) => held.push(resolve));
    sent.push({ ref, text: message.text });
    return `${ref}/${sent.length}`;
  };
  const adapter: HeldAdapter = {
    name,
    access: { mode: 'closed', tenants: [] },
    sent,
    get waiting() {
      return held.length;
    },
    onSend: () => undefined,
    release() {
      released = true;
      for (const resolve of held.splice(0)) resolve();
    },
    start: async () => undefined,
    send,
    sendPrivate: (tenant, personId, message) => send(`private:${tenant}:${personId}`, message),
    conversationKey: (ref) => ref,
    stop: async () => undefined,
  };
  return adapter;
}
