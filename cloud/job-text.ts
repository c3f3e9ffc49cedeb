/** Limits and parsing of job messages and results. */
import { BadRequestError } from './errors';

/** Longest accepted job message, in characters. */
export const MAX_MESSAGE_CHARS = 4096;

/** Largest stored result, in UTF-8 bytes; longer results are cut with a visible marker. */
export const MAX_RESULT_BYTES = 64 * 1024;

/** Checks a job message: non-empty, at most MAX_MESSAGE_CHARS characters. Returns it trimmed. */
export function checkMessage(message: string): string {
  const trimmed = message.trim();
  if (trimmed === '') throw new BadRequestError('The message is empty.', 'InvalidMessage');
  if ([...trimmed].length > MAX_MESSAGE_CHARS) {
    throw new BadRequestError(`The message is longer than ${MAX_MESSAGE_CHARS} characters.`, 'MessageTooLong');
  }
  return trimmed;
}

/** Splits "<agent> <job text>" into the agent name and the job text. */
export function splitAgentMessage(text: string): { agent: string; message: string } {
  const match = /^\s*(\S+)\s+([\s\S]*\S)\s*$/.exec(text);
  if (!match) throw new BadRequestError('The message must be "<agent> <job text>".', 'InvalidMessage');
  return { agent: match[1], message: match[2] };
}

/** Cuts a result to MAX_RESULT_BYTES (on a character boundary), ending with a marker that says how much was cut. */
export function truncateResult(result: string, maxBytes = MAX_RESULT_BYTES): string {
  const bytes = Buffer.byteLength(result, 'utf8');
  if (bytes <= maxBytes) return result;
  const marker = (omitted: number) => `\n…[truncated: ${omitted} bytes omitted]`;
  const budget = maxBytes - Buffer.byteLength(marker(bytes), 'utf8');
  const buffer = Buffer.from(result, 'utf8');
  let end = budget;
  while (end > 0 && (buffer[end] & 0xc0) === 0x80) end--; // do not split a multi-byte character
  return buffer.subarray(0, end).toString('utf8') + marker(bytes - end);
}
