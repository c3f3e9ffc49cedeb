/** load: two gateway nodes, many SDK agents split between them, jobs pushed at a fixed rate for a fixed time (open loop). */
import type { ChildProcess } from 'node:child_process';
import { consumeTerminalEvents, CpuMeter, KeepAliveClient, memoryMb, Namespace, nowMs, percentile, pidsByName, REDIS_CLUSTER, round, serve, spawnScript, stopProcess, waitForLine, type Served } from './harness';

/** Parameters of the load benchmark. */
export interface LoadOptions {
  agents: number;
  /** Jobs pushed per second, whatever the answers' speed. */
  rate: number;
  seconds: number;
}

/** Result of the load benchmark. */
export interface LoadResult {
  redis: 'server' | 'cluster';
  nodes: number;
  agents: number;
  target_rate: number;
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
    progress(`load: ${await core.queue.onlineCount()} agents online on ${nodes.length} nodes (Redis ${REDIS_CLUSTER ? 'cluster' : 'server'}); pushing ${options.rate} jobs/s for ${options.seconds} s`);

    const total = options.rate * options.seconds;
    const pushedAt = new Map<string, number>();
    const latencies: number[] = [];
    const pushTimes: number[] = [];
    const consumed = new Set<string>();
    const errors: Record<string, number> = {};
    const error = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);
    let pushingDone = false;
    let stopReading = false;
    const reader = consumeTerminalEvents(core.keys.jobStatusStream, () => stopReading || (pushingDone && consumed.size >= pushedAt.size), (id, at) => {
      if (consumed.has(id)) return;
      consumed.add(id);
      const start = pushedAt.get(id);
      if (start !== undefined) latencies.push(at - start);
    });
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
    let lastReport = started;
    while (pushed < total) {
      const due = Math.min(total, Math.floor(((nowMs() - started) / 1000) * options.rate));
      for (; pushed < due; pushed++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          error('generator_backlog');
          continue;
        }
        const i = pushed;
        const agent = agents[Math.floor(Math.random() * agents.length)];
        const begin = nowMs();
        inFlight++;
        const work = clients[i % nodes.length]
          .request('POST', '/job/add', userToken, { message: `${agent.name} job-${i}` })
          .then(
            (res) => {
              pushTimes.push(nowMs() - begin);
              if (res.status === 201) pushedAt.set(JSON.parse(res.body).id, begin);
              else error(`push_${res.status}`);
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
        progress(`load: ${pushed}/${total} pushed, ${consumed.size} terminal`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(pending);
    const pushSeconds = (nowMs() - started) / 1000;
    pushingDone = true;
    const until = Date.now() + 60_000;
    while (consumed.size < pushedAt.size && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const cpuSeconds = cpu.read();
    stopReading = true;
    await reader;
    // Accepted jobs that did not succeed (expired, failed) or had not ended a minute after the last push.
    const [rows] = await core.db.pool.query("SELECT status, COUNT(*) AS n FROM jobs WHERE status <> 'succeeded' GROUP BY status");
    for (const row of rows as { status: string; n: number }[]) errors[`job_${row.status}`] = Number(row.n);
    if (consumed.size < pushedAt.size) errors.final_event_not_consumed = pushedAt.size - consumed.size;
    return {
      redis: REDIS_CLUSTER ? 'cluster' : 'server',
      nodes: nodes.length,
      agents: options.agents,
      target_rate: options.rate,
      seconds: options.seconds,
      pushed: total,
      accepted: pushedAt.size,
      achieved_rate: round(total / pushSeconds),
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
