/** load: two gateway nodes, many SDK agents split between them, jobs pushed at a fixed rate for a fixed time (open loop). */
import type { ChildProcess } from 'node:child_process';
import {
  consumeTerminalEvents,
  CpuMeter,
  KeepAliveClient,
  memoryMb,
  Namespace,
  nowMs,
  percentile,
  pidsByName,
  REDIS_CLUSTER,
  round,
  serve,
  spawnScript,
  stopProcess,
  waitForLine,
  type Served,
} from './harness';

/** Parameters of the load benchmark. */
export interface LoadOptions {
  agents: number;
  /** Jobs pushed per second, whatever the answers' speed. */
  rate: number;
  seconds: number;
  /** Seconds pushed at the same rate before the measured ones (connection pools fill, code gets compiled). */
  warmupSeconds: number;
}

/** Result of the load benchmark. */
export interface LoadResult {
  redis: 'server' | 'cluster';
  nodes: number;
  agents: number;
  target_rate: number;
  warmup_s: number;
  seconds: number;
  pushed: number;
  accepted: number;
  achieved_rate: number;
  push_p50_ms: number;
  push_p99_ms: number;
  push_to_terminal_p50_ms: number;
  push_to_terminal_p99_ms: number;
  push_to_terminal_max_ms: number;
  /** Pushes not answered 201, plus accepted jobs that did not succeed or did not end in time. */
  errors: number;
  error_detail: Record<string, number>;
  node_peak_rss_mb: number[];
  cpu_seconds: Record<string, number>;
}

/** Most pushes in flight at once; beyond it the generator counts the push as an error (the gateway fell behind). */
const MAX_IN_FLIGHT = 512;

