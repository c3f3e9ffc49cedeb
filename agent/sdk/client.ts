/** The agent side of the HTTP API on node:http(s) with keep-alive connections (much lighter than fetch): one method per route, typed errors. */
import http from 'node:http';
import https from 'node:https';

/** An answer from the server that is not a success. */
export class ServerError extends Error {
  override name = 'ServerError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** True when retrying later may succeed (5xx, 429). */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429;
  }
}

/** The token was refused: retrying cannot help. */
export class InvalidTokenError extends ServerError {
  override name = 'InvalidTokenError';
  constructor() {
    super(401, 'Unauthorized', 'invalid agent token: the server refused it (check the token, or rotate it with `skadi agent token`)');
  }
}

/** A job handed to the agent. */
export interface JobPayload {
  id: string;
  message: string;
}

/** Calls the agent routes of one server with one token. */
export class AgentClient {
  private readonly base: URL;
  private readonly transport: typeof http | typeof https;
  private readonly pool: http.Agent;
  private closed = false;

  constructor(
    server: string,
    private readonly token: string,
    private readonly userAgent = 'skadi-agent-sdk',
  ) {
    this.base = new URL(server.endsWith('/') ? server : `${server}/`);
    this.transport = this.base.protocol === 'https:' ? https : http;
    this.pool = new this.transport.Agent({ keepAlive: true, keepAliveMsecs: 30_000 });
  }

  /** Sends a request; resolves with the status and parsed JSON body, throws ServerError on 4xx/5xx. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: any }> {
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    const url = new URL(path.replace(/^\//, ''), this.base);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = this.transport.request(
        url,
        {
          method,
          // Once closed (the agent stopped), a late request (the report of a job left behind) gets a connection of its
          // own that closes after the answer: nothing is kept alive after stop.
          agent: this.closed ? false : this.pool,
          signal,
          headers: {
            authorization: `Bearer ${this.token}`,
            'user-agent': this.userAgent,
            ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (data += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: data }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = { message: text.slice(0, 200) };
    }
    if (status === 401) throw new InvalidTokenError();
    if (status >= 400) throw new ServerError(status, parsed?.error ?? `HTTP${status}`, parsed?.message ?? `HTTP ${status}`);
    return { status, body: parsed };
  }

  /** Closes the kept-alive connections; later requests keep none open. */
  close(): void {
    this.closed = true;
    this.pool.destroy();
  }

  /** True once close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Takes a job, waiting up to waitSeconds for one (0: answer at once); null when there is none. */
  async poll(waitSeconds: number, signal?: AbortSignal): Promise<JobPayload | null> {
    const query = waitSeconds > 0 ? `?wait=${waitSeconds}` : '';
    const { status, body } = await this.request('GET', `/agent/job${query}`, undefined, signal);
    return jobOf(status, body);
  }

  /** Reports a job as running (renewing its lease), succeeded or failed. */
  async report(jobId: string, verb: 'running' | 'succeed' | 'fail', result: string): Promise<void> {
    await this.request('PUT', `/agent/jobs/${encodeURIComponent(jobId)}/${verb}`, { result });
  }

  /**
   * Reports a job's end and takes the agent's next queued job in the same request (`?next=1`); null when none is
   * queued. A server that does not know `next` answers 204, which reads the same.
   */
  async reportAndTake(jobId: string, verb: 'succeed' | 'fail', result: string): Promise<JobPayload | null> {
    const { status, body } = await this.request('PUT', `/agent/jobs/${encodeURIComponent(jobId)}/${verb}?next=1`, { result });
    return jobOf(status, body);
  }
}

/** The job of a poll's answer: null for 204, an error for a body that is no job. */
function jobOf(status: number, body: any): JobPayload | null {
  if (status === 204) return null;
  if (typeof body?.id !== 'string' || typeof body?.message !== 'string') {
    throw new ServerError(status, 'InvalidJob', 'the server answered with a job this agent does not understand');
  }
  return { id: body.id, message: body.message };
}
