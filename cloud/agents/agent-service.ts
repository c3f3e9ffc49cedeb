/** Agents: creation, token authentication, and presence (online while polling, offline after silence). */
import type { Logger } from 'pino';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError } from '../errors';
import { jobStatusEvent, type EventLog } from '../lifecycle/events';
import { hashToken, looksLikeToken, newToken, tokenMatches } from '../accounts/tokens';
import type { RedisState } from '../queue/redis-state';
import type { AgentRepo, AgentRow } from '../store/agents';
import type { Db } from '../store/db';
import type { JobRepo } from '../store/jobs';
import { TtlCache } from '../accounts/ttl-cache';

/** The prefix of an announced change to an agent's row that leaves its credential valid (its polls go on). */
export const ROW_CHANGE = 'row:';

/** Words that are chat commands and so cannot be agent names. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'help',
  'status',
  'agents',
  'jobs',
  'agent',
  'cancel',
  'delay',
  'notify',
  'token',
  'all',
  'job',
  'me',
  'here',
  'approve',
  'deny',
]);

const NAME = /^[A-Za-z0-9][\w.-]{0,63}$/;
const AUTH_CACHE_MS = 10_000;
const NAME_CACHE_MS = 30_000; // every change is announced to every node; the expiry only covers a missed announcement
const SEEN_PERSIST_MS = 30_000;

/** An agent with its presence, as shown by `status`. */
export interface AgentStatus {
  agent: AgentRow;
  online: boolean;
  lastSeenAt: Date | null;
}

/** Settings and collaborators of the agent service. */
export interface AgentServiceDeps {
  db: Db;
  agents: AgentRepo;
  jobs: JobRepo;
  queue: RedisState;
  events: EventLog;
  offlineAfterMs: number;
  log: Logger;
}

/** Checks an agent name or alias; throws a BadRequestError saying what is wrong. */
export function checkAgentName(name: string, what = 'An agent name'): void {
  if (!NAME.test(name))
    throw new BadRequestError(`${what} is 1-64 letters, digits, and . _ - (starting with a letter or digit).`, 'InvalidName');
  if (RESERVED_NAMES.has(name.toLowerCase()))
    throw new BadRequestError(`"${name}" is a reserved word and cannot name an agent.`, 'InvalidName');
}

/** Agents of users, their tokens and their presence. */
export class AgentService {
  private readonly authCache = new TtlCache<string, AgentRow>(AUTH_CACHE_MS);
  private readonly nameCache = new TtlCache<string, AgentRow | null>(NAME_CACHE_MS);
  private readonly seenPersisted = new Map<number, number>();
  private readonly seenPending = new Map<number, { id: number; at: Date; ip: string | null }>();
  /**
   * When this node last wrote each agent's presence to Redis. A poll soon after needs no write (a busy agent polls
   * after every job): an agent goes offline only after `agent_offline_after` of silence, ten times this window or more.
   */
  private readonly presenceWritten = new Map<number, number>();

  constructor(private readonly deps: AgentServiceDeps) {}

  /** Creates an agent for a user; returns it with its token (shown only now, to the chat account `issuedTo` if any). */
  async create(
    userId: number,
    name: string,
    alias: string | null = null,
    issuedTo: number | null = null,
  ): Promise<{ agent: AgentRow; token: string }> {
    checkAgentName(name);
    if (alias !== null) checkAgentName(alias, 'An alias');
    for (const taken of [name, alias]) {
      if (taken !== null && (await this.deps.agents.findForUser(userId, taken))) {
        throw new ConflictError(`You already have an agent named or aliased "${taken}".`, 'NameTaken');
      }
    }
    const token = newToken('agent');
    const now = new Date();
    try {
      const id = await this.deps.agents.insert(userId, name, alias, hashToken(token), now, issuedTo);
      return { agent: (await this.deps.agents.findById(id))!, token };
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_DUP_ENTRY')
        throw new ConflictError(`You already have an agent named "${name}".`, 'NameTaken');
      throw err;
    }
  }

  /** A user's agent by name or alias, or a NotFoundError listing the user's agents. */
  async byName(userId: number, name: string): Promise<AgentRow> {
    const agent = await this.find(userId, name);
    if (agent) return agent;
    const names = (await this.deps.agents.list(userId)).map((a) => a.name);
    const known = names.length ? `Your agents: ${names.join(', ')}.` : 'You have no agents yet.';
    throw new NotFoundError(`There is no agent named "${name}". ${known}`, 'AgentNotFound');
  }

  /** A user's agent by name or alias (case-insensitive), or null; cached for a few seconds per node. */
  async find(userId: number, name: string): Promise<AgentRow | null> {
    const key = `${userId}:${name.toLowerCase()}`;
    const cached = this.nameCache.get(key);
    if (cached !== undefined) return cached;
    const agent = await this.deps.agents.findForUser(userId, name);
    if (agent) this.nameCache.set(key, agent); // misses are not cached: a new agent is found at once
    return agent;
  }

  /** A user's agents (every agent when userId is null). */
  list(userId: number | null): Promise<AgentRow[]> {
    return this.deps.agents.list(userId);
  }

