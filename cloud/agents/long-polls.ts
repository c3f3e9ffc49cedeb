/** Long polls of one node: waiting agents are woken by the node's pub/sub subscription, never by polling Redis. */
import type { Logger } from 'pino';
import type { AgentService } from './agent-service';
import type { JobHandOut, TakenJob } from '../lifecycle/hand-out';
import type { AgentRow } from '../store/agents';

/** A long poll waiting on this node for a job of its agent. */
interface PendingPoll {
  resolve: (job: TakenJob | null) => void;
  /** Answers with an error: the take made for it failed after its time was up. */
  reject: (err: unknown) => void;
  /** Set while the dispatcher is taking a job for this poll: its timeout must not answer 204 now. */
  claimed: boolean;
  /** The request timed out while claimed; answer as soon as the take ends. */
  expired: boolean;
  /**
   * The client went away, or the poll's credential changed: a job taken for it is not handed over (or was never
   * received) and goes back to the queue.
   */
  disconnected: boolean;
  /** Asks the connection itself whether it is gone (its close event may not have been handled yet). */
  gone?: () => boolean;
  done: boolean;
}

/** The long polls of this node that a push may claim (the dispatcher; pushes take this, not the dispatcher). */
export interface IdlePolls {
  /** Reserves an idle long poll of the agent for a job being pushed, or null when none waits here. */
  claimIdle(agentId: number): PollClaim | null;
}

/**
 * Counts, per agent, the jobs queued on this node and the wake-ups received: a count that moved during a take means
 * the queue may have changed. The queue notes what it queues here (RedisState's `onQueued`).
 */
export class QueueActivity {
  private readonly counts = new Map<number, number>();

  /** Notes that jobs are being queued for an agent (its wake-up follows through pub/sub), or a wake-up came. */
  note(agentId: number): void {
    this.counts.set(agentId, this.count(agentId) + 1);
  }

  /** How many times the agent's queue was noted so far. */
  count(agentId: number): number {
    return this.counts.get(agentId) ?? 0;
  }
}

/** A long poll reserved for a job being pushed on this node (Dispatcher.claimIdle). */
export interface PollClaim {
  /** Answers the poll with the job; false when its client is gone (the job was not received). */
  deliver(job: TakenJob): boolean;
  /** Gives the poll back: it waits on (or answers 204 if its time ran out meanwhile). */
  cancel(): void;
}

/** The HTTP connection of a long poll, as the dispatcher needs it. */
export interface PollConnection {
  /** True when the client is already gone. */
  closed(): boolean;
  /** Calls fn when the client goes away. */
  onClose(fn: () => void): void;
}

interface AgentPolls {
  agent: AgentRow;
  polls: PendingPoll[];
  running: boolean;
  dirty: boolean;
}

/**
 * How long a queue this node saw empty is trusted to stay empty without a wake-up: wake-ups come through Redis pub/sub,
 * and a subscription that reconnected may have missed one.
 */
const EMPTY_TRUST_MS = 1000;

/** Serves `GET /agent/job?wait=N` for the agents connected to this node. */
export class Dispatcher implements IdlePolls {
  private readonly byAgent = new Map<number, AgentPolls>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /**
   * When a take of this node last found an agent's queue empty, and the wake-ups counted then. Until the next
   * wake-up (and for at most EMPTY_TRUST_MS), a poll of that agent need not look at the queue: a busy agent's next
   * poll, right after its report, saves a round trip to Redis.
   */
  private readonly emptyAt = new Map<number, { at: number; wakes: number }>();

  constructor(
    private readonly jobs: JobHandOut,
    /** Jobs queued here and wake-ups received, per agent. */
    private readonly wakes: QueueActivity,
    private readonly agents: AgentService,
    private readonly log: Logger,
    private readonly presenceRefreshMs: number,
    private readonly maxPollsPerAgent = 4,
  ) {}

  /** Starts refreshing the presence of agents whose long polls are in progress. */
  start(): void {
    this.stopped = false;
    this.refreshTimer = setInterval(() => {
      const waiting = [...this.byAgent.values()].map((entry) => entry.agent);
      if (waiting.length) this.agents.refreshPresence(waiting).catch((err) => this.log.warn({ err }, 'presence refresh failed'));
    }, this.presenceRefreshMs);
    this.refreshTimer.unref();
  }

