/** Runs a parsed chat command for a user, answering through the conversation it came from. */
import { AdapterError, type ChannelName, type OutboundMessage } from '../../adapters/contract';
import type { AgentStatus } from '../agents/agent-service';
import { ago, jobHeadline, quote } from './format';
import { formatDuration } from '../../config/duration';
import { newJobId } from '../lifecycle/job-id';
import { checkMessage } from '../lifecycle/job-text';
import { identityCredential } from '../approvals/credentials';
import type { Approver } from '../approvals/decisions';
import type { JobOrigin, PushResult } from '../lifecycle/push';
import type { AgentRow } from '../store/agents';
import type { JobRow } from '../store/jobs';
import type { UserRow } from '../store/users';
import { HELP_TEXT, type Command } from './parse';
import { encodeOrigin } from './origin';

/** The conversation a command came from. */
export interface Conversation {
  readonly channel: ChannelName;
  /** The adapter's reply address of the conversation/thread. */
  readonly replyTo: string;
  readonly isPrivate: boolean;
  /** False when the channel cannot edit a posted message: corrections are posted as new messages. */
  readonly canEdit: boolean;
  /** False when the channel has no threads: job messages start with the agent and the job's short id. */
  readonly threads: boolean;
  /** The identity key of the sender (channel:tenant:id). */
  readonly identity: string;
  /** The sender's identity row: the credential of what they push and decide. */
  readonly identityId: number;
  /** When the command came from a button: the message it was on, which the answer replaces. */
  readonly buttonMessage?: string;
  /** Posts in this conversation/thread; returns the posted message's reference. */
  reply(message: OutboundMessage): Promise<string>;
  /** Posts in a private conversation with the sender. */
  replyPrivately(message: OutboundMessage): Promise<string>;
}

/** What commands need from the core (implemented on the real services; faked in unit tests). */
export interface CommandPort {
  agentStatuses(userId: number): Promise<AgentStatus[]>;
  findAgent(userId: number, nameOrAlias: string): Promise<AgentRow | null>;
  push(agent: AgentRow, text: string, origin: JobOrigin): Promise<PushResult>;
  delay(agent: AgentRow, text: string, delayMs: number, origin: JobOrigin): Promise<{ id: string; dueAt: Date }>;
  cancel(userId: number, jobId: string): Promise<JobRow>;
  /** A user's job awaiting approval by full or short id. */
  findAwaiting(userId: number, idOrShort: string): Promise<string>;
  approve(jobId: string, approver: Approver): Promise<JobRow>;
  deny(jobId: string, approver: Approver, reason: string): Promise<JobRow>;
  setApprovalPatterns(userId: number, agentName: string, patterns: string[]): Promise<AgentRow>;
  recentJobs(userId: number, agentId: number | null, limit: number): Promise<JobRow[]>;
  /** Clears an agent's patterns when another account of the user asked for it too; else records this request. */
  requestClearPatterns(userId: number, agentName: string, identityId: number): Promise<{ agent: AgentRow; cleared: boolean; until: Date }>;
  /** Tokens made here are handed to `issuedTo`, the sender's identity row. */
  createAgent(userId: number, name: string, alias: string | null, issuedTo: number): Promise<{ agent: AgentRow; token: string }>;
  removeAgent(userId: number, name: string): Promise<AgentRow>;
  rotateAgentToken(userId: number, name: string, issuedTo: number): Promise<{ agent: AgentRow; token: string }>;
  rotateUserToken(user: UserRow, issuedTo: number): Promise<string>;
  setNotifyTarget(userId: number, channel: ChannelName, replyTo: string): Promise<void>;
}

/** Answers privately: directly in a private conversation, else privately with a note here. */
async function answerPrivately(convo: Conversation, message: OutboundMessage, publicNote: string): Promise<void> {
  if (convo.isPrivate) {
    await convo.reply(message);
    return;
  }
  try {
    await convo.replyPrivately(message);
  } catch (err) {
    if (!(err instanceof AdapterError) || err.retryable) throw err;
    // The platform will not open a private chat here (e.g. a Teams app not installed for the person): say so, show nothing.
    await convo.reply({
      text: `I could not send you a private message (${err.message}), and tokens are never written in a shared conversation. Message me directly and ask there; the token made just now was not shown anywhere.`,
    });
    return;
  }
  await convo.reply({ text: publicNote });
}

async function unknownAgent(port: CommandPort, user: UserRow, name: string): Promise<OutboundMessage> {
  const names = (await port.agentStatuses(user.id)).map((s) => s.agent.name);
  const known = names.length ? `Your agents: ${names.join(', ')}.` : 'You have no agents yet: `agent add <name>` creates one.';
  return { text: `There is no agent named "${name}". ${known}` };
}

