/** End to end: the `skadi` administration commands README.md promises, run as the real binary on a fresh namespace. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropNamespace, eventually, MYSQL_ROOT, redisEnv, TEST_SECRET, uniqueName } from '../helpers/env';
import { call } from '../helpers/http';
import { startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { ensureBuilt, ROOT, SKADI_BIN, skadi, startServe, stopChild } from '../helpers/process';

const name = uniqueName();
const NAMESPACE = { SKADI_MYSQL_URL: `${MYSQL_ROOT}/${name}`, SKADI_REDIS_PREFIX: `${name}:` };
const env = { ...NAMESPACE, ...redisEnv(), SKADI_SECRET: TEST_SECRET, SKADI_CONFIG: '', SKADI_LOG_LEVEL: 'info' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-cli-'));
const MIGRATIONS = fs
  .readdirSync(path.join(ROOT, 'cloud/store/migrations'))
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));
const NO_JOB = '01AAAAAAAAAAAAAAAAAAAAAAAA';
let gateway: { child: ChildProcess; port: number; output: () => string } | undefined;

/** Runs `skadi <args>` on the test namespace (extra variables on top). */
const run = (args: string[], extra: Record<string, string> = {}) => skadi(args, { ...env, ...extra });

/** Runs `skadi <args> --json`, expects exit 0, and parses its output. */
function json(...args: string[]): any {
  const out = run([...args, '--json']);
  expect({ status: out.status, stderr: out.stderr }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(out.stdout);
}

/** Runs `skadi <args>` without blocking the test (so it can play the agent meanwhile); resolves with its exit and run time. */
function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [SKADI_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close' comes after the last output was read ('exit' may come before it).
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr, ms: Date.now() - started })));
}

/** Calls the running gateway's HTTP API. */
const api = (method: string, route: string, token: string, body?: unknown) =>
  call(`http://127.0.0.1:${gateway!.port}`, method, route, { token, body });

/** The status a user token gets from the user API: 404 for an unknown job when valid, 401 when refused (GET /status checks no token). */
const userAuthStatus = async (token: string) => (await api('GET', `/jobs/${NO_JOB}`, token)).status;

/** Writes a config file into the test's temporary directory and returns its path. */
function configFile(file: string, text: string): string {
  const full = path.join(tmp, file);
  fs.writeFileSync(full, text);
  return full;
}

/** Adds an agent of ops with the CLI and polls once, so it is online; returns its token. */
async function onlineAgent(agent: string): Promise<string> {
  const { token } = json('agent', 'add', agent, '--user', 'ops');
  expect((await api('GET', '/agent/job', token)).status).toBe(204);
  return token;
}

