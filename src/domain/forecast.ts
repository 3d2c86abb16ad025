/**
 * Seeing the peak coming (contract, "Operators": GET /v1/admin/forecast): the orders per minute
 * expected over the next minutes from the recent intake, and the worker replicas each queue needs
 * to keep up with the peak of that forecast. Pure: db/forecast.ts reads the counts, steps/forecast.ts
 * measures the stages, this file decides.
 *
 * Which model, and why. The intake of a shop platform has a daily shape (a lunch peak, an evening
 * peak) on top of a level that drifts, and per-minute counts are noisy (Poisson-like).
 * - At least two whole days of history (SEASON_MINUTES × 2): Holt-Winters, additive, with a daily
 *   season of 1440 minutes. Additive rather than multiplicative because a minute with no orders
 *   (zero) is common at night and a multiplicative season cannot start from zero. Each of the 1440
 *   seasonal indices is seen only once a day, so the initial profile is the mean of the whole days
 *   seen (not the first day alone) and is read through a small circular moving average, which
 *   keeps one noisy minute from becoming a spike in tomorrow's forecast.
 * - Less history, but at least HOLT_MIN_MINUTES: Holt's linear trend (level + trend, no season):
 *   a surge that is building is extrapolated rather than lagged.
 * - Fewer minutes than that: an EWMA (simple exponential smoothing), a flat forecast — a trend
 *   fitted to a handful of minutes is noise.
 * - No history at all: zero.
 * The band is ± Z × σ_h, where σ is the standard deviation of the one-step-ahead residuals of the
 * fit and σ_h = σ × √(1 + (h − 1) α²) widens it with the lead time h (the simple exponential
 * smoothing formula, used as an approximation for the other two); `low` is never below 0.
 */

export const MINUTE_MS = 60_000;
/** The daily season, in minutes. */
export const SEASON_MINUTES = 1440;
/** Below this many minutes of history the trend is not fitted (EWMA instead of Holt). */
export const HOLT_MIN_MINUTES = 30;
/** Horizon bounds (the route accepts 60–1440) and default. */
export const MIN_HORIZON_MINUTES = 60;
export const MAX_HORIZON_MINUTES = 1440;
export const DEFAULT_HORIZON_MINUTES = 60;
/** How far back the intake is read: three days, so Holt-Winters has two whole days and more. */
export const LOOKBACK_MINUTES = 3 * SEASON_MINUTES;
/** 95 % band under normal residuals. */
export const Z = 1.96;

/** Smoothing constants per model (per-minute data: small, so one noisy minute moves little). */
export const SMOOTHING = {
  ewma: { alpha: 0.3 },
  holt: { alpha: 0.2, beta: 0.02 },
  holtWinters: { alpha: 0.05, beta: 0.0005, gamma: 0.1, smoothWindow: 7 },
} as const;

export type ForecastModel = 'none' | 'ewma' | 'holt' | 'holt-winters';

export interface ForecastPoint {
  at: Date;
  expected: number;
  low: number;
  high: number;
}

export interface Forecast {
  model: ForecastModel;
  points: ForecastPoint[];
}

/**
 * Zero-fills per-minute counts into a dense series: one value per minute from the first minute
 * with an order (history before the first order says nothing about demand: the engine may not
 * have run) up to and including `lastMinute`. Counts outside [first, lastMinute] are ignored.
 */
export function denseSeries(
  counts: readonly { minute: Date; orders: number }[],
  lastMinute: Date,
): { start: Date; values: number[] } {
  const last = Math.floor(lastMinute.getTime() / MINUTE_MS);
  const byMinute = new Map<number, number>();
  let first = Infinity;
  for (const c of counts) {
    const m = Math.floor(c.minute.getTime() / MINUTE_MS);
    if (m > last) continue;
    byMinute.set(m, (byMinute.get(m) ?? 0) + c.orders);
    if (m < first) first = m;
  }
  if (first === Infinity) return { start: new Date((last + 1) * MINUTE_MS), values: [] };
  const values: number[] = [];
  for (let m = first; m <= last; m++) values.push(byMinute.get(m) ?? 0);
  return { start: new Date(first * MINUTE_MS), values };
}

/** Minutes between points: every minute up to 180 minutes, then every 5 (1440 → 288 points). */
export const stepMinutesOf = (horizonMinutes: number) => (horizonMinutes <= 180 ? 1 : 5);

interface Fit {
  model: ForecastModel;
  /** Expected value h minutes after the last observed minute (h ≥ 1). */
  at(h: number): number;
  sigma: number;
  alpha: number;
}

function stdDev(residuals: number[]): number {
  if (residuals.length < 2) return 0;
  const mean = residuals.reduce((s, r) => s + r, 0) / residuals.length;
  const variance = residuals.reduce((s, r) => s + (r - mean) ** 2, 0) / (residuals.length - 1);
  return Math.sqrt(variance);
}

