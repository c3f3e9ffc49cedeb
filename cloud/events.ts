/** The event streams other services consume: job status changes and messages for users. */
import { ulid } from 'ulid';
import type { RedisClient } from './queue/redis';
import type { RedisKeys } from './queue/keys';
import type { JobRow, JobStatus } from './store/jobs';

/** One entry of the job status stream (README documents this schema). */
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

/** One entry of the message stream (README documents this schema). */
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
export type MessageInput = Pick<MessageEvent, 'kind' | 'user_id' | 'message'> & Partial<Pick<MessageEvent, 'agent_id' | 'agent' | 'source' | 'color'>>;

/** The job fields an event is built from. */
export type JobEventSource = Pick<JobRow, 'id' | 'userId' | 'agentId' | 'agentName' | 'status' | 'result' | 'reason'>;

/** Builds the event of a job that just reached its current status. */
export function jobStatusEvent(job: JobEventSource, at: Date): JobStatusEvent {
  return {
    type: 'job:status',
    job_id: job.id,
    user_id: job.userId,
    agent_id: job.agentId,
    agent: job.agentName,
    status: job.status,
    result: job.result,
    reason: job.reason,
    at: at.toISOString(),
  };
}

/** Appends events to the Redis streams (entries have two fields: `type` and `data`, the JSON of the event). */
export class EventLog {
  private readonly listeners: ((event: JobStatusEvent) => void)[] = [];

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly maxLen: number,
  ) {}

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
      this.redis.xadd(this.keys.jobStatusStream, 'MAXLEN', '~', this.maxLen, '*', 'type', event.type, 'data', JSON.stringify(event)),
    );
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
