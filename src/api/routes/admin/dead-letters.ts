import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { deadLetterDetails, listDeadLetters, type DeadLetterAttempt } from '../../../db/dead-letters.js';
import { notFound } from '../../../errors.js';
import { retryOrder } from '../../../steps/retry.js';
import { isUuid } from '../../format.js';
import { decodeCursor, page } from '../../pagination.js';
import { ADMIN_ERRORS, BODY_ERRORS, problems } from '../../responses.js';
import { DeadLetterList, IdParams, PaginationQuery, RetryAccepted } from '../../schemas.js';

/** A call still `pending` is one whose worker died mid-call: for an operator, it timed out. */
function shownOutcome(outcome: DeadLetterAttempt['outcome']) {
  return outcome === 'pending' ? 'timeout' : outcome;
}

/** The dead-letter view and the retry that takes an order off it. */
export const deadLetterRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/admin/dead-letters',
    {
      schema: {
        tags: ['operators'],
        summary:
          'Orders failed carrier_failed or no_carrier, newest failure first, each with the booking calls of its current attempt',
        querystring: PaginationQuery,
        response: { 200: DeadLetterList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const position = decodeCursor(
        cursor,
        ['failedAt', 'id'] as const,
        (p) => !Number.isNaN(Date.parse(p.failedAt)) && isUuid(p.id),
      );
      const rows = await listDeadLetters(ctx.db, {
        limit,
        before: position ? { updatedAt: new Date(position.failedAt), id: position.id } : undefined,
      });
      const { failedAt, attempts } = await deadLetterDetails(ctx.db, rows.slice(0, limit));
      return page(
        rows,
        limit,
        (row) => ({ failedAt: row.updatedAt.toISOString(), id: row.id }),
        (row) => ({
          orderId: row.id,
          shopId: row.shopId,
          failureReason: row.failureReason,
          failedAt: (failedAt.get(row.id) ?? row.updatedAt).toISOString(),
          attempts: (attempts.get(row.id) ?? []).map((a) => ({
            carrierId: a.carrierId,
            at: a.at.toISOString(),
            outcome: shownOutcome(a.outcome),
            detail: a.detail,
          })),
        }),
      );
    },
  );

  app.post(
    '/v1/admin/orders/:id/retry',
    {
      schema: {
        tags: ['operators'],
        summary:
          'Retry a failed order: 202 { id, status: "received", attempt } — a new attempt allocates again and leaves the dead letters; 409 not_failed when the order is not failed',
        params: IdParams,
        response: { 202: RetryAccepted, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 404, 409) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!isUuid(id)) throw notFound('order');
      const order = await retryOrder(ctx, id);
      return reply.code(202).send({ id: order.id, status: 'received', attempt: order.attempt });
    },
  );
};
