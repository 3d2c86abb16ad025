import { sql } from 'drizzle-orm';
import { rowsOf } from './bulk.js';
import type { Db } from './client.js';
import type { RecentWork } from '../domain/forecast.js';

/**
 * Orders taken in per minute in [from, to): one row per minute that had any (a range scan of
 * orders_created_idx, bounded by the look-back); the minutes with none are filled with zeros by
 * the domain (domain/forecast.ts denseSeries), not here. The minute is sent as epoch milliseconds
 * so neither driver's time parsing nor the session time zone can shift it.
 */
export async function intakePerMinute(
  db: Db,
  window: { from: Date; to: Date },
): Promise<{ minute: Date; orders: number }[]> {
  const rows = rowsOf<{ minute_ms: number | string; orders: number | string }>(
    await db.execute(sql`
      SELECT (extract(epoch FROM date_trunc('minute', created_at)) * 1000)::float8 AS minute_ms,
             count(*)::int AS orders
        FROM orders
       WHERE created_at >= ${window.from.toISOString()}::timestamptz
         AND created_at < ${window.to.toISOString()}::timestamptz
       GROUP BY 1
       ORDER BY 1`),
  );
  return rows.map((r) => ({ minute: new Date(Number(r.minute_ms)), orders: Number(r.orders) }));
}

/** How many of the latest orders the jobs-per-order factors are measured over, at most. */
export const RECENT_ORDERS = 1000;

/**
 * The work the latest orders created in (from, to] made (at most RECENT_ORDERS of them, newest
 * first through orders_created_idx): their booking calls, their bookings cancelled at a carrier and
 * their outbox messages, each counted through the order-id indexes of its table.
 */
export async function recentWork(db: Db, window: { from: Date; to: Date }): Promise<RecentWork> {
  const [row] = rowsOf<Record<keyof RecentWork, number | string>>(
    await db.execute(sql`
      WITH recent AS MATERIALIZED (
        SELECT id FROM orders
         WHERE created_at > ${window.from.toISOString()}::timestamptz
           AND created_at <= ${window.to.toISOString()}::timestamptz
         ORDER BY created_at DESC
         LIMIT ${RECENT_ORDERS}
      )
      SELECT (SELECT count(*) FROM recent)::int AS orders,
             (SELECT count(*) FROM carrier_attempts a WHERE a.order_id IN (SELECT id FROM recent))::int AS bookings,
             (SELECT count(*) FROM carrier_attempts a
               WHERE a.order_id IN (SELECT id FROM recent) AND a.cancelled_at IS NOT NULL)::int AS cancellations,
             (SELECT count(*) FROM notifications n WHERE n.order_id IN (SELECT id FROM recent))::int AS messages`),
  );
  return {
    orders: Number(row?.orders ?? 0),
    bookings: Number(row?.bookings ?? 0),
    cancellations: Number(row?.cancellations ?? 0),
    messages: Number(row?.messages ?? 0),
  };
}
