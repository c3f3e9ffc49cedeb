/** The Teams adapter's normalizeActivity on activity payloads shaped like the ones Microsoft Teams posts. */
import type { Activity } from 'botbuilder';
import type { InboundMessage } from '../../adapters/contract';
import {
  conversationTenantOf,
  needsRosterLookup,
  normalizeActivity,
  rosterOf,
  senderTenantOf,
  type ActivityVerdict,
} from '../../adapters/teams/inbound';
import { decodeRef } from '../../adapters/teams/reply-ref';

const BOT = '28:0b3a6c1e-7a55-4c1f-9d2e-5f1a2b3c4d5e';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SERVICE = 'https://smba.trafficmanager.net/emea/';
const at = new Date('2026-11-29T06:00:00Z');

/** Fresh payloads each call: botbuilder's mention removal rewrites activity.text in place. */
const personal = (): Record<string, any> => ({
  type: 'message',
  id: '1732860000000',
  timestamp: '2026-11-29T06:00:00.000Z',
  serviceUrl: SERVICE,
  channelId: 'msteams',
  from: { id: '29:1aBcDeFgHiJkLmNoPqRsTuVwXyZ', name: 'Ada Lovelace', aadObjectId: '6b2c4e1a-1111-2222-3333-444455556666' },
  conversation: { conversationType: 'personal', tenantId: TENANT, id: 'a:1xYzPersonalChatId' },
  recipient: { id: BOT, name: 'Skadi' },
  textFormat: 'plain',
  locale: 'en-US',
  text: 'web1 uptime',
  entities: [{ type: 'clientInfo', locale: 'en-US', country: 'US', platform: 'Web', timezone: 'Europe/Berlin' }],
  channelData: { tenant: { id: TENANT } },
});
const channel = (): Record<string, any> => ({
  type: 'message',
  id: '1732860111111',
  timestamp: '2026-11-29T06:01:00.000Z',
  serviceUrl: SERVICE,
  channelId: 'msteams',
  from: { id: '29:1GrAcEhOpPeR', name: 'Grace Hopper', aadObjectId: '9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff' },
  conversation: {
    isGroup: true,
    conversationType: 'channel',
    tenantId: TENANT,
    id: '19:ops0123456789abcdef@thread.tacv2;messageid=1732860000000',
  },
  recipient: { id: BOT, name: 'Skadi' },
  textFormat: 'plain',
  text: '<at>Skadi</at> web1 restart nginx\n',
  entities: [
    { type: 'mention', text: '<at>Skadi</at>', mentioned: { id: BOT, name: 'Skadi' } },
    { type: 'clientInfo', locale: 'en-US', platform: 'Windows' },
  ],
  channelData: {
    teamsChannelId: '19:ops0123456789abcdef@thread.tacv2',
    teamsTeamId: '19:team@thread.tacv2',
    channel: { id: '19:ops0123456789abcdef@thread.tacv2' },
    team: { id: '19:team@thread.tacv2' },
    tenant: { id: TENANT },
  },
});
const groupChat = (): Record<string, any> => ({
  ...channel(),
  id: '1732860222222',
  conversation: { isGroup: true, conversationType: 'groupChat', tenantId: TENANT, id: '19:meeting_abc123@thread.v2' },
  channelData: { tenant: { id: TENANT } },
});

function messageOf(verdict: ActivityVerdict): InboundMessage {
  if (!('message' in verdict)) throw new Error(`ignored: ${verdict.ignored}`);
  return verdict.message;
}
const normalize = (activity: Record<string, any>) => normalizeActivity(activity as Partial<Activity>, at);

