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

/** Counts failed authentications per client address in Redis (shared by every node) and refuses an address over the limit. */
export class AuthLimiter {
  private readonly blocked = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: AuthLimiterOptions,
  ) {}

  /** Runs a credential check for a request, refusing blocked addresses before it and counting its failure after. */
  readonly guard = async (ctx: Context, check: () => Promise<void>): Promise<void> => {
    const address = ctx.request.ip || 'unknown';
    const until = this.blocked.get(address);
    if (until !== undefined) {
      if (until > Date.now()) throw this.refusal(until);
      this.blocked.delete(address);
    }
    try {
      await check();
    } catch (err) {
      if (err instanceof UnauthorizedError) await this.fail(address);
      throw err;
    }
  };

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