/** Runs the load benchmark against two fresh `skadi serve` nodes on one namespace. */
export async function benchLoad(options: LoadOptions, progress: (line: string) => void): Promise<LoadResult> {
  const ns = new Namespace();
  const nodes: Served[] = [];
  nodes.push(await serve(ns.env({ SKADI_LOG_LEVEL: 'info' })), await serve(ns.env({ SKADI_LOG_LEVEL: 'info' })));
  const core = await ns.core();
  const clients = nodes.map((n) => new KeepAliveClient(n.base));
  const workers: ChildProcess[] = [];
  try {
    const { user, token: userToken } = await core.users.create('bench');
    const agents: { name: string; token: string }[] = [];
    for (let i = 0; i < options.agents; i++) {
      const { agent, token } = await core.agents.create(user.id, `agent${i}`);
      agents.push({ name: agent.name, token });
    }
    // Worker w runs every other agent against node w: half the jobs are pushed on the node their agent does not poll.
    for (const [w, node] of nodes.entries()) {
      const worker = spawnScript('agent-worker');
      worker.stdin!.end(JSON.stringify({ server: node.base, tokens: agents.filter((_, i) => i % nodes.length === w).map((a) => a.token) }));
      workers.push(worker);
      await waitForLine(worker, /ready/);
    }
    const deadline = Date.now() + 120_000;
    while ((await core.queue.onlineCount()) < options.agents && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    progress(
      `load: ${await core.queue.onlineCount()} agents online on ${nodes.length} nodes (Redis ${REDIS_CLUSTER ? 'cluster' : 'server'}); ` +
        `pushing ${options.rate} jobs/s for ${options.warmupSeconds} s (warm-up, not measured) + ${options.seconds} s`,
    );

    const warmup = options.rate * options.warmupSeconds;
    const total = warmup + options.rate * options.seconds;
    const pushedAt = new Map<string, number>();
    const pushTimes: number[] = [];
    const errors: Record<string, number> = {};
    const error = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);
    let pushingDone = false;
    let stopReading = false;
    const arrivedAt = new Map<string, number>(); // job id -> when its final event was consumed (warm-up jobs too)
    const missing = () => [...pushedAt.keys()].filter((id) => !arrivedAt.has(id)).length;
    const reader = consumeTerminalEvents(
      core.keys.jobStatusStream,
      () => stopReading || (pushingDone && missing() === 0),
      (id, at) => {
        if (!arrivedAt.has(id)) arrivedAt.set(id, at);
      },
    );
    const cpu = new CpuMeter({
      gateways: nodes.map((n) => n.child.pid!),
      agent_workers: workers.map((w) => w.pid!),
      load_generator: [process.pid],
      mariadb: pidsByName('mariadbd'),
      redis: pidsByName('redis-server'),
    });

    let pushed = 0;
    let inFlight = 0;
    const pending = new Set<Promise<void>>();
    const started = nowMs();
    let measuredFrom = started + options.warmupSeconds * 1000;
    let lastReport = started;
    while (pushed < total) {
      const due = Math.min(total, Math.floor(((nowMs() - started) / 1000) * options.rate));
      for (; pushed < due; pushed++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          error('generator_backlog');
          continue;
        }
        const i = pushed;
        const measured = i >= warmup;
        if (i === warmup) measuredFrom = nowMs();
        const agent = agents[Math.floor(Math.random() * agents.length)];
        const begin = nowMs();
        inFlight++;
        const work = clients[i % nodes.length]
          .request('POST', '/job/add', userToken, { message: `${agent.name} job-${i}` })
          .then(
            (res) => {
              if (measured) pushTimes.push(nowMs() - begin);
              if (res.status !== 201) error(`push_${res.status}`);
              else if (measured) pushedAt.set(JSON.parse(res.body).id, begin);
            },
            () => void error('push_no_answer'),
          )
          .finally(() => {
            inFlight--;
            pending.delete(work);
          });
        pending.add(work);
      }
      if (nowMs() - lastReport > 10_000) {
        lastReport = nowMs();
        progress(`load: ${pushed}/${total} pushed, ${arrivedAt.size} terminal`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(pending);
    const pushSeconds = (nowMs() - measuredFrom) / 1000;
    pushingDone = true;
    const until = Date.now() + 60_000;
    while (missing() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const cpuSeconds = cpu.read();
    stopReading = true;
    await reader;
    // Accepted jobs that did not succeed (expired, failed) or had not ended a minute after the last push.
    const [rows] = await core.db.pool.query("SELECT status, COUNT(*) AS n FROM jobs WHERE status <> 'succeeded' GROUP BY status");
    for (const row of rows as { status: string; n: number }[]) errors[`job_${row.status}`] = Number(row.n);
    if (missing() > 0) errors.final_event_not_consumed = missing();
    const latencies = [...pushedAt].filter(([id]) => arrivedAt.has(id)).map(([id, begin]) => arrivedAt.get(id)! - begin);
    return {
      redis: REDIS_CLUSTER ? 'cluster' : 'server',
      nodes: nodes.length,
      agents: options.agents,
      target_rate: options.rate,
      warmup_s: options.warmupSeconds,
      seconds: options.seconds,
      pushed: total - warmup,
      accepted: pushedAt.size,
      achieved_rate: round((total - warmup) / pushSeconds),
      push_p50_ms: round(percentile(pushTimes, 50)),
      push_p99_ms: round(percentile(pushTimes, 99)),
      push_to_terminal_p50_ms: round(percentile(latencies, 50)),
      push_to_terminal_p99_ms: round(percentile(latencies, 99)),
      push_to_terminal_max_ms: round(Math.max(...latencies)),
      errors: Object.values(errors).reduce((a, b) => a + b, 0),
      error_detail: errors,
      node_peak_rss_mb: nodes.map((n) => memoryMb(n.child.pid!).peak_rss_mb),
      cpu_seconds: cpuSeconds,
    };
  } finally {
    await Promise.all(workers.map(stopProcess));
    for (const c of clients) c.close();
    await core.close();
    for (const node of nodes) await node.stop();
    await ns.drop();
  }
}
