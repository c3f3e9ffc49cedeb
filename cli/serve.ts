/** `skadi serve`: runs a gateway node (HTTP API, sweeper, reconciler) until SIGINT/SIGTERM. */
import pino from 'pino';
import { redactConfig, type Config } from '../config';
import { createCore } from '../cloud/core';
import { startHttpServer } from '../agent-api/server';

/** Starts a node; resolves when it has stopped after a signal. */
export async function serve(config: Config): Promise<void> {
  const log = pino({ level: config.logLevel, base: { svc: 'skadi' } });
  log.info({ config: redactConfig(config) }, 'starting');
  const core = await createCore({ config, log });
  await core.startBackground();
  const http = await startHttpServer(core);
  if (!(await core.users.any())) {
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
  log.info({ port: http.port, host: config.host }, `Skadi is listening on http://${config.host}:${http.port}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await http.close();
  await core.close();
  log.info('stopped');
}
