/** Baselines: what a Redis-only queue (BullMQ) and a no-op server of Skadi's protocol reach on this machine, in the same run. */
import { Queue, Worker } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { KeepAliveClient, nowMs, REDIS_URL, round, runConcurrently, spawnScript, stopProcess, waitForLine } from './harness';

/** BullMQ adding `jobs` jobs from `clients` concurrent producers and processing them with `concurrency`; jobs per second. */
export async function benchBullmq(jobs: number, clients: number, concurrency: number): Promise<{ jobs: number; jobs_per_s: number }> {
  const url = new URL(REDIS_URL);
  const connection = {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
  const name = `skadi-bench-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection, prefix: 'skadi_bench_bull' });
  let done = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((r) => (finished = r));
  const worker = new Worker(name, async () => 'ok', { connection, prefix: 'skadi_bench_bull', concurrency, autorun: true });
  worker.on('completed', () => {
    if (++done === jobs) finished();
  });
  await worker.waitUntilReady();
  const started = nowMs();
  await runConcurrently(jobs, clients, async (i) => {
    await queue.add('job', { i }, { removeOnComplete: true, removeOnFail: true });
  });
  await allDone;
  const elapsed = (nowMs() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { jobs, jobs_per_s: round(jobs / elapsed) };
}

/** Result of the no-op server run. */
export interface NoopResult {
  jobs: number;
  jobs_per_s: number;
}

/**
 * The no-op server (noop-server.ts) under the load of the throughput part: the same pushing client, the same number of
 * SDK agents in the same number of agent processes. Jobs per second, from the first push to the last report.
 */
export async function benchNoopServer(options: {
  jobs: number;
  clients: number;
  agents: number;
  agentProcesses: number;
}): Promise<NoopResult> {
  const server = spawnScript('noop-server');
  const workers: ChildProcess[] = [];
  let client: KeepAliveClient | null = null;
  try {
    const [, port] = await waitForLine(server, /listening (\d+)/);
    const base = `http://127.0.0.1:${port}`;
    const tokens = Array.from({ length: options.agents }, (_, i) => `noop-agent-${i}`);
    for (let w = 0; w < options.agentProcesses; w++) {
      const worker = spawnScript('agent-worker');
      worker.stdin!.end(JSON.stringify({ server: base, tokens: tokens.filter((_, i) => i % options.agentProcesses === w) }));
      workers.push(worker);
      await waitForLine(worker, /ready/);
    }
    client = new KeepAliveClient(base);
    await new Promise((r) => setTimeout(r, 500)); // the agents' first polls are waiting
    const started = nowMs();
    await runConcurrently(options.jobs, options.clients, async (i) => {
      const res = await client!.request('POST', '/job/add', 'user-token', { message: `agent job-${i}` });
      if (res.status !== 201) throw new Error(`the no-op server answered ${res.status}`);
    });
    for (;;) {
      const { done } = JSON.parse((await client.request('GET', '/done', '')).body) as { done: number };
      if (done >= options.jobs) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = (nowMs() - started) / 1000;
    return { jobs: options.jobs, jobs_per_s: round(options.jobs / elapsed) };
  } finally {
    client?.close();
    await Promise.all(workers.map(stopProcess));
    await stopProcess(server);
  }
}
