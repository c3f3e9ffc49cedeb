/**
 * The Teams sender's own tenant, end to end: in a shared channel and in a group chat with people of other
 * organizations the conversation is the host's, so the gateway asks the roster (the Bot Connector's
 * /v3/conversations/{id}/members/{userId}, on the local fake) for the sender's tenant. A sender whose tenant cannot
 * be established is unknown: only an identity an admin linked may act. The host's tenant is never used for them.
 */
import { eventually } from '../helpers/env';
import { messageActivity, postActivity, startFakeTeams, TENANT, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway } from '../helpers/gateway';

const PARTNER = '99999999-8888-4777-8666-555555555555';
const HOST_USER = `teams-${TENANT}`;
const SHARED_ROSTER = '19:shared-partners@thread.tacv2';

let teams: FakeTeams;
let hostOnly: Gateway; // workspace mode, only the host tenant allowed
let everyTenant: Gateway; // workspace mode, every tenant allowed

beforeAll(async () => {
  teams = await startFakeTeams();
  const settings = { ...teams.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_TEAMS_ACCESS: 'workspace' };
  [hostOnly, everyTenant] = await Promise.all([startGateway({ ...settings, SKADI_TEAMS_ALLOWED_TENANTS: TENANT }), startGateway(settings)]);
  teams.members.set('29:teams-aad-pat', { tenantId: PARTNER }); // Pat works for the partner organization
  teams.members.set('29:teams-aad-ghost', null); // the roster does not know Gus
  teams.members.set('29:teams-aad-gert', null); // nor Gert
  teams.members.set('29:teams-aad-flaky', 403); // the roster refuses to answer about Fay
}, 60_000);

afterAll(async () => {
  await hostOnly?.stop();
  await everyTenant?.stop();
  await teams?.close();
});

let seq = 0;
/** A person writes to the bot (a mention in a shared channel by default) and the first answer that contains `expect` is returned. */
async function say(
  gw: Gateway,
  from: string,
  text: string,
  expected: string,
  kind: 'shared' | 'groupChat' | 'personal' = 'shared',
): Promise<string> {
  const id = `1800000${Date.now()}${++seq}`;
  const activity = messageActivity(teams, {
    kind: kind === 'shared' ? 'channel' : kind,
    shared: kind === 'shared',
    text,
    from,
    id,
    ...(kind === 'groupChat' ? { conversationId: `19:cross-tenant-${id}@thread.v2` } : {}),
  });
  expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
  const answer = await eventually(
    () =>
      teams.calls.find(
        (c) => c.conversationId === activity.conversation.id && c.method === 'POST' && String(c.body.text).includes(expected),
      ),
    15_000,
    `the answer to ${from}: ${text}`,
  );
  return String(answer.body.text);
}

async function agentNames(gw: Gateway, userId: number): Promise<string[]> {
  return (await gw.core.agents.statuses(userId)).map((s) => s.agent.name);
}

async function teamsIdentities(gw: Gateway): Promise<string[]> {
  return (await gw.core.identities.list(null)).filter((i) => i.channel === 'teams').map((i) => `${i.tenant}:${i.externalId}`);
}

