/**
 * The chat channels, each as the gateway sees it: its name, whether its settings are given, what is wrong with them,
 * and how to load it. A channel's SDK is required only when its adapter is made, so a node pays in memory only for
 * the channels it serves (the four SDKs together hold about 55 MB of heap).
 */
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { ChannelAdapter, ChannelName } from './contract';
import { emailConfigFrom, emailConfigProblem, emailEnabled } from './email/config';
import { slackConfigFrom, slackConfigProblem, slackEnabled } from './slack/config';
import { teamsConfigFrom, teamsConfigProblem, teamsEnabled } from './teams/config';
import { wechatConfigFrom, wechatConfigProblem, wechatEnabled } from './wechat/config';

/** A chat channel set up by the configuration: what is wrong with its settings (or null), and how to make its adapter. */
export interface ConfiguredChannel {
  problem: string | null;
  /** Loads the channel's SDK and makes its adapter. */
  create(log: Logger): ChannelAdapter;
}

/** One chat channel. */
export interface Channel {
  name: ChannelName;
  /** The channel as the configuration sets it up, or null when none of the settings that switch it on are given. */
  configure(config: Config): ConfiguredChannel | null;
}

/** A channel from its settings' functions (C: what its adapter is given). */
function channel<C>(
  name: ChannelName,
  settings: (config: Config) => C,
  enabled: (settings: C) => boolean,
  problem: (settings: C) => string | null,
  create: (settings: C, log: Logger) => ChannelAdapter,
): Channel {
  return {
    name,
    configure(config) {
      const given = settings(config);
      return enabled(given) ? { problem: problem(given), create: (log) => create(given, log) } : null;
    },
  };
}

/** Every chat channel, in the order their adapters start. */
export const CHANNELS: readonly Channel[] = [
  channel('slack', slackConfigFrom, slackEnabled, slackConfigProblem, (settings, log) =>
    (require('./slack') as typeof import('./slack')).createSlackAdapter(settings, log),
  ),
  channel('teams', teamsConfigFrom, teamsEnabled, teamsConfigProblem, (settings, log) =>
    (require('./teams') as typeof import('./teams')).createTeamsAdapter(settings, log),
  ),
  channel('email', emailConfigFrom, emailEnabled, emailConfigProblem, (settings, log) =>
    (require('./email') as typeof import('./email')).createEmailAdapter(settings, log),
  ),
  channel(
    'wechat',
    wechatConfigFrom,
    wechatEnabled,
    (settings) => wechatConfigProblem(settings),
    (settings, log) => (require('./wechat') as typeof import('./wechat')).createWechatAdapter(settings, log),
  ),
];
