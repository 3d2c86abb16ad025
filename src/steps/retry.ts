import type { Context } from '../context.js';
import { findOrder, startRetry, type LoadedOrder } from '../db/orders.js';
import { AppError, notFound } from '../errors.js';
import { enqueueAfterCommit } from '../queues/enqueue.js';
import { afterMove } from './after-move.js';
import { promiseFor } from './promise.js';

/** Another retry won between our read and our update this many times: give up. */
const RACES = 3;

const notFailed = (order: LoadedOrder) =>
  new AppError(409, 'not_failed', `The order is ${order.status}; only a failed order can be retried.`);

/**
 * An operator re-drives a failed order (typically a dead letter, once its carriers are back): a
 * new attempt starts at `received` (db/orders.ts startRetry, the machine's one exception), with
 * a fresh promise from now — never earlier than the current one — and goes through allocation
 * again like a new order. Once committed, its allocation job and its `retried` / `received`
 * messages are enqueued; a failed enqueue is left to the reconciler.
 */
export async function retryOrder(ctx: Context, id: string): Promise<LoadedOrder> {
  let current = await findOrder(ctx.db, id);
  if (!current) throw notFound('order');
  for (let race = 0; race < RACES; race++) {
    if (current.status !== 'failed') throw notFailed(current);
    const read: LoadedOrder = current;
    const now = new Date();
    const fresh = await promiseFor(ctx, {
      now,
      priority: read.priority,
      region: read.region,
      restockEta: null,
    });
    const promisedBy = fresh > read.promisedBy ? fresh : read.promisedBy;
    const moved = await ctx.db.transaction((tx) =>
      startRetry(tx, read, ctx.config, {
        at: now,
        promisedBy,
        detail: `retried by an operator after ${read.failureReason ?? 'a failure'} (attempt ${read.attempt})`,
      }),
    );
    if (moved) {
      const { order } = moved;
      ctx.log.info({ orderId: order.id, attempt: order.attempt }, 'failed order retried by an operator');
      await enqueueAfterCommit(ctx, 'allocation', () =>
        ctx.queues.add('allocation', { orderId: order.id, attempt: order.attempt }, order),
      );
      await afterMove(ctx, moved);
      return order;
    }
    const reread = await findOrder(ctx.db, id);
    if (!reread) throw notFound('order');
    current = reread;
  }
  throw notFailed(current);
}
