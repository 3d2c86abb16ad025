import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { insertRows, rowsOf } from './bulk.js';
import { reusable } from './reusable.js';
import { carrierAttempts, shipments } from './schema.js';
import type { AttemptRecord } from '../domain/carrier-choice.js';
import { MAYBE_BOOKED, POSSIBLY_BOOKED, type AttemptOutcome, type ParcelStatus } from '../domain/parcels.js';

export type ShipmentRow = typeof shipments.$inferSelect;
export type CarrierAttemptRow = typeof carrierAttempts.$inferSelect;

interface OrderRef {
  id: string;
  attempt: number;
}

/** One parcel per warehouse of the plan. */
export async function createParcels(tx: Db, order: OrderRef, warehouseIds: string[]): Promise<void> {
  await insertRows(
    tx,
    shipments,
    warehouseIds.map((warehouseId) => ({
      id: randomUUID(),
      orderId: order.id,
      attempt: order.attempt,
      warehouseId,
    })),
  );
}

/** The parcels of the order's current attempt, optionally only those in the given statuses. */
export async function parcelsOf(
  db: Db,
  order: OrderRef,
  statuses?: readonly ParcelStatus[],
): Promise<ShipmentRow[]> {
  // An order has a parcel per warehouse, a handful at most: filtered here, so one query shape serves all.
  const rows = await parcelsQuery(db, { orderId: order.id, attempt: order.attempt });
  return statuses ? rows.filter((r) => statuses.includes(r.status)) : rows;
}

const parcelsQuery = reusable<{ orderId: string; attempt: number }, ShipmentRow[]>((db, p) =>
  db
    .select()
    .from(shipments)
    .where(and(eq(shipments.orderId, p('orderId')), eq(shipments.attempt, p('attempt'))))
    .orderBy(asc(shipments.createdAt), asc(shipments.id)),
);

const parcelQuery = reusable<{ id: string }, ShipmentRow[]>((db, p) =>
  db
    .select()
    .from(shipments)
    .where(eq(shipments.id, p('id'))),
);

export async function findParcel(db: Db, id: string): Promise<ShipmentRow | undefined> {
  const [row] = await parcelQuery(db, { id });
  return row;
}

const trackingQuery = reusable<{ carrierId: string; trackingNumber: string }, ShipmentRow[]>((db, p) =>
  db
    .select()
    .from(shipments)
    .where(and(eq(shipments.carrierId, p('carrierId')), eq(shipments.trackingNumber, p('trackingNumber')))),
);

export async function findByTracking(db: Db, carrierId: string, trackingNumber: string) {
  const [row] = await trackingQuery(db, { carrierId, trackingNumber });
  return row;
}

/** The parcel's booking calls, oldest first: what carrier choice decides from. */
const attemptsQuery = reusable<{ shipmentId: string }, CarrierAttemptRow[]>((db, p) =>
  db
    .select()
    .from(carrierAttempts)
    .where(eq(carrierAttempts.shipmentId, p('shipmentId')))
    .orderBy(asc(carrierAttempts.id)),
);

export async function attemptsOf(db: Db, shipmentId: string): Promise<(AttemptRecord & { id: number })[]> {
  const rows = await attemptsQuery(db, { shipmentId });
  return rows.map((r) => ({
    id: r.id,
    carrierId: r.carrierId,
    at: r.at,
    outcome: r.outcome,
    answeredAt: r.answeredAt,
    retryAfterMs: retryAfterOf(r.detail),
    cancelledAt: r.cancelledAt,
  }));
}

const RETRY_AFTER = /retry-after (\d+) ms/;
function retryAfterOf(detail: string | null): number | null {
  const match = detail ? RETRY_AFTER.exec(detail) : null;
  return match ? Number(match[1]) : null;
}

/**
 * The booking intent, committed before the carrier is called: the attempt row (`pending`) and
 * the parcel `booking`. A worker killed during the call leaves both behind, so the parcel counts
 * as possibly booked there and is cancelled if the order does not ship. Only a `pending` parcel
 * starts a call — or one left `booking` by a worker that died: at this same carrier (`resume`),
 * or at any once the dead call is long over (`stale`) — so two booking jobs never call two
 * carriers for one parcel at once. Null when the
 * parcel is not free for this call (another call is in flight, or it was cancelled meanwhile).
 */
