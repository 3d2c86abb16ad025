import type { Context } from '../context.js';
import { allCarriers, successRates, type CarrierRow } from '../db/carriers.js';
import { writeDelayNotice } from '../db/notices.js';
import type { Db } from '../db/client.js';
import { findOrder, transition, type LoadedOrder, type Moved } from '../db/orders.js';
import {
  abandonBooking,
  attemptsOf,
  bookingFailed,
  bookingSucceeded,
  findParcel,
  parcelsOf,
  startBooking,
  type ShipmentRow,
} from '../db/shipments.js';
import { reservationsOf } from '../db/stock.js';
import {
  DEFAULT_BUDGET,
  nextBookingStep,
  servesRegion,
  type BreakerState,
  type CarrierCandidate,
} from '../domain/carrier-choice.js';
import { isLate } from '../domain/notify.js';
import { callInFlight, expectedEventBy, mayStillLand, rollUp } from '../domain/parcels.js';
import type { FailureReason } from '../domain/status.js';
import type { BookingOutcome } from '../integrations/carriers/types.js';
import { takeSlot } from '../integrations/sliding-log.js';
import { enqueueAfterCommit, enqueueNotifications } from '../queues/enqueue.js';
import {
  CARRIER_RATE_WINDOW_MS,
  carrierRateKey,
  type BookingJob,
  type OrderJob,
} from '../queues/topology.js';
import { afterMove } from './after-move.js';
import { cancelAtCarriers } from './cancel-booking.js';
import { holdIfLocked } from './lockdown.js';

/**
 * Dispatch, in two kinds of jobs. The order's `dispatch` job routes each parcel: carrier choice
 * (domain/carrier-choice.ts) over the parcel's attempt history picks the carrier, and a booking
 * job goes on that carrier's queue (`dispatch.{carrierId}`, whose worker carries the carrier's
 * rate limit across every replica), delayed by the backoff or Retry-After if one is due. A
 * booking job makes one call, records it, and routes the parcel again: the next call, a
 * failover, or — no carrier left — the order fails (`no_carrier` / `carrier_failed`; the status
 * machine's effects release the stock and cancel what was booked). The order is `dispatched`
 * once every parcel is booked.
 */
export type DispatchResult =
  | { kind: 'routed' | 'booked' | 'dispatched' | 'skipped' | 'held' | 'no_carrier' | 'carrier_failed' }
  /** Nothing to do before `delayMs`: the runner delays the job (not an attempt). */
  | { kind: 'wait'; delayMs: number };

/** How long to wait before asking a carrier again to confirm a cancel we need before failing over. */
const CANCEL_RETRY_MS = 2_000;
/** How long a call waits while a half-open breaker's probes decide. */
const PROBE_WAIT_MS = 1_000;

type Candidates = (CarrierRow & CarrierCandidate)[];

/**
 * How long a process uses its last reading of the carriers' success rates. The rate (of the last
 * 100 calls) only orders carriers of equal rank; reading it for every routing and booking call
 * was four index scans of 100 rows per parcel.
 */
const SUCCESS_RATES_MS = 1_000;
const ratesRead = new WeakMap<
  Context,
  { at: number; ids: string; rates: Promise<Map<string, number | null>> }
>();

function recentSuccessRates(ctx: Context, ids: string[]): Promise<Map<string, number | null>> {
  const key = ids.join(',');
  const last = ratesRead.get(ctx);
  if (last && last.ids === key && Date.now() - last.at < SUCCESS_RATES_MS) return last.rates;
  const rates = successRates(ctx.db, ids);
  ratesRead.set(ctx, { at: Date.now(), ids: key, rates });
  rates.catch(() => ratesRead.delete(ctx)); // a failed read is not kept
  return rates;
}

async function candidatesOf(ctx: Context): Promise<Candidates> {
  // The carriers from this process's cache (kept up to date by announced changes).
  const carriers = ctx.carrierCache ? await ctx.carrierCache.get() : await allCarriers(ctx.db);
  const rates = await recentSuccessRates(
    ctx,
    carriers.map((c) => c.id),
  );
  return carriers.map((c) => ({ ...c, successRate: rates.get(c.id) ?? null }));
}

/** The shared breakers (Redis); with Redis away, none is taken as open — the calls will tell. */
async function breakerStates(ctx: Context, carriers: Candidates): Promise<Record<string, BreakerState>> {
  try {
    const views = await ctx.breakers.states(carriers.map((c) => c.id));
    return Object.fromEntries(Object.entries(views).map(([id, view]) => [id, view.state]));
  } catch {
    return {};
  }
}

