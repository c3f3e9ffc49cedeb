/** A real `skadi serve` child process on a fresh namespace, with an admin core on the same database for setup. */
import type { ChildProcess } from 'node:child_process';
import type { Core } from '../../cloud/core';
import { dropNamespace, MYSQL_ROOT, openCore, redisEnv, TEST_SECRET, testConfig, uniqueName, userWithAgent } from './env';
import { Agent, type JobHandler } from '../../agent/sdk';
import { call } from './http';
import { eventually } from './env';
import { ensureBuilt, startServe, stopChild } from './process';

/** A running gateway with one user and agent. */
export interface Gateway {
  base: string;
  port: number;
  core: Core;
  child: ChildProcess;
  userToken: string;
  agentToken: string;
  agentName: string;
  agentId: number;
  /** The SKADI_* variables of the gateway, for running `skadi` commands on the same installation. */
  env: Record<string, string>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Pushes "<agent> <text>" through the user API; returns the job id. */
  push(text: string, agent?: string): Promise<string>;
  /** Waits (up to seconds) for a job to end and returns it as the API shows it. */
  waitJob(id: string, seconds?: number): Promise<Record<string, any>>;
  /**
   * Starts the real SDK agent of web1 (or of another agent of the user, created when missing) with a handler and waits
   * until the gateway sees it online. stop() stops every agent still running, should a test not get to it.
   */
  startAgent(handler: JobHandler, agentName?: string): Promise<RunningAgent>;
  /** Creates another agent of the gateway's user; nothing takes its jobs until startAgent is given its name. */
  addAgent(name: string): Promise<{ id: number; name: string; token: string }>;
  /** How many jobs one agent of the user has (web1 unless named), whatever their status. */
  jobCount(agentName?: string): Promise<number>;
  /**
   * Pushes a job to an agent whose SDK agent runs (web1 unless named) and waits for it to succeed. An agent's queue is
   * first in, first out and the SDK agent runs one job at a time in that order: once this job has run, every job
   * queued for the agent before it has been handed to the agent's handler.
   */
  drainQueue(agentName?: string): Promise<void>;
  /**
   * Waits until the gateway's notifier has finished every event it has read (skadi_notifier_in_flight is 0). Once a
   * delivery of an event has been seen, this means the event's delivery is over, with everything else it would send.
   */
  notifierIdle(): Promise<void>;
  stop(): Promise<void>;
}

/** An SDK agent started by startAgent. */
export interface RunningAgent {
  /** The agent's name and id. */
  name: string;
  id: number;
  /** Stops it and waits for its loop to end (again: nothing more). */
  stop(): Promise<void>;
}

/** Starts `skadi serve` with extra SKADI_* settings (SKADI_SECRET is TEST_SECRET unless given). */
export async function startGateway(settings: Record<string, string> = {}): Promise<Gateway> {
  ensureBuilt();
  const name = uniqueName();
  const env = {
    SKADI_MYSQL_URL: `${MYSQL_ROOT}/${name}`,
    ...redisEnv(),
    SKADI_REDIS_PREFIX: `${name}:`,
    SKADI_LOG_LEVEL: 'info',
    SKADI_SECRET: TEST_SECRET,
    ...settings,
  };
  const serve = await startServe(env);
  const core = await openCore(testConfig(name, { secret: env.SKADI_SECRET }));
  const { userToken, agentToken, agent } = await userWithAgent(core, 'ops', 'web1');
  const base = `http://127.0.0.1:${serve.port}`;
  const running = new Set<RunningAgent>();
  const agentNamed = async (name: string) => {
    const found = (await core.agents.list(agent.userId)).find((a) => a.name === name);
    if (!found) throw new Error(`no agent ${name}`);
    return found;
  };
  const gateway: Gateway = {
    base,
    env,
    output: serve.output,
    port: serve.port,
    core,
    child: serve.child,
    userToken,
    agentToken,
    agentName: agent.name,
    agentId: agent.id,
    async push(text, agentName = agent.name) {
      const res = await call(base, 'POST', '/job/add', { token: userToken, body: { message: `${agentName} ${text}` } });
      if (res.status !== 201) throw new Error(`push failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id;
    },
    async waitJob(id, seconds = 30) {
      return (await call(base, 'GET', `/jobs/${id}?wait=${seconds}`, { token: userToken })).body;
    },
    async startAgent(handler, agentName = agent.name) {
      let target = { id: agent.id, name: agent.name, token: agentToken };
      if (agentName !== agent.name) {
        const existing = (await core.agents.list(agent.userId)).find((a) => a.name === agentName);
        target = existing
          ? { id: existing.id, name: existing.name, token: (await core.agents.rotateToken(agent.userId, agentName)).token }
          : await gateway.addAgent(agentName);
      }
      const sdk = new Agent({ server: base, token: target.token });
      const loop = sdk.start(handler);
      let stopped: Promise<void> | null = null;
      const handle: RunningAgent = {
        name: target.name,
        id: target.id,
        stop: () => (stopped ??= (async () => (running.delete(handle), await sdk.stop(), await loop))()),
      };
      running.add(handle);
      try {
        await eventually(() => core.agents.isOnline(target.id), 10_000, `the agent ${target.name} to poll`);
      } catch (err) {
        await handle.stop();
        throw err;
      }
      return handle;
    },
    async addAgent(name) {
      const { agent: created, token } = await core.agents.create(agent.userId, name);
      return { id: created.id, name: created.name, token };
    },
    async jobCount(agentName = agent.name) {
      const target = agentName === agent.name ? agent : await agentNamed(agentName);
      return (await core.jobs.list(null, target.id, 100_000)).length;
    },
    async drainQueue(agentName = agent.name) {
      const id = await gateway.push(`drain-${Math.random().toString(36).slice(2, 8)}`, agentName);
      const job = await gateway.waitJob(id);
      if (job.status !== 'succeeded') throw new Error(`the queue's sentinel job ${id} ended ${job.status}`);
    },
    async notifierIdle() {
      const inFlight = async () => /^skadi_notifier_in_flight (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1];
      await eventually(async () => (await inFlight()) === '0', 15_000, 'the notifier to finish the events it read');
    },
    async stop() {
      for (const started of [...running]) await started.stop().catch(() => undefined);
      await stopChild(serve.child);
      await core.close();
      await dropNamespace(name);
    },
  };
  return gateway;
}
