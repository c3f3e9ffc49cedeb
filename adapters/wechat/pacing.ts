/** WeChat's pacing: accounts that burst get banned, so sends keep a pace per conversation and a cap per account. */
import type { RateLimit } from '../contract';
import { Pacer } from '../pacer';

/** Runs a send: after the conversation's previous one, at least paceMs after it, and within the account's cap. */
export type PacedSend = <T>(conversation: string, send: () => Promise<T>) => Promise<T>;

/** Sends in order per conversation, one per paceMs, and at most cap.count in any cap.windowMs over all conversations. */
export function wechatPacing(paceMs: number, cap: RateLimit): PacedSend {
  const pacer = new Pacer(paceMs);
  return (conversation, send) => pacer.run(`conversation:${conversation}`, () => pacer.run('account', send, [cap]));
}
