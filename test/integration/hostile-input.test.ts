/** Hostile input: property-based requests to every route must never produce a 5xx or stop the server. */
import fc from 'fast-check';
import pino from 'pino';
import Router from '@koa/router';
import type { Core } from '../../cloud/core';
import { startHttpServer, type HttpServer } from '../../agent-api/server';
import { createSlackAdapter } from '../../adapters/slack';
import crypto from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { dropNamespace, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { writeSummary } from '../chaos/summary';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap in use after a full garbage collection (MB). */
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

const name = uniqueName();
let core: Core;
let server: HttpServer;
let base: string;
let tokens: string[];
let tried = 0;
let heapBefore = 0;

beforeAll(async () => {
  core = await openCore(testConfig(name, { bodyLimitBytes: 64 * 1024, authMaxFailures: 1_000_000 }), true);
  const slack = createSlackAdapter(
    { signingSecret: 'fuzz', botToken: 'xoxb-fuzz', apiUrl: 'http://127.0.0.1:1/api/', access: 'closed', allowedTeams: [], socketMode: false, appToken: '', botUserId: 'UBOT', allowBots: false },
    pino({ level: 'silent' }),
  );
  server = await startHttpServer(core, { mount: (router: Router) => slack.mount(router) });
  base = `http://127.0.0.1:${server.port}`;
  heapBefore = heapMb();
  const made = await userWithAgent(core);
  tokens = [made.agentToken, made.userToken, '', 'garbage', 'ska_' + 'x'.repeat(32), 'Bearer', '\u00e9\u00e9\u00e9'];
});
afterAll(async () => {
  await server.close();
  await core.close();
  await dropNamespace(name);
  process.stdout.write(`hostile input: ${tried} requests tried\n`);
});

const ids = fc.oneof(
  fc.constant('01ARZ3NDEKTSV4RRFFQ69G5FAV'),
  fc.constant('..%2F..%2Fetc%2Fpasswd'),
  fc.constant('%00'),
  fc.string({ maxLength: 300 }).map(encodeURIComponent),
  fc.constant('x'.repeat(5000)),
);
const paths = fc.oneof(
  fc.constantFrom('/agent/job', '/agent/job?wait=abc', '/agent/job?wait=1', '/agent/job/add', '/agent/job/delayed', '/agent/message/info', '/agent/info', '/agent/warning'),
  fc.constantFrom('/job/add', '/message/info', '/message/warning', '/message/text', '/message/auto', '/status', '/healthz', '/readyz', '/slack/events'),
  ids.map((id) => `/agent/jobs/${id}/succeed`),
  ids.map((id) => `/agent/jobs/${id}/running`),
  ids.map((id) => `/jobs/${id}?wait=0`),
  ids.map((id) => `/jobs/${id}/cancel`),
  fc.string({ maxLength: 50 }).map((q) => `/job/add?token=${encodeURIComponent(q)}&msg=${encodeURIComponent(q)}`),
);
/** Nested JSON written as text, so the test itself never recurses. */
const deep = (depth: number): string => '{"message":'.repeat(depth) + '"web1 x"' + '}'.repeat(depth);
const bodies = fc.oneof(
  fc.json().map((j) => j),
  fc.anything().map((v) => JSON.stringify(v) ?? ''),
  fc.record({ message: fc.anything(), result: fc.anything(), duration: fc.anything(), minutes: fc.anything(), callback: fc.anything() }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 20_000 }).map((s) => JSON.stringify({ message: `web1 ${s}`, result: s })),
  fc.integer({ min: 1, max: 20_000 }).map(deep),
  fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.constant('{"message": "\\ud800"}'),
  fc.constant(''),
);

