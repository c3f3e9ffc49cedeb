/** Long polls over HTTP: a vanished client never gets a job, a changed token ends its polls, and one agent cannot hold many. */
import net from 'node:net';
import type { Core } from '../../cloud/core';
import type { HttpServer } from '../../agent-api/server';
import { dropNamespace, eventually, openServer, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { call } from '../helpers/http';

const name = uniqueName();
let core: Core;
let http: HttpServer;
let base: string;
let seq = 0;

beforeAll(async () => {
  ({ core, http, base } = await openServer(testConfig(name, { maxPollsPerAgent: 4 })));
});
afterAll(async () => {
  await http.close();
  await core.close();
  await dropNamespace(name);
});

/** A fresh user and agent; the agent has polled once, so it is online. */
async function freshAgent() {
  seq++;
  const made = await userWithAgent(core, `u${seq}`, `a${seq}`);
  expect((await call(base, 'GET', '/agent/job', { token: made.agentToken })).status).toBe(204);
  return { ...made, agentName: made.agent.name };
}

/** How many GET /agent/job requests this node has answered with a status. */
async function pollsAnswered(status: number): Promise<number> {
  const text = (await call(base, 'GET', '/metrics')).body as string;
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`skadi_http_request_duration_seconds_count{method="GET",route="/agent/job",status="${status}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('long polls', () => {
  it('never hands a job to a poll whose client closed its connection right after sending', async () => {
    const { agentName, agentToken, userToken } = await freshAgent();
    const before = await pollsAnswered(204);
    await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<void>((resolve, reject) => {
            const socket = net.connect(http.port, '127.0.0.1', () => {
              socket.write(`GET /agent/job?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agentToken}\r\n\r\n`, () => {
                socket.destroy();
                resolve();
              });
            });
            socket.on('error', reject);
          }),
      ),
    );
    // Every one of them is answered at once (the client is gone), none is left waiting.
    await eventually(async () => (await pollsAnswered(204)) - before >= 50, 10_000, 'the 50 abandoned polls to be answered');
    expect(core.dispatcher.waiting).toBe(0);
    const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: `${agentName} after the abandoned polls` } });
    expect(pushed.status).toBe(201);
    expect(await call(base, 'GET', '/agent/job?wait=5', { token: agentToken })).toMatchObject({
      status: 200,
      body: { id: pushed.body.id },
    });
  });

  it.each([
    ['its token is rotated', (userId: number, agent: string) => core.agents.rotateToken(userId, agent)],
    ['it is disabled', (userId: number, agent: string) => core.agents.setAvailable(userId, agent, false)],
    ['it is removed', (userId: number, agent: string) => core.agents.remove(userId, agent)],
  ])(
    'ends an agent’s waiting polls when %s',
    async (_, change) => {
      const { user, agentName, agentToken } = await freshAgent();
      // The poll waits a minute, longer than this test may take: its answer comes from the change, not its wait's end.
      const poll = call(base, 'GET', '/agent/job?wait=60', { token: agentToken });
      await eventually(() => core.dispatcher.waiting === 1, 5000, 'the poll to wait');
      await change(user.id, agentName);
      expect((await poll).status).toBe(204);
      expect((await call(base, 'GET', '/agent/job', { token: agentToken })).status).toBeGreaterThanOrEqual(401);
    },
    45_000,
  );

  it('holds at most max_polls_per_agent polls of one agent: a further one answers the oldest with 204', async () => {
    const { agentToken } = await freshAgent();
    const polls: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 4; i++) {
      polls.push(call(base, 'GET', '/agent/job?wait=30', { token: agentToken }));
      await eventually(() => core.dispatcher.waiting === i + 1, 5000, `poll ${i + 1} to wait`);
    }
    const fifth = call(base, 'GET', '/agent/job?wait=1', { token: agentToken });
    expect((await polls[0]).status).toBe(204); // the oldest made room
    expect((await fifth).status).toBe(204); // its own 1 s wait ended
    expect(core.dispatcher.waiting).toBe(3);
    core.dispatcher.stop(); // answer the rest now
    await Promise.all(polls);
    core.dispatcher.start();
  });
});
