/** Slack message text from an OutboundMessage, and Slack Web API errors as AdapterErrors. */
import type { KnownBlock } from '@slack/types';
import { AdapterError, type OutboundMessage } from '../contract';

/** Most characters of output shown in one message; the rest is cut with a note. */
export const MAX_CODE_CHARS = 3000;

/** mrkdwn text: the line, then the output's tail in a code block (with a note when cut). */
export function renderText(message: OutboundMessage): string {
  if (!message.code) return message.text;
  let code = message.code.trimEnd();
  let note = '';
  if (code.length > MAX_CODE_CHARS) {
    note = `\n_Output cut: the last ${MAX_CODE_CHARS} of ${code.length} characters are shown._`;
    code = code.slice(-MAX_CODE_CHARS);
  }
  return `${message.text}\n\`\`\`\n${code.replace(/```/g, '`\u200b``')}\n\`\`\`${note}`;
}

/** Block Kit for an approval request: the text, then Approve and Deny buttons carrying the job id; none otherwise. */
export function renderBlocks(message: OutboundMessage): KnownBlock[] | undefined {
  if (!message.approval) return undefined;
  const button = (verb: 'approve' | 'deny', title: string, style: 'primary' | 'danger') => ({
    type: 'button' as const,
    action_id: `skadi_${verb}`,
    value: message.approval!.jobId,
    style,
    text: { type: 'plain_text' as const, text: title },
  });
  return [
    { type: 'section', text: { type: 'mrkdwn', text: renderText(message).slice(0, 3000) } },
    { type: 'actions', block_id: 'skadi_approval', elements: [button('approve', 'Approve', 'primary'), button('deny', 'Deny', 'danger')] },
  ];
}

const UNAUTHORIZED = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'missing_scope',
  'no_permission',
]);
const TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'team_added_to_org']);

/** Translates an error thrown by @slack/web-api into an AdapterError with a stable code. */
export function translateSlackError(err: unknown): AdapterError {
  const e = err as { code?: string; retryAfter?: number; statusCode?: number; data?: { error?: string }; message?: string };
  switch (e?.code) {
    case 'slack_webapi_rate_limited_error':
      return new AdapterError('rate_limited', 'Slack rate limit', (e.retryAfter ?? 1) * 1000);
    case 'slack_webapi_request_error':
      return new AdapterError('transient', `Slack unreachable: ${e.message}`);
    case 'slack_webapi_http_error': {
      const status = e.statusCode ?? 0;
      if (status === 429) return new AdapterError('rate_limited', 'Slack rate limit', 1000);
      if (status === 401 || status === 403) return new AdapterError('unauthorized', `Slack answered ${status}`);
      if (status === 404) return new AdapterError('not_found', 'Slack answered 404');
      return new AdapterError('transient', `Slack answered ${status}`);
    }
    case 'slack_webapi_platform_error': {
      const code = e.data?.error ?? 'unknown_error';
      if (code === 'ratelimited') return new AdapterError('rate_limited', 'Slack rate limit', 1000);
      if (UNAUTHORIZED.has(code)) return new AdapterError('unauthorized', `Slack refused the bot token: ${code}`);
      if (TRANSIENT.has(code)) return new AdapterError('transient', `Slack error: ${code}`);
      if (/not_found|not_in_channel|is_archived|channel_not_found|user_not_found/.test(code))
        return new AdapterError('not_found', `Slack error: ${code}`);
      return new AdapterError('invalid', `Slack rejected the message: ${code}`);
    }
    default:
      return new AdapterError('transient', `Slack call failed: ${e?.message ?? String(err)}`);
  }
}
