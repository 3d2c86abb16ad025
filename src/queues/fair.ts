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
 * the lane empty and no tag was handed out in the last FAIR_RESET_GRACE_MS. The grace covers a job
 * tagged before the reset but added after it: its old, higher tag would otherwise let its own
 * shop's later jobs pass it. Jobs retried or delayed keep their tag, so they come back ahead.
 */
export const MAX_PRIORITY = 2_097_151;
/** A lane's tags are forgotten when no job joined it for this long. */
export const FAIR_TAGS_TTL_MS = 3_600_000;
/** The field of a lane's tags holding its frontier (no shop id starts with `~`). */
export const FRONTIER = '~frontier';
/** The field of a lane's tags holding when a tag was last handed out (ms, Redis's clock). */
export const TAGGED_AT = '~tagged';
/** An empty lane keeps its tags this long after its last tag (longer than tagging → add). */
export const FAIR_RESET_GRACE_MS = 2_000;

/** Redis's clock in ms, inside a script. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

export const FAIR_TAG = `
${NOW_MS}
local frontier = tonumber(redis.call('HGET', KEYS[1], '${FRONTIER}') or '0')
local tags = {}
for i = 1, #ARGV do
  local last = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local tag = math.max(last, frontier) + 1
  if tag > ${MAX_PRIORITY} then tag = ${MAX_PRIORITY} end
  redis.call('HSET', KEYS[1], ARGV[i], tag)
  tags[i] = tag
end
redis.call('HSET', KEYS[1], '${TAGGED_AT}', now)
redis.call('PEXPIRE', KEYS[1], ${FAIR_TAGS_TTL_MS})
return tags
`;

/**
 * KEYS: tags, the lane's prioritized set, its wait list. ARGV[1]: the taken job's tag, ARGV[2]: the
 * grace (ms) after the last tag during which an empty lane keeps its tags.
 */
export const FAIR_TAKE = `
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  ${NOW_MS}
  local tagged = tonumber(redis.call('HGET', KEYS[1], '${TAGGED_AT}') or '0')
  if now - tagged >= tonumber(ARGV[2]) then
    redis.call('DEL', KEYS[1])
    return 0
  end
end
local frontier = tonumber(redis.call('HGET', KEYS[1], '${FRONTIER}') or '0')
if tonumber(ARGV[1]) > frontier then redis.call('HSET', KEYS[1], '${FRONTIER}', ARGV[1]) end
return 1
`;

/** The hash of a lane's tags: each shop's last tag, and the frontier. */
export const fairTagsKey = (prefix: string, lane: string) => `${prefix}:${lane}:fair`;
