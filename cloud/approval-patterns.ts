/** An agent's approval patterns: globs on the job text (`deploy *`, `db drop *`, `*`), matched case-insensitively. */

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

/** The first pattern the job text matches, or null when the job needs no approval. */
export function matchingPattern(patterns: readonly string[], text: string): string | null {
  const job = text.trim();
  return patterns.find((p) => patternRegex(p).test(job)) ?? null;
}