function fitEwma(values: number[]): Fit {
  const { alpha } = SMOOTHING.ewma;
  let level = values[0];
  const residuals: number[] = [];
  for (let t = 1; t < values.length; t++) {
    residuals.push(values[t] - level);
    level = alpha * values[t] + (1 - alpha) * level;
  }
  return { model: 'ewma', at: () => level, sigma: stdDev(residuals), alpha };
}

function fitHolt(values: number[]): Fit {
  const { alpha, beta } = SMOOTHING.holt;
  // Start from the first value and the mean slope of the first ten minutes.
  const k = Math.min(10, values.length - 1);
  let level = values[0];
  let trend = (values[k] - values[0]) / k;
  const residuals: number[] = [];
  for (let t = 1; t < values.length; t++) {
    const predicted = level + trend;
    // The first minutes only settle the state; their residuals would inflate the band.
    if (t > k) residuals.push(values[t] - predicted);
    const previous = level;
    level = alpha * values[t] + (1 - alpha) * predicted;
    trend = beta * (level - previous) + (1 - beta) * trend;
  }
  return { model: 'holt', at: (h) => level + h * trend, sigma: stdDev(residuals), alpha };
}

/** Circular moving average of `window` (odd) indices around each one. */
function circularSmooth(values: number[], window: number): number[] {
  const n = values.length;
  const half = Math.floor(window / 2);
  return values.map((_, i) => {
    let sum = 0;
    for (let d = -half; d <= half; d++) sum += values[(((i + d) % n) + n) % n];
    return sum / window;
  });
}

function fitHoltWinters(values: number[]): Fit {
  const { alpha, beta, gamma, smoothWindow } = SMOOTHING.holtWinters;
  const m = SEASON_MINUTES;
  const days = Math.floor(values.length / m);
  // The initial season: each minute of the day's mean deviation from its day's mean, over every
  // whole day seen, smoothed; level and trend from the first two days' means.
  const dayMeans = Array.from({ length: days }, (_, d) => {
    let sum = 0;
    for (let i = 0; i < m; i++) sum += values[d * m + i];
    return sum / m;
  });
  const raw = Array.from({ length: m }, (_, i) => {
    let sum = 0;
    for (let d = 0; d < days; d++) sum += values[d * m + i] - dayMeans[d];
    return sum / days;
  });
  const season = circularSmooth(raw, smoothWindow);
  let level = dayMeans[0];
  let trend = (dayMeans[1] - dayMeans[0]) / m;
  const residuals: number[] = [];
  // Run from the start of the second day, the first day having given the state its start.
  for (let t = m; t < values.length; t++) {
    const i = t % m;
    const predicted = level + trend + season[i];
    // Residuals from the third day on when there is one (the second day still settles the level).
    if (t >= Math.min(2 * m, values.length - m)) residuals.push(values[t] - predicted);
    const previous = level;
    level = alpha * (values[t] - season[i]) + (1 - alpha) * (previous + trend);
    trend = beta * (level - previous) + (1 - beta) * trend;
    season[i] = gamma * (values[t] - level) + (1 - gamma) * season[i];
  }
  const last = values.length - 1;
  const halfWindow = Math.floor(smoothWindow / 2);
  const seasonAt = (i: number) => {
    let sum = 0;
    for (let d = -halfWindow; d <= halfWindow; d++) sum += season[(((i + d) % m) + m) % m];
    return sum / smoothWindow;
  };
  return {
    model: 'holt-winters',
    at: (h) => level + h * trend + seasonAt((last + h) % m),
    sigma: stdDev(residuals),
    alpha,
  };
}

/** Picks the model by how much history there is (see the comment at the top). */
export function fit(values: number[]): Fit | null {
  if (values.length === 0) return null;
  if (values.length >= 2 * SEASON_MINUTES) return fitHoltWinters(values);
  if (values.length >= HOLT_MIN_MINUTES) return fitHolt(values);
  return fitEwma(values);
}

/**
 * The forecast made at `now` from the dense per-minute series ending at the last whole minute
 * before `now`'s minute (`values[values.length - 1]` is the minute starting at `start + (n − 1) min`).
 * Points are at the start of each minute forecast: `now`'s minute + step, + 2 × step, … up to
 * `now`'s minute + horizon (the minute under way is not a point: it is partly counted already).
 */
export function forecast(
  series: { start: Date; values: number[] },
  now: Date,
  horizonMinutes = DEFAULT_HORIZON_MINUTES,
): Forecast {
  const current = Math.floor(now.getTime() / MINUTE_MS);
  const step = stepMinutesOf(horizonMinutes);
  const model = fit(series.values);
  const lastObserved = Math.floor(series.start.getTime() / MINUTE_MS) + series.values.length - 1;
  const points: ForecastPoint[] = [];
  for (let k = step; k <= horizonMinutes; k += step) {
    const minute = current + k;
    if (!model) {
      points.push({ at: new Date(minute * MINUTE_MS), expected: 0, low: 0, high: 0 });
      continue;
    }
    const h = Math.max(1, minute - lastObserved);
    const expected = Math.max(0, model.at(h));
    const spread = Z * model.sigma * Math.sqrt(1 + (h - 1) * model.alpha ** 2);
    points.push({
      at: new Date(minute * MINUTE_MS),
      expected: round(expected),
      low: round(Math.max(0, expected - spread)),
      high: round(expected + spread),
    });
  }
  return { model: model?.model ?? 'none', points };
}

