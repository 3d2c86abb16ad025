import type { RedisClient } from '../queues/connection.js';

/**
 * Sliding log in a Redis sorted set: a call is accepted only while fewer than `max` were
 * accepted in the last `window` ms, so no span of that length ever holds more than `max` (a fixed
 * window would let twice that through across its edge). Redis's clock is used, so every process
 * agrees. Returns {count, msUntilOldestLeaves}; count is max + 1 when refused. ARGV[4] = '1' records
 * the call even over `max` (it is let through, and still takes room from the calls after it).
 */
export const SLIDING_LOG = `
local key = KEYS[1]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local accepted = count < max or ARGV[4] == '1'
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

type WithSlidingLog = RedisClient & {
  surgelineSlidingLog(
    key: string,
    window: number,
    max: number,
    nonce: string,
    always?: string,
  ): Promise<[number, number]>;
};

let nonce = 0;

/**
 * Takes one slot of `key`'s log: 0 when accepted, else the ms until one frees. `always`: the
 * call is recorded (and answered 0) even when the log is full — let through, but still counted.
 */
export async function takeSlot(
  redis: RedisClient,
  key: string,
  windowMs: number,
  max: number,
  always = false,
): Promise<number> {
  const client = redis as WithSlidingLog;
  if (!client.surgelineSlidingLog)
    client.defineCommand('surgelineSlidingLog', { numberOfKeys: 1, lua: SLIDING_LOG });
  const [count, reset] = await client.surgelineSlidingLog(
    key,
    windowMs,
    max,
    `${process.pid}:${nonce++}:${Math.random()}`,
    always ? '1' : '0',
  );
  return always || Number(count) <= max ? 0 : Math.max(1, Number(reset));
}

/** The ms until `key`'s log has room for a call (0: room now), without taking it. */
const ROOM_IN = `
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
`;

type WithRoomIn = RedisClient & {
  surgelineRoomIn(key: string, window: number, max: number): Promise<number>;
};

/**
 * How long until `key`'s log would accept a call (0: now), leaving the slot to whoever takes it:
 * a pace for callers that take the slot themselves a moment later (workers/lane-gate.ts).
 */
export async function roomIn(
  redis: RedisClient,
  key: string,
  windowMs: number,
  max: number,
): Promise<number> {
  const client = redis as WithRoomIn;
  if (!client.surgelineRoomIn) client.defineCommand('surgelineRoomIn', { numberOfKeys: 1, lua: ROOM_IN });
  return Number(await client.surgelineRoomIn(key, windowMs, max));
}
