/**
 * Schema-driven fuzzing of every route of the HTTP API, with valid credentials: each request starts from a valid one
 * built from the route's own zod schemas (agent-api/schemas.ts) and changes one thing: a field gets a wrong type or
 * an extreme value, or goes missing; an unknown field is added; the body is malformed; a query parameter or the job id
 * in the path is wrong (including jobs that exist but belong to another agent or user).
 *
 * For every request: never a 5xx; a 4xx carries the JSON error body {error, message}; a body past the limit gets
 * 413; input the route's schema rejects gets a 4xx; the server still answers /healthz; and nothing is lost or half
 * done: the job the request was about is in the state the answer says (unchanged after a 4xx), nothing is created by
 * a refused request, and jobs of others that the request named are untouched. After each route, jobs pushed before
 * the fuzzing are still retrievable in their state.
 *
 * The routes come from the @koa/router instances of the running app; ROUTES says for each only what the router and
 * schemas cannot (credential, schemas used, what a valid job id is, what a success does). The fields, their valid
 * values and their mutations are derived from the schemas, so a new field is fuzzed without editing this file, and a
 * new route fails the table check until it is added here.
 *
 * SKADI_FUZZ_RUNS: random runs per route on top of the fixed list of mutations (default 10);
 * SKADI_FUZZ_SEED: the seed (fixed by default, so a run is repeatable).
 */
import fc from 'fast-check';
import querystring from 'node:querystring';
import pino from 'pino';
import type Koa from 'koa';
import type { z } from 'zod';
import { createCore, type Core } from '../../cloud/core';
import { CLI_CREDENTIAL } from '../../cloud/approvals/credentials';
import type { AgentRow } from '../../cloud/store/agents';
import type { JobStatus } from '../../cloud/store/jobs';
import { startHttpServer, type HttpServer } from '../../agent-api/server';
import { delayedBody, denyBody, jobAddBody, MESSAGE_KINDS, messageBody, nextQuery, reportBody, waitQuery } from '../../agent-api/schemas';
import { dropNamespace, testConfig, uniqueName } from '../helpers/env';
import { call } from '../helpers/http';

const RUNS = Number(process.env.SKADI_FUZZ_RUNS ?? 10);
const SEED = Number(process.env.SKADI_FUZZ_SEED ?? 0x5ad1);
const BODY_LIMIT = 16 * 1024;
/** The longest accepted ?wait=, kept short: a mutation that happens to be a valid wait holds the request that long. */
const MAX_WAIT = 1;

// ---------------------------------------------------------------------------------------------------------------
// The table: what neither the router nor the schemas say.

type Auth = 'agent' | 'user' | 'none';
/** What a valid :id is: a fresh job of the caller that is sent (to the fuzzing agent), queued, or awaiting approval. */
type Target = 'sent' | 'queued' | 'gated';

interface RouteSpec {
  auth: Auth;
  /** Schema of the JSON body. */
  body?: z.ZodType;
  /** Schema of the query string. */
  query?: z.ZodType;
  /** Schema of the input a GET one-liner reads from its query string (`message` is sent as `msg`). */
  queryInput?: z.ZodType;
  id?: Target;
  /** Statuses the :id job may have after a 2xx (default: unchanged). */
  after?: JobStatus[];
  /** What a 2xx creates (and a 4xx must not). */
  creates?: 'job' | 'delayed' | 'message';
}

const wait = waitQuery(MAX_WAIT);

/** Valid values the schemas cannot tell, per schema: a job text names an agent, a delay is one, a callback is fetched. */
const jobText = fc.stringMatching(/^[a-z0-9]{1,12}( [a-z0-9._-]{1,12}){0,3}$/).map((t) => `sink ${t}`);
const EXAMPLES = new Map<z.ZodType, Record<string, fc.Arbitrary<unknown>>>([
  [jobAddBody, { message: jobText, callback: fc.constantFrom('', 'disable') }],
  [
    delayedBody,
    {
      message: jobText,
      duration: fc.constantFrom('2h', '90m', '1d'),
      callback: fc.constantFrom('', 'disable'),
      agent: fc.constantFrom('sink', 'fuzz', undefined),
    },
  ],
  [wait, { wait: fc.constant(0) }],
]);
const report = (status: JobStatus): RouteSpec => ({ auth: 'agent', body: reportBody, query: nextQuery, id: 'sent', after: [status] });

