/**
 * Requests exactly as hack-fan/skadigo sends them (its headers, its JSON bodies byte for byte) against a real
 * `skadi serve`: AddDelayedJob and AddJobToOther get the answers the original server gave.
 */
import { eventually } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { call } from '../helpers/http';

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway();
  await gw.addAgent('other'); // known, never polls: offline
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

/** One skadigo request: its roundTripper's two headers, Go's default User-Agent and Accept-Encoding, and Go's JSON. */
function skadigo(path: string, json: string) {
  const headers = {
    authorization: `Bearer ${gw.agentToken}`,
    'content-type': 'application/json',
    'user-agent': 'Go-http-client/1.1',
    'accept-encoding': 'gzip',
  };
  return call(gw.base, 'POST', path, { headers, body: json });
}

/** The delayed_jobs row of an id, as stored. */
async function delayedRow(id: string) {
  const [rows] = await gw.core.db.pool.query<any[]>('SELECT agent_id, message, source, callback FROM delayed_jobs WHERE id = ?', [id]);
  return rows[0];
}

describe('AddDelayedJob: POST /agent/job/delayed', () => {
  it('makes a job for the calling agent with the whole text, even when its first word names another agent', async () => {
    const res = await skadigo('/agent/job/delayed', '{"message":"other routed","duration":"3s"}');
    expect(res.status).toBe(201); // skadigo takes any status below 400 as success and reads no body
    expect(res.body.agent).toBe(gw.agentName);
    expect(await delayedRow(res.body.id)).toMatchObject({ agent_id: gw.agentId, message: 'other routed', callback: null });
  });

  it('AddDelayedJobSilent and AddDelayedJobWithCallback: Go duration strings and the callback field', async () => {
    const silent = await skadigo('/agent/job/delayed', '{"message":"other quiet","duration":"1m30s","callback":"disable"}');
    expect(silent.status).toBe(201);
    expect(await delayedRow(silent.body.id)).toMatchObject({ agent_id: gw.agentId, message: 'other quiet', callback: 'disable' });
    const hooked = await skadigo('/agent/job/delayed', '{"message":"backup","duration":"1.5s","callback":"https://example.com/hook"}');
    expect(hooked.status).toBe(201);
    expect(await delayedRow(hooked.body.id)).toMatchObject({
      agent_id: gw.agentId,
      message: 'backup',
      callback: 'https://example.com/hook',
    });
  });
});

describe('AddJobToOther: POST /agent/job/add', () => {
  it('answers 400 InvalidAgent for an offline agent, as the original, and stores nothing', async () => {
    const res = await skadigo('/agent/job/add', '{"message":"other vacuum"}');
    expect({ status: res.status, body: res.body }).toEqual({
      status: 400,
      body: { error: 'InvalidAgent', message: 'target agent is offline or invalid' },
    });
    expect(await gw.jobCount('other')).toBe(0);
  });

  it('answers 404 AgentNotFound for a name the user has no agent for', async () => {
    const res = await skadigo('/agent/job/add', '{"message":"nosuch vacuum"}');
    expect(res).toMatchObject({ status: 404, body: { error: 'AgentNotFound' } });
  });

  it('answers 201 and the other agent gets the job once it is online', async () => {
    const got: string[] = [];
    const other = await gw.startAgent((job) => (got.push(job.message), 'done'), 'other');
    try {
      const res = await skadigo('/agent/job/add', '{"message":"other vacuum"}');
      expect(res.status).toBe(201);
      expect(await gw.waitJob(res.body.id)).toMatchObject({ status: 'succeeded', message: 'vacuum', source: `agent:${gw.agentName}` });
      await eventually(() => got.includes('vacuum'), 10_000, 'the other agent to run the job');
    } finally {
      await other.stop();
    }
  });

  it('the user route still records a push to an offline agent as 201 expired', async () => {
    const res = await call(gw.base, 'POST', '/job/add', { token: gw.userToken, body: { message: 'nowhere uptime' } });
    expect(res.status).toBe(404);
    await gw.addAgent('later');
    const offline = await call(gw.base, 'POST', '/job/add', { token: gw.userToken, body: { message: 'later uptime' } });
    expect(offline).toMatchObject({ status: 201, body: { status: 'expired' } });
  });
});