describe("the Teams sender's own tenant", () => {
  it("asks the shared channel's own roster, with the bot's token, and lets a member of the host act as the host", async () => {
    expect(await say(hostOnly, 'aad-ann', 'status', 'no agents yet')).toContain('You have no agents yet');
    const asked = teams.memberLookups.filter((l) => l.userId === '29:teams-aad-ann');
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.map((l) => l.conversationId)).toEqual(asked.map(() => SHARED_ROSTER));
    for (const lookup of asked) expect(teams.issuedTokens.map((t) => `Bearer ${t}`)).toContain(lookup.authorization);
    expect(await teamsIdentities(hostOnly)).toEqual([`${TENANT}:aad-ann`]);
  });

  it('refuses a partner in a shared channel when only the host is allowed: no agent, no approval, no link', async () => {
    const ann = await hostOnly.core.users.byName(HOST_USER);
    await say(hostOnly, 'aad-ann', 'agent add web9', 'web9', 'personal');
    await hostOnly.core.agents.setApprovalPatterns(ann.id, 'web9', ['deploy *']);
    const request = await say(hostOnly, 'aad-ann', 'web9 deploy prod', '🔐', 'personal');
    const jobId = /\b([0-9A-Z]{26})\b/.exec(request)![1];
    expect(await say(hostOnly, 'aad-pat', 'agent add evil', 'not allowed')).toContain(
      `This workspace (${PARTNER}) is not allowed to use Skadi`,
    );
    expect(await say(hostOnly, 'aad-pat', `approve ${jobId}`, 'not allowed')).toContain(`skadi identity link teams:${PARTNER}:aad-pat`);
    expect(await agentNames(hostOnly, ann.id)).toEqual(['web9']);
    expect((await hostOnly.core.jobs.get(jobId, ann.id)).status).toBe('awaiting_approval');
    expect(await teamsIdentities(hostOnly)).toEqual([`${TENANT}:aad-ann`]);
  });

  it("refuses a partner in a cross-tenant group chat the host started, naming the partner's tenant", async () => {
    const refusal = await say(hostOnly, 'aad-pat', 'status', 'not allowed', 'groupChat');
    expect(refusal).toContain(PARTNER);
    expect(refusal).not.toContain(`teams:${TENANT}:aad-pat`);
    expect(teams.memberLookups.some((l) => l.userId === '29:teams-aad-pat' && l.conversationId.startsWith('19:cross-tenant-'))).toBe(true);
  });

  it("with every tenant allowed, gives a partner the shared user of the partner's own tenant, never the host's", async () => {
    await say(everyTenant, 'aad-ann', 'status', 'no agents yet');
    await say(everyTenant, 'aad-pat', 'agent add partner1', 'partner1');
    const host = await everyTenant.core.users.byName(HOST_USER);
    const partner = await everyTenant.core.users.byName(`teams-${PARTNER}`);
    expect(await agentNames(everyTenant, host.id)).toEqual([]);
    expect(await agentNames(everyTenant, partner.id)).toEqual(['partner1']);
    expect((await teamsIdentities(everyTenant)).sort()).toEqual([`${PARTNER}:aad-pat`, `${TENANT}:aad-ann`].sort());
  });

  it.each([
    ['the roster does not know them', 'aad-ghost'],
    ['the roster refuses to answer', 'aad-flaky'],
  ])('treats a sender as unknown when %s: refused even with every tenant allowed, until an admin links them', async (_why, person) => {
    const refusal = await say(everyTenant, person, 'status', 'could not tell');
    expect(refusal).toContain(`skadi identity link teams::${person} --user <name>`);
    expect((await teamsIdentities(everyTenant)).filter((i) => i.endsWith(`:${person}`))).toEqual([]);
    await everyTenant.core.users.create(`linked-${person}`);
    await everyTenant.core.identities.link(`teams::${person}`, `linked-${person}`);
    expect(await say(everyTenant, person, 'status', 'no agents yet')).toContain('You have no agents yet');
  });

  it('never opens a personal chat for a sender of unknown tenant: asked for a token in the channel, says why and shows none', async () => {
    await everyTenant.core.users.create('gert');
    await everyTenant.core.identities.link('teams::aad-gert', 'gert');
    const opened = teams.calls.filter((c) => c.method === 'POST' && c.path === '/teams/v3/conversations').length;
    const answer = await say(everyTenant, 'aad-gert', 'token', 'could not send you a private message');
    expect(answer).toContain("the person's organization is not known");
    expect(answer).not.toMatch(/sku_/);
    expect(teams.calls.filter((c) => c.method === 'POST' && c.path === '/teams/v3/conversations').length).toBe(opened);
  });
});
