/** What makes a benchmark run count: everything pushed was accepted and succeeded, with no errors. */

/** Rejects with a clear message when a promise has not settled within ms (a job that never arrives must not hang a run). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The counts a part reports about its jobs (the fields each part has). */
interface Counted {
  pushed?: number;
  accepted?: number;
  succeeded?: number;
  jobs?: number;
  errors?: Record<string, number>;
}

/** Why a part's run does not count (empty when it does). */
export function partProblems(part: string, result: unknown): string[] {
  if (typeof result !== 'object' || result === null) return [];
  const r = result as Counted;
  const problems: string[] = [];
  const expected = r.pushed ?? r.jobs;
  if (r.accepted !== undefined && expected !== undefined && r.accepted !== expected)
    problems.push(`${part}: ${r.accepted} of ${expected} pushes accepted`);
  if (expected !== undefined && expected <= 0) problems.push(`${part}: nothing was pushed`);
  const accepted = r.accepted ?? expected;
  if (r.succeeded !== undefined && r.succeeded !== accepted) problems.push(`${part}: ${r.succeeded} of ${accepted} jobs succeeded`);
  for (const [kind, count] of Object.entries(r.errors ?? {})) if (count > 0) problems.push(`${part}: ${count} × ${kind}`);
  return problems;
}
