import { and, eq, inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import {
  consumeReservations,
  findOrder,
  orderParcels,
  releaseReservations,
  transition,
  type OrderRow,
} from '../db/orders.js';
import { carrierAttempts, carriers, orderItems, shipments } from '../db/schema.js';
import { eligibleCarriers } from '../domain/carriers.js';
import type { Priority } from '../domain/priority.js';
import type { FailureReason } from '../domain/status.js';
import type { BookingOutcome } from '../integrations/carriers/types.js';
import type { DispatchJob } from '../queues/index.js';
import { enqueueNotifications } from '../queues/enqueue.js';

type CarrierRow = typeof carriers.$inferSelect;
type ShipmentRow = typeof shipments.$inferSelect;

/** Every carrier answered something that may work later: BullMQ retries the job with backoff. */
export class TransientDispatchError extends Error {}

export type DispatchOutcome = 'dispatched' | 'no_carrier' | 'carrier_failed' | 'skipped';

/**
 * Books every pending parcel of an allocated order, the shipment id as Idempotency-Key, then
 * moves the order to `dispatched` and takes its stock off the shelf in one transaction.
 * `finalAttempt`: no retry is left, so a transient failure fails the order `carrier_failed`.
 */
export async function dispatchOrder(
  ctx: Context,
  job: DispatchJob,
  finalAttempt: boolean,
): Promise<DispatchOutcome> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt || order.status !== 'allocated') return 'skipped';

  const candidates = eligibleCarriers(await ctx.db.select().from(carriers), order.region);
  if (candidates.length === 0) return fail(ctx, order, 'no_carrier', 'no enabled carrier serves the region');

  const parcels = await orderParcels(ctx.db, order, ['pending']);
  const items = await ctx.db.select().from(orderItems).where(eq(orderItems.orderId, order.id));

  for (const parcel of parcels) {
    const outcome = await bookParcel(ctx, order, parcel, items, candidates);
    if (outcome === 'refused')
      return fail(ctx, order, 'no_carrier', 'every eligible carrier refused the parcel');
    if (outcome === 'transient') {
      if (finalAttempt)
        return fail(ctx, order, 'carrier_failed', 'retries exhausted at every eligible carrier');
      throw new TransientDispatchError(`parcel ${parcel.id}: carrier unavailable, will retry`);
    }
  }

  const dispatched = await ctx.db.transaction(async (tx) => {
    const moved = await transition(tx, {
      orderId: order.id,
      attempt: order.attempt,
      from: ['allocated'],
      to: 'dispatched',
      detail: `${parcels.length || 'all'} parcel(s) booked`,
    });
    if (moved) await consumeReservations(tx, order.id, order.attempt);
    return moved;
  });
  if (!dispatched) {
    // Cancelled (or failed) while we were booking: undo the bookings so no parcel ships. But a
    // duplicate of this job (redelivered, re-enqueued by the reconciler) that dispatched first
    // booked the very same parcels under the same keys: those must stay booked.
    const now = await findOrder(ctx.db, order.id);
    const shipping = ['dispatched', 'in_transit', 'delivered'];
    const shippedByDuplicate = now?.attempt === order.attempt && shipping.includes(now.status);
    if (!shippedByDuplicate) await cancelBookings(ctx, order);
    return 'skipped';
  }
  await enqueueNotifications(ctx, dispatched.notificationIds, order.priority as Priority);
  return 'dispatched';
}

