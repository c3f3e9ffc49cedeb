/** A real gateway allowing 127.0.0.1/32: callbacks are delivered, signed with the user's callback secret, and answers are never read. */
import fs from 'node:fs';
import {
  callbackSecretOf as callbackSecret,
  legacyKeyOf as legacyKey,
  signatureOf as signature,
  SIGNATURE_HEADER,
  LEGACY_SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from '../helpers/callback-recipe';
import { startCallbackSink, type CallbackSink, type SinkMode } from '../helpers/callback-sink';
import { eventually } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { call } from '../helpers/http';
import { skadi } from '../helpers/process';

let gw: Gateway;
/** The user token of `ops` (a test below rotates it). */
let userToken: string;
const sinks: CallbackSink[] = [];

/**
 * The callback timeout of the main gateway: far longer than any exchange on a loaded machine, so that a hang-up well
 * before it shows the gateway did not wait for the answer's end (the timeout itself is tested on a gateway of its own).
 */
const LONG_TIMEOUT_MS = 60_000;

beforeAll(async () => {
  gw = await startGateway({
    SKADI_CALLBACK_ALLOW: '127.0.0.1/32',
    SKADI_CALLBACK_TIMEOUT: `${LONG_TIMEOUT_MS}ms`,
    SKADI_NOTIFY_MAX_ATTEMPTS: '1',
  });
  userToken = gw.userToken;
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  for (const sink of sinks) await sink.close();
});

async function sink(mode?: SinkMode): Promise<CallbackSink> {
  const started = await startCallbackSink(mode);
  sinks.push(started);
  return started;
}

/** Pushes a job for the (never polling, so offline) agent: it expires at once and its one event goes to the callback. */
async function pushTo(callback: string): Promise<string> {
  const res = await call(gw.base, 'POST', '/job/add', { token: userToken, body: { message: 'web1 deploy', callback } });
  expect(res.status).toBe(201);
  return res.body.id;
}

/** Resident memory of the gateway process, in bytes. */
function gatewayRss(): number {
  const status = fs.readFileSync(`/proc/${gw.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** True once the job's event is acknowledged by the notifier (delivered or dead-lettered). */
async function settled(): Promise<boolean> {
  const [pending] = (await gw.core.redis.xpending(gw.core.keys.jobStatusStream, 'notifier')) as [number];
  return pending === 0;
}

/** The dead-letter errors of the job status stream. */
async function deadErrors(on: Gateway = gw): Promise<string[]> {
  const entries = await on.core.redis.xrange(`${on.core.keys.jobStatusStream}:dead`, '-', '+');
  return entries.map(([, fields]) => fields[fields.indexOf('error') + 1]);
}

/** Runs `skadi <args>` on the gateway's installation; returns stdout, or throws with stderr. */
function cli(args: string[], env: Record<string, string> = gw.env): string {
  const run = skadi(args, env);
  if (run.status !== 0) throw new Error(`skadi ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run.stdout;
}

describe('callback signing', () => {
  it('signs with the secret `skadi user callback-secret` prints, and `skadi user token` rotates it', async () => {
    const receiver = await sink();
    const secret = cli(['user', 'callback-secret', 'ops']).trim();
    expect(secret).toMatch(/^whsec_[\w-]{43}$/);
    await pushTo(receiver.url);
    await eventually(() => receiver.requests.length === 1, 10_000, 'the callback');
    const verify = (key: string, header: string) => {
      const r = receiver.requests.at(-1)!;
      return r.headers[header] === signature(key, String(r.headers[TIMESTAMP_HEADER]), r.body);
    };
    // A changed timestamp does not verify.
    const first = receiver.requests[0];
    expect(first.headers[SIGNATURE_HEADER]).not.toBe(signature(secret, String(Number(first.headers[TIMESTAMP_HEADER]) + 1), first.body));
    // The secret is the derivation of docs/notifications.md from SKADI_SECRET and the salt in MySQL, and another SKADI_SECRET gives another.
    const owner = await gw.core.users.byName('ops');
    expect(secret).toBe(callbackSecret(gw.env.SKADI_SECRET, owner.id, owner.callbackSalt!));
    expect(callbackSecret(`${gw.env.SKADI_SECRET}x`, owner.id, owner.callbackSalt!)).not.toBe(secret);
    const elsewhere = skadi(['user', 'callback-secret', 'ops'], { ...gw.env, SKADI_SECRET: `${gw.env.SKADI_SECRET.slice(1)}0` });
    expect(elsewhere.status).toBe(0);
    expect(elsewhere.stdout.trim()).not.toBe(secret);
    expect(elsewhere.stdout.trim()).toBe(callbackSecret(`${gw.env.SKADI_SECRET.slice(1)}0`, owner.id, owner.callbackSalt!));
    expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ status: 'expired', agent: 'web1', message: 'deploy' });
    expect(verify(secret, SIGNATURE_HEADER)).toBe(true);
    expect(verify(legacyKey(userToken), SIGNATURE_HEADER)).toBe(false); // what the database holds cannot sign
    expect(verify(legacyKey(userToken), LEGACY_SIGNATURE_HEADER)).toBe(true);

    const rotated = JSON.parse(cli(['user', 'token', 'ops', '--json']));
    userToken = rotated.token;
    expect(rotated.callback_secret).toMatch(/^whsec_/);
    expect(rotated.callback_secret).not.toBe(secret);
    expect(cli(['user', 'callback-secret', 'ops']).trim()).toBe(rotated.callback_secret);
    await pushTo(receiver.url);
    await eventually(() => receiver.requests.length === 2, 10_000, 'the second callback');
    expect(verify(rotated.callback_secret, SIGNATURE_HEADER)).toBe(true);
    expect(verify(secret, SIGNATURE_HEADER)).toBe(false);
    expect(verify(legacyKey(rotated.token), LEGACY_SIGNATURE_HEADER)).toBe(true);
  });

  it('`skadi user callback-secret` explains itself, and needs SKADI_SECRET', () => {
    expect(cli(['user', 'callback-secret', '--help'])).toMatch(
      /Usage: skadi user callback-secret \[options\] <name>[\s\S]*X-Skadi-Signature[\s\S]*SKADI_SECRET/,
    );
    const without = skadi(['user', 'callback-secret', 'ops'], { ...gw.env, SKADI_SECRET: '' });
    expect(without.status).toBe(2);
    expect(without.stderr).toContain('setting secret (SKADI_SECRET) is not set');
    const added = JSON.parse(cli(['user', 'add', 'ci', '--json']));
    expect(cli(['user', 'callback-secret', 'ci']).trim()).toBe(added.callback_secret);
  });
});

