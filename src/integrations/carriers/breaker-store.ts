import type { RedisClient } from '../../queues/connection.js';
import type { Coordination } from '../../queues/coordination.js';
import {
  breakerSettings,
  bucketMs,
  type BreakerChange,
  type BreakerRecord,
  type BreakerSettings,
  type BreakerState,
} from '../../domain/breaker.js';
import type { Logger } from '../../logger.js';

export interface BreakerView {
  state: 'closed' | 'open' | 'half_open';
  since: Date | null;
}

export interface BreakerStore {
  /** Current state of each carrier (an open breaker whose cool-down passed reads half_open). */
  states(carrierIds: string[]): Promise<Record<string, BreakerView>>;
  /** Before a call: false when the breaker is open, or half_open with its probes in flight. */
  allow(carrierId: string): Promise<boolean>;
  /** After an allowed call that was not made after all: a half-open breaker's probe place is free again. */
  release(carrierId: string): Promise<void>;
  /** After a call that reached a verdict: 'success' (booked or a 422 — the carrier works), 'failure' (5xx, 429, timeout, refused connection, auth fault). */
  record(carrierId: string, outcome: 'success' | 'failure'): Promise<BreakerView>;
}

/**
 * states() could not reach Redis. `lastKnown` holds what this process last saw of each carrier
 * asked about (closed / never changed for one it never saw), for a caller that must still answer.
 */
export class BreakerStateUnavailable extends Error {
  constructor(
    readonly lastKnown: Record<string, BreakerView>,
    options?: { cause?: unknown },
  ) {
    super('carrier breaker state is unavailable (Redis unreachable)', options);
    this.name = 'BreakerStateUnavailable';
  }
}

/**
 * One carrier's breaker, read and changed atomically in Redis. It MIRRORS src/domain/breaker.ts
 * (advance, allowCall, recordOutcome: the spec) on the same JSON record, with Redis's clock so
 * every replica agrees; change one, change the other (tests/integration/breaker-store.test.ts
 * runs both on the same sequences). ARGV: op (peek | allow | release | success | failure), now ('' = Redis
 * TIME; tests pass explicit times), then the settings. peek never writes. Returns
 * { state, since ('' = never changed), allowed (1/0), from1, to1, from2, to2 … }.
 */
export const BREAKER_LUA = `
local op = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local threshold, rate, minCalls = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bucketMs, buckets, coolDown = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local maxProbes, successes, lease, ttl = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local raw = redis.call('GET', KEYS[1])
local r = raw and cjson.decode(raw) or {}
r.state = r.state or 'closed'
r.streak, r.window, r.probes, r.okProbes = r.streak or 0, r.window or {}, r.probes or 0, r.okProbes or 0
local changes, dirty, allowed = {}, false, 1
local function move(to, at)
  changes[#changes + 1] = r.state
  changes[#changes + 1] = to
  r = { state = to, since = at, streak = 0, window = {}, probes = 0, okProbes = 0 }
  dirty = true
end
-- advance
if r.state == 'open' and now >= (r.since or 0) + coolDown then move('half_open', (r.since or 0) + coolDown) end
if r.state == 'half_open' and r.probes > 0 and now >= (r.probeUntil or 0) then
  r.probes, r.probeUntil, dirty = 0, nil, true
end
if op == 'allow' then
  if r.state == 'open' then allowed = 0
  elseif r.state == 'half_open' then
    if r.probes >= maxProbes then allowed = 0
    else r.probes, r.probeUntil, dirty = r.probes + 1, now + lease, true end
  end
elseif op == 'release' then
  if r.state == 'half_open' and r.probes > 0 then
    r.probes, dirty = r.probes - 1, true
    if r.probes == 0 then r.probeUntil = nil end
  end
elseif (op == 'success' or op == 'failure') and r.state == 'half_open' then
  if op == 'failure' then move('open', now)
  else
    r.probes = math.max(0, r.probes - 1)
    if r.probes == 0 then r.probeUntil = nil end
    r.okProbes, dirty = r.okProbes + 1, true
    if r.okProbes >= successes then move('closed', now) end
  end
elseif (op == 'success' or op == 'failure') and r.state == 'closed' then
  local index = math.floor(now / bucketMs)
  local window, current, calls, failures = {}, nil, 0, 0
  for _, b in ipairs(r.window) do
    if b.i > index - buckets then
      window[#window + 1] = b
      if b.i == index then current = b end
    end
  end
  if not current then
    current = { i = index, n = 0, f = 0 }
    window[#window + 1] = current
  end
  current.n = current.n + 1
  if op == 'failure' then current.f, r.streak = current.f + 1, r.streak + 1 else r.streak = 0 end
  for _, b in ipairs(window) do calls, failures = calls + b.n, failures + b.f end
  r.window, dirty = window, true
  if r.streak >= threshold or (calls >= minCalls and failures >= rate * calls) then move('open', now) end
end
if dirty and op ~= 'peek' then redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ttl) end
local out = { r.state, r.since and string.format('%d', r.since) or '', allowed }
for _, c in ipairs(changes) do out[#out + 1] = c end
return out
`;

