/** The set-up the approval end-to-end tests share: two accounts of one user, a gated agent, an agent that records its jobs. */
import type { Gateway, RunningAgent } from './gateway';

/** Links alice's and bob's accounts to `ops`, makes web1's jobs matching the patterns need approval, and starts web1. */
export async function gateWeb1(
  gw: Gateway,
  accounts: { alice: string; bob: string },
  patterns = ['deploy *'],
): Promise<{ agent: RunningAgent; ran: string[] }> {
  await gw.core.identities.link(accounts.alice, 'ops', 'alice');
  await gw.core.identities.link(accounts.bob, 'ops', 'bob');
  const owner = await gw.core.users.byName('ops');
  await gw.core.agents.setApprovalPatterns(owner.id, 'web1', patterns);
  const ran: string[] = [];
  const agent = await gw.startAgent(async (job) => {
    ran.push(job.message);
    return `output of ${job.message}`;
  });
  return { agent, ran };
}
