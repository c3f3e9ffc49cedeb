/** The few error classes of the core; each has a stable `code` (the JSON `error` field) and an HTTP status. */

/** Every code an error of the API carries (its JSON `error` field), each with the status it goes with. */
export type ErrorCode =
  // 400
  | 'BadRequest'
  | 'InvalidJSON'
  | 'BadBody'
  | 'InvalidMessage'
  | 'MessageTooLong'
  | 'InvalidName'
  | 'InvalidPattern'
  | 'InvalidDuration'
  | 'InvalidJobId'
  | 'AmbiguousJobId'
  | 'InvalidAgent'
  // 401, 403
  | 'Unauthorized'
  | 'Forbidden'
  | 'AgentUnavailable'
  | 'NotApprover'
  | 'SelfApproval'
  | 'HolderUnknown'
  | 'Unattributed'
  // 404, 405
  | 'NotFound'
  | 'JobNotFound'
  | 'AgentNotFound'
  | 'UserNotFound'
  | 'IdentityNotFound'
  | 'MethodNotAllowed'
  // 409
  | 'Conflict'
  | 'NameTaken'
  | 'AlreadyDecided'
  | 'NoApproval'
  | 'ApprovalExpired'
  | 'NotCancelable'
  | 'JobNotTaken'
  | 'JobFinished'
  // 413, 429, 500, 503
  | 'TooLarge'
  | 'LimitExceeded'
  | 'ServerError'
  | 'Unavailable';

/** The JSON body of an error answer. */
export interface ErrorBody {
  error: ErrorCode;
  message: string;
}

/** An expected error whose message may be shown to the caller. */
export class SkadiError extends Error {
  override name = 'SkadiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** 400: the input is malformed or out of range. */
export class BadRequestError extends SkadiError {
  constructor(message: string, code: ErrorCode = 'BadRequest') {
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
  constructor(message: string, code: ErrorCode = 'Forbidden') {
    super(403, code, message);
  }
}

/** 404: no such thing, or it belongs to somebody else. */
export class NotFoundError extends SkadiError {
  constructor(message: string, code: ErrorCode = 'NotFound') {
    super(404, code, message);
  }
}

/** 409: the request conflicts with the current state (e.g. a finished job). */
export class ConflictError extends SkadiError {
  constructor(message: string, code: ErrorCode = 'Conflict') {
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

const REDIS_DOWN = [
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /Reached the max retries/i,
  /connect ECONNREFUSED/i,
  /LOADING/,
  /CLUSTERDOWN/,
  /Cluster isn't ready/i,
  /Too many Cluster redirections/i,
  /Failed to refresh slots cache/i,
  /Command timed out/i,
  /MOVED|TRYAGAIN/,
];

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
