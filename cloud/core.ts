/** Wires the core together: MySQL, Redis, the services, and (for `serve`) the background loops. */
import type { Logger } from 'pino';
import type { Config } from '../config';
import { AgentService, ROW_CHANGE } from './agents/agent-service';
import { Approvals } from './approvals/decisions';
import { Dispatcher, QueueActivity } from './agents/long-polls';
import { EventLog } from './lifecycle/events';
import { HandOut } from './lifecycle/hand-out';
import { JobService } from './lifecycle/job-service';
import { Transitions } from './lifecycle/transitions';
import { JobWaiters } from './lifecycle/job-waiters';
import { RedisKeys } from './queue/keys';
import { RedisState } from './queue/redis-state';
import { checkRedis, connectRedis, type RedisClient } from './queue/redis';
import { Reconciler } from './lifecycle/reconciler';
import { Signals } from './queue/signals';
import { AgentRepo } from './store/agents';
import { describeMysql, ensureDatabase, openDb, type Db } from './store/db';
import { DelayedJobRepo } from './store/delayed';
import { JobRepo } from './store/jobs';
import { migrate } from './store/migrate';
import { UserRepo } from './store/users';
import { Sweeper } from './lifecycle/sweeper';
import { UserService } from './accounts/users';
import type { AdapterServices, ChannelAdapter, InboundHandler } from '../adapters/contract';
import { createChatHandler } from './chat/inbound';
import { createCommandPort } from './chat/command-port';
import { IdentityService } from './accounts/identities';
import { Notifier } from './notifier/notifier';
import { ConversationGate } from './notifier/conversation-gate';
import type { UserRoute } from './notifier/deliver';
import { Pacer } from '../adapters/pacer';
import { IdentityRepo } from './store/identities';
import { TtlCache } from './accounts/ttl-cache';
import { CallbackGuard, type HostResolver } from './notifier/callback-guard';
import type { CallbackKeys } from './accounts/callback-secret';
import { createAdapterServices } from './chat/adapter-services';

/** Start-up could not reach a dependency; the message says which, where, and what to do. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** The running core of one process. */
export interface Core {
  config: Config;
  log: Logger;
  db: Db;
  redis: RedisClient;
  keys: RedisKeys;
  queue: RedisState;
  events: EventLog;
  users: UserService;
  agents: AgentService;
  jobs: JobService;
  approvals: Approvals;
  jobRepo: JobRepo;
  dispatcher: Dispatcher;
  waiters: JobWaiters;
  sweeper: Sweeper;
  reconciler: Reconciler;
  identities: IdentityService;
  identityRepo: IdentityRepo;
  /** Leases and relays between the gateway nodes, lent to the chat adapters at start. */
  adapterServices: AdapterServices;
  /** The inbound handler of a chat adapter: de-duplicate, check the sender, run the command. */
  chatHandler(adapter: ChannelAdapter): InboundHandler;
  /** Starts delivering events (chat answers, notifications, callbacks) through these adapters. */
  startNotifier(adapters: ChannelAdapter[]): Promise<Notifier>;
  /** Events read by this process's notifiers and not finished yet (the metric skadi_notifier_in_flight). */
  notifierInFlight(): number;
  /** Starts pub/sub, the sweeper and the reconciler (only `serve` needs them). */
  startBackground(): Promise<void>;
  /** Checks that MySQL and Redis answer; throws otherwise. */
  checkReady(): Promise<void>;
  close(): Promise<void>;
}

const NO_SECRET_WARNING =
  'SKADI_SECRET is not set: job callbacks are signed only with the legacy key (the SHA-256 of the user token, which anyone who can read the database can compute). Set SKADI_SECRET to the same random value on every node (openssl rand -hex 32).';

/** Options of createCore. */
export interface CoreOptions {
  config: Config;
  log: Logger;
  /** Apply migrations at start (serve and migrate do; tests do too). */
  migrate?: boolean;
  /** Resolves the host names of callback URLs, at push and at delivery (default: the system resolver; tests inject one). */
  resolveHost?: HostResolver;
}

