/** A benchmark helper process: thousands of lightweight agents, each holding one long poll; prints `job <message> <epoch ms>` per job. */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { server, tokens, wait } = JSON.parse(input) as { server: string; tokens: string[]; wait: number };
  const url = new URL(server);
  const pool = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 30_000 });
  let stopping = false;
  let connected = 0;
  const poll = (token: string, first: boolean) => {
    if (stopping) return;
    const req = http.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: `/agent/job?wait=${wait}`,
        agent: pool,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200)
            process.stdout.write(`job ${JSON.parse(body).message} ${performance.timeOrigin + performance.now()}\n`);
          setImmediate(() => poll(token, false));
        });
      },
    );
    req.on('error', () => setTimeout(() => poll(token, false), 1000));
    req.end();
    if (first && ++connected === tokens.length) process.stdout.write('connected\n');
  };
  // Open the polls gradually, as a fleet of agents starting would.
  for (let i = 0; i < tokens.length; i++) {
    poll(tokens[i], true);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 50));
  }
  process.once('SIGTERM', () => {
    stopping = true;
    pool.destroy();
    process.exit(0);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
