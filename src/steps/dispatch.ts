import type { Context } from '../context.js';
import { allCarriers, successRates, type CarrierRow } from '../db/carriers.js';
import { findOrder, transition, type LoadedOrder } from '../db/orders.js';
import {
  attemptsOf,
  bookingFailed,
  bookingSucceeded,
  parcelsOf,
  startBooking,
  type ShipmentRow,
} from '../db/shipments.js';
import { reservationsOf } from '../db/stock.js';
import { DEFAULT_BUDGET, nextBookingStep, type CarrierCandidate } from '../domain/carrier-choice.js';
import { expectedEventBy } from '../domain/parcels.js';
import type { FailureReason } from '../domain/status.js';
import type { BookingOutcome } from '../integrations/carriers/types.js';
import { enqueueAfterCommit } from '../queues/enqueue.js';
import type { OrderJob } from '../queues/topology.js';
import { afterMove } from './after-move.js';
import { cancelAtCarriers } from './cancel-booking.js';

export type DispatchResult =
  | { kind: 'dispatched' | 'skipped' | 'no_carrier' | 'carrier_failed' }
  /** Nothing to do before `delayMs`: the runner delays the job (not an attempt). */
  | { kind: 'wait'; delayMs: number };

type ParcelResult = { kind: 'booked' | 'cancelled' } | { kind: 'wait'; delayMs: number } | { kind: 'give_up'; reason: FailureReason };

/** How long to wait before asking a carrier again to confirm a cancel we need before failing over. */
const CANCEL_RETRY_MS = 2_000;

/**
 * Dispatch: book every parcel of an allocated order — the carrier for each call chosen by
 * domain/carrier-choice.ts from the parcel's attempt history — then move the order to
 * `dispatched` (which takes its stock off the shelf). A parcel no carrier can take fails the
 * order `no_carrier` / `carrier_failed`; the status machine's effects release the stock and
 * cancel the parcels already booked.
 */
export async function dispatch(ctx: Context, job: OrderJob): Promise<DispatchResult> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt || order.status !== 'allocated') return { kind: 'skipped' };

  const carriers = await allCarriers(ctx.db);
  const rates = await successRates(
    ctx.db,
    carriers.map((c) => c.id),
  );
  const candidates = carriers.map((c) => ({ ...c, successRate: rates.get(c.id) ?? null }));
  const reserved = await reservationsOf(ctx.db, order);

  for (const parcel of await parcelsOf(ctx.db, order, ['pending', 'booking'])) {
    const lines = reserved.filter((r) => r.warehouseId === parcel.warehouseId && r.state === 'reserved');
    const result = await bookParcel(ctx, order, parcel, candidates, lines);
    if (result.kind === 'wait') return result;
    if (result.kind === 'cancelled') return { kind: 'skipped' };
    if (result.kind === 'give_up') return fail(ctx, order, result.reason);
  }

  const moved = await ctx.db.transaction((tx) =>
    transition(tx, order, { to: 'dispatched', detail: 'every parcel booked' }, ctx.config),
  );
  // Null: cancelled or failed while booking; that move's effects cancel the bookings.
  if (!moved) return { kind: 'skipped' };
  await afterMove(ctx, moved);
  return { kind: 'dispatched' };
}

