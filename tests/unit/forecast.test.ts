/**
 * The intake forecast and the replica arithmetic (domain/forecast.ts) on synthetic series whose
 * true curve is known: a daily peak at 12:00, a flat intake, a steady ramp.
 */
import { describe, expect, it } from 'vitest';
import {
  MINUTE_MS,
  SEASON_MINUTES,
  denseSeries,
  fit,
  forecast,
  jobsPerOrder,
  peakOf,
  perReplicaThroughput,
  recommendedReplicas,
  stepMinutesOf,
  type ForecastPoint,
} from '../../src/domain/forecast.js';

/** mulberry32: a small seeded RNG, so the noise is the same on every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** A standard normal draw (Box–Muller). */
const normal = (random: () => number) =>
  Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

const DAY0 = Date.UTC(2026, 0, 5); // a midnight
/** Orders per minute at minute-of-day m: 10 at night, 90 at 12:00 (a raised sine sharpened to a peak). */
const trueDaily = (m: number) =>
  10 + 80 * ((1 + Math.cos((2 * Math.PI * (m - 720)) / SEASON_MINUTES)) / 2) ** 16;

function series(length: number, value: (t: number) => number, noise = 0, seed = 1) {
  const random = rng(seed);
  const values = Array.from({ length }, (_, t) => Math.max(0, Math.round(value(t) + noise * normal(random))));
  return { start: new Date(DAY0), values };
}

function expectBand(points: ForecastPoint[]) {
  for (const p of points) {
    expect(p.low).toBeGreaterThanOrEqual(0);
    expect(p.low).toBeLessThanOrEqual(p.expected);
    expect(p.expected).toBeLessThanOrEqual(p.high);
  }
}

describe('forecast', () => {
  it('three days of a daily peak at 12:00: at 11:00 of day 4 it expects the rise toward noon, near the true curve', () => {
    const at11 = 3 * SEASON_MINUTES + 11 * 60; // minutes since DAY0
    const s = series(at11, (t) => trueDaily(t % SEASON_MINUTES), 5, 42);
    const now = new Date(DAY0 + at11 * MINUTE_MS + 20_000); // 11:00:20, minute 11:00 under way
    const f = forecast(s, now, 60);
    expect(f.model).toBe('holt-winters');
    expect(f.points).toHaveLength(60);
    expect(f.points[0].at.toISOString()).toBe('2026-01-08T11:01:00.000Z');
    expect(f.points[59].at.toISOString()).toBe('2026-01-08T12:00:00.000Z');
    for (const p of f.points) {
      const m = (p.at.getTime() - DAY0) / MINUTE_MS;
      expect(Math.abs(p.expected - trueDaily(m % SEASON_MINUTES))).toBeLessThan(8);
    }
    // A rise: noon well above 11:01, and the peak of the hour in its last ten minutes.
    expect(f.points[59].expected - f.points[0].expected).toBeGreaterThan(10);
    const peakIndex = f.points.findIndex((p) => p.expected === peakOf(f.points));
    expect(peakIndex).toBeGreaterThanOrEqual(50);
    expectBand(f.points);
    // The band holds the truth at noon.
    expect(f.points[59].low).toBeLessThan(90);
    expect(f.points[59].high).toBeGreaterThan(90);
  });

  it('a flat intake forecasts flat', () => {
    const s = series(6 * 60, () => 20, 2, 7);
    const now = new Date(DAY0 + 6 * 60 * MINUTE_MS);
    const f = forecast(s, now, 120);
    expect(f.model).toBe('holt');
    for (const p of f.points) expect(Math.abs(p.expected - 20)).toBeLessThan(3);
    expectBand(f.points);
  });

  it('a linear ramp forecasts the ramp continuing', () => {
    // 5 orders a minute rising by 0.1 a minute for three hours.
    const ramp = (t: number) => 5 + 0.1 * t;
    const length = 180;
    const s = series(length, ramp, 0);
    const f = forecast(s, new Date(DAY0 + length * MINUTE_MS), 60);
    expect(f.points).toHaveLength(60);
    f.points.forEach((p, k) => {
      // Point k is minute length + k + 1 since the start.
      const truth = ramp(length + k + 1 - 0.5); // rounding of the series shifts it by half a minute at most
      expect(Math.abs(p.expected - truth)).toBeLessThan(1);
    });
    expect(f.points[59].expected).toBeGreaterThan(f.points[0].expected + 5);
    expectBand(f.points);
  });

  it('with a few minutes of history: an EWMA, flat; with none: zeros', () => {
    const few = series(10, () => 4);
    const f = forecast(few, new Date(DAY0 + 10 * MINUTE_MS), 60);
    expect(fit(few.values)?.model).toBe('ewma');
    for (const p of f.points) expect(p.expected).toBeCloseTo(4, 5);
    const none = forecast({ start: new Date(DAY0), values: [] }, new Date(DAY0), 60);
    expect(none.model).toBe('none');
    expect(none.points).toHaveLength(60);
    for (const p of none.points) expect(p).toMatchObject({ expected: 0, low: 0, high: 0 });
  });

  it('a falling intake never forecasts below zero', () => {
    const s = series(120, (t) => Math.max(0, 60 - 0.5 * t), 1, 3);
    const f = forecast(s, new Date(DAY0 + 120 * MINUTE_MS), 180);
    expectBand(f.points);
    expect(f.points.at(-1)!.expected).toBe(0);
  });

  it('points every minute up to a 180-minute horizon, every 5 beyond', () => {
    expect(stepMinutesOf(60)).toBe(1);
    expect(stepMinutesOf(180)).toBe(1);
    expect(stepMinutesOf(181)).toBe(5);
    const f = forecast(
      series(60, () => 1),
      new Date(DAY0 + 60 * MINUTE_MS),
      1440,
    );
    expect(f.points).toHaveLength(288);
    expect(f.points[1].at.getTime() - f.points[0].at.getTime()).toBe(5 * MINUTE_MS);
  });

  it('zero-fills the minutes with no orders, from the first minute with any', () => {
    const minute = (m: number) => new Date(DAY0 + m * MINUTE_MS);
    const dense = denseSeries(
      [
        { minute: minute(5), orders: 2 },
        { minute: minute(8), orders: 1 },
        { minute: minute(12), orders: 9 }, // after the last minute: ignored
      ],
      minute(10),
    );
    expect(dense.start).toEqual(minute(5));
    expect(dense.values).toEqual([2, 0, 0, 1, 0, 0]);
    expect(denseSeries([], minute(10)).values).toEqual([]);
  });
});

