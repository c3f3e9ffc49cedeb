/**
 * Input built to make parsing slow (long runs of spaces or digits) must be refused or parsed in linear time, and
 * must not stall the node for anyone else. No speed is asserted (a loaded machine is slow at everything): each parser
 * is timed on an input and on one four times as long, and the time may grow about fourfold (linear), never the
 * sixteenfold of the quadratic parsing this guards against (which took 2–11 s on inputs of 100,000 characters). The
 * time is the CPU time of this process, which other processes on the machine do not stretch as they do the clock's.
 */
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { parseCommand } from '../../cloud/chat/parse';
import { splitAgentMessage } from '../../cloud/lifecycle/job-text';
import { parseDuration } from '../../config/duration';
import { renderText } from '../../adapters/slack/outbound';
import { stripMentions } from '../../adapters/slack/inbound';
import { dropNamespace, openServer, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

const spaces = 'a' + ' '.repeat(100_000);
const digits = '1'.repeat(40_000) + 'x';

/** Runs fn `reps` times and returns the CPU time (ms) this process spent meanwhile. */
function timed(fn: () => unknown, reps = 1): number {
  const start = process.cpuUsage();
  for (let i = 0; i < reps; i++) {
    try {
      fn();
    } catch {
      // refusing is fine; only the time matters here
    }
  }
  const spent = process.cpuUsage(start);
  return (spent.user + spent.system) / 1000;
}

/** The fastest of five timings: what the code needs, without a garbage collection or another thread's work. */
function fastest(fn: () => unknown, reps: number): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) best = Math.min(best, timed(fn, reps));
  return best;
}

/**
 * How many times longer a parser takes on an input of length 4n than on one of length n: about 4 (or less, where a
 * fixed cost counts) when it is linear, 16 when it is quadratic. Each timing repeats the call until it lasts 10 ms,
 * so that the clock's resolution does not count. The CPU time of a process counts its other threads too (a garbage
 * collection marking in the background): a measure above the bound is taken again, up to three times in all, and
 * the smallest counts. A quadratic parser is above the bound every time.
 */
function growth(make: (n: number) => string, parse: (input: string) => unknown, n: number, bound: number): number {
  const small = make(n);
  const large = make(4 * n);
  let best = Infinity;
  for (let attempt = 0; attempt < 3 && best >= bound; attempt++) {
    let reps = 1;
    while (timed(() => parse(small), reps) < 10 && reps < 1 << 16) reps *= 2; // warms the code up, too
    best = Math.min(best, fastest(() => parse(large), reps) / fastest(() => parse(small), reps));
  }
  return best;
}

describe('parsers of user text run in linear time', () => {
  it.each<[string, (n: number) => string, (input: string) => unknown, number]>([
    ['splitAgentMessage on up to 100,000 spaces', (n) => 'a' + ' '.repeat(n), splitAgentMessage, 25_000],
    ['splitAgentMessage on up to 4,000 spaces within the limit', (n) => 'a' + ' '.repeat(n) + 'b', splitAgentMessage, 1000],
    ['parseDuration on up to 40,000 digits', (n) => '1'.repeat(n) + 'x', parseDuration, 10_000],
    ['parseDuration on up to 60 digits', (n) => '1'.repeat(n) + 'x', parseDuration, 15],
    ['the chat delay command', (n) => `delay ${'1'.repeat(n)}x web1 ls`, parseCommand, 10_000],
    ['a chat job with up to 100,000 spaces', (n) => 'a' + ' '.repeat(n), parseCommand, 25_000],
    [
      'Slack output with a long run of spaces before its end',
      (n) => 'a' + ' '.repeat(n) + 'b',
      (code) => renderText({ text: 'x', code }),
      25_000,
    ],
    ['Slack mention stripping', (n) => '<@U1|' + 'a'.repeat(n), stripMentions, 25_000],
    ['Slack mention stripping with spaces', (n) => '<@U1>' + ' '.repeat(n) + 'x', stripMentions, 25_000],
  ])('%s', (_, make, parse, n) => {
    expect(growth(make, parse, n, 8)).toBeLessThan(8);
  });

  it('still parses what it should', () => {
    expect(splitAgentMessage('  web1 \t ls   -la  ')).toEqual({ agent: 'web1', message: 'ls   -la' });
    expect(() => splitAgentMessage('web1')).toThrow('The message must be "<agent> <job text>".');
    expect(() => splitAgentMessage(spaces)).toThrow('longer than 4096 characters');
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration(digits)).toBeNull();
    expect(parseCommand(`delay ${digits} web1 ls`)).toMatchObject({ kind: 'invalid' });
  });
});

describe('over HTTP', () => {
  const name = uniqueName();
  let core: Core;
  let http: HttpServer;
  let base: string;
  let userToken: string;
  let agentToken: string;

  beforeAll(async () => {
    ({ core, http, base } = await openServer(testConfig(name)));
    ({ userToken, agentToken } = await userWithAgent(core, 'ops', 'web1'));
  });
  afterAll(async () => {
    await http.close();
    await core.close();
    await dropNamespace(name);
  });

  // How fast the parsers behind these routes are is checked above, without a clock bound; here, what is answered.
  it('refuses a message of 100,000 spaces, and /healthz answers meanwhile', async () => {
    const pushes = Array.from({ length: 8 }, () => call(base, 'POST', '/job/add', { token: userToken, body: { message: spaces } }));
    const health = call(base, 'GET', '/healthz');
    const answers = await Promise.all(pushes);
    expect(answers).toHaveLength(8);
    for (const res of answers)
      expect(res).toMatchObject({
        status: 400,
        body: { error: 'BadRequest', message: expect.stringContaining('longer than 4096 characters') },
      });
    expect((await health).status).toBe(200);
  });

  it('refuses a delayed job with a 40,000-digit duration', async () => {
    const res = await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'web1 ls', duration: digits } });
    expect(res).toMatchObject({ status: 400, body: { message: expect.stringContaining('duration') } });
  });
});
