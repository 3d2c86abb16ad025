import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Context } from '../../context.js';
import { createOrder, type NewOrder } from '../../db/intake.js';
import {
  findShopOrder,
  listShopOrders,
  orderDetails,
  releaseReservations,
  transition,
  type OrderRow,
} from '../../db/orders.js';
import { feedback } from '../../db/schema.js';
import type { Priority } from '../../domain/priority.js';
import { CANCELLABLE } from '../../domain/status.js';
import { AppError, notFound } from '../../errors.js';
import { enqueueAfterCommit, enqueueNotifications } from '../../queues/enqueue.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { problem, validationErrors } from '../plugins/errors.js';
import { shopOf } from '../plugins/auth.js';
import { makeAjv } from '../plugins/validation.js';
import {
  BatchBody,
  BatchOrder,
  FeedbackBody,
  IdempotencyHeaders,
  IdParams,
  ListOrdersQuery,
  OrderBody,
} from '../schemas.js';
import { isUuid, iso } from '../format.js';

export function orderLinks(ctx: Context, order: OrderRow) {
  return {
    self: `/v1/orders/${order.id}`,
    tracking: `${ctx.config.publicUrl}/v1/track/${order.trackingToken}`,
  };
}

function accepted(ctx: Context, order: OrderRow) {
  return {
    id: order.id,
    status: order.status,
    priority: order.priority,
    promisedBy: iso(order.promisedBy),
    links: orderLinks(ctx, order),
  };
}

async function orderView(ctx: Context, order: OrderRow) {
  const details = await orderDetails(ctx.db, order);
  return {
    id: order.id,
    externalId: order.externalId,
    status: order.status,
    priority: order.priority,
    promisedBy: iso(order.promisedBy),
    initialPromisedBy: iso(order.initialPromisedBy),
    createdAt: iso(order.createdAt),
    updatedAt: iso(order.updatedAt),
    deliveredAt: iso(order.deliveredAt),
    failureReason: order.failureReason,
    links: orderLinks(ctx, order),
    items: details.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
    allocations: details.allocations.map((a) => ({
      warehouseId: a.warehouseId,
      sku: a.sku,
      quantity: a.quantity,
    })),
    shipments: details.shipments.map((s) => ({
      id: s.id,
      carrierId: s.carrierId,
      trackingNumber: s.trackingNumber,
      status: s.status,
      estimatedDeliveryAt: iso(s.estimatedDeliveryAt),
    })),
    events: details.events.map((e) => ({ status: e.status, at: iso(e.at), detail: e.detail })),
  };
}

/** Commits the order, then enqueues its first stage: a failed enqueue is the reconciler's to redo. */
async function intake(ctx: Context, shopId: string, key: string, body: NewOrder) {
  const result = await createOrder(ctx.db, shopId, key, body, ctx.config.defaultTransitHours);
  if (result.created) {
    const { order } = result;
    const priority = order.priority as Priority;
    await enqueueAfterCommit(ctx, 'allocation', () => ctx.queues.allocate(order.id, order.attempt, priority));
    await enqueueNotifications(ctx, result.notificationIds, priority);
  }
  return result;
}

async function shopOrder(
  ctx: Context,
  request: FastifyRequest<{ Params: { id: string } }>,
): Promise<OrderRow> {
  const { id } = request.params;
  const order = isUuid(id) ? await findShopOrder(ctx.db, shopOf(request).id, id) : undefined;
  if (!order) throw notFound('order');
  return order;
}

