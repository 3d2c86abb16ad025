import { and, asc, eq, gt, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { orders } from './schema.js';

/** Where the backorder pass stands in its walk: (class rank, created_at, id). */
export interface BackorderCursor {
  rank: number;
  createdAt: Date;
  id: string;
}

/** The class rank of an order in SQL: 1 essential, 2 express, 3 standard (domain/priority.ts). */
const rank = sql<number>`CASE ${orders.priority} WHEN 'essential' THEN 1 WHEN 'express' THEN 2 ELSE 3 END`;

/** Backordered orders, highest priority first, then oldest first: one page after `after`. */
export async function backorderedOrders(
  db: Db,
  opts: { after: BackorderCursor | null; limit: number },
): Promise<{ id: string; attempt: number; cursor: BackorderCursor }[]> {
  const after = opts.after;
  const rows = await db
    .select({
      id: orders.id,
      attempt: orders.attempt,
      createdAt: orders.createdAt,
      rank: rank.mapWith(Number),
    })
    .from(orders)
    .where(
      and(
        eq(orders.status, 'backordered'),
        after
          ? or(
              gt(rank, after.rank),
              and(
                eq(rank, after.rank),
                or(
                  gt(orders.createdAt, after.createdAt),
                  and(eq(orders.createdAt, after.createdAt), gt(orders.id, after.id)),
                ),
              ),
            )
          : undefined,
      ),
    )
    .orderBy(asc(rank), asc(orders.createdAt), asc(orders.id))
    .limit(opts.limit);
  return rows.map((r) => ({
    id: r.id,
    attempt: r.attempt,
    cursor: { rank: r.rank, createdAt: r.createdAt, id: r.id },
  }));
}

/** Whether any order is backordered (the periodic sweep runs the pass only then). */
export async function anyBackordered(db: Db): Promise<boolean> {
  const [row] = await db
    .select({ id: orders.id })
    .from(orders)
    .where(eq(orders.status, 'backordered'))
    .limit(1);
  return Boolean(row);
}
