/** MySQL repository of identities (chat and mail accounts linked to users) and of processed inbound message ids. */
import { COLUMN_CHARS, fitKey, fitNullable } from './column-text';
import type { ResultSetHeader, RowDataPacket, Sql } from './db';

/** An identity row. */
export interface IdentityRow {
  id: number;
  channel: string;
  tenant: string;
  externalId: string;
  userId: number;
  displayName: string | null;
  /** Made by the access policy (workspace / open mode), not by an admin: valid only while the policy allows it. */
  automatic: boolean;
  createdAt: Date;
  lastSeenAt: Date | null;
}

/** The stored form of an identity's key and display name: each fitted to its column, the same for writes and lookups. */
function stored(tenant: string, externalId: string): [string, string] {
  return [fitKey(tenant, COLUMN_CHARS.identityTenant), fitKey(externalId, COLUMN_CHARS.identityExternalId)];
}
const displayed = (name: string | null): string | null => fitNullable(name, COLUMN_CHARS.identityDisplayName);

function toIdentity(row: RowDataPacket): IdentityRow {
  return {
    id: Number(row.id),
    channel: row.channel,
    tenant: row.tenant,
    externalId: row.external_id,
    userId: Number(row.user_id),
    displayName: row.display_name,
    automatic: Boolean(row.automatic),
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
  };
}

/** The distinct keys of an inbound message, each as processed_messages stores it. */
function storedMessageKeys(messageIds: string | string[]): string[] {
  return [...new Set(([] as string[]).concat(messageIds).map((id) => fitKey(id, COLUMN_CHARS.processedMessageId, true)))];
}

/** Identities: link, unlink, find, list; plus inbound de-duplication. */
export class IdentityRepo {
  constructor(private readonly sql: Sql) {}

  /** Links an identity to a user (re-links it if it was linked to another); `automatic` marks a link the access policy made. */
  async link(
    channel: string,
    tenant: string,
    externalId: string,
    userId: number,
    displayName: string | null,
    now: Date,
    automatic = false,
  ): Promise<void> {
    await this.sql.query(
      'INSERT INTO identities (channel, tenant, external_id, user_id, display_name, automatic, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE user_id = VALUES(user_id), display_name = COALESCE(VALUES(display_name), display_name), automatic = VALUES(automatic)',
      [channel, ...stored(tenant, externalId), userId, displayed(displayName), automatic ? 1 : 0, now, null],
    );
  }

  /** Removes a link; false when there was none. */
  async unlink(channel: string, tenant: string, externalId: string): Promise<boolean> {
    const [res] = await this.sql.query<ResultSetHeader>('DELETE FROM identities WHERE channel = ? AND tenant = ? AND external_id = ?', [
      channel,
      ...stored(tenant, externalId),
    ]);
    return res.affectedRows > 0;
  }

  /** The identity, if linked. */
  async find(channel: string, tenant: string, externalId: string): Promise<IdentityRow | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT * FROM identities WHERE channel = ? AND tenant = ? AND external_id = ?', [
      channel,
      ...stored(tenant, externalId),
    ]);
    return rows[0] ? toIdentity(rows[0]) : null;
  }

  /** Identities of a user (all when userId is null), most recently used first. */
  async list(userId: number | null): Promise<IdentityRow[]> {
    const [rows] =
      userId === null
        ? await this.sql.query<RowDataPacket[]>('SELECT * FROM identities ORDER BY user_id, last_seen_at DESC, id')
        : await this.sql.query<RowDataPacket[]>(
            'SELECT * FROM identities WHERE user_id = ? ORDER BY last_seen_at IS NULL, last_seen_at DESC, id',
            [userId],
          );
    return rows.map(toIdentity);
  }

  /** Records that an identity was just used. */
  async touch(id: number, now: Date, displayName: string | null = null): Promise<void> {
    await this.sql.query('UPDATE identities SET last_seen_at = ?, display_name = COALESCE(?, display_name) WHERE id = ?', [
      now,
      displayed(displayName),
      id,
    ]);
  }

  /** Records the keys of an inbound message in one statement; false when any was seen before (a retry, or a replay). */
  async markProcessed(channel: string, messageIds: string | string[], now: Date): Promise<boolean> {
    const ids = storedMessageKeys(messageIds);
    const rows = ids.map((id) => [channel, id, now]);
    const [res] = await this.sql.query<ResultSetHeader>(
      'INSERT IGNORE INTO processed_messages (channel, message_id, created_at) VALUES ?',
      [rows],
    );
    return res.affectedRows === ids.length;
  }

  /** Forgets the keys that markProcessed just recorded, when the message could not be handled: a redelivery is then new. */
  async forgetProcessed(channel: string, messageIds: string | string[]): Promise<void> {
    await this.sql.query('DELETE FROM processed_messages WHERE channel = ? AND message_id IN (?)', [
      channel,
      storedMessageKeys(messageIds),
    ]);
  }

  /** Forgets processed message ids older than a time (well past every platform's retry window). */
  async purgeProcessed(before: Date): Promise<number> {
    const [res] = await this.sql.query<ResultSetHeader>('DELETE FROM processed_messages WHERE created_at < ? LIMIT 10000', [before]);
    return res.affectedRows;
  }

  /** Sets where a user's notifications go. */
  async setNotifyTarget(userId: number, channel: string, ref: string): Promise<void> {
    await this.sql.query('UPDATE users SET notify_channel = ?, notify_ref = ? WHERE id = ?', [channel, ref, userId]);
  }

  /** Where a user's notifications go, if chosen. */
  async notifyTarget(userId: number): Promise<{ channel: string; ref: string } | null> {
    const [rows] = await this.sql.query<RowDataPacket[]>('SELECT notify_channel, notify_ref FROM users WHERE id = ?', [userId]);
    return rows[0]?.notify_channel ? { channel: rows[0].notify_channel, ref: rows[0].notify_ref } : null;
  }
}
