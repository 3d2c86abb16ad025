import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../context.js';
import { findByTrackingToken, orderDetails } from '../../db/orders.js';
import { notFound } from '../../errors.js';
import { iso } from '../format.js';
import { pageLocale, prefersHtml } from '../negotiate.js';
import { trackingNotFoundPage, trackingPage } from '../pages/tracking.js';
import { problems, Tracking } from '../responses.js';
import { TokenParams } from '../schemas.js';

/** The page's headers: never cached (it changes as the order moves), nothing loaded from anywhere. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const Page = Type.String({
  description: 'A small self-contained HTML page (zh-CN or en by Accept-Language)',
});

/**
 * The customer's tracking page: status, promise and timeline, without personal data. JSON by
 * default; a client that prefers text/html (a browser following a message's link) gets the same
 * as a small page in zh-CN or en by Accept-Language, else the order's locale.
 */
export const trackRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/track/:token',
    {
      schema: {
        tags: ['customers'],
        summary: 'Track an order by the token in customer messages',
        description:
          'JSON by default (`*/*`, `application/json`); `Accept: text/html` preferred over JSON answers a small ' +
          'HTML page (no script, no external resource) in zh-CN or en chosen by `Accept-Language`, else the ' +
          "order's locale. An unknown token answers 404: problem+json, or a small HTML page for a browser.",
        params: TokenParams,
        response: {
          200: {
            description: 'The order’s status, promise, timeline and parcels',
            content: { 'application/json': { schema: Tracking }, 'text/html': { schema: Page } },
          },
          ...problems(404, 503),
        },
      },
    },
    async (request, reply) => {
      const html = prefersHtml(request.headers.accept);
      reply.header('vary', 'Accept, Accept-Language');
      const order = await findByTrackingToken(ctx.db, request.params.token);
      if (!order) {
        if (!html) throw notFound('tracking token');
        const locale = pageLocale(request.headers['accept-language'], null);
        return reply.code(404).headers(PAGE_HEADERS).send(trackingNotFoundPage(locale));
      }
      const details = await orderDetails(ctx.db, order);
      const view = {
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
      if (!html) return reply.code(200).type('application/json; charset=utf-8').send(view);
      const locale = pageLocale(request.headers['accept-language'], order.locale);
      return reply.code(200).headers(PAGE_HEADERS).send(trackingPage(view, locale));
    },
  );
};
