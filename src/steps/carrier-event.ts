import type { Context } from '../context.js';
import { findCarrier } from '../db/carriers.js';
import type { Db } from '../db/client.js';
import type { OutboxRef } from '../db/outbox.js';
import {
  findOrder,
  lockOrder,
  recordEvent,
  transition,
  type LoadedOrder,
  type Move,
  type Moved,
} from '../db/orders.js';
import { findByTracking, findParcel, parcelsOf, setParcelStatus } from '../db/shipments.js';
import { rollUp } from '../domain/parcels.js';
import { verifyCarrierSignature } from '../domain/signing.js';
import { AppError, notFound } from '../errors.js';
import { afterMove } from './after-move.js';

export interface CarrierEvent {
  trackingNumber: string;
  status: 'in_transit' | 'out_for_delivery' | 'delivered' | 'failed_attempt' | 'returned';
  at: Date;
}

/** Checked against a stand-in secret when the carrier is unknown, so the answer (401) and its timing say nothing of which ids exist. */
const UNKNOWN_CARRIER_SECRET = 'surgeline-unknown-carrier';

/** The signature is checked before anything is said about the carrier: an unknown id is a bad signature. */
export async function authenticateCarrierEvent(
  ctx: Context,
  carrierId: string,
  rawBody: string,
  signature: string | undefined,
): Promise<void> {
  // The process's carrier cache first; an id it lacks, or a signature its secret does not match
  // (a carrier created or changed a moment ago elsewhere), is read again from the table.
  const cached = ctx.carrierCache
    ? (await ctx.carrierCache.get()).find((c) => c.id === carrierId)
    : undefined;
  if (cached && verifyCarrierSignature(rawBody, cached.webhookSecret, signature)) return;
  const carrier = await findCarrier(ctx.db, carrierId);
  const valid = verifyCarrierSignature(rawBody, carrier?.webhookSecret ?? UNKNOWN_CARRIER_SECRET, signature);
  if (!valid || !carrier) {
    throw new AppError(
      401,
      'invalid_signature',
      'X-Signature does not match the body signed with the carrier secret.',
    );
  }
}

/**
 * A carrier's progress report on one parcel. The order row is locked first, so two parcels'
 * events apply one after the other; repeats and late or out-of-order events change nothing
 * (the parcel and the order only move forward), so they are answered 2xx too.
 */
export async function applyCarrierEvent(ctx: Context, carrierId: string, event: CarrierEvent): Promise<void> {
  const parcel = await findByTracking(ctx.db, carrierId, event.trackingNumber);
  if (!parcel) throw notFound('tracking number for this carrier');
  const current = await findOrder(ctx.db, parcel.orderId);
  if (!current || current.attempt !== parcel.attempt) return; // an earlier attempt's parcel
  // The parcel is booked but the order is not dispatched yet (our commit is on its way, or another
  // parcel of the order still waits for a carrier): its movement is kept on the parcel, and the
  // order catches up once dispatched (steps/dispatch.ts). Timeline-only events and returns need
  // the order itself: the carrier is asked to send those again shortly.
  const parcelOnly = event.status === 'in_transit' || event.status === 'delivered';
  if (current.status === 'allocated' && parcel.status === 'booked' && !parcelOnly) {
    throw new AppError(503, 'not_ready', 'The order is still being dispatched; retry shortly.', {
      headers: { 'retry-after': '1' },
    });
  }

  const told = await ctx.db.transaction(async (tx) => {
    const order = await lockOrder(tx, parcel.orderId);
    if (!order || order.attempt !== parcel.attempt) return null;
    const moves = new Moves(tx, ctx, order);
    const at = event.at;
    switch (event.status) {
      case 'in_transit':
        await setParcelStatus(tx, parcel.id, 'in_transit', ['booked'], { at });
        await moves.rollUp(at);
        break;
      case 'out_for_delivery':
      case 'failed_attempt':
        await setParcelStatus(tx, parcel.id, 'in_transit', ['booked'], { at });
        await moves.rollUp(at);
        if (moves.order.status === 'dispatched' || moves.order.status === 'in_transit') {
          await moves.record(event.status, at, `parcel ${parcel.id}`);
        }
        break;
      case 'delivered':
        await setParcelStatus(tx, parcel.id, 'delivered', ['booked', 'in_transit'], { at, deliveredAt: at });
        await moves.rollUp(at);
        break;
      case 'returned': {
        // The parcel as it stands under the order's lock (a `delivered` may just have landed).
        const now = (await findParcel(tx, parcel.id)) ?? parcel;
        if (order.status === 'delivered' || now.status === 'delivered') {
          throw new AppError(
            409,
            'already_delivered',
            'The parcel was already delivered; a return is not a delivery failure.',
          );
        }
        await setParcelStatus(tx, parcel.id, 'returned', ['booked', 'in_transit'], { at });
        if (order.status === 'dispatched' || order.status === 'in_transit') {
          await moves.move({
            to: 'failed',
            at,
            detail: `parcel ${parcel.id} returned`,
            set: { failureReason: 'returned' },
          });
        }
        break;
      }
    }
    return moves.result();
  });
  if (told) await afterMove(ctx, told);
}

/** The moves and timeline events of one carrier event, gathered for one afterMove. */
class Moves {
  private notifications: OutboxRef[] = [];
  private cancellations: string[] = [];

  constructor(
    private readonly tx: Db,
    private readonly ctx: Context,
    public order: LoadedOrder,
  ) {}

  async move(move: Move): Promise<void> {
    const moved = await transition(this.tx, this.order, move, this.ctx.config);
    if (!moved) return;
    this.order = moved.order;
    this.notifications.push(...moved.notifications);
    this.cancellations.push(...moved.cancellations);
  }

  /** The order's status from its parcels (domain/parcels.ts). */
  async rollUp(at: Date): Promise<void> {
    const next = rollUp(this.order.status, await parcelsOf(this.tx, this.order));
    if (!next || next.status === this.order.status) return;
    if (next.status === 'delivered') {
      if (this.order.status !== 'dispatched' && this.order.status !== 'in_transit') return;
      await this.move({ to: 'delivered', at, set: { deliveredAt: next.deliveredAt } });
    } else {
      await this.move({ to: 'in_transit', at });
    }
  }

  async record(status: 'out_for_delivery' | 'failed_attempt', at: Date, detail: string): Promise<void> {
    const written = await recordEvent(this.tx, this.order, status, at, detail, this.ctx.config);
    if (written) this.notifications.push(...written);
  }

  result(): Moved {
    return { order: this.order, notifications: this.notifications, cancellations: this.cancellations };
  }
}
