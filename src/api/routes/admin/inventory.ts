import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { createWarehouse, listInventory, setOnHand, type InventoryRow } from '../../../db/stock.js';
import { AppError } from '../../../errors.js';
import { decodeCursor, page } from '../../pagination.js';
import {
  ADMIN_ERRORS,
  BODY_ERRORS,
  InventoryList,
  InventoryRow as InventoryView,
  problems,
  WarehouseView,
} from '../../responses.js';
import { InventoryBody, InventoryQuery, WarehouseBody } from '../../schemas.js';

const tags = ['operators'];

function inventoryView(row: InventoryRow) {
  return {
    warehouseId: row.warehouseId,
    sku: row.sku,
    onHand: row.onHand,
    reserved: row.reserved,
    available: Math.max(0, row.onHand - row.reserved),
    // No restocks exist yet (they come with backorders): nothing is inbound.
    inbound: 0,
    inboundEta: null,
  };
}

export const inventoryRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/warehouses',
    {
      schema: {
        tags,
        summary: 'Create a warehouse',
        body: WarehouseBody,
        response: { 201: WarehouseView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 409) },
      },
    },
    async (request, reply) => {
      const { id, name, region, supplierId } = request.body;
      const row = await createWarehouse(ctx.db, {
        id: id ?? `wh-${randomBytes(6).toString('hex')}`,
        name,
        region,
        supplierId: supplierId ?? null,
      });
      if (!row) throw new AppError(409, 'already_exists', `Warehouse ${id} already exists.`);
      return reply
        .code(201)
        .send({ id: row.id, name: row.name, region: row.region, supplierId: row.supplierId });
    },
  );

  app.put(
    '/v1/admin/inventory',
    {
      schema: {
        tags,
        summary: 'Set on-hand stock of a SKU in a warehouse',
        body: InventoryBody,
        response: { 200: InventoryView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 409, 422) },
      },
    },
    async (request) => {
      const result = await setOnHand(ctx.db, request.body);
      if (result === 'unknown_warehouse') {
        throw new AppError(422, 'unknown_warehouse', `Warehouse ${request.body.warehouseId} does not exist.`);
      }
      if (result === 'below_reserved') {
        throw new AppError(
          409,
          'below_reserved',
          `On-hand stock can't go below what is reserved for orders.`,
        );
      }
      return inventoryView(result);
    },
  );

  app.get(
    '/v1/admin/inventory',
    {
      schema: {
        tags,
        summary: 'Stock levels',
        querystring: InventoryQuery,
        response: { 200: InventoryList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { sku, warehouseId, limit, cursor } = request.query;
      const after = decodeCursor(cursor, ['warehouseId', 'sku'] as const);
      const rows = await listInventory(ctx.db, { sku, warehouseId, limit, after });
      return page(rows, limit, (r) => ({ warehouseId: r.warehouseId, sku: r.sku }), inventoryView);
    },
  );
};
