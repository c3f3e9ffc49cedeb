/** Repeated bad tokens from one address are answered 429 for a while; valid clients never pay for it (no lookup on success). */
import type { Context } from 'koa';
import { LimitExceededError, UnauthorizedError } from '../cloud/errors';
import type { RedisClient } from '../cloud/queue/redis';
import type { RedisKeys } from '../cloud/queue/keys';

/** Limits of the failed-authentication guard. */
export interface AuthLimiterOptions {
  /** Failures allowed per address within windowMs before it is refused. */
  maxFailures: number;
  windowMs: number;
}

/**
 * Credential checks in progress per address. A check of a cached token takes microseconds, so honest clients never
 * wait; a burst of unknown tokens (each one a MySQL lookup) from one address is worked off a few at a time, and what
 * is still waiting when the address gets blocked is refused without a lookup.
 */
const CHECKS_PER_ADDRESS = 8;

/** Counts failed authentications per client address in Redis (shared by every node) and refuses an address over the limit. */
export class AuthLimiter {
  private readonly blocked = new Map<string, number>();
  private readonly checking = new Map<string, { active: number; waiting: (() => void)[] }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: AuthLimiterOptions,
  ) {}

  /** Runs a credential check for a request, refusing blocked addresses before it and counting its failure after. */
  readonly guard = async (ctx: Context, check: () => Promise<void>): Promise<void> => {
    const address = ctx.request.ip || 'unknown';
    this.refuseIfBlocked(address);
    await this.acquire(address);
    try {
      this.refuseIfBlocked(address); // it may have been blocked while this request waited
      await check();
    } catch (err) {
      if (err instanceof UnauthorizedError) await this.fail(address);
      throw err;
    } finally {
      this.release(address);
    }
  };

  private refuseIfBlocked(address: string): void {
    const until = this.blocked.get(address);
    if (until === undefined) return;
    if (until > Date.now()) throw this.refusal(until);
    this.blocked.delete(address);
  }

  private async acquire(address: string): Promise<void> {
    let slot = this.checking.get(address);
    if (!slot) this.checking.set(address, (slot = { active: 0, waiting: [] }));
    if (slot.active < CHECKS_PER_ADDRESS) {
      slot.active++;
      return;
    }
    await new Promise<void>((resolve) => slot.waiting.push(resolve)); // the releasing check hands its place over
  }

  private release(address: string): void {
    const slot = this.checking.get(address);
    if (!slot) return;
    const next = slot.waiting.shift();
    if (next) return next();
    if (--slot.active === 0) this.checking.delete(address);
  }

  private async fail(address: string): Promise<void> {
    const key = this.keys.authFailures(address);
    const [[, count], [, ttl]] = (await this.redis.multi().incr(key).pexpire(key, this.options.windowMs, 'NX').pttl(key).exec().catch(() => [[null, 0], [null, 0], [null, 0]])) as [unknown, number][];
    if (count > this.options.maxFailures) {
      const until = Date.now() + Math.max(1000, Number(ttl) > 0 ? Number(ttl) : this.options.windowMs);
      this.blocked.set(address, until);
      if (this.blocked.size > 100_000) this.blocked.clear();
    }
  }

  private refusal(until: number): LimitExceededError {
    const retryAfterMs = until - Date.now();
    return new LimitExceededError(`Too many failed authentications from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s.`, retryAfterMs);
  }
}
