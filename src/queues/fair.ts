import type { RedisClient } from './connection.js';

/**
 * Shops served in turn within a lane (start-time fair queueing). Each job's BullMQ priority is a
 * tag: one more than the later of its shop's last tag and the lane's frontier (the highest tag a
 * worker has taken). A shop's jobs are numbered 1, 2, 3… from where the lane is now, so a pharmacy
 * posting ten orders behind a marketplace's fifty thousand gets tags next to the ones being
 * served, and the two alternate, instead of waiting for the whole backlog. A shop that was idle
 * starts at the frontier, not at 0, so it cannot save up turns.
 *
 * Tags grow while the lane is never empty; they are capped at BullMQ's highest priority, past
 * which jobs of the lane are taken in arrival order, and start again from 0 when a worker finds
 * the lane empty. Jobs retried or delayed keep their tag, so they come back ahead.
 */
export const MAX_PRIORITY = 2_097_151;
/** A lane's tags are forgotten when no job joined it for this long. */
const TAGS_TTL_MS = 3_600_000;
const FRONTIER = '~frontier';

const TAG = `
local frontier = tonumber(redis.call('HGET', KEYS[1], '${FRONTIER}') or '0')
local tags = {}
for i = 1, #ARGV do
  local last = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local tag = math.max(last, frontier) + 1
  if tag > ${MAX_PRIORITY} then tag = ${MAX_PRIORITY} end
  redis.call('HSET', KEYS[1], ARGV[i], tag)
  tags[i] = tag
end
redis.call('PEXPIRE', KEYS[1], ${TAGS_TTL_MS})
return tags
`;

/** KEYS: tags, the lane's prioritized set, its wait list. ARGV[1]: the taken job's tag. */
const TAKE = `
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local frontier = tonumber(redis.call('HGET', KEYS[1], '${FRONTIER}') or '0')
if tonumber(ARGV[1]) > frontier then redis.call('HSET', KEYS[1], '${FRONTIER}', ARGV[1]) end
return 1
`;

type WithFair = RedisClient & {
  surgelineFairTag(key: string, ...shops: string[]): Promise<number[]>;
  surgelineFairTake(tags: string, prioritized: string, wait: string, tag: number): Promise<number>;
};

function withFair(redis: RedisClient): WithFair {
  const client = redis as WithFair;
  if (!client.surgelineFairTag) {
    client.defineCommand('surgelineFairTag', { numberOfKeys: 1, lua: TAG });
    client.defineCommand('surgelineFairTake', { numberOfKeys: 3, lua: TAKE });
  }
  return client;
}

const tagsKey = (prefix: string, lane: string) => `${prefix}:${lane}:fair`;

/** The tags (BullMQ priorities) of jobs joining `lane` for these shops, in order, in one round trip. */
export async function fairTags(
  redis: RedisClient,
  prefix: string,
  lane: string,
  shops: string[],
): Promise<number[]> {
  if (shops.length === 0) return [];
  return withFair(redis).surgelineFairTag(tagsKey(prefix, lane), ...shops);
}

/** A worker took a job of `lane` with this tag: the frontier moves up to it. */
export async function fairTake(redis: RedisClient, prefix: string, lane: string, tag: number): Promise<void> {
  await withFair(redis).surgelineFairTake(
    tagsKey(prefix, lane),
    `${prefix}:${lane}:prioritized`,
    `${prefix}:${lane}:wait`,
    tag,
  );
}
