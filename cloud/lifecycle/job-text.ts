/** Limits and parsing of job messages and results. */
import { BadRequestError } from '../errors';

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

/** Longest "<agent> <job text>" accepted: a name, a space, and a message at its limit. */
export const MAX_AGENT_MESSAGE_CHARS = MAX_MESSAGE_CHARS + 200;

/** Unicode whitespace, as `\s` knows it, tested one character at a time. */
const isSpace = (ch: string) => /\s/.test(ch);

/** Splits trimmed text at its first run of whitespace: ["word", "rest…"] (rest trimmed), in linear time. */
export function splitFirstWord(text: string): [string, string] {
  const trimmed = text.trim();
  let end = 0;
  while (end < trimmed.length && !isSpace(trimmed[end])) end++;
  return [trimmed.slice(0, end), trimmed.slice(end).trim()];
}

/** Splits "<agent> <job text>" into the agent name and the job text (checked for length first). */
export function splitAgentMessage(text: string): { agent: string; message: string } {
  if (text.length > MAX_AGENT_MESSAGE_CHARS) {
    throw new BadRequestError(`The message is longer than ${MAX_MESSAGE_CHARS} characters.`, 'MessageTooLong');
  }
  const [agent, message] = splitFirstWord(text);
  if (!agent || !message) throw new BadRequestError('The message must be "<agent> <job text>".', 'InvalidMessage');
  return { agent, message };
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
