/** Approval patterns: globs on the job text. */
import { matchingPattern, UNSPLITTABLE } from '../../cloud/approvals/patterns';
import { parseCommand } from '../../cloud/chat/parse';
import { withApprovalJob } from '../../adapters/email/inbound';

describe('matchingPattern', () => {
  it.each([
    [['deploy *'], 'deploy web1 prod', 'deploy *'],
    [['deploy *'], 'DEPLOY prod', 'deploy *'],
    [['deploy *'], 'deploy', null],
    [['deploy*'], 'deploy', 'deploy*'],
    [['deploy *'], 'redeploy prod', null],
    [['*'], 'uptime', '*'],
    [['db drop *', 'restart ?'], 'restart a', 'restart ?'],
    [['restart ?'], 'restart ab', null],
    [['db  drop   *'], 'db drop users', 'db  drop   *'],
    [['rm -rf (x)'], 'rm -rf (x)', 'rm -rf (x)'],
    [['a.c'], 'abc', null],
    [[], 'deploy prod', null],
  ])('%j on %j gives %j', (patterns, text, expected) => {
    expect(matchingPattern(patterns as string[], text as string)).toBe(expected);
  });

  it('matches across lines of a multi-line job', () => {
    expect(matchingPattern(['deploy *'], 'deploy prod\nand more')).toBe('deploy *');
  });

  // The daemon runs the words that splitWords makes: quoting or escaping a word must not hide it from a pattern.
  it.each([
    ['"deploy" prod'],
    ["de'ploy' prod"],
    ['d\\eploy prod'],
    ['"deploy prod"'],
    ['deploy\\ prod'],
    ['""deploy   prod'],
    ["'DEPLOY' prod"],
    ['deploy prod ""'],
    ["'' deploy prod"],
  ])('the words of %s match deploy *', (text) => {
    expect(matchingPattern(['deploy *'], text)).toBe('deploy *');
  });

  it.each([['"deploy" prod; uptime'], ['"deploy" "prod'], ['de\u0001ploy prod'], ['uptime | sh']])(
    '%j cannot be split, so it is gated while patterns exist',
    (text) => {
      expect(matchingPattern(['deploy *'], text)).toBe(UNSPLITTABLE);
      expect(matchingPattern([], text)).toBeNull();
    },
  );

  it('names an unsplittable text for what it is, where a pattern would be named', () => {
    expect(UNSPLITTABLE).toBe('(a text that cannot be split into words)');
  });

  it('ignores white space around a pattern and around the text, also when the text cannot be split', () => {
    expect(matchingPattern(['  deploy *  '], 'deploy prod')).toBe('  deploy *  ');
    expect(matchingPattern(['deploy *'], '  deploy "prod  ')).toBe('deploy *');
  });

  it('matches an exact pattern with empty words around or between the words', () => {
    for (const text of ['restart nginx ""', "'' restart nginx", 'restart "" nginx'])
      expect(matchingPattern(['restart nginx'], text)).toBe('restart nginx');
  });

  it('lets through words that match no pattern', () => {
    expect(matchingPattern(['deploy *'], '"redeploy" prod')).toBeNull();
    expect(matchingPattern(['deploy *'], "'uptime'")).toBeNull();
  });
});

describe('approval commands', () => {
  it.each([
    ['approve 7D9K', { kind: 'approve', jobId: '7D9K' }],
    ['deny 7D9K', { kind: 'deny', jobId: '7D9K', reason: '' }],
    ['deny 7D9K not during the freeze', { kind: 'deny', jobId: '7D9K', reason: 'not during the freeze' }],
    ['agent approval web1 deploy *', { kind: 'agent-approval', name: 'web1', pattern: 'deploy *' }],
    ['agent approval web1 clear', { kind: 'agent-approval', name: 'web1', pattern: null }],
  ])('%s', (text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it.each(['approve', 'approve a b', 'deny', 'agent approval web1'])('%s is refused with the usage', (text) => {
    expect(parseCommand(text).kind).toBe('invalid');
  });
});

describe('e-mail replies to an approval request', () => {
  const request = '<skadi-approval.01KAAAAAAAAAAAAAAAAAAAAAAA.3f2c@ops.example.com>';
  it.each([
    ['approve', [request], 'approve 01KAAAAAAAAAAAAAAAAAAAAAAA'],
    ['Approve', ['<other@x>', request], 'approve 01KAAAAAAAAAAAAAAAAAAAAAAA'],
    ['deny not during the freeze', [request], 'deny 01KAAAAAAAAAAAAAAAAAAAAAAA not during the freeze'],
    ['approve 7D9K', [request], 'approve 7D9K'],
    ['approve', ['<other@x>'], 'approve'],
    ['web1 uptime', [request], 'web1 uptime'],
  ])('%s answering %j is %s', (command, answered, expected) => {
    expect(withApprovalJob(command, answered)).toBe(expected);
  });
});
