import type { Context } from '../context.js';
import { addFeedback, type FeedbackRow, type OrderRow } from '../db/orders.js';
import { AppError } from '../errors.js';

/** The customer's score, once the order is delivered, once per order. */
export async function leaveFeedback(
  ctx: Context,
  order: OrderRow,
  body: { score: number; comment?: string },
): Promise<FeedbackRow> {
  if (order.status !== 'delivered')
    throw new AppError(409, 'not_delivered', 'Feedback is taken once the order is delivered.');
  const row = await addFeedback(ctx.db, {
    orderId: order.id,
    score: body.score,
    comment: body.comment ?? null,
  });
  if (!row) throw new AppError(409, 'feedback_exists', 'This order already has feedback.');
  return row;
}