beforeAll(() => ensureBuilt());
afterAll(async () => {
  if (gateway) await stopChild(gateway.child);
  await dropNamespace(name);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('skadi migrate', () => {
  it('creates the database, applies every migration once, and then has nothing to apply', () => {
    expect(json('migrate')).toEqual({ applied: MIGRATIONS });
    expect(json('migrate')).toEqual({ applied: [] });
    expect(run(['migrate']).stdout.trim()).toBe('The schema is up to date.');
  });
});

describe('with a running gateway', () => {
  let userToken: string;
  beforeAll(async () => {
    gateway = await startServe(env);
  }, 60_000);

  it('user add/list/token: a rotated token is refused by the gateway at once, the new one works', async () => {
    const added = json('user', 'add', 'ops');
    expect(added).toEqual({
      id: expect.any(Number),
      name: 'ops',
      token: expect.stringMatching(/^sku_/),
      callback_secret: expect.stringMatching(/^whsec_/),
    });
    expect(json('user', 'list')).toEqual([{ id: added.id, name: 'ops', created_at: expect.any(String) }]);
    expect(await userAuthStatus(added.token)).toBe(404); // accepted, and cached by the gateway now
    const rotated = json('user', 'token', 'ops');
    expect(rotated).toMatchObject({ id: added.id, name: 'ops' });
    expect(rotated.token).not.toBe(added.token);
    expect(rotated.callback_secret).not.toBe(added.callback_secret);
    // Within 5 s, half the gateway's 10 s credential cache: the CLI must tell the running node.
    await eventually(async () => (await userAuthStatus(added.token)) === 401, 5_000, 'the old token to be refused');
    expect(await userAuthStatus(rotated.token)).toBe(404);
    userToken = rotated.token;
  });

  it('NameTaken: adding an existing user or agent name fails with one line and exit 1', () => {
    const user = run(['user', 'add', 'ops']);
    expect({ status: user.status, stderr: user.stderr }).toEqual({ status: 1, stderr: 'skadi: A user named "ops" already exists.\n' });
    json('agent', 'add', 'dup', '--user', 'ops');
    const agent = run(['agent', 'add', 'dup', '--user', 'ops']);
    expect({ status: agent.status, stderr: agent.stderr }).toEqual({
      status: 1,
      stderr: 'skadi: You already have an agent named or aliased "dup".\n',
    });
  });

  it('agent add/list, disable (polls get 403) and enable (polls work again)', async () => {
    const added = json('agent', 'add', 'web1', '--user', 'ops', '--alias', 'w1');
    expect(added).toEqual({ id: expect.any(Number), name: 'web1', alias: 'w1', token: expect.stringMatching(/^ska_/) });
    const listed = () => json('agent', 'list', '--user', 'ops').find((a: any) => a.name === 'web1');
    expect(listed()).toMatchObject({ id: added.id, alias: 'w1', online: false });
    expect((await api('GET', '/agent/job', added.token)).status).toBe(204);
    expect(listed()).toMatchObject({ online: true, last_seen_at: expect.any(String) });

    expect(json('agent', 'disable', 'web1', '--user', 'ops')).toEqual({ id: added.id, name: 'web1', available: false });
    await eventually(async () => (await api('GET', '/agent/job', added.token)).status === 403, 5_000, 'polls to be refused');
    expect((await api('GET', '/agent/job', added.token)).body).toMatchObject({ error: 'AgentUnavailable' });
    expect(run(['agent', 'enable', 'web1', '--user', 'ops']).stdout).toBe('Agent web1 enabled.\n');
    await eventually(async () => (await api('GET', '/agent/job', added.token)).status === 204, 5_000, 'polls to work again');
  });

  it('agent remove expires the queued jobs of the agent ("agent removed") and its token stops working', async () => {
    const token = await onlineAgent('doomed');
    const pushed = await api('POST', '/job/add', userToken, { message: 'doomed uptime' });
    expect(pushed).toMatchObject({ status: 201, body: { status: 'queuing' } });
    expect(run(['agent', 'remove', 'doomed', '--user', 'ops']).stdout).toBe('Agent doomed removed.\n');
    expect((await api('GET', `/jobs/${pushed.body.id}`, userToken)).body).toMatchObject({ status: 'expired', reason: 'agent removed' });
    expect(json('agent', 'list', '--user', 'ops').map((a: any) => a.name)).not.toContain('doomed');
    await eventually(async () => (await api('GET', '/agent/job', token)).status === 401, 5_000, 'the token to be refused');
  });

  it('identity link/list/unlink: a CLI link is linked_by admin', () => {
    expect(json('identity', 'link', 'slack:T1:UALICE', '--user', 'ops', '--name', 'alice')).toEqual({
      key: 'slack:T1:UALICE',
      user: 'ops',
    });
    expect(json('identity', 'list')).toEqual([
      { key: 'slack:T1:UALICE', user: 'ops', name: 'alice', linked_by: 'admin', last_seen_at: null },
    ]);
    expect(run(['identity', 'list']).stdout).toMatch(/slack:T1:UALICE\s+ops\s+alice\s+admin/);
    expect(json('identity', 'unlink', 'slack:T1:UALICE')).toEqual({ key: 'slack:T1:UALICE', unlinked: true });
    expect(json('identity', 'list')).toEqual([]);
    const again = run(['identity', 'unlink', 'slack:T1:UALICE']);
    expect({ status: again.status, stderr: again.stderr }).toEqual({ status: 1, stderr: 'skadi: slack:T1:UALICE is not linked.\n' });
  });

  it('jobs and job show list and show the jobs, newest first', async () => {
    await onlineAgent('lister');
    const first = json('job', 'add', 'lister', 'echo', 'one', '--user', 'ops');
    const second = json('job', 'add', 'lister', 'echo', 'two', '--user', 'ops');
    expect(second).toMatchObject({ status: 'queuing' });
    const listed = json('jobs', '--user', 'ops', '--agent', 'lister');
    expect(listed.map((j: any) => [j.id, j.message])).toEqual([
      [second.id, 'echo two'],
      [first.id, 'echo one'],
    ]);
    expect(json('jobs', '--limit', '1')).toHaveLength(1);
    expect(json('job', 'show', first.id)).toMatchObject({
      id: first.id,
      agent: 'lister',
      message: 'echo one',
      source: 'cli',
      status: 'queuing',
    });
    expect(run(['job', 'show', first.id]).stdout).toBe(`… job ${first.id} for lister: queuing\n`);
    const missing = run(['job', 'show', NO_JOB]);
    expect({ status: missing.status, stderr: missing.stderr }).toEqual({ status: 1, stderr: `skadi: There is no job ${NO_JOB}.\n` });
  });

  it('job add --wait exits 0 when the job succeeded and 1 when it failed or expired, printing the result', async () => {
    const token = await onlineAgent('ci');
    for (const [verb, exit, mark] of [
      ['succeed', 0, '✅'],
      ['fail', 1, '❌'],
    ] as const) {
      const waiting = runAsync(['job', 'add', 'ci', 'deploy', '--user', 'ops', '--wait', '--timeout', '1m']);
      const job = await api('GET', '/agent/job?wait=30', token);
      expect(job).toMatchObject({ status: 200, body: { message: 'deploy' } });
      expect((await api('PUT', `/agent/jobs/${job.body.id}/${verb}`, token, { result: `${verb} output` })).status).toBe(204);
      const done = await waiting;
      expect(done).toMatchObject({ status: exit, stdout: `${mark} job ${job.body.id} for ci: ${verb}ed\n${verb} output\n` });
    }
    json('agent', 'add', 'silent', '--user', 'ops'); // never polls: offline, so a job for it expires at once
    const expired = run(['job', 'add', 'silent', 'x', '--user', 'ops', '--wait', '--timeout', '20s']);
    expect(expired.status).toBe(1);
    expect(expired.stdout).toMatch(/^⌛ job \w+ for silent: expired \(agent offline\)/);
  });

  it('job add --wait gives up after --timeout when no agent answers, exit 1', async () => {
    await onlineAgent('mute'); // online, so the job queues, but it never polls again
    const done = await runAsync(['job', 'add', 'mute', 'uptime', '--user', 'ops', '--wait', '--timeout', '2s']);
    expect(done).toMatchObject({ status: 1, stderr: 'skadi: gave up waiting after 2s; the job is still queuing\n' });
    expect(done.stdout).toMatch(/^… job \w+ for mute: queuing\n$/);
    expect(done.ms).toBeGreaterThanOrEqual(2_000);
    expect(done.ms).toBeLessThan(20_000); // the timeout plus start-up, generously
  });

  describe('--config and SKADI_CONFIG', () => {
    const noNamespace = { SKADI_MYSQL_URL: '', SKADI_REDIS_PREFIX: '' }; // empty counts as not set
    const good = () => configFile('good.yml', `# the test namespace\nmysql_url: ${NAMESPACE.SKADI_MYSQL_URL}\nredis_prefix: "${name}:"\n`);
    const unreachable = () => configFile('unreachable.yml', `mysql_url: mysql://root@127.0.0.1:1/nowhere\nredis_prefix: "${name}:"\n`);
    /** The agents of ops as seen through a config: the users come from MySQL, online from Redis presence. */
    const agentsVia = (args: string[], extra: Record<string, string>) =>
      run([...args, 'agent', 'list', '--user', 'ops', '--json'], { ...noNamespace, ...extra });

    it('uses the MySQL and Redis settings of the file, from --config or SKADI_CONFIG', async () => {
      const expected = json('agent', 'list', '--user', 'ops');
      expect(expected.find((a: any) => a.name === 'mute')).toMatchObject({ online: true }); // presence under the test prefix
      for (const [args, extra] of [
        [['--config', good()], {}],
        [[], { SKADI_CONFIG: good() }],
        [['--config', good()], { SKADI_CONFIG: unreachable() }],
      ] as const) {
        const out = agentsVia([...args], extra);
        expect({ status: out.status, stderr: out.stderr }).toEqual({ status: 0, stderr: '' });
        expect(JSON.parse(out.stdout)).toEqual(expected);
      }
    });

    it('lets SKADI_* variables override the file', () => {
      const fromFile = agentsVia(['--config', unreachable()], {});
      expect(fromFile.status).toBe(2);
      expect(fromFile.stderr).toMatch(/^skadi: Cannot reach MySQL at mysql:\/\/root@127\.0\.0\.1:1\/nowhere/);
      const overridden = agentsVia(['--config', unreachable()], { SKADI_MYSQL_URL: NAMESPACE.SKADI_MYSQL_URL });
      expect(overridden.status).toBe(0);
      expect(JSON.parse(overridden.stdout).map((a: any) => a.name)).toContain('mute');
    });

    it('refuses an unknown key or a bad value with one line naming it, exit 2', () => {
      const cases = [
        ['unknown.yml', 'prot: 8080\n', /^skadi: config file \S+unknown\.yml: unknown setting "prot" \(known: port, host, /],
        [
          'bad.yml',
          'job_lease: soon\n',
          /^skadi: setting job_lease \(SKADI_JOB_LEASE\) from file \S+bad\.yml = "soon": "soon" is not a duration/,
        ],
        [
          'short.yml',
          'secret: too-short-secret\n',
          /^skadi: setting secret \(SKADI_SECRET\) from file \S+short\.yml = \(hidden\): must be at least 32 characters/,
        ],
      ] as const;
      for (const [file, text, message] of cases) {
        const out = run(['--config', configFile(file, text), 'user', 'list'], { SKADI_SECRET: '' });
        expect(out.status).toBe(2);
        expect(out.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(message)]);
      }
      expect(run(['--config', path.join(tmp, 'short.yml'), 'user', 'list'], { SKADI_SECRET: '' }).stderr).not.toContain('too-short-secret');
    });
  });
});

describe('skadi serve logs', () => {
  let slack: FakeSlack;
  afterAll(async () => slack?.close());

  it('logs its configuration at start without any secret value', async () => {
    slack = await startFakeSlack('T0CLI');
    const secrets = {
      SKADI_SLACK_SIGNING_SECRET: 'signing-secret-7f3a9c1e5b',
      SKADI_SLACK_BOT_TOKEN: 'xoxb-1111-2222-botsecretvalue',
      SKADI_SECRET: TEST_SECRET,
    };
    const node = await startServe({ ...env, ...secrets, SKADI_SLACK_API_URL: slack.url, SKADI_LOG_LEVEL: 'debug' });
    try {
      await eventually(() => node.output().includes('Slack adapter connected'), 15_000, 'the Slack adapter to connect');
    } finally {
      await stopChild(node.child);
    }
    const output = node.output();
    expect(output).toMatch(/"msg":"starting"/);
    for (const key of ['slackSigningSecret', 'slackBotToken', 'secret']) expect(output).toContain(`"${key}":"***"`);
    for (const value of Object.values(secrets)) expect(output).not.toContain(value);
  });
});
