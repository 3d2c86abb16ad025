import { describe, expect, it } from 'vitest';
import {
  MAX_WAIT_MS,
  promiseAt,
  stageThroughput,
  waitAheadMs,
  type StageLoad,
} from '../../src/domain/promise.js';

const counts = (essential: number, express: number, standard: number) => ({ essential, express, standard });
const stage = (backlog: StageLoad['backlog'], throughput: number): StageLoad => ({ backlog, throughput });

describe('wait ahead of an order', () => {
  it('is nothing when nothing is ahead, whatever the throughput', () => {
    expect(waitAheadMs('standard', [stage(counts(0, 0, 0), 10), stage(counts(0, 0, 0), 0)])).toBe(0);
    expect(waitAheadMs('essential', [])).toBe(0);
  });

  it('sums each stage: the backlog of its class and above ÷ the stage throughput', () => {
    // allocation: 100 jobs at 50/s = 2 s; dispatch: 30 jobs at 10/s = 3 s
    const stages = [stage(counts(20, 30, 50), 50), stage(counts(10, 10, 10), 10)];
    expect(waitAheadMs('standard', stages)).toBe(5_000);
    // express: allocation 50 / 50 = 1 s, dispatch 20 / 10 = 2 s
    expect(waitAheadMs('express', stages)).toBe(3_000);
  });

  it("an essential order's wait ignores the express and standard backlog", () => {
    const light = [stage(counts(10, 0, 0), 10), stage(counts(0, 0, 0), 10)];
    const heavy = [stage(counts(10, 5_000, 50_000), 10), stage(counts(0, 900, 9_000), 10)];
    expect(waitAheadMs('essential', heavy)).toBe(waitAheadMs('essential', light));
    expect(waitAheadMs('essential', heavy)).toBe(1_000);
    expect(waitAheadMs('standard', heavy)).toBeGreaterThan(waitAheadMs('express', heavy));
    expect(waitAheadMs('express', heavy)).toBeGreaterThan(waitAheadMs('essential', heavy));
  });

  it('grows with the backlog', () => {
    const at = (n: number) =>
      waitAheadMs('standard', [stage(counts(0, 0, n), 20), stage(counts(0, 0, n), 5)]);
    expect(at(10)).toBeLessThan(at(100));
    expect(at(100)).toBeLessThan(at(1_000));
  });

  it('shrinks with the throughput', () => {
    const at = (rate: number) => waitAheadMs('express', [stage(counts(100, 100, 100), rate)]);
    expect(at(10)).toBeGreaterThan(at(20));
    expect(at(20)).toBeGreaterThan(at(200));
    expect(at(200)).toBe(1_000);
  });

  it('is capped at MAX_WAIT_MS; a stage that cannot drain waits the cap', () => {
    expect(waitAheadMs('standard', [stage(counts(0, 0, 10_000_000), 1)])).toBe(MAX_WAIT_MS);
    expect(waitAheadMs('standard', [stage(counts(0, 0, 1), 0)])).toBe(MAX_WAIT_MS);
    expect(waitAheadMs('standard', [stage(counts(0, 0, 1), Number.NaN)])).toBe(MAX_WAIT_MS);
    expect(MAX_WAIT_MS).toBe(24 * 3_600_000);
  });

  it('ignores negative or missing counts', () => {
    const odd = { essential: -5, express: Number.NaN, standard: 10 };
    expect(waitAheadMs('standard', [stage(odd, 10)])).toBe(1_000);
  });
});

describe('stage throughput', () => {
  it('is workers × WORKER_CONCURRENCY ÷ the mean job seconds', () => {
    expect(stageThroughput({ workers: 2, concurrency: 8, jobSeconds: 0.1 })).toBeCloseTo(160);
    expect(stageThroughput({ workers: 1, concurrency: 4, jobSeconds: 2 })).toBe(2);
  });

  it('assumes one replica when no worker serves the stage', () => {
    expect(stageThroughput({ workers: 0, concurrency: 8, jobSeconds: 0.05 })).toBeCloseTo(160);
  });

  it('never divides by a zero duration', () => {
    expect(Number.isFinite(stageThroughput({ workers: 1, concurrency: 8, jobSeconds: 0 }))).toBe(true);
  });
});

describe('promiseAt', () => {
  it('adds the wait ahead and the transit hours to the start', () => {
    const start = new Date('2024-03-01T10:00:00.000Z');
    expect(promiseAt(start, 24).toISOString()).toBe('2024-03-02T10:00:00.000Z');
    expect(promiseAt(start, 24, 90_000).toISOString()).toBe('2024-03-02T10:01:30.000Z');
  });
});