const ROUTES: Record<string, RouteSpec> = {
  'GET /healthz': { auth: 'none' },
  'GET /readyz': { auth: 'none' },
  'GET /metrics': { auth: 'none' },
  'GET /status': { auth: 'none' },

  'GET /agent/job': { auth: 'agent', query: wait },
  'PUT /agent/jobs/:id/running': report('running'),
  'PUT /agent/jobs/:id/succeed': report('succeeded'),
  'PUT /agent/jobs/:id/fail': report('failed'),
  'POST /agent/job/add': { auth: 'agent', body: jobAddBody, creates: 'job' },
  'POST /agent/job/delayed': { auth: 'agent', body: delayedBody, creates: 'delayed' },
  ...Object.fromEntries(
    MESSAGE_KINDS.map((kind) => [`POST /agent/message/${kind}`, { auth: 'agent', body: messageBody, creates: 'message' }]),
  ),
  'POST /agent/info': { auth: 'agent', body: messageBody, creates: 'message' },
  'POST /agent/warning': { auth: 'agent', body: messageBody, creates: 'message' },
  'POST /agent/kf': { auth: 'agent', body: messageBody, creates: 'message' },

  'POST /job/add': { auth: 'user', body: jobAddBody, creates: 'job' },
  'GET /job/add': { auth: 'user', queryInput: jobAddBody, creates: 'job' },
  'GET /jobs/:id': { auth: 'user', query: wait, id: 'queued' },
  'POST /jobs/:id/cancel': { auth: 'user', id: 'queued', after: ['canceled'] },
  'POST /jobs/:id/approve': { auth: 'user', id: 'gated', after: ['queuing', 'sent', 'expired'] },
  'POST /jobs/:id/deny': { auth: 'user', body: denyBody, id: 'gated', after: ['canceled'] },
  ...Object.fromEntries(
    MESSAGE_KINDS.flatMap((kind) => [
      [`POST /message/${kind}`, { auth: 'user', body: messageBody, creates: 'message' }],
      [`GET /message/${kind}`, { auth: 'user', queryInput: messageBody, creates: 'message' }],
    ]),
  ),
};

// ---------------------------------------------------------------------------------------------------------------
// Reading zod v4 schemas.

type Def = { type: string } & Record<string, any>;
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** The fields of an object schema (through the pipe of a transform). */
function shapeOf(schema: z.ZodType): Record<string, z.ZodType> {
  let def = defOf(schema);
  while (def.type === 'pipe') def = defOf(def.in);
  if (def.type !== 'object') throw new Error(`route-fuzz: a route schema must be an object, not a ${def.type}`);
  return def.shape;
}

const isOptional = (field: z.ZodType) => (field as unknown as { _zod: { optin?: string } })._zod.optin === 'optional';
const checksOf = (def: Def): Record<string, any>[] => (def.checks ?? []).map((c: unknown) => defOf(c));

/** Values the field's schema accepts, from its type and checks (lengths, ranges, patterns, enums). */
function validValue(field: z.ZodType): fc.Arbitrary<unknown> {
  const def = defOf(field);
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'nullable':
    case 'readonly':
      return validValue(def.innerType);
    case 'string': {
      let min = 0;
      let max = Infinity;
      let pattern: RegExp | undefined;
      for (const check of checksOf(def)) {
        if (check.check === 'min_length') min = Math.max(min, check.minimum);
        if (check.check === 'max_length') max = Math.min(max, check.maximum);
        if (check.check === 'length_equals') min = max = check.length;
        if (check.check === 'string_format' && check.pattern instanceof RegExp) pattern = check.pattern;
      }
      const text = pattern
        ? fc.stringMatching(pattern)
        : fc.string({ unit: fc.constantFrom(...'abcdxyz0189-_.'), minLength: min, maxLength: Math.max(min, Math.min(max, 24)) });
      return text.filter((v) => field.safeParse(v).success);
    }
    case 'number': {
      let min = -1e6;
      let max = 1e6;
      let int = false;
      for (const check of checksOf(def)) {
        if (check.check === 'number_format' && /int/.test(check.format)) int = true;
        if (check.check === 'greater_than') min = check.inclusive ? check.value : check.value + (int ? 1 : 1e-9);
        if (check.check === 'less_than') max = check.inclusive ? check.value : check.value - (int ? 1 : 1e-9);
      }
      return (int ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true })).filter((v) => field.safeParse(v).success);
    }
    case 'boolean':
      return fc.boolean();
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries as Record<string, unknown>));
    case 'literal':
      return fc.constantFrom(...(def.values as unknown[]));
    case 'any':
    case 'unknown':
      return fc.jsonValue();
    default:
      throw new Error(`route-fuzz: cannot make a valid value of a zod ${def.type}; give the field a value in EXAMPLES`);
  }
}

