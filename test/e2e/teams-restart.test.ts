/** Teams: the gateway restarted between a command's acknowledgement and its job's end still answers in that conversation. */
import { eventually } from '../helpers/env';
import { call } from '../helpers/http';
import { messageActivity, postActivity, startFakeTeams, TENANT, type FakeTeams } from '../helpers/fake-teams';
import { startGateway, type Gateway } from '../helpers/gateway';
import { startServe, stopChild } from '../helpers/process';

let teams: FakeTeams;
let gw: Gateway;

beforeAll(async () => {
  teams = await startFakeTeams();
  gw = await startGateway({ ...teams.settings(), SKADI_NOTIFY_PACE: '20ms' });
  await gw.core.identities.link(`teams:${TENANT}:aad-alice`, 'ops', 'alice');
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await teams?.close();
});

it('delivers the result from the stored conversation reference after a restart', async () => {
  // The agent polls once, so that it is online, and takes the job by hand below.
  expect((await call(gw.base, 'GET', '/agent/job?wait=0', { token: gw.agentToken })).status).toBe(204);
  const activity = messageActivity(teams, { kind: 'channel', text: 'web1 deploy v2', id: '1700000000777' });
  expect((await postActivity(gw.base, activity, teams.token())).status).toBe(200);
  const thread = activity.conversation.id;
  const inThread = (method: string) =>
    teams.calls.filter((c) => c.conversationId === thread && c.method === method && String(c.body.text).includes('deploy v2'));
  await eventually(() => inThread('POST').length === 1, 10_000, 'the acknowledgement');
  const taken = await call(gw.base, 'GET', '/agent/job?wait=10', { token: gw.agentToken });
  expect(taken.status).toBe(200);

  expect(await stopChild(gw.child)).toBe(0);
  const callsBefore = teams.calls.length;
  const second = await startServe(gw.env);
  try {
    const base = `http://127.0.0.1:${second.port}`;
    expect(
      (await call(base, 'PUT', `/agent/jobs/${taken.body.id}/succeed`, { token: gw.agentToken, body: { result: 'deployed v2' } })).status,
    ).toBe(204);
    const [result] = await eventually(
      () => inThread('POST').length >= 2 && inThread('POST').slice(1),
      15_000,
      'the result after the restart',
    );
    expect(result.body.text).toContain('✅ web1: `deploy v2` — succeeded');
    expect(result.body.text).toContain('deployed v2');
    expect(teams.calls.indexOf(result)).toBeGreaterThanOrEqual(callsBefore);
    const ackId = teams.postedIds.get(inThread('POST')[0]);
    await eventually(
      () => inThread('PUT').some((u) => u.activityId === ackId && String(u.body.text).includes('succeeded')),
      10_000,
      'the acknowledgement updated',
    );
  } finally {
    await stopChild(second.child);
  }
}, 60_000);
