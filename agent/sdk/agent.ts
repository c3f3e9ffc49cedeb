/** The embeddable agent: long-polls for jobs, runs a handler, reports the result; nothing beyond Node's built-ins. */
import { Backoff, sleep, type BackoffOptions } from './backoff';
import { splitWords } from '../words';
import { AgentClient, InvalidTokenError, ServerError, type JobPayload } from './client';

/** Where the agent's log lines go; defaults to nowhere. Each method takes a message and optional fields. */
export interface AgentLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Options of an agent; only server and token are required. */
export interface AgentOptions {
  /** Base URL of the Skadi server, e.g. https://skadi.example.com. */
  server: string;
  /** The agent token (`skadi agent add` prints it). */
  token: string;
  /** Jobs run at the same time (one long poll each). Default 1. */
  concurrency?: number;
  /** Seconds a poll may wait on the server for a job. Default 60; 0 polls without waiting. */
  waitSeconds?: number;
  /** Pause between polls against a server that answers at once (does not support waiting). Default 30 s. */
  pollIntervalMs?: number;
  /** While a handler works, report `running` this often to renew the lease. Default 60 s. */
  renewIntervalMs?: number;
  /** How long stop() waits for running jobs to finish and report. Default 30 s. */
  stopTimeoutMs?: number;
  /** Retry delays after network errors and 5xx answers. Default 0.5 s doubling to 30 s, with jitter. */
  backoff?: BackoffOptions;
  logger?: AgentLogger;
  userAgent?: string;
}

/** A job given to the handler. */
export interface Job {
  readonly id: string;
  readonly message: string;
  /**
   * The message split into words as the skadi-agent daemon splits it, and as approval patterns see it (throws
   * RefusedMessage for text with unquoted shell operators or open quotes). Run these words, not your own split.
   */
  words(): string[];
  /** Aborted when stop() gives up waiting for the handler. */
  readonly signal: AbortSignal;
  /** Reports progress (partial output) and renews the lease; rejects if the job is no longer running on the server. */
  running(output: string): Promise<void>;
}

/** Runs one job: return (or resolve) the result to succeed; throw (or reject) to fail with the error's message. */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing is a handler with no output
export type JobHandler = (job: Job) => Promise<string | void> | string | void;

const SILENT: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };
/** A poll that was asked to wait but came back empty faster than this was not held by the server. */
const EARLY_EMPTY_MS = 1000;
/** A promise with its resolve function (Promise.withResolvers needs Node 22). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** After the stop timeout aborts job.signal, how long handlers get to end before stop() leaves them behind. */
const ABORT_GRACE_MS = 5000;

/** A Skadi agent: `await new Agent({ server, token }).start(handler)` runs until stop() (or rejects on a bad token). */
export class Agent {
  private readonly client: AgentClient;
  private readonly log: AgentLogger;
  private readonly options: Required<Omit<AgentOptions, 'logger' | 'userAgent' | 'backoff'>> & { backoff?: BackoffOptions };
  private stopping = false;
  private readonly pollAbort = new AbortController();
  private readonly jobAbort = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Lease renewals of the running jobs. */
  private readonly renewals = new Set<NodeJS.Timeout>();
  /** Resolved when stop() gives up on handlers that ignored the abort (start() resolves then too). */
  private readonly leftBehind = deferred();
  private fatal: Error | null = null;
  private loops: Promise<void>[] = [];

