/**
 * An agent's approval patterns: globs (`deploy *`, `db drop *`, `*`), matched case-insensitively against the job's
 * text and against its words as the agent will see them (split by the agent's own splitWords), so quoting or
 * escaping a word cannot hide it from a pattern.
 */
import { splitWords } from '../../agent/words';

/** What gates a job whose text cannot be split into words while the agent has patterns. */
export const UNSPLITTABLE = '(a text that cannot be split into words)';

/** A pattern as a regular expression: `*` any text (also none), `?` one character, runs of spaces as any whitespace. */
function patternRegex(pattern: string): RegExp {
  const body = pattern
    .trim()
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : /\s/.test(c) ? '\\s+' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('')
    .replace(/(\\s\+)+/g, '\\s+');
  return new RegExp(`^${body}$`, 'is');
}

/** The job's text as the agent's words joined by single spaces; null when the agent could not split it. */
function wordsOf(text: string): string | null {
  try {
    // Empty words ("") are words the agent gets too, but they must not push the rest past a pattern's end.
    return splitWords(text)
      .filter((w) => w !== '')
      .join(' ');
  } catch {
    return null;
  }
}

/**
 * The first pattern that the job's text or its words match; else UNSPLITTABLE when there are patterns and the text
 * cannot be split into words (what the agent would run is then unknown, so the job waits for a second person); else null.
 */
export function matchingPattern(patterns: readonly string[], text: string): string | null {
  if (patterns.length === 0) return null;
  const job = text.trim();
  const words = wordsOf(job);
  const found = patterns.find((p) => {
    const re = patternRegex(p);
    return re.test(job) || (words !== null && re.test(words));
  });
  return found ?? (words === null ? UNSPLITTABLE : null);
}
