import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { overdueParcels } from '../../../db/shipments.js';
import { iso } from '../../format.js';
import { decodeCursor, page } from '../../pagination.js';
import { ADMIN_ERRORS, OverdueShipmentList, problems } from '../../responses.js';
import { ShipmentsQuery } from '../../schemas.js';

export const shipmentRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/admin/shipments',
    {
      schema: {
        tags: ['operators'],
        summary: 'Parcels whose expected carrier event is overdue (overdue=true), newest booking first',
        querystring: ShipmentsQuery,
        response: { 200: OverdueShipmentList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const position = decodeCursor(
        cursor,
        ['bookedAt', 'id'] as const,
        (p) => !Number.isNaN(Date.parse(p.bookedAt)),
      );
      const rows = await overdueParcels(ctx.db, {
        graceHours: ctx.config.overdueGraceHours,
        now: new Date(),
        limit,
        before: position ? { bookedAt: new Date(position.bookedAt), id: position.id } : undefined,
      });
      return page(
        rows,
        limit,
        (s) => ({ bookedAt: (s.bookedAt as Date).toISOString(), id: s.id }),
        (s) => ({
          shipmentId: s.id,
          orderId: s.orderId,
          carrierId: s.carrierId,
          trackingNumber: s.trackingNumber,
          status: s.status,
          estimatedDeliveryAt: iso(s.estimatedDeliveryAt),
          lastEventAt: iso(s.lastEventAt),
        }),
      );
    },
  );
};
