#!/usr/bin/env node
/** The `skadi` command: serve, migrate, and administration of users, agents and jobs. */
import cluster from 'node:cluster';
import { Command } from 'commander';
import pino from 'pino';
import { describeMysql, ensureDatabase, openDb } from '../cloud/store/db';
import { migrate } from '../cloud/store/migrate';
import { StartupError } from '../cloud/core';
import { registerAdminCommands } from './admin-commands';
import { registerJobCommands } from './job-commands';
import { registerIdentityCommands } from './identity-commands';
import { cliConfig, type GlobalOptions } from './context';
import { parseSettingValue } from '../config';
import { emit, reportError } from './output';
import { serve } from './serve';

const program = new Command();
program
  .name('skadi')
  .description('Skadi: a self-hosted ChatOps gateway. Chat and HTTP commands become jobs that agents pull and run.')
  .version(require('../../package.json').version)
  .option('-c, --config <file>', 'YAML or JSON config file (default: $SKADI_CONFIG; SKADI_* variables override it)')
  .showHelpAfterError();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();

program
  .command('serve')
  .description('run a gateway node: HTTP API, chat adapters, notifier, sweeper and reconciler (applies migrations first)')
  .option('--json', 'JSON log lines only, even on a terminal (no readable lines, no plain-text hints)')
  .option(
    '--workers <n|auto>',
    'worker processes on the same port, each a full node (auto: one per CPU core; default: $SKADI_WORKERS or 1)',
  )
  .action((opts: { json?: boolean; workers?: string }) => {
    const config = cliConfig(globals());
    if (opts.workers !== undefined) config.workers = parseSettingValue('workers', opts.workers, '--workers');
    return serve(config, { json: !!opts.json });
  });

program
  .command('migrate')
  .description('create the database if needed and apply pending schema migrations')
  .option('--json', 'print the applied migrations as JSON')
  .action(async (opts: { json?: boolean }) => {
    const config = cliConfig(globals());
    try {
      await ensureDatabase(config.mysqlUrl);
    } catch (err) {
      throw new StartupError(
        `Cannot reach MySQL at ${describeMysql(config.mysqlUrl)} (${(err as NodeJS.ErrnoException).code}). Start MariaDB or set SKADI_MYSQL_URL.`,
      );
    }
    const db = openDb(config.mysqlUrl);
    try {
      const log = pino({ level: 'silent' });
      const applied = await migrate(db, (name) => opts.json || log.info(name));
      emit(!!opts.json, { applied }, () => console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'The schema is up to date.'));
    } finally {
      await db.close();
    }
  });

registerAdminCommands(program, globals);
registerJobCommands(program, globals);
registerIdentityCommands(program, globals);

program.parseAsync(process.argv).catch((err) => {
  process.exitCode = reportError(err);
  // A worker of `serve --workers n` that cannot start must exit: its channel to the primary would keep it alive.
  if (cluster.isWorker) process.exit(process.exitCode);
});
