import { parseAgentConfig } from '../../agent/daemon/config';
import { fillTemplate, planMessage } from '../../agent/daemon/plan';
import { RefusedMessage, splitWords } from '../../agent/daemon/words';

const config = parseAgentConfig(
  `
token: t
shortcuts:
  - short: disk
    cmd: df -h | grep -v tmpfs
commands:
  - prefix: free
  - prefix: systemctl status
  - prefix: systemctl
    options: false
templates:
  - name: restart
    temp: systemctl restart %s
  - name: copy
    temp: cp %s --target=%s
`,
  'test.yml',
  {},
);

describe('splitWords', () => {
  it('splits like a shell without expanding anything', () => {
    expect(splitWords('free -m')).toEqual(['free', '-m']);
    expect(splitWords(`grep 'a b' "c \\"d\\"" e\\ f`)).toEqual(['grep', 'a b', 'c "d"', 'e f']);
    expect(splitWords(`echo '$(reboot)' "; rm -rf /"`)).toEqual(['echo', '$(reboot)', '; rm -rf /']);
    expect(splitWords('  ')).toEqual([]);
  });

  it.each([
    ['free; rm -rf /', ';'],
    ['free $(reboot)', '$'],
    ['free && curl x|sh', '&'],
    ['free `reboot`', '`'],
    ['free > /etc/passwd', '>'],
    ['free *', '*'],
  ])('refuses %j (unquoted %s)', (text, op) => {
    expect(() => splitWords(text)).toThrow(new RegExp(`"\\${op}" is a shell operator`));
  });

  it('refuses newlines, NUL and unterminated quotes', () => {
    expect(() => splitWords('free\nreboot')).toThrow(RefusedMessage);
    expect(() => splitWords('free\u0000x')).toThrow(RefusedMessage);
    expect(() => splitWords("free 'x")).toThrow(/unterminated/);
  });
});

describe('planMessage', () => {
  it('runs shortcuts only on an exact match, through the shell', () => {
    expect(planMessage(config, 'disk')).toMatchObject({ kind: 'shell', command: 'df -h | grep -v tmpfs' });
    expect(planMessage(config, 'disk; reboot')).toMatchObject({ kind: 'refuse' });
  });

  it('turns commands into argv with the sender words as arguments (longest prefix wins)', () => {
    expect(planMessage(config, 'free -m')).toMatchObject({ kind: 'exec', argv: ['free', '-m'] });
    expect(planMessage(config, 'systemctl status nginx')).toMatchObject({ kind: 'exec', argv: ['systemctl', 'status', 'nginx'] });
    expect(planMessage(config, 'freedom')).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('unknown command') });
  });

  it('refuses options where the entry says so', () => {
    expect(planMessage(config, 'systemctl --force reboot')).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('no options') });
    expect(planMessage(config, 'restart --now nginx')).toMatchObject({ kind: 'refuse' });
  });

  it('fills templates; a standalone last %s takes the remaining words', () => {
    expect(planMessage(config, 'restart nginx php-fpm')).toMatchObject({ kind: 'exec', argv: ['systemctl', 'restart', 'nginx', 'php-fpm'] });
    expect(planMessage(config, 'copy a.txt /tmp')).toMatchObject({ kind: 'exec', argv: ['cp', 'a.txt', '--target=/tmp'] });
    expect(planMessage(config, 'copy a.txt')).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('needs 2 arguments') });
    expect(() => fillTemplate(config.templates[1], ['a', 'b', 'c'])).toThrow(/takes 2 arguments, got 3/);
  });

  it('never lets the sender choose the program', () => {
    for (const text of ['--help', '-c reboot', 'sh -c reboot', '/bin/sh', 'reboot']) {
      expect(planMessage(config, text).kind).toBe('refuse');
    }
  });

  it('answers help and all with the list', () => {
    for (const text of ['help', 'all']) {
      const plan = planMessage(config, text);
      expect(plan.kind).toBe('help');
      expect((plan as { text: string }).text).toContain('systemctl restart %s');
    }
  });
});

describe('config file', () => {
  it('loads the original agent format unchanged, including the first version (commands with msg/cmd)', () => {
    const legacy = parseAgentConfig('debug: true\ntoken: T\ncommands:\n  - msg: free\n    cmd: free\n  - msg: root\n    cmd: ls\n    dir: /\ntemplates:\n  - name: echo\n    temp: echo %s\n', 'old.yml', {});
    expect(legacy.shortcuts.map((s) => s.short)).toEqual(['free', 'root']);
    expect(legacy.templates[0].temp).toBe('echo %s');
    const current = parseAgentConfig('token: T\nserver: https://s.example\nshortcuts:\n  - {short: a, cmd: b, dir: /}\ncommands:\n  - {prefix: ls, dir: /tmp}\ntemplates:\n  - {name: e, dir: /, temp: "echo %s"}\n', 'new.yml', {});
    expect(current).toMatchObject({ server: 'https://s.example', commands: [{ prefix: 'ls', prefixWords: ['ls'], dir: '/tmp' }] });
  });

  it('takes token and server from the environment', () => {
    const c = parseAgentConfig('server: https://a.example\n', 'x.yml', { SKADI_AGENT_TOKEN: 'env-token', SKADI_SERVER: 'https://b.example' });
    expect(c).toMatchObject({ token: 'env-token', server: 'https://b.example' });
  });

  it('says which line is wrong and what is wrong', () => {
    expect(() => parseAgentConfig('token: t\ncommands:\n  - prefix: ls\n    dir: /\n    opts: 1\n', 'a.yml', {})).toThrow(/^a\.yml:5: .*opts/);
    expect(() => parseAgentConfig('token: t\ntimeout: soon\n', 'b.yml', {})).toThrow(/^b\.yml:2: timeout: "soon" is not a duration/);
    expect(() => parseAgentConfig('token: t\ntemplates:\n  - name: x\n    temp: "cat %s > /etc/x"\n', 'c.yml', {})).toThrow(/^c\.yml:4: .*without a shell/);
    expect(() => parseAgentConfig('server: https://x\n', 'd.yml', {})).toThrow(/token is required/);
    expect(() => parseAgentConfig('token: [\n', 'e.yml', {})).toThrow(/^e\.yml:\d+:/);
  });
});
