/** What a worker of `serve --workers n` says to its primary, and asks it: where it listens, and every worker's metrics. */
import cluster from 'node:cluster';

/** Messages from a worker to the primary. */
export type WorkerMessage = { type: 'skadi:listening'; port: number } | { type: 'skadi:metrics-req'; id: number };
/** Messages from the primary to a worker. */
export type PrimaryMessage = { type: 'skadi:metrics-res'; id: number; text?: string; error?: string };

/** The worker number (1..n) of this process, or null when it is no cluster worker. */
export function workerNumber(): number | null {
  if (!cluster.isWorker) return null;
  const n = Number(process.env.SKADI_WORKER_ID);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** In a worker: tells the primary where it listens. */
export function reportListening(port: number): void {
  process.send?.({ type: 'skadi:listening', port } satisfies WorkerMessage);
}

let metricsRequests = 0;
const pendingMetrics = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
let listeningForMetrics = false;

/** In a worker: the metrics of every worker, gathered by the primary (each series labelled with its worker). */
export function clusterMetrics(timeoutMs = 10_000): Promise<string> {
  if (!listeningForMetrics) {
    listeningForMetrics = true;
    process.on('message', (message: PrimaryMessage) => {
      if (message?.type !== 'skadi:metrics-res') return;
      const pending = pendingMetrics.get(message.id);
      if (!pending) return;
      pendingMetrics.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error !== undefined) pending.reject(new Error(`the primary could not gather the workers' metrics: ${message.error}`));
      else pending.resolve(message.text ?? '');
    });
  }
  const id = ++metricsRequests;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pendingMetrics.delete(id);
      reject(new Error('the primary did not answer with the metrics in time'));
    }, timeoutMs);
    pendingMetrics.set(id, { resolve, reject, timer });
    const failed = (err: Error | null) => {
      if (!err || !pendingMetrics.delete(id)) return;
      clearTimeout(timer);
      reject(new Error(`cannot reach the primary: ${err.message}`));
    };
    if (!process.send) return failed(new Error('no IPC channel'));
    process.send({ type: 'skadi:metrics-req', id } satisfies WorkerMessage, undefined, {}, failed);
  });
}
