/** WeChat's pacing: accounts that burst get banned, so sends keep a pace per conversation and a cap per account. */
import type { RateLimit } from '../contract';
import { Pacer } from '../pacer';

/** Runs a send: after the conversation's previous one, at least paceMs after it went out, and within the account's cap. */
export type PacedSend = <T>(conversation: string, send: () => Promise<T>) => Promise<T>;

/** Conversations whose last send time is remembered; past this the memory starts again (an old pace is long over). */
const MAX_REMEMBERED = 10_000;

/**
 * Sends in order per conversation, one per paceMs, and at most cap.count in any cap.windowMs over all conversations.
 * A conversation's pace counts from when its last message actually went out, after any wait for the account's cap.
 */
export function wechatPacing(paceMs: number, cap: RateLimit): PacedSend {
  const pacer = new Pacer(paceMs);
  const lastSentAt = new Map<string, number>();
  const inTurn = [{ count: 1, windowMs: 0 }]; // the conversation's chain only keeps the order
  return (conversation, send) =>
    pacer.run(
      `conversation:${conversation}`,
      async () => {
        const wait = (lastSentAt.get(conversation) ?? 0) + paceMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        return pacer.run('account', () => {
          if (lastSentAt.size > MAX_REMEMBERED) lastSentAt.clear();
          lastSentAt.set(conversation, Date.now());
          return send();
        }, [cap]);
      },
      inTurn,
    );
}
