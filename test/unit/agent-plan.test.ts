import { parseAgentConfig } from '../../agent/daemon/config';
import { helpText, planMessage } from '../../agent/daemon/plan';
import { compileTemplate, TemplateSyntaxError } from '../../agent/daemon/template';
import { RefusedMessage, splitWords } from '../../agent/words';

const config = parseAgentConfig(
  `
token: t
shortcuts:
  - short: disk
    cmd: df -h | grep -v tmpfs
commands:
  - prefix: free
    options: true
  - prefix: systemctl status
    options: true
  - prefix: systemctl
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

describe('splitWords, character by character', () => {
  it('refuses every unquoted shell operator, with the same message, and takes each quoted', () => {
    for (const op of [';', '&', '|', '<', '>', '`', '$', '(', ')', '{', '}', '*', '?', '[', ']', '~', '!', '#']) {
      expect(() => splitWords(`a${op}b`)).toThrow(
        new RefusedMessage(`"${op}" is a shell operator, and this agent runs no shell; quote it if you mean it literally`),
      );
      expect(splitWords(`'a${op}b'`)).toEqual([`a${op}b`]);
      expect(splitWords(`"a${op}b"`)).toEqual([`a${op}b`]);
      expect(splitWords(`a\\${op}b`)).toEqual([`a${op}b`]);
    }
  });

  it('separates on spaces and tabs only, and keeps empty quoted words', () => {
    expect(splitWords('a\tb  c\t')).toEqual(['a', 'b', 'c']);
    expect(splitWords(`'' "" x`)).toEqual(['', '', 'x']);
    expect(splitWords(`a'b'"c"\\d`)).toEqual(['abcd']);
    expect(splitWords(`"it's" 'say "hi"'`)).toEqual(["it's", 'say "hi"']);
    expect(splitWords('a=b,c:d@e%f+g/h.i-j_k')).toEqual(['a=b,c:d@e%f+g/h.i-j_k']);
  });

  it('escapes only a quote and a backslash inside double quotes, anything outside them', () => {
    expect(splitWords('"a\\"b"')).toEqual(['a"b']);
    expect(splitWords('"a\\\\b"')).toEqual(['a\\b']);
    expect(splitWords('"a\\nb"')).toEqual(['a\\nb']);
    expect(splitWords('"a\\$b"')).toEqual(['a\\$b']);
    expect(splitWords('a\\ b')).toEqual(['a b']);
    expect(splitWords('\\"')).toEqual(['"']);
  });

  it('refuses control characters other than tab, DEL, and what is left open', () => {
    for (const ch of ['\n', '\r', '\u0000', '\u001b', '\u007f']) {
      expect(() => splitWords(`a${ch}b`)).toThrow(new RefusedMessage('control characters (such as newlines) are not allowed in a command'));
    }
    expect(() => splitWords("a 'b")).toThrow(new RefusedMessage('unterminated single quote'));
    expect(() => splitWords('a "b')).toThrow(new RefusedMessage('unterminated double quote'));
    expect(() => splitWords('a "b\\"')).toThrow(new RefusedMessage('unterminated double quote'));
    expect(splitWords('"a\\\\"')).toEqual(['a\\']);
    expect(() => splitWords('a;')).toThrow(expect.objectContaining({ name: 'RefusedMessage' }));
    expect(() => splitWords('a\\')).toThrow(new RefusedMessage('a backslash at the end escapes nothing'));
    expect(splitWords('\u00a0é 中')).toEqual(['\u00a0é', '中']);
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

  it('refuses options unless the entry allows them', () => {
    expect(parseAgentConfig('token: t\ncommands:\n  - prefix: ls\n', 'x.yml', {}).commands[0].options).toBe(false);
    expect(planMessage(config, 'systemctl --force reboot')).toMatchObject({
      kind: 'refuse',
      reason: expect.stringContaining('no options'),
    });
    expect(planMessage(config, 'restart --now nginx')).toMatchObject({ kind: 'refuse' });
  });

  it('runs templates through the shell with the sender words as positional parameters', () => {
    expect(planMessage(config, 'restart nginx')).toEqual({
      kind: 'shell',
      label: 'restart',
      command: 'systemctl restart "$1"',
      args: ['nginx'],
      timeoutMs: 600_000,
    });
    expect(planMessage(config, 'copy a.txt "/tmp/my dir"')).toMatchObject({
      kind: 'shell',
      command: 'cp "$1" --target="$2"',
      args: ['a.txt', '/tmp/my dir'],
    });
  });

  it('answers a usage line when the number of words differs from the placeholders', () => {
    expect(planMessage(config, 'copy a.txt')).toEqual({ kind: 'refuse', reason: 'usage: copy <word> <word>' });
    expect(planMessage(config, 'restart nginx php-fpm')).toEqual({ kind: 'refuse', reason: 'usage: restart <word>' });
    expect(planMessage(config, 'restart')).toEqual({ kind: 'refuse', reason: 'usage: restart <word>' });
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
      expect((plan as { text: string }).text).toContain('restart <word>  →  systemctl restart %s');
    }
  });
});

