/** The CommandPort on the real services. */
import type { AgentService } from '../agents/agent-service';
import type { Approvals } from '../approvals/decisions';
import type { JobService } from '../lifecycle/job-service';
import type { IdentityRepo } from '../store/identities';
import type { UserService } from '../accounts/users';
import type { CommandPort } from './execute';

/** Connects chat commands to the core services. */
export function createCommandPort(deps: {
  users: UserService;
  agents: AgentService;
  jobs: JobService;
  approvals: Approvals;
  identities: IdentityRepo;
  /** How long a chat request to clear an agent's patterns waits for a second person (the approval timeout). */
  approvalTimeoutMs: number;
  /** Tells every node that a user's settings changed (their cached notification route is dropped). */
  announceUserChange: (userId: number) => Promise<void>;
}): CommandPort {
  const { users, agents, jobs, approvals, identities } = deps;
  return {
    agentStatuses: (userId) => agents.statuses(userId),
    findAgent: (userId, name) => agents.find(userId, name),
    push: (agent, text, origin) => jobs.push(agent, text, origin),
    delay: (agent, text, delayMs, origin) => jobs.delay(agent, text, delayMs, origin),
    cancel: (userId, jobId) => jobs.cancel(userId, jobId),
    findAwaiting: (userId, idOrShort) => approvals.findAwaiting(userId, idOrShort),
    approve: (jobId, approver) => approvals.approve(jobId, approver),
    deny: (jobId, approver, reason) => approvals.deny(jobId, approver, reason),
    setApprovalPatterns: (userId, name, patterns) => agents.setApprovalPatterns(userId, name, patterns),
    recentJobs: (userId, agentId, limit) => jobs.list(userId, agentId, limit),
    async requestClearPatterns(userId, name, identityId) {
      const until = new Date(Date.now() + deps.approvalTimeoutMs);
      return { ...(await agents.requestClearPatterns(userId, name, identityId, until)), until };
    },
    createAgent: (userId, name, alias, issuedTo) => agents.create(userId, name, alias, issuedTo),
    removeAgent: (userId, name) => agents.remove(userId, name),
    rotateAgentToken: (userId, name, issuedTo) => agents.rotateToken(userId, name, issuedTo),
    rotateUserToken: (user, issuedTo) => users.rotateToken(user.name, issuedTo),
    async setNotifyTarget(userId, channel, replyTo) {
      await identities.setNotifyTarget(userId, channel, replyTo);
      await deps.announceUserChange(userId);
    },
  };
}
