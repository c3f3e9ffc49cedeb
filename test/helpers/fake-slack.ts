/** The fake Slack Web API and signed-request helpers live with the benchmarks, which use them too. */
import pino from 'pino';
import { createSlackAdapter, type SlackAdapter } from '../../adapters/slack';
import type { FakeSlack } from '../../bench/fake-slack';

export * from '../../bench/fake-slack';

/** The real Slack adapter (HTTP mode, closed access, bot user UBOT) talking to a fake Web API, for notifier tests. */
export function slackAdapterFor(slack: FakeSlack): SlackAdapter {
  return createSlackAdapter(
    {
      signingSecret: 's',
      botToken: 'xoxb-test',
      apiUrl: slack.url,
      access: 'closed',
      allowedTeams: [],
      socketMode: false,
      appToken: '',
      botUserId: 'UBOT',
      allowBots: false,
    },
    pino({ level: 'silent' }),
  );
}
