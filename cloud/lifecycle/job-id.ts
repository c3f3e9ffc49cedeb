/** Job ids: ULIDs, URL-safe and sortable by creation time (monotonic within one process). */
import crypto from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * Random bytes for the ids, drawn from the system's CSPRNG 4 kB at a time: ulid's default source asks the system
 * once per character (16 calls per id), which showed in the gateway's profile.
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** A uniform number in [0, 1) with 8 random bits: enough, as ulid draws one of 32 characters from it. */
function randomUnit(): number {
  if (offset >= pool.length) {
    crypto.randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++] / 256;
}

const next = monotonicFactory(randomUnit);

/** A new job id. */
export function newJobId(): string {
  return next();
}

/** True when the text has the shape of a job id (checked before any lookup). */
export function isJobId(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(text);
}