  constructor(options: AgentOptions) {
    if (!options.server || !/^https?:\/\//.test(options.server)) throw new TypeError('Agent: `server` must be an http(s) URL');
    if (!options.token) throw new TypeError('Agent: `token` is required');
    this.options = {
      concurrency: Math.max(1, Math.floor(options.concurrency ?? 1)),
      waitSeconds: Math.max(0, Math.min(600, Math.floor(options.waitSeconds ?? 60))),
      pollIntervalMs: options.pollIntervalMs ?? 30_000,
      renewIntervalMs: options.renewIntervalMs ?? 60_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
      server: options.server,
      token: options.token,
      backoff: options.backoff,
    };
    this.log = options.logger ?? SILENT;
    this.client = new AgentClient(options.server, options.token, options.userAgent);
  }

  /** Jobs being handled right now. */
  get activeJobs(): number {
    return this.inFlight.size;
  }

  /** Polls and handles jobs until stop(); rejects with InvalidTokenError if the server refuses the token. */
  async start(handler: JobHandler): Promise<void> {
    if (this.loops.length) throw new Error('Agent: already started');
    this.log.info('agent started', { server: this.options.server, concurrency: this.options.concurrency });
    this.loops = Array.from({ length: this.options.concurrency }, (_, i) => this.loop(handler, i));
    await Promise.race([Promise.all(this.loops), this.leftBehind.promise]);
    if (this.fatal) {
      this.client.close();
      throw this.fatal;
    }
  }

  /** Stops polling, waits (up to stopTimeoutMs) for running jobs to finish and report, then resolves. */
  async stop(): Promise<void> {
    if (this.stopping) return this.settle();
    this.stopping = true;
    this.pollAbort.abort();
    return this.settle();
  }

  private async settle(): Promise<void> {
    // The loops end once their jobs are done, including a job that a report in flight at stop() brings: the stop
    // timeout covers it too.
    const jobsDone = Promise.all(this.loops);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      jobsDone.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.options.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn('stop timeout: aborting running jobs', { jobs: this.inFlight.size });
      this.jobAbort.abort();
      const grace = new AbortController();
      const finished = await Promise.race([jobsDone.then(() => true), sleep(ABORT_GRACE_MS, grace.signal).then(() => false)]);
      grace.abort();
      if (!finished) {
        // Handlers that ignore their signal are left behind: no more renewals, so their jobs expire after the lease.
        for (const renewal of this.renewals) clearInterval(renewal);
        this.renewals.clear();
        this.client.close();
        this.log.warn('stopped without jobs that ignored the abort; they expire after their lease', { jobs: this.inFlight.size });
        this.leftBehind.resolve();
        return;
      }
    }
    this.client.close();
    this.log.info('agent stopped');
  }

