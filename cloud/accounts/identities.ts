/** Who a chat sender is: linked identities, and the access policy of each channel for everyone else. */
import crypto from 'node:crypto';
import type { AccessMode, ChannelName, InboundMessage } from '../../adapters/contract';
import { BadRequestError, NotFoundError } from '../errors';
import { COLUMN_CHARS, fitKey } from '../store/column-text';
import type { IdentityRepo, IdentityRow } from '../store/identities';
import type { UserRow } from '../store/users';
import type { UserService } from './users';

/** A sender the core accepted, or the refusal to show them. */
export type SenderCheck = { user: UserRow; identity: IdentityRow } | { refusal: string };

const CHANNELS: ReadonlySet<string> = new Set(['slack', 'teams', 'wechat', 'email']);

/**
 * An identity as it is stored and compared (byte for byte): e-mail domains and addresses lower-case and NFC, Teams
 * ids (GUIDs) lower-case, Slack ids upper-case, as their platforms write them; WeChat ids as they are.
 */
export function normalIdentity(channel: string, tenant: string, externalId: string): { tenant: string; externalId: string } {
  if (channel === 'email') return { tenant: tenant.normalize('NFC').toLowerCase(), externalId: externalId.normalize('NFC').toLowerCase() };
  if (channel === 'teams') return { tenant: tenant.toLowerCase(), externalId: externalId.toLowerCase() };
  if (channel === 'slack') return { tenant: tenant.toUpperCase(), externalId: externalId.toUpperCase() };
  return { tenant, externalId };
}

/** Parses "channel:tenant:externalId" (e-mail: the domain, then the address: "email:example.com:ops@example.com"), normalized. */
export function parseIdentityKey(key: string): { channel: ChannelName; tenant: string; externalId: string } {
  const first = key.indexOf(':');
  const second = key.indexOf(':', first + 1);
  if (first < 0 || second < 0)
    throw new BadRequestError(`"${key}" is not channel:tenant:id (e.g. slack:T024BE7LD:U12345, email:example.com:ops@example.com).`);
  const channel = key.slice(0, first);
  const tenant = key.slice(first + 1, second);
  const externalId = key.slice(second + 1);
  if (!CHANNELS.has(channel)) throw new BadRequestError(`Unknown channel "${channel}" (slack, teams, wechat, email).`);
  if (!externalId) throw new BadRequestError(`"${key}" has no account id after the second colon.`);
  return { channel: channel as ChannelName, ...normalIdentity(channel, tenant, externalId) };
}

/** The identity key of an inbound message's sender, as stored (a tenant or id too long for its column is fitted to it). */
export function identityKey(channel: string, tenant: string, externalId: string): string {
  return `${channel}:${fitKey(tenant, COLUMN_CHARS.identityTenant)}:${fitKey(externalId, COLUMN_CHARS.identityExternalId)}`;
}

/** A user name derived from platform ids (letters, digits, . _ @ -; at most 64 characters). */
function derivedUserName(parts: string[]): string {
  const name = parts.join('-').replace(/[^\w.@-]/g, '_');
  if (name.length <= 64) return name;
  return `${name.slice(0, 51)}-${crypto.createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}

/** Links identities and decides who may act. */
export class IdentityService {
  constructor(
    private readonly repo: IdentityRepo,
    private readonly users: UserService,
  ) {}

  /** Links "channel:tenant:id" to a user (by name). */
  async link(key: string, userName: string, displayName: string | null = null): Promise<IdentityRow> {
    const { channel, tenant, externalId } = parseIdentityKey(key);
    const user = await this.users.byName(userName);
    await this.repo.link(channel, tenant, externalId, user.id, displayName, new Date());
    return (await this.repo.find(channel, tenant, externalId))!;
  }

  /** Removes a link, or a NotFoundError. */
  async unlink(key: string): Promise<void> {
    const { channel, tenant, externalId } = parseIdentityKey(key);
    if (!(await this.repo.unlink(channel, tenant, externalId))) throw new NotFoundError(`${key} is not linked.`, 'IdentityNotFound');
  }

  /** Identities of a user (all when null). */
  list(userId: number | null): Promise<IdentityRow[]> {
    return this.repo.list(userId);
  }

  /** The user a sender acts as under the channel's access policy, or the refusal to show them. */
  async check(inbound: InboundMessage, access: { mode: AccessMode; tenants: string[] }): Promise<SenderCheck> {
    const now = new Date();
    const { tenant, externalId } = normalIdentity(inbound.channel, inbound.tenant, inbound.senderId);
    const message = { ...inbound, tenant, senderId: externalId };
    const key = identityKey(message.channel, message.tenant, message.senderId);
    const refusal = policyRefusal(message.tenant, key, access);
    const linked = await this.repo.find(message.channel, message.tenant, message.senderId);
    // An admin's link always holds; a link the policy made holds only while the current policy would make it.
    if (linked && !(linked.automatic && refusal)) {
      await this.repo.touch(linked.id, now, message.senderName || null); // `identity list` then shows who the account is
      const user = await this.users.byId(linked.userId);
      if (user) return { user, identity: { ...linked, lastSeenAt: now } };
    }
    if (refusal) return { refusal };
    const userName =
      access.mode === 'workspace'
        ? derivedUserName([message.channel, message.tenant])
        : derivedUserName([message.channel, message.tenant, message.senderId]);
    const user = await this.users.findOrCreate(userName);
    await this.repo.link(message.channel, message.tenant, message.senderId, user.id, message.senderName || null, now, true);
    const identity = (await this.repo.find(message.channel, message.tenant, message.senderId))!;
    await this.repo.touch(identity.id, now);
    return { user, identity };
  }
}

/** Why the access policy would not let an unlinked sender in (null when it would); a sender of no known tenant never gets in unlinked. */
function policyRefusal(tenant: string, key: string, access: { mode: AccessMode; tenants: string[] }): string | null {
  if (access.mode === 'closed') {
    return `You are not linked to a Skadi user yet. Ask your Skadi admin to run: skadi identity link ${key} --user <name>`;
  }
  if (!tenant) {
    return `Skadi could not tell which organization you belong to, so only an account your Skadi admin linked may use it. Ask them to run: skadi identity link ${key} --user <name>`;
  }
  if (access.mode === 'workspace' && access.tenants.length > 0 && !access.tenants.includes(tenant)) {
    return `This workspace (${tenant}) is not allowed to use Skadi. Ask your Skadi admin to add it, or to run: skadi identity link ${key} --user <name>`;
  }
  return null;
}