/** A valid input of an object schema: every required field, optional ones or not; strings only for a query string. */
function validInput(schema: z.ZodType, asText: boolean): fc.Arbitrary<Record<string, unknown>> {
  const shape = shapeOf(schema);
  const examples = EXAMPLES.get(schema) ?? {};
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  const required: string[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const value = examples[key] ?? validValue(field);
    fields[key] = asText ? value.map(String) : value;
    if (!isOptional(field) || examples[key]) required.push(key);
  }
  return fc.record(fields, { requiredKeys: required }).filter((input) => schema.safeParse(input).success);
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations, printed readably in counterexamples.

/** A long repeated string, shown as "x"×N rather than N characters. */
class Huge {
  constructor(
    readonly unit: string,
    readonly count: number,
  ) {}
  get text(): string {
    return this.unit.repeat(this.count);
  }
  [fc.toStringMethod](): string {
    return `${JSON.stringify(this.unit)}×${this.count}`;
  }
}

/** Text sent as it is: a JSON literal JSON.stringify cannot make (in a body), or already URL-encoded (query, path). */
class Raw {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return `raw(${JSON.stringify(this.text.length > 60 ? `${this.text.slice(0, 30)}…(${this.text.length})` : this.text)})`;
  }
}

type Foreign = 'other agent sent' | 'stranger agent sent' | 'own succeeded' | 'stranger queued' | 'stranger gated' | 'own sent elsewhere';
type Mutation =
  | { none: true }
  | { in: 'body' | 'query'; field: string; set: unknown }
  | { in: 'body' | 'query'; field: string; delete: true }
  | { in: 'body' | 'query'; extra: string; set: unknown }
  | { in: 'body'; manyExtras: number }
  | { in: 'body'; whole: 'form' | 'text/plain' | Raw }
  | { in: 'path'; id: string | Raw | Huge }
  | { in: 'path'; job: Foreign }
  | { in: 'path'; own: 'lower case' | 'with suffix' | 'truncated' | 'padded' };

/** Wrong JSON values for a body field: other types, extremes, number-like strings, odd text, too long, too large. */
const BODY_VALUES: unknown[] = [
  0,
  -1,
  1.5,
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  true,
  null,
  [],
  ['x'],
  {},
  { a: 1 },
  '',
  ' ',
  'NaN',
  'Infinity',
  '-1',
  '1.5',
  '1e999',
  '0x10',
  '\u0000',
  '\ud800',
  '\u{1F600}\u202e',
  'http://%',
  'http://127.0.0.1:1/x',
  'http://u:p@127.0.0.1/',
  new Raw('1e400'),
  new Raw('-0'),
  new Raw('1' + '0'.repeat(400)),
  new Raw('['.repeat(2000) + ']'.repeat(2000)),
  new Huge('x', 5000),
  new Huge('\u{1F600}', 1500),
  new Huge('x', BODY_LIMIT + 1),
];
/** Wrong query values (a query string has only text): number-like, empty, odd, long, repeated, badly encoded. */
const QUERY_VALUES: unknown[] = [
  '',
  'abc',
  'NaN',
  'Infinity',
  '-1',
  '1.5',
  '1e999',
  '1e3',
  '0x10',
  ' 1',
  '+1',
  'null',
  'true',
  '[]',
  '\u{1F600}',
  ['0', '1'],
  new Huge('9', 400),
  new Huge('x', 6000),
  new Raw('%'),
  new Raw('%E0%A4%A'),
  new Raw('%00'),
  new Raw('%ED%A0%80'),
];
/** Wrong job ids in the path. */
const PATH_IDS: (string | Raw | Huge)[] = [
  '01ARZ3NDEKTSV4RRFFQ69G5FAV',
  '0',
  '-1',
  '1.5',
  'NaN',
  'null',
  '[]',
  ' ',
  '\u{1F600}',
  new Raw('%'),
  new Raw('%E0%A4%A'),
  new Raw('%00'),
  new Raw('..%2F..%2Fetc%2Fpasswd'),
  new Raw('%2e%2e'),
  new Huge('A', 5000),
];
const EXTRA_FIELDS: [string, unknown][] = [
  ['unknown', 1],
  ['__proto__', { admin: true }],
  ['constructor', { prototype: {} }],
  ['id', 'x'],
  ['Result', 42],
];
const FOREIGN: Record<Auth, Foreign[]> = {
  agent: ['other agent sent', 'stranger agent sent', 'own succeeded'],
  user: ['stranger queued', 'stranger gated', 'own sent elsewhere'],
  none: [],
};
const OWN = ['lower case', 'with suffix', 'truncated', 'padded'] as const;

