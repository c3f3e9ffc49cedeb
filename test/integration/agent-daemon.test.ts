/** The skadi-agent daemon as a process against a real `skadi serve`: what it runs, what it refuses, and how it stops. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually, readStream } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { ROOT } from '../helpers/process';

const DAEMON = path.join(ROOT, 'dist/agent/daemon/main.js');
let gw: Gateway;
let dir: string;
let marker: string;

function writeConfig(token: string, extra = ''): string {
  const file = path.join(dir, `skadi-${Math.random().toString(36).slice(2)}.yml`);
  fs.writeFileSync(
    file,
    `token: ${token}
server: ${gw.base}
progress_interval: 200ms
output_limit: 4096
shortcuts:
  - short: hello
    cmd: echo hello from a shortcut
  - short: slow
    cmd: for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done
  - short: forever
    cmd: sleep 30
    timeout: 1s
  - short: big
    cmd: seq 1 100000
  - short: escape
    cmd: setsid sh -c 'echo $$ > ${dir}/escape.pid; sleep 30; touch ${dir}/escape.done' & echo started
  - short: escape-forever
    cmd: setsid sh -c 'echo $$ > ${dir}/forever.pid; sleep 30; touch ${dir}/forever.done' & sleep 30
    timeout: 1s
  - short: whereami
    cmd: pwd
    dir: ${dir}
commands:
  - prefix: echo
  - prefix: free
  - prefix: ls
    options: true
    dir: ${dir}
templates:
  - name: greet
    temp: echo hello %s
${extra}`,
  );
  return file;
}

interface Daemon {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}
/** Every daemon started and not known to have exited: afterAll stops those a failed test left running. */
const daemons = new Set<Daemon>();

