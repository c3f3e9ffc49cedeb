/** Callbacks never reach internal addresses: refused at push over HTTP, checked again and pinned at delivery, redirects not followed. */
import pino from 'pino';
import { createCore, type Core } from '../../cloud/core';
import type { HostResolver } from '../../cloud/notifier/callback-guard';
import { legacyKeyOf, LEGACY_SIGNATURE_HEADER, signedWith, SIGNATURE_HEADER } from '../helpers/callback-recipe';
import { startCallbackSink, type CallbackSink } from '../helpers/callback-sink';
import { dropNamespace, eventually, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { call } from '../helpers/http';

/** Each internal spelling of a callback host, and the kind of address the refusal names. */
const INTERNAL_FORMS: [string, string][] = [
  ['127.0.0.1', 'a loopback address'],
  ['localhost', 'a loopback address'],
  ['localhost.', 'a loopback address'],
  ['app.localhost', 'a loopback address'],
  ['[::ffff:127.0.0.1]', 'a loopback address'],
  ['2130706433', 'a loopback address'],
  ['0x7f.1', 'a loopback address'],
  ['127.1', 'a loopback address'],
  ['[::1]', 'a loopback address'],
  ['169.254.169.254', 'a link-local address'],
  ['[64:ff9b::a9fe:a9fe]', 'a link-local address'],
  ['10.0.0.1', 'a private address'],
  ['192.168.1.1', 'a private address'],
  ['172.16.0.1', 'a private address'],
  ['[::ffff:10.0.0.1]', 'a private address'],
  ['[fd00::1]', 'a unique-local address'],
  ['[fe80::1]', 'a link-local address'],
  ['100.64.0.1', 'a shared (CGNAT) address'],
  ['0.0.0.0', 'an unspecified address'],
  ['0', 'an unspecified address'],
  ['[::]', 'an unspecified address'],
  ['255.255.255.255', 'a broadcast address'],
  ['224.0.0.1', 'a multicast address'],
];

describe('push: callbacks to internal addresses get 400 (a real gateway, default settings)', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway();
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it.each(INTERNAL_FORMS)('POST /job/add refuses http://%s', async (host, phrase) => {
    const callback = `http://${host}:9/x?token=hidden`;
    const res = await call(gw.base, 'POST', '/job/add', { token: gw.userToken, body: { message: 'web1 uptime', callback } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('BadRequest');
    expect(res.body.message).toContain(`points to ${phrase}`);
    expect(res.body.message).toContain('set SKADI_CALLBACK_ALLOW to allow internal receivers');
    expect(res.body.message).not.toContain('hidden'); // the query (which may hold credentials) is not echoed
  });

  it('the message names the URL as the brief example shows', async () => {
    const res = await call(gw.base, 'POST', '/job/add', {
      token: gw.userToken,
      body: { message: 'web1 uptime', callback: 'http://127.0.0.1:9/x' },
    });
    expect(res.body.message).toBe(
      'callback http://127.0.0.1:9/x points to a loopback address; set SKADI_CALLBACK_ALLOW to allow internal receivers',
    );
  });

  it('the GET form, /agent/job/add and /agent/job/delayed refuse them too, and no job is stored', async () => {
    const query = new URLSearchParams({ token: gw.userToken, msg: 'web1 uptime', callback: 'http://[::ffff:127.0.0.1]:9/x' });
    const viaGet = await call(gw.base, 'GET', `/job/add?${query}`);
    const viaAgent = await call(gw.base, 'POST', '/agent/job/add', {
      token: gw.agentToken,
      body: { message: 'web1 uptime', callback: 'http://169.254.169.254/latest/meta-data' },
    });
    const delayed = await call(gw.base, 'POST', '/agent/job/delayed', {
      token: gw.agentToken,
      body: { message: 'web1 uptime', duration: '1h', callback: 'http://2130706433/' },
    });
    for (const res of [viaGet, viaAgent, delayed]) expect([res.status, res.body.error]).toEqual([400, 'BadRequest']);
    expect(viaAgent.body.message).toContain('a link-local address');
    const [[jobs]] = (await gw.core.db.pool.query('SELECT (SELECT COUNT(*) FROM jobs) + (SELECT COUNT(*) FROM delayed_jobs) AS n')) as any;
    expect(Number(jobs.n)).toBe(0);
  });

  it('refuses schemes other than http and https', async () => {
    for (const callback of ['file:///etc/passwd', 'gopher://example.com/', 'ftp://example.com/x']) {
      const res = await call(gw.base, 'POST', '/job/add', { token: gw.userToken, body: { message: 'web1 uptime', callback } });
      expect(res.status).toBe(400);
    }
  });

  it('accepts a name that does not resolve yet (delivery checks it again)', async () => {
    const res = await call(gw.base, 'POST', '/job/add', {
      token: gw.userToken,
      body: { message: 'web1 uptime', callback: 'https://receiver.invalid/hook' },
    });
    expect(res.status).toBe(201);
  });
});

describe('delivery: resolved again, checked, pinned (a core with an injected resolver)', () => {
  const name = uniqueName();
  const lookups: string[] = [];
  /** name -> the answers of its successive lookups (the last one repeats). */
  const answers = new Map<string, string[][]>();
  const resolveHost: HostResolver = async (host) => {
    lookups.push(host);
    const script = answers.get(host);
    if (!script) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    const addresses = script.length > 1 ? script.shift()! : script[0];
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  let core: Core;
  const sinks: CallbackSink[] = [];
  const sink = async (...args: Parameters<typeof startCallbackSink>) => {
    const started = await startCallbackSink(...args);
    sinks.push(started);
    return started;
  };

  beforeAll(async () => {
    const config = testConfig(name, {
      callbackAllow: ['127.0.0.2/32'],
      notifyMaxAttempts: 3,
      notifyRetryBaseMs: 50,
      callbackTimeoutMs: 2000,
    });
    core = await createCore({ config, log: pino({ level: process.env.SKADI_TEST_LOG ?? 'silent' }), resolveHost });
    await core.startBackground();
    await core.startNotifier([]);
  });
  afterAll(async () => {
    await core.close();
    for (const s of sinks) await s.close();
    await dropNamespace(name);
  });

  let seq = 0;
  /** A new user with an agent that never polls: a push expires at once, so its one event is the callback. */
  const owner = () => userWithAgent(core, `u${++seq}`, `a${seq}`);

  /** The dead letter of a job's event, once there. */
  async function deadLetter(jobId: string): Promise<Record<string, string>> {
    return eventually(
      async () => {
        for (const [, fields] of await core.redis.xrange(`${core.keys.jobStatusStream}:dead`, '-', '+')) {
          const entry: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2) entry[fields[i]] = fields[i + 1];
          if (JSON.parse(entry.data).job_id === jobId) return entry;
        }
        return null;
      },
      10_000,
      `the dead letter of ${jobId}`,
    );
  }

  it('a name that resolves to an internal address at push gets a BadRequestError', async () => {
    answers.set('intranet.test', [['10.0.0.5']]);
    const { agent } = await owner();
    await expect(core.jobs.push(agent, 'x', { source: 'api', callback: 'https://intranet.test/hook' })).rejects.toMatchObject({
      status: 400,
      message:
        'callback https://intranet.test/hook: intranet.test resolves to 10.0.0.5, a private address; set SKADI_CALLBACK_ALLOW to allow internal receivers',
    });
  });

  it('a name that resolves to loopback at delivery is refused then, and the receiver is never connected to', async () => {
    const receiver = await sink();
    answers.set('rebind.test', [['93.184.216.34'], ['127.0.0.1']]); // public when pushed, loopback when delivered
    const { agent } = await owner();
    const { id } = await core.jobs.push(agent, 'x', { source: 'api', callback: `http://rebind.test:${receiver.port}/hook` });
    const dead = await deadLetter(id);
    expect(dead.error).toBe(
      `callback http://rebind.test:${receiver.port}/hook: rebind.test resolves to 127.0.0.1, a loopback address; set SKADI_CALLBACK_ALLOW to allow internal receivers`,
    );
    expect(dead.attempts).toBe('1'); // a refusal is final
    // The refusal is decided before any connection, and the dead letter is written once the attempt is over.
    expect(receiver.connections).toBe(0);
  });

  it('connects to the address it checked, not to what a second lookup would say', async () => {
    const allowed = await sink({ kind: 'ok' }, '127.0.0.2');
    const other = await sink({ kind: 'ok' }, '127.0.0.1', allowed.port);
    // Two lookups (push, delivery) answer the allowed address; any later one would answer the refused address.
    answers.set('pinned.test', [['127.0.0.2'], ['127.0.0.2'], ['127.0.0.1']]);
    const { agent } = await owner();
    const before = lookups.length;
    await core.jobs.push(agent, 'x', { source: 'api', callback: `http://pinned.test:${allowed.port}/hook` });
    await eventually(() => allowed.requests.length === 1, 10_000, 'the callback');
    expect(allowed.requests[0].headers.host).toBe(`pinned.test:${allowed.port}`); // Host keeps the name
    expect(lookups.slice(before)).toEqual(['pinned.test', 'pinned.test']);
    expect(other.connections).toBe(0);
  });

  it('does not follow a redirect: the 3xx is final, the target never hears of it', async () => {
    const target = await sink({ kind: 'ok' }, '127.0.0.2');
    const redirecting = await sink({ kind: 'redirect', location: target.url }, '127.0.0.2');
    const { agent } = await owner();
    const { id } = await core.jobs.push(agent, 'x', { source: 'api', callback: redirecting.url });
    const dead = await deadLetter(id);
    expect(dead.error).toBe('callback answered 302; redirects are not followed');
    expect(dead.attempts).toBe('1');
    // The dead letter is written once the attempt is over: following the redirect would have come before it.
    expect(redirecting.requests).toHaveLength(1);
    expect(target.connections).toBe(0);
  });

  it('a name that still does not resolve at delivery is retried, then dead-lettered', async () => {
    const { agent } = await owner();
    const { id } = await core.jobs.push(agent, 'x', { source: 'api', callback: 'https://nowhere.test/hook' });
    const dead = await deadLetter(id);
    expect(dead.error).toBe('callback host nowhere.test does not resolve (ENOTFOUND)');
    expect(dead.attempts).toBe('3');
  });

  it('a user from before callback secrets is signed with the legacy key until a secret is made for it', async () => {
    const receiver = await sink({ kind: 'ok' }, '127.0.0.2');
    const { user, agent, userToken } = await owner();
    await core.db.pool.query('UPDATE users SET callback_salt = NULL WHERE id = ?', [user.id]);
    await core.jobs.push(agent, 'before', { source: 'api', callback: receiver.url });
    await eventually(() => receiver.requests.length === 1, 10_000, 'the first callback');
    const check = (key: string, header: string, i: number) => signedWith(receiver.requests[i], key, header);
    expect(check(legacyKeyOf(userToken), SIGNATURE_HEADER, 0)).toBe(true);
    expect(check(legacyKeyOf(userToken), LEGACY_SIGNATURE_HEADER, 0)).toBe(true);
    const secret = await core.users.callbackSecret(user.name); // made now; every node forgets the keys it cached
    await core.jobs.push(agent, 'after', { source: 'api', callback: receiver.url });
    await eventually(() => receiver.requests.length === 2, 10_000, 'the next callback');
    expect(check(secret, SIGNATURE_HEADER, 1)).toBe(true);
    expect(check(legacyKeyOf(userToken), SIGNATURE_HEADER, 1)).toBe(false);
    expect(check(legacyKeyOf(userToken), LEGACY_SIGNATURE_HEADER, 1)).toBe(true);
  });
});
