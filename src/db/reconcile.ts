import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type { Db } from './client.js';
import { carrierAttempts, notifications, orders, shipments } from './schema.js';
import type { Channel } from '../domain/notify.js';
import type { Priority } from '../domain/priority.js';
import type { OrderStatus } from '../domain/status.js';

/**
 * What the reconciler scans: rows that wait for a job, in (time, id) order after a keyset
 * position. Each row carries a `key` that changes whenever the row moves on, so the reconciler
 * can tell, after checking Redis, whether the row still stands as it was read.
 */
export interface ScanPosition {
  /** The timestamp as exact text (microseconds, which a JS Date drops). */
  at: string;
  id: string;
}

export interface WaitingRow {
  id: string;
  at: string;
  key: string;
  priority: Priority;
  /** The order's shop, for its turn in a lane (queues/fair.ts); rows of no order have none. */
  shopId?: string;
}

const exactTime = (column: PgColumn) =>
  sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const after = (column: PgColumn, id: PgColumn, cursor: ScanPosition | null) =>
  cursor ? sql`(${column}, ${id}) > (${cursor.at}::timestamptz, ${cursor.id}::uuid)` : undefined;

const orderKey = (row: { status: string; attempt: number; at: string }) =>
  `${row.status}/${row.attempt}/${row.at}`;

/** Orders waiting for a stage's job (`received`: allocation; `allocated`: dispatch). */
export async function ordersWaiting(
  db: Db,
  statuses: OrderStatus[],
  opts: { after: ScanPosition | null; before: Date; limit: number },
): Promise<(WaitingRow & { status: OrderStatus; attempt: number })[]> {
  const rows = await db
    .select({
      id: orders.id,
      status: orders.status,
      attempt: orders.attempt,
      priority: orders.priority,
      shopId: orders.shopId,
      at: exactTime(orders.updatedAt),
    })
    .from(orders)
    .where(
      and(
        inArray(orders.status, statuses),
        lt(orders.updatedAt, opts.before),
        after(orders.updatedAt, orders.id, opts.after),
      ),
    )
    .orderBy(asc(orders.updatedAt), asc(orders.id))
    .limit(opts.limit);
  return rows.map((r) => ({ ...r, key: orderKey(r) }));
}

export async function orderKeys(db: Db, ids: string[]): Promise<Map<string, string>> {
  const rows = await db
    .select({
      id: orders.id,
      status: orders.status,
      attempt: orders.attempt,
      at: exactTime(orders.updatedAt),
    })
    .from(orders)
    .where(inArray(orders.id, ids));
  return new Map(rows.map((row) => [row.id, orderKey(row)]));
}

/** Unsent outbox rows, with their channel (which queue their job joins). */
export async function notificationsWaiting(
  db: Db,
  opts: { after: ScanPosition | null; before: Date; limit: number },
): Promise<(WaitingRow & { channel: Channel })[]> {
  const rows = await db
    .select({
      id: notifications.id,
      channel: notifications.channel,
      priority: orders.priority,
      at: exactTime(notifications.createdAt),
    })
    .from(notifications)
    .innerJoin(orders, eq(orders.id, notifications.orderId))
    .where(
      and(
        eq(notifications.state, 'pending'),
        lt(notifications.createdAt, opts.before),
        after(notifications.createdAt, notifications.id, opts.after),
      ),
    )
    .orderBy(asc(notifications.createdAt), asc(notifications.id))
    .limit(opts.limit);
  return rows.map((r) => ({ ...r, key: 'pending' }));
}

export async function notificationKeys(db: Db, ids: string[]): Promise<Map<string, string>> {
  const rows = await db
    .select({ id: notifications.id, state: notifications.state })
    .from(notifications)
    .where(inArray(notifications.id, ids));
  return new Map(rows.map((row) => [row.id, row.state]));
}

/** Parcels whose bookings must still be cancelled at a carrier. */
export async function cancellationsWaiting(
  db: Db,
  opts: { after: ScanPosition | null; before: Date; limit: number },
): Promise<WaitingRow[]> {
  const rows = await db
    .select({ id: shipments.id, priority: orders.priority, at: exactTime(shipments.updatedAt) })
    .from(shipments)
    .innerJoin(orders, eq(orders.id, shipments.orderId))
    .where(
      and(
        eq(shipments.status, 'cancel_pending'),
        lt(shipments.updatedAt, opts.before),
        after(shipments.updatedAt, shipments.id, opts.after),
      ),
    )
    .orderBy(asc(shipments.updatedAt), asc(shipments.id))
    .limit(opts.limit);
  return rows.map((r) => ({ ...r, key: 'cancel_pending' }));
}

export async function parcelKeys(db: Db, ids: string[]): Promise<Map<string, string>> {
  const rows = await db
    .select({ id: shipments.id, status: shipments.status })
    .from(shipments)
    .where(inArray(shipments.id, ids));
  return new Map(rows.map((row) => [row.id, row.status]));
}

/**
 * Of these orders, the parcels of their current attempt still to be booked, with the booking calls
 * made for each so far: a parcel's booking job is `book-<parcel>-<calls>` while its call runs,
 * `book-<parcel>-<calls + 1>` while it waits (steps/dispatch.ts routeParcel).
 */
export async function parcelsToBook(
  db: Db,
  orderIds: string[],
): Promise<{ orderId: string; shipmentId: string; priority: Priority; calls: number }[]> {
  if (orderIds.length === 0) return [];
  const rows = await db
    .select({
      orderId: shipments.orderId,
      shipmentId: shipments.id,
      priority: orders.priority,
      calls: sql<number>`(select count(*) from ${carrierAttempts} a
        where a.order_id = ${shipments.orderId} and a.shipment_id = ${shipments.id})`.mapWith(Number),
    })
    .from(shipments)
    .innerJoin(orders, and(eq(orders.id, shipments.orderId), eq(orders.attempt, shipments.attempt)))
    .where(and(inArray(shipments.orderId, orderIds), inArray(shipments.status, ['pending', 'booking'])));
  return rows;
}
