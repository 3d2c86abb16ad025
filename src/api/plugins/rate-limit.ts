import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RedisClient } from '../../queues/connection.js';
import { AppError } from '../../errors.js';
import { SLIDING_LOG } from '../../integrations/sliding-log.js';
import { shopOf } from './auth.js';

const WINDOW_MS = 60_000;

/** The shop limit is the shared sliding log (see integrations/sliding-log.ts) over 60 s. */

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;
type RedisWithLimit = RedisClient & {
  surgelineSlidingLog(
    key: string,
    window: number,
    max: number,
    nonce: string,
    cb: (e: Error | null, r: [number, number]) => void,
  ): void;
};

function slidingLogStore(redis: RedisClient, prefix: string) {
  const client = redis as RedisWithLimit;
  if (!client.surgelineSlidingLog)
    client.defineCommand('surgelineSlidingLog', { numberOfKeys: 1, lua: SLIDING_LOG });
  let nonce = 0;
  return class SlidingLogStore {
    incr(key: string, callback: Callback, timeWindow: number, max: number) {
      client.surgelineSlidingLog(
        `${prefix}:ratelimit:${key}`,
        timeWindow,
        max,
        `${process.pid}:${nonce++}:${Math.random()}`,
        (error, result) => {
          if (error)
            return callback(
              new AppError(503, 'unavailable', 'Rate limiting is unavailable; retry shortly.', undefined, {
                'retry-after': '5',
              }),
            );
          callback(null, { current: Number(result[0]), ttl: Math.max(0, Number(result[1])) });
        },
      );
    }
    child() {
      return new SlidingLogStore();
    }
  };
}

/** Each shop's `rateLimitPerMinute`, counted across every API replica. Runs after shop auth. */
export async function registerShopRateLimit(app: FastifyInstance, redis: RedisClient, prefix: string) {
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: WINDOW_MS,
    max: async (request: FastifyRequest) => shopOf(request).rateLimitPerMinute,
    keyGenerator: (request: FastifyRequest) => shopOf(request).id,
    store: slidingLogStore(redis, prefix),
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
