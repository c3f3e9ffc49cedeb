/** Every Redis key and channel name; all start with the configured prefix, and one agent's keys share a hash tag. */

/** The names of an installation's Redis keys. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** List of queued job ids of one agent, oldest first. */
  agentQueue(agentId: number): string {
    return `${this.prefix}{a${agentId}}:queue`;
  }

  /** Sorted set agent id -> time of last poll (ms). */
  get presenceSeen(): string {
    return `${this.prefix}{presence}:seen`;
  }

  /** Set of the agents believed online. */
  get presenceOnline(): string {
    return `${this.prefix}{presence}:online`;
  }

  /** Sorted set job id -> lease deadline (ms) of sent and running jobs. */
  get leases(): string {
    return `${this.prefix}{sweep}:leases`;
  }

  /** Sorted set delayed job id -> due time (ms). */
  get delayed(): string {
    return `${this.prefix}{sweep}:delayed`;
  }

  /** A lease one gateway node holds at a time (adapters use them, e.g. for the node logged in to a WeChat account). */
  nodeLease(name: string): string {
    return `${this.prefix}lease:${name}`;
  }

  /** List of requests relayed to the node serving `name`, oldest first. */
  relayRequests(name: string): string {
    return `${this.prefix}relay:${name}:requests`;
  }

  /** Channel of the answers to one node's relayed requests. */
  relayReplies(name: string, nodeId: string): string {
    return `${this.prefix}relay:${name}:replies:${nodeId}`;
  }

  /** Marker whose absence means Redis lost its data and must be rebuilt from MySQL. */
  get epoch(): string {
    return `${this.prefix}meta:epoch`;
  }

  /** The marker of one cluster master: the hash tag puts it on a slot that master serves. */
  epochOf(tag: string): string {
    return `${this.prefix}{${tag}}:epoch`;
  }

  /** Lock held by the node rebuilding Redis from MySQL. */
  get rebuildLock(): string {
    return `${this.prefix}meta:rebuild`;
  }

  /** Set of one key's event ids in the current window of the adapter counter `name`. */
  windowCounter(name: string, key: string): string {
    return `${this.prefix}count:${name}:${key}`;
  }

  /** Counter key of the failed-authentication limiter for one client address. */
  authFailures(address: string): string {
    return `${this.prefix}authfail:${address}`;
  }

  /** Pub/sub channel: an agent id, published when a job is queued for it. */
  get wakeChannel(): string {
    return `${this.prefix}wake`;
  }

  /** Pub/sub channel: a job id, published when the job reaches a terminal status. */
  get doneChannel(): string {
    return `${this.prefix}done`;
  }

  /** Pub/sub channel: a token hash, published when a token is rotated or its agent removed. */
  get authChannel(): string {
    return `${this.prefix}auth`;
  }

  /** Stream of job status events. */
  get jobStatusStream(): string {
    return `${this.prefix}event:job:status`;
  }

  /** Stream of message events (notifications, agent online/offline). */
  get messageStream(): string {
    return `${this.prefix}event:message`;
  }
}
