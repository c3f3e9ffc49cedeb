/** throughput: many SDK agents, jobs pushed over HTTP by concurrent clients, until every job is terminal and its event consumed. */
import type { ChildProcess } from 'node:child_process';
import {
  consumeTerminalEvents,
  CpuMeter,
  gatewayPids,
  KeepAliveClient,
  memoryMb,
  pidsByName,
  Namespace,
  nowMs,
  percentile,
  round,
  runConcurrently,
  serve,
  spawnScript,
  stopProcess,
  waitForLine,
} from './harness';

/** Parameters of the throughput benchmark. */
export interface ThroughputOptions {
  agents: number;
  jobs: number;
  clients: number;
  /** Processes running the SDK agents. */
  agentProcesses: number;
}

/** Result of the throughput benchmark. */
export interface ThroughputResult {
  agents: number;
  jobs: number;
  clients: number;
  accepted: number;
  succeeded: number;
  /** Succeeded jobs per second, push start to the last final event. */
  jobs_per_s: number;
  elapsed_s: number;
  push_to_terminal_p50_ms: number;
  push_to_terminal_p99_ms: number;
  server_peak_rss_mb: number;
  terminal_in_mysql: number;
  terminal_events_consumed: number;
  /** CPU seconds each process group used while the jobs flowed (2 cores: the run lasted elapsed_s). */
  cpu_seconds: Record<string, number>;
}

/** Runs the throughput benchmark against a fresh `skadi serve`. */
export async function benchThroughput(options: ThroughputOptions, progress: (line: string) => void): Promise<ThroughputResult> {
  const ns = new Namespace();
  const served = await serve(ns.env({ SKADI_LOG_LEVEL: 'info' }));
  const core = await ns.core();
  const client = new KeepAliveClient(served.base);
  const workers: ChildProcess[] = [];
  try {
    const { user, token: userToken } = await core.users.create('bench');
    const agents: { name: string; token: string; id: number }[] = [];
    for (let i = 0; i < options.agents; i++) {
      const { agent, token } = await core.agents.create(user.id, `agent${i}`);
      agents.push({ name: agent.name, token, id: agent.id });
    }
    for (let w = 0; w < options.agentProcesses; w++) {
      const worker = spawnScript('agent-worker');
      worker.stdin!.end(
        JSON.stringify({ server: served.base, tokens: agents.filter((_, i) => i % options.agentProcesses === w).map((a) => a.token) }),
      );
      workers.push(worker);
      await waitForLine(worker, /ready/);
    }
    for (const agent of agents) while (!(await core.agents.isOnline(agent.id))) await new Promise((r) => setTimeout(r, 50));
    progress(
      `throughput: ${options.agents} agents online in ${options.agentProcesses} worker processes; pushing ${options.jobs} jobs with ${options.clients} clients`,
    );

    const pushedAt = new Map<string, number>();
    const latencies: number[] = [];
    let lastTerminal = 0;
    const consumed = new Set<string>();
    let pushingDone = false;
    const reader = consumeTerminalEvents(
      core.keys.jobStatusStream,
      () => pushingDone && consumed.size >= options.jobs,
      (id, at) => {
        if (consumed.has(id)) return;
        consumed.add(id);
        lastTerminal = at;
        const start = pushedAt.get(id);
        if (start !== undefined) latencies.push(at - start);
        if (consumed.size % 5000 === 0) progress(`throughput: ${consumed.size}/${options.jobs} jobs terminal`);
      },
    );
    const cpu = new CpuMeter({
      gateway: gatewayPids(served.child.pid!),
      agent_workers: workers.map((w) => w.pid!),
      load_generator: [process.pid],
      mariadb: pidsByName('mariadbd'),
      redis: pidsByName('redis-server'),
    });
    const started = nowMs();
    let failures = 0;
    await runConcurrently(options.jobs, options.clients, async (i) => {
      const agent = agents[i % agents.length];
      const begin = nowMs();
      const res = await client.request('POST', '/job/add', userToken, { message: `${agent.name} job-${i}` });
      if (res.status !== 201) {
        failures++;
        return;
      }
      pushedAt.set(JSON.parse(res.body).id, begin);
    });
    pushingDone = true;
    if (failures) throw new Error(`${failures} pushes failed`);
    const deadline = Date.now() + 300_000;
    while (consumed.size < options.jobs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await reader;
    const cpuSeconds = cpu.read();
    const elapsed = (lastTerminal - started) / 1000;
    const [rows] = await core.db.pool.query(
      "SELECT COUNT(*) AS n FROM jobs WHERE status IN ('succeeded', 'failed', 'expired', 'canceled')",
    );
    const [succeededRows] = await core.db.pool.query("SELECT COUNT(*) AS n FROM jobs WHERE status = 'succeeded'");
    const succeeded = Number((succeededRows as { n: number }[])[0].n);
    const memory = memoryMb(served.child.pid!);
    return {
      agents: options.agents,
      jobs: options.jobs,
      clients: options.clients,
      accepted: pushedAt.size,
      succeeded,
      jobs_per_s: round(succeeded / elapsed),
      elapsed_s: round(elapsed),
      push_to_terminal_p50_ms: round(percentile(latencies, 50)),
      push_to_terminal_p99_ms: round(percentile(latencies, 99)),
      server_peak_rss_mb: memory.peak_rss_mb,
      terminal_in_mysql: Number((rows as { n: number }[])[0].n),
      terminal_events_consumed: consumed.size,
      cpu_seconds: cpuSeconds,
    };
  } finally {
    await Promise.all(workers.map(stopProcess));
    client.close();
    await core.close();
    await served.stop();
    await ns.drop();
  }
}
