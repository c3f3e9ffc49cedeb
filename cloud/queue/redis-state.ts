/** The Redis side of the job lifecycle: agent queues, leases, delayed schedule, presence and wake-ups. */
import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { execPipeline, isCluster, type RedisClient } from './redis';
import type { RedisKeys } from './keys';

/** One row of CLUSTER SLOTS: first slot, last slot, then the master [host, port, id] and its replicas. */
type SlotRange = [number, number, ...[string, number, ...unknown[]][]];

/**
 * A hash tag for every master of a cluster, chosen so that the tag's slot is served by that master. A marker key
 * with that tag lives on that master, so a master restarted empty is noticed even when the others kept their data.
 */
export function markerTags(ranges: SlotRange[]): string[] {
  const byMaster = new Map<string, [number, number][]>();
  for (const [first, last, master] of ranges) {
    const key = `${master[0]}:${master[1]}`;
    byMaster.set(key, [...(byMaster.get(key) ?? []), [first, last]]);
  }
  const tags: string[] = [];
  for (const slots of byMaster.values()) {
    for (let i = 0; i < 1_000_000; i++) {
      const slot = calculateSlot(`e${i}`);
      if (slots.some(([first, last]) => slot >= first && slot <= last)) {
        tags.push(`e${i}`);
        break;
      }
    }
  }
  return tags;
}

/** A scheduled member and its time (ms). */
export interface Scheduled {
  id: string;
  at: number;
}

/** The Redis side of one or more job transitions, sent together in one round trip. */
export interface TransitionOps {
  enqueue?: { agentId: number; jobIds: string[] };
  setLeases?: Scheduled[];
  clearLeases?: string[];
  done?: string[];
}

/**
 * Verbs on the core's state in Redis: agent queues, leases, the delayed schedule, presence, auth-change signals and the
 * rebuild epoch. MySQL stays the source of truth; this is the fast path.
 */
export class RedisState {
  constructor(
    readonly redis: RedisClient,
    readonly keys: RedisKeys,
    /** Called on this node whenever jobs are put in an agent's queue (before Redis has them). */
    private readonly onQueued: (agentId: number) => void = () => undefined,
  ) {}

  /** True while the connection to Redis is up, as the client knows without a round trip. */
  ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** Appends jobs to an agent's queue and wakes its long polls on every node. */
  async enqueue(agentId: number, jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    this.onQueued(agentId);
    await this.redis.enqueue(this.keys.agentQueue(agentId), this.keys.wakeChannel, String(agentId), ...jobIds);
  }

  /** Sends the Redis commands of job transitions; on the auto-pipelined connection they share writes with concurrent requests. */
  transitionCommands(ops: TransitionOps): Promise<unknown>[] {
    const r = this.redis;
    const sent: Promise<unknown>[] = [];
    if (ops.enqueue?.jobIds.length) {
      this.onQueued(ops.enqueue.agentId);
      sent.push(
        r.enqueue(this.keys.agentQueue(ops.enqueue.agentId), this.keys.wakeChannel, String(ops.enqueue.agentId), ...ops.enqueue.jobIds),
      );
    }
    if (ops.setLeases?.length) sent.push(r.zadd(this.keys.leases, ...ops.setLeases.flatMap((l) => [l.at, l.id])));
    if (ops.clearLeases?.length) sent.push(r.zrem(this.keys.leases, ...ops.clearLeases));
    for (const id of ops.done ?? []) sent.push(r.publish(this.keys.doneChannel, id));
    return sent;
  }

  /** Puts jobs back at the head of an agent's queue (a take that could not be recorded). */
  async requeue(agentId: number, jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    this.onQueued(agentId);
    await this.redis.requeue(this.keys.agentQueue(agentId), this.keys.wakeChannel, String(agentId), ...jobIds);
  }

  /** Removes up to `max` job ids from the head of an agent's queue; each id is returned to one caller only. */
  async pop(agentId: number, max: number): Promise<string[]> {
    const ids = await this.redis.lpop(this.keys.agentQueue(agentId), max);
    return ids ?? [];
  }

  /** How many jobs are queued for an agent. */
  length(agentId: number): Promise<number> {
    return this.redis.llen(this.keys.agentQueue(agentId));
  }

