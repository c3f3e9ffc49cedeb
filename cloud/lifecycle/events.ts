/** The event streams other services consume: job status changes and messages for users. */
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import type { RedisClient } from '../queue/redis';
import type { RedisKeys } from '../queue/keys';
import type { JobRow, JobStatus } from '../store/jobs';

/** One entry of the job status stream (docs/http-api.md documents this schema). */
export interface JobStatusEvent {
  type: 'job:status';
  job_id: string;
  user_id: number;
  agent_id: number;
  agent: string;
  status: JobStatus;
  result: string | null;
  reason: string | null;
  at: string;
}

/** Kinds of message event. */
export type MessageKind = 'info' | 'warning' | 'text' | 'auto' | 'agent:online' | 'agent:offline';

/** One entry of the message stream (docs/http-api.md documents this schema). */
export interface MessageEvent {
  type: 'message';
  id: string;
  kind: MessageKind;
  user_id: number;
  agent_id: number | null;
  agent: string | null;
  message: string;
  source: string | null;
  color: string | null;
  at: string;
}

/** Input of a message event. */
export type MessageInput = Pick<MessageEvent, 'kind' | 'user_id' | 'message'> &
  Partial<Pick<MessageEvent, 'agent_id' | 'agent' | 'source' | 'color'>>;

/** The job fields an event is built from. */
export type JobEventSource = Pick<JobRow, 'id' | 'userId' | 'agentId' | 'agentName' | 'status' | 'result' | 'reason'>;

/** Most result bytes an event carries: the end of the output (the whole result stays in MySQL, GET /jobs/:id). */
export const EVENT_RESULT_BYTES = { running: 2 * 1024, final: 16 * 1024 } as const;

/** The last `maxBytes` of a result, starting with a note of how much was left out (on a character boundary). */
export function resultTail(result: string | null, maxBytes: number): string | null {
  if (result === null || result.length <= maxBytes / 4) return result; // at most 4 bytes a character: it fits
  const bytes = Buffer.from(result, 'utf8');
  if (bytes.length <= maxBytes) return result;
  let start = bytes.length - maxBytes;
  while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++; // do not split a character
  return `…[${start} bytes before this; the whole result: GET /jobs/:id]\n${bytes.subarray(start).toString('utf8')}`;
}

/** Builds the event of a job that just reached its current status (with a bounded tail of its result). */
export function jobStatusEvent(job: JobEventSource, at: Date): JobStatusEvent {
  return {
    type: 'job:status',
    job_id: job.id,
    user_id: job.userId,
    agent_id: job.agentId,
    agent: job.agentName,
    status: job.status,
    result: resultTail(job.result, job.status === 'running' ? EVENT_RESULT_BYTES.running : EVENT_RESULT_BYTES.final),
    reason: job.reason,
    at: at.toISOString(),
  };
}

/** Job status events kept in memory while Redis refuses them; past this the oldest are dropped (and logged). */
const MAX_UNSENT_DEFAULT = 100_000;
const RETRY_MS = 500;
/** How long kept events wait for Redis to be rebuilt (its data was lost) before they are appended regardless. */
const REBUILD_WAIT_MS = 30_000;

/**
 * Appends events to the Redis streams (entries have two fields: `type` and `data`, the JSON of the event).
 * A job status event whose append fails (Redis unreachable just after MySQL committed the change) is kept
 * and appended again, in order, once Redis answers: the change is committed, so its event must follow.
 */
