import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.js';
import { BREAKDOWN_SLICES, type BreakdownSlice, type ClosedCounts } from '../domain/kpis.js';

/** What the scorecard of one window is made from (domain/kpis.ts turns it into figures). */
export interface WindowCounts {
  total: ClosedCounts;
  /** Per slice value; empty when only the rates were asked for (ratesOnly). */
  slices: Record<BreakdownSlice, Record<string, ClosedCounts>>;
  /** received → dispatched (event `at`s of the current attempt) of the closed orders dispatched, ms; null with ratesOnly. */
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

/** PGlite answers `{ rows }`, postgres.js an array of rows. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

const counts = sql.raw(`
  count(*)::int AS closed,
  count(*) FILTER (WHERE NOT c.failed)::int AS delivered,
  count(*) FILTER (WHERE c.on_time)::int AS on_time,
  count(*) FILTER (WHERE c.failed)::int AS failed,
  count(c.score)::int AS scores,
  count(*) FILTER (WHERE c.score >= 4)::int AS satisfied`);

/**
 * The orders closed in (from, to] with what the figures need: each once, by the closing event of its
 * current attempt (see windowCounts). Exported for the benchmark's EXPLAIN.
 */
export function closedOrders(window: { from: Date; to: Date }): SQL {
  return sql`
      SELECT o.id, o.attempt, o.priority, o.region,
             o.status = 'failed' AS failed,
             o.status = 'delivered' AND o.delivered_at <= o.initial_promised_by AS on_time,
             f.score
        FROM order_events e
        JOIN orders o ON o.id = e.order_id AND o.attempt = e.attempt AND o.status = e.status
        LEFT JOIN feedback f ON f.order_id = o.id
       WHERE e.status IN ('delivered', 'failed')
         AND e.recorded_at > ${window.from.toISOString()}::timestamptz
         AND e.recorded_at <= ${window.to.toISOString()}::timestamptz`;
}

/** windowCounts' statement (exported for the benchmark's EXPLAIN). */
export function windowStatement(window: { from: Date; to: Date }, full: boolean): SQL {
  const from = window.from.toISOString();
  const to = window.to.toISOString();
  // The processing percentiles and the intake count, which the rates alone (the gauges) don't need.
  const figures = sql`
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM processing)::float8 AS p50,
           (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) FROM processing)::float8 AS p95,
           (SELECT count(*) FROM orders
             WHERE created_at > ${from}::timestamptz AND created_at <= ${to}::timestamptz)::int AS received`;
  const slices: SQL[] = full
    ? [
        sql`SELECT 'priority' AS slice, c.priority AS key, ${counts} FROM closed c GROUP BY c.priority`,
        sql`SELECT 'region', c.region, ${counts} FROM closed c GROUP BY c.region`,
        sql`SELECT 'carrier', k.key, ${counts} FROM closed c
              JOIN (SELECT DISTINCT id, carrier_id AS key FROM parcels WHERE carrier_id IS NOT NULL) k ON k.id = c.id
             GROUP BY k.key`,
        sql`SELECT 'warehouse', k.key, ${counts} FROM closed c
              JOIN (SELECT DISTINCT id, warehouse_id AS key FROM parcels) k ON k.id = c.id
             GROUP BY k.key`,
      ]
    : [];
  return sql`
    WITH closed AS MATERIALIZED (${closedOrders(window)}),
    parcels AS MATERIALIZED (
      SELECT DISTINCT c.id, s.carrier_id, s.warehouse_id
        FROM closed c JOIN shipments s ON s.order_id = c.id AND s.attempt = c.attempt
    ),
    processing AS (
      SELECT extract(epoch FROM d.at - r.at) * 1000 AS ms
        FROM closed c
        JOIN order_events r ON r.order_id = c.id AND r.attempt = c.attempt AND r.status = 'received' AND r.seq = 1
        JOIN order_events d ON d.order_id = c.id AND d.attempt = c.attempt AND d.status = 'dispatched' AND d.seq = 1
    )
    SELECT 'all' AS slice, '' AS key, ${counts}, ${full ? figures : sql.raw('NULL::float8, NULL::float8, NULL::int')}
      FROM closed c
    ${sql.join(
      slices.map(
        (s) => sql` UNION ALL SELECT slice, key, closed, delivered, on_time, failed, scores, satisfied,
        NULL::float8, NULL::float8, NULL::int FROM (${s}) AS g (slice, key, closed, delivered, on_time, failed, scores, satisfied)`,
      ),
    )}`;
}

/**
 * The counts of the orders closed in (from, to], in one statement. The closed orders are found
 * through order_events_closed_idx (schema.ts): closing events — delivered or failed — recorded in
 * the window, a range scan whose predicate is repeated here literally so the planner can use the
 * partial index; then only those whose event is of the order's current attempt and whose current
 * status is that one, so a retried order counts once, by how it last closed (its earlier failure
 * is another attempt's) and a retry in progress not at all. The set is computed once (MATERIALIZED)
 * and every slice is grouped from it. Carrier and warehouse are those of the parcels of the order's
 * current attempt, read once: an order with parcels at two carriers (or warehouses) counts in each.
 * Reservations need no second read: allocation reserves and makes one parcel per warehouse of its
 * plan in one transaction (steps/allocate.ts), so the parcels' warehouses are the reservations'.
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
