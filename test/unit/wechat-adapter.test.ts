/** The WeChat adapter's pure parts: inbound normalization, outbound rendering and error translation, reply addresses, settings. */
import { AdapterError } from '../../adapters/contract';
import { LOGIN_SKEW_MS, normalizeWechatMessage, type WechatMessageFacts } from '../../adapters/wechat/inbound';
import { MAX_OUTPUT_BYTES, renderText, translateWechatError } from '../../adapters/wechat/outbound';
import { decodeRef, encodeRef } from '../../adapters/wechat/reply-ref';
import {
  accountLeaseName,
  puppetOptions,
  wechatConfigFrom,
  wechatConfigProblem,
  wechatEnabled,
  type WechatAdapterConfig,
} from '../../adapters/wechat/config';

const BOT = 'wxid_bot0001';
const TALKER = 'wxid_alice42';
const ROOM = '20977261437@chatroom';
const LOGGED_IN = new Date('2026-03-01T08:00:00.000Z');
const NOW = new Date('2026-03-01T08:05:00.000Z');

/** A direct text message from TALKER, sent after the login; `over` changes any fact. */
function facts(over: Partial<WechatMessageFacts> = {}): WechatMessageFacts {
  return {
    id: 'msg-1001',
    botId: BOT,
    talkerId: TALKER,
    talkerName: 'Alice',
    roomId: null,
    self: false,
    isText: true,
    text: '  deploy web1  ',
    mentionsBot: false,
    mentionText: '',
    sentAt: new Date(LOGGED_IN.getTime() + 60_000),
    ...over,
  };
}

/** The normalized message of a verdict that must not be ignored. */
function accepted(f: WechatMessageFacts) {
  const verdict = normalizeWechatMessage(f, LOGGED_IN, NOW);
  if (!('message' in verdict)) throw new Error(`expected a message, got ignored: ${verdict.ignored}`);
  return verdict.message;
}

/** The reason of a verdict that must be ignored. */
function ignoredReason(f: WechatMessageFacts): string {
  const verdict = normalizeWechatMessage(f, LOGGED_IN, NOW);
  if (!('ignored' in verdict)) throw new Error(`expected the message to be ignored, got ${JSON.stringify(verdict.message)}`);
  return verdict.ignored;
}

function config(over: Partial<WechatAdapterConfig> = {}): WechatAdapterConfig {
  return {
    puppet: 'wechaty-puppet-service',
    token: 'puppet_token_abc',
    endpoint: '',
    tls: true,
    access: 'closed',
    paceMs: 1500,
    maxPerMinute: 20,
    leaseMs: 30_000,
    ...over,
  };
}

describe('normalizeWechatMessage', () => {
  it('turns a direct text message into a private wechat message addressed back to the talker', () => {
    const message = accepted(facts());
    expect(message).toEqual({
      channel: 'wechat',
      tenant: BOT,
      senderId: TALKER,
      senderName: 'Alice',
      text: 'deploy web1',
      isPrivate: true,
      replyTo: expect.any(String),
      messageId: `${BOT}:msg-1001`,
      receivedAt: NOW,
    });
    expect(decodeRef(message.replyTo)).toEqual({ b: BOT, c: TALKER, r: 0 });
  });

  it('takes the text without the mentions from a room message that mentions the bot, and answers in the room mentioning the talker', () => {
    const message = accepted(facts({ roomId: ROOM, mentionsBot: true, text: '@Skadi  status db1 ', mentionText: '  status db1 ' }));
    expect(message.text).toBe('status db1');
    expect(message.isPrivate).toBe(false);
    expect(message.senderId).toBe(TALKER);
    expect(message.tenant).toBe(BOT);
    expect(decodeRef(message.replyTo)).toEqual({ b: BOT, c: ROOM, r: 1, p: TALKER });
  });

  it("ignores the bot's own message", () => {
    expect(ignoredReason(facts({ self: true }))).toBe("the bot's own message");
  });

  it('ignores a message that is not text', () => {
    expect(ignoredReason(facts({ isText: false, text: '' }))).toBe('not a text message');
  });

  it('ignores a room message that does not mention the bot', () => {
    expect(ignoredReason(facts({ roomId: ROOM, mentionsBot: false, text: 'deploy web1', mentionText: 'deploy web1' }))).toBe(
      'a room message that does not mention the bot',
    );
  });

  it('ignores an empty direct message and a mention with nothing after it', () => {
    expect(ignoredReason(facts({ text: '   \n ' }))).toBe('an empty message');
    expect(ignoredReason(facts({ roomId: ROOM, mentionsBot: true, text: '@Skadi ', mentionText: '  ' }))).toBe('an empty message');
  });

  it('ignores history replayed at login (sent more than LOGIN_SKEW_MS before it) but accepts a message sent 1 s before it', () => {
    expect(LOGIN_SKEW_MS).toBe(2000);
    const replayed = facts({ sentAt: new Date(LOGGED_IN.getTime() - LOGIN_SKEW_MS - 1) });
    expect(ignoredReason(replayed)).toBe('sent before the login (replayed history)');
    expect(ignoredReason(facts({ sentAt: new Date(LOGGED_IN.getTime() - 60_000) }))).toBe('sent before the login (replayed history)');
    expect(accepted(facts({ sentAt: new Date(LOGGED_IN.getTime() - 1000) })).text).toBe('deploy web1');
    expect(accepted(facts({ sentAt: new Date(LOGGED_IN.getTime() - LOGIN_SKEW_MS) })).text).toBe('deploy web1');
  });
});

