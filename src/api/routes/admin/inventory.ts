import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import {
  createWarehouse,
  listInventory,
  setOnHand,
  stockFigures,
  type InventoryRow,
  type StockFigures,
} from '../../../db/stock.js';
import { supplierExists } from '../../../db/suppliers.js';
import { coverHours, DEMAND_WINDOW_MS } from '../../../domain/stock-cover.js';
import { AppError } from '../../../errors.js';
import { requestBackorderPass } from '../../../steps/backorders.js';
import { checkStockAlerts } from '../../../steps/stock-alerts.js';
import { iso } from '../../format.js';
import { decodeCursor, page } from '../../pagination.js';
import {
  ADMIN_ERRORS,
  BODY_ERRORS,
  InventoryList,
  InventoryRow as InventoryView,
  problems,
  StockAlertList,
  WarehouseView,
} from '../../responses.js';
import { InventoryBody, InventoryQuery, WarehouseBody } from '../../schemas.js';

const tags = ['operators'];

function inventoryView(row: InventoryRow, figures: StockFigures) {
  const available = Math.max(0, row.onHand - row.reserved);
  return {
    warehouseId: row.warehouseId,
    sku: row.sku,
    onHand: row.onHand,
    reserved: row.reserved,
    available,
    inbound: figures.inbound,
    inboundEta: iso(figures.inboundEta),
    coverHours: coverHours(available, figures.unitsLastHour),
  };
}

/** Views of these rows, with their inbound and cover read for exactly these rows. */
async function inventoryViews(ctx: Context, rows: InventoryRow[]) {
  const figuresOf = await stockFigures(ctx.db, rows, new Date(Date.now() - DEMAND_WINDOW_MS));
  return (row: InventoryRow) => inventoryView(row, figuresOf(row));
}

export const inventoryRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/warehouses',
    {
      schema: {
        tags,
        summary: 'Create a warehouse',
        body: WarehouseBody,
        response: { 201: WarehouseView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 409, 422) },
      },
    },
    async (request, reply) => {
      const { id, name, region, supplierId } = request.body;
      // Suppliers are never deleted, so one that exists now still does when the row lands.
      if (supplierId !== undefined && !(await supplierExists(ctx.db, supplierId))) {
        throw new AppError(422, 'unknown_supplier', `Supplier ${supplierId} does not exist.`);
      }
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
      // Stock arrived: backorders may be filled from it now.
      if (result.onHand > result.previousOnHand) await requestBackorderPass(ctx, 'on-hand raised');
      return (await inventoryViews(ctx, [result]))(result);
    },
  );

  app.get(
    '/v1/admin/inventory',
    {
      schema: {
        tags,
        summary: 'Stock levels, with what is inbound and how long the stock lasts',
        querystring: InventoryQuery,
        response: { 200: InventoryList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { sku, warehouseId, limit, cursor } = request.query;
      const after = decodeCursor(cursor, ['warehouseId', 'sku'] as const);
      const rows = await listInventory(ctx.db, { sku, warehouseId, limit, after });
      const view = await inventoryViews(ctx, rows.slice(0, limit));
      return page(rows, limit, (r) => ({ warehouseId: r.warehouseId, sku: r.sku }), view);
    },
  );

  app.get(
    '/v1/admin/inventory/alerts',
    {
      schema: {
        tags,
        summary: 'Stock rows at risk of running out, oldest alert first (not paginated)',
        response: { 200: StockAlertList, ...problems(...ADMIN_ERRORS) },
      },
    },
    async () => {
      // Evaluated now, so the answer is exact rather than as of the watcher's last run.
      const { current } = await checkStockAlerts(ctx);
      return {
        items: current.map((a) => ({
          warehouseId: a.warehouseId,
          sku: a.sku,
          available: a.available,
          coverHours: a.coverHours,
          inboundEta: iso(a.inboundEta),
          since: a.since.toISOString(),
        })),
      };
    },
  );
};
