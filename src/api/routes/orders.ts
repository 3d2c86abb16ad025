import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Context } from '../../context.js';
import {
  findShopOrder,
  listShopOrders,
  orderDetails,
  type LoadedOrder,
  type OrderRow,
} from '../../db/orders.js';
import { trackingUrl } from '../../domain/notify.js';
import { notFound } from '../../errors.js';
import { cancelOrder } from '../../steps/cancel.js';
import { leaveFeedback } from '../../steps/feedback.js';
import type { IntakeBatcher } from '../../steps/intake-batch.js';
import type { IntakeResult, NewOrder } from '../../steps/intake.js';
import { decodeCursor, page } from '../pagination.js';
import { problem, problemOf, validationErrors } from '../plugins/errors.js';
import { shopOf } from '../plugins/auth.js';
import { compileStrict } from '../plugins/validation.js';
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
import {
  BatchResult,
  BODY_ERRORS,
  FeedbackView,
  OrderAccepted,
  OrderList,
  OrderView,
  problems,
  SHOP_ERRORS,
} from '../responses.js';

export function orderLinks(ctx: Context, order: OrderRow) {
  return { self: `/v1/orders/${order.id}`, tracking: trackingUrl(ctx.config.publicUrl, order.trackingToken) };
}

function accepted(ctx: Context, order: OrderRow) {
  return {
    id: order.id,
    status: order.status,
    priority: order.priority,
    promisedBy: order.promisedBy.toISOString(),
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
    promisedBy: order.promisedBy.toISOString(),
    initialPromisedBy: order.initialPromisedBy.toISOString(),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
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
    events: details.events.map((e) => ({ status: e.status, at: e.at.toISOString(), detail: e.detail })),
  };
}

async function shopOrder(
  ctx: Context,
  request: FastifyRequest<{ Params: { id: string } }>,
): Promise<LoadedOrder> {
  const { id } = request.params;
  const order = isUuid(id) ? await findShopOrder(ctx.db, shopOf(request).id, id) : undefined;
  if (!order) throw notFound('order');
  return order;
}

/** One entry of a batch's answer: the single POST's status, and its id or its problem. */
function settledResult(
  request: FastifyRequest,
  index: number,
  settled: { ok: true; value: IntakeResult } | { ok: false; error: unknown },
) {
  if (settled.ok) return { status: settled.value.created ? 202 : 200, id: settled.value.order.id };
  const problem = problemOf(settled.error);
  if (problem.status >= 500) request.log.error({ err: settled.error, index }, 'batch order failed');
  return { status: problem.status, error: problem };
}

