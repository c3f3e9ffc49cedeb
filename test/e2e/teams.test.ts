/**
 * Teams end to end: a real `skadi serve` with botbuilder, a real SDK agent, and a local fake of the Microsoft side
 * (OpenID metadata and keys, the token endpoint, the Bot Connector). Tokens are signed here with node:crypto.
 */
import { Agent } from '../../agent/sdk';
import { eventually } from '../helpers/env';
import { APP_ID, messageActivity, otherKey, postActivity, startFakeTeams, TENANT, type ConnectorCall, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway } from '../helpers/gateway';

let teams: FakeTeams;
let gw: Gateway;
let agent: Agent;
let agentRun: Promise<void>;

function startAgent(): void {
  agent = new Agent({ server: gw.base, token: gw.agentToken });
  agentRun = agent.start(async (job) => {
    if (job.message.startsWith('slow')) await new Promise((r) => setTimeout(r, 300));
    return `output of ${job.message}`;
  });
}

beforeAll(async () => {
  teams = await startFakeTeams();
  gw = await startGateway({ ...teams.settings(), SKADI_NOTIFY_PACE: '20ms', SKADI_NOTIFY_RETRY_BASE: '100ms' });
  await gw.core.identities.link(`teams:${TENANT}:aad-alice`, 'ops', 'alice');
  startAgent();
  const [row] = await gw.core.agents.list(null);
  await eventually(() => gw.core.agents.isOnline(row.id), 10_000, 'the agent to poll');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await agentRun;
  await gw?.stop();
  await teams?.close();
});

/** The connector calls into a conversation (new messages and updates) that mention a text, in order. */
const callsIn = (conversationId: string, about: string): ConnectorCall[] =>
  teams.calls.filter((c) => c.conversationId === conversationId && String(c.body.text ?? '').includes(about));
const posts = (conversationId: string, about: string) => callsIn(conversationId, about).filter((c) => c.method === 'POST');
const updates = (conversationId: string, about: string) => callsIn(conversationId, about).filter((c) => c.method === 'PUT');

async function jobCount(): Promise<number> {
  return (await gw.core.jobs.list(null, null, 1000)).length;
}

describe('Teams', () => {
  it('runs a personal message: acknowledgement, updated in place, and the output in that conversation', async () => {
    const activity = messageActivity(teams, { text: 'web1 slow uptime', from: 'aad-alice' });
    const res = await postActivity(gw.base, activity, teams.token());
    expect(res.status).toBe(200);
    const conversation = activity.conversation.id;
    const [ack, result] = await eventually(() => posts(conversation, 'slow uptime').length >= 2 && posts(conversation, 'slow uptime'), 15_000, 'ack and result');
    expect(ack.body.text).toContain('⏳ web1: `slow uptime`');
    expect(result.body.text).toContain('✅ web1: `slow uptime` — succeeded');
    expect(result.body.text).toContain('```\noutput of slow uptime\n```');
    const edits = await eventually(
      () => updates(conversation, 'slow uptime').some((u) => String(u.body.text).includes('succeeded')) && updates(conversation, 'slow uptime'),
      10_000,
      'the acknowledgement to show the end',
    );
    // Every update is of the acknowledgement, whose id the connector gave when it was posted.
    expect(new Set(edits.map((u) => u.activityId))).toEqual(new Set([teams.postedIds.get(ack)]));
  });

  it('sends every connector call with a bearer token from the login endpoint', async () => {
    expect(teams.calls.length).toBeGreaterThan(0);
    expect(teams.issuedTokens.length).toBeGreaterThan(0);
    for (const call of teams.calls) expect(teams.issuedTokens.map((t) => `Bearer ${t}`)).toContain(call.authorization);
    expect(teams.refusedTokenRequests).toBe(0);
  });
});
