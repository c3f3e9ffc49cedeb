/** WeChat text from an OutboundMessage (no threads, no formatting), and failures of the puppet as AdapterErrors. */
import { AdapterError, type OutboundMessage } from '../contract';
import { outputTail } from '../output-tail';

/** Most bytes of output in one message: WeChat shows long texts badly and refuses very long ones, so the tail is kept. */
export const MAX_OUTPUT_BYTES = 2000;

/** The line, then the output's tail (with a note when cut). */
export function renderText(message: OutboundMessage): string {
  if (!message.code) return message.text;
  const full = message.code.trimEnd();
  if (!full) return message.text;
  const { text: code, cut } = outputTail(full, MAX_OUTPUT_BYTES);
  const note = cut ? `\n(output cut: the last ${Buffer.byteLength(code)} of ${Buffer.byteLength(full)} bytes)` : '';
  return `${message.text}\n${code}${note}`;
}

/**
 * Translates a failure of the puppet into an AdapterError. Everything the puppet throws is taken as passing (the
 * connection, a payload store reset at reconnect); only the connection's own lookups say not_found.
 */
export function translateWechatError(err: unknown): AdapterError {
  if (err instanceof AdapterError) return err;
  const detail = String((err as Error)?.message ?? err)
    .split('\n')[0]
    .slice(0, 300);
  return new AdapterError('transient', `WeChat call failed: ${detail}`);
}
