import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError } from '../../errors.js';
import { shopOf } from './auth.js';

const WINDOW_MS = 60_000;

/**
 * Sliding log in a Redis sorted set: a request is accepted only while fewer than `max` were
 * accepted in the last 60 s, so no 60 s span ever holds more than `max` (a fixed window would
 * let twice that through across its edge). Redis's clock is used, so every API replica agrees.
 */
const SLIDING_LOG = `
local key = KEYS[1]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local accepted = count < max
if accepted then
  redis.call('ZADD', key, now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', key, window)
  count = count + 1
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
if accepted then return {count, reset} end
return {max + 1, reset}
`;

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;
type RedisWithLimit = Redis & {
  surgelineSlidingLog(
    key: string,
    window: number,
    max: number,
    nonce: string,
    cb: (e: Error | null, r: [number, number]) => void,
  ): void;
};

function slidingLogStore(redis: Redis, prefix: string) {
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
export async function registerShopRateLimit(app: FastifyInstance, redis: Redis, prefix: string) {
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