describe('config file', () => {
  it('loads the original agent format unchanged, including the first version (commands with msg/cmd)', () => {
    const legacy = parseAgentConfig(
      'debug: true\ntoken: T\ncommands:\n  - msg: free\n    cmd: free\n  - msg: root\n    cmd: ls\n    dir: /\ntemplates:\n  - name: echo\n    temp: echo %s\n',
      'old.yml',
      {},
    );
    expect(legacy.shortcuts.map((s) => s.short)).toEqual(['free', 'root']);
    expect(legacy.templates[0].temp).toBe('echo %s');
    const current = parseAgentConfig(
      'token: T\nserver: https://s.example\nshortcuts:\n  - {short: a, cmd: b, dir: /}\ncommands:\n  - {prefix: ls, dir: /tmp}\ntemplates:\n  - {name: e, dir: /, temp: "echo %s"}\n',
      'new.yml',
      {},
    );
    expect(current).toMatchObject({ server: 'https://s.example', commands: [{ prefix: 'ls', prefixWords: ['ls'], dir: '/tmp' }] });
  });

  it('takes token and server from the environment', () => {
    const c = parseAgentConfig('server: https://a.example\n', 'x.yml', {
      SKADI_AGENT_TOKEN: 'env-token',
      SKADI_SERVER: 'https://b.example',
    });
    expect(c).toMatchObject({ token: 'env-token', server: 'https://b.example' });
  });

  it('loads the original example with a shell template, and warns about unknown keys and empty lists', () => {
    const c = parseAgentConfig(
      'debug: true\ntoken: T\nshortcuts: []\ncommands:\n  - prefix: ls\n    dir: /\n    opts: 1\ntemplates:\n  - name: Hi\n    temp: "echo I am not %s!"\ncolour: blue\n',
      'a.yml',
      {},
    );
    expect(c.templates[0]).toMatchObject({ name: 'Hi', script: 'echo I am not "$1"!', placeholders: 1 });
    expect(c.warnings).toEqual([
      'a.yml:11: unknown key "colour" is ignored',
      'a.yml:3: shortcuts is empty',
      'a.yml:7: commands.0: unknown key "opts" is ignored',
    ]);
  });

  it('says which line is wrong and what is wrong', () => {
    expect(() => parseAgentConfig('token: t\ntimeout: soon\n', 'b.yml', {})).toThrow(/^b\.yml:2: timeout: "soon" is not a duration/);
    expect(() => parseAgentConfig('token: t\ncommands:\n  - prefix: "cat > /etc/x"\n', 'c.yml', {})).toThrow(
      /^c\.yml:3: .*without a shell/,
    );
    expect(() => parseAgentConfig('token: t\ntemplates:\n  - name: x\n    temp: "echo \'%s"\n', 'f.yml', {})).toThrow(
      /^f\.yml:4: templates\.0\.temp: temp has an unterminated single quote/,
    );
    expect(() => parseAgentConfig('server: https://x\n', 'd.yml', {})).toThrow(/token is required/);
    expect(() => parseAgentConfig('token: [\n', 'e.yml', {})).toThrow(/^e\.yml:\d+:/);
  });
});

describe('compileTemplate', () => {
  it.each([
    ['unquoted', 'echo %s', 'echo "$1"'],
    ['inside double quotes', 'echo "said: %s"', 'echo "said: ${1}"'],
    ['inside single quotes', "echo 'said: %s'", `echo 'said: '"$1"''`],
    ['after an escaped quote', `echo \\' %s`, `echo \\' "$1"`],
    ['an escaped double quote inside double quotes', 'echo "a\\"%s"', 'echo "a\\"${1}"'],
    ['a double quote inside single quotes', `echo '"%s'`, `echo '"'"$1"''`],
    ['several, numbered left to right', 'cp %s "%s" \'%s\'', `cp "$1" "\${2}" ''"$3"''`],
  ])('places a placeholder %s', (_, temp, script) => {
    expect(compileTemplate(temp).script).toBe(script);
  });

  it('numbers the tenth placeholder and beyond with braces', () => {
    const { script, placeholders } = compileTemplate(Array.from({ length: 11 }, () => '%s').join(' '));
    expect(placeholders).toBe(11);
    expect(script.endsWith('"$9" "${10}" "${11}"')).toBe(true);
  });

  it('keeps %% as a literal % and other % signs as they are', () => {
    expect(compileTemplate('printf "100%% of %s at 5%d"')).toEqual({ script: 'printf "100% of ${1} at 5%d"', placeholders: 1 });
  });

  it('takes a template with no placeholder unchanged', () => {
    expect(compileTemplate("docker ps --format '{{.Names}}' | sort")).toEqual({
      script: "docker ps --format '{{.Names}}' | sort",
      placeholders: 0,
    });
  });

  it('refuses an unterminated quote', () => {
    expect(() => compileTemplate('echo "%s')).toThrow(new TemplateSyntaxError('unterminated double quote'));
  });
});

