/** The Slack adapter's normalizers field by field: who sent it (and whose team), privacy, where answers go, dedup keys, approval clicks. */
import {
  isIgnoredMessage,
  normalizeApprovalAction,
  normalizeDirectMessage,
  normalizeMention,
  normalizeSlashCommand,
  parseSlackBody,
  stripMentions,
} from '../../adapters/slack/inbound';
import { decodeRef } from '../../adapters/slack/reply-ref';

const at = new Date('2026-12-01T10:00:00Z');
const JOB = '01KABCDEFGHJKMNPQRSTVWXYZ0';

describe('slash commands', () => {
  const base = {
    team_id: 'T1',
    user_id: 'U1',
    user_name: 'steve',
    channel_id: 'C1',
    channel_name: 'ops',
    text: 'web1 uptime',
    trigger_id: '13345.738',
  };

  it('become a message of the sender, answered in the channel', () => {
    expect(normalizeSlashCommand(base, at)).toEqual({
      channel: 'slack',
      tenant: 'T1',
      senderId: 'U1',
      senderName: 'steve',
      text: 'web1 uptime',
      isPrivate: false,
      replyTo: expect.any(String),
      messageId: 'command:13345.738',
      receivedAt: at,
    });
    expect(decodeRef(normalizeSlashCommand(base, at).replyTo)).toEqual({ c: 'C1' });
  });

  it('are private in a DM (by its name or a D channel) and answered flat there', () => {
    for (const dm of [
      { channel_name: 'directmessage', channel_id: 'C9' },
      { channel_name: 'x', channel_id: 'D9' },
    ]) {
      const m = normalizeSlashCommand({ ...base, ...dm }, at);
      expect(m.isPrivate).toBe(true);
      expect(decodeRef(m.replyTo)).toEqual({ c: dm.channel_id, flat: 1 });
    }
    expect(normalizeSlashCommand({ ...base, channel_id: 'GD1' }, at).isPrivate).toBe(false);
  });

  it("take the sender's own team first, unescape the text, and survive missing fields", () => {
    expect(normalizeSlashCommand({ ...base, user: { team_id: 'TU' } }, at).tenant).toBe('TU');
    expect(normalizeSlashCommand({ ...base, user_team_id: '', user: { team_id: 'TU' } }, at).tenant).toBe('TU');
    expect(normalizeSlashCommand({ ...base, text: '  echo &lt;a&gt; &amp;lt; ' }, at).text).toBe('echo <a> &lt;');
    const bare = normalizeSlashCommand({ team_id: 'T1', user_id: 'U1', channel_id: 'C1' }, at);
    expect(bare).toMatchObject({ senderName: '', text: '', messageId: expect.stringMatching(/^command:T1:U1:\d+$/) });
    expect(normalizeSlashCommand({ user_id: 'U1', channel_id: 'C1' }, at).tenant).toBe('');
  });
});

describe('message events', () => {
  const body = { team_id: 'THOST', event_id: 'Ev1' };
  const event = { type: 'message', user: 'U1', text: '<@UBOT> web1 ping', ts: '1.5', channel: 'C1' };

  it('make a mention a message answered in its thread, keyed by the event id', () => {
    expect(normalizeMention(event, body, at)).toEqual({
      channel: 'slack',
      tenant: 'THOST',
      senderId: 'U1',
      senderName: '',
      text: 'web1 ping',
      isPrivate: false,
      replyTo: expect.any(String),
      messageId: 'event:Ev1',
      receivedAt: at,
    });
    expect(decodeRef(normalizeMention(event, body, at).replyTo)).toEqual({ c: 'C1', t: '1.5' });
    expect(normalizeMention(event, { team_id: 'T1' }, at).messageId).toBe('event:C1:1.5');
    expect(normalizeMention({ ...event, text: undefined, user: undefined, bot_id: 'B1' }, body, at)).toMatchObject({
      senderId: 'B1',
      text: '',
    });
    expect(normalizeMention({ channel: 'C1', ts: '1' }, body, at).senderId).toBe('');
  });

  it('answer a DM in its thread when it has one, else flat', () => {
    expect(decodeRef(normalizeDirectMessage({ ...event, channel: 'D1', thread_ts: '1.1' }, body, at).replyTo)).toEqual({
      c: 'D1',
      t: '1.1',
    });
    expect(normalizeDirectMessage({ ...event, channel: 'D1' }, body, at).isPrivate).toBe(true);
  });

  it("take the sender's team from the event before the workspace that received it", () => {
    expect(normalizeMention({ ...event, user_profile: { team: 'TPROFILE' }, team: 'TEVENT' }, body, at).tenant).toBe('TPROFILE');
    expect(normalizeMention({ ...event, team: 'TEVENT' }, body, at).tenant).toBe('TEVENT');
    expect(normalizeMention({ ...event, user_team: '', source_team: 'TSRC' }, body, at).tenant).toBe('TSRC');
    expect(normalizeMention(event, {}, at).tenant).toBe('');
  });

  it('ignore bot messages unless bots are allowed, and the bot itself always', () => {
    const bot = { userId: 'UBOT', botId: 'BBOT' };
    expect(isIgnoredMessage({ bot_id: 'BOTHER', text: 'x' }, bot, false)).toBe(true);
    expect(isIgnoredMessage({ bot_id: 'BOTHER', text: 'x' }, bot, true)).toBe(false);
    expect(isIgnoredMessage({ subtype: 'bot_message', text: 'x' }, null, false)).toBe(true);
    expect(isIgnoredMessage({ subtype: 'bot_message', text: 'x' }, null, true)).toBe(false);
    expect(isIgnoredMessage({ user: 'UBOT', text: 'x' }, null, true)).toBe(false);
    expect(isIgnoredMessage({ user: 'U1', bot_id: 'BBOT' }, bot, true)).toBe(true);
    expect(isIgnoredMessage({ user: 'U1' }, { userId: 'UBOT', botId: '' }, true)).toBe(false);
  });
});

