/** Settings of the Slack adapter (from the gateway configuration: SKADI_SLACK_*). */
import { z } from 'zod';
import { access, bool, list, setting, url } from '../../config/kit';
import type { AccessMode } from '../contract';

/** The slack settings (SKADI_SLACK_*): their rows of the gateway's settings table (config/settings.ts). */
export const SLACK_SETTINGS = {
  slackSigningSecret: setting('slack_signing_secret', z.string(), '', "the Slack app's signing secret; not needed in Socket Mode", true),
  slackBotToken: setting(
    'slack_bot_token',
    z.string(),
    '',
    'Slack bot token (`xoxb-…`); with the signing secret, or with Socket Mode, it enables the Slack adapter',
    true,
  ),
  slackApiUrl: setting(
    'slack_api_url',
    url(['http:', 'https:']),
    'https://slack.com/api/',
    'Slack Web API base URL (a proxy, or a local fake in tests)',
  ),
  slackAccess: setting(
    'slack_access',
    access,
    'closed',
    'who may use Skadi from Slack: `closed` (linked identities), `workspace` or `open`',
  ),
  slackAllowedTeams: setting(
    'slack_allowed_teams',
    list,
    '',
    'workspace mode: allowed team ids, comma-separated (empty: every workspace the app is in)',
  ),
  slackSocketMode: setting('slack_socket_mode', bool, false, 'receive events over Socket Mode instead of HTTP (no public URL needed)'),
  slackAppToken: setting('slack_app_token', z.string(), '', 'Slack app-level token (`xapp-…`) for Socket Mode', true),
  slackBotUserId: setting('slack_bot_user_id', z.string(), '', "the bot's user id; looked up with `auth.test` when empty"),
  slackAllowBots: setting(
    'slack_allow_bots',
    bool,
    false,
    "accept commands from other bots (the bot's own messages, edits and joins are always ignored)",
  ),
};

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

/** The Slack settings as the gateway configuration holds them. */
export type SlackSettings = z.infer<z.ZodObject<typeof SLACK_SETTINGS>>;

/** The Slack adapter is enabled when any of its credentials is set (slackConfigProblem then says what is missing). */
export function slackEnabled(config: SlackAdapterConfig): boolean {
  return config.botToken !== '' || config.signingSecret !== '' || config.appToken !== '';
}

/** Why the settings cannot work (one line for the start-up error), or null. */
export function slackConfigProblem(config: SlackAdapterConfig): string | null {
  if (config.botToken === '') return 'Slack is half configured: SKADI_SLACK_BOT_TOKEN (xoxb-…) is not set';
  if (config.socketMode && config.appToken === '')
    return 'SKADI_SLACK_SOCKET_MODE=true needs SKADI_SLACK_APP_TOKEN (an app-level token, xapp-…)';
  if (!config.socketMode && config.signingSecret === '') {
    return "SKADI_SLACK_BOT_TOKEN is set but SKADI_SLACK_SIGNING_SECRET is not: give the app's signing secret, or set SKADI_SLACK_SOCKET_MODE=true with SKADI_SLACK_APP_TOKEN";
  }
  return null;
}

/** The adapter settings from the gateway configuration. */
export function slackConfigFrom(c: SlackSettings): SlackAdapterConfig {
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