export type BreakerOp = 'peek' | 'allow' | 'release' | 'success' | 'failure';

export interface BreakerReply {
  state: BreakerState;
  since: number | null;
  allowed: boolean;
  changes: BreakerChange[];
}

type RedisWithBreaker = RedisClient & {
  surgelineBreaker(key: string, ...args: (string | number)[]): Promise<[string, string, number, ...string[]]>;
};

/** The key of a carrier's record: under the prefix, so it shares the prefix's cluster slot. */
export function breakerKey(prefix: string, carrierId: string): string {
  return `${prefix}:breaker:${carrierId}`;
}

/** The record as stored (for tests comparing it with the pure rules). */
export function parseRecord(raw: string | null): BreakerRecord | null {
  if (raw === null) return null;
  const r = JSON.parse(raw) as Partial<BreakerRecord> & { window?: unknown };
  return {
    ...r,
    state: r.state ?? 'closed',
    streak: r.streak ?? 0,
    window: Array.isArray(r.window) ? r.window : [], // cjson writes an empty array as {}
    probes: r.probes ?? 0,
    okProbes: r.okProbes ?? 0,
  } as BreakerRecord;
}

/** Runs the script once; `now` is for tests (the store always uses Redis's clock). */
export async function runBreaker(
  redis: RedisClient,
  key: string,
  op: BreakerOp,
  s: BreakerSettings,
  now?: number,
): Promise<BreakerReply> {
  const client = redis as RedisWithBreaker;
  if (!client.surgelineBreaker)
    client.defineCommand('surgelineBreaker', { numberOfKeys: 1, lua: BREAKER_LUA });
  const [state, since, allowed, ...flat] = await client.surgelineBreaker(
    key,
    op,
    now === undefined ? '' : String(now),
    s.failureThreshold,
    String(s.failureRate),
    s.minimumCalls,
    bucketMs(s),
    s.windowBuckets,
    s.coolDownMs,
    s.halfOpenProbes,
    s.halfOpenSuccesses,
    s.probeLeaseMs,
    s.idleTtlMs,
  );
  const changes: BreakerChange[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2)
    changes.push({ from: flat[i] as BreakerState, to: flat[i + 1] as BreakerState });
  return {
    state: state as BreakerState,
    since: since === '' ? null : Number(since),
    allowed: allowed === 1,
    changes,
  };
}

const MESSAGES: Record<BreakerState, string> = {
  open: 'carrier breaker opened',
  half_open: 'carrier breaker half-opened',
  closed: 'carrier breaker closed',
};

/**
 * Every carrier's breaker in the shared store (Redis, or PostgreSQL), shared by every process. Processes should run with the same
 * settings (BREAKER_*): each call applies the caller's. A state change is logged by the process
 * whose call made it, once; reads (states) change nothing, so an open breaker past its cool-down
 * reads half_open everywhere and the first allow/record afterwards logs "half-opened".
 */
export function createBreakerStore(
  coord: Coordination,
  prefix: string,
  settings: Partial<BreakerSettings> = {},
  log?: Logger,
): BreakerStore {
  const s = breakerSettings(settings);
  const lastSeen = new Map<string, BreakerView>();
  const seen = (carrierId: string, reply: BreakerReply): BreakerView => {
    const view = { state: reply.state, since: reply.since === null ? null : new Date(reply.since) };
    if (lastSeen.size >= 10_000 && !lastSeen.has(carrierId)) lastSeen.clear(); // bounded: carriers are few
    lastSeen.set(carrierId, view);
    return view;
  };
  const run = async (carrierId: string, op: BreakerOp) => {
    const reply = await coord.breaker(breakerKey(prefix, carrierId), op, s);
    for (const { from, to } of reply.changes) {
      if (to === 'open') log?.warn({ carrierId, from, to }, MESSAGES[to]);
      else log?.info({ carrierId, from, to }, MESSAGES[to]);
    }
    seen(carrierId, reply);
    return reply;
  };
  return {
    async states(carrierIds) {
      const ids = [...new Set(carrierIds)];
      try {
        const replies = await Promise.all(ids.map((id) => coord.breaker(breakerKey(prefix, id), 'peek', s)));
        return Object.fromEntries(ids.map((id, i) => [id, seen(id, replies[i])]));
      } catch (error) {
        const lastKnown = Object.fromEntries(
          ids.map((id) => [id, lastSeen.get(id) ?? { state: 'closed' as const, since: null }]),
        );
        throw new BreakerStateUnavailable(lastKnown, { cause: error });
      }
    },
    async allow(carrierId) {
      return (await run(carrierId, 'allow')).allowed;
    },
    async release(carrierId) {
      await run(carrierId, 'release');
    },
    async record(carrierId, outcome) {
      const reply = await run(carrierId, outcome);
      return { state: reply.state, since: reply.since === null ? null : new Date(reply.since) };
    },
  };
}
