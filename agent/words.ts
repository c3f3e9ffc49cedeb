/** Splits a job's text into argv words like a shell would, but without any of a shell's powers: the daemon runs these words, and approval patterns are matched against them. */

/** The message cannot become an argv array safely; the reason is shown to the sender. */
export class RefusedMessage extends Error {
  override name = 'RefusedMessage';
}

/** Unquoted characters that would mean something to a shell; since no shell runs, they are refused rather than silently taken literally. */
const OPERATORS = new Set([';', '&', '|', '<', '>', '`', '$', '(', ')', '{', '}', '*', '?', '[', ']', '~', '!', '#']);

/**
 * Splits text into words: whitespace separates, 'single' and "double" quotes group (their contents are literal,
 * `\"` and `\\` escape inside double quotes), a backslash escapes the next character. Nothing is expanded.
 * Unquoted shell operators, control characters (newlines included) and unterminated quotes are refused.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let i = 0;
  const push = (ch: string) => (word = (word ?? '') + ch);
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if ((code < 0x20 && ch !== ' ' && ch !== '\t') || code === 0x7f)
      throw new RefusedMessage('control characters (such as newlines) are not allowed in a command');
  }
  while (i < text.length) {
    const ch = text[i];
    if (ch === ' ' || ch === '\t') {
      if (word !== null) words.push(word);
      word = null;
      i++;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new RefusedMessage('unterminated single quote');
      push(text.slice(i + 1, end));
      i = end + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let chunk = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) j++;
        chunk += text[j++];
      }
      if (j >= text.length) throw new RefusedMessage('unterminated double quote');
      push(chunk);
      i = j + 1;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) throw new RefusedMessage('a backslash at the end escapes nothing');
      push(text[i + 1]);
      i += 2;
    } else if (OPERATORS.has(ch)) {
      throw new RefusedMessage(`"${ch}" is a shell operator, and this agent runs no shell; quote it if you mean it literally`);
    } else {
      push(ch);
      i++;
    }
  }
  if (word !== null) words.push(word);
  return words;
}
