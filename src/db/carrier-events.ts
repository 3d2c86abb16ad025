import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from './client.js';
import { findOrder, orderParcels, recordEvent, transition, type OrderRow } from './orders.js';
import { shipments } from './schema.js';
import { AppError, notFound } from '../errors.js';

export interface CarrierEvent {
  trackingNumber: string;
  status: 'in_transit' | 'out_for_delivery' | 'delivered' | 'failed_attempt' | 'returned';
  at: Date;
}

export interface AppliedEvent {
  order: OrderRow;
  notificationIds: string[];
}

const MOVING = ['dispatched', 'in_transit'] as const;

/**
 * Applies one carrier progress event. Repeats and late or out-of-order events change nothing
 * (every update is guarded by the status it moves from), so they are answered 2xx too.
 */
export async function applyCarrierEvent(
  db: Db,
  carrierId: string,
  event: CarrierEvent,
): Promise<AppliedEvent | null> {
  const [parcel] = await db
    .select()
    .from(shipments)
    .where(and(eq(shipments.carrierId, carrierId), eq(shipments.trackingNumber, event.trackingNumber)));
  if (!parcel) throw notFound('tracking number for this carrier');
  const order = await findOrder(db, parcel.orderId);
  if (!order || order.attempt !== parcel.attempt) return null; // an earlier attempt's parcel

  if (order.status === 'allocated' && parcel.status === 'booked') {
    // The booking answer beat our own commit of `dispatched`: ask the carrier to send it again shortly.
    throw new AppError(503, 'not_ready', 'The order is still being dispatched; retry shortly.', undefined, {
      'retry-after': '1',
    });
  }

  return db.transaction(async (tx) => {
    const ids: string[] = [];
    const move = async (
      to: 'in_transit' | 'delivered' | 'failed',
      extra: Parameters<typeof transition>[1]['set'] = {},
    ) => {
      const moved = await transition(tx, {
        orderId: order.id,
        attempt: order.attempt,
        from: MOVING,
        to,
        at: event.at,
        set: extra,
      });
      if (moved) ids.push(...moved.notificationIds);
      return moved;
    };
    const setParcel = (status: string, from: string[], deliveredAt?: Date) =>
      tx
        .update(shipments)
        .set({ status, updatedAt: new Date(), ...(deliveredAt ? { deliveredAt } : {}) })
        .where(and(eq(shipments.id, parcel.id), inArray(shipments.status, from)));

    switch (event.status) {
      case 'in_transit':
        await setParcel('in_transit', ['booked']);
        if (order.status === 'dispatched') await move('in_transit');
        break;
      case 'out_for_delivery':
      case 'failed_attempt': {
        await setParcel('in_transit', ['booked']);
        if (order.status === 'dispatched') await move('in_transit');
        if (order.status === 'dispatched' || order.status === 'in_transit') {
          ids.push(...(await recordEvent(tx, order, event.status, event.at, `parcel ${parcel.id}`)));
        }
        break;
      }
      case 'delivered': {
        await setParcel('delivered', ['booked', 'in_transit'], event.at);
        const parcels = (await orderParcels(tx, order)).filter((p) => p.status !== 'cancelled');
        const allDelivered = parcels.every((p) => p.status === 'delivered');
        if (allDelivered) {
          const deliveredAt = new Date(
            Math.max(...parcels.map((p) => (p.deliveredAt ?? event.at).getTime())),
          );
          await move('delivered', { deliveredAt });
        } else if (order.status === 'dispatched') {
          await move('in_transit');
        }
        break;
      }
      case 'returned':
        if (order.status === 'delivered' || parcel.status === 'delivered') {
          throw new AppError(
            409,
            'already_delivered',
            'The parcel was already delivered; a return is not a delivery failure.',
          );
        }
        await setParcel('returned', ['booked', 'in_transit']);
        await move('failed', { failureReason: 'returned' });
        break;
    }
    return { order, notificationIds: ids };
  });
}
