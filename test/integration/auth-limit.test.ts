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

/** GET /agent/job from a chosen loopback address. */
function poll(token: string, from: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: '/agent/job', localAddress: from, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  core = await createCore({ config: testConfig(name, { authMaxFailures: 5, authWindowMs: 3000, host: '0.0.0.0' }), log: pino({ level: 'trace' }, sink) });
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
  it('answers 429 to an address after repeated bad tokens, while other addresses keep working', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await poll(`ska_guess${i}xxxxxxxxxxxxxxxxxxxxxxxxxx`, '127.0.0.3')).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(6)).toEqual([429, 429]);
    const limited = await poll(agentToken, '127.0.0.3');
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    expect((await poll(agentToken, '127.0.0.4')).status).toBe(204); // another address is not slowed
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
    expect(valid.every((v) => v.status === 204)).toBe(true);
    expect([...new Set(floodStatuses)].sort()).toEqual([401, 429]);
    // Checks from one address run a few at a time: the flood cost a handful of lookups, not a thousand.
    expect(floodStatuses.filter((s) => s === 401).length).toBeLessThan(50);
    const times = valid.map((v) => v.ms).sort((a, b) => a - b);
    process.stdout.write(
      `brute force: 1000 bad tokens from one address, ${floodStatuses.filter((s) => s === 401).length} of them looked up; ` +
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