const fieldsOf = (spec: RouteSpec, where: 'body' | 'query'): string[] => {
  const schema = where === 'body' ? spec.body : (spec.query ?? spec.queryInput);
  return schema ? Object.keys(shapeOf(schema)).map((k) => (where === 'query' && spec.queryInput && k === 'message' ? 'msg' : k)) : [];
};

/** Every mutation of the fixed list for a route: each field with each wrong value, missing, extras, bodies, ids. */
function fixedMutations(method: string, spec: RouteSpec): Mutation[] {
  const list: Mutation[] = [];
  const hasBody = method !== 'GET';
  for (const field of fieldsOf(spec, 'body')) {
    for (const set of BODY_VALUES) list.push({ in: 'body', field, set });
    list.push({ in: 'body', field, delete: true });
  }
  for (const field of fieldsOf(spec, 'query')) {
    for (const set of QUERY_VALUES) list.push({ in: 'query', field, set });
    list.push({ in: 'query', field, delete: true });
  }
  if (hasBody) {
    for (const [extra, set] of EXTRA_FIELDS) list.push({ in: 'body', extra, set });
    list.push({ in: 'body', manyExtras: 500 });
    for (const whole of ['form', 'text/plain', new Raw('[]'), new Raw('"text"'), new Raw('null'), new Raw('{'), new Raw('')] as const)
      list.push({ in: 'body', whole });
  }
  for (const [extra, set] of [
    ['unknown', '1'],
    ['__proto__', 'x'],
    ['wait[]', '1'],
    ['token', 'garbage'],
  ] as const)
    list.push({ in: 'query', extra, set });
  if (spec.id) {
    for (const id of PATH_IDS) list.push({ in: 'path', id });
    for (const job of FOREIGN[spec.auth]) list.push({ in: 'path', job });
    for (const own of OWN) list.push({ in: 'path', own });
  }
  return list;
}

/** Random mutations of the same kinds, with values from fast-check's generators. */
function randomMutation(method: string, spec: RouteSpec): fc.Arbitrary<Mutation> {
  const choices: fc.Arbitrary<Mutation>[] = [];
  const bodyFields = fieldsOf(spec, 'body');
  const queryFields = fieldsOf(spec, 'query');
  const bodyValue = fc.oneof(fc.constantFrom(...BODY_VALUES), fc.jsonValue(), fc.string({ unit: 'binary', maxLength: 40 }));
  const queryValue = fc.oneof(
    fc.constantFrom(...QUERY_VALUES),
    fc.string({ maxLength: 40 }),
    fc.array(fc.string({ maxLength: 5 }), { minLength: 2, maxLength: 3 }),
  );
  if (bodyFields.length)
    choices.push(fc.record({ in: fc.constant('body' as const), field: fc.constantFrom(...bodyFields), set: bodyValue }));
  if (queryFields.length)
    choices.push(fc.record({ in: fc.constant('query' as const), field: fc.constantFrom(...queryFields), set: queryValue }));
  if (method !== 'GET')
    choices.push(fc.record({ in: fc.constant('body' as const), extra: fc.string({ minLength: 1, maxLength: 12 }), set: bodyValue }));
  choices.push(fc.record({ in: fc.constant('query' as const), extra: fc.string({ minLength: 1, maxLength: 12 }), set: queryValue }));
  if (spec.id) {
    choices.push(
      fc.record({
        in: fc.constant('path' as const),
        id: fc.oneof(fc.constantFrom(...PATH_IDS), fc.string({ maxLength: 40 }), fc.stringMatching(/^[0-9A-Z]{26}$/)),
      }),
    );
    choices.push(fc.record({ in: fc.constant('path' as const), job: fc.constantFrom(...FOREIGN[spec.auth]) }));
  }
  return fc.oneof(...choices);
}

