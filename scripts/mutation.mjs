#!/usr/bin/env node
// Mutation testing of the modules that keep the guarantees of docs/design.md, each against only the test files that cover it.
//   npm run mutation                 every module, one after another
//   npm run mutation -- email-auth   one module (or several)
//   npm run mutation -- --list       the modules, their files and their tests
// Reports: .tmp/mutation/<module>/index.html and mutation.json. Each module's results and the scores of its last run
// are kept, and committed, in test/mutation/ (<module>.json, scores.json): a run, on any clone, re-tests only the
// mutants whose code or covering tests changed since (--full forgets them). The scores print as a table at the end.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, '.tmp/mutation');
/** Kept with the code: each module's incremental results and the scores. */
const KEPT = path.join(ROOT, 'test/mutation');

/** name → what it keeps, the files mutated and the test files that cover them (MySQL and Redis must be running). */
export const MODULES = {
  'job-store': {
    keeps: 'a job is stored once, handed out at most once, and every move is a conditional update',
    mutate: ['cloud/store/jobs.ts', 'cloud/store/delayed.ts', 'cloud/store/batcher.ts'],
    tests: ['test/integration/lifecycle-guards.test.ts', 'test/integration/lifecycle.test.ts', 'test/integration/guarantees-mysql.test.ts'],
  },
  lifecycle: {
    keeps: 'leases, renewals, offline expiry, the reconciler and the sweeper',
    mutate: [
      ...['push', 'hand-out', 'reports', 'expiry', 'cancel', 'delayed', 'transitions', 'job-service', 'reconciler', 'sweeper'].map(
        (f) => `cloud/lifecycle/${f}.ts`,
      ),
      'cloud/queue/redis-state.ts',
    ],
    tests: [
      'test/unit/hand-out.test.ts',
      'test/integration/lifecycle-guards.test.ts',
      'test/integration/lifecycle.test.ts',
      'test/integration/guarantees-redis.test.ts',
      'test/integration/guarantees-mysql.test.ts',
    ],
  },
  'long-polls': {
    keeps: 'a waiting poll gets a new job at once, and each job reaches one poll',
    mutate: ['cloud/agents/long-polls.ts', 'cloud/lifecycle/job-waiters.ts'],
    tests: [
      'test/unit/long-polls.test.ts',
      'test/unit/job-waiters.test.ts',
      'test/integration/long-polls.test.ts',
      'test/integration/lifecycle.test.ts',
    ],
  },
  approvals: {
    keeps: 'a gated command waits for a second person, who is not the one who pushed it',
    mutate: ['cloud/approvals/*.ts'],
    tests: [
      'test/unit/approval-decisions.test.ts',
      'test/unit/approval-patterns.test.ts',
      'test/unit/credentials.test.ts',
      'test/integration/approvals.test.ts',
      'test/integration/lifecycle-guards.test.ts',
    ],
  },
  notifier: {
    keeps: 'answers and callbacks are delivered, signed, bounded, and never to private addresses',
    mutate: ['cloud/notifier/*.ts', 'cloud/accounts/callback-secret.ts'],
    tests: [
      'test/unit/notifier-slots.test.ts',
      'test/unit/callback-guard.test.ts',
      'test/integration/callback-guard.test.ts',
      'test/integration/callback-delivery.test.ts',
      'test/integration/notifier.test.ts',
      'test/integration/notifier-delivery.test.ts',
      'test/integration/notifier-bounds.test.ts',
    ],
  },
  tokens: {
    keeps: 'tokens are hashed at rest and compared in constant time; repeated failures are throttled',
    mutate: ['cloud/accounts/tokens.ts', 'agent-api/auth.ts', 'agent-api/auth-limiter.ts'],
    tests: ['test/unit/tokens.test.ts', 'test/integration/auth-limiter.test.ts', 'test/integration/auth-limit.test.ts'],
  },
  'slack-verification': {
    keeps: 'a Slack request counts only with a valid, fresh signature',
    mutate: ['adapters/slack/receiver.ts', 'adapters/slack/inbound.ts'],
    tests: ['test/unit/slack-inbound.test.ts', 'test/unit/slack-normalize.test.ts', 'test/integration/slack-receiver.test.ts'],
  },
  'teams-auth': {
    keeps: "a Teams activity counts only with the Bot Connector's valid token, and its tenant comes from the sender",
    mutate: ['adapters/teams/auth.ts', 'adapters/teams/inbound.ts'],
    tests: ['test/integration/teams-auth.test.ts', 'test/unit/teams-config.test.ts', 'test/unit/teams-inbound.test.ts'],
  },
  'email-auth': {
    keeps: "a mail counts only when our own MX's authentication results vouch for its sender, once",
    mutate: ['adapters/email/auth-results.ts', 'adapters/email/sender-auth.ts', 'adapters/email/replay.ts'],
    tests: ['test/unit/email-sender-auth.test.ts', 'test/unit/email-replay.test.ts', 'test/unit/email-inbound.test.ts'],
  },
  'wechat-self': {
    keeps: "the bot's own WeChat messages are never taken as commands",
    mutate: ['adapters/wechat/inbound.ts'],
    tests: ['test/unit/wechat-adapter.test.ts'],
  },
  daemon: {
    keeps: 'the daemon splits words like a shell, runs only allowed commands, and never through a shell',
    mutate: ['agent/words.ts', 'agent/daemon/plan.ts', 'agent/daemon/runner.ts'],
    tests: ['test/unit/agent-plan.test.ts', 'test/unit/agent-runner.test.ts'],
  },
  'body-limits': {
    keeps: 'a body above body_limit gets 413 without being read to its end',
    mutate: ['agent-api/body.ts'],
    tests: ['test/integration/body-limits.test.ts'],
  },
};

