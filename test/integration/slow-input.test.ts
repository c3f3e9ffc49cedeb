/**
 * Input built to make parsing slow (long runs of spaces or digits) must be refused or parsed in linear time, and
 * must not stall the node for anyone else. Times are checked against generous budgets (the quadratic parsing this
 * guards against took 2–11 s on these inputs), as a benchmark would, not as a speed requirement.
 */
import { performance } from 'node:perf_hooks';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { parseCommand } from '../../cloud/commands/parse';
import { splitAgentMessage } from '../../cloud/job-text';
import { parseDuration } from '../../config/duration';
import { renderText } from '../../adapters/slack/outbound';
import { stripMentions } from '../../adapters/slack/inbound';
import { dropNamespace, openServer, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

/** Generous: a linear pass over these inputs takes about a millisecond. */
const BUDGET_MS = 500;

const spaces = 'a' + ' '.repeat(100_000);
const digits = '1'.repeat(40_000) + 'x';

/** Runs fn and returns how long it took (ms). */
function timed(fn: () => unknown): number {
  const start = performance.now();
  try {
    fn();
  } catch {
    // refusing is fine; only the time matters here
  }
  return performance.now() - start;
}

describe('parsers of user text run in linear time', () => {
  it.each([
    ['splitAgentMessage on 100,000 spaces', () => splitAgentMessage(spaces)],
    ['splitAgentMessage on 4,000 spaces within the limit', () => splitAgentMessage('a' + ' '.repeat(4000) + 'b')],
    ['parseDuration on 40,000 digits', () => parseDuration(digits)],
    ['parseDuration on 60 digits', () => parseDuration('1'.repeat(60) + 'x')],
    ['the chat delay command', () => parseCommand(`delay ${digits} web1 ls`)],
    ['a chat job with 100,000 spaces', () => parseCommand(spaces)],
    ['Slack output with a long run of spaces before its end', () => renderText({ text: 'x', code: spaces + 'b' })],
    ['Slack mention stripping', () => stripMentions('<@U1|' + 'a'.repeat(100_000))],
    ['Slack mention stripping with spaces', () => stripMentions('<@U1>' + ' '.repeat(100_000) + 'x')],
  ])('%s', (_, fn) => {
    expect(timed(fn)).toBeLessThan(BUDGET_MS);
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

  it('refuses a message of 100,000 spaces at once, and /healthz answers meanwhile', async () => {
    const start = performance.now();
    const pushes = Array.from({ length: 8 }, () => call(base, 'POST', '/job/add', { token: userToken, body: { message: spaces } }));
    const health = call(base, 'GET', '/healthz');
    const answers = await Promise.all(pushes);
    const healthAnswer = await health;
    const elapsed = performance.now() - start;
    for (const res of answers) expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: expect.stringContaining('longer than 4096 characters') } });
    expect(healthAnswer.status).toBe(200);
    expect(elapsed).toBeLessThan(BUDGET_MS * 4);
  });

  it('refuses a delayed job with a 40,000-digit duration at once', async () => {
    const start = performance.now();
    const res = await call(base, 'POST', '/agent/job/delayed', { token: agentToken, body: { message: 'web1 ls', duration: digits } });
    expect(res).toMatchObject({ status: 400, body: { message: expect.stringContaining('duration') } });
    expect(performance.now() - start).toBeLessThan(BUDGET_MS * 4);
  });
});