/** Starts the daemon binary (it has not necessarily logged or polled yet when this resolves). */
async function startDaemon(file: string): Promise<Daemon> {
  const child = spawn(process.execPath, [DAEMON, '--config', file], { env: { PATH: process.env.PATH, HOME: dir } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // 'close' comes after the last output was read ('exit' may come before it).
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const started: Daemon = { child, output: () => output, exited };
  daemons.add(started);
  void exited.then(() => daemons.delete(started));
  return started;
}

/** Stops a daemon (SIGTERM) unless it is gone already, and waits for it to exit. */
async function stopDaemon(d: Daemon): Promise<number | null> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
  return d.exited;
}

/** Kills the process group of a command that left the daemon's (setsid), by the pid it wrote; true if it was alive. */
async function killEscaped(pidFile: string): Promise<boolean> {
  const pid = await eventually(() => fs.existsSync(pidFile) && Number(fs.readFileSync(pidFile, 'utf8')), 10_000, `${pidFile} written`);
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

let daemon: Daemon;

beforeAll(async () => {
  gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-agent-'));
  marker = path.join(dir, 'pwned');
  daemon = await startDaemon(writeConfig(gw.agentToken));
  const agent = (await gw.core.agents.list(null))[0];
  await eventually(() => gw.core.agents.isOnline(agent.id), 10_000, 'the daemon to poll');
}, 60_000);

afterAll(async () => {
  for (const d of [...daemons]) await stopDaemon(d);
  for (const file of ['escape.pid', 'forever.pid']) if (dir && fs.existsSync(path.join(dir, file))) await killEscaped(path.join(dir, file));
  await gw?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function run(text: string): Promise<Record<string, any>> {
  return gw.waitJob(await gw.push(text));
}

describe('skadi-agent runs what its config allows', () => {
  it('runs a shortcut through the shell', async () => {
    expect(await run('hello')).toMatchObject({ status: 'succeeded', result: 'hello from a shortcut\n' });
    expect(await run('whereami')).toMatchObject({ status: 'succeeded', result: `${fs.realpathSync(dir)}\n` });
  });

  it('runs a command with the sender words as arguments', async () => {
    expect(await run('echo one "two three"')).toMatchObject({ status: 'succeeded', result: 'one two three\n' });
    fs.writeFileSync(path.join(dir, 'listed.txt'), '');
    expect((await run('ls -1')).result).toContain('listed.txt');
  });

  it('fills a template', async () => {
    expect(await run('greet world')).toMatchObject({ status: 'succeeded', result: 'hello world\n' });
  });

  it('answers help with the allow-list', async () => {
    const help = await run('help');
    expect(help.status).toBe('succeeded');
    for (const entry of ['hello', 'echo [arguments…]', 'echo hello %s']) expect(help.result).toContain(entry);
  });

  it('fails an unknown command with a clear message', async () => {
    expect(await run('reboot now')).toMatchObject({ status: 'failed', result: expect.stringContaining('unknown command "reboot"') });
  });

  it('kills a command that exceeds its timeout and reports it failed', async () => {
    const job = await run('forever');
    expect(job.status).toBe('failed');
    expect(job.result).toContain('killed after the 1 s timeout');
  });

  it('finishes when the command exits, even if a process that left its group holds the output open', async () => {
    // Each escaped process holds the output open for 30 s and then leaves a file: the job ended before it did.
    expect(await run('escape')).toMatchObject({ status: 'succeeded', result: 'started\n' });
    expect(fs.existsSync(path.join(dir, 'escape.done'))).toBe(false);
    expect(await killEscaped(path.join(dir, 'escape.pid'))).toBe(true); // it was still running
    const forever = await run('escape-forever');
    expect(forever).toMatchObject({ status: 'failed', result: expect.stringContaining('killed after the 1 s timeout') });
    expect(fs.existsSync(path.join(dir, 'forever.done'))).toBe(false);
    expect(await killEscaped(path.join(dir, 'forever.pid'))).toBe(true);
  });

  it('truncates large output, keeping its start and end', async () => {
    const job = await run('big');
    expect(job.status).toBe('succeeded');
    expect(job.result.length).toBeLessThan(5000);
    expect(job.result.startsWith('1\n2\n3\n')).toBe(true);
    expect(job.result).toMatch(/output truncated: \d+ bytes omitted/);
    expect(job.result.trimEnd().endsWith('100000')).toBe(true);
  });

  it('reports running with the output tail while a slow command runs', async () => {
    const id = await gw.push('slow');
    const job = await gw.waitJob(id);
    expect(job).toMatchObject({ status: 'succeeded' });
    expect(job.result).toContain('tick 6');
    const running = (await readStream(gw.core, gw.core.keys.jobStatusStream)).filter((e) => e.job_id === id && e.status === 'running');
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(running[0].result).toMatch(/tick \d/);
    expect(running[running.length - 1].result.length).toBeGreaterThan(running[0].result.length);
  });
});

describe('chat text never reaches a shell', () => {
  /** Each attempt and the refusal it must get: the job fails with that reason, and nothing runs. */
  const attempts = (m: string): [string, string][] => [
    [`free; touch ${m}`, '";" is a shell operator'],
    [`free $(touch ${m})`, '"$" is a shell operator'],
    [`free && touch ${m}`, '"&" is a shell operator'],
    [`free | sh -c "touch ${m}"`, '"|" is a shell operator'],
    [`free \`touch ${m}\``, '"`" is a shell operator'],
    [`free\ntouch ${m}`, 'control characters'],
    [`free > ${m}`, '">" is a shell operator'],
    [`hello; touch ${m}`, '";" is a shell operator'],
    [`hello && touch ${m}`, '"&" is a shell operator'],
    [`greet $(touch ${m})`, '"$" is a shell operator'],
    [`greet ;touch ${m}`, '";" is a shell operator'],
    [`touch ${m}`, 'unknown command "touch"'],
    [`sh -c "touch ${m}"`, 'unknown command "sh"'],
    [`-c "touch ${m}"`, 'unknown command "-c"'],
    [`--help`, 'unknown command "--help"'],
    [`echo ${'$'}{IFS}touch ${m}`, '"$" is a shell operator'],
  ];

  it('refuses every injection attempt with its reason: the marker file never appears', async () => {
    for (const [text, reason] of attempts(marker)) {
      const job = await run(text);
      expect({ text, status: job.status, result: job.result }).toEqual({ text, status: 'failed', result: expect.stringContaining(reason) });
      expect(fs.existsSync(marker)).toBe(false);
    }
  });

  it('passes quoted shell syntax as literal arguments', async () => {
    expect(await run(`echo "$(touch ${marker})"`)).toMatchObject({ status: 'succeeded', result: `$(touch ${marker})\n` });
    expect(await run(`echo '; touch ${marker}'`)).toMatchObject({ status: 'succeeded', result: `; touch ${marker}\n` });
    expect(await run(`greet '\`touch ${marker}\`'`)).toMatchObject({ status: 'succeeded', result: `hello \`touch ${marker}\`\n` });
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('skadi-agent process', () => {
  it('stops gracefully on SIGTERM: the running job finishes and reports, then it exits 0', async () => {
    const second = await startDaemon(writeConfig(gw.agentToken));
    try {
      expect(await stopDaemon(daemon)).toBe(0); // only the second daemon polls now
      await eventually(() => second.output().includes('"msg":"agent started"'), 10_000, 'the second daemon to start polling');
      const id = await gw.push('slow');
      await eventually(async () => (await gw.core.jobs.get(id, null)).status === 'running', 10_000, 'the job to run');
      expect(await stopDaemon(second)).toBe(0);
      expect(await gw.core.jobs.get(id, null)).toMatchObject({ status: 'succeeded', result: expect.stringContaining('tick 6') });
      expect(second.output()).toContain('"msg":"agent stopped"');
    } finally {
      await stopDaemon(second);
      daemon = await startDaemon(writeConfig(gw.agentToken)); // for the tests after this one
    }
  });

  it('exits 3 with a clear message when the token is refused', async () => {
    const bad = await startDaemon(writeConfig('ska_' + 'y'.repeat(32)));
    expect(await bad.exited).toBe(3);
    expect(bad.output()).toContain('invalid agent token');
  });

  it('exits 2 naming the line of a bad config file', async () => {
    const file = writeConfig(gw.agentToken, 'concurrency: many\n');
    const bad = await startDaemon(file);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(new RegExp(`${path.basename(file)}:\\d+: concurrency: `));
  });

  it('--check warns about a token file others can read and a plain-http server, and passes a safe one', () => {
    const check = (file: string) =>
      spawnSync(process.execPath, [DAEMON, '--config', file, '--check'], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    const unsafe = path.join(dir, 'unsafe.yml');
    fs.writeFileSync(unsafe, 'token: ska_x\nserver: http://skadi.example.com\ncommands:\n  - prefix: uptime\n', { mode: 0o644 });
    fs.chmodSync(unsafe, 0o644);
    const warned = check(unsafe);
    expect(warned.status).toBe(0);
    expect(warned.stderr).toContain(
      `warning: ${unsafe} holds the agent token and is readable by other users (mode 644); run: chmod 600 ${unsafe}`,
    );
    expect(warned.stderr).toContain('warning: server http://skadi.example.com is plain http');
    const safe = path.join(dir, 'safe.yml');
    fs.writeFileSync(safe, 'token: ska_x\nserver: https://skadi.example.com\ncommands:\n  - prefix: uptime\n', { mode: 0o600 });
    const quiet = check(safe);
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toContain('OK (server https://skadi.example.com)');
  });

  it('--check prints what the file allows, and exits 2 naming the file and line of a mistake', () => {
    const check = (file: string) =>
      spawnSync(process.execPath, [DAEMON, '--config', file, '--check'], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    const good = writeConfig(gw.agentToken);
    const ok = check(good);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(`${good}: OK (server ${gw.base})\n`);
    for (const line of [
      '  hello  →  echo hello from a shortcut',
      `  whereami  →  pwd  (in ${dir})`,
      `  ls [arguments…]  (options allowed)  (in ${dir})`,
      '  greet <word>  →  echo hello %s',
    ]) {
      expect(ok.stdout).toContain(`${line}\n`);
    }
    const bad = path.join(dir, 'bad-check.yml');
    fs.writeFileSync(bad, `token: ska_x\nshortcuts:\n  - short: up\n    cmd: uptime\n    timeout: soon\n`, { mode: 0o600 });
    const refused = check(bad);
    expect({ status: refused.status, stdout: refused.stdout }).toEqual({ status: 2, stdout: '' });
    expect(refused.stderr).toBe(`skadi-agent: ${bad}:5: shortcuts.0.timeout: "soon" is not a duration (e.g. 30s, 10m, 1h)\n`);
  });

  it('logs JSON lines and prints its version', async () => {
    // The daemon was started again by the test before: wait for its first line rather than read too early.
    const line = await eventually(
      () =>
        daemon
          .output()
          .split('\n')
          .find((l) => l.includes('skadi-agent starting')),
      10_000,
      'the daemon to log its start',
    );
    expect(JSON.parse(line)).toMatchObject({ svc: 'skadi-agent', msg: 'skadi-agent starting' });
    const version = spawn(process.execPath, [DAEMON, '--version']);
    let out = '';
    version.stdout.on('data', (d) => (out += d));
    await new Promise((r) => version.once('exit', r));
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
