/** The approval commands of the `skadi` binary: patterns on an agent, and an admin's decision for a linked account. */
import { dropNamespace, MYSQL_ROOT, redisEnv, TEST_SECRET, uniqueName } from '../helpers/env';
import { skadi } from '../helpers/process';

const name = uniqueName();
const env = {
  SKADI_MYSQL_URL: `${MYSQL_ROOT}/${name}`,
  SKADI_REDIS_PREFIX: `${name}:`,
  ...redisEnv(),
  SKADI_SECRET: TEST_SECRET,
  SKADI_CONFIG: '',
  SKADI_LOG_LEVEL: 'info',
};
const run = (...args: string[]) => skadi(args, env);

/** Runs `skadi <args> --json`, expects exit 0, and parses its output. */
function json(...args: string[]): any {
  const out = run(...args, '--json');
  expect({ status: out.status, stderr: out.stderr }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(out.stdout);
}

afterAll(() => dropNamespace(name));

it('sets, shows and clears the patterns of an agent, and lets an admin decide as a linked account', () => {
  json('user', 'add', 'ops');
  json('agent', 'add', 'web1', '--user', 'ops');
  json('identity', 'link', 'slack:T1:UALICE', '--user', 'ops');
  json('identity', 'link', 'slack:T1:UBOB', '--user', 'ops');
  expect(json('agent', 'require-approval', 'web1', 'deploy *', 'db drop *', '--user', 'ops').approval_patterns).toEqual([
    'deploy *',
    'db drop *',
  ]);
  expect(json('agent', 'show', 'web1', '--user', 'ops').approval_patterns).toEqual(['deploy *', 'db drop *']);
  expect(run('agent', 'show', 'web1', '--user', 'ops').stdout).toContain('approval: "deploy *", "db drop *"');
  expect(run('agent', 'require-approval', 'web1', '--user', 'ops').status).not.toBe(0); // neither patterns nor --clear

  const pushed = json('job', 'add', 'web1', 'deploy', 'prod', '--user', 'ops');
  expect(pushed.status).toBe('awaiting_approval');
  expect(run('job', 'add', 'web1', 'deploy', 'stage', '--user', 'ops').stdout).toContain('awaits another person');

  const refused = run('job', 'approve', pushed.id, '--as', 'slack:T9:UNOBODY');
  expect(refused.status).toBe(1);
  expect(refused.stderr).toContain('not linked');
  const approved = json('job', 'approve', pushed.id.slice(-4), '--as', 'slack:T1:UBOB');
  expect(approved.approval.approved_by).toBe('cli (as slack:T1:UBOB)');
  expect(approved.status).toBe('expired'); // web1 never polled: approved, then offline
  expect(run('job', 'approve', pushed.id, '--as', 'slack:T1:UALICE').stderr).toContain('already approved by cli (as slack:T1:UBOB)');

  const second = json('job', 'add', 'web1', 'db', 'drop', 'users', '--user', 'ops');
  const denied = json('job', 'deny', second.id, '--as', 'slack:T1:UALICE', '--reason', 'no');
  expect(denied.status).toBe('canceled');
  expect(denied.reason).toBe('denied by cli (as slack:T1:UALICE): no');

  expect(json('agent', 'require-approval', 'web1', '--clear', '--user', 'ops').approval_patterns).toEqual([]);
  const unguarded = run('job', 'add', 'web1', 'deploy', 'prod', '--user', 'ops'); // no approval needed: queued, but web1 is offline
  expect(unguarded.status).toBe(1);
  expect(unguarded.stdout).toContain('expired: web1 is offline');
}, 90_000);
