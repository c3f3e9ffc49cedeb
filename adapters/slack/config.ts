/** Settings of the Slack adapter (from the gateway configuration: SKADI_SLACK_*). */
import type { AccessMode } from '../contract';

/** What the Slack adapter needs. */
export interface SlackAdapterConfig {
  signingSecret: string;
  botToken: string;
  /** Web API base URL, e.g. https://slack.com/api/ (a proxy or a local fake elsewhere). */
  apiUrl: string;
  access: AccessMode;
  /** Workspace mode: allowed team ids (empty: every workspace the app is installed in). */
  allowedTeams: string[];
  socketMode: boolean;
  appToken: string;
  /** The bot's user id; looked up with auth.test when empty. */
  botUserId: string;
  allowBots: boolean;
}

/** The Slack adapter is enabled when the bot token is set, with a signing secret (HTTP) or an app token (Socket Mode). */
export function slackEnabled(config: SlackAdapterConfig): boolean {
  return config.botToken !== '' && (config.socketMode ? config.appToken !== '' : config.signingSecret !== '');
}

/** The adapter settings from the gateway configuration. */
export function slackConfigFrom(c: {
  slackSigningSecret: string; slackBotToken: string; slackApiUrl: string; slackAccess: SlackAdapterConfig['access']; slackAllowedTeams: string[];
  slackSocketMode: boolean; slackAppToken: string; slackBotUserId: string; slackAllowBots: boolean;
}): SlackAdapterConfig {
  return {
    signingSecret: c.slackSigningSecret,
    botToken: c.slackBotToken,
    apiUrl: c.slackApiUrl,
    access: c.slackAccess,
    allowedTeams: c.slackAllowedTeams,
    socketMode: c.slackSocketMode,
    appToken: c.slackAppToken,
    botUserId: c.slackBotUserId,
    allowBots: c.slackAllowBots,
  };
}
