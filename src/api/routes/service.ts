import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../../context.js';
import type { Metrics } from '../../metrics.js';
import { sendProblem } from '../plugins/errors.js';
import { Health, problems, Ready } from '../responses.js';

const PROBE_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS).unref()),
  ]);
}

async function probe(check: () => Promise<unknown>): Promise<'up' | 'down'> {
  try {
    await withTimeout(check());
    return 'up';
  } catch {
    return 'down';
  }
}

/** Liveness, readiness and Prometheus metrics; no auth. */
export const serviceRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; metrics: Metrics }> = async (
  app,
  { ctx, metrics },
) => {
  app.get(
    '/healthz',
    { schema: { tags: ['service'], summary: 'The process is alive', response: { 200: Health } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['service'],
        summary: 'Redis and the database answer',
        response: { 200: Ready, ...problems(503) },
      },
    },
    async (_request, reply) => {
      const [redis, database] = await Promise.all([
        probe(() => ctx.coord.ping()),
        probe(() => ctx.database.ping()),
      ]);
      if (redis === 'up' && database === 'up') return { status: 'ready' as const, redis, database };
      reply.header('retry-after', '5');
      return sendProblem(reply, {
        status: 503,
        code: 'not_ready',
        detail: `Dependencies not answering: ${[redis === 'down' && 'redis', database === 'down' && 'database'].filter(Boolean).join(', ')}.`,
      });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['service'],
        summary: 'Prometheus metrics',
        hide: false,
        // Text, sent as a string (never passed through a serializer).
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
};
