/** `skadi serve`: runs a gateway node (HTTP API, chat adapters, notifier, sweeper, reconciler) until SIGINT/SIGTERM. */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { runPrimary } from './cluster';
import { clusterMetrics, reportListening, workerNumber } from './worker-ipc';
import { createLogger } from './logger';
import { ConfigError, redactConfig, type Config } from '../config';
import { createCore } from '../cloud/core';
import { startHttpServer } from '../agent-api/server';
import type { ChannelAdapter } from '../adapters/contract';
import { CHANNELS } from '../adapters';

/**
 * For each chat channel whose settings are present, a function that makes its adapter (loading its SDK then); throws a
 * ConfigError when a channel's settings cannot work.
 */
export function configuredChannels(config: Config, log: Logger): (() => ChannelAdapter)[] {
  return CHANNELS.flatMap((channel) => {
    const configured = channel.configure(config);
    if (!configured) return [];
    if (configured.problem) throw new ConfigError(configured.problem);
    return [() => configured.create(log.child({ adapter: channel.name }))];
  });
}

/** Runs the gateway: one node, or with `workers` > 1 a primary and its worker nodes; resolves once stopped after a signal. */
export async function serve(config: Config, options: { json?: boolean } = {}): Promise<void> {
  const worker = workerNumber();
  if (config.workers > 1 && cluster.isPrimary) {
    const log = createLogger(config, { json: options.json, base: { svc: 'skadi', worker: 'primary' } });
    log.info({ config: redactConfig(config) }, 'starting');
    configuredChannels(config, log); // a channel whose settings cannot work stops start-up here, once, not in every worker
    await runPrimary(config.workers, log, config.host);
    return;
  }
  await serveNode(config, options, worker);
  if (worker !== null) process.exit(process.exitCode ?? 0); // the IPC channel to the primary would keep it alive
}

/** Runs one node (the only process, or worker `worker` of several); resolves when it has stopped after a signal. */
async function serveNode(config: Config, options: { json?: boolean }, worker: number | null): Promise<void> {
  const log = createLogger(config, {
    json: options.json,
    base: worker === null ? { svc: 'skadi' } : { svc: 'skadi', worker, pid: process.pid },
  });
  if (worker === null) log.info({ config: redactConfig(config) }, 'starting');
  const adapters = configuredChannels(config, log).map((make) => make());
  const core = await createCore({ config, log });
  await core.startBackground();
  const http = await startHttpServer(core, {
    mount: (router) => {
      for (const adapter of adapters) adapter.mount?.(router);
    },
    channels: adapters,
    worker,
    clusterMetrics: worker === null ? undefined : clusterMetrics,
  });
  await core.startNotifier(adapters);
  for (const adapter of adapters) {
    await adapter.start(core.chatHandler(adapter), core.adapterServices);
    log.info({ adapter: adapter.name, access: adapter.access.mode }, 'chat adapter started');
  }
  const noUser = worker === null && !(await core.users.any());
  if (noUser)
    log.info('no user yet: create one with `npx skadi user add <name>`, then an agent with `npx skadi agent add <name> --user <name>`');
  if (noUser && !options.json) {
    process.stdout.write(
      [
        '',
        'No user yet. Create the first user and agent with:',
        '  npx skadi user add ops',
        '  npx skadi agent add web1 --user ops',
        '',
      ].join('\n') + '\n',
    );
  }
  if (worker === null) {
    log.info({ port: http.port, host: config.host }, `Skadi is listening on http://${config.host}:${http.port}`);
  } else {
    log.info({ port: http.port }, `worker ${worker} is ready`);
    reportListening(http.port);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    if (worker === null) {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    // A worker may get the signal twice (sent to the whole process group, then by the primary): it stops once.
    // The primary kills a worker that takes too long. A worker whose primary is gone stops too, rather than serve unsupervised.
    let stopping = false;
    const once = (signal: string) => {
      if (!stopping) stop(signal);
      stopping = true;
    };
    process.on('SIGINT', once);
    process.on('SIGTERM', once);
    process.once('disconnect', () => once('primary gone'));
  });
  for (const adapter of adapters) await adapter.stop();
  // Waiting long polls are answered 204 (and new ones at once); requests in progress finish before the connections close.
  const closed = http.close();
  core.dispatcher.stop();
  await closed;
  await core.close();
  log.info('stopped');
}
