import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BUDGET,
  eligibleCarriers,
  fullJitterDelay,
  nextBookingStep,
  type AttemptRecord,
  type CarrierCandidate,
} from '../../src/domain/carrier-choice.js';

const carrier = (id: string, rank: number, extra: Partial<CarrierCandidate> = {}): CarrierCandidate => ({
  id,
  enabled: true,
  regions: ['*'],
  rank,
  transitHours: null,
  ...extra,
});
const A = carrier('a', 1);
const B = carrier('b', 2);
const T0 = new Date('2026-01-31T08:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const attempt = (
  carrierId: string,
  ms: number,
  outcome: AttemptRecord['outcome'],
  extra: Partial<AttemptRecord> = {},
) => ({
  carrierId,
  at: at(ms),
  outcome,
  ...extra,
});
const decide = (
  attempts: AttemptRecord[],
  nowMs: number,
  more: Partial<Parameters<typeof nextBookingStep>[0]> = {},
) =>
  nextBookingStep({
    candidates: [B, A],
    region: 'shanghai-pudong',
    attempts,
    now: at(nowMs),
    random: () => 1,
    ...more,
  });

describe('carrier choice over a parcel’s attempt history', () => {
  it('books the lowest rank first', () => {
    expect(decide([], 0)).toEqual({ kind: 'book', carrierId: 'a' });
  });

  it('a 422 fails over to the next carrier at once', () => {
    expect(decide([attempt('a', 0, 'refused')], 1)).toEqual({ kind: 'book', carrierId: 'b' });
  });

  it('every carrier refusing is no_carrier', () => {
    expect(decide([attempt('a', 0, 'refused'), attempt('b', 1, 'refused')], 2)).toEqual({
      kind: 'give_up',
      reason: 'no_carrier',
    });
  });

  it('no carrier serving the region is no_carrier', () => {
    expect(decide([], 0, { candidates: [carrier('x', 1, { regions: ['wuhan'] })] })).toEqual({
      kind: 'give_up',
      reason: 'no_carrier',
    });
  });

  it('a transient error waits for the backoff, then retries the same carrier', () => {
    const history = [attempt('a', 0, 'transient')];
    const first = decide(history, 10);
    expect(first.kind).toBe('retry_in');
    if (first.kind !== 'retry_in') return;
    expect(first.carrierId).toBe('a');
    expect(first.delayMs).toBe(DEFAULT_BUDGET.baseDelayMs - 10);
    expect(decide(history, DEFAULT_BUDGET.baseDelayMs)).toEqual({ kind: 'book', carrierId: 'a' });
  });

  it('Retry-After is honoured, capped at 10 s', () => {
    expect(decide([attempt('a', 0, 'transient', { retryAfterMs: 3000 })], 0)).toEqual({
      kind: 'retry_in',
      carrierId: 'a',
      delayMs: 3000,
    });
    const capped = decide([attempt('a', 0, 'transient', { retryAfterMs: 99_000 })], 0);
    expect(capped).toEqual({ kind: 'retry_in', carrierId: 'a', delayMs: 10_000 });
  });

  it('gives a carrier up after 5 attempts and fails over', () => {
    const five = [0, 1, 2, 3, 4].map((i) => attempt('a', i * 1000, 'transient'));
    expect(decide(five, 5000)).toEqual({ kind: 'book', carrierId: 'b' });
  });

  it('gives a carrier up once its next try would pass 30 s from the first', () => {
    const history = [attempt('a', 0, 'transient'), attempt('a', 29_000, 'transient')];
    expect(decide(history, 29_001)).toEqual({ kind: 'book', carrierId: 'b' });
  });

  it('after an ambiguous answer, cancels at the old carrier before the next is tried', () => {
    const five = [0, 1, 2, 3].map((i) => attempt('a', i * 1000, 'transient'));
    const history = [...five, attempt('a', 4000, 'timeout')];
    expect(decide(history, 5000)).toEqual({ kind: 'cancel_first', carrierId: 'a' });
    const cancelled = history.map((h) => ({ ...h, cancelledAt: at(6000) }));
    expect(decide(cancelled, 6000)).toEqual({ kind: 'book', carrierId: 'b' });
  });

  it('a call left pending by a dead worker counts as ambiguous', () => {
    const history = [0, 1, 2, 3, 4].map((i) => attempt('a', i * 1000, i === 4 ? 'pending' : 'transient'));
    expect(decide(history, 60_000)).toEqual({ kind: 'cancel_first', carrierId: 'a' });
  });

  it('skips an open breaker without an attempt; all used up or open is carrier_failed', () => {
    expect(decide([], 0, { breakers: { a: 'open' } })).toEqual({ kind: 'book', carrierId: 'b' });
    const usedUp = [0, 1, 2, 3, 4].map((i) => attempt('b', i * 1000, 'transient'));
    expect(decide(usedUp, 5000, { breakers: { a: 'open' } })).toEqual({
      kind: 'give_up',
      reason: 'carrier_failed',
    });
  });

  it('ranks by rank, then recent success, then load, then id; skips disabled carriers', () => {
    const ranked = eligibleCarriers(
      [
        carrier('d', 1, { successRate: 0.5 }),
        carrier('c', 1, { successRate: 0.9, load: 5 }),
        carrier('b', 1, { successRate: 0.9, load: 1 }),
        carrier('a', 0, { enabled: false }),
        carrier('e', 2),
      ],
      'x',
    );
    expect(ranked.map((c) => c.id)).toEqual(['b', 'c', 'd', 'e']);
  });

  it('full jitter stays within the exponential ceiling', () => {
    for (let n = 1; n <= 8; n++) {
      const ceiling = Math.min(DEFAULT_BUDGET.maxDelayMs, DEFAULT_BUDGET.baseDelayMs * 2 ** (n - 1));
      expect(fullJitterDelay(n, DEFAULT_BUDGET, () => 1)).toBe(ceiling);
      expect(fullJitterDelay(n, DEFAULT_BUDGET, () => 0)).toBe(0);
    }
  });

  it('decides the same on every run for the same history (jitter drawn from the attempt)', () => {
    const history = [attempt('a', 123, 'transient')];
    const run = () => nextBookingStep({ candidates: [A, B], region: 'r', attempts: history, now: at(124) });
    expect(run()).toEqual(run());
  });
});