// ---------------------------------------------------------------------------------------------------------------
// The server and the jobs the fuzzing must not lose.

const name = uniqueName();
let core: Core;
let http: HttpServer;
let base: string;
let userId: number;
let userToken: string;
let agentToken: string;
let agents: Record<'fuzz' | 'sink' | 'gate', AgentRow>;
/** Jobs pushed before the fuzzing, and the status each must keep. */
const kept: Record<Foreign | 'pushed before', { id: string; status: JobStatus }> = {} as never;
/** What the server logged at error level (a 500 is logged as "unexpected error" with its cause). */
const serverLog: string[] = [];

beforeAll(async () => {
  const config = testConfig(name, { bodyLimitBytes: BODY_LIMIT, maxWaitSeconds: MAX_WAIT, authMaxFailures: 1_000_000 });
  const log = pino({ level: 'error' }, { write: (line: string) => void serverLog.push(line) });
  core = await createCore({ config, log });
  await core.startBackground();
  http = await startHttpServer(core);
  base = `http://127.0.0.1:${http.port}`;

  const ops = await core.users.create('ops');
  userId = ops.user.id;
  userToken = ops.token;
  const fuzz = await core.agents.create(userId, 'fuzz');
  agentToken = fuzz.token;
  const other = await core.agents.create(userId, 'other');
  const sink = await core.agents.create(userId, 'sink');
  const gate = await core.agents.create(userId, 'gate');
  const stranger = await core.users.create('stranger');
  const strangerAgent = await core.agents.create(stranger.user.id, 'fuzz');
  const strangerGate = await core.agents.create(stranger.user.id, 'gate');
  for (const { agent } of [fuzz, other, sink, gate, strangerAgent, strangerGate]) await core.agents.recordPoll(agent, '127.0.0.1');
  agents = {
    fuzz: fuzz.agent,
    sink: sink.agent,
    gate: await core.agents.setApprovalPatterns(userId, 'gate', ['deploy *']),
  };
  const gatedStranger = await core.agents.setApprovalPatterns(stranger.user.id, 'gate', ['deploy *']);

  kept['other agent sent'] = { id: await sentJob(other.agent), status: 'sent' };
  kept['own sent elsewhere'] = kept['other agent sent'];
  kept['stranger agent sent'] = { id: await sentJob(strangerAgent.agent), status: 'sent' };
  const done = await sentJob(fuzz.agent);
  await core.jobs.report(fuzz.agent, done, 'succeeded', 'done');
  kept['own succeeded'] = { id: done, status: 'succeeded' };
  kept['stranger queued'] = { id: (await core.jobs.push(strangerAgent.agent, 'later', origin)).id, status: 'queuing' };
  kept['stranger gated'] = { id: (await core.jobs.push(gatedStranger, 'deploy it', origin)).id, status: 'awaiting_approval' };
  const pushed = await call(base, 'POST', '/job/add', { token: userToken, body: { message: 'sink keep me' } });
  expect(pushed).toMatchObject({ status: 201, body: { status: 'queuing' } });
  kept['pushed before'] = { id: pushed.body.id, status: 'queuing' };
});
afterAll(async () => {
  await http?.close();
  await core?.close();
  await dropNamespace(name);
});

/** Pushed by an admin's CLI: the fuzzing user's token may approve such a job. */
const origin = { source: 'fuzz', pushedBy: CLI_CREDENTIAL };

