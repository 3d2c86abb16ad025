import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Coordination } from '../../queues/coordination.js';
import { AppError } from '../../errors.js';
import { shopOf } from './auth.js';

const WINDOW_MS = 60_000;

/** The shop limit is the shared sliding log (see integrations/sliding-log.ts) over 60 s. */

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

function slidingLogStore(coord: Coordination, prefix: string) {
  return class SlidingLogStore {
    incr(key: string, callback: Callback, timeWindow: number, max: number) {
      coord.slidingLog(`${prefix}:ratelimit:${key}`, timeWindow, max).then(
        ({ count, resetMs }) => callback(null, { current: count, ttl: resetMs }),
        () =>
          callback(
            new AppError(503, 'unavailable', 'Rate limiting is unavailable; retry shortly.', undefined, {
              'retry-after': '5',
            }),
          ),
      );
    }
    child() {
      return new SlidingLogStore();
    }
  };
}

/** Each shop's `rateLimitPerMinute`, counted across every API replica. Runs after shop auth. */
export async function registerShopRateLimit(app: FastifyInstance, coord: Coordination, prefix: string) {
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: WINDOW_MS,
    max: async (request: FastifyRequest) => shopOf(request).rateLimitPerMinute,
    keyGenerator: (request: FastifyRequest) => shopOf(request).id,
    store: slidingLogStore(coord, prefix),
    enableDraftSpec: true,
    skipOnError: false,
    errorResponseBuilder: (_request, context) =>
      new AppError(
        429,
        'rate_limited',
        `Over the shop's limit of ${context.max} requests per minute; retry after ${context.after}.`,
      ),
  });
}