export async function startBooking(
  db: Db,
  parcel: { id: string; orderId: string },
  carrierId: string,
  /** `resume`: this carrier's own call was cut off; `stale`: a dead worker's call, long over, at any carrier. */
  from: 'pending' | 'resume' | 'stale' = 'pending',
): Promise<number | null> {
  // One statement (its own transaction): the parcel taken and the attempt recorded, or neither.
  const [row] = rowsOf<{ id: number | string }>(
    await db.execute(sql`
      with taken as (
        update shipments set status = 'booking', carrier_id = ${carrierId}, updated_at = now()
         where id = ${parcel.id}
           and (status = 'pending'
                or (${from}::text = 'stale' and status = 'booking')
                or (${from}::text = 'resume' and status = 'booking' and carrier_id = ${carrierId}))
        returning id, order_id
      )
      insert into carrier_attempts (order_id, shipment_id, carrier_id, outcome)
      select order_id, id, ${carrierId}, 'pending' from taken
      returning id`),
  );
  return row ? Number(row.id) : null;
}

/** A booking intent whose call was never made (the carrier's rate limit said wait): undone. */
export async function abandonBooking(db: Db, attemptId: number, parcelId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .delete(carrierAttempts)
      .where(and(eq(carrierAttempts.id, attemptId), eq(carrierAttempts.outcome, 'pending')));
    await tx
      .update(shipments)
      .set({ status: 'pending', updatedAt: new Date() })
      .where(and(eq(shipments.id, parcelId), eq(shipments.status, 'booking')));
  });
}

export interface CallResult {
  outcome: Exclude<AttemptOutcome, 'pending'>;
  httpStatus: number | null;
  detail: string;
  retryAfterMs?: number;
}

/** What a call's row says of its answer: the detail, with a Retry-After when one came (attemptsOf reads it back). */
function attemptDetail(result: CallResult): string {
  const detail = result.retryAfterMs
    ? `${result.detail} (retry-after ${result.retryAfterMs} ms)`
    : result.detail;
  return detail.slice(0, 500);
}

/** Records what the carrier answered to a call. */
export async function finishAttempt(tx: Db, attemptId: number, result: CallResult): Promise<void> {
  await finishAttemptQuery(tx, {
    id: attemptId,
    outcome: result.outcome,
    httpStatus: result.httpStatus,
    detail: attemptDetail(result),
    now: new Date().toISOString(),
  });
}

const finishAttemptQuery = reusable<
  { id: number; outcome: string; httpStatus: number | null; detail: string; now: string },
  unknown
>((db, p) =>
  db
    .update(carrierAttempts)
    .set({
      outcome: sql`${p('outcome')}`,
      httpStatus: sql`${p('httpStatus')}::int`,
      detail: sql`${p('detail')}`,
      answeredAt: sql`${p('now')}::timestamptz`,
    })
    .where(eq(carrierAttempts.id, p('id'))),
);

/** A call that did not book: the parcel waits for its next decision. */
export async function bookingFailed(
  db: Db,
  attemptId: number,
  parcelId: string,
  result: CallResult,
): Promise<void> {
  await db.transaction(async (tx) => {
    await finishAttempt(tx, attemptId, result);
    await tx
      .update(shipments)
      .set({ status: 'pending', updatedAt: new Date() })
      .where(and(eq(shipments.id, parcelId), eq(shipments.status, 'booking')));
  });
}

/**
 * A booked answer. The parcel becomes `booked` only if it is still `booking`; if the order was
 * cancelled or failed meanwhile, the parcel goes (back) to `cancel_pending` so the booking that
 * just landed is cancelled too. Returns which of the two happened.
 */
export async function bookingSucceeded(
  db: Db,
  attemptId: number,
  parcelId: string,
  booked: {
    carrierId: string;
    trackingNumber: string;
    estimatedDeliveryAt: Date | null;
    expectedBy: Date;
    bookedAt: Date;
  },
  result: CallResult,
  /** Runs in the same transaction once the parcel is booked (the delay notice). */
  onBooked?: (tx: Db) => Promise<void>,
): Promise<'booked' | 'cancel_pending'> {
  // Nothing else to write (the usual case): the one statement is its own transaction.
  if (!onBooked) return bookedInOneStatement(db, attemptId, parcelId, booked, result);
  return db.transaction(async (tx) => {
    const outcome = await bookedInOneStatement(tx, attemptId, parcelId, booked, result);
    if (outcome === 'booked') await onBooked(tx);
    return outcome;
  });
}