describe('plans in detail', () => {
  const c = parseAgentConfig(
    'token: t\ntimeout: 1m\nshortcuts:\n  - {short: disk, cmd: df -h, dir: /tmp, timeout: 5s}\ncommands:\n  - {prefix: free, options: true, dir: /var}\n  - {prefix: git log, timeout: 2m}\ntemplates:\n  - {name: restart, temp: "systemctl restart %s", dir: /etc, timeout: 3s}\n  - {name: grep, temp: "grep %s x", options: true}\n',
    'x.yml',
    {},
  );

  it('lists everything the agent allows, with directories and options', () => {
    expect(helpText(c)).toBe(
      [
        'Shortcuts (the exact message runs the command):',
        '  disk  →  df -h  (in /tmp)',
        'Commands (your words become arguments; none may start with "-" unless options are allowed):',
        '  free [arguments…]  (options allowed)  (in /var)',
        '  git log [arguments…]',
        'Templates (each of your words fills one %s, as a single value):',
        '  restart <word>  →  systemctl restart %s  (in /etc)',
        '  grep <word>  →  grep %s x',
      ].join('\n'),
    );
    expect(helpText(parseAgentConfig('token: t\n', 'y.yml', {}))).toBe(
      'This agent allows nothing yet: add shortcuts, commands or templates to its config file.',
    );
  });

  it("carries each entry's directory and timeout, else the agent's", () => {
    expect(planMessage(c, '  disk  ')).toEqual({ kind: 'shell', label: 'disk', command: 'df -h', args: [], dir: '/tmp', timeoutMs: 5000 });
    expect(planMessage(c, 'free -m')).toEqual({ kind: 'exec', label: 'free', argv: ['free', '-m'], dir: '/var', timeoutMs: 60000 });
    expect(planMessage(c, 'git log main')).toEqual({
      kind: 'exec',
      label: 'git log',
      argv: ['git', 'log', 'main'],
      dir: undefined,
      timeoutMs: 120000,
    });
    expect(planMessage(c, 'restart x')).toEqual({
      kind: 'shell',
      label: 'restart',
      command: 'systemctl restart "$1"',
      args: ['x'],
      dir: '/etc',
      timeoutMs: 3000,
    });
    expect(planMessage(c, 'grep -v')).toEqual({
      kind: 'shell',
      label: 'grep',
      command: 'grep "$1" x',
      args: ['-v'],
      dir: undefined,
      timeoutMs: 60000,
    });
  });

  it('takes a command given with no arguments, and the longest prefix that fits, with its own options rule', () => {
    expect(planMessage(config, 'free')).toEqual({ kind: 'exec', label: 'free', argv: ['free'], dir: undefined, timeoutMs: 600_000 });
    expect(planMessage(config, 'systemctl')).toMatchObject({ kind: 'exec', label: 'systemctl', argv: ['systemctl'] });
    expect(planMessage(config, 'systemctl status --full nginx')).toMatchObject({
      kind: 'exec',
      label: 'systemctl status',
      argv: ['systemctl', 'status', '--full', 'nginx'],
    });
    expect(planMessage(config, 'systemctl restart --force')).toMatchObject({
      kind: 'refuse',
      reason: 'refused: "systemctl" takes no options (arguments starting with "-")',
    });
  });

  it('explains each refusal', () => {
    expect(planMessage(c, 'git log -1')).toEqual({
      kind: 'refuse',
      reason: 'refused: "git log" takes no options (arguments starting with "-")',
    });
    expect(planMessage(c, 'restart -x')).toEqual({
      kind: 'refuse',
      reason: 'refused: "restart" takes values, not options (arguments starting with "-")',
    });
    expect(planMessage(c, 'git')).toEqual({ kind: 'refuse', reason: 'unknown command "git"; send "help" for what this agent allows' });
    expect(planMessage(c, 'grep -v x')).toEqual({ kind: 'refuse', reason: 'usage: grep <word>' });
    expect(planMessage(c, '   ')).toEqual({ kind: 'refuse', reason: 'empty command; send "help" for what this agent allows' });
    expect(planMessage(c, '""')).toEqual({ kind: 'refuse', reason: 'unknown command ""; send "help" for what this agent allows' });
    expect(planMessage(c, 'free;reboot')).toEqual({
      kind: 'refuse',
      reason: 'refused: ";" is a shell operator, and this agent runs no shell; quote it if you mean it literally',
    });
    expect(planMessage(c, 'disk x')).toMatchObject({ kind: 'refuse' });
  });
});