/** The share of mutants the tests kill, of those they could: killed and timed out over all but compile errors. */
export function score(results) {
  const count = {};
  for (const r of results) count[r.status] = (count[r.status] ?? 0) + 1;
  const detected = (count.Killed ?? 0) + (count.Timeout ?? 0);
  const valid = detected + (count.Survived ?? 0) + (count.NoCoverage ?? 0);
  return { count, detected, valid, percent: valid ? Math.round((1000 * detected) / valid) / 10 : 100 };
}

/** Written before each module's run: the checker's program is the module's files and what they import. */
const CHECKER_TSCONFIG = 'tsconfig.mutation.json';

const AUGMENTING = ['agent-api/body.ts', 'cloud/queue/cluster-key-slot.d.ts'];

function writeCheckerTsconfig(module) {
  const files = [...new Set(module.mutate)].flatMap((m) =>
    m.includes('*')
      ? fs
          .readdirSync(path.join(ROOT, path.dirname(m)))
          .filter((f) => f.endsWith('.ts'))
          .map((f) => path.join(path.dirname(m), f))
      : [m],
  );
  // Plus the files that add to other modules' types (declare module), which nothing imports for their types.
  const config = { extends: './tsconfig.json', include: [], files: [...new Set([...files, ...AUGMENTING])] };
  fs.writeFileSync(path.join(ROOT, CHECKER_TSCONFIG), `${JSON.stringify(config, null, 2)}\n`);
}

function strykerOptions(name, module, opts) {
  const dir = path.join(OUT, name);
  return {
    mutate: module.mutate,
    testRunner: 'jest',
    plugins: ['@stryker-mutator/jest-runner', '@stryker-mutator/typescript-checker', path.join(ROOT, 'scripts/mutation-ignorers.mjs')],
    ignorers: ['log-statements'],
    checkers: ['typescript'],
    // Type-checking each mutant against the whole project is what takes longest; the module's own files (and what
    // they import) are enough to drop the mutants that do not compile.
    tsconfigFile: CHECKER_TSCONFIG,
    coverageAnalysis: 'perTest',
    concurrency: opts.concurrency,
    timeoutMS: 20000,
    incremental: !opts.full,
    incrementalFile: path.join(KEPT, `${name}.json`),
    reporters: ['html', 'json', 'clear-text', 'progress-append-only'],
    htmlReporter: { fileName: path.join(dir, 'index.html') },
    jsonReporter: { fileName: path.join(dir, 'mutation.json') },
    clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
    tempDirName: '.tmp/stryker',
    ignorePatterns: ['.tmp', 'coverage', 'bench/results', 'dist', 'test/mutation'],
    cleanTempDir: true,
    logLevel: opts.verbose ? 'info' : 'warn',
    fileLogLevel: 'off',
    jest: {
      projectType: 'custom',
      enableFindRelatedTests: false,
      config: {
        testEnvironment: 'node',
        roots: ['<rootDir>/test'],
        testTimeout: 30000,
        transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
        testMatch: module.tests.map((t) => `<rootDir>/${t}`),
      },
    },
  };
}

