/** dispatch: time from the start of a push request to the SDK's handler being called, with the agent long-polling. */
import { withTimeout } from './verdict';
import { Agent } from '../agent/sdk';
import { KeepAliveClient, Namespace, nowMs, percentile, round, serve } from './harness';

/** Parameters of the dispatch benchmark. */
export interface DispatchOptions {
  jobs: number;
}

/** Result of the dispatch benchmark (milliseconds). */
export interface DispatchResult {
  jobs: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Waits until the agent is idle: its long poll is waiting again (after the previous job's report) and its first look at the queue is over. */
async function untilIdle(client: KeepAliveClient): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const metrics = await client.request('GET', '/metrics', '');
    if (/^skadi_long_polls_waiting(\{[^}]*\})? [1-9]/m.test(metrics.body)) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 2));
}

/** Pushes jobs one after another through POST /job/add, each to an idle agent, and measures push-start -> handler-called. */
export async function benchDispatch(options: DispatchOptions, progress: (line: string) => void): Promise<DispatchResult> {
  const ns = new Namespace();
  const served = await serve(ns.env());
  const core = await ns.core();
  const client = new KeepAliveClient(served.base);
  let agent: Agent | null = null;
  try {
    const { user, token: userToken } = await core.users.create('bench');
    const { agent: row, token } = await core.agents.create(user.id, 'bench1');
    const arrived = new Map<string, number>();
    let wake: (() => void) | null = null;
    agent = new Agent({ server: served.base, token, waitSeconds: 30 });
    const running = agent.start((job) => {
      arrived.set(job.message, nowMs());
      wake?.();
      return 'ok';
    });
    while (!(await core.agents.isOnline(row.id))) await new Promise((r) => setTimeout(r, 20));
    const latencies: number[] = [];
    for (let i = 0; i < options.jobs; i++) {
      const key = `job-${i}`;
      await untilIdle(client);
      const started = nowMs();
      const done = new Promise<void>((resolve) => (wake = () => arrived.has(key) && resolve()));
      const res = await client.request('POST', '/job/add', userToken, { message: `bench1 ${key}` });
      if (res.status !== 201) throw new Error(`push answered ${res.status}: ${res.body}`);
      if (!arrived.has(key)) await withTimeout(done, 30_000, `job ${key} to reach the agent`);
      latencies.push(arrived.get(key)! - started);
      if ((i + 1) % 250 === 0) progress(`dispatch: ${i + 1}/${options.jobs} jobs`);
    }
    await agent.stop();
    await running;
    agent = null;
    return {
      jobs: options.jobs,
      p50_ms: round(percentile(latencies, 50)),
      p99_ms: round(percentile(latencies, 99)),
      max_ms: round(Math.max(...latencies)),
    };
  } finally {
    await agent?.stop();
    client.close();
    await core.close();
    await served.stop();
    await ns.drop();
  }
}
