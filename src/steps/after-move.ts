import type { Context } from '../context.js';
import type { Moved } from '../db/orders.js';
import { enqueueAfterCommit, enqueueNotifications } from '../queues/enqueue.js';

/**
 * What every status change enqueues once committed: its messages, and the cancellation of every
 * parcel the move marked `cancel_pending`. A failed enqueue is left to the reconciler.
 */
export async function afterMove(ctx: Context, moved: Moved, deadline?: number): Promise<void> {
  const { order } = moved;
  ctx.statusChanges?.inc({ status: order.status });
  await enqueueNotifications(ctx, moved.notifications, order.priority, deadline);
  if (moved.cancellations.length > 0) {
    await enqueueAfterCommit(
      ctx,
      'cancellation',
      () =>
        ctx.queues.addBulk(
          'cancellation',
          moved.cancellations.map((shipmentId) => ({ data: { shipmentId }, priority: order.priority })),
        ),
      deadline,
    );
  }
}