/**
 * Sends the acknowledgement of a job and returns its reference. On a channel that never edits it (e-mail), a passing
 * failure to send it does not stop the job: the conversation itself is then its reference, and the job's answers go
 * there (the notifier retries them), so a command is not lost to a mail server that says "try again later".
 */
async function acknowledge(convo: Conversation, message: OutboundMessage): Promise<string> {
  try {
    return await convo.reply(message);
  } catch (err) {
    if (convo.canEdit || !(err instanceof AdapterError) || !err.retryable) throw err;
    return convo.replyTo;
  }
}

async function runJob(port: CommandPort, user: UserRow, convo: Conversation, agentName: string, text: string): Promise<void> {
  const agent = await port.findAgent(user.id, agentName);
  if (!agent) return void (await convo.reply(await unknownAgent(port, user, agentName)));
  const message = checkMessage(text);
  const id = newJobId();
  const ack = await acknowledge(convo, { text: jobHeadline({ id, agentName: agent.name, message, status: 'queuing' }, convo.threads) });
  try {
    await port.push(agent, message, {
      id,
      source: convo.channel,
      origin: encodeOrigin(convo.channel, ack),
      requester: convo.identity,
      pushedBy: identityCredential(convo.identityId),
    });
  } catch (err) {
    await convo.reply({
      text: `❌ ${agent.name}: ${quote(message)} could not be queued: ${(err as Error).message}`,
      replaces: convo.canEdit ? ack : undefined,
    });
    throw err;
  }
}

function statusText(statuses: AgentStatus[]): string {
  if (statuses.length === 0) return 'You have no agents yet: `agent add <name>` creates one.';
  return statuses
    .map(
      (s) =>
        `${s.online ? '🟢' : '⚪'} ${s.agent.name}${s.agent.alias ? ` (${s.agent.alias})` : ''} — ${s.online ? 'online' : 'offline'}, last seen ${ago(s.lastSeenAt)}`,
    )
    .join('\n');
}

async function jobsText(port: CommandPort, user: UserRow, agentName: string | null): Promise<OutboundMessage> {
  const agent = agentName ? await port.findAgent(user.id, agentName) : null;
  if (agentName && !agent) return unknownAgent(port, user, agentName);
  const jobs = await port.recentJobs(user.id, agent?.id ?? null, 10);
  if (jobs.length === 0) return { text: agent ? `No jobs for ${agent.name} yet.` : 'No jobs yet.' };
  return { text: jobs.map((j) => `${jobHeadline(j)} · ${ago(j.createdAt)}`).join('\n') };
}

/** `agent approval <agent> clear`: loosening a gate from chat takes a second person, as a gated job does. */
async function clearPatterns(port: CommandPort, user: UserRow, convo: Conversation, current: AgentRow): Promise<void> {
  if (current.approvalPatterns.length === 0)
    return void (await convo.reply({ text: `Jobs of ${current.name} need no approval; there is nothing to clear.` }));
  const { agent, cleared, until } = await port.requestClearPatterns(user.id, current.name, convo.identityId);
  if (cleared) return void (await convo.reply({ text: `🔓 Jobs of ${agent.name} no longer need approval (a second person agreed).` }));
  const list = current.approvalPatterns.map((p) => quote(p)).join(', ');
  await convo.reply({
    text: `🔐 Clearing the approval patterns of ${agent.name} (${list}) needs a second person: another account linked to ${user.name} sends \`agent approval ${agent.name} clear\` before ${until.toISOString().replace('T', ' ').slice(0, 16)} UTC. Until then nothing changes.`,
  });
}

