import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import {
  createCarrier,
  listCarriers,
  patchCarrier,
  successRates,
  type CarrierRow,
} from '../../../db/carriers.js';
import { AppError, notFound } from '../../../errors.js';
import { announceCarrierChange } from '../../../queues/carrier-changes.js';
import { BreakerStateUnavailable, type BreakerView } from '../../../integrations/carriers/breaker-store.js';
import { decodeCursor, page } from '../../pagination.js';
import { ADMIN_ERRORS, BODY_ERRORS, CarrierList, CarrierView, problems } from '../../responses.js';
import { CarrierBody, CarrierPatch, IdParams, PaginationQuery } from '../../schemas.js';

const tags = ['operators'];

function carrierView(c: CarrierRow, breaker: BreakerView, successRate: number | null) {
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    baseUrl: c.baseUrl,
    regions: c.regions,
    rank: c.rank,
    rateLimitPerSecond: c.rateLimitPerSecond,
    transitHours: c.transitHours,
    enabled: c.enabled,
    breaker: { state: breaker.state, since: breaker.since?.toISOString() ?? null },
    successRate,
  };
}

/**
 * The shared breakers; with Redis away the list still answers, with what this process last saw
 * of each (closed / never changed for one it never saw), rather than failing for want of them.
 */
async function breakerStates(ctx: Context, ids: string[]): Promise<Record<string, BreakerView>> {
  try {
    return await ctx.breakers.states(ids);
  } catch (error) {
    if (!(error instanceof BreakerStateUnavailable)) throw error;
    ctx.log.warn(
      { err: error.cause ?? error },
      'carrier breakers unavailable: reporting the last states seen',
    );
    return error.lastKnown;
  }
}

async function withRates(ctx: Context, rows: CarrierRow[]) {
  const ids = rows.map((r) => r.id);
  const rates = await successRates(ctx.db, ids);
  const breakers = await breakerStates(ctx, ids);
  return (row: CarrierRow) => carrierView(row, breakers[row.id], rates.get(row.id) ?? null);
}

export const carrierRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.post(
    '/v1/admin/carriers',
    {
      schema: {
        tags,
        summary: 'Register a carrier (lower rank is tried first)',
        body: CarrierBody,
        response: { 201: CarrierView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 409) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const row = await createCarrier(ctx.db, {
        id: b.id,
        name: b.name,
        kind: b.kind,
        baseUrl: b.baseUrl.replace(/\/$/, ''),
        apiKey: b.apiKey ?? null,
        webhookSecret: b.webhookSecret,
        regions: b.regions as string[],
        rank: b.rank,
        rateLimitPerSecond: b.rateLimitPerSecond ?? null,
        transitHours: b.transitHours ?? null,
      });
      if (!row) throw new AppError(409, 'already_exists', `Carrier ${b.id} already exists.`);
      await announceCarrierChange(ctx, row.id);
      return reply.code(201).send((await withRates(ctx, [row]))(row));
    },
  );

  app.patch(
    '/v1/admin/carriers/:id',
    {
      schema: {
        tags,
        summary: 'Change a carrier, e.g. { "enabled": false }',
        params: IdParams,
        body: CarrierPatch,
        response: { 200: CarrierView, ...problems(...ADMIN_ERRORS, ...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const patch = { ...request.body, regions: request.body.regions as string[] | undefined };
      if (patch.baseUrl) patch.baseUrl = patch.baseUrl.replace(/\/$/, '');
      const row = await patchCarrier(ctx.db, request.params.id, patch);
      if (!row) throw notFound('carrier');
      await announceCarrierChange(ctx, row.id);
      return (await withRates(ctx, [row]))(row);
    },
  );

  app.get(
    '/v1/admin/carriers',
    {
      schema: {
        tags,
        summary: 'Carriers with breaker state and success rate',
        querystring: PaginationQuery,
        response: { 200: CarrierList, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const position = decodeCursor(cursor, ['id'] as const);
      const rows = await listCarriers(ctx.db, { limit, afterId: position?.id });
      return page(rows, limit, (c) => ({ id: c.id }), await withRates(ctx, rows.slice(0, limit)));
    },
  );
};
