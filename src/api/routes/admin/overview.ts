import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../../context.js';
import { AppError } from '../../../errors.js';
import type { QueueHistory } from '../../../steps/queue-history.js';
import { throughputOf } from '../../../steps/throughput.js';
import { ADMIN_ERRORS, problems, QueueDepthHistory, ThroughputHistory } from '../../responses.js';

const tags = ['operators'];
/** Neither takes a query: any field is one this API does not define (400). */
const NoQuery = Type.Object({}, { additionalProperties: false });

/**
 * The history the operations page charts, one endpoint per source so that each chart stands
 * while the other's dependency is away: throughput from the database, queue depths from Redis
 * (sampled into this process's memory).
 */
export const overviewRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; queueHistory: QueueHistory }> = async (
  app,
  { ctx, queueHistory },
) => {
  app.get(
    '/v1/admin/overview/throughput',
    {
      schema: {
        tags,
        summary: 'Orders received, delivered and failed per minute over the last 60 minutes',
        querystring: NoQuery,
        response: { 200: ThroughputHistory, ...problems(...ADMIN_ERRORS) },
      },
    },
    async () => ({
      minutes: (await throughputOf(ctx)).map((m) => ({ ...m, at: m.at.toISOString() })),
    }),
  );

  app.get(
    '/v1/admin/overview/queue-depths',
    {
      schema: {
        tags,
        summary:
          'Queue depths over the last hour, read every 15 s by the API process that answers (each process keeps its own)',
        querystring: NoQuery,
        response: { 200: QueueDepthHistory, ...problems(...ADMIN_ERRORS) },
      },
    },
    async () => {
      // The history is in memory, but without Redis there is no current reading: say so.
      if (!ctx.queues.backend.connected()) {
        throw new AppError(503, 'unavailable', 'Redis is not answering; retry shortly.', {
          headers: { 'retry-after': '5' },
        });
      }
      const samples = await queueHistory.samples();
      return {
        intervalSeconds: Math.round(queueHistory.intervalMs / 1000),
        samples: samples.map((s) => ({ at: s.at.toISOString(), depths: s.depths })),
      };
    },
  );
};