describe("the callback body: ours and the original Skadi's job fields", () => {
  /** Go's time.Time JSON of a MySQL datetime(3), written out here on its own: UTC, fraction without trailing zeros. */
  const asGo = (at: Date) => {
    const [whole, fraction] = at.toISOString().slice(0, -1).split('.');
    const digits = fraction.replace(/0+$/, '');
    return `${whole}${digits ? `.${digits}` : ''}Z`;
  };
  const OURS = ['type', 'id', 'agent', 'message', 'status', 'result', 'reason', 'source', 'at'];
  const ORIGINAL = ['id', 'user_id', 'agent_id', 'message', 'source', 'callback', 'status', 'result', 'created_at'];
  const TIMES = ['sent_at', 'canceled_at', 'expired_at', 'succeeded_at', 'failed_at'];

  it('every status change carries both, with times in RFC 3339 to the millisecond and unset times left out', async () => {
    const receiver = await sink();
    const agent = await gw.startAgent(() => 'ran it', 'hooked');
    try {
      const res = await call(gw.base, 'POST', '/job/add', { token: userToken, body: { message: 'hooked date', callback: receiver.url } });
      expect(res.status).toBe(201);
      const bodies = () => receiver.requests.map((r) => JSON.parse(r.body));
      await eventually(() => bodies().some((b) => b.status === 'succeeded'), 15_000, 'the succeeded callback');
      const job = await gw.core.jobs.get(res.body.id, null);
      const byStatus = Object.fromEntries(bodies().map((b) => [b.status, b]));
      expect(Object.keys(byStatus).sort()).toEqual(['queuing', 'sent', 'succeeded']);
      for (const body of bodies()) {
        for (const key of [...OURS, ...ORIGINAL]) expect(body).toHaveProperty(key);
        expect(body).toMatchObject({
          id: job.id,
          user_id: String(job.userId),
          agent_id: String(agent.id),
          message: 'date',
          source: 'api',
          callback: receiver.url,
          created_at: asGo(job.createdAt),
        });
        for (const key of TIMES.filter((k) => k in body)) expect(body[key]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?Z$/);
      }
      const times = (body: Record<string, unknown>) => TIMES.filter((k) => k in body);
      expect(times(byStatus.queuing)).toEqual([]);
      expect(times(byStatus.sent)).toEqual(['sent_at']);
      expect(times(byStatus.succeeded)).toEqual(['sent_at', 'succeeded_at']);
      expect(byStatus.sent.sent_at).toBe(asGo(job.sentAt!));
      expect(byStatus.succeeded).toMatchObject({ result: 'ran it', succeeded_at: asGo(job.finishedAt!) });
    } finally {
      await agent.stop();
    }
  });

  it('a job expired at once has expired_at and no sent_at', async () => {
    const receiver = await sink();
    const id = await pushTo(receiver.url);
    await eventually(() => receiver.requests.length === 1, 10_000, 'the callback');
    const body = JSON.parse(receiver.requests[0].body);
    const job = await gw.core.jobs.get(id, null);
    expect(TIMES.filter((k) => k in body)).toEqual(['expired_at']);
    expect(body).toMatchObject({
      status: 'expired',
      reason: 'agent offline',
      expired_at: asGo(job.finishedAt!),
      created_at: asGo(job.createdAt),
    });
  });
});