/** A job pushed for an agent and taken by it (sent). */
async function sentJob(agent: AgentRow, text = 'uptime'): Promise<string> {
  const { id } = await core.jobs.push(agent, text, origin);
  // Anything else the agent had queued (a delayed job that came due) is taken too; only this one matters.
  const taken = await core.jobs.take(agent, 100);
  if (!taken.some((j) => j.id === id)) throw new Error(`job ${id} was not taken by ${agent.name}`);
  return id;
}

const FRESH: Record<Target, JobStatus> = { sent: 'sent', queued: 'queuing', gated: 'awaiting_approval' };
/** The last job made for a run; the next run takes it again if no request changed it. */
let spare: { target: Target; id: string } | null = null;

/** A job of the caller that a valid request of the route is about, in the state a fresh one is in; and that state. */
async function targetJob(target: Target): Promise<{ id: string; status: JobStatus }> {
  if (spare?.target === target) {
    const status = await statusOf(spare.id);
    if (status === FRESH[target]) return { id: spare.id, status };
  }
  let id: string;
  if (target === 'sent') id = await sentJob(agents.fuzz, 'echo fuzz');
  else if (target === 'queued') id = (await core.jobs.push(agents.sink, 'wait for it', origin)).id;
  else id = (await core.jobs.push(agents.gate, 'deploy fuzz', origin)).id;
  spare = { target, id };
  return { id, status: await statusOf(id) };
}

const statusOf = async (id: string) => (await core.jobs.get(id, null)).status;
async function count(creates: RouteSpec['creates']): Promise<number> {
  if (creates === 'message') return core.redis.xlen(core.keys.messageStream);
  // Delayed rows stay when released (with a job of the same id, which is not counted: a short delay comes due now).
  const sql =
    creates === 'job'
      ? 'SELECT COUNT(*) AS n FROM jobs WHERE id NOT IN (SELECT id FROM delayed_jobs)'
      : 'SELECT COUNT(*) AS n FROM delayed_jobs';
  const [rows] = await core.db.pool.query(sql);
  return Number((rows as { n: number }[])[0].n);
}

// ---------------------------------------------------------------------------------------------------------------
// One request.

/** JSON text of a body, with Huge and Raw values written out. */
function toJson(value: Record<string, unknown>): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v) => {
    if (v instanceof Huge) return v.text;
    if (v instanceof Raw) return `\u0000raw${raws.push(v.text) - 1}\u0000`;
    return v;
  });
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_, i) => raws[Number(i)]);
}