export async function orderRoutes(app: FastifyInstance, { ctx }: { ctx: Context }) {
  // Each order of a batch is validated as the single POST's body is: strictly, no coercion.
  const validateBatchOrder = makeAjv({ coerceTypes: false }).compile(BatchOrder);

  app.post<{ Body: OrderBody; Headers: { 'idempotency-key': string } }>(
    '/v1/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place an order',
        headers: IdempotencyHeaders,
        body: OrderBody,
      },
    },
    async (request, reply) => {
      const result = await intake(
        ctx,
        shopOf(request).id,
        request.headers['idempotency-key'],
        request.body as NewOrder,
      );
      return reply.code(result.created ? 202 : 200).send(accepted(ctx, result.order));
    },
  );

  app.post<{ Body: { orders: Record<string, unknown>[] } }>(
    '/v1/orders/batch',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place up to 500 orders; one bad order never fails the others',
        body: BatchBody,
      },
    },
    async (request) => {
      const shopId = shopOf(request).id;
      const results = [];
      // In request order, one at a time: orders of a batch may share a key.
      for (const entry of request.body.orders) {
        if (!validateBatchOrder(entry)) {
          const errors = validationErrors('body', validateBatchOrder.errors ?? []);
          results.push({
            status: 400,
            error: problem({
              status: 400,
              code: 'validation_failed',
              detail: 'The order is not valid; see errors.',
              errors,
            }),
          });
          continue;
        }
        const { idempotencyKey, ...order } = entry as unknown as NewOrder & { idempotencyKey: string };
        try {
          const result = await intake(ctx, shopId, idempotencyKey, order);
          results.push({ status: result.created ? 202 : 200, id: result.order.id });
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          results.push({
            status: error.status,
            error: problem({
              status: error.status,
              code: error.code,
              detail: error.message,
              errors: error.errors,
            }),
          });
        }
      }
      return { results };
    },
  );

  app.get<{ Querystring: { status?: string; limit: number; cursor?: string } }>(
    '/v1/orders',
    {
      schema: { tags: ['orders'], summary: "The shop's orders, newest first", querystring: ListOrdersQuery },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const position = decodeCursor(
        cursor,
        ['createdAt', 'id'] as const,
        (p) => isUuid(p.id) && !Number.isNaN(Date.parse(p.createdAt)),
      );
      const rows = await listShopOrders(ctx.db, shopOf(request).id, {
        status,
        limit,
        cursor: position ? { createdAt: new Date(position.createdAt), id: position.id } : undefined,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map((o) => ({
          id: o.id,
          externalId: o.externalId,
          status: o.status,
          priority: o.priority,
          promisedBy: iso(o.promisedBy),
          createdAt: iso(o.createdAt),
        })),
        nextCursor:
          rows.length > limit && last
            ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id })
            : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      schema: { tags: ['orders'], summary: 'One order with its parcels and full timeline', params: IdParams },
    },
    async (request) => orderView(ctx, await shopOrder(ctx, request)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/orders/:id/cancel',
    {
      schema: {
        tags: ['orders'],
        summary: 'Cancel before dispatch; reserved stock is returned',
        params: IdParams,
      },
    },
    async (request) => {
      const order = await shopOrder(ctx, request);
      const cancelled = await ctx.db.transaction(async (tx) => {
        const moved = await transition(tx, {
          orderId: order.id,
          attempt: order.attempt,
          from: [...CANCELLABLE],
          to: 'cancelled',
          detail: 'cancelled by the shop',
        });
        if (moved) await releaseReservations(tx, order.id, order.attempt);
        return moved;
      });
      if (!cancelled) {
        throw new AppError(
          409,
          'not_cancellable',
          `The order is ${order.status === 'cancelled' ? 'already cancelled' : 'past dispatch'} and can no longer be cancelled.`,
        );
      }
      await enqueueNotifications(ctx, cancelled.notificationIds, order.priority as Priority);
      return orderView(ctx, cancelled.order);
    },
  );

  app.post<{ Params: { id: string }; Body: { score: number; comment?: string } }>(
    '/v1/orders/:id/feedback',
    {
      schema: {
        tags: ['orders'],
        summary: "The customer's score, once delivered",
        params: IdParams,
        body: FeedbackBody,
      },
    },
    async (request, reply) => {
      const order = await shopOrder(ctx, request);
      if (order.status !== 'delivered')
        throw new AppError(409, 'not_delivered', 'Feedback is taken once the order is delivered.');
      const [row] = await ctx.db
        .insert(feedback)
        .values({
          orderId: order.id,
          score: request.body.score,
          comment: request.body.comment ?? null,
          createdAt: new Date(),
        })
        .onConflictDoNothing()
        .returning();
      if (!row) throw new AppError(409, 'feedback_exists', 'This order already has feedback.');
      return reply.code(201).send({
        orderId: row.orderId,
        score: row.score,
        comment: row.comment,
        createdAt: iso(row.createdAt),
      });
    },
  );
}
