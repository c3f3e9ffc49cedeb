// The Slack receiver on its own Koa server: only requests signed with the signing secret, fresh, over the exact body
// reach Bolt. Signatures are computed here by Slack's documented recipe (v0=HMAC-SHA256 of "v0:<ts>:<body>").
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import pino from 'pino';
import type { App, ReceiverEvent } from '@slack/bolt';
import { bodyReader } from '../../agent-api/body';
import { errorEdge } from '../../agent-api/errors';
import { KoaSlackReceiver } from '../../adapters/slack/receiver';

const SECRET = 'slack-signing-secret-for-tests';

function sign(body: string, ts: number, secret = SECRET): string {
  return `v0=${crypto.createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
}

const now = () => Math.floor(Date.now() / 1000);

describe('the Slack receiver', () => {
  let server: http.Server;
  let base: string;
  /** Events Bolt was given, and what the fake listener does with each. */
  let events: ReceiverEvent[];
  let listener: (event: ReceiverEvent) => Promise<void>;

  beforeAll(async () => {
    const receiver = new KoaSlackReceiver(SECRET, pino({ level: 'silent' }));
    receiver.init({
      processEvent: async (event: ReceiverEvent) => {
        events.push(event);
        await listener(event);
      },
    } as unknown as App);
    const app = new Koa();
    app.use(errorEdge);
    app.use(bodyReader(64 * 1024));
    app.use((ctx) => receiver.handle(ctx));
    server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    events = [];
    listener = async (event) => event.ack();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function post(body: string, headers: Record<string, string>, type = 'application/json') {
    const res = await fetch(`${base}/slack/events`, { method: 'POST', body, headers: { 'content-type': type, ...headers } });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text
    }
    return { status: res.status, body: parsed };
  }
  const signed = (body: string, ts = now(), secret = SECRET) => ({
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': sign(body, ts, secret),
  });

  const event = JSON.stringify({
    type: 'event_callback',
    event_id: 'Ev1',
    event: { type: 'app_mention', user: 'U1', text: 'hi', channel: 'C1', ts: '1.1' },
  });
  const refused = { status: 401, body: { error: 'Unauthorized', message: 'The Slack signature is missing, wrong or stale.' } };

  it('hands a correctly signed event to Bolt and answers with what the listener acknowledged', async () => {
    listener = async (e) => e.ack({ text: 'ok' });
    expect(await post(event, signed(event))).toEqual({ status: 200, body: { text: 'ok' } });
    expect(events).toHaveLength(1);
    expect(events[0].body).toEqual(JSON.parse(event));
    expect(events[0].retryNum).toBeUndefined();
  });

  it('answers with the first acknowledgement only, and an empty body for an empty one', async () => {
    listener = async (e) => {
      await e.ack({ text: 'first' });
      await e.ack({ text: 'second' });
    };
    expect(await post(event, signed(event))).toEqual({ status: 200, body: { text: 'first' } });
    listener = async (e) => e.ack(null as unknown as undefined);
    expect(await post(event, signed(event))).toEqual({ status: 200, body: '' });
  });

  it('refuses a wrong secret, a changed body, a changed timestamp, and missing headers, before Bolt sees them', async () => {
    expect(await post(event, signed(event, now(), 'another-secret'))).toEqual(refused);
    expect(await post(event.replace('hi', 'ho'), signed(event))).toEqual(refused);
    const ts = now();
    expect(await post(event, { 'x-slack-request-timestamp': String(ts - 1), 'x-slack-signature': sign(event, ts) })).toEqual(refused);
    expect(await post(event, { 'x-slack-signature': sign(event, now()) })).toEqual(refused);
    expect(await post(event, { 'x-slack-request-timestamp': String(now()) })).toEqual(refused);
    expect(await post(event, {})).toEqual(refused);
    expect(events).toEqual([]);
  });

  it('refuses a correctly signed request older than five minutes (a replay)', async () => {
    expect(await post(event, signed(event, now() - 6 * 60))).toEqual(refused);
    expect(events).toEqual([]);
    // Within the window it counts.
    expect((await post(event, signed(event, now() - 60))).status).toBe(200);
    expect(events).toHaveLength(1);
  });

  it('answers the URL check with its challenge and the SSL check with an empty 200, only when signed', async () => {
    const check = JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 'x' });
    expect(await post(check, signed(check))).toEqual({ status: 200, body: { challenge: 'c-123' } });
    expect(await post(check, {})).toEqual(refused);
    const ssl = 'ssl_check=1&token=x';
    expect(await post(ssl, signed(ssl), 'application/x-www-form-urlencoded')).toEqual({ status: 200, body: '' });
    expect(events).toEqual([]);
  });

  it('reads a signed form payload (interactive messages) and passes on Slack retries', async () => {
    const payload = { type: 'block_actions', user: { id: 'U1' }, actions: [{ action_id: 'approve' }] };
    const form = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const res = await post(
      form,
      { ...signed(form), 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_timeout' },
      'application/x-www-form-urlencoded',
    );
    expect(res).toEqual({ status: 200, body: '' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ body: payload, retryNum: 2, retryReason: 'http_timeout' });
  });

  it('answers 400 to a signed payload that is not JSON, and 200 at once when no listener acknowledges', async () => {
    const bad = 'payload=%7Bnot-json';
    expect(await post(bad, signed(bad), 'application/x-www-form-urlencoded')).toEqual({
      status: 400,
      body: { error: 'BadRequest', message: 'The Slack payload could not be parsed.' },
    });
    expect(events).toEqual([]);
    listener = async () => {
      throw new Error('listener failed');
    };
    expect(await post(event, signed(event))).toEqual({ status: 200, body: '' });
    expect(events).toHaveLength(1);
  });
});