describe('WeChat renderText', () => {
  it('sends the line alone when there is no output', () => {
    expect(renderText({ text: 'web1: done' })).toBe('web1: done');
    expect(renderText({ text: 'web1: done', code: ' \n\n' })).toBe('web1: done');
  });

  it('puts the output, without trailing blank space, on the lines after the line', () => {
    expect(renderText({ text: 'web1 uptime', code: ' 10:00 up 3 days\n\n' })).toBe('web1 uptime\n 10:00 up 3 days');
  });

  it('keeps the last MAX_OUTPUT_BYTES bytes of long output and names the byte counts', () => {
    const code = 'HEAD' + 'x'.repeat(MAX_OUTPUT_BYTES + 500) + 'TAIL';
    const text = renderText({ text: 'web1 log', code });
    expect(text).toBe(
      `web1 log\n${'x'.repeat(MAX_OUTPUT_BYTES - 4)}TAIL\n(output cut: the last ${MAX_OUTPUT_BYTES} of ${MAX_OUTPUT_BYTES + 508} bytes)`,
    );
    expect(text).not.toContain('HEAD');
    expect(renderText({ text: 'ok', code: 'x'.repeat(MAX_OUTPUT_BYTES) })).toBe(`ok\n${'x'.repeat(MAX_OUTPUT_BYTES)}`);
  });

  it('never breaks a multi-byte character at the cut', () => {
    const code = '€'.repeat(1000); // 3000 bytes; 2000 is not a multiple of 3, so the cut lands inside a €
    const text = renderText({ text: 'x', code });
    const [line, shown, note] = text.split('\n');
    expect(line).toBe('x');
    expect(shown).not.toContain('\uFFFD');
    expect(shown).toBe('€'.repeat(666));
    expect(Buffer.byteLength(shown)).toBe(1998);
    expect(Buffer.byteLength(shown)).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    expect(note).toBe('(output cut: the last 1998 of 3000 bytes)');
  });
});

describe('translateWechatError', () => {
  it('passes an AdapterError through unchanged', () => {
    const original = new AdapterError('rate_limited', 'slow down', 5000);
    expect(translateWechatError(original)).toBe(original);
  });

  it('takes what the puppet throws as passing, even a missing payload (its store is reset at reconnect)', () => {
    const e = translateWechatError(new Error('no payload found for id wxid_alice\n    at stack line'));
    expect(e).toBeInstanceOf(AdapterError);
    expect(e.code).toBe('transient');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('WeChat call failed: no payload found for id wxid_alice');
  });

  it('calls any other failure transient and retryable', () => {
    const e = translateWechatError(new Error('grpc: connection reset'));
    expect(e).toBeInstanceOf(AdapterError);
    expect(e.code).toBe('transient');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('WeChat call failed: grpc: connection reset');
    expect(translateWechatError('boom')).toMatchObject({ code: 'transient', message: 'WeChat call failed: boom' });
  });
});

describe('WeChat reply addresses', () => {
  it('decode back to what was encoded', () => {
    const direct = { b: BOT, c: TALKER, r: 0 } as const;
    const room = { b: BOT, c: ROOM, r: 1, p: TALKER } as const;
    expect(decodeRef(encodeRef(direct))).toEqual(direct);
    expect(decodeRef(encodeRef(room))).toEqual(room);
  });

  it('refuse malformed JSON', () => {
    expect(() => decodeRef('{"b":"x",')).toThrow(SyntaxError);
    expect(() => decodeRef('not json')).toThrow();
  });

  it('refuse an address without a conversation', () => {
    expect(() => decodeRef(JSON.stringify({ b: BOT, r: 0 }))).toThrow('not a WeChat reply address');
    expect(() => decodeRef(JSON.stringify({ b: BOT, c: '', r: 0 }))).toThrow('not a WeChat reply address');
    expect(() => decodeRef('null')).toThrow('not a WeChat reply address');
  });

  it('refuse r other than 0 or 1', () => {
    expect(() => decodeRef(JSON.stringify({ b: BOT, c: ROOM, r: 2 }))).toThrow('not a WeChat reply address');
    expect(() => decodeRef(JSON.stringify({ b: BOT, c: ROOM, r: '1' }))).toThrow('not a WeChat reply address');
    expect(() => decodeRef(JSON.stringify({ b: BOT, c: ROOM }))).toThrow('not a WeChat reply address');
  });
});