function encodeQuery(query: Record<string, unknown>): string {
  const parts: string[] = [];
  const one = (v: unknown) => (v instanceof Raw ? v.text : encodeURIComponent(v instanceof Huge ? v.text : String(v)));
  for (const [key, value] of Object.entries(query)) {
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${encodeURIComponent(key)}=${one(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** What the handler gives its schema: the query as koa parses it (repeated keys are arrays), or the GET form's fields. */
function decodedQuery(search: string, spec: RouteSpec): Record<string, unknown> {
  const query: Record<string, unknown> = { ...querystring.parse(search.slice(1)) };
  if (!spec.queryInput) return query;
  const { msg, message, ...rest } = query;
  return Object.fromEntries(Object.entries({ ...rest, message: msg ?? message }).filter(([, v]) => v !== undefined));
}

interface Outcome {
  request: string;
  status: number;
  text: string;
}

async function send(method: string, path: string, spec: RouteSpec, body: string | undefined, contentType: string): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (spec.auth === 'agent') headers.authorization = `Bearer ${agentToken}`;
  if (spec.auth === 'user') headers.authorization = `Bearer ${userToken}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const request = `${method} ${path.length > 200 ? `${path.slice(0, 200)}…` : path}${body === undefined ? '' : ` ${body.length > 200 ? `${body.slice(0, 200)}…(${body.length})` : body}`}`;
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(15_000) });
  return { request, status: res.status, text: await res.text() };
}

/** Sends the base request with one mutation and checks the answer and what it did. */
async function fuzzOnce(
  key: string,
  spec: RouteSpec,
  input: { body: Record<string, unknown>; query: Record<string, unknown> },
  m: Mutation,
): Promise<void> {
  const [method, template] = key.split(' ');
  const body: Record<string, unknown> = { ...input.body };
  const query: Record<string, unknown> = { ...input.query };
  if (spec.queryInput && 'message' in query) {
    query.msg = query.message;
    delete query.message;
  }
  let mustReject = false;
  let id: string | undefined;
  let foreign: Foreign | undefined;
  let pathId: string | undefined;

  // The job the request is about, in its first state (made again once a request changed it).
  const [target, before] = await Promise.all([spec.id ? targetJob(spec.id) : undefined, spec.creates ? count(spec.creates) : 0]);
  const idBefore = target?.status;
  if (target) {
    id = target.id;
    pathId = id;
    if ('in' in m && m.in === 'path') {
      mustReject = true;
      if ('job' in m) {
        foreign = m.job;
        pathId = kept[m.job].id;
        // The caller's own finished job may take the same final report again (idempotent): no 4xx to insist on.
        mustReject = !(m.job === 'own succeeded' || (m.job === 'own sent elsewhere' && method === 'GET'));
      } else if ('own' in m) {
        pathId = { 'lower case': id.toLowerCase(), 'with suffix': `${id}X`, truncated: id.slice(0, -1), padded: `%20${id}` }[m.own];
      } else {
        pathId = m.id instanceof Raw ? m.id.text : encodeURIComponent(m.id instanceof Huge ? m.id.text : m.id);
      }
    }
  }
  if ('in' in m && m.in !== 'path') {
    const target = m.in === 'body' ? body : query;
    // Own properties even for "__proto__", as JSON.parse makes them.
    const put = (k: string, value: unknown) =>
      Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true });
    if ('field' in m) {
      if ('delete' in m) delete target[m.field];
      else put(m.field, m.set);
    } else if ('extra' in m) {
      put(m.extra, m.set);
    } else if ('manyExtras' in m) {
      for (let i = 0; i < m.manyExtras; i++) put(`k${i}`, i);
    }
  }

  // The body as sent, and what the handler's schema then sees.
  let bodyText: string | undefined;
  let contentType = 'application/json';
  if (method !== 'GET') {
    const whole = 'whole' in m ? m.whole : undefined;
    if (whole === 'form') {
      contentType = 'application/x-www-form-urlencoded';
      bodyText = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
    } else if (whole instanceof Raw) {
      bodyText = whole.text;
      mustReject ||= whole.text !== '';
    } else {
      if (whole === 'text/plain') contentType = 'text/plain';
      bodyText = toJson(body);
    }
  }
  let parsedBody: unknown = {};
  try {
    parsedBody =
      bodyText === undefined || bodyText.trim() === ''
        ? {}
        : contentType.includes('form')
          ? Object.fromEntries(new URLSearchParams(bodyText))
          : JSON.parse(bodyText);
  } catch {
    parsedBody = undefined;
  }
  const search = encodeQuery(query);
  if (spec.body && parsedBody !== undefined && !spec.body.safeParse(parsedBody).success) mustReject = true;
  const querySchema = spec.query ?? spec.queryInput;
  if (querySchema && !querySchema.safeParse(decodedQuery(search, spec)).success) mustReject = true;
  const tooLarge = bodyText !== undefined && Buffer.byteLength(bodyText) > BODY_LIMIT;

  const logged = serverLog.length;
  const path = template.replace(':id', pathId ?? '') + search;
  const out = await send(method, path, spec, bodyText, contentType);

  const fail = (why: string) => {
    const cause = serverLog
      .slice(logged)
      .map((l) => JSON.parse(l).err?.stack ?? l)
      .join('\n');
    throw new Error(
      `${why}\n  request: ${out.request}\n  answer: ${out.status} ${out.text.slice(0, 300)}${cause ? `\n  server log: ${cause.slice(0, 1500)}` : ''}`,
    );
  };
  if (out.status >= 500) fail(`a ${out.status}`);
  if (out.status >= 400) {
    let json: unknown;
    try {
      json = JSON.parse(out.text);
    } catch {
      fail('a 4xx without a JSON body');
    }
    const error = json as { error?: unknown; message?: unknown };
    if (typeof error?.error !== 'string' || typeof error.message !== 'string') fail('a 4xx without {error, message}');
  }
  const ok = out.status >= 200 && out.status < 300;
  if (tooLarge && (out.status !== 413 || JSON.parse(out.text).error !== 'TooLarge'))
    fail(`a body of ${Buffer.byteLength(bodyText!)} bytes (limit ${BODY_LIMIT}) not answered 413 TooLarge`);
  if (!tooLarge && mustReject && ok) fail('input the route schema rejects was accepted');
  if ('none' in m && !ok) fail('the valid request was refused');

  // Nothing lost, nothing half done; and the server still answers.
  const made = ok && spec.creates === 'job' ? (JSON.parse(out.text) as { id: string; status: JobStatus }) : null;
  const [now, foreignNow, after, madeNow, health] = await Promise.all([
    id ? statusOf(id) : undefined,
    foreign ? statusOf(kept[foreign].id) : undefined,
    spec.creates ? count(spec.creates) : 0,
    made ? statusOf(made.id) : undefined,
    fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) }).then((res) => res.status),
  ]);
  if (health !== 200) fail(`/healthz answered ${health} afterwards`);
  if (id) {
    const addressed = pathId === id;
    const allowed = addressed && ok ? (spec.after ?? [idBefore!]) : [idBefore!];
    if (!allowed.includes(now!)) fail(`the job the request was about is ${now}; expected ${allowed.join(' or ')} (it was ${idBefore})`);
    if (addressed && ok && method === 'GET' && JSON.parse(out.text).id !== id) fail('GET answered another job');
  }
  if (foreign && foreignNow !== kept[foreign].status) fail(`the job "${foreign}" is ${foreignNow}, no longer ${kept[foreign].status}`);
  if (spec.creates) {
    const expected = before + (ok ? 1 : 0);
    if (after !== expected) fail(`${spec.creates} count went from ${before} to ${after}, expected ${expected}`);
    if (made && madeNow !== made.status) fail(`the pushed job ${made.id} is ${madeNow}, not ${made.status}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** "METHOD /path" of every route on the app's routers (HEAD goes with GET). */
function registeredRoutes(app: Koa): string[] {
  const keys = new Set<string>();
  for (const middleware of app.middleware as { router?: { stack: { methods: string[]; path: string }[] } }[]) {
    for (const layer of middleware.router?.stack ?? [])
      for (const method of layer.methods) if (method !== 'HEAD') keys.add(`${method} ${layer.path}`);
  }
  return [...keys].sort();
}

describe('route fuzzing', () => {
  it('has every route registered on the routers in its table, and no other', () => {
    const registered = registeredRoutes(http.app);
    expect(registered.length).toBeGreaterThan(20); // the routers were found
    expect({
      missing: registered.filter((r) => !(r in ROUTES)),
      unknown: Object.keys(ROUTES).filter((r) => !registered.includes(r)),
    }).toEqual({ missing: [], unknown: [] });
  });

  it.each(Object.keys(ROUTES))(
    '%s: no 5xx, clear 4xx, nothing lost',
    async (key) => {
      const spec = ROUTES[key];
      const [method] = key.split(' ');
      const input = fc.record({
        body: spec.body ? validInput(spec.body, false) : fc.constant({}),
        query: spec.query || spec.queryInput ? validInput((spec.query ?? spec.queryInput)!, true) : fc.constant({}),
      });
      const [first] = fc.sample(input, { seed: SEED, numRuns: 1 });
      const examples: [typeof first, Mutation][] = [
        [first, { none: true }],
        ...fixedMutations(method, spec).map((m): [typeof first, Mutation] => [first, m]),
      ];
      await fc.assert(
        fc.asyncProperty(
          input,
          fc.oneof({ arbitrary: randomMutation(method, spec), weight: 9 }, { arbitrary: fc.constant<Mutation>({ none: true }), weight: 1 }),
          (i, m) => fuzzOnce(key, spec, i, m),
        ),
        { seed: SEED, numRuns: examples.length + RUNS, examples },
      );
      // Jobs pushed before are where they were, and the one pushed through the API is still shown by it.
      for (const [what, job] of Object.entries(kept))
        expect({ what, status: await statusOf(job.id) }).toEqual({ what, status: job.status });
      const shown = await call(base, 'GET', `/jobs/${kept['pushed before'].id}`, { token: userToken });
      expect(shown).toMatchObject({ status: 200, body: { id: kept['pushed before'].id, status: 'queuing', message: 'keep me' } });
    },
    120_000,
  );
});
