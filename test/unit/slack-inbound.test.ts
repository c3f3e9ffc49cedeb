/** The Slack adapter's pure parts on recorded payload shapes: normalize, filter, render, translate errors. */
import { AdapterError } from '../../adapters/contract';
import {
  isIgnoredMessage,
  normalizeDirectMessage,
  normalizeMention,
  normalizeSlashCommand,
  parseSlackBody,
  stripMentions,
} from '../../adapters/slack/inbound';
import { MAX_CODE_CHARS, renderText, translateSlackError } from '../../adapters/slack/outbound';
import { decodeRef, postedRef } from '../../adapters/slack/reply-ref';

const slash =
  'token=x&team_id=T024BE7LD&team_domain=acme&channel_id=C2147483705&channel_name=ops&user_id=U2147483697&user_name=steve&command=%2Fskadi&text=web1+restart+%26lt%3Bnginx%26gt%3B&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123';
const mention = {
  token: 'x',
  team_id: 'T024BE7LD',
  api_app_id: 'A123',
  type: 'event_callback',
  event_id: 'Ev0LAN670R',
  event_time: 1515449522,
  event: {
    type: 'app_mention',
    user: 'U061F7AUR',
    text: '<@U0LAN0Z89> web1 uptime',
    ts: '1515449522.000016',
    channel: 'C0LAN2Q65',
    event_ts: '1515449522000016',
  },
};

describe('Slack inbound', () => {
  it('normalizes a slash command', () => {
    const message = normalizeSlashCommand(parseSlackBody(slash, 'application/x-www-form-urlencoded'));
    expect(message).toMatchObject({
      channel: 'slack',
      tenant: 'T024BE7LD',
      senderId: 'U2147483697',
      text: 'web1 restart <nginx>',
      isPrivate: false,
      messageId: 'command:13345224609.738474920.8088930838d88f008e0',
    });
    expect(decodeRef(message.replyTo)).toEqual({ c: 'C2147483705' });
  });

  it('normalizes an app_mention, answering in its thread', () => {
    const message = normalizeMention(mention.event, mention);
    expect(message).toMatchObject({ tenant: 'T024BE7LD', senderId: 'U061F7AUR', text: 'web1 uptime', messageId: 'event:Ev0LAN670R' });
    expect(decodeRef(message.replyTo)).toEqual({ c: 'C0LAN2Q65', t: '1515449522.000016' });
    const inThread = normalizeMention({ ...mention.event, thread_ts: '1515449000.000001' }, mention);
    expect(decodeRef(inThread.replyTo).t).toBe('1515449000.000001');
  });

  it("takes the sender's own team as the tenant, not the workspace that received a Slack Connect message", () => {
    const shared = {
      ...mention,
      team_id: 'THOST',
      event: { ...mention.event, team: 'THOST', user_team: 'TEXTERNAL', source_team: 'TEXTERNAL' },
    };
    expect(normalizeMention(shared.event, shared).tenant).toBe('TEXTERNAL');
    const sourceOnly = { ...mention, team_id: 'THOST', event: { ...mention.event, source_team: 'TEXTERNAL' } };
    expect(normalizeMention(sourceOnly.event, sourceOnly).tenant).toBe('TEXTERNAL');
    expect(normalizeDirectMessage({ ...mention.event, user_team: 'TEXTERNAL', channel: 'D1' }, { team_id: 'THOST' }).tenant).toBe(
      'TEXTERNAL',
    );
    const grid = { ...mention, team_id: 'THOST', enterprise_id: 'E1', event: { ...mention.event, user_team: 'E1' } };
    expect(normalizeMention(grid.event, grid).tenant).toBe('E1');
    expect(normalizeSlashCommand({ team_id: 'THOST', user_team_id: 'TEXTERNAL', user_id: 'U1', channel_id: 'C1', text: 'x' }).tenant).toBe(
      'TEXTERNAL',
    );
  });

  it('normalizes a direct message, answering flat in the DM', () => {
    const message = normalizeDirectMessage(
      { type: 'message', channel_type: 'im', user: 'U1', text: 'status', ts: '1.2', channel: 'D1' },
      { team_id: 'T1', event_id: 'Ev1' },
    );
    expect(message).toMatchObject({ isPrivate: true, text: 'status' });
    expect(decodeRef(message.replyTo)).toEqual({ c: 'D1', flat: 1 });
  });

  it('ignores the bot itself, other bots, edits and joins', () => {
    const bot = { userId: 'UBOT', botId: 'BBOT' };
    expect(isIgnoredMessage({ user: 'UBOT', text: 'x' }, bot, true)).toBe(true);
    expect(isIgnoredMessage({ bot_id: 'BBOT', text: 'x' }, bot, true)).toBe(true);
    expect(isIgnoredMessage({ bot_id: 'BOTHER', subtype: 'bot_message', text: 'x' }, bot, false)).toBe(true);
    expect(isIgnoredMessage({ bot_id: 'BOTHER', subtype: 'bot_message', text: 'x' }, bot, true)).toBe(false);
    expect(isIgnoredMessage({ subtype: 'message_changed', message: {} }, bot, false)).toBe(true);
    expect(isIgnoredMessage({ subtype: 'channel_join', user: 'U1' }, bot, false)).toBe(true);
    expect(isIgnoredMessage({ user: 'U1', text: 'web1 ls' }, bot, false)).toBe(false);
  });

  it('strips leading mentions only', () => {
    expect(stripMentions('<@U0LAN0Z89> <@U0LAN0Z89|skadi>: web1 ping <@U1>')).toBe('web1 ping <@U1>');
  });
});