describe('Teams normalizeActivity', () => {
  it('normalizes a personal chat message, the sender being its Entra object id', () => {
    const message = messageOf(normalize(personal()));
    expect(message).toEqual({
      channel: 'teams',
      tenant: TENANT,
      senderId: '6b2c4e1a-1111-2222-3333-444455556666',
      senderName: 'Ada Lovelace',
      text: 'web1 uptime',
      isPrivate: true,
      replyTo: expect.any(String),
      messageId: expect.stringMatching(/^activity:[0-9a-f]{40}$/),
      receivedAt: at,
    });
    expect(decodeRef(message.replyTo)).toEqual({ s: SERVICE, c: 'a:1xYzPersonalChatId', k: 'personal', tn: TENANT, b: BOT });
  });

  it('normalizes a channel reply that @mentions the bot, answering in its thread', () => {
    const message = messageOf(normalize(channel()));
    // The sender's tenant is not the channel's: it stays unknown until the roster names it (senderTenantOf).
    expect(message).toMatchObject({
      tenant: '',
      senderId: '9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff',
      senderName: 'Grace Hopper',
      text: 'web1 restart nginx',
      isPrivate: false,
    });
    expect(decodeRef(message.replyTo)).toEqual({
      s: SERVICE,
      c: '19:ops0123456789abcdef@thread.tacv2;messageid=1732860000000',
      k: 'channel',
      tn: TENANT,
      b: BOT,
    });
  });

  it('starts a thread at a channel root post whose conversation id has no ;messageid=', () => {
    const root = {
      ...channel(),
      id: '1732860333333',
      conversation: { ...channel().conversation, id: '19:ops0123456789abcdef@thread.tacv2' },
    };
    const ref = decodeRef(messageOf(normalize(root)).replyTo);
    expect(ref.c).toBe('19:ops0123456789abcdef@thread.tacv2;messageid=1732860333333');
    expect(ref.k).toBe('channel');
  });

  it('takes a group chat message only when it @mentions the bot, and never appends a thread to it', () => {
    const message = messageOf(normalize(groupChat()));
    expect(message).toMatchObject({ text: 'web1 restart nginx', isPrivate: false, senderId: '9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff' });
    expect(decodeRef(message.replyTo)).toMatchObject({ c: '19:meeting_abc123@thread.v2', k: 'groupChat' });
    const unmentioned = { ...groupChat(), text: 'web1 restart nginx', entities: [{ type: 'clientInfo', locale: 'en-US' }] };
    expect(normalize(unmentioned)).toEqual({ ignored: 'a group message without a mention of the bot' });
    const otherMentioned = {
      ...groupChat(),
      text: '<at>Ada</at> look',
      entities: [{ type: 'mention', text: '<at>Ada</at>', mentioned: { id: '29:1aBcDeFgHiJkLmNoPqRsTuVwXyZ', name: 'Ada' } }],
    };
    expect(normalize(otherMentioned)).toEqual({ ignored: 'a group message without a mention of the bot' });
  });

  it("ignores a conversationUpdate, the bot's own message, and a mention without a command", () => {
    const update = {
      type: 'conversationUpdate',
      id: 'f:1234',
      serviceUrl: SERVICE,
      channelId: 'msteams',
      from: { id: '29:1GrAcEhOpPeR', aadObjectId: '9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff' },
      conversation: { conversationType: 'personal', tenantId: TENANT, id: 'a:1xYz' },
      recipient: { id: BOT, name: 'Skadi' },
      membersAdded: [{ id: BOT }],
      channelData: { tenant: { id: TENANT }, eventType: 'teamMemberAdded' },
    };
    expect(normalize(update)).toEqual({ ignored: 'a conversationUpdate activity' });
    expect(normalize({ ...personal(), from: { id: BOT, name: 'Skadi' } })).toEqual({ ignored: "the bot's own message" });
    expect(normalize({ ...channel(), text: '<at>Skadi</at>&nbsp;\n' })).toEqual({ ignored: 'no text' });
    expect(normalize({ ...personal(), serviceUrl: undefined })).toHaveProperty('ignored');
    expect(normalize({ ...personal(), conversation: { conversationType: 'personal', tenantId: TENANT } })).toHaveProperty('ignored');
  });

  it('falls back to channelData.tenant.id and to from.id', () => {
    const noTenant = {
      ...personal(),
      conversation: { conversationType: 'personal', id: 'a:1xYz' },
      from: { id: '29:1OnlyId', name: 'Bob' },
    };
    const message = messageOf(normalize(noTenant));
    expect(message).toMatchObject({ tenant: TENANT, senderId: '29:1OnlyId', senderName: 'Bob' });
    expect(decodeRef(message.replyTo).tn).toBe(TENANT);
  });

  it('strips the leading mention when its entity lacks the mention text, and ignores malformed activities', () => {
    const noText = { ...channel(), text: '<at>Skadi</at> web1 ls', entities: [{ type: 'mention', mentioned: { id: BOT, name: 'Skadi' } }] };
    expect(messageOf(normalize(noText)).text).toBe('web1 ls');
    expect('ignored' in normalize({ ...personal(), entities: 'not a list' })).toBe(true);
    expect('ignored' in normalize({ ...personal(), from: { id: 7 } })).toBe(true);
  });

  it('turns &nbsp; and U+00A0 into plain spaces', () => {
    expect(messageOf(normalize({ ...channel(), text: '<at>Skadi</at>&nbsp;web1&nbsp;ls\u00a0-la' })).text).toBe('web1 ls -la');
    expect(messageOf(normalize({ ...personal(), text: '&nbsp; web1 df&nbsp;' })).text).toBe('web1 df');
  });

  it('gives a stable, short message id per conversation and activity id', () => {
    const first = messageOf(normalize(channel())).messageId;
    expect(messageOf(normalize(channel())).messageId).toBe(first);
    expect(messageOf(normalize({ ...channel(), id: '1732860111112' })).messageId).not.toBe(first);
    expect(
      messageOf(
        normalize({ ...channel(), conversation: { ...channel().conversation, id: '19:other@thread.tacv2;messageid=1732860000000' } }),
      ).messageId,
    ).not.toBe(first);
    expect(first.length).toBeLessThanOrEqual(190);
    expect(first).toMatch(/^[\x20-\x7e]+$/);
  });
});