describe('hostile input', () => {
  it('never answers 5xx, whatever the method, path, token, content type and body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        paths,
        fc.constantFrom(...tokens.map((_, i) => i)),
        fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=latin1', ''),
        bodies,
        async (method, path, tokenIndex, contentType, body) => {
          tried++;
          const headers: Record<string, string> = {};
          if (tokens[tokenIndex]) headers.authorization = `Bearer ${tokens[tokenIndex]}`;
          if (contentType) headers['content-type'] = contentType;
          const res = await fetch(base + path, { method, headers, body: method === 'GET' ? undefined : Buffer.from(body, 'latin1') });
          const text = await res.text();
          if (res.status >= 500) throw new Error(`${method} ${path} -> ${res.status} ${text.slice(0, 200)}`);
          if (res.status >= 400 && res.status !== 405) expect(JSON.parse(text)).toEqual({ error: expect.any(String), message: expect.any(String) });
        },
      ),
      { numRuns: 2000 },
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 120_000);

  it('never answers 5xx to validly signed Slack requests with random commands, events and actions', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('help', 'web1 uptime', 'status', 'agents', 'cancel 01ARZ3NDEKTSV4RRFFQ69G5FAV', 'link', '<@UBOT> web1 ls'));
    const anyValue = fc.oneof(fc.anything(), text);
    const command = fc
      .record(
        { command: fc.constantFrom('/skadi', '/other', ''), text, user_id: fc.constantFrom('U1', '', 'UBOT'), team_id: fc.constantFrom('T1', ''), channel_id: fc.string({ maxLength: 12 }), response_url: fc.constantFrom('http://127.0.0.1:1/response', 'not a url', ''), trigger_id: fc.string({ maxLength: 12 }) },
        { requiredKeys: [] },
      )
      .map((fields) => ({ type: 'application/x-www-form-urlencoded', body: new URLSearchParams(fields as Record<string, string>).toString() }));
    const event = fc
      .record(
        {
          type: fc.constantFrom('event_callback', 'url_verification', 'app_rate_limited', 'other'),
          challenge: anyValue,
          team_id: anyValue,
          event_id: anyValue,
          event: fc.record({ type: fc.constantFrom('message', 'app_mention', 'other'), text: anyValue, user: anyValue, channel: anyValue, ts: anyValue, thread_ts: anyValue, bot_id: anyValue, subtype: anyValue, channel_type: anyValue }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      )
      .map((payload) => ({ type: 'application/json', body: JSON.stringify(payload) }));
    const action = fc
      .record({ type: fc.constantFrom('block_actions', 'view_submission', 'shortcut', 'other'), user: anyValue, team: anyValue, actions: anyValue, response_url: anyValue }, { requiredKeys: [] })
      .map((payload) => ({ type: 'application/x-www-form-urlencoded', body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString() }));
    const raw = fc.uint8Array({ maxLength: 500 }).map((bytes) => ({ type: 'application/json', body: Buffer.from(bytes).toString('latin1') }));
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(command, event, action, raw), async ({ type, body }) => {
          tried++;
          const timestamp = Math.floor(Date.now() / 1000);
          const signature = 'v0=' + crypto.createHmac('sha256', 'fuzz').update(`v0:${timestamp}:${body}`).digest('hex');
          const res = await fetch(`${base}/slack/events`, {
            method: 'POST',
            headers: { 'content-type': type, 'x-slack-signature': signature, 'x-slack-request-timestamp': String(timestamp) },
            body: Buffer.from(body, 'latin1'),
          });
          const answer = await res.text();
          if (res.status >= 500) throw new Error(`signed Slack request -> ${res.status} ${answer.slice(0, 200)}`);
        }),
        { numRuns: 500 },
      );
      await new Promise((r) => setTimeout(r, 500)); // background work started by those requests settles
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 120_000);

  it('answers 413 to 10 MB bodies and keeps serving', async () => {
    for (const path of ['/job/add', '/agent/job/add', `/agent/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/succeed`, '/slack/events']) {
      tried++;
      const res = await fetch(base + path, { method: path.includes('succeed') ? 'PUT' : 'POST', headers: { authorization: `Bearer ${tokens[0]}`, 'content-type': 'application/json' }, body: 'x'.repeat(10 * 1024 * 1024) });
      expect(res.status).toBe(413);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('keeps its memory: the heap after every request is about what it was before', async () => {
    const heapAfter = heapMb();
    writeSummary('hostile-input', { requests_tried: tried, responses_5xx: 0, heap_before_mb: Math.round(heapBefore), heap_after_mb: Math.round(heapAfter) });
    process.stdout.write(`hostile input: heap ${heapBefore.toFixed(1)} MB before, ${heapAfter.toFixed(1)} MB after ${tried} requests\n`);
    // Test code and compiled modules grow the heap a little; a leak of even 10 kB per request would add 20 MB.
    expect(heapAfter - heapBefore).toBeLessThan(20);
  });
});
