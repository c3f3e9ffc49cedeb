/** The Koa HTTP server of a node: agent API, user API, health, readiness and metrics on one port. */
import http from 'node:http';
import type { Logger } from 'pino';
import Koa from 'koa';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { ChannelAdapter } from '../adapters/contract';
import type { Core } from '../cloud/core';
import { agentRoutes } from './agent-routes';
import { bodyReader } from './body';
import { AuthLimiter } from './auth-limiter';
import { clientAddress, parseProxyTrust } from './client-address';
import { errorEdge } from './errors';
import { createMetrics } from './metrics';
import { userRoutes } from './user-routes';
import { UnavailableError } from '../cloud/errors';

/** Apps whose server is closing: their answers close the connection, so clients go to another node or worker. */
const closing = new WeakSet<Koa>();

/** How long close() lets requests in progress finish before it cuts their connections. */
const CLOSE_GRACE_MS = 10_000;

/** Runs the credential check of a request (a seam for limiting repeated failures). */
export type AuthGuard = (ctx: Context, check: () => Promise<void>) => Promise<void>;

/** A listening HTTP server. */
export interface HttpServer {
  app: Koa;
  server: http.Server;
  /** The port actually bound (useful with port 0 in tests). */
  port: number;
  close(): Promise<void>;
}

/** Options of the HTTP app; `mount` lets adapters add their routes to the same port. */
export interface AppOptions {
  authGuard?: AuthGuard;
  mount?: (router: Router) => void;
  /** The chat channels, for the skadi_channel_up metric. */
  channels?: readonly ChannelAdapter[];
  /** The worker number under `serve --workers n` (logs, metrics, /healthz say it); null for a single process. */
  worker?: number | null;
  /** Under `serve --workers n`: every worker's metrics together, asked of the primary (GET /metrics answers them). */
  clusterMetrics?: () => Promise<string>;
}

/**
 * What a request carries through the middleware: its client address, the agent or user once authenticated, and a
 * logger with a correlation id, made only if something logs (a class, so that the lazy getter costs nothing per request).
 */
class RequestState {
  agent?: { id: number };
  userId?: number;
  private made?: Logger;

  constructor(
    private readonly base: Logger,
    private readonly req: string,
    readonly clientAddress: string | null,
  ) {}

  /** The request's logger; the agent or user id, once known, goes into its lines too. */
  get log(): Logger {
    return (this.made ??= this.base.child({ req: this.req, agentId: this.agent?.id, userId: this.userId }));
  }

  set log(value: Logger) {
    this.made = value;
  }
}

/** Builds the Koa app of a node. */
export function createApp(core: Core, options: AppOptions = {}): Koa {
  const app = new Koa({ proxy: false });
  const worker = options.worker ?? null;
  const metrics = createMetrics(core, options.channels, worker);
  const limiter = new AuthLimiter(core.redis, core.keys, { maxFailures: core.config.authMaxFailures, windowMs: core.config.authWindowMs });
  const guard: AuthGuard = options.authGuard ?? limiter.guard;

  let requests = 0;
  const node = process.pid.toString(36);
  const trust = parseProxyTrust(core.config.trustProxy);
  app.use(async (ctx, next) => {
    ctx.state = new RequestState(core.log, `${node}-${(++requests).toString(36)}`, clientAddress(ctx, trust));
    await next();
  });
  app.use(async (ctx, next) => {
    await next();
    if (closing.has(app)) ctx.set('Connection', 'close');
  });
  app.use(metrics.timeRequests);
  app.use(errorEdge);
  app.use(bodyReader(core.config.bodyLimitBytes));

  const ops = new Router();
  ops.get('/healthz', (ctx) => {
    ctx.body = worker === null ? { status: 'ok' } : { status: 'ok', worker };
  });
  ops.get('/readyz', async (ctx) => {
    await core.checkReady();
    ctx.body = { status: 'ready' };
  });
  ops.get('/metrics', async (ctx) => {
    if (!options.clusterMetrics) {
      ctx.type = metrics.registry.contentType;
      ctx.body = await metrics.registry.metrics();
      return;
    }
    let text: string;
    try {
      text = await options.clusterMetrics();
    } catch (err) {
      throw new UnavailableError(`${(err as Error).message}; try again`);
    }
    ctx.type = metrics.registry.contentType;
    ctx.body = text;
  });
  options.mount?.(ops);

  for (const router of [ops, agentRoutes(core, guard), userRoutes(core, guard)]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  app.on('error', (err) => core.log.debug({ err }, 'connection error'));
  return app;
}

/** Creates the app and listens on the configured host and port. */
export async function startHttpServer(core: Core, options: AppOptions = {}): Promise<HttpServer> {
  const app = createApp(core, options);
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = (core.config.maxWaitSeconds + 30) * 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(core.config.port, core.config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : core.config.port;
  return {
    app,
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Requests in progress (reports, pushes) are finished; keep-alive connections are closed once idle.
        closing.add(app);
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
