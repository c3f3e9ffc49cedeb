/**
 * Jest runs the TypeScript tests directly; integration tests share the local MariaDB and Redis.
 * The "cluster" project runs the integration, end-to-end and chaos tests again with every gateway on a 3-master
 * Redis Cluster (scripts/redis-cluster.sh, started by its global setup when it is not running), except the approval
 * and settings end-to-end files, the workers file, and the files that reach no Redis, listed below.
 */
const common = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};

module.exports = {
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
  testTimeout: 30000,
  projects: [
    { ...common, displayName: 'redis', testMatch: ['**/*.test.ts'] },
    {
      ...common,
      displayName: 'cluster',
      testMatch: ['**/test/integration/**/*.test.ts', '**/test/e2e/**/*.test.ts', '**/test/chaos/**/*.test.ts'],
      // Approval flows keep their state in MySQL (their Redis side runs on the cluster in integration/approvals), and
      // channel settings never reach Redis: these end-to-end files run once, on one Redis, to keep CI short.
      testPathIgnorePatterns: [
        '/node_modules/',
        '/test/e2e/[a-z]+-approvals\\.test\\.ts$',
        '/test/e2e/wechat-settings\\.test\\.ts$',
        '/test/e2e/workers\\.test\\.ts$',
        // These reach no Redis at all (the HTTP body reader, the mail harness, Slack and Teams request checks).
        '/test/integration/(body-limits|mail-harness|slack-receiver|teams-auth)\\.test\\.ts$',
      ],
      globalSetup: '<rootDir>/test/helpers/cluster-setup.js',
      setupFiles: ['<rootDir>/test/helpers/cluster-env.js'],
    },
  ],
};
