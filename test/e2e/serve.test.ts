/** End to end: the real `skadi serve` process, the CLI, and an agent speaking plain HTTP. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { dropNamespace, eventually, MYSQL_ROOT, redisEnv, uniqueName } from '../helpers/env';
import { call } from '../helpers/http';
import { ensureBuilt, ROOT, SKADI_BIN, skadi, startServe, stopChild } from '../helpers/process';

const name = uniqueName();
const env = { SKADI_MYSQL_URL: `${MYSQL_ROOT}/${name}`, ...redisEnv(), SKADI_REDIS_PREFIX: `${name}:`, SKADI_LOG_LEVEL: 'info' };
let serve: { child: ChildProcess; port: number; output: () => string };

beforeAll(async () => {
  ensureBuilt();
  serve = await startServe(env);
}, 60_000);
afterAll(async () => {
  if (serve) expect(await stopChild(serve.child)).toBe(0);
  await dropNamespace(name);
});

describe('skadi serve end to end', () => {
  it('tells a fresh installation how to create the first user and agent', () => {
    expect(serve.output()).toContain('skadi user add');
    expect(serve.output()).toContain('skadi agent add');
  });

  it('runs a job from the GET one-liner through an agent to `skadi job show`', async () => {
    const user = skadi(['user', 'add', 'ops', '--json'], env);
    expect(user.status).toBe(0);
    const { token: userToken } = JSON.parse(user.stdout);
    const agent = skadi(['agent', 'add', 'web1', '--user', 'ops', '--json'], env);
    expect(agent.status).toBe(0);
    const agentInfo = JSON.parse(agent.stdout);
    expect(Object.keys(agentInfo)).toEqual(expect.arrayContaining(['id', 'name', 'token']));

    const base = `http://127.0.0.1:${serve.port}`;
    expect((await call(base, 'GET', '/agent/job', { token: agentInfo.token })).status).toBe(204); // online now
    const poll = call(base, 'GET', '/agent/job?wait=5', { token: agentInfo.token });
    const pushed = await call(base, 'GET', `/job/add?token=${userToken}&msg=${encodeURIComponent('web1 uptime')}`);
    expect(pushed).toMatchObject({ status: 201, body: { status: 'queuing' } });
    const job = await poll;
    expect(job).toMatchObject({ status: 200, body: { id: pushed.body.id, message: 'uptime' } });
    expect(
      (await call(base, 'PUT', `/agent/jobs/${job.body.id}/succeed`, { token: agentInfo.token, body: { result: 'up 42 days' } })).status,
    ).toBe(204);

    const shown = skadi(['job', 'show', pushed.body.id, '--json'], env);
    expect(shown.status).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: pushed.body.id, status: 'succeeded', result: 'up 42 days' });
    expect(skadi(['job', 'show', pushed.body.id], env).stdout).toContain('succeeded');
  });

  it('`skadi job add --wait` exits 0 on success and 1 on failure, printing the result', async () => {
    const base = `http://127.0.0.1:${serve.port}`;
    const { token } = JSON.parse(skadi(['agent', 'token', 'web1', '--user', 'ops', '--json'], env).stdout);
    const runAgent = async (verb: 'succeed' | 'fail', result: string) => {
      const job = await call(base, 'GET', '/agent/job?wait=20', { token });
      await call(base, 'PUT', `/agent/jobs/${job.body.id}/${verb}`, { token, body: { result } });
    };
    for (const [verb, code, result] of [
      ['succeed', 0, 'deployed'],
      ['fail', 1, 'exit status 2'],
    ] as const) {
      const agentDone = runAgent(verb, result);
      const child = spawn(process.execPath, [SKADI_BIN, 'job', 'add', 'web1', 'deploy', 'v2', '--user', 'ops', '--wait'], {
        env: { ...process.env, ...env },
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const exit = await new Promise<number | null>((resolve) => child.once('close', resolve)); // after its last output
      await agentDone;
      expect(exit).toBe(code);
      expect(out).toContain(result);
    }
  });

  it('explains a wrong setting in one line and exits non-zero', () => {
    const bad = skadi(['serve'], { ...env, SKADI_AGENT_OFFLINE_AFTER: 'later' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('SKADI_AGENT_OFFLINE_AFTER');
  });

  it('says which dependency is unreachable at start, and where', () => {
    const noRedis = skadi(['serve'], { ...env, SKADI_REDIS_URL: 'redis://127.0.0.1:1/0', SKADI_REDIS_CLUSTER: '' });
    expect(noRedis.status).toBe(2);
    expect(noRedis.stderr).toMatch(/Cannot reach Redis at 127\.0\.0\.1:1.*SKADI_REDIS_URL/);
    const noCluster = skadi(['serve'], { ...env, SKADI_REDIS_CLUSTER: '127.0.0.1:1,127.0.0.1:2' });
    expect(noCluster.status).toBe(2);
    expect(noCluster.stderr).toMatch(/Cannot reach the Redis Cluster at 127\.0\.0\.1:1,127\.0\.0\.1:2.*SKADI_REDIS_CLUSTER/);
    const noMysql = skadi(['user', 'list'], { ...env, SKADI_MYSQL_URL: 'mysql://root@127.0.0.1:1/x' });
    expect(noMysql.status).toBe(2);
    expect(noMysql.stderr).toMatch(/Cannot reach MySQL at mysql:\/\/root@127\.0\.0\.1:1\/x.*SKADI_MYSQL_URL/);
  });

  it('prints readable lines on a terminal, and JSON lines with --json or without a terminal', async () => {
    const onTerminal = async (args: string): Promise<string> => {
      // `script` gives the process a terminal as its stdout; the lines come back through the pty.
      const child = spawn('script', ['-qfec', `${process.execPath} ${SKADI_BIN} serve ${args}`, '/dev/null'], {
        env: { ...process.env, ...env, SKADI_PORT: '0' },
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const exited = new Promise((resolve) => child.once('close', resolve)); // after its last output
      try {
        await eventually(() => /listening/.test(out), 20_000, 'serve to listen');
      } finally {
        child.kill('SIGTERM'); // also when it never listened: no process outlives the test
        await exited;
      }
      return out;
    };
    const readable = await onTerminal('');
    expect(readable).toMatch(/INFO.*Skadi is listening on http:/);
    expect(readable).not.toContain('{"level"');
    const json = await onTerminal('--json');
    expect(json).toMatch(/\{"level":30,[^\n]*"msg":"Skadi is listening/);
    expect(serve.output()).toMatch(/\{"level":30,[^\n]*"msg":"Skadi is listening/); // a pipe, as under systemd
  });

  it('has --help on every command', () => {
    for (const args of [
      [],
      ['serve'],
      ['migrate'],
      ['user', 'add'],
      ['agent', 'add'],
      ['agent', 'list'],
      ['job', 'add'],
      ['job', 'show'],
      ['jobs'],
      ['identity', 'link'],
      ['identity', 'list'],
    ]) {
      const help = skadi([...args, '--help'], env);
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('Usage: skadi');
    }
  });

  it('loads the SDK of a chat channel only when that channel is configured', () => {
    // In a fresh process: which SDKs are loaded after the serve module, after the channel list, after making Slack's adapter.
    const script = `
      const { loadConfig } = require('./dist/config');
      const { configuredChannels } = require('./dist/cli/serve');
      const SDKS = ['@slack/bolt', 'botbuilder', 'wechaty', 'imapflow', 'nodemailer'];
      const loaded = () => SDKS.filter((sdk) => Object.keys(require.cache).some((file) => file.includes('/node_modules/' + sdk + '/')));
      const silent = require('pino')({ level: 'silent' });
      const atLoad = loaded();
      const makers = configuredChannels(loadConfig({ env: process.env }), silent);
      const listed = loaded();
      const adapters = makers.map((make) => make());
      console.log(JSON.stringify({ atLoad, listed, made: adapters.map((a) => a.name), after: loaded() }));
    `;
    const slack = { SKADI_SLACK_BOT_TOKEN: 'xoxb-test', SKADI_SLACK_SIGNING_SECRET: 'secret', SKADI_SLACK_BOT_USER_ID: 'UBOT' };
    const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, ...env, ...slack }, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({ atLoad: [], listed: [], made: ['slack'], after: ['@slack/bolt'] });
  });
});
