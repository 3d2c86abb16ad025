import type { Context } from '../context.js';
import { findOrder, orderItemsOf, transition, type LoadedOrder, type Moved } from '../db/orders.js';
import { createParcels } from '../db/shipments.js';
import { availableStock, reservePlan, StockTaken } from '../db/stock.js';
import { singleWarehouse } from '../domain/allocation/single-warehouse.js';
import { mergeLines, type AllocationStrategy } from '../domain/allocation/strategy.js';
import { enqueueAfterCommit } from '../queues/enqueue.js';
import type { OrderJob } from '../queues/topology.js';
import { afterMove } from './after-move.js';
import { holdIfLocked, resumesThroughAllocation } from './lockdown.js';

export type AllocationOutcome = 'allocated' | 'out_of_stock' | 'held' | 'skipped';

/** The allocation strategy in use: one default today; another is one new file in domain/allocation/. */
export const allocationStrategy: AllocationStrategy = singleWarehouse;

/**
 * Allocation: load → plan (domain strategy) → reserve the first plan whose stock is still there
 * and move the order to `allocated`, in one transaction → enqueue dispatch. Idempotent: an order
 * no longer `received` is left alone (its next job is re-enqueued). An order of a locked-down
 * region is held (`on_hold`) before anything is reserved; once the lockdown lifts, a held order
 * that holds no stock is allocated from `on_hold` like a `received` one.
 */
export async function allocate(ctx: Context, job: OrderJob): Promise<AllocationOutcome> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt) return 'skipped';
  if (order.status !== 'received' && !(await resumesThroughAllocation(ctx, order))) {
    if (order.status === 'allocated') await enqueueDispatch(ctx, order);
    return 'skipped';
  }
  if (await holdIfLocked(ctx, order)) return 'held';

  const lines = mergeLines(await orderItemsOf(ctx.db, order.id));
  const stock = await availableStock(
    ctx.db,
    lines.map((l) => l.sku),
  );
  const plan = allocationStrategy.plan(
    { lines, stock, region: order.region, inbound: [], claimed: new Map(), now: new Date() },
    { allowSplit: ctx.config.allocation.allowSplit, distances: () => undefined },
  );
  const options = plan.kind === 'parcels' ? plan.options : [];

  for (const parcels of options) {
    let moved: Moved | null;
    try {
      moved = await ctx.db.transaction(async (tx) => {
        const result = await transition(
          tx,
          order,
          {
            to: 'allocated',
            detail: `reserved in ${parcels.map((p) => `warehouse ${p.warehouseId}`).join(', ')}`,
          },
          ctx.config,
        );
        if (!result) return null;
        await reservePlan(tx, order, parcels);
        await createParcels(
          tx,
          order,
          parcels.map((p) => p.warehouseId),
        );
        return result;
      });
    } catch (error) {
      if (error instanceof StockTaken) continue; // another order took it: try the next plan
      throw error;
    }
    if (!moved) return 'skipped';
    await afterMove(ctx, moved);
    await enqueueDispatch(ctx, moved.order);
    return 'allocated';
  }

  const failed = await ctx.db.transaction((tx) =>
    transition(
      tx,
      order,
      { to: 'failed', detail: 'no warehouse holds every line', set: { failureReason: 'out_of_stock' } },
      ctx.config,
    ),
  );
  if (!failed) return 'skipped';
  await afterMove(ctx, failed);
  return 'out_of_stock';
}

async function enqueueDispatch(ctx: Context, order: LoadedOrder) {
  await enqueueAfterCommit(ctx, 'dispatch', () =>
    ctx.queues.add('dispatch', { orderId: order.id, attempt: order.attempt }, order.priority),
  );
}
