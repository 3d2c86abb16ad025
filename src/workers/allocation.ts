import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import type { Db } from '../db/client.js';
import { findOrder, transition } from '../db/orders.js';
import { allocations, inventory, orderItems, shipments, warehouses } from '../db/schema.js';
import { mergeLines, singleWarehouseCandidates, type OrderLine } from '../domain/allocation.js';
import type { Priority } from '../domain/priority.js';
import type { AllocationJob } from '../queues/index.js';
import { enqueueAfterCommit, enqueueNotifications } from '../queues/enqueue.js';

/** Another order took the stock between our read and our reservation. */
class StockTaken extends Error {}

export type AllocationOutcome = 'allocated' | 'out_of_stock' | 'skipped';

/**
 * Reserves the whole order in one warehouse that holds every line, else fails it `out_of_stock`.
 * Idempotent: an order no longer `received` is left alone (its next job is re-enqueued).
 */
export async function allocateOrder(ctx: Context, job: AllocationJob): Promise<AllocationOutcome> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt) return 'skipped';
  const priority = order.priority as Priority;
  if (order.status !== 'received') {
    if (order.status === 'allocated') {
      await enqueueAfterCommit(ctx, 'dispatch', () => ctx.queues.dispatch(order.id, order.attempt, priority));
    }
    return 'skipped';
  }

  const items = await ctx.db.select().from(orderItems).where(eq(orderItems.orderId, order.id));
  const lines = mergeLines(items);
  const stock = await ctx.db
    .select({
      warehouseId: inventory.warehouseId,
      region: warehouses.region,
      sku: inventory.sku,
      available: sql<number>`${inventory.onHand} - ${inventory.reserved}`.mapWith(Number),
    })
    .from(inventory)
    .innerJoin(warehouses, eq(warehouses.id, inventory.warehouseId))
    .where(
      inArray(
        inventory.sku,
        lines.map((l) => l.sku),
      ),
    );

  for (const warehouseId of singleWarehouseCandidates(lines, stock, order.region)) {
    const moved = await ctx.db
      .transaction(async (tx) => {
        const result = await transition(tx, {
          orderId: order.id,
          attempt: order.attempt,
          from: ['received'],
          to: 'allocated',
          detail: `reserved in warehouse ${warehouseId}`,
        });
        if (!result) return null;
        await reserve(tx, order.id, order.attempt, warehouseId, lines);
        await tx
          .insert(shipments)
          .values({ id: randomUUID(), orderId: order.id, attempt: order.attempt, warehouseId });
        return result;
      })
      .catch((error) => {
        if (error instanceof StockTaken) return undefined; // try the next warehouse
        throw error;
      });
    if (moved === undefined) continue;
    if (moved === null) return 'skipped';
    await enqueueNotifications(ctx, moved.notificationIds, priority);
    await enqueueAfterCommit(ctx, 'dispatch', () => ctx.queues.dispatch(order.id, order.attempt, priority));
    return 'allocated';
  }

  const failed = await ctx.db.transaction((tx) =>
    transition(tx, {
      orderId: order.id,
      attempt: order.attempt,
      from: ['received'],
      to: 'failed',
      detail: 'no warehouse holds every line',
      set: { failureReason: 'out_of_stock' },
    }),
  );
  if (!failed) return 'skipped';
  await enqueueNotifications(ctx, failed.notificationIds, priority);
  return 'out_of_stock';
}

/** Conditional increments: a line is reserved only if it is still available, never read-then-write. */
async function reserve(tx: Db, orderId: string, attempt: number, warehouseId: string, lines: OrderLine[]) {
  for (const line of lines) {
    const updated = await tx
      .update(inventory)
      .set({ reserved: sql`${inventory.reserved} + ${line.quantity}`, updatedAt: new Date() })
      .where(
        and(
          eq(inventory.warehouseId, warehouseId),
          eq(inventory.sku, line.sku),
          sql`${inventory.onHand} - ${inventory.reserved} >= ${line.quantity}`,
        ),
      )
      .returning({ sku: inventory.sku });
    if (updated.length === 0) throw new StockTaken();
    await tx
      .insert(allocations)
      .values({ orderId, attempt, warehouseId, sku: line.sku, quantity: line.quantity });
  }
}