/** Runs a command; expected errors are answered in the conversation, unexpected ones are rethrown after a short answer. */
export async function executeCommand(command: Command, user: UserRow, convo: Conversation, port: CommandPort): Promise<void> {
  switch (command.kind) {
    case 'help':
      await convo.reply({ text: HELP_TEXT });
      return;
    case 'invalid':
      await convo.reply({ text: command.message });
      return;
    case 'incomplete': {
      const agent = await port.findAgent(user.id, command.agent);
      await convo.reply({
        text: agent
          ? `What should ${agent.name} do? Send \`${agent.name} <job>\`, e.g. \`${agent.name} uptime\`.`
          : `Unknown command "${command.agent}". Send \`help\` for the list.`,
      });
      return;
    }
    case 'job':
      return runJob(port, user, convo, command.agent, command.text);
    case 'status':
      await convo.reply({ text: statusText(await port.agentStatuses(user.id)) });
      return;
    case 'jobs':
      await convo.reply(await jobsText(port, user, command.agent));
      return;
    case 'delay': {
      const agent = await port.findAgent(user.id, command.agent);
      if (!agent) return void (await convo.reply(await unknownAgent(port, user, command.agent)));
      const message = checkMessage(command.text);
      const ref = await acknowledge(convo, { text: `⏰ ${agent.name}: ${quote(message)} — in ${formatDuration(command.delayMs)}` });
      const { id, dueAt } = await port.delay(agent, message, command.delayMs, {
        source: convo.channel,
        origin: encodeOrigin(convo.channel, ref),
        requester: convo.identity,
        pushedBy: identityCredential(convo.identityId),
      });
      await convo.reply({
        text: `⏰ ${agent.name}: ${quote(message)} — at ${dueAt.toISOString().replace('T', ' ').slice(0, 16)} UTC (in ${formatDuration(command.delayMs)}) · job ${id}`,
        replaces: convo.canEdit ? ref : undefined,
      });
      return;
    }
    case 'cancel': {
      const job = await port.cancel(user.id, command.jobId);
      await convo.reply({ text: jobHeadline(job) });
      return;
    }
    case 'approve':
    case 'deny': {
      const jobId = await port.findAwaiting(user.id, command.jobId);
      const approver: Approver = { userId: user.id, credential: identityCredential(convo.identityId), via: 'chat', label: convo.identity };
      const job = command.kind === 'approve' ? await port.approve(jobId, approver) : await port.deny(jobId, approver, command.reason);
      const verdict =
        command.kind === 'approve'
          ? `✅ Approved: ${job.status === 'queuing' ? 'queued for' : 'but it expired at once:'} ${job.agentName}`
          : `🚫 Denied: ${job.agentName}`;
      const text = `${verdict} ${quote(job.message)} · job ${job.id}${job.status === 'expired' ? ` (${job.reason})` : ''}`;
      // A decision made with a button replaces the request (its buttons go); typed ones are answered where they were typed.
      await convo.reply({ text, replaces: convo.buttonMessage && convo.canEdit ? convo.buttonMessage : undefined });
      return;
    }
    case 'agent-approval': {
      const current = await port.findAgent(user.id, command.name);
      if (!current) return void (await convo.reply(await unknownAgent(port, user, command.name)));
      if (command.pattern === null) return clearPatterns(port, user, convo, current);
      const agent = await port.setApprovalPatterns(user.id, current.name, [...current.approvalPatterns, command.pattern]);
      const list = agent.approvalPatterns.map((p) => quote(p)).join(', ');
      await convo.reply({
        text: list
          ? `🔐 Jobs of ${agent.name} matching ${list} now need another person's approval.`
          : `Jobs of ${agent.name} no longer need approval.`,
      });
      return;
    }
    case 'agent-add': {
      const { agent, token } = await port.createAgent(user.id, command.name, command.alias, convo.identityId);
      const setup = `Agent ${agent.name} created. Its token (shown only now): \`${token}\`\nPut it in the agent's /etc/skadi/skadi.yml (token: …) or SKADI_AGENT_TOKEN.`;
      await answerPrivately(convo, { text: setup }, `Agent ${agent.name} created. I sent you its token in a private message.`);
      return;
    }
    case 'agent-remove': {
      const agent = await port.removeAgent(user.id, command.name);
      await convo.reply({ text: `Agent ${agent.name} removed; its token no longer works and its queued jobs expired.` });
      return;
    }
    case 'agent-token': {
      const { agent, token } = await port.rotateAgentToken(user.id, command.name, convo.identityId);
      await answerPrivately(
        convo,
        { text: `New token of ${agent.name} (the old one stopped working): \`${token}\`` },
        `${agent.name} has a new token; I sent it to you in a private message.`,
      );
      return;
    }
    case 'token': {
      const token = await port.rotateUserToken(user, convo.identityId);
      const text = `Your new user token (the old one stopped working): \`${token}\`\nUse it as \`Authorization: Bearer <token>\`, or \`?token=\` in the GET one-liners.`;
      await answerPrivately(
        convo,
        { text },
        'I sent you a new user token in a private message (tokens never go to a shared conversation).',
      );
      return;
    }
    case 'notify-here':
      await port.setNotifyTarget(user.id, convo.channel, convo.replyTo);
      await convo.reply({ text: `🔔 Notifications for ${user.name} (agents online/offline, messages) will come here.` });
      return;
  }
}
