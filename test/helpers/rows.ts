/** Rows as the stores return them, every field set, for unit tests against in-memory fakes: override what a test needs. */
import type { AgentRow } from '../../cloud/store/agents';
import type { JobRow } from '../../cloud/store/jobs';

/** A queued job of agent 1 (web1) of user 7. */
export function jobRow(overrides: Partial<JobRow> = {}): JobRow {
  const now = new Date();
  return {
    id: '01KAAAAAAAAAAAAAAAAAAAAAAA',
    userId: 7,
    agentId: 1,
    agentName: 'web1',
    message: 'uptime',
    source: 'api',
    origin: null,
    callback: null,
    status: 'queuing',
    result: null,
    reason: null,
    leaseUntil: null,
    createdAt: now,
    sentAt: null,
    finishedAt: null,
    updatedAt: now,
    requester: null,
    pushedBy: null,
    approval: null,
    waitUntil: null,
    ...overrides,
  };
}

/** Agent 1 (web1) of user 7, online, with no approval patterns. */
export function agentRow(overrides: Partial<AgentRow> = {}): AgentRow {
  return {
    id: 1,
    userId: 7,
    name: 'web1',
    alias: null,
    tokenHash: 'hash-1',
    available: true,
    online: true,
    lastIp: null,
    lastSeenAt: null,
    createdAt: new Date(),
    approvalPatterns: [],
    tokenIssuedTo: null,
    ...overrides,
  };
}
