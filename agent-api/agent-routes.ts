/** The agent API: `Authorization: Bearer <agent token>`; an agent sees and reports only its own jobs. */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Core } from '../cloud/core';
import { agentCredential } from '../cloud/approvals/credentials';
import { NotFoundError } from '../cloud/errors';
import { isJobId } from '../cloud/lifecycle/job-id';
import type { AgentRow } from '../cloud/store/agents';
import { bearerToken, clientIp } from './auth';
import { validate } from './errors';
import { delayedBody, jobAddBody, MESSAGE_KINDS, messageBody, nextQuery, reportBody, waitQuery } from './schemas';

type AgentContext = Context & { state: { agent: AgentRow } };

/** Routes under /agent. */
export function agentRoutes(core: Core, authGuard: (ctx: Context, fn: () => Promise<void>) => Promise<void>): Router {
  const router = new Router({ prefix: '/agent' });
  const wait = waitQuery(core.config.maxWaitSeconds);

  router.use(async (ctx: Context, next: Next) => {
    await authGuard(ctx, async () => {
      ctx.state.agent = await core.agents.authenticate(bearerToken(ctx));
    });
    await next();
  });

  /** Answers with a job for the agent, waiting up to seconds for one: 200 with it, or 204. */
  const answerPoll = async (ctx: Context, seconds: number) => {
    const { agent } = (ctx as AgentContext).state;
    await core.agents.recordPoll(agent, clientIp(ctx));
    // The client may have gone while the request was authenticated: such a poll must never be handed a job.
    const connection = { closed: () => ctx.res.closed || ctx.req.socket.destroyed, onClose: (fn: () => void) => ctx.res.once('close', fn) };
    const job = await core.dispatcher.poll(agent, seconds * 1000, connection);
    if (job) {
      ctx.status = 200;
      ctx.body = { id: job.id, message: job.message };
    } else {
      ctx.status = 204;
    }
  };

  router.get('/job', async (ctx) => {
    const { wait: seconds } = validate(wait, ctx.query);
    await answerPoll(ctx, seconds);
  });

  const report = (status: 'running' | 'succeeded' | 'failed') => async (ctx: Context) => {
    const { agent } = (ctx as AgentContext).state;
    const id = ctx.params.id;
    if (!isJobId(id)) throw new NotFoundError(`There is no job ${id.slice(0, 40)} for this agent.`, 'JobNotFound');
    const { result } = validate(reportBody, ctx.request.body);
    const { next } = validate(nextQuery, ctx.query);
    await core.jobs.report(agent, id, status, result);
    // A final report with ?next=1 is also a poll that does not wait: a busy agent saves a request per job.
    if (status !== 'running' && (next === '1' || next === 'true')) return answerPoll(ctx, 0);
    ctx.status = 204;
  };
  router.put('/jobs/:id/running', report('running'));
  router.put('/jobs/:id/succeed', report('succeeded'));
  router.put('/jobs/:id/fail', report('failed'));

  router.post('/job/add', async (ctx) => {
    const { agent } = (ctx as AgentContext).state;
    const body = validate(jobAddBody, ctx.request.body);
    // As in the original agent API, a push to an offline agent is refused and nothing is stored.
    const from = { source: `agent:${agent.name}`, callback: body.callback || null, pushedBy: agentCredential(agent), refuseOffline: true };
    const pushed = await core.jobs.pushText(agent.userId, body.message, from);
    ctx.status = 201;
    ctx.body = pushed;
  });

  router.post('/job/delayed', async (ctx) => {
    const { agent } = (ctx as AgentContext).state;
    const body = validate(delayedBody, ctx.request.body);
    // The whole text is the job, as in the original; another of the user's agents is named only by `agent`.
    const target = body.agent ? await core.agents.byName(agent.userId, body.agent) : agent;
    const delayed = await core.jobs.delay(target, body.message, body.delayMs, {
      source: `delayed:${agent.name}`,
      callback: body.callback || null,
      pushedBy: agentCredential(agent),
    });
    ctx.status = 201;
    ctx.body = { id: delayed.id, agent: target.name, due_at: delayed.dueAt.toISOString() };
  });

  const message = (kind: (typeof MESSAGE_KINDS)[number]) => async (ctx: Context) => {
    const { agent } = (ctx as AgentContext).state;
    const body = validate(messageBody, ctx.request.body);
    const event = await core.events.message({
      kind,
      user_id: agent.userId,
      agent_id: agent.id,
      agent: agent.name,
      message: body.message,
      source: body.source,
      color: body.color,
    });
    ctx.status = 202;
    ctx.body = { id: event.id };
  };
  for (const kind of MESSAGE_KINDS) router.post(`/message/${kind}`, message(kind));
  router.post('/info', message('info'));
  router.post('/warning', message('warning'));
  router.post('/kf', message('text'));

  return router;
}
