/** Consumes the event streams with a consumer group and delivers each event: paced, retried, dead-lettered, reclaimed after a crash. */
import os from 'node:os';
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { AdapterError } from '../../adapters/contract';
import type { JobStatusEvent, MessageEvent } from '../lifecycle/events';
import type { RedisClient } from '../queue/redis';
import type { JobRow } from '../store/jobs';
import { deliverJobStatus, deliverMessage, type DeliveryDeps } from './deliver';
import { Batcher } from '../store/batcher';
import { InFlightSlots } from './in-flight-slots';

/** Tuning of a notifier (the configuration provides them). */
export interface NotifierOptions {
  /** Attempts before an event is moved to the dead-letter stream. */
  maxAttempts: number;
  /** First retry delay; doubles per attempt, with jitter. */
  retryBaseMs: number;
  /** Pending entries idle this long (their notifier died) are taken over by another. */
  reclaimIdleMs: number;
  /** Most entries read and not yet finished (sending, waiting for their pace or their conversation's turn, retrying); reading stops at it. */
  maxInFlight: number;
  group?: string;
  consumer?: string;
  blockMs?: number;
}

/** How busy a notifier is (the metric skadi_notifier_in_flight shows inFlight). */
export interface NotifierLoad {
  /** Entries read and not yet acknowledged or dead-lettered. */
  inFlight: number;
  /** Of those, deliveries waiting because their conversation has its most deliveries under way. */
  held: number;
  /** Deliveries to a conversation under way: waiting for its pace, or sending. */
  underWay: number;
  /** The highest inFlight so far. */
  inFlightHighWater: number;
  /** The most deliveries that were ever under way at once for one conversation. */
  conversationHighWater: number;
}

/** An entry read and not finished yet. */
interface InFlightEntry {
  stream: string;
  id: string;
  work: Promise<void>;
}

/** The stream and connection a loop reads. */
interface StreamLoop {
  stream: string;
  kind: 'job:status' | 'message';
  conn: RedisClient;
}

const BATCH = 50;
/** Entries claimed again per XCLAIM by keepOurs(). */
const KEEP_CHUNK = 500;
/** Approximate length cap of each dead-letter stream (`<stream>:dead`): the newest failures are kept. */
export const DEAD_LETTER_MAXLEN = 10_000;
/**
 * After a batch smaller than BATCH, wait this long before reading again, so that events arriving one by one are
 * read (and their jobs loaded from MySQL) a few at a time: one query instead of one per event, for a delay that
 * nobody reading chat notices.
 */
const LINGER_MS = 15;

/** The key of an entry in flight: two streams may hold the same id. */
function entryKey(stream: string, id: string): string {
  return `${stream} ${id}`;
}

