import { and, asc, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { queueNotifications } from './notifications.js';
import { allocations, inventory, orderEvents, orderItems, orders, shipments } from './schema.js';
import type { OrderStatus, TimelineStatus } from '../domain/status.js';

export type OrderRow = typeof orders.$inferSelect;

export interface Transition {
  orderId: string;
  attempt: number;
  from: readonly OrderStatus[];
  to: OrderStatus;
  at?: Date;
  detail?: string | null;
  /** Extra columns changed with the status (failureReason, deliveredAt, promisedBy…). */
  set?: Partial<Pick<OrderRow, 'failureReason' | 'deliveredAt' | 'promisedBy'>>;
}

export interface TransitionResult {
  order: OrderRow;
  notificationIds: string[];
}

/**
 * Moves an order with a guarded update (`… AND status IN (from)`) and writes its event and its
 * outbox rows in the caller's transaction. Returns null when the order was not in a `from`
 * status: the stage already ran, or another one won; the caller then changes nothing.
 */
export async function transition(tx: Db, t: Transition): Promise<TransitionResult | null> {
  const at = t.at ?? new Date();
  const [order] = await tx
    .update(orders)
    .set({ status: t.to, updatedAt: new Date(), ...t.set })
    .where(and(eq(orders.id, t.orderId), eq(orders.attempt, t.attempt), inArray(orders.status, [...t.from])))
    .returning();
  if (!order) return null;
  const notificationIds = await recordEvent(tx, order, t.to, at, t.detail ?? null);
  return { order, notificationIds };
}

/**
 * Appends one timeline event (a status change or a carrier's out_for_delivery / failed_attempt)
 * and its notifications. A repeat of the same event writes nothing.
 */
export async function recordEvent(
  tx: Db,
  order: OrderRow,
  status: TimelineStatus,
  at: Date,
  detail: string | null,
): Promise<string[]> {
  const inserted = await tx
    .insert(orderEvents)
    .values({ orderId: order.id, attempt: order.attempt, status, at, detail })
    .onConflictDoNothing()
    .returning({ id: orderEvents.id });
  if (inserted.length === 0) return [];
  return queueNotifications(tx, order, status, at);
}

/**
 * Settles every reservation the order still holds: `released` gives the stock back (the
 * compensation of allocation, on failure or cancel); `consumed` takes it off the shelf once its
 * parcel is booked.
 */
async function settleReservations(tx: Db, orderId: string, attempt: number, to: 'released' | 'consumed') {
  const held = await tx
    .update(allocations)
    .set({ state: to })
    .where(
      and(
        eq(allocations.orderId, orderId),
        eq(allocations.attempt, attempt),
        eq(allocations.state, 'reserved'),
      ),
    )
    .returning();
  for (const a of held) {
    const onHand = to === 'consumed' ? sql`${inventory.onHand} - ${a.quantity}` : inventory.onHand;
    await tx
      .update(inventory)
      .set({ onHand, reserved: sql`${inventory.reserved} - ${a.quantity}`, updatedAt: new Date() })
      .where(and(eq(inventory.warehouseId, a.warehouseId), eq(inventory.sku, a.sku)));
  }
}

export const releaseReservations = (tx: Db, orderId: string, attempt: number) =>
  settleReservations(tx, orderId, attempt, 'released');

export const consumeReservations = (tx: Db, orderId: string, attempt: number) =>
  settleReservations(tx, orderId, attempt, 'consumed');

/** The parcels of the order's current attempt, optionally only those in the given statuses. */
export async function orderParcels(db: Db, order: Pick<OrderRow, 'id' | 'attempt'>, statuses?: string[]) {
  return db
    .select()
    .from(shipments)
    .where(
      and(
        eq(shipments.orderId, order.id),
        eq(shipments.attempt, order.attempt),
        statuses ? inArray(shipments.status, statuses) : undefined,
      ),
    )
    .orderBy(asc(shipments.createdAt), asc(shipments.id));
}

export async function findOrder(db: Db, id: string): Promise<OrderRow | undefined> {
  const [order] = await db.select().from(orders).where(eq(orders.id, id));
  return order;
}

export async function findShopOrder(db: Db, shopId: string, id: string): Promise<OrderRow | undefined> {
  const [order] = await db
    .select()
    .from(orders)
    .where(and(eq(orders.id, id), eq(orders.shopId, shopId)));
  return order;
}

/** Everything GET /v1/orders/{id} and the tracking page show. */
export async function orderDetails(db: Db, order: OrderRow) {
  const [items, allocated, parcels, events] = await Promise.all([
    db.select().from(orderItems).where(eq(orderItems.orderId, order.id)).orderBy(asc(orderItems.line)),
    db
      .select()
      .from(allocations)
      .where(and(eq(allocations.orderId, order.id), eq(allocations.attempt, order.attempt)))
      .orderBy(asc(allocations.id)),
    orderParcels(db, order),
    db
      .select()
      .from(orderEvents)
      .where(eq(orderEvents.orderId, order.id))
      .orderBy(asc(orderEvents.at), asc(orderEvents.id)),
  ]);
  return { items, allocations: allocated.filter((a) => a.state !== 'released'), shipments: parcels, events };
}

export interface ListCursor {
  createdAt: Date;
  id: string;
}

/** A shop's orders, newest first, keyset-paginated by (createdAt, id). */
export async function listShopOrders(
  db: Db,
  shopId: string,
  opts: { status?: string; limit: number; cursor?: ListCursor },
): Promise<OrderRow[]> {
  const conditions = [eq(orders.shopId, shopId)];
  if (opts.status) conditions.push(eq(orders.status, opts.status));
  if (opts.cursor) {
    const { createdAt, id } = opts.cursor;
    conditions.push(
      or(lt(orders.createdAt, createdAt), and(eq(orders.createdAt, createdAt), lt(orders.id, id)))!,
    );
  }
  return db
    .select()
    .from(orders)
    .where(and(...conditions))
    .orderBy(desc(orders.createdAt), desc(orders.id))
    .limit(opts.limit + 1);
}
