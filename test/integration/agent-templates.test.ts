/** The real skadi-agent with a config in the original agent's format: shell templates run, the sender's words stay values. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../helpers/env';
import { startGateway, type Gateway } from '../helpers/gateway';
import { ROOT } from '../helpers/process';

const DAEMON = path.join(ROOT, 'dist/agent/daemon/main.js');
let gw: Gateway;
let dir: string;
let marker: string;
let child: ChildProcess;
let output = '';

/** The original agent's example, plus two templates with a pipe and single quotes; no server key (SKADI_SERVER gives it). */
const originalConfig = (token: string) => `debug: true
token: ${token}
shortcuts:
  - short: hello
    cmd: echo hello from a shortcut
  - short: root
    cmd: ls
    dir: /
commands:
  - prefix: free
templates:
  - name: Hi
    temp: "echo I am not %s!"
  - name: up
    temp: "echo %s | tr a-z A-Z"
  - name: say
    temp: "echo 'said: %s'"
unknown_key_of_a_newer_agent: true
`;

beforeAll(async () => {
  gw = await startGateway({ SKADI_SWEEP_INTERVAL: '100ms' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skadi-templates-'));
  marker = path.join(dir, 'pwned');
  const file = path.join(dir, 'skadi.yml');
  fs.writeFileSync(file, originalConfig(gw.agentToken), { mode: 0o600 });
  child = spawn(process.execPath, [DAEMON, '--config', file], { env: { PATH: process.env.PATH, HOME: dir, SKADI_SERVER: gw.base } });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const agent = (await gw.core.agents.list(null))[0];
  await eventually(() => gw.core.agents.isOnline(agent.id), 10_000, 'the daemon to poll');
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await gw?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(text: string): Promise<Record<string, any>> {
  return gw.waitJob(await gw.push(text));
}

describe('a config in the original format', () => {
  it('starts, with a warning for the key it does not know', () => {
    const warning = output.split('\n').find((line) => line.includes('unknown_key_of_a_newer_agent'));
    expect(JSON.parse(warning!)).toMatchObject({
      level: 40,
      msg: expect.stringContaining('unknown key "unknown_key_of_a_newer_agent" is ignored'),
    });
  });

  it('runs its templates through the shell', async () => {
    expect(await run('Hi Jim')).toMatchObject({ status: 'succeeded', result: 'I am not Jim!\n' });
    expect(await run('up jim')).toMatchObject({ status: 'succeeded', result: 'JIM\n' });
    expect(await run('say hello')).toMatchObject({ status: 'succeeded', result: 'said: hello\n' });
    expect(await run('say "two words"')).toMatchObject({ status: 'succeeded', result: 'said: two words\n' });
  });

  it('runs its shortcuts and the free command', async () => {
    expect(await run('hello')).toMatchObject({ status: 'succeeded', result: 'hello from a shortcut\n' });
    expect((await run('root')).result).toMatch(/^(bin|etc)$/m);
    expect(await run('free')).toMatchObject({ status: 'succeeded', result: expect.stringContaining('Mem:') });
  });

  it('answers a usage line when the words do not fit the template', async () => {
    expect(await run('Hi Jim Bob')).toMatchObject({ status: 'failed', result: expect.stringContaining('usage: Hi <word>') });
    expect(await run('Hi')).toMatchObject({ status: 'failed', result: expect.stringContaining('usage: Hi <word>') });
  });

  it('lists everything with its usage on help and all', async () => {
    for (const text of ['help', 'all']) {
      const job = await run(text);
      expect(job.status).toBe('succeeded');
      for (const entry of [
        'hello  →  echo hello from a shortcut',
        'free [arguments…]',
        'Hi <word>  →  echo I am not %s!',
        'up <word>  →  echo %s | tr a-z A-Z',
      ]) {
        expect(job.result).toContain(entry);
      }
    }
  });
});

describe('shell templates never run the sender words', () => {
  /** What the shell would run if it parsed the word: each attempt tries to create the marker file. */
  const attempts = (m: string): string[] => [
    `"$(touch ${m})"`,
    `'$(touch ${m})'`,
    `"\`touch ${m}\`"`,
    `"x; touch ${m}"`,
    `"x | touch ${m}"`,
    `"x && touch ${m}"`,
    `"'; touch ${m}; echo '"`,
    `"'\\"; touch ${m}; echo \\"'"`,
    `'"; touch ${m}; echo "'`,
    `'"$(touch ${m})"'`,
    `"\${IFS}touch${'$'}{IFS}${m}"`,
    `"$(touch ${m})" "extra"`,
    `"x' \`touch ${m}\` '"`,
    `"> ${m}"`,
  ];
  const templates: [string, (word: string) => string][] = [
    ['say', (w) => `said: ${w}\n`],
    ['Hi', (w) => `I am not ${w}!\n`],
    ['up', (w) => `${w.toUpperCase()}\n`],
  ];

  it.each(templates)('%s: each attempt prints the words literally, or is refused; the marker never appears', async (name, expected) => {
    for (const attempt of attempts(marker)) {
      const text = `${name} ${attempt}`;
      const job = await run(text);
      if (attempt.endsWith('"extra"')) {
        expect({ text, status: job.status, result: job.result }).toEqual({
          text,
          status: 'failed',
          result: expect.stringContaining(`usage: ${name} <word>`),
        });
      } else {
        const word = attempt.slice(1, -1).replace(/\\"/g, '"');
        expect({ text, status: job.status, result: job.result }).toEqual({ text, status: 'succeeded', result: expected(word) });
      }
      expect(fs.existsSync(marker)).toBe(false);
    }
  });

  it('refuses unquoted shell syntax before any shell runs, with the reason', async () => {
    expect(await run(`say $(touch ${marker})`)).toMatchObject({
      status: 'failed',
      result: expect.stringContaining('"$" is a shell operator'),
    });
    expect(await run(`up x;touch ${marker}`)).toMatchObject({
      status: 'failed',
      result: expect.stringContaining('";" is a shell operator'),
    });
    expect(fs.existsSync(marker)).toBe(false);
  });
});
