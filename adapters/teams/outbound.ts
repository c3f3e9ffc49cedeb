/** Teams message activities from an OutboundMessage, and Bot Connector errors as AdapterErrors. */
import type { Activity } from 'botbuilder';
import { AdapterError, type OutboundMessage } from '../contract';
import { outputTail } from '../output-tail';

/** Most bytes of output in one message: Teams refuses messages over about 28 KB, so the tail is cut well below. */
export const MAX_CODE_BYTES = 20_000;

/** Markdown text: the line, then the output's tail in a monospace block (with a note when cut). */
export function renderText(message: OutboundMessage): string {
  if (!message.code) return message.text;
  const full = message.code.trimEnd();
  const { text: code, cut } = outputTail(full, MAX_CODE_BYTES);
  const note = cut ? `\n\n_Output cut: the last ${Buffer.byteLength(code)} of ${Buffer.byteLength(full)} bytes are shown._` : '';
  return `${message.text}\n\n\`\`\`\n${code.replace(/```/g, '`\u200b``')}\n\`\`\`${note}`;
}

/** An Adaptive Card for an approval request: the text, and Approve / Deny buttons whose data carry the job id. */
export function approvalCard(message: OutboundMessage): Record<string, unknown> {
  const submit = (verb: 'approve' | 'deny', title: string) => ({
    type: 'Action.Submit',
    title,
    data: { skadi: verb, job: message.approval!.jobId },
  });
  return {
    contentType: 'application/vnd.microsoft.card.adaptive',
    content: {
      type: 'AdaptiveCard',
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
      version: '1.4',
      body: [{ type: 'TextBlock', text: message.text, wrap: true }],
      actions: [submit('approve', 'Approve'), submit('deny', 'Deny')],
    },
  };
}

/** The message activity for an OutboundMessage (an approval request carries its card; an edit without one drops it). */
export function renderActivity(message: OutboundMessage): Partial<Activity> {
  const activity: Partial<Activity> = { type: 'message', text: renderText(message), textFormat: 'markdown' };
  if (message.approval) activity.attachments = [approvalCard(message) as never];
  else if (message.replaces) activity.attachments = [];
  return activity;
}

/** The seconds of a Retry-After header (a number or an HTTP date), in ms. */
function retryAfterMs(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Translates an error of the Bot Connector client (or of getting its token) into an AdapterError with a stable code. */
export function translateTeamsError(err: unknown): AdapterError {
  if (err instanceof AdapterError) return err;
  const e = err as {
    statusCode?: number;
    response?: { headers?: { get?(name: string): string | undefined } };
    errorCode?: string;
    code?: string;
    message?: string;
  };
  const status = e?.statusCode ?? 0;
  const detail = String(e?.message ?? err)
    .split('\n')[0]
    .slice(0, 300);
  if (status === 429)
    return new AdapterError('rate_limited', 'Teams rate limit', retryAfterMs(e.response?.headers?.get?.('retry-after')) ?? 1000);
  if (status === 412 || status === 502 || status === 503 || status === 504 || status >= 500)
    return new AdapterError('transient', `Teams answered ${status}`, retryAfterMs(e.response?.headers?.get?.('retry-after')));
  if (status === 401 || status === 403) return new AdapterError('unauthorized', `Teams answered ${status}: ${detail}`);
  if (status === 404) return new AdapterError('not_found', `Teams answered 404: ${detail}`);
  if (status >= 400) return new AdapterError('invalid', `Teams rejected the message (${status}): ${detail}`);
  if (e?.errorCode === 'invalid_client' || e?.errorCode === 'unauthorized_client' || /AADSTS7000215|AADSTS700016/.test(detail)) {
    return new AdapterError('unauthorized', `the bot's app id or secret was refused by the login server: ${detail}`);
  }
  return new AdapterError('transient', `Teams call failed: ${detail}`);
}
