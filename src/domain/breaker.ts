/**
 * A carrier's circuit breaker, as pure rules over plain data: the record that is kept per carrier
 * (in Redis, as JSON, by integrations/carriers/breaker-store.ts), an outcome or a request to call,
 * and the time → the next record and the state changes made. This file is the spec; the store's
 * Lua script mirrors it line for line, and tests/integration/breaker-store.test.ts checks that
 * both agree on the same sequences.
 *
 * - closed: every call goes through. It opens after `failureThreshold` failures in a row, or when
 *   at least `minimumCalls` calls were recorded in the sliding window (`windowMs`, counted in
 *   `windowBuckets` buckets) and the share that failed reached `failureRate`.
 * - open: no call goes through (the carrier is skipped, which is not an attempt). Outcomes of
 *   calls that were already in flight when it opened are ignored.
 * - half_open: `coolDownMs` after it opened (its `since` is then opened-at + cool-down, the same
 *   for every reader), up to `halfOpenProbes` probe calls may be in flight at once. A probe's
 *   failure re-opens it; `halfOpenSuccesses` successful probes close it. A probe that never
 *   reports (its process died, or the call reached no verdict) frees its place after
 *   `probeLeaseMs`.
 */
import type { BreakerState } from './carrier-choice.js';

export type { BreakerState };
export type BreakerOutcome = 'success' | 'failure';

export interface BreakerSettings {
  /** Consecutive failures that open a closed breaker. */
  failureThreshold: number;
  /** Share of failed calls in the window (0–1] that opens it, once the window holds `minimumCalls`. */
  failureRate: number;
  minimumCalls: number;
  windowMs: number;
  /** The window slides bucket by bucket (windowMs / windowBuckets each). */
  windowBuckets: number;
  /** Time an open breaker stays open before it lets probes through (half_open). */
  coolDownMs: number;
  /** Probe calls in flight at once while half_open. */
  halfOpenProbes: number;
  /** Successful probes that close it. */
  halfOpenSuccesses: number;
  /** A probe that has not reported by then no longer holds its place. */
  probeLeaseMs: number;
  /** A carrier's record expires after this long without a write, so Redis memory stays bounded. */
  idleTtlMs: number;
}

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = {
  failureThreshold: 5,
  failureRate: 0.5,
  minimumCalls: 10,
  windowMs: 30_000,
  windowBuckets: 10,
  coolDownMs: 15_000,
  halfOpenProbes: 1,
  halfOpenSuccesses: 2,
  probeLeaseMs: 15_000,
  idleTtlMs: 24 * 3_600_000,
};

/** The defaults with `overrides` applied; throws a RangeError naming a value that makes no sense. */
export function breakerSettings(overrides: Partial<BreakerSettings> = {}): BreakerSettings {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const s = { ...DEFAULT_BREAKER_SETTINGS, ...defined } as BreakerSettings;
  for (const [name, value] of Object.entries(s)) {
    if (name === 'failureRate') continue;
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`breaker ${name} must be a positive integer`);
  }
  if (!(s.failureRate > 0 && s.failureRate <= 1))
    throw new RangeError('breaker failureRate must be in (0, 1]');
  if (s.windowBuckets > s.windowMs) throw new RangeError('breaker windowBuckets must not exceed windowMs');
  return s;
}

export function bucketMs(s: BreakerSettings): number {
  return Math.ceil(s.windowMs / s.windowBuckets);
}

/** Calls (`n`) and failures (`f`) recorded in bucket `i` (= floor(time / bucketMs)). */
export interface WindowBucket {
  i: number;
  n: number;
  f: number;
}

/** What is kept per carrier. Times are epoch milliseconds (Redis's clock in the store). */
export interface BreakerRecord {
  state: BreakerState;
  /** When it entered `state`; absent if it never changed. */
  since?: number;
  /** Consecutive failures while closed. */
  streak: number;
  /** The sliding window while closed, oldest bucket first. */
  window: WindowBucket[];
  /** Probes in flight while half_open, and when the last one granted stops holding its place. */
  probes: number;
  probeUntil?: number;
  /** Successful probes while half_open. */
  okProbes: number;
}

export interface BreakerChange {
  from: BreakerState;
  to: BreakerState;
}

