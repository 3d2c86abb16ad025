import type { Context } from '../context.js';
import { refreshStockAlerts, type AlertRefresh } from '../db/stock-alerts.js';

/**
 * Re-evaluates which stock rows are at risk (db/stock-alerts.ts) and logs each change once,
 * whoever made it (a worker's watcher, or GET /v1/admin/inventory/alerts): a row newly at risk
 * as a warn line `{ event: 'stock_at_risk', … }`, a row no longer at risk at info.
 */
export async function checkStockAlerts(ctx: Context, now = new Date()): Promise<AlertRefresh> {
  const result = await refreshStockAlerts(ctx.db, now, ctx.config.stockRiskHours);
  for (const a of result.raised) {
    ctx.log.warn(
      {
        event: 'stock_at_risk',
        warehouseId: a.warehouseId,
        sku: a.sku,
        available: a.available,
        coverHours: a.coverHours,
        inboundEta: a.inboundEta?.toISOString() ?? null,
      },
      'stock at risk',
    );
  }
  for (const a of result.cleared) {
    ctx.log.info(
      { event: 'stock_risk_cleared', warehouseId: a.warehouseId, sku: a.sku, since: a.since.toISOString() },
      'stock no longer at risk',
    );
  }
  return result;
}