/** The order's dispatch job: routes every parcel that waits for a booking. */
export async function dispatch(ctx: Context, job: OrderJob): Promise<DispatchResult> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt || order.status !== 'allocated') return { kind: 'skipped' };
  // A locked region: held with its stock reserved, resumed straight to dispatch when lifted.
  if (await holdIfLocked(ctx, order)) return { kind: 'held' };
  const candidates = await candidatesOf(ctx);
  for (const parcel of await parcelsOf(ctx.db, order, ['pending', 'booking'])) {
    const result = await routeParcel(ctx, order, parcel, candidates);
    if (result.kind !== 'routed') return result;
  }
  return completeIfBooked(ctx, order);
}

/** A booking job: one call to one carrier for one parcel, then the parcel's next step. */
export async function bookCall(ctx: Context, job: BookingJob): Promise<DispatchResult> {
  const order = await findOrder(ctx.db, job.orderId);
  if (!order || order.attempt !== job.attempt || order.status !== 'allocated') return { kind: 'skipped' };
  const parcel = await findParcel(ctx.db, job.shipmentId);
  if (!parcel || (parcel.status !== 'pending' && parcel.status !== 'booking')) return { kind: 'skipped' };
  const attempts = await attemptsOf(ctx.db, parcel.id);
  const latest = attempts[attempts.length - 1];
  // This job's call is the next one, or it is this job's own call, cut off (its worker died).
  const resume =
    attempts.length === job.call && latest?.outcome === 'pending' && latest.carrierId === job.carrierId;
  if (attempts.length + 1 !== job.call && !resume) return { kind: 'skipped' };
  // A call left pending by a worker that died long ago (Redis lost its job, the parcel was routed
  // again): nothing is in flight any more, so the next call may take the parcel over.
  const stale =
    !resume &&
    parcel.status === 'booking' &&
    latest?.outcome === 'pending' &&
    !mayStillLand(latest.at, new Date(), ctx.config.carrierTimeoutMs);

  const candidates = await candidatesOf(ctx);
  const carrier = candidates.find((c) => c.id === job.carrierId);
  if (!carrier || !carrier.enabled || !servesRegion(carrier, order.region)) {
    return routeParcel(ctx, order, parcel, candidates); // changed since the job was queued
  }
  // An open breaker: skipped like the contract says. A half-open one lets a few probes through;
  // the other calls wait a moment for the verdict instead of failing over to nothing.
  if (!(await ctx.breakers.allow(carrier.id).catch(() => true))) {
    const state = (await breakerStates(ctx, [carrier]))[carrier.id];
    if (state === 'half_open') return { kind: 'wait', delayMs: PROBE_WAIT_MS };
    return routeParcel(ctx, order, parcel, candidates, carrier.id);
  }
  const lines = (await reservationsOf(ctx.db, order)).filter(
    (r) => r.warehouseId === parcel.warehouseId && r.state === 'reserved',
  );
  const attemptId = await startBooking(
    ctx.db,
    parcel,
    carrier.id,
    resume ? 'resume' : stale ? 'stale' : 'pending',
  );
  // No call follows from here on but the one below: a probe place the breaker gave is given back.
  const noCall = () => ctx.breakers.release(carrier.id).catch(() => undefined);
  if (attemptId === null) {
    await noCall();
    return { kind: 'skipped' }; // another call in flight, or cancelled meanwhile
  }
  // The carrier's cap: a shared sliding log (Redis, or PostgreSQL), its slot taken as the last thing before the call,
  // so no second holds more than rateLimitPerSecond calls across every replica. Its window is a
  // little over a second, for the jitter between taking a slot and the call landing.
  if (carrier.rateLimitPerSecond) {
    const waitMs = await takeSlot(
      ctx.coord,
      carrierRateKey(ctx.config.queuePrefix, carrier.id),
      CARRIER_RATE_WINDOW_MS,
      carrier.rateLimitPerSecond,
    );
    if (waitMs > 0) {
      await abandonBooking(ctx.db, attemptId, parcel.id); // no call was made: no attempt
      await noCall();
      return { kind: 'wait', delayMs: waitMs };
    }
  }
  const calledAt = new Date();
  const outcome: BookingOutcome = await ctx.carriers.book(carrier, {
    reference: parcel.id,
    orderId: order.id,
    region: order.region,
    address: order.shippingAddress,
    items: lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
    contactless: order.contactless,
    priority: order.priority,
  });
  // Booked or refused, the carrier works; 5xx, 429, timeouts and auth faults count against it.
  const verdict = outcome.kind === 'booked' || outcome.kind === 'refused' ? 'success' : 'failure';
  await ctx.breakers.record(carrier.id, verdict).catch(() => undefined);
  if (outcome.kind === 'booked') {
    const booked = await recordBooked(ctx, order, parcel, carrier, attemptId, outcome, calledAt);
    if (!booked) return { kind: 'skipped' };
    const completed = await completeIfBooked(ctx, order);
    return completed.kind === 'routed' ? { kind: 'booked' } : completed;
  }
  await bookingFailed(ctx.db, attemptId, parcel.id, callResult(outcome));
  ctx.log.warn(
    {
      orderId: order.id,
      shipmentId: parcel.id,
      carrierId: carrier.id,
      outcome: outcome.kind,
      httpStatus: outcome.httpStatus,
    },
    outcome.kind === 'transient' && outcome.carrierFault === 'auth'
      ? 'carrier rejected our credentials (a carrier fault)'
      : 'booking call did not book',
  );
  const next = await findParcel(ctx.db, parcel.id);
  if (!next || next.status !== 'pending') return { kind: 'skipped' };
  return routeParcel(ctx, order, next, candidates);
}