const PARTNER = '0f8276ea-111b-46af-9512-79ce81d5dea1';
/** A mention in a Teams Connect shared channel by a person of another organization: every tenant field is the host's. */
const sharedChannel = (): Record<string, any> => ({
  ...channel(),
  id: '1732860444444',
  from: { id: '29:1PaTnErExTeRnAl', name: 'Pat Partner', aadObjectId: '5e5e5e5e-1111-4222-8333-944445555666' },
  conversation: { isGroup: true, conversationType: 'channel', tenantId: TENANT, id: '19:shared7777@thread.tacv2;messageid=1732860444444' },
  channelData: {
    channel: { id: '19:shared7777@thread.tacv2', type: 'shared', name: 'Partners' },
    team: { id: '19:hostteam@thread.tacv2' },
    tenant: { id: TENANT },
  },
});
/** A federated group chat a host user started with a person of another organization. */
const crossTenantChat = (): Record<string, any> => ({
  ...groupChat(),
  from: sharedChannel().from,
  conversation: { ...groupChat().conversation, id: '19:fed-chat@thread.v2' },
});
/** The roster's TeamsChannelAccount of Pat, as GET /v3/conversations/{id}/members/{userId} gives it. */
const patAccount = () => ({
  id: '29:1PaTnErExTeRnAl',
  name: 'Pat Partner',
  aadObjectId: '5e5e5e5e-1111-4222-8333-944445555666',
  objectId: '5e5e5e5e-1111-4222-8333-944445555666',
  givenName: 'Pat',
  surname: 'Partner',
  email: 'pat@partner.example',
  userPrincipalName: 'pat@partner.example',
  tenantId: PARTNER,
  userRole: 'user',
});

