import type { Context } from '../context.js';
import { allCarriers } from '../db/carriers.js';
import { mayStillLand } from '../domain/parcels.js';
import { confirmCancelled, findParcel, finishCancellation, possibleBookings } from '../db/shipments.js';

export type CancelResult = 'cancelled' | 'retry' | 'skipped';

/**
 * Cancels, at every carrier that may hold it (or only `carrierId`), each possible booking of a
 * parcel: `DELETE /shipments/{id}` until the carrier answers 2xx or 404. 'retry' while any
 * carrier failed to confirm, or while a call that could still book is in flight.
 */
export async function cancelAtCarriers(
  ctx: Context,
  shipmentId: string,
  carrierId?: string,
): Promise<'done' | 'retry'> {
  const possible = (await possibleBookings(ctx.db, shipmentId)).filter(
    (a) => !carrierId || a.carrierId === carrierId,
  );
  if (possible.length === 0) return 'done';
  const carriers = new Map((await allCarriers(ctx.db)).map((c) => [c.id, c]));
  let done = true;
  for (const id of new Set(possible.map((a) => a.carrierId))) {
    const carrier = carriers.get(id);
    const mine = possible.filter((a) => a.carrierId === id);
    const latest = mine[mine.length - 1];
    if (!carrier) continue; // a carrier deleted from the table can't be called; nothing to do
    const answer = await ctx.carriers.cancel(carrier, shipmentId);
    // A call with no answer (in flight, or timed out: the carrier may still act on it) can book
    // after this DELETE, or re-make the booking it just removed: no answer proves it gone yet.
    const inFlight = mine.some(
      (a) => a.outcome !== 'booked' && mayStillLand(a.at, new Date(), ctx.config.carrierTimeoutMs),
    );
    if (answer === 'failed' || inFlight) {
      ctx.log.warn({ shipmentId, carrierId: id, answer }, 'booking not yet confirmed cancelled; will retry');
      done = false;
      continue;
    }
    await confirmCancelled(ctx.db, shipmentId, id, latest.id);
    ctx.log.info({ shipmentId, carrierId: id, answer }, 'booking cancelled at carrier');
  }
  return done ? 'done' : 'retry';
}

/** The cancellation job of a `cancel_pending` parcel: confirmed everywhere → `cancelled`. */
export async function cancelBooking(ctx: Context, shipmentId: string): Promise<CancelResult> {
  const parcel = await findParcel(ctx.db, shipmentId);
  if (!parcel || parcel.status !== 'cancel_pending') return 'skipped';
  if ((await cancelAtCarriers(ctx, shipmentId)) === 'retry') return 'retry';
  await finishCancellation(ctx.db, shipmentId);
  return 'cancelled';
}