/**
 * The parcel's next step from its history: a booking job on the chosen carrier's queue (delayed
 * when a backoff is due), a cancel at a carrier given up after an ambiguous answer (before the
 * next is tried), or the order's failure.
 */
async function routeParcel(
  ctx: Context,
  order: LoadedOrder,
  parcel: ShipmentRow,
  candidates: Candidates,
  /** A carrier whose breaker just refused a call: skipped like an open one. */
  refusedBy?: string,
): Promise<DispatchResult> {
  const budget = { ...DEFAULT_BUDGET, maxAttempts: ctx.config.dispatchAttempts };
  for (;;) {
    const attempts = await attemptsOf(ctx.db, parcel.id);
    const latest = attempts[attempts.length - 1];
    if (callInFlight(latest, new Date(), ctx.config.carrierTimeoutMs)) return { kind: 'routed' }; // its booking job answers for it
    const decision = nextBookingStep({
      candidates,
      region: order.region,
      attempts,
      breakers: {
        ...(await breakerStates(ctx, candidates)),
        ...(refusedBy ? { [refusedBy]: 'open' as const } : {}),
      },
      now: new Date(),
      budget,
    });
    if (decision.kind === 'give_up') return fail(ctx, order, decision.reason);
    if (decision.kind === 'cancel_first') {
      // An ambiguous answer (timeout) there: the parcel must never be live at two carriers.
      const cancelled = await cancelAtCarriers(ctx, parcel.id, decision.carrierId);
      if (cancelled === 'retry') return { kind: 'wait', delayMs: CANCEL_RETRY_MS };
      continue;
    }
    const delayMs = decision.kind === 'retry_in' ? decision.delayMs : 0;
    const job = {
      orderId: order.id,
      attempt: order.attempt,
      shipmentId: parcel.id,
      carrierId: decision.carrierId,
      call: attempts.length + 1,
    };
    // Not bounded like enqueueAfterCommit: losing this job would leave the parcel unrouted until
    // the reconciler's next pass, so a Redis failure here fails the job and BullMQ retries it.
    await ctx.queues.book(job, order, delayMs);
    return { kind: 'routed' };
  }
}

/** Every parcel booked: the order is `dispatched` (taking its stock off the shelf). */
async function completeIfBooked(ctx: Context, order: LoadedOrder): Promise<DispatchResult> {
  const parcels = await parcelsOf(ctx.db, order);
  const live = parcels.filter((p) => p.status !== 'cancelled' && p.status !== 'cancel_pending');
  if (live.length === 0 || live.some((p) => p.status === 'pending' || p.status === 'booking'))
    return { kind: 'routed' };
  // Dispatched as of the call that booked the last parcel, not as of this commit: the carrier may
  // already have reported the parcel moving (its `at` taken as sent), and the timeline is by `at`.
  const at = new Date(Math.max(...live.map((p) => p.bookedAt?.getTime() ?? Date.now())));
  const moves = await ctx.db.transaction(async (tx) => {
    const dispatched = await transition(
      tx,
      order,
      { to: 'dispatched', at, detail: `${live.length} parcel(s) booked` },
      ctx.config,
    );
    if (!dispatched) return null;
    const caughtUp = await catchUpWithParcels(tx, ctx, dispatched.order);
    return caughtUp ? [dispatched, caughtUp] : [dispatched];
  });
  // Null: another booking job dispatched it, or it was cancelled meanwhile (whose effects cancel the bookings).
  if (!moves) return { kind: 'skipped' };
  for (const moved of moves) await afterMove(ctx, moved);
  return { kind: 'dispatched' };
}

