import type { Context } from '../context.js';
import { findOrder, transition, type LoadedOrder } from '../db/orders.js';
import { CANCELLABLE } from '../domain/status.js';
import { AppError } from '../errors.js';
import { afterMove } from './after-move.js';

/** Another stage moved the order between our read and our update this many times: give up. */
const RACES = 3;

/**
 * A shop cancels before dispatch. The status machine's effects release the stock and mark any
 * parcel that is (or may be) booked `cancel_pending`, so the carrier is told even if this
 * process dies right after the commit.
 */
export async function cancelOrder(ctx: Context, order: LoadedOrder): Promise<LoadedOrder> {
  let current: LoadedOrder | undefined = order;
  for (let race = 0; current && race < RACES; race++) {
    if (!CANCELLABLE.has(current.status)) break;
    const read: LoadedOrder = current;
    const moved = await ctx.db.transaction((tx) =>
      transition(tx, read, { to: 'cancelled', detail: 'cancelled by the shop' }, ctx.config),
    );
    if (moved) {
      await afterMove(ctx, moved);
      return moved.order;
    }
    current = await findOrder(ctx.db, order.id);
  }
  throw new AppError(
    409,
    'not_cancellable',
    `The order is ${current?.status === 'cancelled' ? 'already cancelled' : 'past dispatch'} and can no longer be cancelled.`,
  );
}
