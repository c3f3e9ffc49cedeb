/**
 * `skadi serve --workers n`: a primary process runs n workers on one port (node:cluster). Each worker is a full node
 * (HTTP, notifier, sweeper, reconciler); the primary restarts a worker that dies, answers /metrics for all of them
 * through the workers, and stops them gracefully on SIGTERM/SIGINT.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import type { PrimaryMessage, WorkerMessage } from './worker-ipc';

/** How the primary restarts a worker that died: backoff doubling from 1 s to 30 s, reset after a minute of life. */
export const RESTART_BACKOFF = { firstMs: 1000, maxMs: 30_000, stableMs: 60_000 };
/** How long a stopping worker may take before it is killed. */
const STOP_TIMEOUT_MS = 60_000;

/** The delay before restarting a worker that has failed `failures` times in a row. */
export function restartDelayMs(failures: number): number {
  return Math.min(RESTART_BACKOFF.maxMs, RESTART_BACKOFF.firstMs * 2 ** Math.max(0, failures - 1));
}

interface Slot {
  number: number;
  worker: Worker | null;
  startedAt: number;
  failures: number;
  listening: boolean;
  restart: NodeJS.Timeout | null;
}

/**
 * Runs the primary: starts `count` workers, says where they listen once all do, restarts those that die, and resolves
 * once all have stopped after a signal. A worker that exits before the first start-up completed stops the primary
 * with that worker's exit code (2: MySQL unreachable, a bad setting): its error is already on the output.
 */
export async function runPrimary(count: number, log: Logger, host: string): Promise<void> {
  const metrics = new AggregatorRegistry();
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({
    number: i + 1,
    worker: null,
    startedAt: 0,
    failures: 0,
    listening: false,
    restart: null,
  }));
  let stopping = false;
  let started = false;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const answerMetrics = (worker: Worker, id: number) => {
    metrics.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: 'skadi:metrics-res', id, text } satisfies PrimaryMessage),
      (err: Error) => worker.isConnected() && worker.send({ type: 'skadi:metrics-res', id, error: err.message } satisfies PrimaryMessage),
    );
  };

  const fork = (slot: Slot) => {
    slot.restart = null;
    slot.listening = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ SKADI_WORKER_ID: String(slot.number) });
    slot.worker = worker;
    log.info({ workerNumber: slot.number, workerPid: worker.process.pid }, `worker ${slot.number} started (pid ${worker.process.pid})`);
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === 'skadi:metrics-req') return answerMetrics(worker, message.id);
      if (message?.type !== 'skadi:listening') return;
      slot.listening = true;
      if (!started && slots.every((s) => s.listening)) {
        started = true;
        log.info(
          { port: message.port, host, workers: count },
          `Skadi is listening on http://${host}:${message.port} with ${count} workers`,
        );
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = null;
      if (stopping) {
        log.info({ workerNumber: slot.number, code, signal }, `worker ${slot.number} stopped`);
        if (slots.every((s) => !s.worker)) finish();
        return;
      }
      if (!started) {
        log.error(
          { workerNumber: slot.number, code, signal },
          `worker ${slot.number} exited during start-up; stopping (its error is above)`,
        );
        process.exitCode = code || 1; // 2 for a wrong setting or an unreachable MySQL/Redis, as without workers
        void stop('start-up failed');
        return;
      }
      slot.failures = Date.now() - slot.startedAt > RESTART_BACKOFF.stableMs ? 1 : slot.failures + 1;
      const delay = restartDelayMs(slot.failures);
      log.error(
        { workerNumber: slot.number, code, signal, restartInMs: delay },
        `worker ${slot.number} died (${signal ?? `exit code ${code}`}); restarting it in ${delay} ms`,
      );
      slot.restart = setTimeout(() => fork(slot), delay);
    });
  };

  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason: why }, 'stopping the workers');
    for (const slot of slots) if (slot.restart) clearTimeout(slot.restart);
    const running = slots.filter((s) => s.worker);
    if (running.length === 0) return finish();
    for (const slot of running) slot.worker!.process.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const slot of slots) {
        if (!slot.worker) continue;
        log.error({ workerNumber: slot.number }, `worker ${slot.number} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
        slot.worker.process.kill('SIGKILL');
      }
    }, STOP_TIMEOUT_MS);
    await finished;
    clearTimeout(killer);
  };

  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  log.info({ workers: count }, `starting ${count} workers`);
  for (const slot of slots) fork(slot);
  await finished;
  log.info('stopped');
}