  /**
   * Stops the refresh and answers every waiting poll, and every later one, with "no job" (the node is stopping). A poll
   * for which a job is being taken or handed over answers when that ends, with the job: answered now, it would leave
   * the job sent but never received until its lease ran out.
   */
  stop(): void {
    this.stopped = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const entry of this.byAgent.values()) {
      for (const w of [...entry.polls]) {
        if (w.claimed) w.expired = true;
        else this.finish(w, null, entry);
      }
    }
  }

  /** True while a long poll of the agent waits idle on this node: registered, its take over, nothing handed to it. */
  hasIdlePoll(agentId: number): boolean {
    const entry = this.byAgent.get(agentId);
    return !!entry && !entry.running && entry.polls.some((w) => !w.claimed && !w.done);
  }

  /** Number of long polls waiting on this node. */
  get waiting(): number {
    let n = 0;
    for (const entry of this.byAgent.values()) n += entry.polls.length;
    return n;
  }

  /**
   * Takes a job for the agent, waiting up to waitMs for one to be queued; null when none came.
   * A poll whose connection is gone is never handed a job; beyond maxPollsPerAgent, the oldest waiting poll answers null.
   */
  poll(agent: AgentRow, waitMs: number, connection?: PollConnection): Promise<TakenJob | null> {
    if (this.stopped || connection?.closed()) return Promise.resolve(null);
    return new Promise<TakenJob | null>((resolve, reject) => {
      const timer = setTimeout(() => this.giveUp(agent.id, pending, false), waitMs);
      const pending: PendingPoll = {
        resolve: (job) => {
          clearTimeout(timer);
          resolve(job);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        claimed: false,
        expired: false,
        disconnected: false,
        gone: connection ? () => connection.closed() : undefined,
        done: false,
      };
      let entry = this.byAgent.get(agent.id);
      if (!entry) this.byAgent.set(agent.id, (entry = { agent, polls: [], running: false, dirty: false }));
      entry.agent = agent;
      this.makeRoom(entry);
      entry.polls.push(pending);
      connection?.onClose(() => this.giveUp(agent.id, pending, true));
      this.run(entry).catch((err) => {
        this.remove(agent.id, pending);
        if (!pending.done) {
          pending.done = true;
          clearTimeout(timer);
          reject(err);
        }
      });
    });
  }

  /** Answers the oldest idle polls of an agent with "no job" until a new one fits under the cap. */
  private makeRoom(entry: AgentPolls): void {
    let over = entry.polls.length - this.maxPollsPerAgent + 1;
    for (const w of [...entry.polls]) {
      if (over <= 0) break;
      if (w.claimed) continue;
      this.finish(w, null, entry);
      over--;
    }
  }

  /** Ends the waiting polls made with a credential that changed (token rotated, agent disabled or removed), on this node. */
  endPollsOf(tokenHash: string): void {
    for (const entry of [...this.byAgent.values()]) {
      if (entry.agent.tokenHash !== tokenHash) continue;
      for (const w of [...entry.polls]) {
        if (w.claimed) {
          // A take or hand-off is in flight for it: it answers 204 when that ends, and its job goes back to the queue.
          w.expired = true;
          w.disconnected = true;
        } else {
          this.finish(w, null, entry);
        }
      }
    }
  }

  /** True when this node saw the agent's queue empty less than EMPTY_TRUST_MS ago and no job was queued since. */
  private knownEmpty(agentId: number): boolean {
    const seen = this.emptyAt.get(agentId);
    if (!seen) return false;
    if (!this.jobs.redisReady()) {
      // Wake-ups may be missed while Redis is away, and a poll must hear that it is (503), not wait.
      this.emptyAt.clear();
      return false;
    }
    if (seen.wakes === this.wakes.count(agentId) && Date.now() - seen.at < EMPTY_TRUST_MS) return true;
    this.emptyAt.delete(agentId);
    return false;
  }

  /**
   * Reserves an idle long poll of the agent on this node for a job being pushed here, so that the job can be handed
   * to it without going through the Redis queue; null when there is none (or a take for the agent is running).
   * The caller must end the claim with exactly one of deliver() or cancel().
   */
  claimIdle(agentId: number): PollClaim | null {
    const entry = this.byAgent.get(agentId);
    if (this.stopped || !entry || entry.running) return null;
    const pending = entry.polls.find((w) => !w.claimed && !w.done && !w.disconnected && !w.gone?.());
    if (!pending) return null;
    pending.claimed = true;
    let ended = false;
    return {
      deliver: (job) => {
        if (ended) throw new Error('poll claim already ended');
        ended = true;
        pending.claimed = false;
        if (pending.done || pending.disconnected || pending.gone?.()) {
          this.finish(pending, null, this.byAgent.get(agentId));
          return false;
        }
        this.finish(pending, job, this.byAgent.get(agentId));
        return true;
      },
      cancel: () => {
        if (ended) return;
        ended = true;
        pending.claimed = false;
        this.emptyAt.delete(agentId); // the hand-off was given up because jobs are queued
        const current = this.byAgent.get(agentId);
        if (pending.expired) this.finish(pending, null, current);
        // A wake-up that came while it was reserved skipped it: look at the queue again.
        if (current)
          this.run(current).catch((err) => this.log.warn({ err, agentId }, 'take after a cancelled hand-off failed; polls will retry'));
      },
    };
  }

  /** Wakes the long polls of an agent (a job was queued for it on some node). */
  wake(agentId: number): void {
    this.wakes.note(agentId);
    const entry = this.byAgent.get(agentId);
    if (!entry) return;
    this.run(entry).catch((err) => this.log.warn({ err, agentId }, 'take after wake-up failed; polls will retry'));
  }

  /** Takes jobs for the idle polls of an agent until the queue is empty; one loop per agent at a time. */
  private async run(entry: AgentPolls): Promise<void> {
    entry.dirty = true;
    if (entry.running) return;
    entry.running = true;
    try {
      while (entry.dirty) {
        entry.dirty = false;
        const idle = entry.polls.filter((w) => !w.claimed && !w.done);
        if (idle.length === 0) break;
        if (this.knownEmpty(entry.agent.id)) break; // the polls wait for a wake-up, which any queued job sends
        for (const w of idle) w.claimed = true;
        let taken: TakenJob[];
        const wakesBefore = this.wakes.count(entry.agent.id);
        try {
          taken = await this.jobs.take(entry.agent, idle.length);
          // Drained, and no job was queued during the take (it would have woken us): the queue is empty for now.
          if (taken.length < idle.length && this.wakes.count(entry.agent.id) === wakesBefore)
            this.emptyAt.set(entry.agent.id, { at: Date.now(), wakes: wakesBefore });
        } catch (err) {
          for (const w of idle) w.claimed = false;
          for (const w of idle) if (w.expired) this.fail(w, err, entry); // their time is up: answer the error (503) now, not 204
          throw err;
        }
        for (const w of idle) w.claimed = false;
        // A poll already answered (or whose client is gone) did not receive its job: it goes back to the queue.
        for (const w of idle) w.disconnected ||= w.done || (w.gone?.() ?? false);
        const unreceived = idle.flatMap((w, i) => (i < taken.length && w.disconnected ? [taken[i].id] : []));
        if (unreceived.length) {
          await this.jobs.returnUnreceived(entry.agent, unreceived).catch((err) => {
            this.log.warn({ err, jobIds: unreceived }, 'could not return unreceived jobs to the queue; their lease will expire them');
          });
        }
        idle.forEach((w, i) => {
          if (i < taken.length) this.finish(w, w.disconnected ? null : taken[i], entry);
          else if (w.expired) this.finish(w, null, entry);
        });
        if (taken.length === idle.length) entry.dirty = true; // there may be more
      }
    } finally {
      entry.running = false;
      if (entry.polls.length === 0 && this.byAgent.get(entry.agent.id) === entry) this.byAgent.delete(entry.agent.id);
    }
  }

  private giveUp(agentId: number, pending: PendingPoll, disconnected: boolean): void {
    if (pending.done) return;
    if (pending.claimed) {
      // A take is in flight for it: answer when it ends, so no job is lost.
      pending.expired = true;
      pending.disconnected ||= disconnected;
      return;
    }
    this.finish(pending, null, this.byAgent.get(agentId));
  }

  private finish(pending: PendingPoll, job: TakenJob | null, entry?: AgentPolls): void {
    if (pending.done) return;
    pending.done = true;
    if (entry) this.remove(entry.agent.id, pending);
    pending.resolve(job);
  }

  private fail(pending: PendingPoll, err: unknown, entry: AgentPolls): void {
    if (pending.done) return;
    pending.done = true;
    this.remove(entry.agent.id, pending);
    pending.reject(err);
  }

  private remove(agentId: number, pending: PendingPoll): void {
    const entry = this.byAgent.get(agentId);
    if (!entry) return;
    entry.polls = entry.polls.filter((w) => w !== pending);
    if (entry.polls.length === 0 && !entry.running) this.byAgent.delete(agentId);
  }
}
