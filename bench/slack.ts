/** slack_round_trip: a signed slash command → the agent runs it → the final chat.postMessage reaches the (fake) Slack API. */
import { withTimeout } from './verdict';
import { Agent } from '../agent/sdk';
import { postToSlackEndpoint, slashCommandBody, startFakeSlack } from './fake-slack';
import { Namespace, nowMs, percentile, round, serve } from './harness';

/** Result of the Slack round trip benchmark (milliseconds). */
export interface SlackResult {
  commands: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

const SECRET = 'bench-signing-secret';

/** Sends `commands` slash commands one after another, each in its own channel (no per-channel pacing). */
export async function benchSlack(commands: number, progress: (line: string) => void): Promise<SlackResult> {
  const slack = await startFakeSlack('TBENCH');
  const ns = new Namespace();
  const served = await serve(
    ns.env({ SKADI_SLACK_SIGNING_SECRET: SECRET, SKADI_SLACK_BOT_TOKEN: 'xoxb-bench', SKADI_SLACK_API_URL: slack.url }),
  );
  const core = await ns.core();
  let agent: Agent | null = null;
  try {
    const { user } = await core.users.create('bench');
    const { agent: row, token } = await core.agents.create(user.id, 'web1');
    await core.identities.link('slack:TBENCH:UBENCH', user.name);
    agent = new Agent({ server: served.base, token });
    const running = agent.start((job) => `ran ${job.message}`);
    while (!(await core.agents.isOnline(row.id))) await new Promise((r) => setTimeout(r, 20));
    const finals = new Map<string, number>();
    let wake: (() => void) | null = null;
    slack.onCall((call) => {
      if (call.method === 'chat.postMessage' && call.status === 200 && String(call.args.text).includes('✅')) {
        finals.set(call.args.channel, nowMs());
        wake?.();
      }
    });
    const latencies: number[] = [];
    for (let i = 0; i < commands; i++) {
      const channel = `C${i}`;
      const begin = nowMs();
      const res = await postToSlackEndpoint(
        served.base,
        SECRET,
        slashCommandBody({ team: 'TBENCH', user: 'UBENCH', channel, text: `web1 uptime ${i}` }),
        'application/x-www-form-urlencoded',
      );
      if (res.status !== 200) throw new Error(`the slash command answered ${res.status}`);
      while (!finals.has(channel)) await withTimeout(new Promise<void>((r) => (wake = r)), 30_000, `the answer in ${channel}`);
      latencies.push(finals.get(channel)! - begin);
      if ((i + 1) % 50 === 0) progress(`slack_round_trip: ${i + 1}/${commands} commands`);
    }
    await agent.stop();
    await running;
    agent = null;
    return {
      commands,
      p50_ms: round(percentile(latencies, 50)),
      p99_ms: round(percentile(latencies, 99)),
      max_ms: round(Math.max(...latencies)),
    };
  } finally {
    await agent?.stop();
    await core.close();
    await served.stop();
    await ns.drop();
    await slack.close();
  }
}