export const orderRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; intakeBatcher: IntakeBatcher }> = async (
  app,
  { ctx, intakeBatcher },
) => {
  // Each order of a batch is validated as the single POST's body is: strictly, no coercion.
  const validateBatchOrder = compileStrict(BatchOrder);

  app.post(
    '/v1/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place an order',
        headers: IdempotencyHeaders,
        body: OrderBody,
        response: {
          200: OrderAccepted,
          202: OrderAccepted,
          ...problems(...SHOP_ERRORS, ...BODY_ERRORS, 409, 422),
        },
      },
    },
    async (request, reply) => {
      // Shed (503) or over the intake ceiling (429): refused before the key or the order is written.
      const refused = await app.intakeGate.admit((request.body as NewOrder).priority ?? 'standard');
      if (refused) throw refused;
      // Group commit: answered once the batch this order joined has committed.
      const result = await intakeBatcher.submit(
        shopOf(request),
        request.headers['idempotency-key'],
        request.body as NewOrder,
      );
      return reply.code(result.created ? 202 : 200).send(accepted(ctx, result.order));
    },
  );

  app.post(
    '/v1/orders/batch',
    {
      schema: {
        tags: ['orders'],
        summary: 'Place up to 500 orders; one bad order never fails the others',
        body: BatchBody,
        response: { 200: BatchResult, ...problems(...SHOP_ERRORS, ...BODY_ERRORS) },
      },
    },
    async (request) => {
      const shop = shopOf(request);
      type Result = { status: number; id?: string; error?: ReturnType<typeof problemOf> };
      const results: Result[] = [];
      const taken: { index: number; key: string; order: NewOrder }[] = [];
      // Validation and admission in request order, before anything is written (as a single POST).
      for (const [index, entry] of request.body.orders.entries()) {
        if (!validateBatchOrder(entry)) {
          const errors = validationErrors('body', validateBatchOrder.errors ?? []);
          results[index] = {
            status: 400,
            error: problem({
              status: 400,
              code: 'validation_failed',
              detail: 'The order is not valid; see errors.',
              errors,
            }),
          };
          continue;
        }
        const { idempotencyKey, ...order } = entry as unknown as NewOrder & { idempotencyKey: string };
        try {
          const refused = await app.intakeGate.admit(order.priority ?? 'standard');
          if (refused) {
            results[index] = { status: refused.status, error: problemOf(refused) };
            continue;
          }
        } catch (error) {
          results[index] = settledResult(request, index, { ok: false, error });
          continue;
        }
        taken.push({ index, key: idempotencyKey, order });
      }
      // Every admitted order into the group-commit batcher at once (they share its batches with
      // other requests'). Orders of this request that share a key go in request order: a later
      // one waits for the earlier one to settle, so the first valid one makes the order.
      const previous = new Map<string, Promise<unknown>>();
      await Promise.all(
        taken.map(({ index, key, order }) => {
          const before = previous.get(key);
          const submit = () => intakeBatcher.submit(shop, key, order);
          const done = (before ? before.then(submit) : submit()).then(
            (value) => (results[index] = settledResult(request, index, { ok: true, value })),
            (error) => (results[index] = settledResult(request, index, { ok: false, error })),
          );
          previous.set(key, done);
          return done;
        }),
      );
      return { results };
    },
  );

  app.get(
    '/v1/orders',
    {
      schema: {
        tags: ['orders'],
        summary: "The shop's orders, newest first",
        querystring: ListOrdersQuery,
        response: { 200: OrderList, ...problems(...SHOP_ERRORS, 400) },
      },
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
      return page(
        rows,
        limit,
        (o) => ({ createdAt: o.createdAt.toISOString(), id: o.id }),
        (o) => ({
          id: o.id,
          externalId: o.externalId,
          status: o.status,
          priority: o.priority,
          promisedBy: o.promisedBy.toISOString(),
          createdAt: o.createdAt.toISOString(),
        }),
      );
    },
  );

  app.get(
    '/v1/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'One order with its parcels and full timeline',
        params: IdParams,
        response: { 200: OrderView, ...problems(...SHOP_ERRORS, 404) },
      },
    },
    async (request) => orderView(ctx, await shopOrder(ctx, request)),
  );

  app.post(
    '/v1/orders/:id/cancel',
    {
      schema: {
        tags: ['orders'],
        summary: 'Cancel before dispatch; reserved stock is returned',
        params: IdParams,
        response: { 200: OrderView, ...problems(...SHOP_ERRORS, ...BODY_ERRORS, 404, 409) },
      },
    },
    async (request) => orderView(ctx, await cancelOrder(ctx, await shopOrder(ctx, request))),
  );

  app.post(
    '/v1/orders/:id/feedback',
    {
      schema: {
        tags: ['orders'],
        summary: "The customer's score, once delivered",
        params: IdParams,
        body: FeedbackBody,
        response: { 201: FeedbackView, ...problems(...SHOP_ERRORS, ...BODY_ERRORS, 404, 409) },
      },
    },
    async (request, reply) => {
      const row = await leaveFeedback(ctx, await shopOrder(ctx, request), request.body);
      return reply.code(201).send({
        orderId: row.orderId,
        score: row.score,
        comment: row.comment,
        createdAt: row.createdAt.toISOString(),
      });
    },
  );
};
