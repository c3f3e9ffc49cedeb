/** Users: the owners of agents, each with a user token for the user API. */
import { ConfigError } from '../../config';
import { callbackKeysOf, deriveCallbackSecret, newCallbackSalt } from './callback-secret';
import { BadRequestError, ConflictError, NotFoundError, UnauthorizedError } from '../errors';
import { hashToken, looksLikeToken, newToken, tokenMatches } from './tokens';
import type { UserRepo, UserRow } from '../store/users';
import { TtlCache } from './ttl-cache';

const NAME = /^[A-Za-z0-9][\w.@-]{0,63}$/;
const AUTH_CACHE_MS = 10_000;

/** Creates, finds and authenticates users. */
export class UserService {
  private readonly authCache = new TtlCache<string, UserRow>(AUTH_CACHE_MS);

  /**
   * `onTokenChange(hash)` tells every node to forget a rotated token or changed callback secret (the agents' pub/sub
   * channel); `serverSecret` is SKADI_SECRET, empty when not set.
   */
  constructor(
    private readonly users: UserRepo,
    private readonly onTokenChange: (tokenHash: string) => Promise<void> = async () => undefined,
    private readonly serverSecret = '',
  ) {}

  /** Drops a cached credential (rotated on some node). */
  invalidateCached(tokenHash: string): void {
    this.authCache.delete(tokenHash);
  }

  /** Creates a user; returns it with its token (shown only now). */
  async create(name: string): Promise<{ user: UserRow; token: string }> {
    if (!NAME.test(name))
      throw new BadRequestError('A user name is 1-64 letters, digits, and . _ @ - (starting with a letter or digit).', 'InvalidName');
    if (await this.users.findByName(name)) throw new ConflictError(`A user named "${name}" already exists.`, 'NameTaken');
    const token = newToken('user');
    const salt = newCallbackSalt();
    const now = new Date();
    try {
      const id = await this.users.insert(name, hashToken(token), salt, now);
      return { user: { id, name, tokenHash: hashToken(token), callbackSalt: salt, tokenIssuedTo: null, createdAt: now }, token };
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_DUP_ENTRY')
        throw new ConflictError(`A user named "${name}" already exists.`, 'NameTaken');
      throw err;
    }
  }

  /** The user with this name, or a NotFoundError. */
  async byName(name: string): Promise<UserRow> {
    const user = await this.users.findByName(name);
    if (!user) throw new NotFoundError(`There is no user named "${name}".`, 'UserNotFound');
    return user;
  }

  /** The user with this id, if any. */
  byId(id: number): Promise<UserRow | null> {
    return this.users.findById(id);
  }

  /** The user with this name, created (with a token nobody has seen yet) if missing; safe under concurrency. */
  async findOrCreate(name: string): Promise<UserRow> {
    const found = await this.users.findByName(name);
    if (found) return found;
    try {
      return (await this.create(name)).user;
    } catch (err) {
      const again = await this.users.findByName(name);
      if (again) return again;
      throw err;
    }
  }

  /** Every user. */
  list(): Promise<UserRow[]> {
    return this.users.list();
  }

  /** True when at least one user exists. */
  async any(): Promise<boolean> {
    return (await this.users.count()) > 0;
  }

  /**
   * Replaces a user's token; returns the new one (the old one stops working at once). `issuedTo` is the chat account
   * it is handed to (null for an admin's CLI): that person may not approve the jobs the token pushes.
   */
  async rotateToken(name: string, issuedTo: number | null = null): Promise<string> {
    const user = await this.byName(name);
    const token = newToken('user');
    await this.users.setTokenHash(user.id, hashToken(token), issuedTo);
    this.invalidateCached(user.tokenHash);
    await this.onTokenChange(user.tokenHash);
    return token;
  }

  /** The callback secret of a user, or null when SKADI_SECRET is not set or the user has none yet. */
  callbackSecretOf(user: UserRow): string | null {
    return callbackKeysOf(user, this.serverSecret).current;
  }

  /** The callback secret of a user, made now if the user has none (created before callback secrets); needs SKADI_SECRET. */
  async callbackSecret(name: string): Promise<string> {
    this.requireServerSecret();
    const user = await this.byName(name);
    let salt = user.callbackSalt;
    if (!salt) {
      salt = await this.users.ensureCallbackSalt(user.id, newCallbackSalt());
      if (!salt) throw new NotFoundError(`There is no user named "${name}".`, 'UserNotFound');
      await this.onTokenChange(user.tokenHash);
    }
    return deriveCallbackSecret(this.serverSecret, user.id, salt);
  }

  /** Gives a user a new callback secret (the old one stops signing); returns it, or null when SKADI_SECRET is not set. */
  async rotateCallbackSecret(name: string): Promise<string | null> {
    const user = await this.byName(name);
    const salt = newCallbackSalt();
    await this.users.setCallbackSalt(user.id, salt);
    await this.onTokenChange(user.tokenHash);
    return this.callbackSecretOf({ ...user, callbackSalt: salt });
  }

  private requireServerSecret(): void {
    if (this.serverSecret) return;
    throw new ConfigError(
      'setting secret (SKADI_SECRET) is not set: callback secrets are derived from it. Set it to the value the gateway nodes use (create one with `openssl rand -hex 32`).',
    );
  }

  /** The user owning this token, or an UnauthorizedError. */
  async authenticate(token: string | undefined): Promise<UserRow> {
    if (!token || !looksLikeToken(token)) throw new UnauthorizedError('A valid user token is required.');
    const hash = hashToken(token);
    const cached = this.authCache.get(hash);
    if (cached) return cached;
    const user = await this.users.findByTokenHash(hash);
    if (!user || !tokenMatches(token, user.tokenHash)) throw new UnauthorizedError('The user token is not valid.');
    this.authCache.set(hash, user);
    return user;
  }
}
