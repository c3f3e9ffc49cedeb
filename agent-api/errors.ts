/** The error edge: every failure becomes the JSON body {"error","message"}; a 500 is logged as a bug. */
import type { Context, Next } from 'koa';
import type { z } from 'zod';
import { BadRequestError, toSkadiError, type ErrorBody } from '../cloud/errors';

/** Validates input with a zod schema; failures become 400 naming the field. */
export function validate<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new BadRequestError(`${where}${issue.message}`);
}

/** Middleware: maps errors to JSON; expected ones show their message, anything else is a 500 and logged. */
export async function errorEdge(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { error: 'NotFound', message: `No route ${ctx.method} ${ctx.path}.` } satisfies ErrorBody;
    } else if (ctx.status === 405 && !ctx.body) {
      ctx.body = {
        error: 'MethodNotAllowed',
        message: `${ctx.method} is not allowed on ${ctx.path}; use ${ctx.response.get('Allow')}.`,
      } satisfies ErrorBody;
    }
  } catch (err) {
    const known = toSkadiError(err);
    if (known) {
      ctx.status = known.status;
      ctx.body = { error: known.code, message: known.message } satisfies ErrorBody;
      if ('retryAfterMs' in known) ctx.set('Retry-After', String(Math.ceil(Number(known.retryAfterMs) / 1000)));
      if (known.status === 503) ctx.state.log?.warn({ err }, 'dependency unavailable');
      return;
    }
    const status = (err as { status?: number; expose?: boolean }).status;
    if (status && status >= 400 && status < 500) {
      ctx.status = status;
      ctx.body = { error: 'BadRequest', message: (err as Error).message } satisfies ErrorBody;
      return;
    }
    ctx.state.log?.error({ err }, 'unexpected error');
    ctx.status = 500;
    ctx.body = { error: 'ServerError', message: 'An unexpected error happened on the server; it has been logged.' } satisfies ErrorBody;
  }
}
