/**
 * The Microsoft Teams adapter: botbuilder's CloudAdapter verifies and parses POST /api/messages on the gateway's port;
 * answers go proactively through the Bot Connector from the stored conversation reference, in the same reply chain.
 */
import type Router from '@koa/router';
import { CloudAdapter, type Activity, type TurnContext } from 'botbuilder';
import { AuthenticationConstants, type ConnectorClient } from 'botframework-connector';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { AdapterError, type ChannelAdapter, type InboundMessage, type OutboundMessage } from '../contract';
import { InboundWork } from '../inbound-work';
import { authOutcomes, createTeamsAuthentication, emulatorRefusal, type AuthOutcome } from './auth';
import { teamsConfigFrom, teamsConfigProblem, teamsEnabled, type TeamsAdapterConfig } from './config';
import { conversationTenantOf, needsRosterLookup, normalizeActivity, rosterOf, senderTenantOf, type RosterAccount } from './inbound';
import { renderActivity, translateTeamsError } from './outbound';
import { conversationReference, decodeRef, encodeRef, postedRef, type TeamsRef } from './reply-ref';
import { withSdkLogger } from './sdk-console';

export { teamsConfigFrom, teamsConfigProblem, teamsEnabled, type TeamsAdapterConfig };

/** Teams' limits per bot and conversation: 7 messages a second, 8 in 2 s, 60 in 30 s, 1,800 an hour. */
const TEAMS_RATE_LIMITS = [
  { count: 7, windowMs: 1000 },
  { count: 8, windowMs: 2000 },
  { count: 60, windowMs: 30_000 },
  { count: 1800, windowMs: 3_600_000 },
];

/** How long the roster may take to name a sender's tenant; past it the tenant is unknown. */
const ROSTER_TIMEOUT_MS = 10_000;

/**
 * The sender's account in the roster of the conversation (rosterOf), through the turn's Bot Connector client;
 * null when the roster does not know them, cannot be reached in time, or answers anything else.
 */
async function rosterAccount(turn: TurnContext, log: Logger): Promise<RosterAccount | null> {
  const activity = turn.activity;
  const client = turn.turnState.get<ConnectorClient>(turn.adapter.ConnectorClientKey);
  let timer: NodeJS.Timeout | undefined;
  try {
    if (!client) throw new Error('the turn has no Bot Connector client');
    const asked = client.conversations.getConversationMember(rosterOf(activity), activity.from.id);
    const timeout = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error('the roster did not answer in time')), ROSTER_TIMEOUT_MS)),
    );
    const answer = await Promise.race([asked, timeout]);
    const body = answer._response?.parsedBody ?? answer;
    return body && typeof body === 'object' ? (body as RosterAccount) : null;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    log.info(
      {
        status,
        reason: String((err as Error)?.message ?? err)
          .split('\n')[0]
          .slice(0, 200),
        activityId: activity.id,
      },
      "the roster did not name the Teams sender's tenant; the sender counts as unknown",
    );
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The message with its sender's own tenant, from the roster when the conversation may hold people of other tenants. */
async function withSenderTenant(turn: TurnContext, message: InboundMessage, log: Logger): Promise<InboundMessage> {
  return { ...message, tenant: senderTenantOf(turn.activity, await rosterAccount(turn, log)) };
}

/** The express-like request and response botbuilder's CloudAdapter.process reads and writes, over a Koa context. */
function processShims(ctx: Context) {
  const answer: { status: number; body?: unknown } = { status: 200 };
  const res = {
    socket: ctx.req.socket,
    status(code: number) {
      answer.status = code;
      return res;
    },
    header(name: string, value: unknown) {
      ctx.set(name, String(value));
      return res;
    },
    send(body: unknown) {
      answer.body = body;
      return res;
    },
    end() {
      return res;
    },
  };
  const req = {
    method: ctx.method,
    headers: ctx.headers as Record<string, string | string[] | undefined>,
    body: ctx.request.body as Record<string, unknown>,
  };
  return { req, res, answer };
}

