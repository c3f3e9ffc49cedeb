/** Prometheus metrics of one node: jobs by status, queue depth, agents online, request latency. */
import client from 'prom-client';
import type { Context, Next } from 'koa';
import type { ChannelAdapter } from '../adapters/contract';
import type { Core } from '../cloud/core';

/** The node's metrics registry and the middleware that times requests. */
export interface Metrics {
  registry: client.Registry;
  timeRequests(ctx: Context, next: Next): Promise<void>;
}

/**
 * Creates a registry (one per server, so several can live in one process). In a worker of `serve --workers n`, every
 * series carries a `worker` label and the registry answers the primary, which gathers all workers' series for /metrics.
 */
export function createMetrics(core: Core, channels: readonly ChannelAdapter[] = [], worker: number | null = null): Metrics {
  const registry = new client.Registry();
  if (worker !== null) {
    registry.setDefaultLabels({ worker: String(worker) });
    client.AggregatorRegistry.setRegistries([registry]);
    new client.AggregatorRegistry(); // installs the answer to the primary's requests for this worker's metrics
  }
  client.collectDefaultMetrics({ register: registry, prefix: 'skadi_' });

  const latency = new client.Histogram({
    name: 'skadi_http_request_duration_seconds',
    help: 'HTTP request latency (long polls included) by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 60],
    registers: [registry],
  });
  const seriesOf = new Map<string, client.Histogram.Internal<string>>();
  const transitions = new client.Counter({
    name: 'skadi_job_transitions_total',
    help: 'Job status changes made by this node, by new status',
    labelNames: ['status'],
    registers: [registry],
  });
  core.events.onJobStatus((event) => transitions.inc({ status: event.status }));

  new client.Gauge({
    name: 'skadi_jobs',
    help: 'Jobs in each non-terminal status (queue depth is status="queuing"), from MySQL',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await core.jobRepo.countActive().catch(() => null);
      if (counts) for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  new client.Gauge({
    name: 'skadi_agents_online',
    help: 'Agents that polled within the offline time',
    registers: [registry],
    async collect() {
      const n = await core.queue.onlineCount().catch(() => null);
      if (n !== null) this.set(n);
    },
  });
  new client.Gauge({
    name: 'skadi_long_polls_waiting',
    help: 'Agent long polls waiting on this node',
    registers: [registry],
    collect() {
      this.set(core.dispatcher.waiting);
    },
  });
  new client.Gauge({
    name: 'skadi_notifier_in_flight',
    help: 'Events the notifier has read and not finished (delivering, waiting for their pace or turn, retrying); it stops reading at notify_max_in_flight',
    registers: [registry],
    collect() {
      this.set(core.notifierInFlight());
    },
  });

  new client.Gauge({
    name: 'skadi_channel_up',
    help: '1 while a chat channel can receive (its connection is up, or it takes webhooks), 0 while it is down',
    labelNames: ['channel'],
    registers: [registry],
    collect() {
      for (const channel of channels) this.set({ channel: channel.name }, channel.up?.() === false ? 0 : 1);
    },
  });

  return {
    registry,
    async timeRequests(ctx, next) {
      const started = process.hrtime.bigint();
      try {
        await next();
      } finally {
        const route = String((ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched');
        // The labelled series are looked up once per method, route and status, not hashed again on every request.
        const key = `${ctx.method} ${route} ${ctx.status}`;
        let series = seriesOf.get(key);
        if (!series) {
          series = latency.labels(ctx.method, route, String(ctx.status));
          if (seriesOf.size < 1000) seriesOf.set(key, series);
        }
        series.observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
    },
  };
}
