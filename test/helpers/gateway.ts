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
  /** Starts the real SDK agent of web1 with a handler and waits until the gateway sees it online. */
  startAgent(handler: JobHandler): Promise<RunningAgent>;
  stop(): Promise<void>;
}

/** An SDK agent started by startAgent. */
export interface RunningAgent {
  /** Stops it and waits for its loop to end. */
  stop(): Promise<void>;
}

/** Starts `skadi serve` with extra SKADI_* settings (SKADI_SECRET is TEST_SECRET unless given). */
export async function startGateway(settings: Record<string, string> = {}): Promise<Gateway> {
  ensureBuilt();
  const name = uniqueName();
  const env = { SKADI_MYSQL_URL: `${MYSQL_ROOT}/${name}`, ...redisEnv(), SKADI_REDIS_PREFIX: `${name}:`, SKADI_LOG_LEVEL: 'info', SKADI_SECRET: TEST_SECRET, ...settings };
  const serve = await startServe(env);
  const core = await openCore(testConfig(name, { secret: env.SKADI_SECRET }));
  const { userToken, agentToken, agent } = await userWithAgent(core, 'ops', 'web1');
  const base = `http://127.0.0.1:${serve.port}`;
  return {
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
    async startAgent(handler) {
      const sdk = new Agent({ server: base, token: agentToken });
      const loop = sdk.start(handler);
      await eventually(() => core.agents.isOnline(agent.id), 10_000, 'the agent to poll');
      return { stop: async () => (await sdk.stop(), await loop) };
    },
    async stop() {
      await stopChild(serve.child);
      await core.close();
      await dropNamespace(name);
    },
  };
}
