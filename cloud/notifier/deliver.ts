/** What one event becomes: a callback POST, an edit and a reply in the job's chat thread, or a notification. */
import type { Logger } from 'pino';
import type { ChannelAdapter, OutboundMessage } from '../../adapters/contract';
import { jobHeadline, quote, shortJobId } from '../chat/format';
import { decodeOrigin } from '../chat/origin';
import type { JobStatusEvent, MessageEvent } from '../lifecycle/events';
import type { IdentityRepo, IdentityRow } from '../store/identities';
import type { TtlCache } from '../accounts/ttl-cache';
import { isTerminal, type JobRepo, type JobRow } from '../store/jobs';
import type { UserRepo } from '../store/users';
import type { CallbackGuard } from './callback-guard';
import { callbackKeysOf, type CallbackKeys } from '../accounts/callback-secret';
import { postCallback } from './callback';
import type { Pacer } from '../../adapters/pacer';
import type { ConversationGate } from './conversation-gate';

/** Where a user's notifications go: the chosen conversation, else their identities (most recently used first). */
export interface UserRoute {
  target: { channel: string; ref: string } | null;
  identities: IdentityRow[];
}

/** What deliveries need. */
export interface DeliveryDeps {
  jobs: JobRepo;
  users: UserRepo;
  identities: IdentityRepo;
  adapters: ReadonlyMap<string, ChannelAdapter>;
  pacer: Pacer;
  /** At most a few deliveries per conversation under way at once (waiting for their pace or sending); the others wait in order. */
  gate: ConversationGate;
  log: Logger;
  /**
   * A few seconds of memory for notification routes (as promises: the events of one user that wait for one lookup go
   * on in the order they came) and callback keys (each event would look them up again).
   */
  routes: TtlCache<number, Promise<UserRoute>>;
  callbackKeys: TtlCache<number, CallbackKeys | null>;
  /** Where callbacks may go, and the address each delivery connects to. */
  callbackGuard: CallbackGuard;
  callbackTimeoutMs: number;
  /** SKADI_SECRET, from which the per-user callback secrets are derived; empty when not set. */
  serverSecret: string;
}

/** The keys signing a user's callbacks, cached briefly; null when the user is gone. */
function callbackKeys(userId: number, deps: DeliveryDeps): Promise<CallbackKeys | null> {
  return deps.callbackKeys.getOrLoad(userId, async () => {
    const user = await deps.users.findById(userId);
    return user ? callbackKeysOf(user, deps.serverSecret) : null;
  });
}

/** The notification route of a user, cached briefly; concurrent events of the user share one lookup, so they keep their order. */
function routeOf(userId: number, deps: DeliveryDeps): Promise<UserRoute> {
  const cached = deps.routes.get(userId);
  if (cached) return cached;
  const route = (async () => ({ target: await deps.identities.notifyTarget(userId), identities: await deps.identities.list(userId) }))();
  deps.routes.set(userId, route);
  route.catch(() => deps.routes.get(userId) === route && deps.routes.delete(userId)); // a failed lookup is not kept
  return route;
}

const MESSAGE_MARK: Record<MessageEvent['kind'], string> = {
  info: 'ℹ️',
  warning: '⚠️',
  text: '',
  auto: '',
  'agent:online': '🟢',
  'agent:offline': '🔴',
};

/** Sends in a private conversation with one account, paced like its other private messages. */
function sendPrivately(deps: DeliveryDeps, adapter: ChannelAdapter, identity: IdentityRow, message: OutboundMessage): Promise<string> {
  const conversation = `${adapter.name}:private:${identity.tenant}:${identity.externalId}`;
  return deps.gate.run(conversation, () =>
    deps.pacer.run(conversation, () => adapter.sendPrivate(identity.tenant, identity.externalId, message), adapter.rateLimits),
  );
}

/** Sends through an adapter, paced per conversation: new messages apart from new messages, edits apart from edits (platforms limit them separately). */
function paced(deps: DeliveryDeps, adapter: ChannelAdapter, replyTo: string, message: OutboundMessage): Promise<string> {
  const kind = message.replaces ? 'edit' : 'post';
  const conversation = `${adapter.name}:${adapter.conversationKey(replyTo)}`;
  return deps.gate.run(conversation, () =>
    deps.pacer.run(`${conversation}:${kind}`, () => adapter.send(replyTo, message), adapter.rateLimits),
  );
}

/**
 * The JSON a callback receives for a job status change: our fields, plus those of the original Skadi's job JSON
 * (user_id, agent_id, callback, created_at, sent_at, <final status>_at) in its formats. docs/notifications.md shows an example.
 */
export function callbackPayload(job: JobRow, event: JobStatusEvent): Record<string, unknown> {
  const sent = job.sentAt && !['awaiting_approval', 'queuing'].includes(event.status);
  return {
    type: 'job:status',
    id: job.id,
    user_id: String(job.userId),
    agent_id: String(job.agentId),
    agent: job.agentName,
    message: job.message,
    source: job.source,
    callback: job.callback ?? '',
    status: event.status,
    result: event.result ?? '',
    reason: event.reason ?? '',
    created_at: goTime(job.createdAt),
    ...(sent ? { sent_at: goTime(job.sentAt!) } : {}),
    ...(isTerminal(event.status) ? { [`${event.status}_at`]: goTime(job.finishedAt ?? new Date(event.at)) } : {}),
    at: event.at,
  };
}

/** A time as Go's time.Time marshals a MySQL datetime(3): RFC 3339 in UTC, milliseconds without trailing zeros. */
export function goTime(at: Date): string {
  return at.toISOString().replace(/\.?0+Z$/, 'Z');
}