export class EventLog {
  private readonly listeners: ((event: JobStatusEvent) => void)[] = [];
  private readonly unsent: JobStatusEvent[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private retrying: Promise<void> | null = null;
  private dropped = 0;
  private closing = false;
  private keptSince = 0;

  /**
   * `isIntact` says whether Redis still holds its data (or was rebuilt): while it does not, kept events wait,
   * because the rebuild appends again the final events of recently ended jobs and drops the kept ones it covers.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly maxLen: number,
    private readonly log?: Logger,
    private readonly isIntact?: () => Promise<boolean>,
    private readonly maxUnsent = MAX_UNSENT_DEFAULT,
  ) {}

  /** Job status events waiting to be appended again. */
  get unsentCount(): number {
    return this.unsent.length;
  }

  /** Calls fn for every job status event this process appends (metrics, in-process waiters). */
  onJobStatus(fn: (event: JobStatusEvent) => void): void {
    this.listeners.push(fn);
  }

  /** Appends job status events, in order. */
  async jobStatus(events: JobStatusEvent[]): Promise<void> {
    if (events.length === 0) return;
    await Promise.all(this.jobStatusCommands(events));
    this.announce(events);
  }

  /** Sends the XADDs of job status events (in order, on the auto-pipelined connection); call announce() once they succeeded. */
  jobStatusCommands(events: JobStatusEvent[]): Promise<unknown>[] {
    return events.map((event) =>
      this.appendStatus(event).catch((err) => {
        this.keepForRetry(event);
        throw err;
      }),
    );
  }

  private appendStatus(event: JobStatusEvent): Promise<unknown> {
    return this.redis.xadd(this.keys.jobStatusStream, 'MAXLEN', '~', this.maxLen, '*', 'type', event.type, 'data', JSON.stringify(event));
  }

  private keepForRetry(event: JobStatusEvent): void {
    if (this.unsent.length >= this.maxUnsent) {
      this.unsent.shift();
      if (this.dropped++ % 1000 === 0)
        this.log?.error({ dropped: this.dropped }, 'too many job status events waiting for Redis; dropping the oldest');
    }
    if (this.unsent.length === 0) {
      this.log?.warn('a job status event could not be appended; it is kept and appended once Redis answers');
      this.keptSince = Date.now();
    }
    this.unsent.push(event);
    this.scheduleRetry(RETRY_MS);
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer || this.retrying) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retrying = this.appendUnsent().finally(() => {
        this.retrying = null;
        if (this.unsent.length && !this.closing) this.scheduleRetry(RETRY_MS * 2); // Redis still refuses: later
      });
    }, ms);
    this.retryTimer.unref();
  }

  /** Forgets kept events that a rebuild appends again itself (same job, same status). */
  dropCovered(events: JobStatusEvent[]): void {
    if (this.unsent.length === 0 || events.length === 0) return;
    const covered = new Set(events.map((e) => `${e.job_id} ${e.status}`));
    let kept = 0;
    for (const e of this.unsent) if (!covered.has(`${e.job_id} ${e.status}`)) this.unsent[kept++] = e;
    this.unsent.length = kept;
  }

  /** Appends the kept events, oldest first; stops at the first failure and tries again later. */
  private async appendUnsent(waitForRebuild = true): Promise<void> {
    if (waitForRebuild && this.isIntact && Date.now() - this.keptSince < REBUILD_WAIT_MS && !(await this.isIntact().catch(() => false)))
      return;
    let appended = 0;
    while (this.unsent.length) {
      const event = this.unsent[0];
      try {
        await this.appendStatus(event);
      } catch {
        break;
      }
      const index = this.unsent.indexOf(event); // 0, unless a rebuild dropped kept events meanwhile
      if (index >= 0) this.unsent.splice(index, 1);
      this.announce([event]);
      appended++;
    }
    if (appended) this.log?.info({ appended, waiting: this.unsent.length }, 'appended job status events kept while Redis was unreachable');
  }

  /** Tries once more to append what is kept (at shutdown); gives up after timeoutMs. */
  async flush(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.unsent.length && !this.retrying) return;
    let timer: NodeJS.Timeout | undefined;
    const attempt = (this.retrying ?? Promise.resolve()).then(() => this.appendUnsent(false));
    await Promise.race([attempt, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.unsent.length) this.log?.error({ lost: this.unsent.length }, 'job status events could not be appended before shutdown');
  }

  /** Tells in-process listeners about events appended. */
  announce(events: JobStatusEvent[]): void {
    for (const event of events) for (const fn of this.listeners) fn(event);
  }

  /** Appends a message event and returns it. */
  async message(input: MessageInput): Promise<MessageEvent> {
    const event: MessageEvent = {
      type: 'message',
      id: ulid(),
      kind: input.kind,
      user_id: input.user_id,
      agent_id: input.agent_id ?? null,
      agent: input.agent ?? null,
      message: input.message,
      source: input.source ?? null,
      color: input.color ?? null,
      at: new Date().toISOString(),
    };
    await this.redis.xadd(this.keys.messageStream, 'MAXLEN', '~', this.maxLen, '*', 'type', event.type, 'data', JSON.stringify(event));
    return event;
  }
}
