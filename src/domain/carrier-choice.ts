import type { AttemptOutcome } from './parcels.js';

/**
 * Which carrier books a parcel next, and when: a pure function of the carriers, the parcel's
 * attempt history and the breakers, so a dispatch job that restarts (crash, retry, another
 * replica) decides exactly what the first run would have.
 */
export interface CarrierCandidate {
  id: string;
  enabled: boolean;
  regions: string[];
  rank: number;
  transitHours: number | null;
  /** Share of its recent booking calls that booked; null when it has none. */
  successRate?: number | null;
  /** Bookings in flight there now. */
  load?: number;
}

export interface AttemptRecord {
  carrierId: string;
  at: Date;
  outcome: AttemptOutcome;
  /** When the answer came; a backoff or Retry-After counts from it (from `at` while unknown). */
  answeredAt?: Date | null;
  retryAfterMs?: number | null;
  /** Set once the carrier confirmed a possible booking is gone. */
  cancelledAt?: Date | null;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BookingBudget {
  /** Calls to one carrier for one parcel, at most. */
  maxAttempts: number;
  /** Time from the first call to one carrier until it is given up for the parcel. */
  maxMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A carrier's Retry-After is honoured up to this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_BUDGET: BookingBudget = {
  maxAttempts: 5,
  maxMs: 30_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 10_000,
};

export type BookingDecision =
  | { kind: 'book'; carrierId: string }
  | { kind: 'retry_in'; carrierId: string; delayMs: number }
  /** The carrier is given up after an ambiguous answer: cancel there before the next is tried. */
  | { kind: 'cancel_first'; carrierId: string }
  | { kind: 'give_up'; reason: 'no_carrier' | 'carrier_failed' };

export function servesRegion(carrier: Pick<CarrierCandidate, 'regions'>, region: string): boolean {
  return carrier.regions.includes('*') || carrier.regions.includes(region);
}

/** Enabled carriers that serve the region, in the order they are tried: rank, success, load, id. */
export function eligibleCarriers<C extends CarrierCandidate>(carriers: C[], region: string): C[] {
  return carriers
    .filter((c) => c.enabled && servesRegion(c, region))
    .sort(
      (a, b) =>
        a.rank - b.rank ||
        (b.successRate ?? 1) - (a.successRate ?? 1) ||
        (a.load ?? 0) - (b.load ?? 0) ||
        a.id.localeCompare(b.id),
    );
}

/** Exponential backoff with full jitter: a random delay up to min(cap, base · 2^(n-1)). */
export function fullJitterDelay(attempts: number, budget: BookingBudget, random = Math.random): number {
  const ceiling = Math.min(budget.maxDelayMs, budget.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling * random());
}

function jitterOf(at: Date): number {
  return (at.getTime() % 997) / 997;
}

const AMBIGUOUS: readonly AttemptOutcome[] = ['pending', 'timeout'];

export function nextBookingStep(input: {
  candidates: CarrierCandidate[];
  region: string;
  attempts: AttemptRecord[];
  breakers?: Record<string, BreakerState>;
  now: Date;
  budget?: BookingBudget;
  random?: () => number;
}): BookingDecision {
  const budget = input.budget ?? DEFAULT_BUDGET;
  const now = input.now.getTime();
  const eligible = eligibleCarriers(input.candidates, input.region);
  let onlyRefusals = true;
  for (const carrier of eligible) {
    const tried = input.attempts
      .filter((a) => a.carrierId === carrier.id)
      .sort((a, b) => a.at.getTime() - b.at.getTime());
    const last = tried[tried.length - 1];
    if (last?.outcome === 'refused') continue; // 422: this carrier can't take it
    onlyRefusals = false;
    const uncancelled = tried.some((a) => AMBIGUOUS.includes(a.outcome) && !a.cancelledAt);
    if (!last) {
      if (input.breakers?.[carrier.id] === 'open') continue; // skipped: not an attempt
      return { kind: 'book', carrierId: carrier.id };
    }
    const first = tried[0].at.getTime();
    // The jitter is drawn from the attempt itself, so every run of the decision agrees on it.
    const wait = last.retryAfterMs
      ? Math.min(last.retryAfterMs, budget.maxRetryAfterMs)
      : fullJitterDelay(tried.length, budget, input.random ?? (() => jitterOf(last.at)));
    const retryAt = Math.max(now, (last.answeredAt ?? last.at).getTime() + wait);
    const usedUp = tried.length >= budget.maxAttempts || retryAt - first >= budget.maxMs;
    if (usedUp || input.breakers?.[carrier.id] === 'open') {
      if (uncancelled) return { kind: 'cancel_first', carrierId: carrier.id };
      continue;
    }
    if (retryAt > now) return { kind: 'retry_in', carrierId: carrier.id, delayMs: retryAt - now };
    return { kind: 'book', carrierId: carrier.id };
  }
  return { kind: 'give_up', reason: onlyRefusals ? 'no_carrier' : 'carrier_failed' };
}