/** What earlier attempts of one event already did, so a retry does not post the answer twice. */
export interface DeliveryProgress {
  replied?: boolean;
  /** The approval request was posted where the command came from. */
  requestedHere?: boolean;
  /** Identities that got the approval request privately. */
  requestedFrom?: Set<number>;
}

/** The approval request: who asked which agent to do what, and how to decide. */
export function approvalRequestText(job: JobRow, owner: string): string {
  const short = shortJobId(job.id);
  const asker = job.requester ? `${job.requester} asks` : 'The API asks';
  const until = job.approval?.until ? ` before ${job.approval.until.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
  return `🔐 Approval needed: ${asker} ${job.agentName} to run ${quote(job.message, 200)}. Another account linked to ${owner} can answer \`approve ${short}\` or \`deny ${short} [reason]\`${until} · job ${job.id}`;
}

/** Posts the approval request where the command came from, and privately to the owner's other accounts (each once). */
async function requestApproval(job: JobRow, deps: DeliveryDeps, progress: DeliveryProgress): Promise<void> {
  const owner = (await deps.users.findById(job.userId))?.name ?? `user ${job.userId}`;
  const message = { text: approvalRequestText(job, owner), approval: { jobId: job.id } };
  const origin = decodeOrigin(job.origin);
  const here = origin && deps.adapters.get(origin.channel);
  if (origin && here && !progress.requestedHere) {
    await paced(deps, here, origin.ref, message);
    progress.requestedHere = true;
  }
  progress.requestedFrom ??= new Set();
  for (const identity of await deps.identities.list(job.userId)) {
    const adapter = deps.adapters.get(identity.channel);
    // The person who pushed the job (in chat, or with a token handed to them) cannot approve it: not asked.
    if (!adapter || identity.id === job.pushedBy?.identityId || progress.requestedFrom.has(identity.id)) continue;
    await sendPrivately(deps, adapter, identity, message);
    progress.requestedFrom.add(identity.id);
  }
}

/** Delivers a job status event; returns what was done (for logs and tests). `prefetched` saves the lookup when given. */
export async function deliverJobStatus(
  event: JobStatusEvent,
  deps: DeliveryDeps,
  prefetched?: JobRow | null,
  progress: DeliveryProgress = {},
): Promise<string> {
  const job = prefetched !== undefined ? prefetched : await deps.jobs.get(event.job_id);
  if (job && event.status === 'awaiting_approval' && job.status === 'awaiting_approval') await requestApproval(job, deps, progress);
  if (!job || job.callback === 'disable') return 'skipped';
  if (job.callback) {
    const keys = await callbackKeys(job.userId, deps);
    if (!keys) return 'skipped';
    await postCallback(job.callback, {
      keys,
      payload: callbackPayload(job, event),
      guard: deps.callbackGuard,
      timeoutMs: deps.callbackTimeoutMs,
    });
    return 'callback';
  }
  const origin = decodeOrigin(job.origin);
  const terminal = isTerminal(event.status);
  if (origin) {
    const adapter = deps.adapters.get(origin.channel);
    if (!adapter) return 'skipped';
    if (!terminal) {
      if (isTerminal(job.status) || adapter.canEdit === false) return 'skipped'; // already finished: the final event edits the acknowledgement
      const tail = job.status === 'running' && job.result ? job.result.slice(-1500) : undefined;
      await paced(deps, adapter, origin.ref, { text: jobHeadline(job), code: tail, replaces: origin.ref });
      return 'edited';
    }
    const final = { ...job, status: event.status, reason: event.reason };
    const threads = adapter.threads !== false;
    // The answer first (new messages and edits are paced separately), then the acknowledgement shows the end too.
    if (!progress.replied) await paced(deps, adapter, origin.ref, { text: jobHeadline(final, threads), code: event.result || undefined });
    progress.replied = true;
    if (adapter.canEdit !== false) await paced(deps, adapter, origin.ref, { text: jobHeadline(final), replaces: origin.ref });
    return 'replied';
  }
  if (!terminal) return 'skipped';
  const ended = { ...job, status: event.status, reason: event.reason };
  return notifyUser(
    job.userId,
    (adapter) => ({ text: jobHeadline(ended, adapter.threads !== false), code: event.result || undefined }),
    deps,
  );
}

/** Delivers a message event to the user's chosen conversation, else privately to the identity they used last. */
export async function deliverMessage(event: MessageEvent, deps: DeliveryDeps): Promise<string> {
  const mark = MESSAGE_MARK[event.kind];
  const who = event.agent && !event.kind.startsWith('agent:') ? `${event.agent}: ` : '';
  const text = `${mark ? `${mark} ` : ''}${who}${event.message}`;
  return notifyUser(event.user_id, () => ({ text }), deps);
}

/** Sends a notification (written for the channel it goes to) to the user's chosen conversation, else privately. */
async function notifyUser(userId: number, messageFor: (adapter: ChannelAdapter) => OutboundMessage, deps: DeliveryDeps): Promise<string> {
  const route = await routeOf(userId, deps);
  const target = route.target;
  const chosen = target && deps.adapters.get(target.channel);
  if (target && chosen) {
    await paced(deps, chosen, target.ref, messageFor(chosen));
    return 'notified';
  }
  for (const identity of route.identities) {
    const adapter = deps.adapters.get(identity.channel);
    if (!adapter) continue;
    await sendPrivately(deps, adapter, identity, messageFor(adapter));
    return 'notified';
  }
  return 'skipped';
}
