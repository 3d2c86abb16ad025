import type { Coordination } from '../queues/coordination.js';

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

/**
 * Takes one slot of `key`'s log: 0 when accepted, else the ms until one frees. `always`: the
 * call is recorded (and answered 0) even when the log is full — let through, but still counted.
 */
export async function takeSlot(
  coord: Coordination,
  key: string,
  windowMs: number,
  max: number,
  always = false,
): Promise<number> {
  const { count, resetMs } = await coord.slidingLog(key, windowMs, max, always);
  return always || count <= max ? 0 : Math.max(1, resetMs);
}

/** The ms until `key`'s log has room for a call (0: room now), without taking it. */
export const ROOM_IN = `
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
`;
