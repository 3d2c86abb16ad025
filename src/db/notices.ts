import { eq } from 'drizzle-orm';
import type { Db } from './client.js';
import { insertOutboxRows } from './outbox.js';
import { orders } from './schema.js';
import { parcelsOf } from './shipments.js';
import { delayNoticeMessages, delayToTell, isLate, type CustomerChannel } from '../domain/notify.js';

/**
 * The `delayed` notice of a parcel just booked with a carrier estimate later than the order's
 * promise, written in the booking's transaction: one outbox row per customer channel, told as
 * `delayed` for the attempt's first parcel and `delayed#n` for its n-th, so the unique
 * (order, attempt, status, channel) key lets each parcel be told once however often this runs.
 * Nothing when the estimate keeps the promise, or when another parcel of the attempt already
 * told a date as late (domain/notify.ts delayToTell). Two parcels booked at the same instant
 * may each be told (neither sees the other's booking); each is still told once. Returns the rows
 * to enqueue after commit.
 */
export async function writeDelayNotice(
  tx: Db,
  parcel: { id: string; orderId: string; attempt: number },
  estimatedDeliveryAt: Date,
  env: { publicUrl: string },
): Promise<{ notificationId: string; channel: CustomerChannel }[]> {
  const [order] = await tx.select().from(orders).where(eq(orders.id, parcel.orderId));
  if (!order || order.attempt !== parcel.attempt || !isLate(order.promisedBy, estimatedDeliveryAt)) return [];
  const parcels = await parcelsOf(tx, order);
  const ordinal = parcels.findIndex((p) => p.id === parcel.id) + 1;
  if (ordinal === 0) return [];
  const others = parcels.filter((p) => p.id !== parcel.id && p.bookedAt !== null);
  if (
    !delayToTell(
      order.promisedBy,
      estimatedDeliveryAt,
      others.map((p) => p.estimatedDeliveryAt),
    )
  )
    return [];
  const { status, rows } = delayNoticeMessages(order, ordinal, estimatedDeliveryAt, env.publicUrl);
  const written = await insertOutboxRows(tx, order, status, new Date(), rows);
  return written.map((r) => ({ notificationId: r.notificationId, channel: r.channel as CustomerChannel }));
}