  /** Drops job ids from an agent's queue (canceled or expired while queued). */
  async remove(agentId: number, jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of jobIds) pipeline.lrem(this.keys.agentQueue(agentId), 0, id);
    await execPipeline(pipeline);
  }

  /** The job ids queued for an agent, oldest first. */
  async queued(agentId: number): Promise<string[]> {
    return this.redis.lrange(this.keys.agentQueue(agentId), 0, -1);
  }

  /** Records (or renews) lease deadlines of sent and running jobs. */
  async setLeases(leases: Scheduled[]): Promise<void> {
    if (leases.length === 0) return;
    await this.redis.zadd(this.keys.leases, ...leases.flatMap((l) => [l.at, l.id]));
  }

  /** Claims jobs whose lease ran out; each is returned to one node only. */
  claimExpiredLeases(now: number, limit: number): Promise<string[]> {
    return this.redis.claim_due(this.keys.leases, now, limit);
  }

  /** Schedules a delayed job. */
  async scheduleDelayed(entries: Scheduled[]): Promise<void> {
    if (entries.length === 0) return;
    await this.redis.zadd(this.keys.delayed, ...entries.flatMap((e) => [e.at, e.id]));
  }

  /** Those of the delayed job ids that are not in the schedule (lost, or claimed by a node that then failed). */
  async unscheduledDelayed(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const scores = await this.redis.zmscore(this.keys.delayed, ...ids);
    return ids.filter((_, i) => scores[i] === null);
  }

  /** Claims delayed jobs that are due; each is returned to one node only. */
  claimDueDelayed(now: number, limit: number): Promise<string[]> {
    return this.redis.claim_due(this.keys.delayed, now, limit);
  }

  /** Records a poll; true when the agent was not believed online before. */
  async touchPresence(agentId: number, now: number): Promise<boolean> {
    return (await this.redis.touch_presence(this.keys.presenceSeen, this.keys.presenceOnline, now, String(agentId))) === 1;
  }

  /** Records a poll of several agents at once (long polls in progress); returns those not believed online before. */
  async touchPresenceMany(agentIds: number[], now: number): Promise<number[]> {
    const fresh: number[] = [];
    for (let i = 0; i < agentIds.length; i += 1000) {
      const chunk = agentIds.slice(i, i + 1000).map(String);
      const added = await this.redis.touch_presence_many(this.keys.presenceSeen, this.keys.presenceOnline, now, ...chunk);
      fresh.push(...added.map(Number));
    }
    return fresh;
  }

  /** Time (ms) of an agent's last poll, or null when unknown. */
  async lastSeen(agentId: number): Promise<number | null> {
    const score = await this.redis.zscore(this.keys.presenceSeen, String(agentId));
    return score === null ? null : Number(score);
  }

  /** Last poll times of many agents (null when unknown). */
  async lastSeenMany(agentIds: number[]): Promise<(number | null)[]> {
    if (agentIds.length === 0) return [];
    const scores = await this.redis.zmscore(this.keys.presenceSeen, ...agentIds.map(String));
    return scores.map((s) => (s === null ? null : Number(s)));
  }

  /** Restores last poll times (after Redis lost them) without marking the agents online. */
  async restorePresence(entries: { agentId: number; at: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const e of entries) {
      pipeline.zadd(this.keys.presenceSeen, 'NX', e.at, String(e.agentId));
      pipeline.sadd(this.keys.presenceOnline, String(e.agentId));
    }
    await execPipeline(pipeline);
  }

  /** Claims agents silent since the cutoff; each is returned to one node only. */
  claimSilentAgents(cutoff: number, limit: number): Promise<string[]> {
    return this.redis.claim_offline(this.keys.presenceSeen, this.keys.presenceOnline, cutoff, limit);
  }

  /** Forgets an agent's presence and queue (the agent was removed). */
  async forgetAgent(agentId: number): Promise<void> {
    await this.redis.zrem(this.keys.presenceSeen, String(agentId));
    await this.redis.srem(this.keys.presenceOnline, String(agentId));
    await this.redis.del(this.keys.agentQueue(agentId));
  }

  /** Number of agents believed online. */
  onlineCount(): Promise<number> {
    return this.redis.scard(this.keys.presenceOnline);
  }

  /** Announces on every node that cached credentials with this token hash are no longer valid. */
  async publishAuthChange(tokenHash: string): Promise<void> {
    await this.redis.publish(this.keys.authChannel, tokenHash);
  }

  /** The marker keys: one on a single server; on a cluster one per master, each on a slot that master serves. */
  private async epochKeys(): Promise<string[]> {
    if (!isCluster(this.redis)) return [this.keys.epoch];
    const ranges: SlotRange[] = await (this.redis as unknown as Cluster).cluster('SLOTS');
    return markerTags(ranges).map((tag) => this.keys.epochOf(tag));
  }

  /** True when every marker written after a rebuild is still there (no Redis server lost its data). */
  async hasEpoch(): Promise<boolean> {
    const keys = await this.epochKeys();
    const found = await Promise.all(keys.map((key) => this.redis.exists(key)));
    return found.every((n) => n === 1);
  }

  /** Writes the markers after a rebuild. */
  async setEpoch(now: number): Promise<void> {
    const keys = await this.epochKeys();
    await Promise.all(keys.map((key) => this.redis.set(key, String(now))));
  }

  /** Takes the rebuild lock for ttlMs; true when this node holds it. */
  async lockRebuild(ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.rebuildLock, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Releases the rebuild lock. */
  async unlockRebuild(): Promise<void> {
    await this.redis.del(this.keys.rebuildLock);
  }
}
