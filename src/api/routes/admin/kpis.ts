import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { scorecardOf } from '../../../steps/scorecard.js';
import { ADMIN_ERRORS, problems, Scorecard } from '../../responses.js';
import { KpisQuery } from '../../schemas.js';

export const kpiRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/v1/admin/kpis',
    {
      schema: {
        tags: ['operators'],
        summary: 'Scorecard of the orders closed in the window (1h, 24h or 7d; default 24h), with breakdowns',
        querystring: KpisQuery,
        response: { 200: Scorecard, ...problems(...ADMIN_ERRORS, 400) },
      },
    },
    async (request) => scorecardOf(ctx, request.query.window),
  );
};
