/** Parses and formats durations such as `90s`, `15m`, `1h30m`, `2d` or Go's `1h0m0s`. */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** One "<number><unit>" part, matched only where the previous one ended (sticky: each position is tried once). */
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Longest duration text accepted (`1d2h3m4s500ms` is 13); longer text is not a duration, and is not scanned. */
const MAX_DURATION_CHARS = 64;

/** Returns the duration in milliseconds, or null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  if (text.length > MAX_DURATION_CHARS * 4) return null;
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '' || trimmed.length > MAX_DURATION_CHARS) return null;
  if (/^\d+$/.test(trimmed)) return Number(trimmed); // a bare number is milliseconds
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const match = PART.exec(trimmed);
    if (!match) return null;
    total += Number(match[1]) * UNIT_MS[match[2]];
  }
  return Math.round(total);
}

/** Formats milliseconds compactly, e.g. 5400000 -> `1h30m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return parts.join('');
}