async function bookParcel(
  ctx: Context,
  order: LoadedOrder,
  parcel: ShipmentRow,
  candidates: (CarrierRow & CarrierCandidate)[],
  lines: { sku: string; quantity: number }[],
): Promise<ParcelResult> {
  const budget = { ...DEFAULT_BUDGET, maxAttempts: ctx.config.dispatchAttempts };
  for (;;) {
    const decision = nextBookingStep({
      candidates,
      region: order.region,
      attempts: await attemptsOf(ctx.db, parcel.id),
      now: new Date(),
      budget,
    });
    if (decision.kind === 'retry_in') return { kind: 'wait', delayMs: decision.delayMs };
    if (decision.kind === 'give_up') return decision;
    if (decision.kind === 'cancel_first') {
      // An ambiguous answer (timeout) there: the parcel must not be live at two carriers.
      const cancelled = await cancelAtCarriers(ctx, parcel.id, decision.carrierId);
      if (cancelled === 'retry') return { kind: 'wait', delayMs: CANCEL_RETRY_MS };
      continue;
    }
    const carrier = candidates.find((c) => c.id === decision.carrierId) as CarrierRow;
    const attemptId = await startBooking(ctx.db, parcel, carrier.id);
    if (attemptId === null) return { kind: 'cancelled' };
    const outcome = await ctx.carriers.book(carrier, {
      reference: parcel.id,
      orderId: order.id,
      region: order.region,
      address: order.shippingAddress,
      items: lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
      contactless: order.contactless,
      priority: order.priority,
    });
    if (outcome.kind === 'booked') return recordBooked(ctx, order, parcel, carrier, attemptId, outcome);
    await bookingFailed(ctx.db, attemptId, parcel.id, callResult(outcome));
    ctx.log.warn(
      { orderId: order.id, shipmentId: parcel.id, carrierId: carrier.id, outcome: outcome.kind, httpStatus: outcome.httpStatus },
      outcome.kind === 'transient' && outcome.carrierFault === 'auth'
        ? 'carrier rejected our credentials (a carrier fault)'
        : 'booking call did not book',
    );
  }
}

function callResult(outcome: BookingOutcome) {
  if (outcome.kind === 'booked') return { outcome: outcome.kind, httpStatus: outcome.httpStatus, detail: outcome.trackingNumber };
  return {
    outcome: outcome.kind,
    httpStatus: outcome.httpStatus,
    detail: outcome.detail,
    retryAfterMs: outcome.kind === 'transient' ? outcome.retryAfterMs : undefined,
  };
}

async function recordBooked(
  ctx: Context,
  order: LoadedOrder,
  parcel: ShipmentRow,
  carrier: CarrierRow,
  attemptId: number,
  outcome: Extract<BookingOutcome, { kind: 'booked' }>,
): Promise<ParcelResult> {
  const eta = outcome.estimatedDeliveryAt ? new Date(outcome.estimatedDeliveryAt) : null;
  const estimatedDeliveryAt = eta && !Number.isNaN(eta.getTime()) ? eta : null;
  const booked = await bookingSucceeded(
    ctx.db,
    attemptId,
    parcel.id,
    {
      carrierId: carrier.id,
      trackingNumber: outcome.trackingNumber,
      estimatedDeliveryAt,
      expectedBy: expectedEventBy(new Date(), estimatedDeliveryAt, carrier.transitHours ?? ctx.config.defaultTransitHours),
    },
    callResult(outcome),
  );
  if (booked === 'booked') return { kind: 'booked' };
  // The order was cancelled or failed during the call: cancel the booking that just landed.
  await enqueueAfterCommit(ctx, 'cancellation', () =>
    ctx.queues.add('cancellation', { shipmentId: parcel.id }, order.priority, {
      jobId: `cancellation-${parcel.id}-${attemptId}`,
    }),
  );
  return { kind: 'cancelled' };
}

async function fail(ctx: Context, order: LoadedOrder, reason: FailureReason): Promise<DispatchResult> {
  const detail =
    reason === 'no_carrier' ? 'no eligible carrier can take a parcel' : 'every eligible carrier was tried and failed';
  const moved = await ctx.db.transaction((tx) =>
    transition(tx, order, { to: 'failed', detail, set: { failureReason: reason } }, ctx.config),
  );
  if (!moved) return { kind: 'skipped' };
  ctx.log.error({ orderId: order.id, failureReason: reason }, 'order failed at dispatch');
  await afterMove(ctx, moved);
  return { kind: reason === 'no_carrier' ? 'no_carrier' : 'carrier_failed' };
}
