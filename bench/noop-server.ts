/**
 * The no-op server: the agent protocol of Skadi (push, long poll, report, `?next=1`) held in memory, doing nothing
 * else. The same load generator and the same SDK agent processes run against it, so the ratio to it is the price
 * of everything Skadi does besides HTTP. `GET /done` says how many jobs were reported.
 */
import http from 'node:http';

interface Job {
  id: string;
  message: string;
}

let next = 0;
let done = 0;
const queue: Job[] = [];
const waiting: { res: http.ServerResponse; timer: NodeJS.Timeout }[] = [];

function json(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Hands a job to the oldest waiting poll, or queues it. */
function offer(job: Job): void {
  const poll = waiting.shift();
  if (!poll) return void queue.push(job);
  clearTimeout(poll.timer);
  json(poll.res, 200, job);
}

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/job/add') {
      const message = String(JSON.parse(body || '{}').message ?? '');
      const job = { id: String(++next), message: message.slice(message.indexOf(' ') + 1) };
      offer(job);
      return json(res, 201, { id: job.id, status: 'queuing' });
    }
    if (req.method === 'GET' && url.pathname === '/agent/job') {
      const job = queue.shift();
      if (job) return json(res, 200, job);
      const wait = Number(url.searchParams.get('wait') ?? 0);
      if (wait <= 0) return json(res, 204);
      const entry = { res, timer: setTimeout(() => (waiting.splice(waiting.indexOf(entry), 1), json(res, 204)), wait * 1000) };
      waiting.push(entry);
      res.on('close', () => {
        const at = waiting.indexOf(entry);
        if (at >= 0) waiting.splice(at, 1), clearTimeout(entry.timer);
      });
      return;
    }
    const report = /^\/agent\/jobs\/[^/]+\/(running|succeed|fail)$/.exec(url.pathname);
    if (req.method === 'PUT' && report) {
      if (report[1] !== 'running') done++;
      const job = report[1] !== 'running' && url.searchParams.get('next') === '1' ? queue.shift() : undefined;
      return job ? json(res, 200, job) : json(res, 204);
    }
    if (req.method === 'GET' && url.pathname === '/done') return json(res, 200, { done });
    json(res, 404, { error: 'NotFound' });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
process.once('SIGTERM', () => {
  for (const { res, timer } of waiting) clearTimeout(timer), json(res, 204);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
