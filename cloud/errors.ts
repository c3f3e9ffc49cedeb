/** The few error classes of the core; each has a stable `code` (the JSON `error` field) and an HTTP status. */

/** An expected error whose message may be shown to the caller. */
export class SkadiError extends Error {
  override name = 'SkadiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** 400: the input is malformed or out of range. */
export class BadRequestError extends SkadiError {
  constructor(message: string, code = 'BadRequest') {
    super(400, code, message);
  }
}

/** 401: missing or wrong token. */
export class UnauthorizedError extends SkadiError {
  constructor(message = 'A valid token is required.') {
    super(401, 'Unauthorized', message);
  }
}

/** 403: authenticated but not allowed. */
export class ForbiddenError extends SkadiError {
  constructor(message: string, code = 'Forbidden') {
    super(403, code, message);
  }
}

/** 404: no such thing, or it belongs to somebody else. */
export class NotFoundError extends SkadiError {
  constructor(message: string, code = 'NotFound') {
    super(404, code, message);
  }
}

/** 409: the request conflicts with the current state (e.g. a finished job). */
export class ConflictError extends SkadiError {
  constructor(message: string, code = 'Conflict') {
    super(409, code, message);
  }
}

/** 429: too many requests; retry after the given time. */
export class LimitExceededError extends SkadiError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(429, 'LimitExceeded', message);
  }
}

/** 503: MySQL or Redis is unreachable; the request can be retried. */
export class UnavailableError extends SkadiError {
  constructor(message = 'A storage service is unavailable, please retry shortly.') {
    super(503, 'Unavailable', message);
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED',
  'ER_CONNECTION_KILLED',
]);

const REDIS_DOWN = [/Connection is closed/i, /Stream isn't writeable/i, /Reached the max retries/i, /connect ECONNREFUSED/i, /LOADING/, /CLUSTERDOWN/, /Cluster isn't ready/i, /Too many Cluster redirections/i, /Failed to refresh slots cache/i, /Command timed out/i, /MOVED|TRYAGAIN/];

/** True when an error means a storage dependency is down or busy rather than a bug. */
export function isDependencyError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && CONNECTION_CODES.has(code)) return true;
  if ((err as { fatal?: boolean }).fatal === true) return true; // mysql2: the connection broke
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return REDIS_DOWN.some((pattern) => pattern.test(err.message));
}

/** Maps any error to a SkadiError when it is expected (ours, or a dependency outage); otherwise returns null. */
export function toSkadiError(err: unknown): SkadiError | null {
  if (err instanceof SkadiError) return err;
  if (isDependencyError(err)) return new UnavailableError();
  return null;
}
