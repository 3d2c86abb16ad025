import type { Context } from '../context.js';
import { anyBackordered, backorderedOrders, type BackorderCursor } from '../db/backorders.js';
import { takePassLock } from '../queues/pass-lock.js';
import { allocate } from './allocate.js';

/**
 * Backorders (contract: Allocation). An order on-hand stock can't fill but unreceived restocks
 * can waits `backordered`. When stock arrives — a restock received, on-hand raised, a supplier
 * back — the pass allocates the waiting orders highest priority first, then oldest first, one
 * after another in one process (a Redis lock), so a later order never overtakes an earlier one of
 * its class: while an earlier order still waits, its units count as claimed (allocate() reads the
 * claims of the backorders ahead of each order), and a later one only gets what is left beyond
 * them. An order that neither stock nor restocks can fill any more fails `out_of_stock`.
 */

/** How often every worker process looks for a requested pass. */
export const BACKORDER_TICK_MS = 1000;
/** Across processes, how often the pass runs without a request while orders are backordered. */
export const BACKORDER_SWEEP_MS = 15_000;
/** Orders read per page of the pass; the lock is extended after each. */
const PAGE_SIZE = 200;
const LOCK_MS = 30_000;

/** Redis keys of the backorder pass. */
export const backorderKeys = (ctx: Context) => {
  const base = `${ctx.config.queuePrefix}:backorders`;
  return { lock: `${base}:lock`, requested: `${base}:requested`, sweep: `${base}:sweep` };
};

/**
 * Stock arrived: asks the backorder pass (in a worker process) to run within a tick. When Redis
 * does not answer, the periodic sweep runs it anyway, so a lost request only delays the backorders.
 */
export async function requestBackorderPass(ctx: Context, why: string): Promise<void> {
  try {
    await Promise.race([
      ctx.coord.set(backorderKeys(ctx).requested, why),
      new Promise((_, reject) => setTimeout(() => reject(new Error('Redis did not answer')), 2000).unref()),
    ]);
  } catch (error) {
    ctx.log.warn(
      { why, err: (error as Error).message },
      'backorder pass not requested; the sweep will run it',
    );
  }
}

export interface BackorderPass {
  /** False when nothing asked for a pass, or another process holds the lock. */
  ran: boolean;
  allocated: number;
  waiting: number;
  failed: number;
}

/** One pass, if one was requested or the sweep is due; see the module comment. */
export async function backorderPassOnce(ctx: Context, signal?: AbortSignal): Promise<BackorderPass> {
  const result: BackorderPass = { ran: false, allocated: 0, waiting: 0, failed: 0 };
  const k = backorderKeys(ctx);
  const started = Date.now();
  const lock = await takePassLock(ctx.coord, k.lock, LOCK_MS);
  if (!lock) return result;
  try {
    // Taken off first: stock that arrives while this pass runs asks for the next one.
    const why = await ctx.coord.take(k.requested);
    const sweep = !why && (await ctx.coord.setIfAbsent(k.sweep, '1', BACKORDER_SWEEP_MS));
    if (!why && !(sweep && (await anyBackordered(ctx.db)))) return result;
    result.ran = true;
    let after: BackorderCursor | null = null;
    while (!signal?.aborted) {
      const page = await backorderedOrders(ctx.db, { after, limit: PAGE_SIZE });
      for (const order of page) {
        if (signal?.aborted) break;
        const outcome = await allocate(ctx, { orderId: order.id, attempt: order.attempt });
        if (outcome === 'allocated') result.allocated++;
        else if (outcome === 'out_of_stock') result.failed++;
        else if (outcome === 'waiting') result.waiting++;
      }
      await lock.extend();
      if (page.length < PAGE_SIZE) break;
      after = page[page.length - 1].cursor;
    }
    if (result.allocated + result.failed > 0) {
      ctx.log.info({ why: why ?? 'sweep', ...result }, 'backorders allocated');
    }
    return result;
  } finally {
    // Kept until a tick from the start: one pass per tick across processes, not one per process.
    await lock.release(started + BACKORDER_TICK_MS - Date.now());
  }
}