/**
 * bookingSucceeded's three writes as one statement: the answer recorded, and the parcel `booked`
 * if still `booking`, else (cancelled during the call) `cancel_pending`. The two parcel updates
 * exclude each other by status, read from the statement's one snapshot.
 */
async function bookedInOneStatement(
  db: Db,
  attemptId: number,
  parcelId: string,
  booked: Parameters<typeof bookingSucceeded>[3],
  result: CallResult,
): Promise<'booked' | 'cancel_pending'> {
  const [row] = rowsOf<{ booked: number }>(
    await db.execute(sql`
      with answered as (
        update carrier_attempts
           set outcome = ${result.outcome}, http_status = ${result.httpStatus}::int,
               detail = ${attemptDetail(result)}, answered_at = now()
         where id = ${attemptId}
      ), marked as (
        update shipments
           set status = 'booked', carrier_id = ${booked.carrierId}, tracking_number = ${booked.trackingNumber},
               estimated_delivery_at = ${booked.estimatedDeliveryAt?.toISOString() ?? null}::timestamptz,
               expected_by = ${booked.expectedBy.toISOString()}::timestamptz,
               booked_at = ${booked.bookedAt.toISOString()}::timestamptz, updated_at = now()
         where id = ${parcelId} and status = 'booking'
        returning id
      ), undone as (
        update shipments set status = 'cancel_pending', updated_at = now()
         where id = ${parcelId} and status in ('cancel_pending', 'cancelled')
      )
      select (select count(*) from marked)::int as booked`),
  );
  return Number(row?.booked) > 0 ? 'booked' : 'cancel_pending';
}

/**
 * The compensation of booking, in the transaction that cancels or fails the order: parcels that
 * are or may be live at a carrier go `cancel_pending` (a job DELETEs them until confirmed);
 * parcels never sent anywhere are simply `cancelled`. Returns the `cancel_pending` ids.
 */
export async function markCancelPending(tx: Db, order: OrderRef): Promise<string[]> {
  const now = new Date();
  const mine = and(eq(shipments.orderId, order.id), eq(shipments.attempt, order.attempt));
  const pending = await tx
    .update(shipments)
    .set({ status: 'cancel_pending', updatedAt: now })
    .where(and(mine, inArray(shipments.status, [...POSSIBLY_BOOKED])))
    .returning({ id: shipments.id });
  // A pending parcel may still hold an ambiguous answer from a carrier it failed over from.
  const unsent = await tx
    .update(shipments)
    .set({ status: 'cancelled', updatedAt: now })
    .where(and(mine, eq(shipments.status, 'pending')))
    .returning({ id: shipments.id });
  const ambiguous = unsent.length
    ? await tx
        .selectDistinct({ id: carrierAttempts.shipmentId })
        .from(carrierAttempts)
        .where(
          and(
            inArray(
              carrierAttempts.shipmentId,
              unsent.map((u) => u.id),
            ),
            inArray(carrierAttempts.outcome, [...MAYBE_BOOKED]),
            isNull(carrierAttempts.cancelledAt),
          ),
        )
    : [];
  if (ambiguous.length) {
    await tx
      .update(shipments)
      .set({ status: 'cancel_pending' })
      .where(
        inArray(
          shipments.id,
          ambiguous.map((a) => a.id),
        ),
      );
  }
  return [...pending, ...ambiguous].map((p) => p.id);
}

/** Booking calls of the parcel after which a carrier may still hold it, not yet confirmed gone. */
export async function possibleBookings(db: Db, shipmentId: string): Promise<CarrierAttemptRow[]> {
  return db
    .select()
    .from(carrierAttempts)
    .where(
      and(
        eq(carrierAttempts.shipmentId, shipmentId),
        inArray(carrierAttempts.outcome, [...MAYBE_BOOKED]),
        isNull(carrierAttempts.cancelledAt),
      ),
    )
    .orderBy(asc(carrierAttempts.id));
}

/** The carrier confirmed (2xx or 404) that it holds nothing for the parcel. */
export async function confirmCancelled(
  db: Db,
  shipmentId: string,
  carrierId: string,
  upTo: number,
): Promise<void> {
  await db
    .update(carrierAttempts)
    .set({ cancelledAt: new Date() })
    .where(
      and(
        eq(carrierAttempts.shipmentId, shipmentId),
        eq(carrierAttempts.carrierId, carrierId),
        sql`${carrierAttempts.id} <= ${upTo}`,
        isNull(carrierAttempts.cancelledAt),
      ),
    );
}

