import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';
import type { Metrics } from '../../metrics.js';
import { sendProblem } from '../plugins/errors.js';

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
export async function serviceRoutes(
  app: FastifyInstance,
  { ctx, metrics }: { ctx: Context; metrics: Metrics },
) {
  app.get('/healthz', { schema: { tags: ['service'], summary: 'The process is alive' } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['service'], summary: 'Redis and the database answer' } },
    async (_request, reply) => {
      const [redis, database] = await Promise.all([
        probe(() => ctx.redis.ping()),
        probe(() => ctx.database.ping()),
      ]);
      if (redis === 'up' && database === 'up') return { status: 'ready', redis, database };
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
    { schema: { tags: ['service'], summary: 'Prometheus metrics', hide: false } },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
}