describe('WeChat settings', () => {
  const installed = (name: string) => `/opt/skadi/node_modules/${name}/index.js`;

  it('are enabled when a puppet is named', () => {
    expect(wechatEnabled(config())).toBe(true);
    expect(wechatEnabled(config({ puppet: '' }))).toBe(false);
  });

  it('copy the gateway configuration into the adapter settings', () => {
    expect(
      wechatConfigFrom({
        wechatPuppet: 'wechaty-puppet-wechat4u',
        wechatPuppetToken: 'tok',
        wechatPuppetEndpoint: '10.0.0.5:8788',
        wechatPuppetTls: false,
        wechatAccess: 'open',
        wechatPaceMs: 1200,
        wechatMaxPerMinute: 15,
        wechatLeaseMs: 45_000,
      }),
    ).toEqual({
      puppet: 'wechaty-puppet-wechat4u',
      token: 'tok',
      endpoint: '10.0.0.5:8788',
      tls: false,
      access: 'open',
      paceMs: 1200,
      maxPerMinute: 15,
      leaseMs: 45_000,
    });
  });

  it('need a token for wechaty-puppet-service', () => {
    const problem = wechatConfigProblem(config({ token: '' }), installed);
    expect(problem).toContain('SKADI_WECHAT_PUPPET_TOKEN');
    expect(problem).toBe(
      'SKADI_WECHAT_PUPPET=wechaty-puppet-service needs SKADI_WECHAT_PUPPET_TOKEN (the token your puppet service provider gave you)',
    );
  });

  it('say how to install a puppet that cannot be resolved', () => {
    const resolve = jest.fn((name: string): string => {
      throw new Error(`Cannot find module '${name}'`);
    });
    const problem = wechatConfigProblem(config({ puppet: 'wechaty-puppet-wechat4u', token: '' }), resolve);
    expect(resolve).toHaveBeenCalledWith('wechaty-puppet-wechat4u');
    expect(problem).toContain('`npm install wechaty-puppet-wechat4u`');
    expect(problem).toMatch(/^SKADI_WECHAT_PUPPET=wechaty-puppet-wechat4u is not installed/);
  });

  it('have no problem when the puppet resolves and has what it needs', () => {
    const resolve = jest.fn(installed);
    expect(wechatConfigProblem(config(), resolve)).toBeNull();
    expect(resolve).toHaveBeenCalledWith('wechaty-puppet-service');
    expect(wechatConfigProblem(config({ puppet: 'wechaty-puppet-wechat4u', token: '' }), installed)).toBeNull();
  });

  it('give the puppet only the options that are set, and disable TLS when asked', () => {
    expect(puppetOptions(config())).toEqual({ token: 'puppet_token_abc' });
    expect(puppetOptions(config({ tls: false }))).toEqual({ token: 'puppet_token_abc', tls: { disable: true } });
    expect(puppetOptions(config({ endpoint: '10.0.0.5:8788' }))).toEqual({ token: 'puppet_token_abc', endpoint: '10.0.0.5:8788' });
    expect(puppetOptions(config({ puppet: 'wechaty-puppet-wechat4u', token: '' }))).toEqual({});
    expect(puppetOptions(config({ token: '', tls: false }))).toEqual({ tls: { disable: true } });
  });

  it('name one lease per account: stable for the same settings, different for another token', () => {
    const name = accountLeaseName(config());
    expect(name).toMatch(/^wechat:[0-9a-f]{16}$/);
    expect(accountLeaseName(config())).toBe(name);
    expect(accountLeaseName(config({ paceMs: 9999, access: 'open' }))).toBe(name);
    expect(accountLeaseName(config({ token: 'puppet_token_xyz' }))).not.toBe(name);
    expect(accountLeaseName(config({ puppet: 'wechaty-puppet-padlocal' }))).not.toBe(name);
    expect(name).not.toContain('puppet_token_abc');
  });
});