/** Every carrier confirmed: the parcel is `cancelled`. */
export async function finishCancellation(db: Db, shipmentId: string): Promise<void> {
  await db
    .update(shipments)
    .set({ status: 'cancelled', updatedAt: new Date() })
    .where(and(eq(shipments.id, shipmentId), eq(shipments.status, 'cancel_pending')));
}

/** A carrier's report on a parcel: moves it forward only from the given statuses. */
export async function setParcelStatus(
  tx: Db,
  parcelId: string,
  to: ParcelStatus,
  from: readonly ParcelStatus[],
  event: { at: Date; deliveredAt?: Date },
): Promise<void> {
  await moveParcel(tx, {
    id: parcelId,
    to,
    // One query shape for every list of statuses: a parcel status never holds a comma.
    from: from.join(','),
    deliveredAt: event.deliveredAt?.toISOString() ?? null,
    now: new Date().toISOString(),
  });
  await noteParcelEvent(tx, { id: parcelId, at: event.at.toISOString() });
}

const moveParcel = reusable<
  { id: string; to: ParcelStatus; from: string; deliveredAt: string | null; now: string },
  unknown
>((db, p) =>
  db
    .update(shipments)
    .set({
      status: sql`${p('to')}`,
      updatedAt: sql`${p('now')}::timestamptz`,
      deliveredAt: sql`coalesce(${p('deliveredAt')}::timestamptz, ${shipments.deliveredAt})`,
    })
    .where(
      and(
        eq(shipments.id, p('id')),
        sql`${shipments.status} = any(string_to_array(${p('from')}::text, ','))`,
      ),
    ),
);

const noteParcelEvent = reusable<{ id: string; at: string }, unknown>((db, p) =>
  db
    .update(shipments)
    .set({ lastEventAt: sql`${p('at')}::timestamptz` })
    .where(
      and(
        eq(shipments.id, p('id')),
        or(isNull(shipments.lastEventAt), lt(shipments.lastEventAt, sql`${p('at')}::timestamptz`)),
      ),
    ),
);

export interface ShipmentPosition {
  bookedAt: Date;
  id: string;
}

/**
 * Parcels not yet delivered whose expected event time plus the grace has passed, newest booking
 * first, keyset-paginated; one row more than asked.
 */
export async function overdueParcels(
  db: Db,
  opts: { graceHours: number; now: Date; limit: number; before?: ShipmentPosition },
) {
  const deadline = new Date(opts.now.getTime() - opts.graceHours * 3_600_000);
  const conditions = [
    inArray(shipments.status, ['booked', 'in_transit']),
    lt(shipments.expectedBy, deadline),
  ];
  if (opts.before) {
    const { bookedAt, id } = opts.before;
    conditions.push(
      or(lt(shipments.bookedAt, bookedAt), and(eq(shipments.bookedAt, bookedAt), lt(shipments.id, id)))!,
    );
  }
  return db
    .select()
    .from(shipments)
    .where(and(...conditions))
    .orderBy(desc(shipments.bookedAt), desc(shipments.id))
    .limit(opts.limit + 1);
}

export async function countOverdue(db: Db, graceHours: number, now: Date): Promise<number> {
  const deadline = new Date(now.getTime() - graceHours * 3_600_000);
  const [row] = await db
    .select({ n: sql<number>`count(*)`.mapWith(Number) })
    .from(shipments)
    .where(and(inArray(shipments.status, ['booked', 'in_transit']), lt(shipments.expectedBy, deadline)));
  return row?.n ?? 0;
}

/** Parcels waiting for a cancel confirmation, for the reconciler. */
export async function parcelsAwaitingCancel(db: Db, opts: { before: Date; limit: number; afterId?: string }) {
  return db
    .select({ id: shipments.id })
    .from(shipments)
    .where(
      and(
        eq(shipments.status, 'cancel_pending'),
        lt(shipments.updatedAt, opts.before),
        opts.afterId ? sql`${shipments.id} > ${opts.afterId}` : undefined,
      ),
    )
    .orderBy(asc(shipments.id))
    .limit(opts.limit);
}
