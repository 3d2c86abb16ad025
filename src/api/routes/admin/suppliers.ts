import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import {
  createSupplier,
  listSuppliers,
  setSupplierAvailable,
  type SupplierRow,
} from '../../../db/suppliers.js';
import { AppError, notFound } from '../../../errors.js';
import { requestBackorderPass } from '../../../steps/backorders.js';
import { decodeCursor, page } from '../../pagination.js';
import { ADMIN_ERRORS, BODY_ERRORS, problems, SupplierList, SupplierView } from '../../responses.js';
import { IdParams, PaginationQuery, SupplierBody, SupplierPatch } from '../../schemas.js';

const tags = ['operators'];

const supplierView = (row: SupplierRow) => ({ id: row.id, name: row.name, available: row.available });

/** Suppliers: while one is unavailable, allocation counts its warehouses as empty. */
export const supplierRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/suppliers',
    {
      schema: {
        tags,
        summary: 'Register a supplier (available)',
        body: SupplierBody,
        response: { 201: SupplierView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 409) },
      },
    },
    async (request, reply) => {
      const row = await createSupplier(ctx.db, request.body);
      if (!row) throw new AppError(409, 'already_exists', `Supplier ${request.body.id} already exists.`);
      return reply.code(201).send(supplierView(row));
    },
  );

  app.patch(
    '/v1/admin/suppliers/:id',
    {
      schema: {
        tags,
        summary: 'Mark a supplier available or not (unavailable: its warehouses count as empty)',
        params: IdParams,
        body: SupplierPatch,
        response: { 200: SupplierView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const changed = await setSupplierAvailable(ctx.db, request.params.id, request.body.available);
      if (!changed) throw notFound('supplier');
      // Its warehouses' stock is back: backorders may be filled from it now.
      if (!changed.wasAvailable && changed.row.available) await requestBackorderPass(ctx, 'supplier back');
      return supplierView(changed.row);
    },
  );

  app.get(
    '/v1/admin/suppliers',
    {
      schema: {
        tags,
        summary: 'Suppliers by id',
        querystring: PaginationQuery,
        response: { 200: SupplierList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const position = decodeCursor(cursor, ['id'] as const);
      const rows = await listSuppliers(ctx.db, { limit, afterId: position?.id });
      return page(rows, limit, (s) => ({ id: s.id }), supplierView);
    },
  );
};