  /** A user's agents with online/offline and last seen. */
  async statuses(userId: number | null): Promise<AgentStatus[]> {
    const agents = await this.deps.agents.list(userId);
    const seen = await this.deps.queue.lastSeenMany(agents.map((a) => a.id));
    const cutoff = Date.now() - this.deps.offlineAfterMs;
    return agents.map((agent, i) => {
      const at = seen[i];
      return { agent, online: at !== null && at > cutoff, lastSeenAt: at !== null ? new Date(at) : agent.lastSeenAt };
    });
  }

  /** Removes an agent: its queued jobs expire, its token stops working at once. */
  async remove(userId: number, name: string): Promise<AgentRow> {
    const agent = await this.byName(userId, name);
    const now = new Date();
    const expired = await this.deps.db.transaction(async (conn) => {
      const jobs = await this.deps.jobs.expireQueuedOfAgent(agent.id, 'agent removed', now, conn);
      await conn.query('DELETE FROM agents WHERE id = ?', [agent.id]);
      return jobs;
    });
    await this.deps.events.jobStatus(expired.map((j) => jobStatusEvent(j, now)));
    await this.deps.queue.forgetAgent(agent.id);
    this.presenceWritten.delete(agent.id);
    await this.forgetToken(agent.tokenHash, userId);
    return agent;
  }

  /** Replaces an agent's token (handed to the chat account `issuedTo`, null for an admin); the old one stops working at once. */
  async rotateToken(userId: number, name: string, issuedTo: number | null = null): Promise<{ agent: AgentRow; token: string }> {
    const agent = await this.byName(userId, name);
    const token = newToken('agent');
    await this.deps.agents.setTokenHash(agent.id, hashToken(token), issuedTo);
    await this.forgetToken(agent.tokenHash, userId);
    return { agent: { ...agent, tokenIssuedTo: issuedTo }, token };
  }

  /** Replaces an agent's approval patterns (an empty list clears them); every node sees the change at once. */
  async setApprovalPatterns(userId: number, name: string, patterns: string[]): Promise<AgentRow> {
    const agent = await this.byName(userId, name);
    const clean = [...new Set(patterns.map((p) => p.trim().replace(/\s+/g, ' ')).filter(Boolean))];
    if (clean.some((p) => p.length > 200) || clean.length > 50)
      throw new BadRequestError('At most 50 patterns of at most 200 characters each.', 'InvalidPattern');
    await this.deps.agents.setApprovalPatterns(agent.id, clean);
    await this.forgetToken(agent.tokenHash, userId, true);
    return { ...agent, approvalPatterns: clean };
  }

  /**
   * Clearing an agent's patterns from chat needs two people: the first request waits (until `until`), and a request
   * by another account of the same user within that time clears them. Loosening a gate is as gated as a job.
   */
  async requestClearPatterns(
    userId: number,
    name: string,
    identityId: number,
    until: Date,
  ): Promise<{ agent: AgentRow; cleared: boolean }> {
    const agent = await this.byName(userId, name);
    if (agent.approvalPatterns.length === 0) return { agent, cleared: true };
    const outcome = await this.deps.agents.requestClearPatterns(agent.id, identityId, new Date(), until);
    if (outcome === 'requested') return { agent, cleared: false };
    await this.forgetToken(agent.tokenHash, userId, true);
    return { agent: { ...agent, approvalPatterns: [] }, cleared: true };
  }

  /** Enables or disables an agent; a disabled agent's polls and reports are refused (403) and no job is queued for it. */
  async setAvailable(userId: number, name: string, available: boolean): Promise<AgentRow> {
    const agent = await this.byName(userId, name);
    await this.deps.agents.setAvailable(agent.id, available);
    await this.forgetToken(agent.tokenHash, userId);
    return { ...agent, available };
  }

  /**
   * Forgets cached credentials and names of an agent on every node (it was rotated, removed, enabled or disabled),
   * which also ends the polls made with the old credential; `rowOnly` (its approval patterns changed) keeps them.
   */
  private async forgetToken(tokenHash: string, userId?: number, rowOnly = false): Promise<void> {
    const key = rowOnly ? `${ROW_CHANGE}${tokenHash}` : tokenHash;
    this.invalidateCached(key);
    await this.deps.queue.publishAuthChange(key);
    if (userId !== undefined) {
      this.invalidateCached(`user:${userId}`);
      await this.deps.queue.publishAuthChange(`user:${userId}`);
    }
  }

  /** Drops a cached credential (a token hash) or a user's cached agent names (`user:<id>`), after a change on any node. */
  invalidateCached(key: string): void {
    if (key.startsWith(ROW_CHANGE)) {
      this.authCache.delete(key.slice(ROW_CHANGE.length));
    } else if (key.startsWith('user:')) {
      const prefix = `${key.slice(5)}:`;
      this.nameCache.deleteWhere((k) => k.startsWith(prefix));
    } else {
      this.authCache.delete(key);
    }
  }