function readScores() {
  try {
    return JSON.parse(fs.readFileSync(path.join(KEPT, 'scores.json'), 'utf8'));
  } catch {
    return {};
  }
}

function printTable(scores) {
  const rows = Object.keys(MODULES).map((name) => {
    const s = scores[name];
    if (!s) return `${name.padEnd(20)} (not run)`;
    const c = s.count;
    return `${name.padEnd(20)} ${String(s.percent).padStart(5)} %  killed ${(c.Killed ?? 0) + (c.Timeout ?? 0)}, survived ${c.Survived ?? 0}, no coverage ${c.NoCoverage ?? 0}, compile errors ${c.CompileError ?? 0}  (${s.at})`;
  });
  console.log(['module               score', ...rows].join('\n'));
}

const program = new Command()
  .name('npm run mutation --')
  .description('Mutation testing (StrykerJS) of the modules that keep the guarantees, each against the tests that cover it.')
  .argument('[modules...]', `modules to run (default: all): ${Object.keys(MODULES).join(', ')}`)
  .option('--list', 'print the modules, their files and tests, and exit')
  .option('--scores', 'print the scores of the last runs, and exit')
  .option('--full', 'forget earlier results and test every mutant again')
  .option('--concurrency <n>', 'test runner processes (the TypeScript checker takes one more)', (v) => Number.parseInt(v, 10), 2)
  .option('--verbose', "show Stryker's own progress log")
  .action(async (names, opts) => {
    if (opts.list) {
      for (const [name, m] of Object.entries(MODULES))
        console.log(`${name}: ${m.keeps}\n  mutate: ${m.mutate.join(' ')}\n  tests:  ${m.tests.join(' ')}`);
      return;
    }
    if (opts.scores) return printTable(readScores());
    const unknown = names.filter((n) => !(n in MODULES));
    if (unknown.length) program.error(`unknown module ${unknown.join(', ')}; the modules are: ${Object.keys(MODULES).join(', ')}`);
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) program.error('--concurrency must be a whole number of at least 1');
    const todo = names.length ? names : Object.keys(MODULES);
    const missing = todo.flatMap((n) => MODULES[n].tests).filter((t) => !fs.existsSync(path.join(ROOT, t)));
    if (missing.length) program.error(`test files missing: ${missing.join(', ')}`);
    const { Stryker } = await import('@stryker-mutator/core');
    fs.mkdirSync(OUT, { recursive: true });
    fs.mkdirSync(KEPT, { recursive: true });
    for (const [i, name] of todo.entries()) {
      console.log(`\n== ${i + 1}/${todo.length} ${name}: ${MODULES[name].keeps}`);
      const started = Date.now();
      writeCheckerTsconfig(MODULES[name]);
      const results = await new Stryker(strykerOptions(name, MODULES[name], opts)).runMutationTest();
      const s = { ...score(results), seconds: Math.round((Date.now() - started) / 1000), at: new Date().toISOString() };
      const scores = readScores();
      scores[name] = s;
      fs.writeFileSync(path.join(KEPT, 'scores.json'), `${JSON.stringify(scores, null, 2)}\n`);
      console.log(
        `== ${name}: ${s.percent} % of ${s.valid} mutants killed in ${s.seconds} s; report: ${path.relative(ROOT, path.join(OUT, name, 'index.html'))}`,
      );
    }
    console.log('');
    printTable(readScores());
  });

await program.parseAsync(process.argv);
