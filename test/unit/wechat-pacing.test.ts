/** WeChat pacing: a pace per conversation, in order, and a cap over the whole account. */
import { wechatPacing } from '../../adapters/wechat/pacing';

/** Runs sends and records when each started. */
async function run(sends: { conversation: string; name: string }[], paced: ReturnType<typeof wechatPacing>) {
  const started: { name: string; at: number }[] = [];
  const t0 = Date.now();
  await Promise.all(sends.map((s) => paced(s.conversation, async () => void started.push({ name: s.name, at: Date.now() - t0 }))));
  return started;
}

describe('wechatPacing', () => {
  it('sends to one conversation in order, at least the pace apart', async () => {
    const sends = Array.from({ length: 5 }, (_, i) => ({ conversation: 'alice', name: `m${i}` }));
    const started = await run(sends, wechatPacing(60, { count: 100, windowMs: 60_000 }));
    expect(started.map((s) => s.name)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    for (let i = 1; i < started.length; i++) expect(started[i].at - started[i - 1].at).toBeGreaterThanOrEqual(55);
  });

  it('does not hold one conversation back for another beyond the account cap', async () => {
    // a2 waits a's pace after a1; b and c, asked for after a2, owe a nothing and go out before it. (Had one pace held
    // every conversation, they would follow a2.) The order holds however slow the machine, short of a 2 s stall.
    const sends = [
      { conversation: 'a', name: 'a1' },
      { conversation: 'a', name: 'a2' },
      { conversation: 'b', name: 'b1' },
      { conversation: 'c', name: 'c1' },
    ];
    const started = await run(sends, wechatPacing(2000, { count: 100, windowMs: 60_000 }));
    expect(started.map((s) => s.name)).toEqual(['a1', 'b1', 'c1', 'a2']);
    expect(started[3].at - started[0].at).toBeGreaterThanOrEqual(1990);
  });

  it('keeps the whole account within its cap: the fourth send in a window of three waits for the window', async () => {
    const sends = ['a', 'b', 'c', 'd', 'e'].map((c) => ({ conversation: c, name: c }));
    const started = await run(sends, wechatPacing(10, { count: 3, windowMs: 1500 }));
    expect(started.map((s) => s.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    const [a, b, c, d, e] = started.map((s) => s.at);
    expect(d - a).toBeGreaterThanOrEqual(1490);
    expect(e - b).toBeGreaterThanOrEqual(1490);
    // The first three do not wait: each of their gaps is shorter than the fourth's wait for the window (a cap that
    // spread sends evenly over the window would make all gaps alike).
    expect(Math.max(b - a, c - b)).toBeLessThan(d - c);
  });

  it('never drops a send whose predecessor failed', async () => {
    const paced = wechatPacing(10, { count: 100, windowMs: 60_000 });
    const first = paced('a', async () => {
      throw new Error('puppet down');
    });
    const second = paced('a', async () => 'sent');
    await expect(first).rejects.toThrow('puppet down');
    await expect(second).resolves.toBe('sent');
  });
});

describe('wechatPacing under the account cap', () => {
  it("counts a conversation's pace from when its message went out, not from when it began to wait for the cap", async () => {
    // Cap: 2 in 500 ms. a1 and b1 fill the window; a2 waits for the cap, then a3 must still keep the pace after a2.
    const paced = wechatPacing(150, { count: 2, windowMs: 500 });
    const sent: { name: string; at: number }[] = [];
    const t0 = Date.now();
    const send = (conversation: string, name: string) => paced(conversation, async () => void sent.push({ name, at: Date.now() - t0 }));
    await Promise.all([send('a', 'a1'), send('b', 'b1'), send('a', 'a2'), send('a', 'a3')]);
    const at = Object.fromEntries(sent.map((s) => [s.name, s.at]));
    expect(at.a2).toBeGreaterThanOrEqual(490);
    expect(at.a3 - at.a2).toBeGreaterThanOrEqual(145);
    expect(sent.filter((s) => s.name.startsWith('a')).map((s) => s.name)).toEqual(['a1', 'a2', 'a3']);
  });
});
