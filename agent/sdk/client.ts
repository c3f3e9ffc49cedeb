/** The agent side of the HTTP API, on Node's built-in fetch: one method per route, typed errors. */

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
  private readonly base: string;

  constructor(
    server: string,
    private readonly token: string,
    private readonly userAgent = 'skadi-agent-sdk',
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  /** Sends a request; resolves with the status and parsed JSON body, throws ServerError on 4xx/5xx. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: any }> {
    const res = await fetch(this.base + path, {
      method,
      signal,
      headers: {
        authorization: `Bearer ${this.token}`,
        'user-agent': this.userAgent,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = { message: text.slice(0, 200) };
    }
    if (res.status === 401) throw new InvalidTokenError();
    if (res.status >= 400) throw new ServerError(res.status, parsed?.error ?? `HTTP${res.status}`, parsed?.message ?? res.statusText);
    return { status: res.status, body: parsed };
  }

  /** Takes a job, waiting up to waitSeconds for one (0: answer at once); null when there is none. */
  async poll(waitSeconds: number, signal?: AbortSignal): Promise<JobPayload | null> {
    const query = waitSeconds > 0 ? `?wait=${waitSeconds}` : '';
    const { status, body } = await this.request('GET', `/agent/job${query}`, undefined, signal);
    if (status === 204) return null;
    if (typeof body?.id !== 'string' || typeof body?.message !== 'string') {
      throw new ServerError(status, 'InvalidJob', 'the server answered with a job this agent does not understand');
    }
    return { id: body.id, message: body.message };
  }

  /** Reports a job as running (renewing its lease), succeeded or failed. */
  async report(jobId: string, verb: 'running' | 'succeed' | 'fail', result: string): Promise<void> {
    await this.request('PUT', `/agent/jobs/${encodeURIComponent(jobId)}/${verb}`, { result });
  }
}
