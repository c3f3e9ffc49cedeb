/** agents: 10,000 agents long-polling one gateway node: its memory and CPU while idle, and dispatch latency to random agents. */
import { withTimeout } from './verdict';
import { performance } from 'node:perf_hooks';
import { hashToken, newToken } from '../cloud/accounts/tokens';
import {
  cpuSeconds,
  gatewayPids,
  KeepAliveClient,
  memoryMb,
  Namespace,
  percentile,
  round,
  serve,
  spawnScript,
  stopProcess,
  waitForLine,
} from './harness';

/** Parameters of the agents benchmark. */
export interface AgentsOptions {
  agents: number;
  jobs: number;
  idleSeconds: number;
}

/** Result of the agents benchmark. */
export interface AgentsResult {
  agents: number;
  online: number;
  /** Jobs that reached their agent. */
  accepted: number;
  connect_s: number;
  idle_rss_mb: number;
  /** The gateway's V8 heap at idle (from its /metrics): what is live, and what V8 holds. */
  idle_heap_used_mb: number;
  idle_heap_total_mb: number;
  idle_cpu_percent: number;
  jobs: number;
  dispatch_p50_ms: number;
  dispatch_p99_ms: number;
  dispatch_max_ms: number;
  peak_rss_mb: number;
}

const epochMs = () => performance.timeOrigin + performance.now();

/** Runs the agents benchmark against a fresh `skadi serve`. */
export async function benchAgents(options: AgentsOptions, progress: (line: string) => void): Promise<AgentsResult> {
  const ns = new Namespace();
  const served = await serve(ns.env({ SKADI_LOG_LEVEL: 'info' }));
  const core = await ns.core();
  const client = new KeepAliveClient(served.base);
  const pollers = spawnScript('poll-clients');
  try {
    const { user, token: userToken } = await core.users.create('bench');
    const tokens: string[] = [];
    for (let i = 0; i < options.agents; i += 1000) {
      const rows = [];
      for (let j = i; j < Math.min(i + 1000, options.agents); j++) {
        const token = newToken('agent');
        tokens.push(token);
        rows.push([user.id, `a${j}`, hashToken(token), new Date()]);
      }
      await core.db.pool.query('INSERT INTO agents (user_id, name, token_hash, created_at) VALUES ?', [rows]);
    }
    progress(`agents: ${options.agents} agents created; connecting their long polls`);
    const started = Date.now();
    pollers.stdin!.end(JSON.stringify({ server: served.base, tokens, wait: 60 }));
    await waitForLine(pollers, /connected/, 300_000);
    let online = 0;
    while ((online = await core.queue.onlineCount()) < options.agents && Date.now() - started < 300_000)
      await new Promise((r) => setTimeout(r, 200));
    const connectS = (Date.now() - started) / 1000;
    if (online < options.agents) throw new Error(`only ${online} of ${options.agents} agents came online within 300 s`);
    progress(`agents: ${online} online after ${round(connectS)} s; measuring ${options.idleSeconds} s idle`);
    await new Promise((r) => setTimeout(r, 2000)); // let the coming-online work settle
    const pid = served.child.pid!;
    const pids = gatewayPids(pid);
    const gatewayCpu = () => pids.reduce((sum, one) => sum + cpuSeconds(one), 0);
    const cpuBefore = gatewayCpu();
    await new Promise((r) => setTimeout(r, options.idleSeconds * 1000));
    const idleCpu = ((gatewayCpu() - cpuBefore) / options.idleSeconds) * 100;
    const idle = memoryMb(pid);
    const heap = await heapMb(served.base);

    const arrived = new Map<string, number>();
    let wake: (() => void) | null = null;
    let buffer = '';
    pollers.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const match = /^job (\S+) ([\d.]+)$/.exec(line);
        if (match) arrived.set(match[1], Number(match[2]));
      }
      wake?.();
    });
    const latencies: number[] = [];
    for (let i = 0; i < options.jobs; i++) {
      const key = `j${i}`;
      const agent = `a${Math.floor(Math.random() * options.agents)}`;
      const begin = epochMs();
      const res = await client.request('POST', '/job/add', userToken, { message: `${agent} ${key}` });
      if (res.status !== 201) throw new Error(`push answered ${res.status}: ${res.body}`);
      while (!arrived.has(key)) await withTimeout(new Promise<void>((r) => (wake = r)), 30_000, `job ${key} to reach agent ${agent}`);
      latencies.push(arrived.get(key)! - begin);
      if ((i + 1) % 250 === 0) progress(`agents: ${i + 1}/${options.jobs} jobs dispatched`);
    }
    return {
      agents: options.agents,
      online,
      connect_s: round(connectS),
      idle_rss_mb: idle.rss_mb,
      idle_heap_used_mb: heap.used,
      idle_heap_total_mb: heap.total,
      idle_cpu_percent: round(idleCpu),
      jobs: options.jobs,
      accepted: latencies.length,
      dispatch_p50_ms: round(percentile(latencies, 50)),
      dispatch_p99_ms: round(percentile(latencies, 99)),
      dispatch_max_ms: round(Math.max(...latencies)),
      peak_rss_mb: memoryMb(pid).peak_rss_mb,
    };
  } finally {
    await stopProcess(pollers);
    client.close();
    await core.close();
    await served.stop();
    await ns.drop();
  }
}

/** A gateway's V8 heap, used and total (MB, summed over its workers), from its /metrics. */
async function heapMb(base: string): Promise<{ used: number; total: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  return {
    used: round(sum('skadi_nodejs_heap_size_used_bytes') / 1048576),
    total: round(sum('skadi_nodejs_heap_size_total_bytes') / 1048576),
  };
}
