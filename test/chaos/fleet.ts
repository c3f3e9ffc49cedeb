/** What the chaos tests share: a free port, and a fleet of SDK agents that record every job they run. */
import net from 'node:net';
import { Agent } from '../../agent/sdk';
import type { Core } from '../../cloud/core';
import { eventually } from '../helpers/env';

/** A free TCP port on loopback (for a process that must come back on the same port). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Agents of one user, spread over the given servers, counting how often each job id ran. */
export interface Fleet {
  names: string[];
  /** job id -> times executed (more than 1 would break "at most once"). */
  executed: Map<string, number>;
  stop(): Promise<void>;
}

/** Creates `count` agents for the user and starts them (agent i talks to servers[i % servers.length]); resolves once all are online. */
export async function startFleet(core: Core, userId: number, prefix: string, count: number, servers: string[]): Promise<Fleet> {
  const executed = new Map<string, number>();
  const names: string[] = [];
  const agents: Agent[] = [];
  const runs: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const { agent, token } = await core.agents.create(userId, `${prefix}${i}`);
    names.push(agent.name);
    const sdk = new Agent({ server: servers[i % servers.length], token, waitSeconds: 5, backoff: { minMs: 100, maxMs: 800 } });
    agents.push(sdk);
    runs.push(
      sdk.start((job) => {
        executed.set(job.id, (executed.get(job.id) ?? 0) + 1);
        return 'done';
      }),
    );
  }
  await eventually(async () => (await core.queue.onlineCount()) === count, 15_000, 'agents online');
  return {
    names,
    executed,
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    },
  };
}