describe('callback answers are never read whole', () => {
  it('an endless body is not read: the exchange ends at the status line and memory stays flat', async () => {
    const receiver = await sink({ kind: 'endless', chunkBytes: 64 * 1024, maxBytes: 512 * 1024 * 1024 });
    const before = gatewayRss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, gatewayRss())), 10);
    const started = Date.now();
    try {
      await pushTo(receiver.url);
      await eventually(() => receiver.closedAt.length === 1, LONG_TIMEOUT_MS / 2, 'the gateway to hang up');
      await eventually(settled, 10_000, 'the event to be acknowledged');
    } finally {
      clearInterval(sampler);
    }
    expect(receiver.closedAt[0] - started).toBeLessThan(LONG_TIMEOUT_MS / 2); // not held until the timeout
    expect(receiver.bytesSent).toBeLessThan(32 * 1024 * 1024); // socket buffers at most, never the 512 MB on offer
    expect(peak - before).toBeLessThan(48 * 1024 * 1024);
    expect(await deadErrors()).toEqual([]); // a 200 is a delivery, whatever the body
  }, 45_000);

  it('a body that drips forever does not hold the delivery', async () => {
    const receiver = await sink({ kind: 'drip' });
    const started = Date.now();
    await pushTo(receiver.url);
    await eventually(() => receiver.closedAt.length === 1, LONG_TIMEOUT_MS / 2, 'the gateway to hang up');
    expect(receiver.closedAt[0] - started).toBeLessThan(LONG_TIMEOUT_MS / 2); // not held until the timeout
    await eventually(settled, 10_000, 'the event to be acknowledged');
    expect(await deadErrors()).toEqual([]);
  }, 45_000);

  it('a receiver that never answers is left after SKADI_CALLBACK_TIMEOUT', async () => {
    const receiver = await sink({ kind: 'silent' });
    const short = await startGateway({
      SKADI_CALLBACK_ALLOW: '127.0.0.1/32',
      SKADI_CALLBACK_TIMEOUT: '2s',
      SKADI_NOTIFY_MAX_ATTEMPTS: '1',
    });
    try {
      const started = Date.now();
      const res = await call(short.base, 'POST', '/job/add', {
        token: short.userToken,
        body: { message: 'web1 deploy', callback: receiver.url },
      });
      expect(res.status).toBe(201);
      // Left once the timeout is over, never before; how long after depends on the machine (the test's own timeout
      // is the bound).
      const errors = await eventually(async () => (await deadErrors(short)).length > 0 && deadErrors(short), 30_000, 'the dead letter');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect(errors).toEqual([`callback 127.0.0.1:${receiver.port} unreachable: no answer within 2000 ms`]);
      expect(receiver.requests).toHaveLength(1);
    } finally {
      await short.stop();
    }
  }, 60_000);
});
