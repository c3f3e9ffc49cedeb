/** Slack over Socket Mode: the real Bolt client connects to a local stand-in of Slack's WebSocket endpoint. */
import crypto from 'node:crypto';
import pino from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { createSlackAdapter } from '../../adapters/slack';
import type { Core } from '../../cloud/core';
import { dropNamespace, eventually, openCore, testConfig, uniqueName, userWithAgent } from '../helpers/env';
import { startFakeSlack, type FakeSlack } from '../helpers/fake-slack';

const name = uniqueName();
let core: Core;
let slack: FakeSlack;
let wss: WebSocketServer;
let socket: WebSocket | null = null;
const acks: string[] = [];

beforeAll(async () => {
  core = await openCore(testConfig(name, { notifyPaceMs: 10 }), true);
  slack = await startFakeSlack('TSOCK');
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    socket = ws;
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.envelope_id) acks.push(msg.envelope_id);
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A0SOCK' }, debug_info: { host: 'local' } }));
  });
  const port = (wss.address() as { port: number }).port;
  slack.always((method) => method === 'apps.connections.open', { body: { ok: true, url: `ws://127.0.0.1:${port}/link` } });
});
afterAll(async () => {
  await core.close();
  for (const client of wss.clients) client.terminate();
  wss.close();
  await slack.close();
  await dropNamespace(name);
});

describe('Slack Socket Mode', () => {
  it('receives a slash command over the socket, acknowledges it, and answers through the Web API', async () => {
    const { user } = await userWithAgent(core, 'ops', 'web1');
    await core.identities.link('slack:TSOCK:UALICE', user.name);
    const adapter = createSlackAdapter(
      {
        signingSecret: '',
        botToken: 'xoxb-test',
        apiUrl: slack.url,
        access: 'closed',
        allowedTeams: [],
        socketMode: true,
        appToken: 'xapp-test',
        botUserId: 'UBOT',
        allowBots: false,
      },
      pino({ level: 'silent' }),
    );
    await core.startNotifier([adapter]);
    await adapter.start(core.chatHandler(adapter), core.adapterServices);
    try {
      await eventually(() => socket !== null, 10_000, 'the socket connection');
      const envelope = crypto.randomUUID();
      socket!.send(
        JSON.stringify({
          envelope_id: envelope,
          type: 'slash_commands',
          accepts_response_payload: true,
          payload: {
            team_id: 'TSOCK',
            channel_id: 'CSOCK',
            channel_name: 'ops',
            user_id: 'UALICE',
            user_name: 'alice',
            command: '/skadi',
            text: 'status',
            trigger_id: 'trig.sock.1',
            api_app_id: 'A0SOCK',
          },
        }),
      );
      await eventually(() => acks.includes(envelope), 10_000, 'the envelope acknowledgement');
      const reply = await eventually(() => slack.posts().find((c) => c.args.channel === 'CSOCK'), 10_000, 'the answer');
      expect(reply.args.text).toContain('⚪ web1 — offline');
      expect(slack.calls.some((c) => c.method === 'apps.connections.open')).toBe(true);
    } finally {
      await adapter.stop();
    }
  });
});
