/** The user API: `Authorization: Bearer <user token>`, and GET one-liners with `?token=&msg=` for shells and CI. */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Core } from '../cloud/core';
import { userTokenCredential } from '../cloud/approvals/credentials';
import { NotFoundError } from '../cloud/errors';
import { isJobId } from '../cloud/lifecycle/job-id';
import type { UserRow } from '../cloud/store/users';
import { userToken } from './auth';
import { validate } from './errors';
import { jobJson } from './job-json';
import { denyBody, jobAddBody, MESSAGE_KINDS, messageBody, waitQuery } from './schemas';

type Guard = (ctx: Context, fn: () => Promise<void>) => Promise<void>;

/** Authenticates the user of a request. */
async function authUser(core: Core, guard: Guard, ctx: Context): Promise<UserRow> {
  let user!: UserRow;
  await guard(ctx, async () => {
    user = await core.users.authenticate(userToken(ctx));
  });
  ctx.state.userId = user.id;
  return user;
}

/** The body of a POST, or the `?msg=` of a GET form, as {message, ...}. */
function messageInput(ctx: Context): Record<string, unknown> {
  if (ctx.method !== 'GET') return ctx.request.body;
  const { msg, message, source, color, callback } = ctx.query;
  return Object.fromEntries(Object.entries({ message: msg ?? message, source, color, callback }).filter(([, v]) => v !== undefined));
}

/** Routes of the user API and GET /status. */
export function userRoutes(core: Core, guard: Guard): Router {
  const router = new Router();
  const wait = waitQuery(core.config.maxWaitSeconds);

  router.get('/status', (ctx) => {
    ctx.status = 204;
  });

  const addJob = async (ctx: Context) => {
    const user = await authUser(core, guard, ctx);
    const body = validate(jobAddBody, messageInput(ctx));
    ctx.status = 201;
    ctx.body = await core.jobs.pushText(user.id, body.message, {
      source: 'api',
      callback: body.callback || null,
      pushedBy: userTokenCredential(user),
    });
  };
  router.post('/job/add', addJob);
  router.get('/job/add', addJob);

  router.get('/jobs/:id', async (ctx) => {
    const user = await authUser(core, guard, ctx);
    const id = ctx.params.id;
    if (!isJobId(id)) throw new NotFoundError(`There is no job ${id.slice(0, 40)}.`, 'JobNotFound');
    const { wait: seconds } = validate(wait, ctx.query);
    const abort = new AbortController();
    ctx.res.once('close', () => abort.abort());
    const job = seconds > 0 ? await core.waiters.waitTerminal(id, user.id, seconds * 1000, abort.signal) : await core.jobs.get(id, user.id);
    ctx.body = jobJson(job);
  });

  router.post('/jobs/:id/cancel', async (ctx) => {
    const user = await authUser(core, guard, ctx);
    const id = ctx.params.id;
    if (!isJobId(id)) throw new NotFoundError(`There is no job ${id.slice(0, 40)}.`, 'JobNotFound');
    ctx.body = jobJson(await core.jobs.cancel(user.id, id));
  });

  // Approval through the API is for jobs pushed through the API (CI flows); a job asked for in chat needs another
  // person's chat account. The token that pushed a job, or one handed to the same person, cannot approve it.
  router.post('/jobs/:id/approve', async (ctx) => {
    const user = await authUser(core, guard, ctx);
    const id = ctx.params.id;
    if (!isJobId(id)) throw new NotFoundError(`There is no job ${id.slice(0, 40)}.`, 'JobNotFound');
    ctx.body = jobJson(
      await core.approvals.approve(id, { userId: user.id, credential: userTokenCredential(user), via: 'api', label: `api (${user.name})` }),
    );
  });

  router.post('/jobs/:id/deny', async (ctx) => {
    const user = await authUser(core, guard, ctx);
    const id = ctx.params.id;
    if (!isJobId(id)) throw new NotFoundError(`There is no job ${id.slice(0, 40)}.`, 'JobNotFound');
    const { reason } = validate(denyBody, ctx.request.body ?? {});
    ctx.body = jobJson(
      await core.approvals.deny(
        id,
        { userId: user.id, credential: userTokenCredential(user), via: 'api', label: `api (${user.name})` },
        reason,
      ),
    );
  });

  for (const kind of MESSAGE_KINDS) {
    const send = async (ctx: Context) => {
      const user = await authUser(core, guard, ctx);
      const body = validate(messageBody, messageInput(ctx));
      const event = await core.events.message({
        kind,
        user_id: user.id,
        message: body.message,
        source: body.source ?? 'api',
        color: body.color,
      });
      ctx.status = 201;
      ctx.body = { id: event.id };
    };
    router.post(`/message/${kind}`, send);
    router.get(`/message/${kind}`, send);
  }
  return router;
}