  /** The agent owning this token, or an UnauthorizedError; cached for a few seconds per node. */
  async authenticate(token: string | undefined): Promise<AgentRow> {
    if (!token || !looksLikeToken(token)) throw new UnauthorizedError('A valid agent token is required.');
    const hash = hashToken(token);
    let agent = this.authCache.get(hash);
    if (!agent) {
      const found = await this.deps.agents.findByTokenHash(hash);
      if (!found || !tokenMatches(token, found.tokenHash)) throw new UnauthorizedError('The agent token is not valid.');
      this.authCache.set(hash, (agent = found));
    }
    if (!agent.available) throw new ForbiddenError(`Agent ${agent.name} is disabled.`, 'AgentUnavailable');
    return agent;
  }

  /** Records a poll by an agent: refreshes its presence and announces it when it comes online. */
  async recordPoll(agent: AgentRow, ip: string | null): Promise<void> {
    const now = Date.now();
    if (this.presenceFresh(agent.id, now)) return this.noteSeen(agent.id, now, ip);
    const maybeNew = await this.deps.queue.touchPresence(agent.id, now);
    this.presenceWritten.set(agent.id, now);
    this.noteSeen(agent.id, now, ip);
    if (maybeNew) await this.comeOnline(agent, now);
  }

  /** Refreshes the presence of agents whose long polls are in progress. */
  async refreshPresence(agents: AgentRow[]): Promise<void> {
    const now = Date.now();
    const maybeNew = new Set(
      await this.deps.queue.touchPresenceMany(
        agents.map((a) => a.id),
        now,
      ),
    );
    for (const agent of agents) {
      this.presenceWritten.set(agent.id, now);
      this.noteSeen(agent.id, now, null);
      if (maybeNew.has(agent.id)) await this.comeOnline(agent, now);
    }
  }

  private noteSeen(agentId: number, now: number, ip: string | null): void {
    if (now - (this.seenPersisted.get(agentId) ?? 0) < SEEN_PERSIST_MS) return;
    this.seenPersisted.set(agentId, now);
    this.seenPending.set(agentId, { id: agentId, at: new Date(now), ip });
  }

  /** Writes the pending last-seen times to MySQL in one statement (called periodically). */
  async flushSeen(): Promise<void> {
    if (this.seenPending.size === 0) return;
    const entries = [...this.seenPending.values()];
    this.seenPending.clear();
    await this.deps.agents.recordSeen(entries);
  }

  /** True when the agent polled within the offline time. */
  async isOnline(agentId: number): Promise<boolean> {
    const at = await this.deps.queue.lastSeen(agentId);
    if (at !== null) return at > Date.now() - this.deps.offlineAfterMs;
    // No presence in Redis: the agent went offline (MySQL says so too), or Redis lost its data and the rebuild has
    // not restored presence yet (MySQL still says online; the agent gets a full offline period to poll again).
    return (await this.deps.agents.findById(agentId))?.online === true;
  }

  /** Marks an agent online in MySQL if it was not (one conditional UPDATE), and announces it. */
  private async comeOnline(agent: AgentRow, now: number): Promise<void> {
    if (!(await this.deps.agents.markOnline(agent.id, new Date(now)))) return;
    this.deps.log.info({ agentId: agent.id, agent: agent.name }, 'agent online');
    await this.deps.events.message({
      kind: 'agent:online',
      user_id: agent.userId,
      agent_id: agent.id,
      agent: agent.name,
      message: `Agent ${agent.name} is online`,
    });
  }

  /** True when this node wrote the agent's presence to Redis within the last tenth of the offline time (at most 1 s). */
  private presenceFresh(agentId: number, now: number): boolean {
    const written = this.presenceWritten.get(agentId);
    return written !== undefined && now - written < Math.min(1000, this.deps.offlineAfterMs / 10) && this.deps.queue.ready();
  }

  /** Marks a silent agent offline, expiring its queued jobs; does nothing if it polled again meanwhile. */
  async goOffline(agentId: number): Promise<boolean> {
    const now = new Date();
    const outcome = await this.deps.db.transaction(async (conn) => {
      const agent = await this.deps.agents.lock(conn, agentId);
      if (!agent?.online) return null;
      const seen = await this.deps.queue.lastSeen(agentId);
      if (seen !== null && seen > now.getTime() - this.deps.offlineAfterMs) return null; // polled again meanwhile
      await this.deps.agents.setOnline(conn, agentId, false, seen !== null ? new Date(seen) : null);
      // Delayed jobs waiting for the agent (delayed_wait) are spared until their wait ends.
      const expired = await this.deps.jobs.expireQueuedOfAgent(agentId, 'agent offline', now, conn, true);
      return { agent, expired };
    });
    if (!outcome) return false;
    this.presenceWritten.delete(agentId);
    const { agent, expired } = outcome;
    this.deps.log.info({ agentId, agent: agent.name, expiredJobs: expired.length }, 'agent offline');
    await this.deps.events.jobStatus(expired.map((j) => jobStatusEvent(j, now)));
    await this.deps.queue.remove(
      agentId,
      expired.map((j) => j.id),
    );
    await this.deps.events.message({
      kind: 'agent:offline',
      user_id: agent.userId,
      agent_id: agent.id,
      agent: agent.name,
      message: `Agent ${agent.name} is offline`,
    });
    return true;
  }
}
