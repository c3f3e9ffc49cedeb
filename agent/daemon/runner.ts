/** Runs a planned command: argv without a shell (or the owner's shortcut line with one), a timeout, capped output, progress. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

/** What a finished command left behind. */
export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** stdout and stderr interleaved, cut in the middle when over the limit. */
  output: string;
  /** Why it failed, for the result text (null on success). */
  failure: string | null;
}

/** How to run a command. */
export interface RunOptions {
  /** argv[0] is looked up on PATH; nothing is interpreted by a shell. */
  argv: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  outputLimit: number;
  progressIntervalMs: number;
  /** Called with the output tail while the command runs (at most every progressIntervalMs, only when it changed). */
  onProgress?: (tail: string) => void;
  /** Aborting kills the command (the agent is stopping). */
  signal?: AbortSignal;
}

const TAIL_BYTES = 3000;
const KILL_GRACE_MS = 2000;
/** How long output may still arrive after the command exited, before its pipes are cut. */
const EXIT_GRACE_MS = 500;

/** Keeps the first and last bytes of a stream of output, counting what was dropped between them. */
class OutputBuffer {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail = Buffer.alloc(0);
  private total = 0;
  version = 0;

  constructor(private readonly limit: number) {}

  add(chunk: Buffer): void {
    this.version++;
    this.total += chunk.length;
    const headRoom = this.limit - TAIL_BYTES - this.headBytes;
    if (headRoom > 0) {
      this.head.push(chunk.subarray(0, headRoom));
      this.headBytes += Math.min(headRoom, chunk.length);
    }
    this.tail = Buffer.concat([this.tail, chunk]).subarray(-TAIL_BYTES);
  }

  /** The last few KB, for progress reports. */
  tailText(): string {
    return this.tail.toString('utf8');
  }

  /** Everything, or the head and the tail with a marker saying how much was left out. */
  text(): string {
    const head = Buffer.concat(this.head);
    const rest = this.total - head.length; // bytes after the head; when the whole fits, the tail holds them
    if (this.total <= this.limit) return Buffer.concat([head, this.tail.subarray(this.tail.length - rest)]).toString('utf8');
    const omitted = rest - this.tail.length;
    return `${head.toString('utf8')}\n…[output truncated: ${omitted} bytes omitted]…\n${this.tail.toString('utf8')}`;
  }
}

/** Runs a command to its end (or its timeout) and describes the outcome; never throws for the command's own failures. */
export function runCommand(options: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    if (options.cwd && !fs.existsSync(options.cwd)) {
      resolve({
        ok: false,
        exitCode: null,
        signal: null,
        timedOut: false,
        output: '',
        failure: `working directory ${options.cwd} does not exist`,
      });
      return;
    }
    const output = new OutputBuffer(options.outputLimit);
    const child = spawn(options.argv[0], options.argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      shell: false,
      detached: true, // its own process group, so a timeout kills its children too
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let timedOut = false;
    let aborted = false;
    let reported = -1;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const stopIt = () => {
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stopIt();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stopIt();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const progress = setInterval(() => {
      if (options.onProgress && output.version !== reported) {
        reported = output.version;
        options.onProgress(output.tailText());
      }
    }, options.progressIntervalMs);
    child.stdout!.on('data', (chunk: Buffer) => output.add(chunk));
    child.stderr!.on('data', (chunk: Buffer) => output.add(chunk));
    const finish = (result: Omit<RunResult, 'output'>) => {
      clearTimeout(timer);
      clearInterval(progress);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ ...result, output: output.text() });
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      const failure = err.code === 'ENOENT' ? `cannot run ${options.argv[0]}: not found` : `cannot run ${options.argv[0]}: ${err.message}`;
      finish({ ok: false, exitCode: null, signal: null, timedOut: false, failure });
    });
    // A grandchild that left the process group (setsid, a daemonising script) may hold the pipes open long after
    // the command itself ended: finish shortly after the command exits, and cut the pipes.
    child.once('exit', () => {
      setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
      }, EXIT_GRACE_MS).unref();
    });
    child.once('close', (code, signal) => {
      let failure: string | null = null;
      if (timedOut) failure = `killed after the ${Math.round(options.timeoutMs / 1000)} s timeout`;
      else if (aborted) failure = 'killed: the agent is stopping';
      else if (signal) failure = `killed by ${signal}`;
      else if (code !== 0) failure = `exit code ${code}`;
      finish({ ok: failure === null, exitCode: code, signal, timedOut, failure });
    });
  });
}

/** The environment a command sees: only the allowed variables of the daemon's own environment. */
export function allowedEnv(names: string[], from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of names) if (from[name] !== undefined) env[name] = from[name];
  return env;
}