describe('mentions and escapes', () => {
  it('strip only leading bot mentions, with separators, in any case', () => {
    expect(stripMentions('  <@U1>, <@u2|skadi> : web1 ls')).toBe('web1 ls');
    expect(stripMentions('<@U1><@U2>web1')).toBe('web1');
    expect(stripMentions('web1 <@U1> ls')).toBe('web1 <@U1> ls');
    expect(stripMentions('<#C1> web1')).toBe('<#C1> web1');
    expect(stripMentions('<@U1 web1')).toBe('<@U1 web1');
    expect(stripMentions('  plain  ')).toBe('plain');
  });

  it('read JSON, a form, and a form holding a JSON payload', () => {
    expect(parseSlackBody('{"a":1}', 'application/json')).toEqual({ a: 1 });
    expect(parseSlackBody('', 'application/json')).toEqual({});
    expect(parseSlackBody('a=1&b=x%20y', 'application/x-www-form-urlencoded')).toEqual({ a: '1', b: 'x y' });
    expect(
      parseSlackBody(`payload=${encodeURIComponent('{"type":"block_actions"}')}`, 'application/x-www-form-urlencoded; charset=utf-8'),
    ).toEqual({ type: 'block_actions' });
    expect(() => parseSlackBody('{', 'application/json')).toThrow();
  });
});

describe('approval clicks', () => {
  const click = (over: Record<string, any> = {}, action: Record<string, any> = {}) => ({
    type: 'block_actions',
    trigger_id: 'tr1',
    team: { id: 'THOST' },
    user: { id: 'U2', username: 'bob', team_id: 'TBOB' },
    channel: { id: 'C1' },
    message: { ts: '7.7', thread_ts: '6.6' },
    actions: [{ action_id: 'skadi_approve', value: JOB, action_ts: '8.8', ...action }],
    ...over,
  });

  it('become approve or deny of the job, by the clicking person of their own team, deciding that message', () => {
    const m = normalizeApprovalAction(click(), at)!;
    expect(m).toEqual({
      channel: 'slack',
      tenant: 'TBOB',
      senderId: 'U2',
      senderName: 'bob',
      text: `approve ${JOB}`,
      isPrivate: false,
      replyTo: expect.any(String),
      messageId: 'action:tr1',
      receivedAt: at,
      decides: expect.any(String),
    });
    expect(decodeRef(m.replyTo)).toEqual({ c: 'C1', t: '6.6' });
    expect(decodeRef(m.decides!)).toEqual({ c: 'C1', m: '7.7' });
    expect(normalizeApprovalAction(click({}, { action_id: 'skadi_deny' }), at)!.text).toBe(`deny ${JOB}`);
  });

  it('read the container when the message is absent, answer flat in a DM, and fall back for names and keys', () => {
    const fromContainer = normalizeApprovalAction(
      click({
        channel: undefined,
        message: undefined,
        container: { channel_id: 'D5', message_ts: '3.3' },
        trigger_id: undefined,
        user: { id: 'U2', name: 'Bob B' },
        team: { id: 'THOST' },
      }),
      at,
    )!;
    expect(fromContainer).toMatchObject({ isPrivate: true, senderName: 'Bob B', tenant: 'THOST', messageId: 'action:D5:3.3:8.8' });
    expect(decodeRef(fromContainer.replyTo)).toEqual({ c: 'D5', flat: 1 });
    expect(decodeRef(fromContainer.decides!)).toEqual({ c: 'D5', m: '3.3' });
    const unthreaded = normalizeApprovalAction(click({ message: { ts: '7.7' } }), at)!;
    expect(decodeRef(unthreaded.replyTo)).toEqual({ c: 'C1', t: '7.7' });
    const threadInContainer = normalizeApprovalAction(
      click({ message: undefined, container: { channel_id: 'C1', message_ts: '7.7', thread_ts: '5.5' } }),
      at,
    )!;
    expect(decodeRef(threadInContainer.replyTo)).toEqual({ c: 'C1', t: '5.5' });
    expect(normalizeApprovalAction(click({ user: { id: 'U2' }, team: undefined }), at)).toMatchObject({ senderName: '', tenant: '' });
  });

  it('are nothing without a known action, a job id, a channel, a message or a user', () => {
    const none = [
      click({}, { action_id: 'other' }),
      click({}, { value: JOB.toLowerCase() }),
      click({}, { value: `${JOB}0` }),
      click({}, { value: `x${JOB}` }),
      click({}, { value: 42 }),
      click({ actions: [] }),
      click({ actions: { 0: {} } }),
      click({ channel: undefined }),
      click({ message: undefined }),
      click({ user: undefined }),
      click({ user: {} }),
    ];
    for (const body of none) expect(normalizeApprovalAction(body, at)).toBeNull();
  });
});
