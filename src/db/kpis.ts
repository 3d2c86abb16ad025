import { sql, type SQL } from 'drizzle-orm';
import { rowsOf } from './bulk.js';
import type { Db } from './client.js';
import { BREAKDOWN_SLICES, type BreakdownSlice, type ClosedCounts } from '../domain/kpis.js';

/** What the scorecard of one window is made from (domain/kpis.ts turns it into figures). */
export interface WindowCounts {
  total: ClosedCounts;
  /** Per slice value; empty when only the rates were asked for (ratesOnly). */
  slices: Record<BreakdownSlice, Record<string, ClosedCounts>>;
  /** received → dispatched (event `at`s of the closing attempt) of the closed orders dispatched, ms; null with ratesOnly. */
  processing: { p50: number | null; p95: number | null };
  /** Orders taken in at intake (created) in the window; 0 with ratesOnly. */
  received: number;
}

interface Row {
  slice: 'all' | BreakdownSlice;
  key: string;
  closed: number;
  delivered: number;
  on_time: number;
  failed: number;
  scores: number;
  satisfied: number;
  p50: number | null;
  p95: number | null;
  received: number | null;
}

const counts = sql.raw(`
  count(*)::int AS closed,
  count(*) FILTER (WHERE NOT c.failed)::int AS delivered,
  count(*) FILTER (WHERE c.on_time)::int AS on_time,
  count(*) FILTER (WHERE c.failed)::int AS failed,
  count(c.score)::int AS scores,
  count(*) FILTER (WHERE c.score >= 4)::int AS satisfied`);

/**
 * Writes (or replaces) the closure row (schema.ts orderClosures) of the orders matched by `which`
 * (`o` is orders) that are closed — delivered or failed — from the closing event of their current
 * attempt and that attempt's parcels and received/dispatched events: the same rule the scorecard
 * counted by before these rows existed, and drizzle/0007_order_closures.sql's backfill. One
 * INSERT … SELECT; an upsert by order id, so a retried order's new close replaces the earlier one.
 * Carriers are those of the attempt's booked parcels, warehouses those of all its parcels (an order
 * with parcels at two carriers counts in each). Reservations need no second read: allocation
 * reserves and makes one parcel per warehouse of its plan in one transaction (steps/allocate.ts).
 */
function writeClosures(which: SQL): SQL {
  return sql`
    INSERT INTO order_closures (order_id, attempt, status, failure_reason, closed_at, on_time, priority,
                                region, processing_ms, carriers, warehouses)
    SELECT o.id, o.attempt, o.status, o.failure_reason, e.recorded_at,
           coalesce(o.status = 'delivered' AND o.delivered_at <= o.initial_promised_by, false),
           o.priority, o.region,
           (SELECT (extract(epoch FROM d.at - r.at) * 1000)::float8
              FROM order_events r
              JOIN order_events d ON d.order_id = r.order_id AND d.attempt = r.attempt
                                 AND d.status = 'dispatched' AND d.seq = 1
             WHERE r.order_id = o.id AND r.attempt = o.attempt AND r.status = 'received' AND r.seq = 1),
           ARRAY(SELECT DISTINCT s.carrier_id FROM shipments s
                  WHERE s.order_id = o.id AND s.attempt = o.attempt AND s.carrier_id IS NOT NULL ORDER BY 1),
           ARRAY(SELECT DISTINCT s.warehouse_id FROM shipments s
                  WHERE s.order_id = o.id AND s.attempt = o.attempt ORDER BY 1)
      FROM orders o
      JOIN order_events e ON e.order_id = o.id AND e.attempt = o.attempt AND e.status = o.status
     WHERE o.status IN ('delivered', 'failed') AND ${which}
    ON CONFLICT (order_id) DO UPDATE SET
      attempt = excluded.attempt, status = excluded.status, failure_reason = excluded.failure_reason,
      closed_at = excluded.closed_at, on_time = excluded.on_time, priority = excluded.priority,
      region = excluded.region, processing_ms = excluded.processing_ms, carriers = excluded.carriers,
      warehouses = excluded.warehouses`;
}

/** The order's closure, written by transition() when it enters delivered or failed, after its event. */
export async function recordClosure(tx: Db, orderId: string): Promise<void> {
  await tx.execute(writeClosures(sql`o.id = ${orderId}`));
}

/** A retry started (startRetry()): the order is in progress again and counts nowhere until it closes. */
export async function forgetClosure(tx: Db, orderId: string): Promise<void> {
  await tx.execute(sql`DELETE FROM order_closures WHERE order_id = ${orderId}`);
}

/** Every closed order's closure (re)written from its events and parcels, as the migration's backfill. */
export async function backfillClosures(db: Db): Promise<void> {
  await db.execute(writeClosures(sql`true`));
}

/**
 * The orders closed in (from, to] with what the figures need, from their closure rows: a range scan
 * of order_closures_closed_idx, and the feedback by order id. Exported for the benchmark's EXPLAIN.
 */
