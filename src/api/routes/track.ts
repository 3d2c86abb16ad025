import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../context.js';
import { findByTrackingToken, orderDetails } from '../../db/orders.js';
import { notFound } from '../../errors.js';
import { iso } from '../format.js';
import { problems, Tracking } from '../responses.js';
import { TokenParams } from '../schemas.js';

/** The customer's tracking page: status, promise and timeline, without personal data. */
export const trackRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/track/:token',
    {
      schema: {
        tags: ['customers'],
        summary: 'Track an order by the token in customer messages',
        params: TokenParams,
        response: { 200: Tracking, ...problems(404, 503) },
      },
    },
    async (request) => {
      const order = await findByTrackingToken(ctx.db, request.params.token);
      if (!order) throw notFound('tracking token');
      const details = await orderDetails(ctx.db, order);
      return {
        status: order.status,
        promisedBy: order.promisedBy.toISOString(),
        deliveredAt: iso(order.deliveredAt),
        events: details.events.map((e) => ({ status: e.status, at: e.at.toISOString() })),
        shipments: details.shipments.map((s) => ({
          carrierId: s.carrierId,
          trackingNumber: s.trackingNumber,
          status: s.status,
          estimatedDeliveryAt: iso(s.estimatedDeliveryAt),
        })),
      };
    },
  );
};
