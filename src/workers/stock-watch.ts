import type { Context } from '../context.js';
import { checkStockAlerts } from '../steps/stock-alerts.js';
import { startTicker } from './ticker.js';

/** How often a worker process re-evaluates the stock alerts. */
export const STOCK_WATCH_MS = 10_000;

/**
 * Re-evaluates the stock alerts every STOCK_WATCH_MS in this process, so a row's risk is raised
 * (and logged, once across processes) without anyone asking; a run starts only once the last one
 * ended, and a failure is logged as a warning and tried again at the next tick.
 */
export function startStockWatch(ctx: Context, everyMs = STOCK_WATCH_MS): { stop(): Promise<void> } {
  return startTicker(ctx, 'stock watch', everyMs, () => checkStockAlerts(ctx));
}
