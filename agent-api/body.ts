/** Reads request bodies: JSON or form, with a size limit (413) and clear 400s for malformed input. */
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { BadRequestError, SkadiError } from '../cloud/errors';

/** 413 with the JSON error body. */
export class TooLargeError extends SkadiError {
  constructor(limit: number) {
    super(413, 'TooLarge', `The request body is larger than ${limit} bytes.`);
  }
}

declare module 'koa' {
  interface Request {
    /** The parsed body: always a plain object ({} when there is none). */
    body: Record<string, unknown>;
    /** The body as received (signature checks need the exact bytes). */
    rawBody: string;
  }
}

function parse(text: string, type: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  // curl -d sends JSON as a form unless told otherwise: a body that looks like JSON is read as JSON.
  if (type.includes('application/x-www-form-urlencoded') && !text.trimStart().startsWith('{'))
    return Object.fromEntries(new URLSearchParams(text));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError('The request body is not valid JSON.', 'InvalidJSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BadRequestError('The request body must be a JSON object.', 'InvalidJSON');
  }
  return value as Record<string, unknown>;
}

/** How much of a refused body is read and dropped, so that a client still sending it can read the 413. */
const DISCARD_MAX_BYTES = 32 * 1024 * 1024;
const DISCARD_MAX_MS = 5000;

/**
 * Reads and drops the rest of a refused body, within bounds: closing at once would make a client that is still
 * sending fail with a broken pipe instead of reading the 413. Past the bounds the connection is cut.
 */
function discardRest(ctx: Context): void {
  const req = ctx.req;
  let seen = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, DISCARD_MAX_MS).unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_MAX_BYTES) {
      clearTimeout(timer);
      cut();
    }
  });
  req.once('close', () => clearTimeout(timer)); // the body ended, or the client went away
  req.resume();
}

/** Middleware: parses the body of POST/PUT/PATCH into ctx.request.body. */
export function bodyReader(limit: number) {
  return async function readBody(ctx: Context, next: Next): Promise<void> {
    ctx.request.body = {};
    ctx.request.rawBody = '';
    if (['POST', 'PUT', 'PATCH'].includes(ctx.method)) {
      const declared = Number(ctx.get('content-length') || NaN);
      let text: string;
      try {
        // With a declared length over the limit, raw-body refuses before reading a byte.
        text = await getRawBody(ctx.req, { limit, length: Number.isFinite(declared) ? declared : undefined, encoding: 'utf8' });
      } catch (err) {
        const type = (err as { type?: string }).type;
        if (type === 'entity.too.large') {
          discardRest(ctx);
          throw new TooLargeError(limit);
        }
        throw new BadRequestError('The request body could not be read completely.', 'BadBody');
      }
      ctx.request.rawBody = text;
      ctx.request.body = parse(text, ctx.get('content-type'));
    }
    await next();
  };
}
