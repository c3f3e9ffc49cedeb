/** Brute force: repeated bad tokens from one address get 429, other addresses are not slowed, tokens stay out of logs and MySQL. */
import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createCore, type Core } from '../../cloud/core';
import { startHttpServer, type HttpServer } from '../../agent-api/server';
import { dropNamespace, testConfig, uniqueName, userWithAgent } from '../helpers/env';

const name = uniqueName();
const logLines: string[] = [];
let core: Core;
let server: HttpServer;
let agentToken: string;
let userToken: string;

/** GET /agent/job from a chosen loopback address (optionally through a proxy that names the client). */
function poll(
  token: string,
  from: string,
  forwardedFor?: string,
  port = server.port,
): Promise<{ status: number; retryAfter?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
    const req = http.request({ host: '127.0.0.1', port, path: '/agent/job', localAddress: from, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  core = await createCore({
    config: testConfig(name, { authMaxFailures: 5, authWindowMs: 3000, host: '0.0.0.0' }),
    log: pino({ level: 'trace' }, sink),
  });
  await core.startBackground();
  server = await startHttpServer(core);
  ({ agentToken, userToken } = await userWithAgent(core));
});
afterAll(async () => {
  await server.close();
  await core.close();
  await dropNamespace(name);
});

describe('failed authentication limit', () => {
  it('answers 429 to bad tokens from an address after repeated failures, never to a valid token, and forgets after the window', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await poll(`ska_guess${i}xxxxxxxxxxxxxxxxxxxxxxxxxx`, '127.0.0.3')).status);
    // auth_max_failures (5) failures are answered 401, and so is the one past it, which blocks the address: every later
    // attempt gets 429. Every status is checked, the boundary included.
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    const limited = await poll('ska_guess-again-xxxxxxxxxxxxxxxxxxxxxxx', '127.0.0.3');
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(limited.body)).toEqual({
      error: 'LimitExceeded',
      message: expect.stringMatching(/^Too many failed authentications from this address; retry in \d+ s\.$/),
    });
    // Valid clients sharing the address (a NAT, an untrusted proxy) are not locked out.
    expect((await poll(agentToken, '127.0.0.3')).status).toBe(204);
    expect((await poll(agentToken, '127.0.0.4')).status).toBe(204); // another address is not slowed
    // After the window (3 s here) the address is back to ordinary 401s.
    await new Promise((r) => setTimeout(r, Number(limited.retryAfter) * 1000 + 200));
    expect((await poll('ska_guess-later-xxxxxxxxxxxxxxxxxxxxxxx', '127.0.0.3')).status).toBe(401);
  });

  it('counts failures per client behind a trusted proxy, and ignores X-Forwarded-For from anyone else', async () => {
    const behindProxy = await startHttpServer({ ...core, config: { ...core.config, trustProxy: ['127.0.0.8/32'] } });
    try {
      const bad = (i: number) => `ska_proxied${i}xxxxxxxxxxxxxxxxxxxxxxxxx`;
      for (let i = 0; i < 7; i++) await poll(bad(i), '127.0.0.8', '198.51.100.7', behindProxy.port); // one client, through the proxy
      expect((await poll(bad(9), '127.0.0.8', '198.51.100.7', behindProxy.port)).status).toBe(429);
      expect((await poll(bad(9), '127.0.0.8', '198.51.100.8', behindProxy.port)).status).toBe(401); // another client of the proxy
      expect((await poll(bad(9), '127.0.0.8', '203.0.113.1, 198.51.100.7', behindProxy.port)).status).toBe(429); // a forged earlier hop does not help
      // Not from the trusted proxy: the header is ignored, and the socket address is the client.
      expect((await poll(bad(9), '127.0.0.9', '198.51.100.7', behindProxy.port)).status).toBe(401);
    } finally {
      await behindProxy.close();
    }
  });

  it('answers every poll of a valid agent while another address floods bad tokens', async () => {
    const flood = Array.from({ length: 1000 }, (_, i) => poll(`ska_flood${i}xxxxxxxxxxxxxxxxxxxxxxxxxx`, '127.0.0.6'));
    const valid: { status: number; ms: number }[] = [];
    for (let i = 0; i < 50; i++) {
      const started = process.hrtime.bigint();
      const { status } = await poll(agentToken, '127.0.0.7');
      valid.push({ status, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    }
    const floodStatuses = (await Promise.all(flood)).map((r) => r.status);
    expect(valid.map((v) => v.status)).toEqual(Array.from({ length: 50 }, () => 204));
    expect([...new Set(floodStatuses)].sort()).toEqual([401, 429]);
    // Checks from one address run a few at a time, and one at a time once it is blocked.
    expect(floodStatuses.filter((s) => s === 401).length).toBeLessThan(50);
    const times = valid.map((v) => v.ms).sort((a, b) => a - b);
    process.stdout.write(
      `brute force: 1000 bad tokens from one address, ${floodStatuses.filter((s) => s === 401).length} answered 401 before it was blocked, the rest 429; ` +
        `a valid agent's 50 polls all answered, median ${times[25].toFixed(1)} ms, p90 ${times[45].toFixed(1)} ms (the flood's 1000 connections are opened by this same process)\n`,
    );
  });

  it('keeps tokens out of the logs and stores only their hashes', async () => {
    await poll('ska_this-token-must-not-be-logged-000000', '127.0.0.5');
    const logs = logLines.join('');
    for (const token of [agentToken, userToken, 'ska_this-token-must-not-be-logged-000000']) expect(logs).not.toContain(token);
    const [agents] = await core.db.pool.query('SELECT token_hash FROM agents');
    const [users] = await core.db.pool.query('SELECT token_hash FROM users');
    const stored = JSON.stringify([agents, users]);
    expect(stored).not.toContain(agentToken);
    expect(stored).not.toContain(userToken);
    expect(stored).toMatch(/[0-9a-f]{64}/);
  });
});
