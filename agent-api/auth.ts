/** Credentials at the HTTP edge: `Authorization: Bearer <token>`, or `?token=` on the GET one-liners. */
import type { Context } from 'koa';

/** The bearer token of a request, if any. */
export function bearerToken(ctx: Context): string | undefined {
  const header = ctx.get('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** The token of a user request: the bearer token, else `?token=` (GET forms only). */
export function userToken(ctx: Context): string | undefined {
  const bearer = bearerToken(ctx);
  if (bearer) return bearer;
  const query = ctx.query.token;
  return ctx.method === 'GET' && typeof query === 'string' ? query : undefined;
}

/** The client address: the socket's, or the one trusted proxies name (see client-address.ts, set by the server). */
export function clientIp(ctx: Context): string | null {
  return ctx.state.clientAddress ?? (ctx.request.ip || null);
}