describe("the sender's own tenant", () => {
  it("is the conversation's in a personal chat, where no roster is asked", () => {
    expect(needsRosterLookup(personal() as Partial<Activity>)).toBe(false);
    expect(senderTenantOf(personal() as Partial<Activity>)).toBe(TENANT);
  });

  it("is never the host's in a shared channel: unknown without the roster, the partner's with it", () => {
    const activity = sharedChannel() as Partial<Activity>;
    expect(conversationTenantOf(activity)).toBe(TENANT);
    expect(needsRosterLookup(activity)).toBe(true);
    expect(messageOf(normalize(sharedChannel())).tenant).toBe('');
    expect(senderTenantOf(activity, null)).toBe('');
    expect(senderTenantOf(activity, patAccount())).toBe(PARTNER);
    // The answer keeps going to the channel, in the host's tenant.
    expect(decodeRef(messageOf(normalize(sharedChannel())).replyTo)).toMatchObject({
      c: '19:shared7777@thread.tacv2;messageid=1732860444444',
      tn: TENANT,
    });
  });

  it("is the partner's in a cross-tenant group chat", () => {
    const activity = crossTenantChat() as Partial<Activity>;
    expect(needsRosterLookup(activity)).toBe(true);
    expect(rosterOf(activity)).toBe('19:fed-chat@thread.v2');
    expect(senderTenantOf(activity, patAccount())).toBe(PARTNER);
  });

  it("is unknown when the roster's account is not the sender, has no tenant, or is anonymous", () => {
    const activity = sharedChannel() as Partial<Activity>;
    expect(senderTenantOf(activity, { ...patAccount(), id: '29:someoneElse' })).toBe('');
    expect(senderTenantOf(activity, { ...patAccount(), aadObjectId: '00000000-0000-4000-8000-000000000000', objectId: undefined })).toBe(
      '',
    );
    expect(senderTenantOf(activity, { ...patAccount(), tenantId: undefined })).toBe('');
    expect(senderTenantOf(activity, { ...patAccount(), userRole: 'anonymous' })).toBe('');
    expect(senderTenantOf(activity, {})).toBe('');
  });

  it('is unknown when neither side names the account: missing ids never match each other', () => {
    const activity = sharedChannel() as Partial<Activity>;
    const tenantOnly = { tenantId: PARTNER, userRole: 'user' };
    expect(senderTenantOf({ ...activity, from: { id: activity.from!.id, name: 'Pat' } } as Partial<Activity>, tenantOnly)).toBe(''); // no Entra id on either
    expect(
      senderTenantOf({ ...activity, from: { aadObjectId: patAccount().aadObjectId } } as unknown as Partial<Activity>, {
        ...tenantOnly,
        objectId: undefined,
      }),
    ).toBe(''); // no id on either
  });

  it("asks a shared channel's own roster (the type or the membershipType says shared), a standard channel's team", () => {
    expect(rosterOf(sharedChannel() as Partial<Activity>)).toBe('19:shared7777@thread.tacv2');
    const graphShaped = {
      ...sharedChannel(),
      channelData: { ...sharedChannel().channelData, channel: { id: '19:shared7777@thread.tacv2', membershipType: 'shared' } },
    };
    expect(rosterOf(graphShaped as Partial<Activity>)).toBe('19:shared7777@thread.tacv2');
    expect(rosterOf(channel() as Partial<Activity>)).toBe('19:team@thread.tacv2');
  });

  it('is unknown when the conversation names two tenants', () => {
    const odd = { ...personal(), channelData: { tenant: { id: PARTNER } } } as Partial<Activity>;
    expect(conversationTenantOf(odd)).toBe('');
    expect(senderTenantOf(odd)).toBe('');
  });
});

