import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allowedEnv, runCommand, type RunOptions } from '../../agent/daemon/runner';
import { processAlive as alive } from '../helpers/process';

const NODE = process.execPath;
const base: Omit<RunOptions, 'argv'> = {
  env: { PATH: process.env.PATH },
  timeoutMs: 20000,
  outputLimit: 64 * 1024,
  progressIntervalMs: 60000,
};

/** Runs `node -e script ...args`. */
function node(script: string, args: string[] = [], options: Partial<RunOptions> = {}) {
  return runCommand({ ...base, ...options, argv: [NODE, '-e', script, ...args] });
}

describe('runCommand', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-runner-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes each word as one argument, with nothing interpreted by a shell', async () => {
    const marker = path.join(dir, 'pwned');
    const words = [`; touch ${marker}`, '$(id)', '`id`', '*', 'a b', "'q'"];
    const result = await node('process.stdout.write(JSON.stringify(process.argv.slice(1)))', words);
    expect(result).toEqual({ ok: true, exitCode: 0, signal: null, timedOut: false, output: JSON.stringify(words), failure: null });
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('reports a non-zero exit with its code, and keeps stdout and stderr', async () => {
    const result = await node('process.stdout.write("out;"); process.stderr.write("err"); process.exit(3)');
    expect(result).toMatchObject({ ok: false, exitCode: 3, signal: null, timedOut: false, failure: 'exit code 3' });
    expect(result.output.split('').sort().join('')).toBe('out;err'.split('').sort().join(''));
  });

  it('reports a command killed by a signal', async () => {
    const result = await node('process.kill(process.pid, "SIGKILL")');
    expect(result).toMatchObject({ ok: false, exitCode: null, signal: 'SIGKILL', timedOut: false, failure: 'killed by SIGKILL' });
  });

  it('refuses a command that is not on PATH and a working directory that does not exist', async () => {
    await expect(runCommand({ ...base, argv: ['skadi-no-such-command'] })).resolves.toEqual({
      ok: false,
      exitCode: null,
      signal: null,
      timedOut: false,
      output: '',
      failure: 'cannot run skadi-no-such-command: not found',
    });
    const missing = path.join(dir, 'gone');
    await expect(node('', [], { cwd: missing })).resolves.toEqual({
      ok: false,
      exitCode: null,
      signal: null,
      timedOut: false,
      output: '',
      failure: `working directory ${missing} does not exist`,
    });
  });

  it('gives a command an empty input, so one that reads it ends', async () => {
    const result = await node(
      'let n = 0; process.stdin.on("data", (c) => (n += c.length)).on("end", () => process.stdout.write(`eof after ${n}`))',
    );
    expect(result).toMatchObject({ ok: true, output: 'eof after 0' });
  });

  it('says why a command that exists cannot be run', async () => {
    const file = path.join(dir, 'not-executable');
    fs.writeFileSync(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    expect(await runCommand({ ...base, argv: [file] })).toEqual({
      ok: false,
      exitCode: null,
      signal: null,
      timedOut: false,
      output: '',
      failure: `cannot run ${file}: spawn ${file} EACCES`,
    });
  });

  it('kills a command that ignores SIGTERM at the timeout, after a grace period', async () => {
    const result = await node(
      'process.on("SIGTERM", () => process.stdout.write("ignored TERM;")); process.stdout.write("up;"); setInterval(() => {}, 1000)',
      [],
      { timeoutMs: 500 },
    );
    expect(result).toMatchObject({ ok: false, timedOut: true, signal: 'SIGKILL', failure: 'killed after the 1 s timeout' });
    expect(result.output).toBe('up;ignored TERM;');
  });

  it('finishes when the command exits, even if a process it left behind holds its output open', async () => {
    const pidFile = path.join(dir, 'left.pid');
    // The grandchild leaves the process group (detached) and keeps stdout open for a minute.
    const script = `const c = require("child_process").spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { detached: true, stdio: ["ignore", "inherit", "inherit"] });
      require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); c.unref(); process.stdout.write("done");`;
    try {
      const result = await node(script);
      expect(result).toMatchObject({ ok: true, exitCode: 0, output: 'done' });
    } finally {
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      if (pid) process.kill(pid, 'SIGKILL');
    }
  });

  it('runs in the given directory, with only the given environment', async () => {
    const result = await node('process.stdout.write(process.cwd() + "|" + Object.keys(process.env).sort().join(","))', [], {
      cwd: dir,
      env: { PATH: process.env.PATH, ONLY_THIS: '1' },
    });
    expect(result.output).toBe(`${fs.realpathSync(dir)}|ONLY_THIS,PATH`);
  });

  it('kills the whole process group at the timeout, children included', async () => {
    const pidFile = path.join(dir, 'child.pid');
    // The command starts a grandchild that would outlive it, writes its pid, then waits forever.
    const script = `const c = require("child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
      require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); setInterval(() => {}, 1000);`;
    const result = await node(script, [], { timeoutMs: 1000 });
    expect(result).toMatchObject({ ok: false, timedOut: true, failure: 'killed after the 1 s timeout', signal: 'SIGTERM' });
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    for (let i = 0; i < 100 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(grandchild)).toBe(false);
  });

  it('kills the command when the agent stops', async () => {
    const controller = new AbortController();
    const started = node('process.stdout.write("up"); setInterval(() => {}, 1000)', [], {
      signal: controller.signal,
      progressIntervalMs: 20,
      onProgress: (tail) => {
        if (tail === 'up') controller.abort();
      },
    });
    await expect(started).resolves.toMatchObject({ ok: false, timedOut: false, failure: 'killed: the agent is stopping', output: 'up' });
  });

  it('keeps all output under the limit, and the head and the tail with the count omitted above it', async () => {
    const small = await node('process.stdout.write("x".repeat(5000))', [], { outputLimit: 5000 });
    expect(small.output).toBe('x'.repeat(5000));
    // 4000 bytes of head room (limit 7000 minus the 3000-byte tail), 20000 bytes written in pieces.
    const script = 'for (let i = 0; i < 20; i++) process.stdout.write(String.fromCharCode(97 + i).repeat(1000))';
    const big = await node(script, [], { outputLimit: 7000 });
    const letters = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => String.fromCharCode(97 + from + i).repeat(1000)).join('');
    expect(big.output).toBe(`${letters(0, 4)}\n…[output truncated: 13000 bytes omitted]…\n${letters(17, 20)}`);
  });

  it('reports progress with the output tail, only when it changed', async () => {
    const seen: string[] = [];
    const gate = path.join(dir, 'go');
    // Writes "one", waits until the test has seen it, writes "two", waits again, exits.
    const script = `const fs = require("fs"); const wait = (n, then) => { const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(gate)} + n)) { clearInterval(t); then(); } }, 10); };
      process.stdout.write("one"); wait(1, () => { process.stdout.write("two"); wait(2, () => process.exit(0)); });`;
    const result = await node(script, [], {
      progressIntervalMs: 20,
      onProgress: (tail) => {
        seen.push(tail);
        if (tail === 'one') fs.writeFileSync(`${gate}1`, '');
        if (tail === 'onetwo') fs.writeFileSync(`${gate}2`, '');
      },
    });
    expect(result.ok).toBe(true);
    // A tick before the first output reports the empty tail once (the command has started); then only changes.
    expect(seen[0] === '' ? seen.slice(1) : seen).toEqual(['one', 'onetwo']);
  });
});

describe('allowedEnv', () => {
  it('keeps only the named variables that are set', () => {
    expect(allowedEnv(['PATH', 'LANG', 'MISSING'], { PATH: '/bin', LANG: 'C', SECRET: 'x', EMPTY: '' })).toStrictEqual({
      PATH: '/bin',
      LANG: 'C',
    });
    expect(Object.keys(allowedEnv(['PATH', 'MISSING'], { PATH: '/bin' }))).toEqual(['PATH']);
    expect(allowedEnv(['EMPTY'], { EMPTY: '' })).toStrictEqual({ EMPTY: '' });
    expect(allowedEnv([], { PATH: '/bin' })).toStrictEqual({});
  });
});
