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
 * wait; a burst of unknown tokens (each one a MySQL lookup) from one address is worked off a few at a time, and from
 * an address over the limit one at a time.
 */
const CHECKS_PER_ADDRESS = 8;
const CHECKS_PER_BLOCKED_ADDRESS = 1;

/**
 * Counts failed authentications per client address in Redis (shared by every node). An address over the limit gets
 * 429 for its bad credentials, and its checks run one at a time; a valid credential is never refused, so clients that
 * share an address with an attacker (behind a NAT or an untrusted proxy) keep working.
 */
export class AuthLimiter {
  private readonly blocked = new Map<string, number>();
  private readonly checking = new Map<string, { active: number; waiting: { limit: number; resume: () => void }[] }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: AuthLimiterOptions,
  ) {}

  /** Runs a credential check for a request; a failure counts against its address, and answers 429 once it is over the limit. */
  readonly guard = async (ctx: Context, check: () => Promise<void>): Promise<void> => {
    const address: string = ctx.state.clientAddress ?? ctx.request.ip ?? 'unknown';
    await this.acquire(address, this.blockedUntil(address) ? CHECKS_PER_BLOCKED_ADDRESS : CHECKS_PER_ADDRESS);
    try {
      await check();
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      const until = this.blockedUntil(address);
      if (until) throw this.refusal(until);
      await this.fail(address);
      throw err;
    } finally {
      this.release(address);
    }
  };

  /** When the address's block ends (ms), or 0 when it is not blocked. */
  private blockedUntil(address: string): number {
    const until = this.blocked.get(address);
    if (until === undefined) return 0;
    if (until > Date.now()) return until;
    this.blocked.delete(address);
    return 0;
  }

  private async acquire(address: string, limit: number): Promise<void> {
    let slot = this.checking.get(address);
    if (!slot) this.checking.set(address, (slot = { active: 0, waiting: [] }));
    if (slot.active < limit && slot.waiting.length === 0) {
      slot.active++;
      return;
    }
    await new Promise<void>((resume) => slot.waiting.push({ limit, resume })); // a releasing check lets it in
  }

  private release(address: string): void {
    const slot = this.checking.get(address);
    if (!slot) return;
    slot.active--;
    while (slot.waiting.length && slot.active < slot.waiting[0].limit) {
      slot.active++;
      slot.waiting.shift()!.resume();
    }
    if (slot.active === 0 && slot.waiting.length === 0) this.checking.delete(address);
  }
  private async fail(address: string): Promise<void> {
    const key = this.keys.authFailures(address);
    const [[, count], , [, ttl]] = (await this.redis
      .multi()
      .incr(key)
      .pexpire(key, this.options.windowMs, 'NX')
      .pttl(key)
      .exec()
      .catch(() => [
        [null, 0],
        [null, 0],
        [null, 0],
      ])) as [unknown, number][];
    if (count > this.options.maxFailures) {
      const until = Date.now() + Math.max(1000, Number(ttl) > 0 ? Number(ttl) : this.options.windowMs);
      this.blocked.set(address, until);
      if (this.blocked.size > 100_000) this.blocked.clear();
    }
  }

  private refusal(until: number): LimitExceededError {
    const retryAfterMs = until - Date.now();
    return new LimitExceededError(
      `Too many failed authentications from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
      retryAfterMs,
    );
  }
}
