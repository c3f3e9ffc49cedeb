/** baseline_bullmq and protocol_ceiling: what a Redis-only queue and a no-op HTTP server reach on this machine, in the same run. */
import { Queue, Worker } from 'bullmq';
import { KeepAliveClient, nowMs, REDIS_URL, round, runConcurrently, spawnScript, stopProcess, waitForLine } from './harness';

/** BullMQ adding `jobs` jobs from `clients` concurrent producers and processing them with `concurrency`; jobs per second. */
export async function benchBullmq(jobs: number, clients: number, concurrency: number): Promise<{ jobs: number; jobs_per_s: number }> {
  const url = new URL(REDIS_URL);
  const connection = { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0), maxRetriesPerRequest: null };
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

/** A no-op HTTP server answering push, poll and report; the same keep-alive client drives the three calls per job. */
export async function benchProtocolCeiling(jobs: number, clients: number): Promise<{ jobs: number; jobs_per_s: number }> {
  const server = spawnScript('noop-server');
  try {
    const [, port] = await waitForLine(server, /listening (\d+)/);
    const client = new KeepAliveClient(`http://127.0.0.1:${port}`);
    const started = nowMs();
    await runConcurrently(jobs, clients, async (i) => {
      await client.request('POST', '/job/add', 'user-token', { message: `agent job-${i}` });
      const job = JSON.parse((await client.request('GET', '/agent/job?wait=30', 'agent-token')).body);
      await client.request('PUT', `/agent/jobs/${job.id}/succeed`, 'agent-token', { result: 'ok' });
    });
    const elapsed = (nowMs() - started) / 1000;
    client.close();
    return { jobs, jobs_per_s: round(jobs / elapsed) };
  } finally {
    await stopProcess(server);
  }
}
