/** The notifier's counting in memory: slots handed to reading loops in turn, and deliveries per conversation in order. */
import { ConversationGate } from '../../cloud/notifier/conversation-gate';
import { InFlightSlots } from '../../cloud/notifier/in-flight-slots';

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('in-flight slots', () => {
  it('never hands out more than the cap, and hands a freed slot to the loop that waited first', async () => {
    let used = 0;
    const slots = new InFlightSlots(10, () => used);
    expect(await slots.take(50)).toBe(10);
    const order: string[] = [];
    const first = slots.take(50).then((n) => (order.push('first'), n));
    const second = slots.take(50).then((n) => (order.push('second'), n));
    used = 10; // the read filled every slot
    slots.give(10);
    expect(slots.free).toBe(0);
    used = 9; // one delivery finished
    slots.wake();
    expect(await first).toBe(1);
    expect(order).toEqual(['first']);
    expect(slots.free).toBe(0);
    used = 8;
    slots.wake();
    expect(await second).toBe(1);
    expect(order).toEqual(['first', 'second']);
  });

  it('lets a loop that comes later wait behind one that is waiting, and ends every wait when closed', async () => {
    let used = 10;
    const slots = new InFlightSlots(10, () => used);
    const waiting = slots.take(5);
    used = 9;
    expect(slots.free).toBe(1);
    const later = slots.take(5); // a slot is free, but an earlier loop waits for it
    slots.wake();
    expect(await waiting).toBe(1);
    slots.close();
    expect(await later).toBe(0);
    expect(await slots.take(5)).toBe(0);
  });
});

describe('conversation gate', () => {
  it('runs at most cap per conversation, the others in the order they came, without holding other conversations back', async () => {
    const gate = new ConversationGate(2);
    const started: string[] = [];
    const ends = new Map<string, () => void>();
    const run = (key: string, name: string) =>
      gate.run(key, () => {
        started.push(name);
        const d = deferred();
        ends.set(name, d.resolve);
        return d.promise;
      });
    const runs = ['a1', 'a2', 'a3', 'a4'].map((n) => run('a', n));
    runs.push(run('b', 'b1'));
    expect(started).toEqual(['a1', 'a2', 'b1']);
    expect({ held: gate.held, underWay: gate.underWay }).toEqual({ held: 2, underWay: 3 });
    ends.get('a2')!();
    await runs[1];
    expect(started).toEqual(['a1', 'a2', 'b1', 'a3']);
    for (const name of ['a1', 'a3', 'b1']) ends.get(name)!();
    await Promise.all([runs[0], runs[2], runs[4]]);
    expect(started).toEqual(['a1', 'a2', 'b1', 'a3', 'a4']);
    ends.get('a4')!();
    await Promise.all(runs);
    expect({ held: gate.held, underWay: gate.underWay, highWater: gate.highWater }).toEqual({ held: 0, underWay: 0, highWater: 2 });
  });

  it('passes a failure on to its caller and starts the next run', async () => {
    const gate = new ConversationGate(1);
    const failing = gate.run('a', () => Promise.reject(new Error('refused')));
    const next = gate.run('a', async () => 'sent');
    await expect(failing).rejects.toThrow('refused');
    await expect(next).resolves.toBe('sent');
  });
});
