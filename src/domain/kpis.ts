/**
 * The operators' scorecard (contract, "Operators": GET /v1/admin/kpis): what each figure means,
 * from counts to rates. Pure: the database counts (db/kpis.ts), the demo's report can count in
 * memory; both turn their counts into figures here.
 *
 * Which orders count: those closed in the window — delivered or failed, judged by when the engine
 * recorded the closing event of the order's current attempt. Cancelled orders count in neither; a
 * retried order counts once, by how its current attempt closed.
 */

export const KPI_WINDOWS = ['1h', '24h', '7d'] as const;
export type KpiWindow = (typeof KPI_WINDOWS)[number];
export const DEFAULT_KPI_WINDOW: KpiWindow = '24h';

const MINUTE = 60_000;
export const WINDOW_MS: Record<KpiWindow, number> = {
  '1h': 60 * MINUTE,
  '24h': 24 * 60 * MINUTE,
  '7d': 7 * 24 * 60 * MINUTE,
};

/** The targets the scorecard is read against: on time and satisfied at least, errors at most. */
export const KPI_TARGETS = { onTimeRate: 0.95, errorRate: 0.01, satisfaction: 0.9 } as const;

/** What the figures of one set of closed orders (the whole window, or one slice) are made from. */
export interface ClosedCounts {
  /** Orders closed in the window: delivered + failed. */
  closed: number;
  delivered: number;
  /** Delivered with deliveredAt (the carrier's `delivered` at) ≤ initialPromisedBy. */
  onTime: number;
  /** Ended failed, any reason (returned included). */
  failed: number;
  /** Feedback scores of these orders, and those of them ≥ 4. */
  scores: number;
  satisfied: number;
}

export interface Rates {
  onTimeRate: number | null;
  errorRate: number | null;
  satisfaction: number | null;
}

/** A fraction 0–1, or null when there is nothing to measure. */
export const ratio = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

export function rates(c: ClosedCounts): Rates {
  return {
    onTimeRate: ratio(c.onTime, c.delivered),
    errorRate: ratio(c.failed, c.closed),
    satisfaction: ratio(c.satisfied, c.scores),
  };
}

export const isSatisfied = (score: number) => score >= 4;
export const isOnTime = (deliveredAt: Date | null, initialPromisedBy: Date) =>
  deliveredAt !== null && deliveredAt.getTime() <= initialPromisedBy.getTime();

/** An order as an in-memory caller (the demo's report) has it; only delivered and failed ones count. */
export interface KpiOrder {
  status: string;
  deliveredAt: Date | null;
  initialPromisedBy: Date;
  /** Its feedback score, if any. */
  score?: number | null;
}

/** Counts of orders held in memory; orders neither delivered nor failed are left out. */
export function countClosed(orders: readonly KpiOrder[]): ClosedCounts {
  const c: ClosedCounts = { closed: 0, delivered: 0, onTime: 0, failed: 0, scores: 0, satisfied: 0 };
  for (const order of orders) {
    if (order.status !== 'delivered' && order.status !== 'failed') continue;
    c.closed++;
    if (order.status === 'failed') c.failed++;
    else {
      c.delivered++;
      if (isOnTime(order.deliveredAt, order.initialPromisedBy)) c.onTime++;
    }
    if (order.score !== undefined && order.score !== null) {
      c.scores++;
      if (isSatisfied(order.score)) c.satisfied++;
    }
  }
  return c;
}

/** Orders received in the window per minute of the window. */
export const ordersPerMinute = (received: number, window: KpiWindow) =>
  received / (WINDOW_MS[window] / MINUTE);

/** The interval a window covers, ending now. */
export function windowBounds(window: KpiWindow, now: Date): { from: Date; to: Date } {
  return { from: new Date(now.getTime() - WINDOW_MS[window]), to: now };
}

export type BreakdownSlice = 'priority' | 'region' | 'carrier' | 'warehouse';
export const BREAKDOWN_SLICES: readonly BreakdownSlice[] = ['priority', 'region', 'carrier', 'warehouse'];

export interface BreakdownEntry extends Rates {
  orders: number;
}

export const breakdownEntry = (c: ClosedCounts): BreakdownEntry => ({ orders: c.closed, ...rates(c) });

export interface Scorecard extends Rates {
  window: KpiWindow;
  processingTimeMs: { p50: number | null; p95: number | null };
  ordersPerMinute: number;
  queueDepths: Record<string, number>;
  targets: typeof KPI_TARGETS;
  breakdown: Record<BreakdownSlice, Record<string, BreakdownEntry>>;
}

export interface ScorecardInput {
  window: KpiWindow;
  total: ClosedCounts;
  /** Counts per slice value (an order with parcels at two carriers is in both). */
  slices: Record<BreakdownSlice, Record<string, ClosedCounts>>;
  /** received → dispatched of the closed orders that were dispatched, in ms. */
  processing: { p50: number | null; p95: number | null };
  /** Orders received (taken in at intake) in the window. */
  received: number;
  queueDepths: Record<string, number>;
}

export function scorecard(input: ScorecardInput): Scorecard {
  const breakdown = Object.fromEntries(
    BREAKDOWN_SLICES.map((slice) => [
      slice,
      Object.fromEntries(Object.entries(input.slices[slice]).map(([key, c]) => [key, breakdownEntry(c)])),
    ]),
  ) as Scorecard['breakdown'];
  return {
    window: input.window,
    ...rates(input.total),
    processingTimeMs: input.processing,
    ordersPerMinute: ordersPerMinute(input.received, input.window),
    queueDepths: input.queueDepths,
    targets: KPI_TARGETS,
    breakdown,
  };
}
