/** What every CLI command needs: the configuration, a logger, and the core (opened per command). */
import { createLogger } from './logger';
import { loadConfig, type Config } from '../config';
import { createCore, type Core } from '../cloud/core';

/** Global options of the skadi command. */
export interface GlobalOptions {
  config?: string;
}

/** Loads the configuration named by --config / SKADI_CONFIG. */
export function cliConfig(options: GlobalOptions): Config {
  return loadConfig({ file: options.config });
}

/** Opens the core for an administrative command (logs only warnings, to stderr), runs fn, closes it. */
export async function withCore<T>(options: GlobalOptions, fn: (core: Core) => Promise<T>): Promise<T> {
  const config = cliConfig(options);
  const log = createLogger(config, { level: config.logLevel === 'silent' ? 'silent' : 'warn', destination: 2 });
  const core = await createCore({ config, log });
  try {
    return await fn(core);
  } finally {
    await core.close();
  }
}