async function connectMysql(config: Config, runMigrations: boolean, log: Logger): Promise<Db> {
  const where = describeMysql(config.mysqlUrl);
  try {
    await ensureDatabase(config.mysqlUrl);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StartupError(
      `Cannot reach MySQL at ${where} (${code}). Start MariaDB (scripts/services.sh does) or point SKADI_MYSQL_URL at your server.`,
    );
  }
  const db = openDb(config.mysqlUrl);
  if (runMigrations) {
    try {
      const applied = await migrate(db, (name) => log.info({ migration: name }, 'applied migration'));
      if (applied.length) log.info({ count: applied.length }, 'database schema up to date');
    } catch (err) {
      await db.close(); // an open pool would keep a process that cannot start from exiting
      throw err;
    }
  }
  return db;
}

async function connectRedisOrExplain(config: Config, name: string, autoPipelining = false): Promise<RedisClient> {
  try {
    return await connectRedis(
      { url: config.redisUrl, cluster: config.redisCluster },
      { failFast: true, connectionName: name, autoPipelining },
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (config.redisCluster.length) {
      throw new StartupError(
        `Cannot reach the Redis Cluster at ${config.redisCluster.join(',')} (${code}). Start it (scripts/redis-cluster.sh start does) or fix SKADI_REDIS_CLUSTER.`,
      );
    }
    throw new StartupError(
      `Cannot reach Redis at ${new URL(config.redisUrl).host} (${code}). Start Redis (scripts/services.sh does) or point SKADI_REDIS_URL at your server.`,
    );
  }
}

/** Connects to MySQL and Redis and builds the services. */
export async function createCore(options: CoreOptions): Promise<Core> {
  const { config, log } = options;
  const db = await connectMysql(config, options.migrate ?? true, log);
  let redis: RedisClient;
  try {
    redis = await connectRedisOrExplain(config, 'skadi', true);
  } catch (err) {
    await db.close();
    throw err;
  }
  const keys = new RedisKeys(config.redisPrefix);
  const queueActivity = new QueueActivity();
  const queue = new RedisState(redis, keys, (agentId) => queueActivity.note(agentId));
  const events = new EventLog(redis, keys, config.eventMaxLen, log.child({ part: 'events' }), () => queue.hasEpoch());
  const transitions = new Transitions(queue, events, log);
  const jobRepo = new JobRepo(db, (returned) => transitions.requeueReturned(returned));
  const agentRepo = new AgentRepo(db.pool);
  const delayedRepo = new DelayedJobRepo(db);
  const users = new UserService(new UserRepo(db.pool), (hash) => queue.publishAuthChange(hash), config.secret);
  const callbackGuard = new CallbackGuard(config.callbackAllow, options.resolveHost);
  const callbackKeys = new TtlCache<number, CallbackKeys | null>(10_000);
  /** Where each user's notifications go, shared by this node's notifiers; dropped when a user's settings change anywhere. */
  const notifyRoutes = new TtlCache<number, Promise<UserRoute>>(5000);
  const offlineAfterMs = config.agentOfflineAfterMs;
  const agents = new AgentService({ db, agents: agentRepo, jobs: jobRepo, queue, events, offlineAfterMs, log });
  const handOut = new HandOut({ jobs: jobRepo, queue, transitions, leaseMs: config.jobLeaseMs, log });
  const dispatcher = new Dispatcher(
    handOut,
    queueActivity,
    agents,
    log,
    Math.max(50, Math.min(offlineAfterMs / 3, 10_000)),
    config.maxPollsPerAgent,
  );
  const jobs = new JobService({
    db,
    jobs: jobRepo,
    delayed: delayedRepo,
    agentRepo,
    agents,
    queue,
    transitions,
    handOut,
    polls: dispatcher,
    callbackGuard,
    leaseMs: config.jobLeaseMs,
    approvalTimeoutMs: config.approvalTimeoutMs,
    delayedWaitMs: config.delayedWaitMs,
    log,
  });
  const approvals = new Approvals({ jobs: jobRepo, agents, transitions, log });
  const waiters = new JobWaiters(jobs);
  const sweeper = new Sweeper(queue, jobs, approvals, agents, offlineAfterMs, log);
  const identityRepo = new IdentityRepo(db.pool);
  const reconciler = new Reconciler({ queue, jobs, agents, jobRepo, agentRepo, delayedRepo, identityRepo, events, offlineAfterMs, log });
  const identities = new IdentityService(identityRepo, users);
  const port = createCommandPort({
    users,
    agents,
    jobs,
    approvals,
    identities: identityRepo,
    approvalTimeoutMs: config.approvalTimeoutMs,
    announceUserChange: (userId) => queue.publishAuthChange(`user:${userId}`),
  });
  let subscriber: RedisClient | null = null;
  const notifiers: Notifier[] = [];
  const adapterServices = createAdapterServices({
    redis,
    keys,
    connect: (name) => connectRedisOrExplain(config, name),
    log: log.child({ part: 'adapter-services' }),
  });

  return {
    config,
    log,
    db,
    redis,
    keys,
    queue,
    events,
    users,
    agents,
    jobs,
    approvals,
    jobRepo,
    dispatcher,
    waiters,
    sweeper,
    reconciler,
    identities,
    identityRepo,
    adapterServices,
    chatHandler: (adapter) => createChatHandler(adapter, { identities, identityRepo, port, log }),
    async startNotifier(adapters) {
      const [jobConn, messageConn] = await Promise.all([
        connectRedisOrExplain(config, 'skadi-notify-jobs'),
        connectRedisOrExplain(config, 'skadi-notify-messages'),
      ]);
      const notifier = new Notifier(
        redis,
        [
          { stream: keys.jobStatusStream, kind: 'job:status', conn: jobConn },
          { stream: keys.messageStream, kind: 'message', conn: messageConn },
        ],
        {
          jobs: jobRepo,
          users: new UserRepo(db.pool),
          identities: identityRepo,
          adapters: new Map(adapters.map((a) => [a.name, a])),
          pacer: new Pacer(config.notifyPaceMs),
          gate: new ConversationGate(config.notifyMaxInFlightPerConversation),
          log,
          routes: notifyRoutes,
          callbackKeys,
          callbackGuard,
          callbackTimeoutMs: config.callbackTimeoutMs,
          serverSecret: config.secret,
        },
        {
          maxAttempts: config.notifyMaxAttempts,
          retryBaseMs: config.notifyRetryBaseMs,
          reclaimIdleMs: config.notifyReclaimIdleMs,
          maxInFlight: config.notifyMaxInFlight,
        },
        log.child({ part: 'notifier' }),
      );
      if (!config.secret) log.warn(NO_SECRET_WARNING);
      await notifier.start();
      notifiers.push(notifier);
      return notifier;
    },
    notifierInFlight: () => notifiers.reduce((n, notifier) => n + notifier.load().inFlight, 0),
    async startBackground() {
      subscriber = await connectRedisOrExplain(config, 'skadi-sub');
      const signals = new Signals(subscriber, keys);
      signals.onWake((agentId) => dispatcher.wake(agentId));
      signals.onDone((jobId) => waiters.notify(jobId));
      signals.onAuthChange((key) => {
        agents.invalidateCached(key);
        users.invalidateCached(key);
        if (!key.startsWith(ROW_CHANGE)) dispatcher.endPollsOf(key);
        callbackKeys.clear(); // a user's token or callback secret changed on some node
        if (key.startsWith('user:')) notifyRoutes.delete(Number(key.slice(5))); // e.g. `notify here`
      });
      await signals.start();
      await reconciler.reconcileOnce().catch((err) => log.warn({ err }, 'first reconciliation failed; retrying periodically'));
      dispatcher.start();
      sweeper.start(config.sweepIntervalMs);
      reconciler.start(config.reconcileIntervalMs, config.sweepIntervalMs);
    },
    async checkReady() {
      await db.pool.query('SELECT 1');
      await checkRedis(redis);
    },
    async close() {
      sweeper.stop();
      reconciler.stop();
      dispatcher.stop();
      await Promise.all(notifiers.map((n) => n.stop()));
      await adapterServices.close();
      await agents.flushSeen().catch(() => undefined);
      await events.flush();
      subscriber?.disconnect();
      redis.disconnect();
      await db.close();
    },
  };
}