/**
 * A carrier may report a parcel moving, or delivered, before the order's last parcel is booked
 * (its events are applied to the parcel meanwhile): once dispatched, the order catches up with
 * its parcels at once, as carrier-event's roll-up would have moved it.
 */
async function catchUpWithParcels(tx: Db, ctx: Context, order: LoadedOrder): Promise<Moved | null> {
  const parcels = await parcelsOf(tx, order);
  const next = rollUp(order.status, parcels);
  if (!next) return null;
  if (next.status === 'delivered') {
    return transition(
      tx,
      order,
      { to: 'delivered', at: next.deliveredAt, set: { deliveredAt: next.deliveredAt } },
      ctx.config,
    );
  }
  const moving = parcels.filter((p) => p.status === 'in_transit' || p.status === 'delivered');
  const at = new Date(Math.min(...moving.map((p) => p.lastEventAt?.getTime() ?? Date.now())));
  return transition(tx, order, { to: 'in_transit', at }, ctx.config);
}

function callResult(outcome: BookingOutcome) {
  if (outcome.kind === 'booked')
    return { outcome: outcome.kind, httpStatus: outcome.httpStatus, detail: outcome.trackingNumber };
  return {
    outcome: outcome.kind,
    httpStatus: outcome.httpStatus,
    detail: outcome.detail,
    retryAfterMs: outcome.kind === 'transient' ? outcome.retryAfterMs : undefined,
  };
}

/** Records a booking; false when the order was cancelled or failed during the call (the booking is cancelled then). */
async function recordBooked(
  ctx: Context,
  order: LoadedOrder,
  parcel: ShipmentRow,
  carrier: CarrierRow,
  attemptId: number,
  outcome: Extract<BookingOutcome, { kind: 'booked' }>,
  /** When the call that booked it was made: the carrier had the parcel from then on. */
  calledAt: Date,
): Promise<boolean> {
  const eta = outcome.estimatedDeliveryAt ? new Date(outcome.estimatedDeliveryAt) : null;
  const estimatedDeliveryAt = eta && !Number.isNaN(eta.getTime()) ? eta : null;
  const bookedAt = calledAt;
  let notices: Awaited<ReturnType<typeof writeDelayNotice>> = [];
  const booked = await bookingSucceeded(
    ctx.db,
    attemptId,
    parcel.id,
    {
      carrierId: carrier.id,
      trackingNumber: outcome.trackingNumber,
      estimatedDeliveryAt,
      bookedAt,
      expectedBy: expectedEventBy(
        bookedAt,
        estimatedDeliveryAt,
        carrier.transitHours ?? ctx.config.defaultTransitHours,
      ),
    },
    callResult(outcome),
    // A carrier estimate past the promise: the customer is told at once, in the same transaction (db/notices.ts).
    isLate(order.promisedBy, estimatedDeliveryAt)
      ? async (tx) => {
          notices = await writeDelayNotice(tx, parcel, estimatedDeliveryAt, ctx.config);
        }
      : undefined,
  );
  if (booked === 'booked') {
    await enqueueNotifications(ctx, notices, order.priority);
    return true;
  }
  await enqueueAfterCommit(ctx, 'cancellation', () =>
    ctx.queues.add('cancellation', { shipmentId: parcel.id }, order, {
      jobId: `cancellation-${parcel.id}-${attemptId}`,
    }),
  );
  return false;
}

async function fail(ctx: Context, order: LoadedOrder, reason: FailureReason): Promise<DispatchResult> {
  const detail =
    reason === 'no_carrier'
      ? 'no eligible carrier can take a parcel'
      : 'every eligible carrier was tried and failed';
  const current = (await findOrder(ctx.db, order.id)) ?? order;
  if (current.status !== 'allocated' || current.attempt !== order.attempt) return { kind: 'skipped' };
  const moved = await ctx.db.transaction((tx) =>
    transition(tx, current, { to: 'failed', detail, set: { failureReason: reason } }, ctx.config),
  );
  if (!moved) return { kind: 'skipped' };
  ctx.log.error({ orderId: order.id, failureReason: reason }, 'order failed at dispatch');
  await afterMove(ctx, moved);
  return { kind: reason === 'no_carrier' ? 'no_carrier' : 'carrier_failed' };
}
