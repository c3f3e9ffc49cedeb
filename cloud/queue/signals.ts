/** One Redis pub/sub subscription per node, fanning wake-ups, job completions and token changes out in-process. */
import type { RedisClient } from './redis';
import type { RedisKeys } from './keys';

type Listener = (payload: string) => void;

/** In-process listeners of the node's single subscription. */
export class Signals {
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly subscriber: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    subscriber.on('message', (channel: string, payload: string) => {
      for (const fn of this.listeners.get(channel) ?? []) fn(payload);
    });
  }

  /** Subscribes to the channels; resolves once Redis confirmed. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.keys.wakeChannel, this.keys.doneChannel, this.keys.authChannel);
  }

  /** fn(agentId) runs when a job is queued for an agent, on any node. */
  onWake(fn: (agentId: number) => void): () => void {
    return this.listen(this.keys.wakeChannel, (payload) => fn(Number(payload)));
  }

  /** fn(jobId) runs when a job reaches a terminal status, on any node. */
  onDone(fn: (jobId: string) => void): () => void {
    return this.listen(this.keys.doneChannel, fn);
  }

  /** fn(tokenHash) runs when a token is rotated or its owner removed, on any node. */
  onAuthChange(fn: (tokenHash: string) => void): () => void {
    return this.listen(this.keys.authChannel, fn);
  }

  private listen(channel: string, fn: Listener): () => void {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Closes the subscription. */
  stop(): void {
    this.subscriber.disconnect();
  }
}