/** Delivers events from `…event:job:status` and `…event:message`; any number may run, each event goes to one. */
export class Notifier {
  private stopping = false;
  /** Entries read and not finished, by `<stream> <id>` (two streams may hold the same id). */
  private readonly inFlight = new Map<string, InFlightEntry>();
  /** One per entry in flight, taken before reading, so that the loops and reclaiming together never pass maxInFlight. */
  private readonly slots: InFlightSlots;
  private inFlightHighWater = 0;
  private keepTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private loops: Promise<void>[] = [];
  private reclaimTimer: NodeJS.Timeout | null = null;
  /** Acknowledgements of each stream, sent together: the deliveries that end at the same moment share one XACK. */
  private readonly acks = new Map<string, Batcher<string, void>>();
  readonly group: string;
  readonly consumer: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly streams: StreamLoop[],
    private readonly deps: DeliveryDeps,
    private readonly options: NotifierOptions,
    private readonly log: Logger,
  ) {
    this.group = options.group ?? 'notifier';
    this.consumer = options.consumer ?? `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    this.slots = new InFlightSlots(options.maxInFlight, () => this.inFlight.size);
  }

  /** Creates the consumer groups (from the start of each stream) and starts reading and reclaiming. */
  async start(): Promise<void> {
    for (const { stream } of this.streams) await this.createGroup(stream);
    this.loops = this.streams.map((loop) => this.read(loop));
    this.reclaimTimer = setInterval(() => void this.reclaim(), Math.max(100, this.options.reclaimIdleMs / 2));
    this.reclaimTimer.unref();
    this.keepTimer = setInterval(() => void this.keepOurs(), Math.max(100, this.options.reclaimIdleMs / 3));
    this.keepTimer.unref();
  }

  /** How many entries are in flight and held now, and the highest counts so far. */
  load(): NotifierLoad {
    const gate = this.deps.gate;
    return {
      inFlight: this.inFlight.size,
      held: gate.held,
      underWay: gate.underWay,
      inFlightHighWater: this.inFlightHighWater,
      conversationHighWater: gate.highWater,
    };
  }

  /** Creates the consumer group of a stream, reading from its first entry; a group that exists is kept. */
  private async createGroup(stream: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /** Stops reading; waits (up to timeoutMs) for deliveries in progress. Pending entries stay for another notifier. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.halt();
    for (const [timer, wake] of this.timers) clearTimeout(timer), wake(); // retries waiting: give up now, the entries stay pending
    let timer: NodeJS.Timeout | undefined;
    const work = [...this.inFlight.values()].map((e) => e.work);
    await Promise.race([Promise.all([...this.loops, ...work]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Stops at once without waiting or acknowledging anything, as a crash would (for tests). */
  abandon(): void {
    this.halt();
    for (const timer of this.timers.keys()) clearTimeout(timer);
  }

  /** Stops the timers and the reading loops (a loop waiting for a free slot wakes and ends). */
  private halt(): void {
    this.stopping = true;
    if (this.reclaimTimer) clearInterval(this.reclaimTimer);
    if (this.keepTimer) clearInterval(this.keepTimer);
    for (const { conn } of this.streams) conn.disconnect();
    this.slots.close();
  }

  /** Reads a stream while there are free slots: with none it stops reading, and the unread entries wait in Redis. */
  private async read(loop: StreamLoop): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const taken = { count: await this.slots.take(BATCH) };
      if (taken.count === 0) break; // stopping
      let linger = false;
      try {
        linger = await this.readBatch(loop, taken);
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        await this.readFailed(loop, err, ++failures);
      } finally {
        this.slots.give(taken.count); // what was read is in flight now
      }
      if (linger && !this.stopping) await new Promise((r) => setTimeout(r, LINGER_MS));
    }
  }

  /**
   * Reads up to `taken.count` new entries at once and starts delivering them. With none there, it keeps one slot,
   * gives back the others, and waits (blockMs) for one entry: a quiet stream holds no more than one slot. True when
   * the batch was not full (the loop lingers a moment so that events arriving one by one are read together).
   */
  private async readBatch(loop: StreamLoop, taken: { count: number }): Promise<boolean> {
    let entries = await this.readEntries(loop, taken.count, false);
    if (entries.length === 0) {
      this.slots.give(taken.count - 1);
      taken.count = 1;
      entries = await this.readEntries(loop, 1, true);
    }
    const jobs = loop.kind === 'job:status' ? await this.prefetchJobs(entries) : new Map<string, JobRow>();
    for (const [id, fields] of entries) this.process(loop, id, fields, jobs);
    return entries.length > 0 && entries.length < BATCH;
  }

  /** New entries of a stream for this consumer, at most count; with block, waits up to blockMs for the first. */
  private async readEntries(loop: StreamLoop, count: number, block: boolean): Promise<[string, string[]][]> {
    const reply = (
      block
        ? await loop.conn.xreadgroup(
            'GROUP',
            this.group,
            this.consumer,
            'COUNT',
            count,
            'BLOCK',
            this.options.blockMs ?? 1000,
            'STREAMS',
            loop.stream,
            '>',
          )
        : await loop.conn.xreadgroup('GROUP', this.group, this.consumer, 'COUNT', count, 'STREAMS', loop.stream, '>')
    ) as [string, [string, string[]][]][] | null;
    return (reply ?? []).flatMap(([, e]) => e);
  }

  /** After a failed read: creates the group again if Redis lost it, else waits a little longer after each failure. */
  private async readFailed(loop: StreamLoop, err: unknown, failures: number): Promise<void> {
    if (/NOGROUP/.test((err as Error).message)) {
      // Redis lost its data (restarted empty): the stream and its group are new. Every entry of the new stream
      // was written after the loss and is delivered; what the old stream held is gone with it.
      this.log.warn({ stream: loop.stream }, 'the consumer group is gone (Redis lost its data); creating it again');
      await this.createGroup(loop.stream).catch(() => undefined);
      return;
    }
    this.log.warn({ err, stream: loop.stream }, 'reading events failed; retrying');
    await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(failures, 5))));
  }

  /** Loads the jobs of a batch of status events in one query (each event would otherwise load its job alone). */
  private async prefetchJobs(entries: [string, string[]][]): Promise<Map<string, JobRow>> {
    const ids = new Set<string>();
    for (const [, fields] of entries) {
      try {
        ids.add(JSON.parse(fields[fields.indexOf('data') + 1]).job_id);
      } catch {
        // a malformed entry is dead-lettered by deliver()
      }
    }
    return this.deps.jobs.getMany([...ids]).catch(() => new Map<string, JobRow>());
  }

  /** Takes over entries another notifier left pending (it crashed) and delivers them, as many as there is room for. */
  async reclaim(): Promise<number> {
    let count = 0;
    for (const loop of this.streams) {
      if (this.stopping) break;
      const room = this.slots.takeFree(100);
      if (room === 0) break;
      try {
        const [, entries] = (await this.redis.xautoclaim(
          loop.stream,
          this.group,
          this.consumer,
          this.options.reclaimIdleMs,
          '0-0',
          'COUNT',
          room,
        )) as [string, [string, string[] | null][]];
        for (const [id, fields] of entries) {
          if (!fields || this.inFlight.has(entryKey(loop.stream, id))) continue;
          count++;
          this.process(loop, id, fields);
        }
      } catch (err) {
        if (!this.stopping) this.log.warn({ err, stream: loop.stream }, 'reclaiming pending events failed');
      } finally {
        this.slots.give(room);
      }
    }
    return count;
  }

  /**
   * Claims again every entry in flight, which resets its idle time: an entry waiting here for its pace or its
   * conversation's turn longer than reclaimIdleMs is not taken for a dead notifier's and delivered by another.
   */
  private async keepOurs(): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const { stream, id } of this.inFlight.values()) {
      const ids = byStream.get(stream);
      if (ids) ids.push(id);
      else byStream.set(stream, [id]);
    }
    for (const [stream, ids] of byStream) {
      for (let i = 0; i < ids.length && !this.stopping; i += KEEP_CHUNK) {
        await this.redis.xclaim(stream, this.group, this.consumer, 0, ...ids.slice(i, i + KEEP_CHUNK), 'JUSTID').catch(() => undefined);
      }
    }
  }

  private process(loop: StreamLoop, id: string, fields: string[], prefetched?: Map<string, JobRow>): void {
    const key = entryKey(loop.stream, id);
    if (this.inFlight.has(key)) return;
    const work = this.deliver(loop, id, fields, prefetched).finally(() => {
      this.inFlight.delete(key);
      this.slots.wake();
    });
    this.inFlight.set(key, { stream: loop.stream, id, work });
    this.inFlightHighWater = Math.max(this.inFlightHighWater, this.inFlight.size);
  }

  /** Delivers one entry, retrying with backoff (or the platform's Retry-After), then acknowledges or dead-letters it. */
  private async deliver(loop: StreamLoop, id: string, fields: string[], prefetched?: Map<string, JobRow>): Promise<void> {
    const progress = {};
    for (let attempt = 1; ; attempt++) {
      try {
        const event = JSON.parse(fields[fields.indexOf('data') + 1]);
        // The first attempt uses the batch's jobs (a missing one is looked up); retries read fresh state.
        const job = attempt === 1 && prefetched?.has(event.job_id) ? prefetched.get(event.job_id) : undefined;
        const outcome =
          loop.kind === 'job:status'
            ? await deliverJobStatus(event as JobStatusEvent, this.deps, job, progress)
            : await deliverMessage(event as MessageEvent, this.deps);
        await this.ack(loop.stream, id);
        if (outcome !== 'skipped') this.log.debug({ entry: id, outcome, jobId: event.job_id }, 'event delivered');
        return;
      } catch (err) {
        if (this.stopping) return;
        const log = this.log.child({ stream: loop.stream, entry: id, attempt });
        const retryable = !(err instanceof SyntaxError) && (!(err instanceof AdapterError) || err.retryable);
        if (!retryable || attempt >= this.options.maxAttempts) {
          log.error({ err: String(err) }, 'delivery failed for good; moved to the dead-letter stream');
          await this.deadLetter(loop, id, fields, attempt, err).catch((e) => log.error({ err: e }, 'could not dead-letter the event'));
          return;
        }
        const backoff = this.options.retryBaseMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
        const delay = err instanceof AdapterError && err.retryAfterMs !== undefined ? err.retryAfterMs : backoff;
        log.warn({ err: String(err), retryInMs: Math.round(delay) }, 'delivery failed; will retry');
        await this.sleep(delay); // keepOurs() keeps the entry ours meanwhile
        if (this.stopping) return;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  private async deadLetter(loop: StreamLoop, id: string, fields: string[], attempts: number, err: unknown): Promise<void> {
    await this.redis.xadd(
      `${loop.stream}:dead`,
      'MAXLEN',
      '~',
      DEAD_LETTER_MAXLEN,
      '*',
      ...fields,
      'error',
      String((err as Error)?.message ?? err),
      'attempts',
      String(attempts),
      'entry',
      id,
    );
    await this.ack(loop.stream, id);
  }

  /** Acknowledges an entry (with the others acknowledged at the same moment, in one XACK). */
  private ack(stream: string, id: string): Promise<void> {
    let batcher = this.acks.get(stream);
    if (!batcher) {
      batcher = new Batcher<string, void>(async (ids) => (await this.redis.xack(stream, this.group, ...ids), ids.map(() => undefined)), {
        maxItems: 1000,
      });
      this.acks.set(stream, batcher);
    }
    return batcher.submit(id);
  }
}
