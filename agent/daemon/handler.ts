/** The daemon's job handler: plan the message, run what it allows, report progress, succeed or fail with the output. */
import type { Job, JobHandler } from '../sdk';
import type { AgentDaemonConfig } from './config';
import { planMessage } from './plan';
import { allowedEnv, runCommand } from './runner';

/** Log lines the handler writes. */
export interface HandlerLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** Builds the handler for a config. */
export function createShellHandler(config: AgentDaemonConfig, log: HandlerLog, env: NodeJS.ProcessEnv = process.env): JobHandler {
  const commandEnv = allowedEnv(config.env, env);
  return async (job: Job) => {
    const plan = planMessage(config, job.message);
    if (plan.kind === 'help') return plan.text;
    if (plan.kind === 'refuse') {
      log.warn({ jobId: job.id, reason: plan.reason }, 'job refused');
      throw new Error(plan.reason);
    }
    // $0 is "skadi"; a template's words follow as $1, $2…, which its script only ever references as values.
    const argv = plan.kind === 'shell' ? [config.shell, '-c', plan.command, 'skadi', ...plan.args] : plan.argv;
    log.info({ jobId: job.id, entry: plan.label, argv, dir: plan.dir }, 'running');
    const result = await runCommand({
      argv,
      cwd: plan.dir,
      env: commandEnv,
      timeoutMs: plan.timeoutMs,
      outputLimit: config.outputLimit,
      progressIntervalMs: config.progressIntervalMs,
      signal: job.signal,
      onProgress: (tail) => void job.running(tail).catch((err) => log.warn({ jobId: job.id, err: String(err) }, 'progress report failed')),
    });
    log.info({ jobId: job.id, exitCode: result.exitCode, timedOut: result.timedOut, ok: result.ok }, 'finished');
    if (result.ok) return result.output;
    throw new Error(result.output ? `${result.output.replace(/\n$/, '')}\n[${result.failure}]` : `[${result.failure}]`);
  };
}