/** Tries the carriers in rank order; a 422 moves on at once, a transient failure stops the attempt. */
async function bookParcel(
  ctx: Context,
  order: OrderRow,
  parcel: ShipmentRow,
  items: { sku: string; quantity: number }[],
  candidates: CarrierRow[],
): Promise<'booked' | 'refused' | 'transient'> {
  for (const carrier of candidates) {
    const outcome = await ctx.carriers.book(carrier, {
      reference: parcel.id,
      orderId: order.id,
      region: order.region,
      address: order.shippingAddress,
      items: items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
      contactless: order.contactless,
      priority: order.priority,
    });
    await recordAttempt(ctx, order, parcel, carrier.id, outcome);
    if (outcome.kind === 'booked') {
      await ctx.db
        .update(shipments)
        .set({
          status: 'booked',
          carrierId: carrier.id,
          trackingNumber: outcome.trackingNumber,
          estimatedDeliveryAt: outcome.estimatedDeliveryAt ? new Date(outcome.estimatedDeliveryAt) : null,
          bookedAt: new Date(),
          updatedAt: new Date(),
        })
        .where(and(eq(shipments.id, parcel.id), eq(shipments.status, 'pending')));
      return 'booked';
    }
    if (outcome.kind !== 'refused') {
      ctx.log.warn(
        { orderId: order.id, carrierId: carrier.id, outcome: outcome.kind, detail: outcome.detail },
        'booking failed',
      );
      return 'transient';
    }
    ctx.log.info(
      { orderId: order.id, carrierId: carrier.id, detail: outcome.detail },
      'carrier refused parcel',
    );
  }
  return 'refused';
}

async function recordAttempt(
  ctx: Context,
  order: OrderRow,
  parcel: ShipmentRow,
  carrierId: string,
  o: BookingOutcome,
) {
  await ctx.db.insert(carrierAttempts).values({
    orderId: order.id,
    shipmentId: parcel.id,
    carrierId,
    outcome: o.kind,
    httpStatus: o.httpStatus,
    detail: o.kind === 'booked' ? o.trackingNumber : o.detail,
  });
}

/** Ends the order `failed`, releasing its stock in the same transaction, then cancels any booking. */
async function fail(
  ctx: Context,
  order: OrderRow,
  reason: FailureReason,
  detail: string,
): Promise<DispatchOutcome> {
  const failed = await ctx.db.transaction(async (tx) => {
    const moved = await transition(tx, {
      orderId: order.id,
      attempt: order.attempt,
      from: ['allocated'],
      to: 'failed',
      detail,
      set: { failureReason: reason },
    });
    if (moved) await releaseReservations(tx, order.id, order.attempt);
    return moved;
  });
  if (!failed) return 'skipped';
  ctx.log.error({ orderId: order.id, failureReason: reason, detail }, 'order failed at dispatch');
  await cancelBookings(ctx, order);
  await enqueueNotifications(ctx, failed.notificationIds, order.priority as Priority);
  return reason === 'no_carrier' ? 'no_carrier' : 'carrier_failed';
}

/**
 * Cancels at the carrier every parcel that is (or may be, after a timeout) booked there, so a
 * parcel of an order that will not ship is never picked up.
 */
async function cancelBookings(ctx: Context, order: OrderRow) {
  const parcels = await orderParcels(ctx.db, order, ['pending', 'booked']);
  if (parcels.length === 0) return;
  const tried = await ctx.db
    .selectDistinct({ shipmentId: carrierAttempts.shipmentId, carrierId: carrierAttempts.carrierId })
    .from(carrierAttempts)
    .where(
      and(eq(carrierAttempts.orderId, order.id), inArray(carrierAttempts.outcome, ['booked', 'timeout'])),
    );
  const all = await ctx.db.select().from(carriers);
  for (const parcel of parcels) {
    for (const { carrierId } of tried.filter((t) => t.shipmentId === parcel.id)) {
      const carrier = all.find((c) => c.id === carrierId);
      if (!carrier) continue;
      const result = await ctx.carriers.cancel(carrier, parcel.id);
      if (result === 'failed')
        ctx.log.error({ orderId: order.id, carrierId, shipmentId: parcel.id }, 'could not cancel booking');
    }
    await ctx.db
      .update(shipments)
      .set({ status: 'cancelled', updatedAt: new Date() })
      .where(eq(shipments.id, parcel.id));
  }
}
