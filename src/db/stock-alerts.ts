import { asc, count, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { stockAlerts } from './schema.js';
import { stockKey, stockUnderDemand } from './stock.js';
import { atRisk, coverHours, DEMAND_WINDOW_MS } from '../domain/stock-cover.js';

/** A stock row at risk of running out, as GET /v1/admin/inventory/alerts lists it. */
export interface StockAlert {
  warehouseId: string;
  sku: string;
  available: number;
  coverHours: number;
  inboundEta: Date | null;
  /** When the row became at risk. */
  since: Date;
}

export interface AlertRefresh {
  /** Rows newly at risk (inserted by this refresh). */
  raised: StockAlert[];
  /** Rows no longer at risk (deleted by this refresh). */
  cleared: { warehouseId: string; sku: string; since: Date }[];
  /** Every row at risk now, oldest alert first. */
  current: StockAlert[];
}

/** Refreshes run one at a time across processes (a transaction-scoped advisory lock). */
const REFRESH_LOCK = 0x5eed_a1e7;

/**
 * Evaluates every stock row with demand in the last hour (see stockUnderDemand; a row without
 * demand has no cover and is never at risk), then brings `stock_alerts` in line: a row newly at
 * risk is inserted with `since` = now, one no longer at risk is deleted, one still at risk keeps
 * its `since`. One transaction under an advisory lock, so concurrent refreshes (every worker's
 * watcher, the GET route) raise and clear each row once.
 */
export async function refreshStockAlerts(db: Db, now: Date, riskHours: number): Promise<AlertRefresh> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${REFRESH_LOCK})`);
    const rows = await stockUnderDemand(tx, new Date(now.getTime() - DEMAND_WINDOW_MS));
    const risky = new Map<string, Omit<StockAlert, 'since'>>();
    for (const row of rows) {
      const cover = coverHours(row.available, row.unitsLastHour);
      if (cover !== null && atRisk(cover, row.inboundEta, now, riskHours)) {
        risky.set(stockKey(row), {
          warehouseId: row.warehouseId,
          sku: row.sku,
          available: row.available,
          coverHours: cover,
          inboundEta: row.inboundEta,
        });
      }
    }
    const existing = await tx.select().from(stockAlerts);
    const sinceOf = new Map(existing.map((a) => [stockKey(a), a.since]));
    // What was deleted and inserted, as the database answers it: the lock makes this the same as
    // the diff just computed, and without it a row would still be raised or cleared only once.
    const gone = existing.filter((a) => !risky.has(stockKey(a)));
    const cleared =
      gone.length === 0
        ? []
        : await tx
            .delete(stockAlerts)
            .where(
              sql`(${stockAlerts.warehouseId}, ${stockAlerts.sku}) in (${sql.join(
                gone.map((a) => sql`(${a.warehouseId}, ${a.sku})`),
                sql`, `,
              )})`,
            )
            .returning();
    const fresh = [...risky.values()].filter((a) => !sinceOf.has(stockKey(a)));
    const inserted =
      fresh.length === 0
        ? []
        : await tx
            .insert(stockAlerts)
            .values(fresh.map((a) => ({ warehouseId: a.warehouseId, sku: a.sku, since: now })))
            .onConflictDoNothing()
            .returning();
    const raised = inserted.map((a) => ({ ...risky.get(stockKey(a))!, since: a.since }));
    for (const a of inserted) sinceOf.set(stockKey(a), a.since);
    const current = [...risky.values()]
      .map((a) => ({ ...a, since: sinceOf.get(stockKey(a)) ?? now }))
      .sort(
        (a, b) =>
          a.since.getTime() - b.since.getTime() ||
          a.warehouseId.localeCompare(b.warehouseId) ||
          a.sku.localeCompare(b.sku),
      );
    return { raised, cleared, current };
  });
}

/** Alert rows per SKU (as last refreshed), for the gauge surgeline_stock_at_risk{sku}. */
export async function alertsBySku(db: Db): Promise<{ sku: string; alerts: number }[]> {
  return db
    .select({ sku: stockAlerts.sku, alerts: count() })
    .from(stockAlerts)
    .groupBy(stockAlerts.sku)
    .orderBy(asc(stockAlerts.sku));
}
