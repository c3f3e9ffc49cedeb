/** The skadi-agent daemon's config promises against a real `skadi serve`: env, exit codes, dir, timeout, config search, concurrency. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { processAlive as alive, ROOT } from '../helpers/process';

const DAEMON = path.join(ROOT, 'dist/agent/daemon/main.js');
/** The search order starts at /etc/skadi/skadi.yml; the cwd cases hold only on a machine without it (these tests never write /etc). */
const ETC_CONFIG = '/etc/skadi/skadi.yml';
const withoutEtcConfig = fs.existsSync(ETC_CONFIG) ? it.skip : it;

let gw: Gateway;
let dir: string;
const daemons: Daemon[] = [];

interface Daemon {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

beforeAll(async () => {
  gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-agent-cfg-'));
}, 60_000);

afterAll(async () => {
  await Promise.all(daemons.map(stopDaemon));
  await gw?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

let agentSeq = 0;
/** A new agent of the gateway's user, so that each daemon here takes only its own jobs. */
async function freshAgent(): Promise<{ id: number; name: string; token: string }> {
  const user = await gw.core.users.byName('ops');
  const { agent, token } = await gw.core.agents.create(user.id, `cfg${++agentSeq}`);
  return { id: agent.id, name: agent.name, token };
}

/** Starts the daemon binary with only the given environment (plus PATH and HOME). */
function startDaemon(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Daemon {
  const child = spawn(process.execPath, [DAEMON, ...args], {
    cwd: options.cwd ?? dir,
    env: { PATH: process.env.PATH, HOME: dir, ...options.env },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const daemon = { child, output: () => output, exited: new Promise<number | null>((resolve) => child.once('close', resolve)) }; // 'close': after its last output
  daemons.push(daemon);
  return daemon;
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGTERM');
  await daemon.exited;
}

/** A file in the test directory. */
function writeFile(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** Starts a daemon for a fresh agent with `body` after its token and server; resolves once it polls. */
async function daemonFor(
  body: string,
  env: Record<string, string> = {},
): Promise<{ daemon: Daemon; run(text: string): Promise<Record<string, any>> }> {
  const agent = await freshAgent();
  const file = writeFile(`${agent.name}.yml`, `token: ${agent.token}\nserver: ${gw.base}\n${body}`);
  const daemon = startDaemon(['--config', file], { env });
  await eventually(() => gw.core.agents.isOnline(agent.id), 10_000, `${agent.name} to poll`);
  return { daemon, run: async (text) => gw.waitJob(await gw.push(text, agent.name)) };
}

describe('what a command sees and how it fails', () => {
  let run: (text: string) => Promise<Record<string, any>>;
  const pidFile = () => path.join(dir, 'family.pid');

  beforeAll(async () => {
    ({ run } = await daemonFor(
      `env: [PATH, ALLOWED_ONE]
shortcuts:
  - short: showenv
    cmd: env
  - short: fail
    cmd: echo out; exit 3
  - short: quietfail
    cmd: exit 4
  - short: nowhere
    cmd: echo never
    dir: /nonexistent
  - short: family
    cmd: ${JSON.stringify(`sleep 30 & echo $! > ${pidFile()}; wait`)}
    timeout: 1s
commands:
  - prefix: printenv
  - prefix: no-such-program-skadi
`,
      { SECRET_THING: 'x', ALLOWED_ONE: 'y' },
    ));
  }, 30_000);

  it('passes only the allow-listed variables of the daemon environment', async () => {
    // A command runs without a shell: its environment is exactly what the daemon passes.
    const direct = await run('printenv');
    expect(direct.status).toBe('succeeded');
    expect(direct.result).toBe(`PATH=${process.env.PATH}\nALLOWED_ONE=y\n`);
    // A shortcut's shell adds its own (PWD, SHLVL…), but nothing else of the daemon's environment.
    const shell = await run('showenv');
    expect(shell.status).toBe('succeeded');
    const names = (shell.result as string)
      .trim()
      .split('\n')
      .map((line) => line.split('=')[0]);
    expect(names.filter((n) => !['PWD', 'OLDPWD', 'SHLVL', '_'].includes(n)).sort()).toEqual(['ALLOWED_ONE', 'PATH']);
    expect(shell.result).toContain('ALLOWED_ONE=y\n');
    expect(shell.result).not.toContain('SECRET_THING');
  });

  it('fails a command that exits non-zero with its output followed by [exit code N]', async () => {
    expect(await run('fail')).toMatchObject({ status: 'failed', result: 'out\n[exit code 3]' });
    expect(await run('quietfail')).toMatchObject({ status: 'failed', result: '[exit code 4]' });
  });

  it('says why a command cannot start: a missing working directory, a missing program', async () => {
    expect(await run('nowhere')).toMatchObject({ status: 'failed', result: '[working directory /nonexistent does not exist]' });
    expect(await run('no-such-program-skadi')).toMatchObject({ status: 'failed', result: '[cannot run no-such-program-skadi: not found]' });
  });

  it('kills the whole process group at the timeout: a background child of the command is gone too', async () => {
    fs.rmSync(pidFile(), { force: true });
    expect(await run('family')).toMatchObject({ status: 'failed', result: '[killed after the 1 s timeout]' });
    const pid = Number(fs.readFileSync(pidFile(), 'utf8'));
    expect(pid).toBeGreaterThan(1);
    try {
      await eventually(() => !alive(pid), 5000, `the background sleep (pid ${pid}) to be killed with its group`);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('which config file, and the environment over it', () => {
  const check = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
    spawnSync(process.execPath, [DAEMON, ...args, '--check'], {
      cwd: options.cwd ?? dir,
      env: { PATH: process.env.PATH, ...options.env },
      encoding: 'utf8',
    });

  /** A directory holding a skadi.yml, as the daemon's working directory. */
  function workdirWith(name: string, text: string): string {
    const cwd = path.join(dir, name);
    fs.mkdirSync(cwd);
    fs.writeFileSync(path.join(cwd, 'skadi.yml'), text, { mode: 0o600 });
    return cwd;
  }

  withoutEtcConfig('reads ./skadi.yml of its working directory without --config, and --config before it', () => {
    const cwd = workdirWith('search', 'token: ska_x\nserver: https://from-cwd.example.com\nshortcuts:\n  - short: hi\n    cmd: echo hi\n');
    const found = check([], { cwd });
    expect({ status: found.status, stderr: found.stderr }).toEqual({ status: 0, stderr: '' });
    expect(found.stdout).toBe(
      'skadi.yml: OK (server https://from-cwd.example.com)\nShortcuts (the exact message runs the command):\n  hi  →  echo hi\n',
    );
    const other = writeFile('given.yml', 'token: ska_x\nserver: https://given.example.com\n');
    expect(check(['--config', other], { cwd }).stdout).toMatch(new RegExp(`^${other}: OK \\(server https://given\\.example\\.com\\)\n`));
  });

  withoutEtcConfig('exits 2 saying where it looked when there is no config file', () => {
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const none = check([], { cwd: empty });
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toBe('skadi-agent: no config file: looked for /etc/skadi/skadi.yml and ./skadi.yml (or pass --config <file>)\n');
  });

  it('--help says the system file comes first, unlike the original agent', () => {
    const help = spawnSync(process.execPath, [DAEMON, '--help'], { encoding: 'utf8' });
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(
      'default /etc/skadi/skadi.yml, then ./skadi.yml: the system file first, unlike the original agent',
    );
  });

  it('`skadi-agent <token>` writes the token into the config file, as the original did, and refuses what is no agent token', () => {
    const example = fs.readFileSync(path.join(ROOT, 'test/fixtures/original-agent-example.skadi.yml'), 'utf8');
    const file = writeFile('enrol.yml', example);
    const token = `ska_${'t'.repeat(32)}`;
    const written = spawnSync(process.execPath, [DAEMON, '--config', file, token], {
      cwd: dir,
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    });
    expect({ status: written.status, stdout: written.stdout, stderr: written.stderr }).toEqual({
      status: 0,
      stdout: `${file}: token written; start the agent with: skadi-agent --config ${file}\n`,
      stderr: '',
    });
    expect(fs.readFileSync(file, 'utf8')).toBe(example.replace(/^token:\n/m, `token: "${token}"\n`)); // comments and the rest unchanged
    expect(check(['--config', file], { env: { SKADI_SERVER: 'https://skadi.example.com' } }).status).toBe(0);

    const xid = spawnSync(process.execPath, [DAEMON, '--config', file, 'abcdefghij0123456789'], {
      cwd: dir,
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    });
    expect({ status: xid.status, stdout: xid.stdout }).toEqual({ status: 2, stdout: '' });
    expect(xid.stderr).toBe(
      'skadi-agent: "abcdefghij0123456789" is not an agent token (ska_ and 32 characters); `skadi agent add <name> --user <user>` or `skadi agent token <name> --user <user>` prints one\n',
    );
    expect(fs.readFileSync(file, 'utf8')).toContain(`token: "${token}"\n`);
  });

  it('SKADI_SERVER and SKADI_AGENT_TOKEN override the file (--check)', () => {
    const file = writeFile('tokenless.yml', 'server: https://from-file.example.com\n');
    const tokenless = check(['--config', file]);
    expect({ status: tokenless.status, stderr: tokenless.stderr }).toEqual({
      status: 2,
      stderr: `skadi-agent: ${file}: token is required (or set SKADI_AGENT_TOKEN)\n`,
    });
    const overridden = check(['--config', file], { env: { SKADI_AGENT_TOKEN: 'ska_env', SKADI_SERVER: 'https://from-env.example.com' } });
    expect(overridden.status).toBe(0);
    expect(overridden.stdout).toMatch(new RegExp(`^${file}: OK \\(server https://from-env\\.example\\.com\\)\n`));
  });

  withoutEtcConfig('a daemon started in a directory with ./skadi.yml polls with the token and server of its environment', async () => {
    const agent = await freshAgent();
    const cwd = workdirWith(
      'override',
      `token: ska_${'y'.repeat(32)}\nserver: http://127.0.0.1:9\nshortcuts:\n  - short: where\n    cmd: echo from the cwd config\n`,
    );
    // Only the server from the environment: the file's token reaches the gateway and is refused (exit 3).
    const fileToken = startDaemon([], { cwd, env: { SKADI_SERVER: gw.base } });
    await eventually(() => fileToken.child.exitCode !== null, 15_000, 'the daemon with the token of its file to stop');
    expect(fileToken.child.exitCode).toBe(3);
    expect(fileToken.output()).toContain('invalid agent token');
    // Token and server from the environment: it polls, and runs the shortcut of ./skadi.yml.
    const daemon = startDaemon([], { cwd, env: { SKADI_SERVER: gw.base, SKADI_AGENT_TOKEN: agent.token } });
    await eventually(() => gw.core.agents.isOnline(agent.id), 10_000, 'the daemon to poll with the token of its environment');
    expect(await gw.waitJob(await gw.push('where', agent.name))).toMatchObject({ status: 'succeeded', result: 'from the cwd config\n' });
    await stopDaemon(daemon);
    expect(daemon.output()).toContain('"config":"skadi.yml"');
  });
});

describe("the original agent's example config", () => {
  /** Written by us in the shape of hack-fan/skadi-agent-shell's example.skadi.yml: same keys and order, empty `token:`. */
  const EXAMPLE = path.join(ROOT, 'test/fixtures/original-agent-example.skadi.yml');

  it('runs unchanged, its empty token filled by SKADI_AGENT_TOKEN and its server by SKADI_SERVER', async () => {
    expect(fs.readFileSync(EXAMPLE, 'utf8')).toMatch(/^token:\n/m);
    const agent = await freshAgent();
    const daemon = startDaemon(['--config', EXAMPLE], { env: { SKADI_AGENT_TOKEN: agent.token, SKADI_SERVER: gw.base } });
    await eventually(() => gw.core.agents.isOnline(agent.id), 10_000, 'the daemon with the example config to poll');
    const run = async (text: string) => gw.waitJob(await gw.push(text, agent.name));
    expect(await run('Hi Jim')).toMatchObject({ status: 'succeeded', result: 'I am not Jim!\n' });
    expect(await run('free')).toMatchObject({ status: 'succeeded', result: expect.stringMatching(/^\s+total\s+used.*\nMem:/s) });
    expect(await run('lsroot')).toMatchObject({ status: 'succeeded', result: expect.stringMatching(/^etc$/m) });
    expect(await run('date')).toMatchObject({
      status: 'succeeded',
      result: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d\n$/),
    });
    // Sender options are refused unless the entry says `options: true` (the original ran `free -m`).
    expect(await run('free -m')).toMatchObject({
      status: 'failed',
      result: 'refused: "free" takes no options (arguments starting with "-")',
    });
    await stopDaemon(daemon);
  });
});

describe('concurrency', () => {
  it('runs two jobs at the same time with concurrency: 2 (each waits for the other to start)', async () => {
    // Each shortcut marks that it started, then waits (up to 10 s) for the other's mark: both meet only if they overlap.
    const meet = (self: string, other: string) =>
      JSON.stringify(
        `touch ${dir}/${self}; n=0; while [ ! -e ${dir}/${other} ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; [ -e ${dir}/${other} ] && echo met ${other} || echo alone`,
      );
    const { daemon, run } = await daemonFor(
      `concurrency: 2\nshortcuts:\n  - short: meet-a\n    cmd: ${meet('started-a', 'started-b')}\n  - short: meet-b\n    cmd: ${meet('started-b', 'started-a')}\n`,
    );
    const [a, b] = await Promise.all([run('meet-a'), run('meet-b')]);
    expect([a.status, a.result, b.status, b.result]).toEqual(['succeeded', 'met started-b\n', 'succeeded', 'met started-a\n']);
    await stopDaemon(daemon);
  });

  it('runs one job after the other with concurrency: 1 (the times each command prints do not overlap)', async () => {
    const { daemon, run } = await daemonFor(`concurrency: 1\nshortcuts:\n  - short: stamp\n    cmd: date +%s%3N; sleep 1; date +%s%3N\n`);
    const jobs = await Promise.all([run('stamp'), run('stamp')]);
    const spans = jobs.map((job) => {
      expect(job.status).toBe('succeeded');
      const [start, end] = (job.result as string).trim().split('\n').map(Number);
      return { start, end };
    });
    spans.sort((x, y) => x.start - y.start);
    expect(spans[1].start).toBeGreaterThanOrEqual(spans[0].end);
    await stopDaemon(daemon);
  });
});