describe('recommendedReplicas', () => {
  it('ceil(peak × headroom ÷ per-replica throughput), at least 1', () => {
    expect(recommendedReplicas(100, { allocation: 40, dispatch: 25, notification: 1000 }, 1.2)).toEqual({
      allocation: 3, // 120 / 40 = 3 exactly: not rounded up past it
      dispatch: 5, // 4.8 → 5
      notification: 1, // 0.12 → 1
    });
    expect(recommendedReplicas(0, { allocation: 10 })).toEqual({ allocation: 1 });
    expect(recommendedReplicas(10.1, { allocation: 10 }, 1)).toEqual({ allocation: 2 });
    expect(recommendedReplicas(50, { cancellation: Infinity, dispatch: 0 })).toEqual({
      cancellation: 1,
      dispatch: 1,
    });
  });

  it('per-replica throughput: concurrency × 60 ÷ job seconds ÷ jobs per order', () => {
    // 8 jobs at a time of 0.5 s: 960 jobs a minute; 2 jobs per order: 480 orders a minute.
    expect(perReplicaThroughput({ concurrency: 8, jobSeconds: 0.5, jobsPerOrder: 2 })).toBe(480);
    expect(perReplicaThroughput({ concurrency: 8, jobSeconds: 0.5, jobsPerOrder: 0 })).toBe(Infinity);
  });

  it('jobs per order: measured over enough recent orders, the defaults otherwise', () => {
    expect(jobsPerOrder({ orders: 100, bookings: 130, cancellations: 5, messages: 800 })).toEqual({
      allocation: 1,
      dispatch: 2.3,
      cancellation: 0.05,
      notification: 8,
    });
    expect(jobsPerOrder({ orders: 3, bookings: 30, cancellations: 0, messages: 0 }).dispatch).toBe(2.2);
    expect(jobsPerOrder(null).notification).toBe(10);
  });
});

describe('forecast gauges', () => {
  it('the database away: the scrape answers, with both gauges empty', async () => {
    const { createMetrics } = await import('../../src/metrics.js');
    // Every call on the database fails, as a pool whose server is gone does.
    const away = () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    };
    const warnings: string[] = [];
    const ctx = {
      queues: { backend: { connected: () => false } },
      db: new Proxy({}, { get: () => away }),
      log: { warn: (_: unknown, message: string) => warnings.push(message) },
      config: { workerConcurrency: 8, overdueGraceHours: 12 },
      breakers: { states: away },
    } as unknown as Parameters<typeof createMetrics>[0];
    const { registry } = createMetrics(ctx);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE surgeline_forecast_orders_per_minute gauge');
    expect(text).toContain('# TYPE surgeline_recommended_replicas gauge');
    expect(text).not.toMatch(/^surgeline_forecast_orders_per_minute /m);
    expect(text).not.toMatch(/^surgeline_recommended_replicas\{/m);
    expect(warnings).toContain('forecast gauges: database unavailable');
  });
});
