/**
 * botbuilder writes to console.error (a failed token check prints the signing key it tried). Calls made while the
 * Teams adapter works on something go to its logger at debug level instead, with key material removed; every other
 * console call is left alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import type { Logger } from 'pino';

const sdkLoggers = new AsyncLocalStorage<Logger>();
let installed = false;

/** Removes PEM blocks and JWTs from a line the SDK wrote. */
export function withoutKeyMaterial(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g, '[key]')
    .replace(/\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*/g, '[token]');
}

/** Replaces console.error/warn/log/info/debug once with versions that divert the SDK's calls inside withSdkLogger. */
function install(): void {
  if (installed) return;
  installed = true;
  for (const method of ['error', 'warn', 'log', 'info', 'debug'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      const log = sdkLoggers.getStore();
      if (!log) return original(...args);
      log.debug({ part: 'botbuilder' }, withoutKeyMaterial(format(...args)).slice(0, 2000));
    };
  }
}

/** Runs fn with the SDK's console output going to log. */
export function withSdkLogger<T>(log: Logger, fn: () => T): T {
  install();
  return sdkLoggers.run(log, fn);
}
