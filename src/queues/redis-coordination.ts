import { runBreaker } from '../integrations/carriers/breaker-store.js';
import { ROOM_IN, SLIDING_LOG } from '../integrations/sliding-log.js';
import { duplicateConnection, type RedisClient } from './connection.js';
import type { Coordination, CoordinationOptions, Subscription } from './coordination.js';
import { FAIR_RESET_GRACE_MS, FAIR_TAG, FAIR_TAKE, fairTagsKey } from './fair.js';

/** While KEYS[1] holds ARGV[1]: keep it ARGV[2] ms longer, or delete it when that is 0. */
const EXTEND_OR_RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then return redis.call('pexpire', KEYS[1], ARGV[2]) end
  return redis.call('del', KEYS[1])
end
return 0`;

type Scripted = RedisClient & {
  surgelineSlidingLog(
    k: string,
    w: number,
    m: number,
    nonce: string,
    always: string,
  ): Promise<[number, number]>;
  surgelineRoomIn(k: string, w: number, m: number): Promise<number>;
  surgelineFairTag(k: string, ...shops: string[]): Promise<number[]>;
  surgelineFairTake(
    tags: string,
    prioritized: string,
    wait: string,
    tag: number,
    graceMs: number,
  ): Promise<number>;
  surgelineExtendOrRelease(k: string, token: string, ms: string): Promise<number>;
};

function scripted(redis: RedisClient): Scripted {
  const client = redis as Scripted;
  if (!client.surgelineExtendOrRelease) {
    client.defineCommand('surgelineSlidingLog', { numberOfKeys: 1, lua: SLIDING_LOG });
    client.defineCommand('surgelineRoomIn', { numberOfKeys: 1, lua: ROOM_IN });
    client.defineCommand('surgelineFairTag', { numberOfKeys: 1, lua: FAIR_TAG });
    client.defineCommand('surgelineFairTake', { numberOfKeys: 3, lua: FAIR_TAKE });
    client.defineCommand('surgelineExtendOrRelease', { numberOfKeys: 1, lua: EXTEND_OR_RELEASE });
  }
  return client;
}

let nonce = 0;

/**
 * Coordination on Redis (the default): each step one command or one Lua script, on Redis's clock.
 * `redis` is the request path's connection (no offline queue: a call fails at once while Redis is
 * away); subscriptions get their own connection, which waits for Redis and resubscribes.
 */
export function redisCoordination(
  redis: RedisClient,
  prefix: string,
  { fairResetGraceMs = FAIR_RESET_GRACE_MS }: CoordinationOptions = {},
): Coordination {
  const client = scripted(redis);
  return {
    backend: 'redis',
    connected: () => redis.status === 'ready',
    async ping() {
      await redis.ping();
    },
    async slidingLog(key, windowMs, max, always = false) {
      const id = `${process.pid}:${nonce++}:${Math.random()}`;
      const [count, reset] = await client.surgelineSlidingLog(key, windowMs, max, id, always ? '1' : '0');
      return { count: Number(count), resetMs: Math.max(0, Number(reset)) };
    },
    async roomIn(key, windowMs, max) {
      return Number(await client.surgelineRoomIn(key, windowMs, max));
    },
    breaker: (key, op, settings, now) => runBreaker(redis, key, op, settings, now),
    async setIfAbsent(key, value, ttlMs) {
      return (await redis.set(key, value, 'PX', ttlMs, 'NX')) === 'OK';
    },
    async extendIfHeld(key, token, ttlMs) {
      await client.surgelineExtendOrRelease(key, token, String(Math.max(0, Math.round(ttlMs))));
    },
    get: (key) => redis.get(key),
    async set(key, value, ttlMs) {
      if (ttlMs === undefined) await redis.set(key, value);
      else await redis.set(key, value, 'PX', ttlMs);
    },
    take: (key) => redis.getdel(key),
    async del(key) {
      await redis.del(key);
    },
    async addMember(key, member) {
      await redis.sadd(key, member);
    },
    members: (key) => redis.smembers(key),
    async removeMember(key, member) {
      await redis.srem(key, member);
    },
    async publish(channel, message) {
      await redis.publish(channel, message);
    },
    subscribe(channel, handlers): Subscription {
      const subscriber = duplicateConnection(redis, { maxRetriesPerRequest: null, enableOfflineQueue: true });
      subscriber.on('error', () => undefined); // reconnects by itself
      subscriber.on('message', (_channel: string, message: string) => handlers.message(message));
      subscriber.on('ready', () => handlers.ready?.());
      void subscriber.subscribe(channel).catch(() => undefined);
      return { close: () => subscriber.disconnect() };
    },
    async fairTags(lane, shops) {
      if (shops.length === 0) return [];
      return (await client.surgelineFairTag(fairTagsKey(prefix, lane), ...shops)).map(Number);
    },
    async fairTake(lane, tag) {
      // The script itself sees whether the lane's BullMQ lists are empty.
      await client.surgelineFairTake(
        fairTagsKey(prefix, lane),
        `${prefix}:${lane}:prioritized`,
        `${prefix}:${lane}:wait`,
        tag,
        fairResetGraceMs,
      );
    },
    async close() {
      redis.disconnect();
    },
  };
}
