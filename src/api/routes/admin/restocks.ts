import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { createRestock, listRestocks, receiveRestock, type RestockRow } from '../../../db/restocks.js';
import { AppError, notFound } from '../../../errors.js';
import { requestBackorderPass } from '../../../steps/backorders.js';
import { iso, isUuid } from '../../format.js';
import { decodeCursor, page } from '../../pagination.js';
import { ADMIN_ERRORS, BODY_ERRORS, problems, RestockList, RestockView } from '../../responses.js';
import { IdParams, RestockBody, RestocksQuery } from '../../schemas.js';

const tags = ['operators'];

const restockView = (row: RestockRow) => ({
  id: row.id,
  warehouseId: row.warehouseId,
  sku: row.sku,
  quantity: row.quantity,
  eta: row.eta.toISOString(),
  receivedAt: iso(row.receivedAt),
});

/** Inbound stock: counted as `inbound` until received, when it is added to on-hand. */
export const restockRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/inventory/restocks',
    {
      schema: {
        tags,
        summary: 'Record inbound stock (the SKU becomes known in the warehouse, at on-hand 0 if new)',
        body: RestockBody,
        response: { 201: RestockView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 422) },
      },
    },
    async (request, reply) => {
      const { warehouseId, sku, quantity, eta } = request.body;
      const row = await createRestock(ctx.db, { warehouseId, sku, quantity, eta: new Date(eta) });
      if (row === 'unknown_warehouse')
        throw new AppError(422, 'unknown_warehouse', `Warehouse ${warehouseId} does not exist.`);
      return reply.code(201).send(restockView(row));
    },
  );

  app.post(
    '/v1/admin/inventory/restocks/:id/receive',
    {
      schema: {
        tags,
        summary:
          'Receive a restock: its quantity is added to on-hand (a second receive → 409 already_received)',
        params: IdParams,
        response: { 200: RestockView, ...problems(...ADMIN_ERRORS, 404, 409) },
      },
    },
    async (request) => {
      if (!isUuid(request.params.id)) throw notFound('restock');
      const row = await receiveRestock(ctx.db, request.params.id, new Date());
      if (row === 'not_found') throw notFound('restock');
      if (row === 'already_received')
        throw new AppError(409, 'already_received', 'This restock was received already.');
      await requestBackorderPass(ctx, 'restock received');
      return restockView(row);
    },
  );

  app.get(
    '/v1/admin/inventory/restocks',
    {
      schema: {
        tags,
        summary: 'Restocks, earliest ETA first',
        querystring: RestocksQuery,
        response: { 200: RestockList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { warehouseId, sku, received, limit, cursor } = request.query;
      const position = decodeCursor(
        cursor,
        ['eta', 'id'] as const,
        (p) => isUuid(p.id) && !Number.isNaN(Date.parse(p.eta)),
      );
      const rows = await listRestocks(ctx.db, {
        warehouseId,
        sku,
        received: received === undefined ? undefined : received === 'true',
        limit,
        after: position && { eta: new Date(position.eta), id: position.id },
      });
      return page(rows, limit, (r) => ({ eta: r.eta.toISOString(), id: r.id }), restockView);
    },
  );
};
