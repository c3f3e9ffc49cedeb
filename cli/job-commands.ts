/** `skadi job …` and `skadi jobs`: push jobs (optionally waiting for the result, as a CI step) and look at them. */
import type { Command } from 'commander';
import { parseDuration } from '../config';
import { CLI_CREDENTIAL, identityCredential } from '../cloud/approvals/credentials';
import { BadRequestError, NotFoundError } from '../cloud/errors';
import { identityKey, parseIdentityKey } from '../cloud/accounts/identities';
import type { Approver } from '../cloud/approvals/decisions';
import { isTerminal, type JobRow } from '../cloud/store/jobs';
import { jobJson } from '../agent-api/job-json';
import { emit, printTable } from './output';
import { withCore, type GlobalOptions } from './context';

type Opts = GlobalOptions & {
  json?: boolean;
  user?: string;
  agent?: string;
  wait?: boolean;
  timeout?: string;
  limit?: string;
  as?: string;
  reason?: string;
};

const PUSHED: Record<string, (agent: string, id: string) => string> = {
  queuing: (agent, id) => `Job ${id} queued for ${agent}.`,
  expired: (agent, id) => `Job ${id} expired: ${agent} is offline.`,
  awaiting_approval: (agent, id) =>
    `Job ${id} for ${agent} awaits another person's approval (skadi job approve ${id} --as <identity>, or \`approve\` in chat).`,
};

const SYMBOL: Record<string, string> = { succeeded: '✅', failed: '❌', expired: '⌛', canceled: '🚫' };

function printJob(job: JobRow): void {
  const waiting =
    job.status === 'queuing' && job.waitUntil
      ? ` (a delayed job: kept for its agent, online or not, until ${job.waitUntil.toISOString()})`
      : '';
  console.log(
    `${SYMBOL[job.status] ?? '…'} job ${job.id} for ${job.agentName}: ${job.status}${job.reason ? ` (${job.reason})` : ''}${waiting}`,
  );
  if (job.result) console.log(job.result);
}

/** Registers the job commands. */
export function registerJobCommands(program: Command, globals: () => GlobalOptions): void {
  const job = program.command('job').description('push a job or show one');
  job
    .command('add <agent> <text...>')
    .description('queue a job for an agent; with --wait, wait for it and exit 0 only if it succeeded')
    .requiredOption('--user <user>', 'owner of the agent')
    .option('--wait', 'wait for the result and print it (exit 0 succeeded, 1 failed/expired/canceled)')
    .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 30s, 15m)', '15m')
    .option('--json', 'print JSON')
    .action((agentName: string, words: string[], opts: Opts) =>
      withCore(globals(), async (core) => {
        const timeoutMs = parseDuration(opts.timeout ?? '15m');
        if (timeoutMs === null) throw new BadRequestError(`--timeout "${opts.timeout}" is not a duration (e.g. 30s, 15m).`);
        const owner = await core.users.byName(opts.user!);
        const agent = await core.agents.byName(owner.id, agentName);
        const pushed = await core.jobs.push(agent, words.join(' '), { source: 'cli', pushedBy: CLI_CREDENTIAL });
        if (!opts.wait) {
          emit(!!opts.json, pushed, () => console.log(PUSHED[pushed.status](agent.name, pushed.id)));
          if (pushed.status === 'expired') process.exitCode = 1;
          return;
        }
        const final = await waitForTerminal(() => core.jobs.get(pushed.id, owner.id), timeoutMs);
        emit(!!opts.json, jobJson(final), () => printJob(final));
        if (!isTerminal(final.status) && !opts.json)
          console.error(`skadi: gave up waiting after ${opts.timeout}; the job is still ${final.status}`);
        process.exitCode = final.status === 'succeeded' ? 0 : 1;
      }),
    );
  job
    .command('show <id>')
    .description('show a job with its status and result')
    .option('--json', 'print JSON')
    .action((id: string, opts: Opts) =>
      withCore(globals(), async (core) => {
        const found = await core.jobs.get(id, null);
        emit(!!opts.json, jobJson(found), () => printJob(found));
      }),
    );

  for (const verb of ['approve', 'deny'] as const) {
    job
      .command(`${verb} <id>`)
      .description(`${verb} a job awaiting approval, as one of its owner's linked accounts (recorded as the CLI, and logged)`)
      .requiredOption('--as <identity>', 'the linked account deciding, e.g. slack:T024BE7LD:U12345 (not the one that asked)')
      .option('--reason <text>', verb === 'deny' ? 'why (shown to the requester)' : 'ignored', '')
      .option('--json', 'print JSON')
      .action((id: string, opts: Opts) =>
        withCore(globals(), async (core) => {
          const { channel, tenant, externalId } = parseIdentityKey(opts.as!);
          const identity = await core.identityRepo.find(channel, tenant, externalId);
          if (!identity) throw new NotFoundError(`${opts.as} is not linked to any user (skadi identity list).`, 'IdentityNotFound');
          const key = identityKey(channel, tenant, externalId);
          const approver: Approver = {
            userId: identity.userId,
            credential: identityCredential(identity.id),
            via: 'cli',
            label: `cli (as ${key})`,
          };
          const jobId = await core.approvals.findAwaiting(identity.userId, id);
          const decided =
            verb === 'approve'
              ? await core.approvals.approve(jobId, approver)
              : await core.approvals.deny(jobId, approver, opts.reason ?? '');
          emit(!!opts.json, jobJson(decided), () => printJob(decided));
        }),
      );
  }

  program
    .command('jobs')
    .description('list recent jobs, newest first')
    .option('--user <user>', 'only the jobs of this user')
    .option('--agent <agent>', 'only the jobs of this agent (needs --user)')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action((opts: Opts) =>
      withCore(globals(), async (core) => {
        const owner = opts.user ? await core.users.byName(opts.user) : null;
        if (opts.agent && !owner) throw new BadRequestError('--agent needs --user (agent names are per user).');
        const agent = owner && opts.agent ? await core.agents.byName(owner.id, opts.agent) : null;
        const limit = Math.min(1000, Math.max(1, Number(opts.limit) || 20));
        const jobs = await core.jobs.list(owner?.id ?? null, agent?.id ?? null, limit);
        const rows = jobs.map((j) => ({
          id: j.id,
          agent: j.agentName,
          status: j.status,
          message: j.message,
          created_at: j.createdAt.toISOString(),
        }));
        emit(!!opts.json, jobs.map(jobJson), () => printTable(rows, 'No jobs.'));
      }),
    );
}

/** Re-reads a job until it is terminal or the timeout passes. */
async function waitForTerminal(read: () => Promise<JobRow>, timeoutMs: number): Promise<JobRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await read();
    if (isTerminal(job.status) || Date.now() >= deadline) return job;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