  private async loop(handler: JobHandler, worker: number): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    let earlyEmpty = 0;
    let waitSeconds = this.options.waitSeconds;
    // The next job, when the report of the previous one brought it (a job taken is always run, even while stopping).
    let next: JobPayload | null = null;
    while (!this.stopping || next) {
      let job: JobPayload | null = next;
      next = null;
      const started = Date.now();
      if (!job) {
        try {
          job = await this.client.poll(waitSeconds, this.pollAbort.signal);
          backoff.reset();
        } catch (err) {
          if (this.stopping) break;
          if (err instanceof InvalidTokenError) {
            this.log.error(err.message);
            this.fatal = err;
            this.stopping = true;
            this.pollAbort.abort();
            break;
          }
          if (err instanceof ServerError && err.status === 400 && waitSeconds > 0) {
            waitSeconds = Math.floor(waitSeconds / 2); // the server accepts a shorter wait
            this.log.warn('server refused the poll wait; shortening it', { waitSeconds, reason: err.message });
            continue;
          }
          const delay = backoff.next();
          this.log.warn('poll failed; retrying', { worker, attempt: backoff.attempts, retryInMs: delay, error: describe(err) });
          await sleep(delay, this.pollAbort.signal);
          continue;
        }
      }
      if (job) {
        earlyEmpty = 0;
        next = await this.track(this.handle(job, handler));
        continue;
      }
      // A server that does not hold ?wait answers at once: fall back to polling every pollIntervalMs.
      earlyEmpty = waitSeconds > 0 && Date.now() - started < EARLY_EMPTY_MS ? earlyEmpty + 1 : 0;
      if (waitSeconds === 0 || earlyEmpty >= 2) await sleep(this.options.pollIntervalMs, this.pollAbort.signal);
    }
  }

  private async track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(work);
    }
  }

  /** Runs a job and reports its end; resolves with the agent's next job when the report brought one. */
  private async handle(payload: JobPayload, handler: JobHandler): Promise<JobPayload | null> {
    const log = this.log;
    let latest = '';
    const job: Job = {
      id: payload.id,
      message: payload.message,
      words: () => splitWords(payload.message),
      signal: this.jobAbort.signal,
      running: async (output: string) => {
        latest = output;
        await this.client.report(payload.id, 'running', output);
      },
    };
    const renew = setInterval(() => {
      this.client
        .report(payload.id, 'running', latest)
        .catch((err) => log.warn('lease renewal failed', { jobId: payload.id, error: describe(err) }));
    }, this.options.renewIntervalMs);
    this.renewals.add(renew);
    let verb: 'succeed' | 'fail';
    let result: string;
    log.info('job received', { jobId: payload.id });
    try {
      result = String((await handler(job)) ?? '');
      verb = 'succeed';
    } catch (err) {
      result = err instanceof Error ? err.message : String(err);
      verb = 'fail';
    } finally {
      clearInterval(renew);
      this.renewals.delete(renew);
    }
    return this.reportFinal(payload.id, verb, result);
  }

  /**
   * Reports a job's end, retrying network errors and 5xx until it is accepted (or refused for good). Unless the agent
   * is stopping, the report also takes the next queued job (`?next=1`), which it resolves with.
   */
  private async reportFinal(jobId: string, verb: 'succeed' | 'fail', result: string): Promise<JobPayload | null> {
    const backoff = new Backoff(this.options.backoff);
    for (let attempt = 1; attempt <= 20; attempt++) {
      try {
        let next: JobPayload | null = null;
        if (this.stopping) await this.client.report(jobId, verb, result);
        else next = await this.client.reportAndTake(jobId, verb, result);
        this.log.info('job reported', { jobId, verb, ...(next ? { nextJobId: next.id } : {}) });
        return next;
      } catch (err) {
        const retryable = !(err instanceof ServerError) || err.retryable;
        if (!retryable) {
          this.log.error('the server refused the report', { jobId, verb, error: describe(err) });
          return null;
        }
        if (this.client.isClosed) {
          // A job that stop() left behind: no retry timers outlive the agent (the job expires after its lease).
          this.log.warn('could not report a job left behind at stop; not retrying', { jobId, verb, error: describe(err) });
          return null;
        }
        const delay = backoff.next();
        this.log.warn('report failed; retrying', { jobId, attempt, retryInMs: delay, error: describe(err) });
        await sleep(delay);
      }
    }
    this.log.error('giving up reporting the job', { jobId, verb });
    return null;
  }

  /** Sends an info notification to the agent's owner. */
  sendInfo(message: string): Promise<void> {
    return this.sendMessage('info', message);
  }

  /** Sends a warning notification to the agent's owner. */
  sendWarning(message: string): Promise<void> {
    return this.sendMessage('warning', message);
  }

  /** Sends a plain text message to the agent's owner. */
  sendText(message: string): Promise<void> {
    return this.sendMessage('text', message);
  }

  /** Sends a message whose presentation the server chooses. */
  sendAuto(message: string): Promise<void> {
    return this.sendMessage('auto', message);
  }

  private async sendMessage(kind: string, message: string): Promise<void> {
    await this.client.request('POST', `/agent/message/${kind}`, { message });
  }

  /** Queues "<agent> <job>" for another agent of the same owner; a ServerError 400 InvalidAgent when it is offline. */
  async addJob(text: string, options: { callback?: string } = {}): Promise<{ id: string; status: string }> {
    return (await this.client.request('POST', '/agent/job/add', { message: text, callback: options.callback })).body;
  }

  /** Queues the whole text as a job after a delay (milliseconds, or "15m", "1h30m", "2d"), for this agent unless `agent` names another. */
  async addDelayedJob(
    text: string,
    after: number | string,
    options: { callback?: string; agent?: string } = {},
  ): Promise<{ id: string; agent: string; due_at: string }> {
    const duration = typeof after === 'number' ? `${Math.max(1, Math.round(after / 1000))}s` : after;
    return (
      await this.client.request('POST', '/agent/job/delayed', { message: text, duration, callback: options.callback, agent: options.agent })
    ).body;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${err.message} (${cause.code})` : err.message;
  }
  return String(err);
}
