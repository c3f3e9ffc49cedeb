/**
 * The notifier holds a bounded number of events, in total and per conversation, on real Redis streams and MariaDB:
 * while a platform holds deliveries back it stops reading, the rest waits in the stream, and nothing is lost.
 */
import type { Core } from '../../cloud/core';
import type { Notifier, NotifierLoad } from '../../cloud/notifier/notifier';
import { dropNamespace, eventually, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { createHeldAdapter, type HeldAdapter } from '../helpers/held-adapter';

const CAP = 20;
const PER_CONVERSATION = 5;
const EVENTS = 5 * CAP;
/** Short, so that holding events longer than it takes a moment. */
const RECLAIM_IDLE_MS = 600;
/** Conversation of event i: three of every five go to one flooded conversation, the others to two quiet ones. */
const CONVERSATIONS = ['conv-a', 'conv-a', 'conv-a', 'conv-b', 'conv-c'];
const conversationOf = (i: number) => CONVERSATIONS[i % CONVERSATIONS.length];

const name = uniqueName();
let core: Core;
let adapter: HeldAdapter;
let running: Notifier[] = [];

beforeAll(async () => {
  core = await openCore(
    testConfig(name, {
      notifyMaxInFlight: CAP,
      notifyMaxInFlightPerConversation: PER_CONVERSATION,
      notifyPaceMs: 1,
      notifyReclaimIdleMs: RECLAIM_IDLE_MS,
    }),
  );
});
afterEach(async () => {
  adapter?.release();
  await Promise.all(running.map((n) => n.stop()));
  running = [];
});
afterAll(async () => {
  await core.close();
  await dropNamespace(name);
});

/** Pending (read, not acknowledged) and lag (not read yet) of the notifier group on the message stream, from Redis. */
async function groupCounts(group: string): Promise<{ pending: number; lag: number }> {
  const groups = (await core.redis.xinfo('GROUPS', core.keys.messageStream)) as (string | number)[][];
  const info = groups
    .map((fields) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[v, fields[i + 1]]]))))
    .find((g) => g.name === group);
  return { pending: Number(info?.pending), lag: Number(info?.lag) };
}

/** Starts a notifier that the test stops afterwards. */
async function startNotifier(through: HeldAdapter): Promise<Notifier> {
  const notifier = await core.startNotifier([through]);
  running.push(notifier);
  return notifier;
}

/** The longest time any entry of the message stream has been pending without being claimed (Redis' idle time). */
async function longestIdleMs(group: string): Promise<number> {
  const entries = (await core.redis.xpending(core.keys.messageStream, group, '-', '+', 1000)) as [string, string, number, number][];
  return Math.max(...entries.map(([, , idle]) => idle));
}

/** Users notified in each conversation, by conversation. */
async function usersByConversation(conversations: Iterable<string> = new Set(CONVERSATIONS)): Promise<Map<string, number>> {
  const users = new Map<string, number>();
  for (const conversation of conversations) {
    const { user } = await userWithAgent(core, `u-${conversation}`, `a-${conversation}`);
    await core.identityRepo.setNotifyTarget(user.id, 'teams', conversation);
    users.set(conversation, user.id);
  }
  return users;
}

describe('notifier bounds', () => {
  it('stops reading at its cap while sends are held, keeps each conversation within its cap, then delivers everything once, in order', async () => {
    const users = await usersByConversation();
    for (let i = 0; i < EVENTS; i++) await core.events.message({ kind: 'text', user_id: users.get(conversationOf(i))!, message: `m${i}` });
    expect(await core.redis.xlen(core.keys.messageStream)).toBe(EVENTS);

    adapter = createHeldAdapter();
    const samples: NotifierLoad[] = [];
    const started = await startNotifier(adapter);
    adapter.onSend = () => samples.push(started.load());

    // The first CAP events are read: conv-a gets 12 of them, 5 under way and 7 waiting their turn; conv-b and conv-c 4 each.
    const firstRead = Array.from({ length: CAP }, (_, i) => conversationOf(i));
    const heldBack = firstRead.filter((c) => c === 'conv-a').length - PER_CONVERSATION;
    const settled = () => started.load().held + started.load().underWay === started.load().inFlight; // each read event reached its conversation
    await eventually(() => started.load().inFlight >= CAP && settled() && adapter.waiting === 3, 10_000, 'the notifier to fill its cap');
    expect(started.load()).toMatchObject({ inFlight: CAP, held: heldBack, underWay: CAP - heldBack });
    expect(await groupCounts(started.group)).toEqual({ pending: CAP, lag: EVENTS - CAP }); // the rest stayed unread in Redis
    expect(started.load()).toMatchObject({ inFlightHighWater: CAP, conversationHighWater: PER_CONVERSATION });

    adapter.release();
    await eventually(
      async () => adapter.sent.length >= EVENTS && (await groupCounts(started.group)).pending === 0,
      15_000,
      'every event to be delivered',
    );
    expect(await groupCounts(started.group)).toEqual({ pending: 0, lag: 0 });
    expect(adapter.sent).toHaveLength(EVENTS); // once each
    for (const conversation of new Set(CONVERSATIONS)) {
      const expected = Array.from({ length: EVENTS }, (_, i) => i)
        .filter((i) => conversationOf(i) === conversation)
        .map((i) => `m${i}`);
      expect(adapter.sent.filter((s) => s.ref === conversation).map((s) => s.text)).toEqual(expected);
    }
    expect(Math.max(...samples.map((s) => s.inFlight))).toBeLessThanOrEqual(CAP);
    expect(started.load()).toMatchObject({
      inFlight: 0,
      held: 0,
      underWay: 0,
      inFlightHighWater: CAP,
      conversationHighWater: PER_CONVERSATION,
    });
    expect(await core.redis.xlen(`${core.keys.messageStream}:dead`)).toBe(0);
  });

  it('keeps the events it holds for longer than the reclaim idle time: another notifier does not take them', async () => {
    const userId = (await usersByConversation(['conv-k'])).get('conv-k')!;
    const count = 5;
    adapter = createHeldAdapter();
    const holder = await startNotifier(adapter);
    for (let i = 0; i < count; i++) await core.events.message({ kind: 'text', user_id: userId, message: `k${i}` });
    await eventually(() => holder.load().inFlight === count, 10_000, 'the holder to read every event');
    const other = createHeldAdapter();
    other.release();
    await startNotifier(other); // reclaims what has been idle for RECLAIM_IDLE_MS, every half of it
    const readAt = Date.now();
    // Held for twice the reclaim idle time, yet Redis counts every entry as idle for less: the holder claimed them again.
    await eventually(
      async () => Date.now() - readAt > 2 * RECLAIM_IDLE_MS && (await longestIdleMs(holder.group)) < RECLAIM_IDLE_MS,
      10_000,
      'the entries to stay claimed',
    );
    expect(other.sent).toEqual([]);
    adapter.release();
    await eventually(async () => adapter.sent.length >= count && (await groupCounts(holder.group)).pending === 0, 10_000, 'the deliveries');
    expect(adapter.sent.map((s) => s.text)).toEqual(Array.from({ length: count }, (_, i) => `k${i}`));
    expect(other.sent).toEqual([]);
  });
});