describe("the roster account that names the sender's tenant", () => {
  const activity = sharedChannel() as Partial<Activity>;
  const pat = patAccount();
  const withoutAad = { ...activity, from: { ...activity.from!, aadObjectId: undefined } } as Partial<Activity>;

  it('matches the sender by its id, or by its Entra object id, either one alone', () => {
    expect(senderTenantOf(activity, { id: pat.id, tenantId: PARTNER })).toBe(PARTNER);
    expect(senderTenantOf(activity, { aadObjectId: pat.aadObjectId, tenantId: PARTNER })).toBe(PARTNER);
    expect(senderTenantOf(activity, { objectId: pat.objectId, tenantId: PARTNER })).toBe(PARTNER);
    expect(senderTenantOf(withoutAad, { id: pat.id, aadObjectId: pat.aadObjectId, tenantId: PARTNER })).toBe(PARTNER);
    expect(senderTenantOf(withoutAad, { aadObjectId: pat.aadObjectId, tenantId: PARTNER })).toBe('');
    expect(senderTenantOf(activity, { tenantId: PARTNER })).toBe('');
  });

  it('is refused when one of the two contradicts the sender, even if the other matches', () => {
    expect(senderTenantOf(activity, { id: '29:other', aadObjectId: pat.aadObjectId, tenantId: PARTNER })).toBe('');
    expect(senderTenantOf(activity, { id: pat.id, aadObjectId: '00000000-0000-4000-8000-000000000000', tenantId: PARTNER })).toBe('');
    expect(senderTenantOf(activity, { id: pat.id, objectId: '00000000-0000-4000-8000-000000000000', tenantId: PARTNER })).toBe('');
    expect(senderTenantOf(activity, { ...pat, tenantId: 42 as unknown as string })).toBe('');
    expect(senderTenantOf(activity, { ...pat, userRole: 'guest' })).toBe(PARTNER);
  });

  it("takes the conversation's tenant from either place when only one names it", () => {
    expect(conversationTenantOf({ conversation: { tenantId: TENANT } } as Partial<Activity>)).toBe(TENANT);
    expect(
      conversationTenantOf({ conversation: { tenantId: '' }, channelData: { tenant: { id: TENANT } } } as unknown as Partial<Activity>),
    ).toBe(TENANT);
    expect(
      conversationTenantOf({ conversation: { tenantId: 7 }, channelData: { tenant: { id: TENANT } } } as unknown as Partial<Activity>),
    ).toBe(TENANT);
    expect(conversationTenantOf({ channelData: {} } as unknown as Partial<Activity>)).toBe('');
    expect(conversationTenantOf({} as Partial<Activity>)).toBe('');
  });

  it("asks a group chat's own conversation even when its channel data names a team", () => {
    const chat = {
      ...groupChat(),
      channelData: { ...groupChat().channelData, channel: { id: '19:c@thread.tacv2' }, team: { id: '19:t@thread.tacv2' } },
    };
    expect(rosterOf(chat as Partial<Activity>)).toBe('19:meeting_abc123@thread.v2');
    const bare = { ...channel(), channelData: { tenant: { id: TENANT } } };
    expect(rosterOf(bare as Partial<Activity>)).toBe('19:ops0123456789abcdef@thread.tacv2');
  });
});

