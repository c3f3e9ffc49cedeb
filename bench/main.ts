/** `npm run bench [-- part…] [--smoke]`: benchmarks against real MariaDB + Redis; one JSON object on stdout and in bench/results/latest.json. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { benchBullmq, benchNoopServer } from './baseline';
import { parseSettingValue } from '../config';
import { benchAgents } from './agents';
import { benchDispatch } from './dispatch';
import { benchDispatchStages } from './dispatch-stages';
import { benchLoad } from './load';
import { benchSlack } from './slack';
import { benchThroughput } from './throughput';
import { partProblems } from './verdict';

const PARTS = ['dispatch', 'throughput', 'baseline_bullmq', 'agents', 'slack_round_trip', 'load'] as const;
type Part = (typeof PARTS)[number];

interface Options {
  smoke?: boolean;
  out?: string;
  dispatchJobs: string;
  jobs: string;
  agents: string;
  clients: string;
  workers: string;
  agentProcesses: string;
  idleAgents: string;
  agentJobs: string;
  slackCommands: string;
  loadAgents: string;
  loadRate: string;
  loadSeconds: string;
}

const int = (value: string, flag: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number of at least 1`);
  return n;
};

/** A readable table of the results, for stderr. */
function table(results: Record<string, any>): string {
  const lines: string[] = [];
  for (const [part, values] of Object.entries(results)) {
    if (typeof values !== 'object' || values === null) continue;
    lines.push(`${part}:`);
    for (const [key, value] of Object.entries(values))
      lines.push(`  ${key.padEnd(28)} ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  }
  return lines.join('\n');
}

const program = new Command();
program
  .name('bench')
  .description(
    `Runs the benchmarks (${PARTS.join(', ')}) against MariaDB and Redis on this machine, prints one JSON object and writes bench/results/latest.json. ` +
      'throughput also runs the no-op server of the same protocol with the same clients and agents, for the ratio to it; dispatch adds a stage breakdown. ' +
      'Exits 1 unless every job pushed was accepted and succeeded without errors.',
  )
  .argument('[parts...]', `parts to run (default: all): ${PARTS.join(', ')}`)
  .option('--smoke', 'a small, quick run (CI runs it so the benchmarks cannot rot); written to bench/results/smoke.json')
  .option('--out <file>', 'where to write the JSON (default bench/results/latest.json, or smoke.json with --smoke)')
  .option('--dispatch-jobs <n>', 'dispatch: jobs pushed one after another', '1000')
  .option('--jobs <n>', 'throughput and baselines: jobs', '20000')
  .option('--agents <n>', 'throughput: SDK agents', '100')
  .option('--clients <n>', 'throughput and baselines: concurrent HTTP clients pushing', '32')
  .option('--workers <n|auto>', 'worker processes of every gateway started (skadi serve --workers; auto: one per CPU core)', '1')
  .option('--agent-processes <n>', 'throughput: processes running the SDK agents', '2')
  .option('--idle-agents <n>', 'agents: long-polling agents connected to one node', '10000')
  .option('--agent-jobs <n>', 'agents: jobs pushed to random agents', '1000')
  .option('--slack-commands <n>', 'slack_round_trip: slash commands', '200')
  .option('--load-agents <n>', 'load: SDK agents, split between two gateway nodes', '1000')
  .option('--load-rate <n>', 'load: jobs pushed per second (open loop)', '200')
  .option('--load-seconds <n>', 'load: how long to push', '60')
  .action(async (parts: string[], opts: Options) => {
    const unknown = parts.filter((p) => !PARTS.includes(p as Part));
    if (unknown.length) throw new Error(`unknown part "${unknown[0]}" (known: ${PARTS.join(', ')})`);
    const selected = new Set((parts.length ? parts : PARTS) as Part[]);
    const smoke = !!opts.smoke;
    const jobs = smoke ? 500 : int(opts.jobs, '--jobs');
    const clients = int(opts.clients, '--clients');
    const agents = smoke ? 10 : int(opts.agents, '--agents');
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const gatewayWorkers = parseSettingValue('workers', opts.workers, '--workers');
    process.env.SKADI_WORKERS = String(gatewayWorkers); // every `skadi serve` the parts start inherits it
    const agentProcesses = int(opts.agentProcesses, '--agent-processes');
    const results: Record<string, unknown> = {
      started_at: new Date().toISOString(),
      smoke,
      machine: { cores: os.cpus().length, node: process.version },
      gateway_workers: gatewayWorkers,
    };
    if (selected.has('dispatch')) {
      const dispatchJobs = smoke ? 100 : int(opts.dispatchJobs, '--dispatch-jobs');
      results.dispatch = {
        ...(await benchDispatch({ jobs: dispatchJobs }, progress)),
        breakdown: await benchDispatchStages(dispatchJobs, progress),
      };
    }
    if (selected.has('throughput')) {
      const skadi = await benchThroughput({ jobs, agents, clients, agentProcesses }, progress);
      progress(`throughput: the same load against the no-op server of the same protocol`);
      const noop = await benchNoopServer({ jobs, clients, agents, agentProcesses });
      const cpuPerJob = skadi.succeeded ? Math.round(((skadi.cpu_seconds.gateway ?? 0) / skadi.succeeded) * 1e6) / 1000 : null;
      results.throughput = {
        ...skadi,
        gateway_cpu_ms_per_job: cpuPerJob,
        noop_server: noop,
        ratio_to_noop: Math.round((skadi.jobs_per_s / noop.jobs_per_s) * 1000) / 1000,
      };
    }
    if (selected.has('baseline_bullmq')) {
      progress(`baseline_bullmq: BullMQ with ${jobs} jobs, concurrency ${agents}`);
      const bullmq = await benchBullmq(jobs, clients, agents);
      const skadi = (results.throughput as { jobs_per_s?: number } | undefined)?.jobs_per_s;
      results.baseline_bullmq = {
        ...bullmq,
        concurrency: agents,
        ratio_skadi_over_bullmq: skadi ? Math.round((skadi / bullmq.jobs_per_s) * 1000) / 1000 : null,
      };
    }
    if (selected.has('agents')) {
      const count = smoke ? 200 : int(opts.idleAgents, '--idle-agents');
      results.agents = await benchAgents(
        { agents: count, jobs: smoke ? 50 : int(opts.agentJobs, '--agent-jobs'), idleSeconds: smoke ? 2 : 10 },
        progress,
      );
    }
    if (selected.has('slack_round_trip'))
      results.slack_round_trip = await benchSlack(smoke ? 20 : int(opts.slackCommands, '--slack-commands'), progress);
    if (selected.has('load')) {
      results.load = await benchLoad(
        smoke
          ? { agents: 50, rate: 50, seconds: 3, warmupSeconds: 1 }
          : {
              agents: int(opts.loadAgents, '--load-agents'),
              rate: int(opts.loadRate, '--load-rate'),
              seconds: int(opts.loadSeconds, '--load-seconds'),
              warmupSeconds: 5,
            },
        progress,
      );
    }
    results.finished_at = new Date().toISOString();
    const problems = Object.entries(results).flatMap(([part, result]) => partProblems(part, result));
    results.ok = problems.length === 0;
    if (problems.length) results.problems = problems;
    const json = JSON.stringify(results, null, 2);
    const out = path.resolve(opts.out ?? path.join(__dirname, '../../bench/results', smoke ? 'smoke.json' : 'latest.json'));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, json + '\n');
    process.stderr.write(`\n${table(results)}\n\n`);
    console.log(json);
    if (problems.length) {
      process.stderr.write(`bench: the run does not count:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
      process.exitCode = 1;
    }
  });

program.parseAsync(process.argv).catch((err) => {
  console.error(`bench: ${err?.stack ?? err}`);
  process.exitCode = 1;
});
