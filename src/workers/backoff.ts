/**
 * Exponential backoff capped at `capMs`: 1 s, 2 s, 4 s … 30 s, 30 s … Jitter only shortens a
 * delay (by up to 20 %), so the cap holds and retries of many jobs still spread out.
 */
export function cappedBackoff(
  attemptsMade: number,
  baseMs = 1000,
  capMs = 30_000,
  random = Math.random,
): number {
  const exponential = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exponential * (0.8 + random() * 0.2));
}