/** Creates the Teams adapter (see teamsEnabled for when to, and teamsConfigProblem for settings that cannot work). */
export function createTeamsAdapter(config: TeamsAdapterConfig, log: Logger): ChannelAdapter {
  const cloud = new CloudAdapter(createTeamsAuthentication(config));
  const botAppId = config.insecureNoAuth ? '' : config.appId;
  /** The service URL and bot account last seen in each tenant, for private chats with people who have not written yet. */
  const seen = new Map<string, { serviceUrl: string; botId: string }>();
  const work = new InboundWork(log, 'Teams');

  /** The turn of a verified activity: normalize it, remember where its tenant is served, hand it on. */
  const onTurn = async (turn: TurnContext) => {
    const activity = turn.activity;
    const accepted = config.insecureNoAuth ? emulatorRefusal(activity) === null : activity.channelId === 'msteams';
    if (!accepted) {
      log.info({ channelId: activity.channelId }, 'activity from a channel other than Teams ignored');
      return;
    }
    let verdict: ReturnType<typeof normalizeActivity>;
    try {
      verdict = normalizeActivity(activity);
    } catch (err) {
      log.error({ err, activityId: activity.id }, 'a Teams activity could not be read; ignored');
      return;
    }
    if ('ignored' in verdict) {
      log.debug({ activityId: activity.id, reason: verdict.ignored }, 'Teams activity ignored');
      return;
    }
    const hostTenant = conversationTenantOf(activity);
    if (hostTenant) seen.set(hostTenant, { serviceUrl: activity.serviceUrl, botId: activity.recipient.id });
    // After the HTTP answer; in a channel or group chat, once the roster has named the sender's own tenant.
    work.deliver(needsRosterLookup(activity) ? withSenderTenant(turn, verdict.message, log) : verdict.message);
  };

  /** POST /api/messages: botbuilder authenticates and parses; every failure to authenticate is a 401. */
  const handle = async (ctx: Context) => {
    const insecure = config.insecureNoAuth ? emulatorRefusal(ctx.request.body) : null;
    if (insecure) {
      log.warn({ reason: insecure }, 'unauthenticated Teams request refused (SKADI_TEAMS_INSECURE_NO_AUTH is on)');
      ctx.status = 401;
      ctx.body = { error: 'Unauthorized', message: `SKADI_TEAMS_INSECURE_NO_AUTH is on: ${insecure}.` };
      return;
    }
    const { req, res, answer } = processShims(ctx);
    const outcome: AuthOutcome = {};
    try {
      await withSdkLogger(log, () => authOutcomes.run(outcome, () => cloud.process(req, res, onTurn)));
    } catch (err) {
      log.info(
        {
          reason: String((err as Error)?.message ?? err)
            .split('\n')[0]
            .slice(0, 200),
        },
        'Teams request with a malformed activity refused',
      );
      ctx.status = 400;
      ctx.body = { error: 'BadRequest', message: 'The body is not a Bot Framework activity.' };
      return;
    }
    if (outcome.unavailable) {
      log.warn({ reason: outcome.unavailable }, 'the Bot Framework signing keys could not be loaded; Teams request answered 503');
      ctx.status = 503;
      ctx.body = { error: 'Unavailable', message: 'The signing keys of the Bot Framework could not be loaded; try again.' };
    } else if (outcome.refused || answer.status === 401) {
      log.warn({ reason: outcome.refused }, 'Teams request with a missing or invalid token refused');
      ctx.status = 401;
      ctx.body = { error: 'Unauthorized', message: 'The Bot Framework token is missing, invalid, expired or not meant for this bot.' };
    } else if (answer.status >= 500) {
      log.error({ detail: String(answer.body ?? '').slice(0, 300) }, 'a Teams activity could not be processed');
      ctx.status = 503;
      ctx.body = { error: 'Unavailable', message: 'The activity could not be processed; try again.' };
    } else {
      ctx.status = answer.status;
      ctx.body = answer.body ?? '';
    }
  };

  /** Runs logic in a proactive turn of the conversation, with the SDK's output on our logger and its errors translated. */
  const inConversation = async (ref: TeamsRef, logic: (turn: TurnContext) => Promise<void>): Promise<void> => {
    try {
      await withSdkLogger(log, () =>
        cloud.continueConversationAsync(botAppId, conversationReference(ref), (turn) => {
          // The continuation activity gets a made-up id, which sendActivity would use as replyToId: post to the conversation.
          turn.activity.id = undefined as unknown as string;
          return logic(turn);
        }),
      );
    } catch (err) {
      throw translateTeamsError(err);
    }
  };

  const send = async (replyTo: string, message: OutboundMessage): Promise<string> => {
    if (message.replaces) {
      const target = decodeRef(message.replaces);
      if (!target.m) throw translateTeamsError(new Error('the reference names no message to update'));
      await inConversation(target, async (turn) => {
        await turn.updateActivity({ ...renderActivity(message), id: target.m } as Partial<Activity>);
      });
      return message.replaces;
    }
    const where = decodeRef(replyTo);
    let posted = '';
    await inConversation(where, async (turn) => {
      posted = (await turn.sendActivity(renderActivity(message)))?.id ?? '';
    });
    return encodeRef(postedRef(where, posted));
  };

  /** Opens (or finds) the personal chat with a person and posts there; Teams refuses when the bot is not installed for them. */
  const sendPrivate = async (tenant: string, personId: string, message: OutboundMessage): Promise<string> => {
    if (!tenant) throw new AdapterError('invalid', "the person's organization is not known, so no personal chat can be opened with them");
    const known = seen.get(tenant);
    const serviceUrl = known?.serviceUrl ?? config.serviceUrl;
    const botId = known?.botId ?? `28:${config.appId}`;
    let ref: TeamsRef | null = null;
    try {
      await withSdkLogger(log, () =>
        cloud.createConversationAsync(
          botAppId,
          'msteams',
          serviceUrl,
          AuthenticationConstants.ToChannelFromBotOAuthScope,
          {
            isGroup: false,
            bot: { id: botId, name: '' },
            members: [{ id: personId, name: '' }],
            tenantId: tenant,
            channelData: { tenant: { id: tenant } },
          } as never,
          async (turn) => {
            turn.activity.id = undefined as unknown as string; // else sendActivity replies to the conversation's id
            const where: TeamsRef = { s: serviceUrl, c: String(turn.activity.conversation.id), k: 'personal', tn: tenant, b: botId };
            const posted = (await turn.sendActivity(renderActivity(message)))?.id ?? '';
            ref = postedRef(where, posted);
          },
        ),
      );
    } catch (err) {
      throw translateTeamsError(err);
    }
    if (!ref) throw translateTeamsError(new Error('Teams created the personal conversation but did not run its turn'));
    return encodeRef(ref);
  };

  return {
    name: 'teams',
    access: { mode: config.access, tenants: config.allowedTenants },
    rateLimits: TEAMS_RATE_LIMITS,
    mount(router: Router) {
      router.post('/api/messages', handle);
    },
    async start(handler) {
      work.start(handler);
      if (config.insecureNoAuth)
        log.warn(
          'SKADI_TEAMS_INSECURE_NO_AUTH is on: /api/messages accepts requests WITHOUT authentication. Use it only with the Bot Framework Emulator, never in production.',
        );
    },
    send,
    sendPrivate,
    conversationKey: (replyTo) => decodeRef(replyTo).c,
    stop: () => work.stop(),
  };
}