export interface BreakerStep {
  record: BreakerRecord;
  /** State changes made, in order (at most two: open → half_open → open/closed). */
  changes: BreakerChange[];
}

export function initialBreaker(): BreakerRecord {
  return { state: 'closed', streak: 0, window: [], probes: 0, okProbes: 0 };
}

function moved(r: BreakerRecord, to: BreakerState, at: number, changes: BreakerChange[]): BreakerRecord {
  changes.push({ from: r.state, to });
  return { state: to, since: at, streak: 0, window: [], probes: 0, okProbes: 0 };
}

/** What time alone does: an open breaker past its cool-down is half_open; expired probe leases free their places. */
export function advance(record: BreakerRecord, now: number, s: BreakerSettings): BreakerStep {
  const changes: BreakerChange[] = [];
  let r = record;
  if (r.state === 'open' && now >= (r.since ?? 0) + s.coolDownMs) {
    r = moved(r, 'half_open', (r.since ?? 0) + s.coolDownMs, changes);
  }
  if (r.state === 'half_open' && r.probes > 0 && now >= (r.probeUntil ?? 0)) {
    r = { ...r, probes: 0, probeUntil: undefined };
  }
  return { record: r, changes };
}

/** The state and `since` a reader sees at `now` (nothing is written). */
export function breakerView(record: BreakerRecord, now: number, s: BreakerSettings) {
  const { record: r } = advance(record, now, s);
  return { state: r.state, since: r.since ?? null };
}

/** Before a call: may it go through? While half_open, a call that may takes a probe's place. */
export function allowCall(
  record: BreakerRecord,
  now: number,
  s: BreakerSettings,
): BreakerStep & { allowed: boolean } {
  const step = advance(record, now, s);
  const r = step.record;
  if (r.state === 'open') return { ...step, allowed: false };
  if (r.state === 'closed') return { ...step, allowed: true };
  if (r.probes >= s.halfOpenProbes) return { ...step, allowed: false };
  return { ...step, record: { ...r, probes: r.probes + 1, probeUntil: now + s.probeLeaseMs }, allowed: true };
}

/** A probe's place given back: allowed, but no call was made after all (nothing to judge by). */
export function releaseProbe(record: BreakerRecord, now: number, s: BreakerSettings): BreakerStep {
  const step = advance(record, now, s);
  const r = step.record;
  if (r.state !== 'half_open' || r.probes === 0) return step;
  const probes = r.probes - 1;
  return { ...step, record: { ...r, probes, probeUntil: probes === 0 ? undefined : r.probeUntil } };
}

/** After a call that reached a verdict. */
export function recordOutcome(
  record: BreakerRecord,
  outcome: BreakerOutcome,
  now: number,
  s: BreakerSettings,
): BreakerStep {
  const { record: r, changes } = advance(record, now, s);
  const failed = outcome === 'failure';
  if (r.state === 'open') return { record: r, changes }; // a call that was in flight when it opened
  if (r.state === 'half_open') {
    if (failed) return { record: moved(r, 'open', now, changes), changes };
    const probes = Math.max(0, r.probes - 1);
    const next = {
      ...r,
      probes,
      probeUntil: probes === 0 ? undefined : r.probeUntil,
      okProbes: r.okProbes + 1,
    };
    if (next.okProbes >= s.halfOpenSuccesses) return { record: moved(next, 'closed', now, changes), changes };
    return { record: next, changes };
  }
  const index = Math.floor(now / bucketMs(s));
  const window = r.window.filter((b) => b.i > index - s.windowBuckets).map((b) => ({ ...b }));
  let current = window.find((b) => b.i === index);
  if (!current) {
    current = { i: index, n: 0, f: 0 };
    window.push(current);
  }
  current.n += 1;
  if (failed) current.f += 1;
  const streak = failed ? r.streak + 1 : 0;
  let calls = 0;
  let failures = 0;
  for (const b of window) {
    calls += b.n;
    failures += b.f;
  }
  const next = { ...r, streak, window };
  if (streak >= s.failureThreshold || (calls >= s.minimumCalls && failures >= s.failureRate * calls)) {
    return { record: moved(next, 'open', now, changes), changes };
  }
  return { record: next, changes };
}
