import type { OrderStatus } from './status.js';

/**
 * A parcel (a `shipments` row) on its way: `pending` until a booking call starts, `booking` while
 * one is in flight, then `booked`, `in_transit`, `delivered` or `returned`. A parcel of an order
 * that will not ship goes `cancel_pending` until every carrier that may hold it confirmed the
 * cancel, then `cancelled`.
 */
export const PARCEL_STATUSES = [
  'pending',
  'booking',
  'booked',
  'in_transit',
  'delivered',
  'returned',
  'cancel_pending',
  'cancelled',
] as const;
export type ParcelStatus = (typeof PARCEL_STATUSES)[number];

/** Parcels that are, or may be, live at a carrier: cancelling the order must cancel them there. */
export const POSSIBLY_BOOKED: readonly ParcelStatus[] = ['booking', 'booked', 'in_transit'];
/** Parcels the carrier still has to report on. */
export const AWAITING_EVENTS: readonly ParcelStatus[] = ['booked', 'in_transit'];

export type AllocationState = 'reserved' | 'consumed' | 'released';

/** A booking call's outcome; `pending` is the intent written before the call. */
export type AttemptOutcome = 'pending' | 'booked' | 'refused' | 'transient' | 'timeout';
/** Outcomes after which the carrier may hold the parcel. */
export const MAYBE_BOOKED: readonly AttemptOutcome[] = ['pending', 'booked', 'timeout'];

interface ParcelState {
  status: ParcelStatus;
  deliveredAt: Date | null;
}

/**
 * The order's status from its parcels: `delivered` once every live parcel is (at the last
 * parcel's time), `in_transit` once any parcel moves; null when the parcels change nothing.
 */
export function rollUp(
  current: OrderStatus,
  parcels: ParcelState[],
): { status: 'delivered'; deliveredAt: Date } | { status: 'in_transit' } | null {
  const live = parcels.filter((p) => p.status !== 'cancelled' && p.status !== 'cancel_pending');
  if (live.length > 0 && live.every((p) => p.status === 'delivered')) {
    const last = Math.max(...live.map((p) => p.deliveredAt?.getTime() ?? 0));
    return { status: 'delivered', deliveredAt: new Date(last) };
  }
  const moving = live.some((p) => p.status === 'in_transit' || p.status === 'delivered');
  if (moving && current === 'dispatched') return { status: 'in_transit' };
  return null;
}

/** A carrier may still act on a call this long past our timeout (its answer was on the way). */
export const IN_FLIGHT_GRACE_MS = 5_000;

/**
 * Whether a booking call that started at `startedAt` may still book at the carrier: it is in
 * flight (or its worker just died), or it timed out so recently that the carrier may act on it.
 */
export function mayStillLand(startedAt: Date, now: Date, carrierTimeoutMs: number): boolean {
  return now.getTime() - startedAt.getTime() < carrierTimeoutMs + IN_FLIGHT_GRACE_MS;
}

/**
 * Whether a parcel's latest booking call is still in flight: it is pending (a call records its
 * answer, or is undone, in the transaction that frees the parcel) and may still land. Read from
 * the attempts alone, never from a parcel row read earlier: a booking job may have started a call
 * between the two reads, and taking that call for a dead one cancelled the booking it made.
 */
export function callInFlight(
  latest: { outcome: string; at: Date } | undefined,
  now: Date,
  carrierTimeoutMs: number,
): boolean {
  return latest?.outcome === 'pending' && mayStillLand(latest.at, now, carrierTimeoutMs);
}

const HOUR = 3_600_000;

/** When a carrier event is due for a booked parcel: its ETA, else booking time + transit. */
export function expectedEventBy(
  bookedAt: Date,
  estimatedDeliveryAt: Date | null,
  transitHours: number,
): Date {
  return estimatedDeliveryAt ?? new Date(bookedAt.getTime() + transitHours * HOUR);
}