describe('Slack outbound', () => {
  it('threads under a message just posted, except in flat conversations', () => {
    expect(postedRef({ c: 'C1' }, '9.1')).toEqual({ c: 'C1', t: '9.1', m: '9.1' });
    expect(postedRef({ c: 'C1', t: '5.5' }, '9.1')).toEqual({ c: 'C1', t: '5.5', m: '9.1' });
    expect(postedRef({ c: 'D1', flat: 1 }, '9.1')).toEqual({ c: 'D1', m: '9.1', flat: 1 });
  });

  it('renders output in a code block, cut with a note when too long', () => {
    expect(renderText({ text: 'done', code: 'a\nb\n' })).toBe('done\n```\na\nb\n```');
    const long = renderText({ text: 'done', code: 'x'.repeat(MAX_CODE_CHARS + 500) });
    expect(long).toContain(`the last ${MAX_CODE_CHARS} of ${MAX_CODE_CHARS + 500} characters`);
    expect(renderText({ text: 't', code: 'a ``` b' })).not.toContain('a ``` b');
  });

  it('translates Web API errors into typed errors', () => {
    expect(translateSlackError({ code: 'slack_webapi_rate_limited_error', retryAfter: 7 })).toMatchObject({
      code: 'rate_limited',
      retryAfterMs: 7000,
    });
    expect(translateSlackError({ code: 'slack_webapi_platform_error', data: { error: 'invalid_auth' } }).code).toBe('unauthorized');
    expect(translateSlackError({ code: 'slack_webapi_platform_error', data: { error: 'channel_not_found' } }).code).toBe('not_found');
    expect(translateSlackError({ code: 'slack_webapi_platform_error', data: { error: 'internal_error' } }).code).toBe('transient');
    expect(translateSlackError({ code: 'slack_webapi_platform_error', data: { error: 'msg_too_long' } }).code).toBe('invalid');
    expect(translateSlackError({ code: 'slack_webapi_http_error', statusCode: 503 }).retryable).toBe(true);
    expect(translateSlackError({ code: 'slack_webapi_request_error', message: 'ECONNREFUSED' })).toBeInstanceOf(AdapterError);
  });
});
