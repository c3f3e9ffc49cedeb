/** Job ids: ULIDs, URL-safe and sortable by creation time (monotonic within one process). */
import { monotonicFactory } from 'ulid';

const next = monotonicFactory();

/** A new job id. */
export function newJobId(): string {
  return next();
}

/** True when the text has the shape of a job id (checked before any lookup). */
export function isJobId(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(text);
}
