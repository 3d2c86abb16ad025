import type { FastifyInstance } from 'fastify';
import type { Context } from '../../../context.js';
import { overdueParcels } from '../../../db/shipments.js';
import { iso } from '../../format.js';
import { decodeCursor, page } from '../../pagination.js';
import { ShipmentsQuery } from '../../schemas.js';

export async function shipmentRoutes(app: FastifyInstance, { ctx }: { ctx: Context }) {
  app.get<{ Querystring: { overdue: 'true'; limit: number; cursor?: string } }>(
    '/v1/admin/shipments',
    {
      schema: {
        tags: ['operators'],
        summary: 'Parcels whose expected carrier event is overdue (overdue=true), newest booking first',
        querystring: ShipmentsQuery,
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
}
