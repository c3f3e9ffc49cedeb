/** Access policies end to end: signed Slack requests to real `skadi serve` processes in workspace and open mode. */
import { eventually } from '../helpers/env';
import { postToSlackEndpoint, slashCommandBody, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { startGateway, type Gateway } from '../helpers/gateway';

const SECRET = 'access-signing-secret';
let slack: FakeSlack;
const gateways: Gateway[] = [];

beforeAll(async () => {
  slack = await startFakeSlack('TWORK');
});
afterAll(async () => {
  for (const gw of gateways) await gw.stop();
  await slack?.close();
});

/** A gateway whose Slack channel runs under the given access settings. */
async function gatewayWith(access: Record<string, string>): Promise<Gateway> {
  const gw = await startGateway({
    SKADI_SLACK_SIGNING_SECRET: SECRET,
    SKADI_SLACK_BOT_TOKEN: 'xoxb-access',
    SKADI_SLACK_API_URL: slack.url,
    SKADI_NOTIFY_PACE: '20ms',
    ...access,
  });
  gateways.push(gw);
  return gw;
}

let channelSeq = 0;
/** Sends `status` as a user of a team (optionally a Slack Connect guest of another) and returns the answer's text. */
async function statusAs(gw: Gateway, team: string, user: string, guestOf?: string): Promise<string> {
  const channel = `CACC${++channelSeq}`;
  const fields = { team: guestOf ?? team, user, channel, text: 'status' };
  const body = new URLSearchParams([
    ...new URLSearchParams(slashCommandBody(fields)),
    ...(guestOf ? [['user_team_id', team]] : []),
  ]).toString();
  expect((await postToSlackEndpoint(gw.base, SECRET, body, 'application/x-www-form-urlencoded')).status).toBe(200);
  const post = await eventually(() => slack.posts().find((p) => p.args.channel === channel), 15_000, `the answer in ${channel}`);
  return String(post.args.text);
}

const NO_AGENTS = 'You have no agents yet';

describe('access policies over Slack', () => {
  it('workspace: members of an allowed team act as the team’s shared user; other teams and Slack Connect guests are refused', async () => {
    const gw = await gatewayWith({ SKADI_SLACK_ACCESS: 'workspace', SKADI_SLACK_ALLOWED_TEAMS: 'TWORK' });
    expect(await statusAs(gw, 'TWORK', 'UANN')).toContain(NO_AGENTS);
    expect(await statusAs(gw, 'TWORK', 'UBEN')).toContain(NO_AGENTS);
    expect(await statusAs(gw, 'TOTHER', 'UEVE')).toContain('This workspace (TOTHER) is not allowed to use Skadi');
    expect(await statusAs(gw, 'TEXTERNAL', 'UGUEST', 'TWORK')).toContain('This workspace (TEXTERNAL) is not allowed to use Skadi');
    const linked = (await gw.core.identities.list(null)).filter((i) => i.channel === 'slack');
    expect(linked.map((i) => `${i.tenant}:${i.externalId}`).sort()).toEqual(['TWORK:UANN', 'TWORK:UBEN']);
    expect(new Set(linked.map((i) => i.userId)).size).toBe(1); // one shared user: slack-TWORK
    expect(linked.every((i) => i.automatic)).toBe(true);
  });

  it('workspace with an empty allowed-teams list: every team is allowed, each as its own shared user', async () => {
    const gw = await gatewayWith({ SKADI_SLACK_ACCESS: 'workspace', SKADI_SLACK_ALLOWED_TEAMS: '' });
    expect(await statusAs(gw, 'TONE', 'U1')).toContain(NO_AGENTS);
    expect(await statusAs(gw, 'TTWO', 'U2')).toContain(NO_AGENTS);
    const names = (await gw.core.users.list()).map((u) => u.name);
    expect(names).toEqual(expect.arrayContaining(['slack-TONE', 'slack-TTWO']));
  });

  it('open: the first message of an account creates a user for it', async () => {
    const gw = await gatewayWith({ SKADI_SLACK_ACCESS: 'open' });
    expect(await statusAs(gw, 'TANY', 'UFIRST')).toContain(NO_AGENTS);
    expect(await statusAs(gw, 'TANY', 'USECOND')).toContain(NO_AGENTS);
    const identities = (await gw.core.identities.list(null)).filter((i) => i.tenant === 'TANY');
    expect(identities).toHaveLength(2);
    expect(identities[0].userId).not.toBe(identities[1].userId);
  });

  it('forgets processed message ids after 24 hours, not before', async () => {
    const gw = gateways[0];
    const now = Date.now();
    await gw.core.db.pool.query('INSERT INTO processed_messages (channel, message_id, created_at) VALUES ?', [
      [
        ['slack', 'old-delivery', new Date(now - 25 * 3_600_000)],
        ['slack', 'recent-delivery', new Date(now - 23 * 3_600_000)],
      ],
    ]);
    await gw.core.reconciler.reconcileOnce();
    const [rows] = await gw.core.db.pool.query(
      "SELECT message_id FROM processed_messages WHERE message_id IN ('old-delivery', 'recent-delivery')",
    );
    expect((rows as { message_id: string }[]).map((r) => r.message_id)).toEqual(['recent-delivery']);
  });
});
