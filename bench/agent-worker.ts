/** A benchmark helper process: runs many SDK agents that succeed at once. Tokens come as JSON on stdin. */
import { Agent } from '../agent/sdk';

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { server, tokens } = JSON.parse(input) as { server: string; tokens: string[] };
  const agents = tokens.map((token) => new Agent({ server, token, waitSeconds: 30, backoff: { minMs: 100, maxMs: 2000 } }));
  const runs = agents.map((agent) => agent.start(() => 'ok').catch((err) => console.error(`agent failed: ${err.message}`)));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void Promise.all(agents.map((a) => a.stop())));
  await Promise.all(runs);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
