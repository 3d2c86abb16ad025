import { sql } from 'drizzle-orm';
import type { Db } from './client.js';

/** PGlite answers `{ rows }`, postgres.js an array of rows. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * Orders closed per minute in [from, to), delivered and failed apart: one row per minute that had
 * any, a range scan of order_closures_closed_idx (one row per closed order, by when it closed; a
 * retried order counts by how it last closed). Minutes as epoch milliseconds, as in db/forecast.ts.
 */
export async function closuresPerMinute(
  db: Db,
  window: { from: Date; to: Date },
): Promise<{ minute: Date; delivered: number; failed: number }[]> {
  const rows = rowsOf<{ minute_ms: number | string; delivered: number | string; failed: number | string }>(
    await db.execute(sql`
      SELECT (extract(epoch FROM date_trunc('minute', closed_at)) * 1000)::float8 AS minute_ms,
             (count(*) FILTER (WHERE status = 'delivered'))::int AS delivered,
             (count(*) FILTER (WHERE status = 'failed'))::int AS failed
        FROM order_closures
       WHERE closed_at >= ${window.from.toISOString()}::timestamptz
         AND closed_at < ${window.to.toISOString()}::timestamptz
       GROUP BY 1
       ORDER BY 1`),
  );
  return rows.map((r) => ({
    minute: new Date(Number(r.minute_ms)),
    delivered: Number(r.delivered),
    failed: Number(r.failed),
  }));
}