describe('what normalizeActivity ignores, and why', () => {
  it('names the reason', () => {
    expect(normalize({ ...personal(), type: 'conversationUpdate' })).toEqual({ ignored: 'a conversationUpdate activity' });
    expect(normalize({ ...personal(), type: 7 })).toEqual({ ignored: 'a typeless activity' });
    expect(normalize({ ...personal(), from: { name: 'x' } })).toEqual({ ignored: 'a malformed message activity (from.id)' });
    expect(normalize({ ...personal(), serviceUrl: 5 })).toEqual({ ignored: 'a malformed message activity (serviceUrl)' });
    expect(normalize({ ...personal(), from: { id: BOT } })).toEqual({ ignored: "the bot's own message" });
    expect(normalize({ ...personal(), text: '   ' })).toEqual({ ignored: 'no text' });
    expect(normalize({ ...channel(), entities: [] })).toEqual({ ignored: 'a group message without a mention of the bot' });
  });

  it('counts only a mention entity of the bot itself as a mention', () => {
    const other = { type: 'mention', text: '<at>Bob</at>', mentioned: { id: '29:bob', name: 'Bob' } };
    expect(normalize({ ...channel(), entities: [other] })).toEqual({ ignored: 'a group message without a mention of the bot' });
    expect(normalize({ ...channel(), entities: [{ type: 'clientInfo', mentioned: { id: BOT } }] })).toEqual({
      ignored: 'a group message without a mention of the bot',
    });
  });

  it("removes the bot's mention, also when its entity lacks the text, and keeps other mentions", () => {
    expect(messageOf(normalize({ ...channel(), entities: [{ type: 'mention', mentioned: { id: BOT } }] })).text).toBe('web1 restart nginx');
    const two = {
      ...channel(),
      text: '<at>Skadi</at> ping <at>Bob</at>',
      entities: [
        { type: 'mention', text: '<at>Skadi</at>', mentioned: { id: BOT } },
        { type: 'mention', text: '<at>Bob</at>', mentioned: { id: '29:bob' } },
      ],
    };
    expect(messageOf(normalize(two)).text).toBe('ping <at>Bob</at>');
    expect(messageOf(normalize({ ...personal(), text: 'web1&nbsp;uptime\u00a0now' })).text).toBe('web1 uptime now');
  });

  it('removes a mention with its text wherever it is, but one lacking it only at the start (after any spaces)', () => {
    const withText = { type: 'mention', text: '<at>Skadi</at>', mentioned: { id: BOT } };
    const inside = (entities: unknown[]) => messageOf(normalize({ ...channel(), text: 'ping <at>Skadi</at> now', entities })).text;
    // botbuilder removes the mention's text and leaves the spaces around it.
    expect(inside([withText, { type: 'clientInfo', locale: 'en-US' }])).toBe('ping  now');
    // Another person's mention lacking its text does not change how the bot's own is removed.
    expect(inside([withText, { type: 'mention', mentioned: { id: '29:bob' } }])).toBe('ping  now');
    const lacking = (text: string) =>
      messageOf(normalize({ ...channel(), text, entities: [{ type: 'mention', mentioned: { id: BOT } }] })).text;
    expect(lacking('  <at>Skadi</at> web1 ls')).toBe('web1 ls');
    expect(lacking('web1 <at>Skadi</at> ls')).toBe('web1 <at>Skadi</at> ls');
    expect(lacking('x<at>Skadi</at> ls')).toBe('x<at>Skadi</at> ls');
  });

  it('takes Approve and Deny on a card as the command, remembering the card, only with a job id', () => {
    const job = '01KABCDEFGHJKMNPQRSTVWXYZ0';
    const card = (value: unknown) => ({ ...channel(), text: undefined, entities: [], replyToId: '1732860999999', value });
    const approved = messageOf(normalize(card({ skadi: 'approve', job })));
    expect(approved.text).toBe(`approve ${job}`);
    expect(decodeRef(approved.decides!)).toMatchObject({ m: '1732860999999' });
    expect(messageOf(normalize(card({ skadi: 'deny', job }))).text).toBe(`deny ${job}`);
    for (const value of [
      { skadi: 'cancel', job },
      { skadi: 'approve', job: job.toLowerCase() },
      { skadi: 'approve', job: `${job}0` },
      { skadi: 'approve', job: `x${job.slice(1)}!` },
      { skadi: 'approve' },
      null,
    ]) {
      expect(normalize(card(value))).toEqual({ ignored: 'a group message without a mention of the bot' });
    }
    expect(messageOf(normalize({ ...personal(), text: 'web1 uptime' })).decides).toBeUndefined();
  });
});
