/** A local stand-in for Slack's Web API (the real @slack/web-api client talks to it), recording every call; used by tests and the Slack benchmark. */
import crypto from 'node:crypto';
import http from 'node:http';

/** One recorded Web API call. */
export interface SlackCall {
  method: string;
  args: Record<string, any>;
  at: number;
  status: number;
  /** The JSON the fake answered (e.g. the ts of a posted message). */
  answer: Record<string, unknown>;
}

/** A scripted answer: an HTTP status, headers, and a JSON body. */
export interface ScriptedAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
  delayMs?: number;
}

/** The fake API server. */
export interface FakeSlack {
  url: string;
  calls: SlackCall[];
  /** Answers the next calls of a method with these (in order) before answering normally. */
  script(method: string, ...answers: ScriptedAnswer[]): void;
  /** Answers every call matching a predicate this way (until cleared). */
  always(predicate: (method: string, args: Record<string, any>) => boolean, answer: ScriptedAnswer | null): void;
  posts(): SlackCall[];
  /** Calls fn after each recorded call. */
  onCall(fn: (call: SlackCall) => void): void;
  close(): Promise<void>;
}

/** Starts the fake on a free loopback port. */
export async function startFakeSlack(team = 'T0TEST'): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const listeners: ((call: SlackCall) => void)[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  let rule: { predicate: (m: string, a: Record<string, any>) => boolean; answer: ScriptedAnswer } | null = null;
  let ts = 1_700_000_000;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      const method = (req.url ?? '').replace(/^\/(api\/)?/, '').split('?')[0];
      const args: Record<string, any> = (req.headers['content-type'] ?? '').includes('json')
        ? JSON.parse(raw || '{}')
        : Object.fromEntries(new URLSearchParams(raw));
      const scripted = scripts.get(method)?.shift() ?? (rule?.predicate(method, args) ? rule.answer : null);
      if (scripted?.delayMs) await new Promise((r) => setTimeout(r, scripted.delayMs));
      let status = 200;
      let body: Record<string, unknown>;
      if (scripted) {
        status = scripted.status ?? 200;
        body = scripted.body ?? { ok: status === 200 };
        for (const [k, v] of Object.entries(scripted.headers ?? {})) res.setHeader(k, v);
      } else if (method === 'auth.test') {
        body = { ok: true, user_id: 'UBOT', bot_id: 'BBOT', team_id: team, team: 'Test' };
      } else if (method === 'chat.postMessage') {
        body = { ok: true, channel: args.channel, ts: `${++ts}.000100`, message: { text: args.text } };
      } else if (method === 'chat.update') {
        body = { ok: true, channel: args.channel, ts: args.ts };
      } else if (method === 'conversations.open') {
        body = { ok: true, channel: { id: `D${args.users}` } };
      } else {
        body = { ok: true };
      }
      const call = { method, args, at: Date.now(), status: status === 200 && body.ok ? 200 : status === 200 ? 400 : status, answer: body };
      calls.push(call);
      for (const fn of listeners) fn(call);
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/api/`,
    calls,
    script(method, ...answers) {
      scripts.set(method, [...(scripts.get(method) ?? []), ...answers]);
    },
    always(predicate, answer) {
      rule = answer ? { predicate, answer } : null;
    },
    posts: () => calls.filter((c) => c.method === 'chat.postMessage' && c.status === 200),
    onCall: (fn) => void listeners.push(fn),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Signs a request body as Slack does (v0 signature). */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return 'v0=' + crypto.createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex');
}

/** POSTs a signed request to /slack/events; `timestamp` lets a test send a stale one. */
export async function postToSlackEndpoint(
  base: string,
  secret: string,
  body: string,
  contentType: string,
  options: { timestamp?: number; headers?: Record<string, string>; badSignature?: boolean } = {},
): Promise<{ status: number; text: string }> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = options.badSignature ? slackSignature('wrong-secret', timestamp, body) : slackSignature(secret, timestamp, body);
  const res = await fetch(`${base}/slack/events`, {
    method: 'POST',
    body,
    headers: {
      'content-type': contentType,
      'x-slack-signature': signature,
      'x-slack-request-timestamp': String(timestamp),
      ...options.headers,
    },
  });
  return { status: res.status, text: await res.text() };
}

/** A slash command body as Slack sends it (form-encoded). */
export function slashCommandBody(fields: { team: string; user: string; channel: string; text: string; command?: string }): string {
  return new URLSearchParams({
    token: 'legacy',
    team_id: fields.team,
    team_domain: 'test',
    channel_id: fields.channel,
    channel_name: 'ops',
    user_id: fields.user,
    user_name: 'alice',
    command: fields.command ?? '/skadi',
    text: fields.text,
    response_url: 'http://127.0.0.1:1/none',
    trigger_id: `trig.${crypto.randomBytes(6).toString('hex')}`,
    api_app_id: 'A0TEST',
  }).toString();
}

/** An Events API envelope for one event. */
export function eventBody(
  team: string,
  event: Record<string, unknown>,
  eventId = `Ev${crypto.randomBytes(5).toString('hex').toUpperCase()}`,
): string {
  return JSON.stringify({
    token: 'legacy',
    team_id: team,
    api_app_id: 'A0TEST',
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    event,
  });
}