export function closedOrders(window: { from: Date; to: Date }): SQL {
  return sql`
      SELECT c.order_id AS id, c.priority, c.region, c.status = 'failed' AS failed, c.on_time,
             c.processing_ms, c.carriers, c.warehouses, f.score
        FROM order_closures c
        LEFT JOIN feedback f ON f.order_id = c.order_id
       WHERE c.closed_at > ${window.from.toISOString()}::timestamptz
         AND c.closed_at <= ${window.to.toISOString()}::timestamptz`;
}

/** Sums of `counts` over rows that are already counts (the grouping sets' rows below). */
const summed = sql.raw(`
  sum(closed)::int AS closed, sum(delivered)::int AS delivered, sum(on_time)::int AS on_time,
  sum(failed)::int AS failed, sum(scores)::int AS scores, sum(satisfied)::int AS satisfied`);

/** windowCounts' statement (exported for the benchmark's EXPLAIN). */
export function windowStatement(window: { from: Date; to: Date }, full: boolean): SQL {
  if (!full)
    return sql`
      SELECT 'all' AS slice, '' AS key, ${counts}, NULL::float8 AS p50, NULL::float8 AS p95, NULL::int AS received
        FROM (${closedOrders(window)}) c`;
  const from = window.from.toISOString();
  const to = window.to.toISOString();
  // One pass over the window's closures (with their feedback) counts the whole window and every
  // slice (grouping sets,
  // told apart by GROUPING(): 15 the whole window, 7 priority, 11 region, 13 carriers, 14
  // warehouses). Carriers and warehouses are grouped by the order's set of them, a few distinct
  // sets, and each set's counts then go to each of its members: an order with parcels at two
  // carriers (or warehouses) counts once in each. The percentiles read the window's closures again,
  // without feedback: a range scan of the index, cheaper than keeping the rows for a second pass.
  return sql`
    WITH sets AS MATERIALIZED (
      SELECT GROUPING(c.priority, c.region, c.carriers, c.warehouses) AS g,
             c.priority, c.region, c.carriers, c.warehouses, ${counts}
        FROM (${closedOrders(window)}) c
       GROUP BY GROUPING SETS ((), (c.priority), (c.region), (c.carriers), (c.warehouses))
    )
    SELECT 'all' AS slice, '' AS key, closed, delivered, on_time, failed, scores, satisfied, p.p50, p.p95,
           (SELECT count(*) FROM orders
             WHERE created_at > ${from}::timestamptz AND created_at <= ${to}::timestamptz)::int AS received
      FROM sets,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_ms)::float8 AS p50,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_ms)::float8 AS p95
              FROM order_closures
             WHERE closed_at > ${from}::timestamptz AND closed_at <= ${to}::timestamptz) p
     WHERE g = 15
    UNION ALL
    SELECT 'priority', priority, closed, delivered, on_time, failed, scores, satisfied, NULL, NULL, NULL
      FROM sets WHERE g = 7
    UNION ALL
    SELECT 'region', region, closed, delivered, on_time, failed, scores, satisfied, NULL, NULL, NULL
      FROM sets WHERE g = 11
    UNION ALL
    SELECT 'carrier', key, ${summed}, NULL, NULL, NULL
      FROM (SELECT unnest(carriers) AS key, * FROM sets WHERE g = 13) k GROUP BY key
    UNION ALL
    SELECT 'warehouse', key, ${summed}, NULL, NULL, NULL
      FROM (SELECT unnest(warehouses) AS key, * FROM sets WHERE g = 14) k GROUP BY key`;
}

/**
 * The counts of the orders closed in (from, to], in one statement over their closure rows (one per
 * order, by how it last closed: a retried order counts once and a retry in progress not at all),
 * every slice counted in one pass (windowStatement); feedback is joined at read time, as it may
 * come after the close.
 */
export async function windowCounts(
  db: Db,
  window: { from: Date; to: Date },
  opts: { ratesOnly?: boolean } = {},
): Promise<WindowCounts> {
  const rows = rowsOf<Row>(await db.execute(windowStatement(window, !opts.ratesOnly)));
  const toCounts = (r: Row): ClosedCounts => ({
    closed: Number(r.closed),
    delivered: Number(r.delivered),
    onTime: Number(r.on_time),
    failed: Number(r.failed),
    scores: Number(r.scores),
    satisfied: Number(r.satisfied),
  });
  const result: WindowCounts = {
    total: { closed: 0, delivered: 0, onTime: 0, failed: 0, scores: 0, satisfied: 0 },
    slices: Object.fromEntries(BREAKDOWN_SLICES.map((s) => [s, {}])) as WindowCounts['slices'],
    processing: { p50: null, p95: null },
    received: 0,
  };
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  for (const r of rows) {
    if (r.slice === 'all') {
      result.total = toCounts(r);
      result.processing = { p50: num(r.p50), p95: num(r.p95) };
      result.received = Number(r.received ?? 0);
    } else result.slices[r.slice][r.key] = toCounts(r);
  }
  return result;
}
