import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { forecastOf } from '../../../steps/forecast.js';
import { ADMIN_ERRORS, Forecast, problems } from '../../responses.js';
import { ForecastQuery } from '../../schemas.js';

export const forecastRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/admin/forecast',
    {
      schema: {
        tags: ['operators'],
        summary:
          'Orders per minute expected over the next horizonMinutes (60–1440, default 60), and the worker replicas per queue',
        querystring: ForecastQuery,
        response: { 200: Forecast, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => {
      const report = await forecastOf(ctx, request.query.horizonMinutes);
      return {
        ...report,
        generatedAt: report.generatedAt.toISOString(),
        points: report.points.map((p) => ({ ...p, at: p.at.toISOString() })),
      };
    },
  );
};
