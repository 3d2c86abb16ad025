import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';
import { findByTrackingToken, orderDetails } from '../../db/orders.js';
import { notFound } from '../../errors.js';
import { iso } from '../format.js';
import { TokenParams } from '../schemas.js';

/** The customer's tracking page: status, promise and timeline, without personal data. */
export async function trackRoutes(app: FastifyInstance, { ctx }: { ctx: Context }) {
  app.get<{ Params: { token: string } }>(
    '/v1/track/:token',
    {
      schema: {
        tags: ['customers'],
        summary: 'Track an order by the token in customer messages',
        params: TokenParams,
      },
    },
    async (request) => {
      const order = await findByTrackingToken(ctx.db, request.params.token);
      if (!order) throw notFound('tracking token');
      const details = await orderDetails(ctx.db, order);
      return {
        status: order.status,
        promisedBy: iso(order.promisedBy),
        deliveredAt: iso(order.deliveredAt),
        events: details.events.map((e) => ({ status: e.status, at: iso(e.at) })),
        shipments: details.shipments.map((s) => ({
          carrierId: s.carrierId,
          trackingNumber: s.trackingNumber,
          status: s.status,
          estimatedDeliveryAt: iso(s.estimatedDeliveryAt),
        })),
      };
    },
  );
}
