import { and, inArray, sql } from 'drizzle-orm';
import { insertRows } from './bulk.js';
import type { Db } from './client.js';
import { recordEvents, type LoadedOrder, type OrderRow, type OutboxEnv } from './orders.js';
import type { OutboxRef } from './outbox.js';
import { orderItems, orders } from './schema.js';

export type NewOrderRow = typeof orders.$inferInsert;

/** One order of a group commit: its row, its lines, and its shop's webhook (for the outbox). */
export interface OrderToInsert {
  row: NewOrderRow & { id: string; createdAt: Date };
  items: { sku: string; quantity: number }[];
  webhookUrl: string | null;
}

/**
 * Commits orders in ONE transaction (group-commit intake): one multi-row INSERT of
 * the orders under ON CONFLICT (shop, key) DO NOTHING, then their items, their `received` events
 * and outbox rows (db/orders.ts recordEvents: recordEvent's rows, batched). The orders go in
 * (shop, key) order, so two transactions that insert some of the same keys take their locks in
 * the same order and wait for each other rather than deadlock. An order missing from the answer
 * lost its key to a concurrent commit: the unique (shop, key) constraint decides between concurrent
 * duplicates, the loser's insert waiting for the winner's commit and inserting nothing.
 * Returns what was inserted, by order id.
 */
export async function insertOrders(
  db: Db,
  entries: OrderToInsert[],
  env: OutboxEnv,
): Promise<Map<string, { order: LoadedOrder; notifications: OutboxRef[] }>> {
  const created = new Map<string, { order: LoadedOrder; notifications: OutboxRef[] }>();
  if (entries.length === 0) return created;
  const sorted = [...entries].sort((a, b) =>
    a.row.shopId === b.row.shopId
      ? compare(a.row.idempotencyKey, b.row.idempotencyKey)
      : compare(a.row.shopId, b.row.shopId),
  );
  const byId = new Map(entries.map((e) => [e.row.id, e]));
  return db.transaction(async (tx) => {
    const inserted = await insertRows(
      tx,
      orders,
      sorted.map((e) => e.row),
      { onConflict: sql`(shop_id, idempotency_key) do nothing`, returning: true },
    );
    if (inserted.length === 0) return created;
    const lines = inserted.flatMap((o) =>
      byId.get(o.id)!.items.map((item, line) => ({ orderId: o.id, line, ...item })),
    );
    await insertRows(tx, orderItems, lines);
    const loaded: LoadedOrder[] = inserted.map((o) => ({ ...o, webhookUrl: byId.get(o.id)!.webhookUrl }));
    const notifications = await recordEvents(
      tx,
      loaded.map((order) => ({
        order,
        status: 'received',
        at: byId.get(order.id)!.row.createdAt,
        detail: null,
      })),
      env,
    );
    for (const order of loaded) {
      created.set(order.id, { order, notifications: notifications.get(order.id) ?? [] });
    }
    return created;
  });
}

/** Code-point order, as the database's "C" collation would; any total order serves the locks. */
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The orders already under any of these (shop, key) pairs, in one query. */
export async function findByIdempotencyKeys(
  db: Db,
  pairs: { shopId: string; key: string }[],
): Promise<OrderRow[]> {
  if (pairs.length === 0) return [];
  const wanted = new Set(pairs.map((p) => `${p.shopId}\u0000${p.key}`));
  const rows = await db
    .select()
    .from(orders)
    .where(
      and(
        inArray(orders.shopId, [...new Set(pairs.map((p) => p.shopId))]),
        inArray(orders.idempotencyKey, [...new Set(pairs.map((p) => p.key))]),
      ),
    );
  return rows.filter((o) => wanted.has(`${o.shopId}\u0000${o.idempotencyKey}`));
}
