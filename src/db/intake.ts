import { and, eq } from 'drizzle-orm';
import type { Db } from './client.js';
import { recordEvent, type LoadedOrder, type OrderRow, type OutboxEnv } from './orders.js';
import type { OutboxRef } from './outbox.js';
import { orderItems, orders } from './schema.js';

export type NewOrderRow = typeof orders.$inferInsert;

/**
 * Commits an order, its items, its `received` event and outbox rows in one transaction, under
 * the shop's idempotency key. The unique (shop, key) constraint decides between concurrent
 * duplicates: the loser's insert waits for the winner's commit and inserts nothing (null).
 */
export async function insertOrder(
  db: Db,
  row: NewOrderRow & { createdAt: Date },
  items: { sku: string; quantity: number }[],
  webhookUrl: string | null,
  env: OutboxEnv,
): Promise<{ order: LoadedOrder; notifications: OutboxRef[] } | null> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx
      .insert(orders)
      .values(row)
      .onConflictDoNothing({ target: [orders.shopId, orders.idempotencyKey] })
      .returning();
    if (!inserted) return null;
    await tx.insert(orderItems).values(items.map((item, line) => ({ orderId: inserted.id, line, ...item })));
    const order: LoadedOrder = { ...inserted, webhookUrl };
    const notifications = (await recordEvent(tx, order, 'received', row.createdAt, null, env)) ?? [];
    return { order, notifications };
  });
}

export async function findByIdempotencyKey(
  db: Db,
  shopId: string,
  key: string,
): Promise<OrderRow | undefined> {
  const [order] = await db
    .select()
    .from(orders)
    .where(and(eq(orders.shopId, shopId), eq(orders.idempotencyKey, key)));
  return order;
}