const round = (x: number) => Math.round(x * 100) / 100;

/** The highest expected rate of the forecast (0 when it has no points). */
export const peakOf = (points: readonly ForecastPoint[]) =>
  points.reduce((peak, p) => Math.max(peak, p.expected), 0);

// Replicas

/**
 * Jobs of each stage per order, when too few recent orders measure them (see jobsPerOrder):
 * allocation one job per order; dispatch one routing job plus one booking call per parcel (a
 * little over one: splits and retries); cancellation a few orders in a hundred; notification one
 * message per status told per channel (about five statuses — received, allocated, dispatched,
 * in_transit, delivered — to the customer's one channel plus the shop's webhook when it has one).
 */
export const DEFAULT_JOBS_PER_ORDER = {
  allocation: 1,
  dispatch: 2.2,
  cancellation: 0.05,
  notification: 10,
} as const;

/** Seconds a job takes, when no completed job measures it (a carrier or SMS call dominates). */
export const DEFAULT_JOB_SECONDS = {
  allocation: 0.05,
  dispatch: 0.3,
  cancellation: 0.3,
  notification: 0.2,
} as const;

export type Stage = keyof typeof DEFAULT_JOBS_PER_ORDER;
/** Headroom over the forecast peak, so replicas are ready before the queues grow. */
export const DEFAULT_HEADROOM = 1.2;
/** Fewer recent orders than this: the default jobs-per-order factors stand. */
export const MIN_ORDERS_TO_MEASURE = 20;

/** What db/forecast.ts counts over the recent orders. */
export interface RecentWork {
  orders: number;
  /** Booking calls made for them (carrier_attempts). */
  bookings: number;
  /** Possible bookings cancelled at a carrier for them (cancellation jobs). */
  cancellations: number;
  /** Customer messages and shop webhooks written for them (notifications outbox). */
  messages: number;
}

/**
 * Jobs per order of each stage, measured over the recent orders when there are enough of them:
 * dispatch = 1 routing job + booking calls per order; cancellation = cancelled bookings per
 * order; notification = outbox messages per order (statuses × channels). Allocation is one job
 * per order by construction. Recent orders still under way have not had all their messages yet,
 * so the measure errs low (notification is taken as at least one message per order).
 */
export function jobsPerOrder(work: RecentWork | null): Record<Stage, number> {
  if (!work || work.orders < MIN_ORDERS_TO_MEASURE) return { ...DEFAULT_JOBS_PER_ORDER };
  return {
    allocation: 1,
    dispatch: 1 + work.bookings / work.orders,
    cancellation: work.cancellations / work.orders,
    notification: Math.max(work.messages / work.orders, 1),
  };
}

/**
 * Orders per minute one replica of a stage keeps up with: a replica runs `concurrency` jobs at a
 * time (WORKER_CONCURRENCY per queue it serves), each taking `jobSeconds` on average (measured:
 * the mean processedOn → finishedOn of the stage's recently completed jobs), so it completes
 * concurrency × 60 ÷ jobSeconds jobs a minute, i.e. that ÷ jobsPerOrder orders. A stage needing
 * no jobs (jobsPerOrder 0) never limits: Infinity.
 */
export function perReplicaThroughput(opts: {
  concurrency: number;
  jobSeconds: number;
  jobsPerOrder: number;
}): number {
  const jobsPerMinute = (opts.concurrency * 60) / Math.max(opts.jobSeconds, 0.001);
  return opts.jobsPerOrder > 0 ? jobsPerMinute / opts.jobsPerOrder : Infinity;
}

/**
 * Replicas a queue needs for `expectedPeakPerMinute` orders a minute: ceil(peak × headroom ÷
 * per-replica throughput in orders per minute), at least 1 (a queue with no replica never drains).
 * Rate-limited stages (a carrier's queue, SMS) cannot go faster than their limit whatever the
 * replicas; this counts processing capacity only.
 */
export function recommendedReplicas(
  expectedPeakPerMinute: number,
  perReplicaThroughputPerMinute: Record<string, number>,
  headroom = DEFAULT_HEADROOM,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [queue, throughput] of Object.entries(perReplicaThroughputPerMinute)) {
    // A tiny epsilon keeps 2.0000000000000004 (floating point) from becoming 3.
    const needed =
      throughput > 0 && Number.isFinite(throughput)
        ? Math.ceil((Math.max(expectedPeakPerMinute, 0) * headroom) / throughput - 1e-9)
        : 1;
    out[queue] = Math.max(1, needed);
  }
  return out;
}
