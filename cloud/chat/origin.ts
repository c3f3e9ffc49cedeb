/** Where a chat job's answers go: the channel and the reference of its acknowledgement, kept as the job's origin. */
import type { ChannelName } from '../../adapters/contract';

/** Encodes where a job's answers go: the adapter and the reference of its acknowledgement message. */
export function encodeOrigin(channel: ChannelName, ref: string): string {
  return JSON.stringify({ channel, ref });
}

/** Decodes a job origin; null for jobs that did not come from chat. */
export function decodeOrigin(origin: string | null): { channel: ChannelName; ref: string } | null {
  if (!origin) return null;
  try {
    const value = JSON.parse(origin);
    return typeof value?.channel === 'string' && typeof value?.ref === 'string' ? value : null;
  } catch {
    return null;
  }
}
