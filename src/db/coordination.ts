import { createHash } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { isUnavailable } from '../api/plugins/errors.js';
import {
  advance,
  allowCall,
  initialBreaker,
  recordOutcome,
  releaseProbe,
  type BreakerRecord,
  type BreakerSettings,
  type BreakerStep,
} from '../domain/breaker.js';
import { parseRecord, type BreakerOp, type BreakerReply } from '../integrations/carriers/breaker-store.js';
import type { Coordination, CoordinationOptions, Subscription } from '../queues/coordination.js';
import { FAIR_RESET_GRACE_MS, FAIR_TAGS_TTL_MS, MAX_PRIORITY, fairTagsKey } from '../queues/fair.js';
import { rowsOf } from './bulk.js';
import type { Database } from './client.js';

/** The tables holding coordination entries, each by `key` (for tests clearing a prefix). */
export const COORDINATION_TABLES = [
  'coordination_values',
  'coordination_log',
  'coordination_members',
  'coordination_fair_tags',
  'coordination_fair_lanes',
] as const;

/** The database's clock in epoch ms, as Redis TIME is read by the scripts. */
const NOW_MS = sql`floor(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** A value that has not expired. */
const LIVE = sql`(expires_at is null or expires_at > clock_timestamp())`;
/** `ms` from now on the database's clock. */
const expiryIn = (ms: number) => sql`clock_timestamp() + ${ms}::float8 * interval '1 millisecond'`;

/**
 * The PostgreSQL channel of an engine channel: channels are identifiers of at most 63 bytes, the
 * engine's are longer and hold `{`, `:`…, so each is named by its hash (distinct prefixes, distinct channels).
 */
export function channelName(channel: string): string {
  return `coordination_${createHash('sha256').update(channel).digest('hex').slice(0, 40)}`;
}

/** One breaker op on a record at `now`, by the pure rules (domain/breaker.ts). */
function breakerStep(
  record: BreakerRecord,
  op: BreakerOp,
  now: number,
  s: BreakerSettings,
): BreakerStep & { allowed: boolean } {
  if (op === 'peek') return { ...advance(record, now, s), allowed: true };
  if (op === 'allow') return allowCall(record, now, s);
  if (op === 'release') return { ...releaseProbe(record, now, s), allowed: true };
  return { ...recordOutcome(record, op, now, s), allowed: true };
}

/** The record's fields in a fixed order, so two records compare as text. */
function canonical(r: BreakerRecord): string {
  return JSON.stringify([r.state, r.since, r.streak, r.window, r.probes, r.probeUntil, r.okProbes]);
}

/**
 * Coordination in PostgreSQL (QUEUE_BACKEND=postgres), with the semantics of the Redis scripts
 * (queues/redis-coordination.ts) on the database's clock: each step one statement, or one
 * transaction, under a transaction-scoped advisory lock on its key where Redis runs a script.
 * The plpgsql functions are in drizzle/0008_coordination.sql (coordination_fair_take as 0009 redefines
 * it). Works on postgres.js and PGlite.
 */
export function postgresCoordination(
  database: Database,
  prefix: string,
  { fairResetGraceMs = FAIR_RESET_GRACE_MS }: CoordinationOptions = {},
): Coordination {
  const { db } = database;
  let up = true;
  const subscriptions = new Set<() => Promise<void>>();

  /** Runs a step, remembering whether the database answered. */
  async function track<T>(step: () => Promise<T>): Promise<T> {
    try {
      const result = await step();
      up = true;
      return result;
    } catch (error) {
      if (isUnavailable(error)) up = false;
      throw error;
    }
  }
  const rows = <T>(statement: SQL) => track(async () => rowsOf<T>(await db.execute(statement)));
  const run = async (statement: SQL) => {
    await rows(statement);
  };

  return {
    backend: 'postgres',
    connected: () => up,
    ping: () => run(sql`select 1`),

    async slidingLog(key, windowMs, max, always = false) {
      const [row] = await rows<{ total: number; reset_ms: number }>(
        sql`select * from coordination_slide(${key}, ${windowMs}::float8, ${max}::int, ${always}::boolean)`,
      );
      return { count: Number(row.total), resetMs: Math.max(0, Number(row.reset_ms)) };
    },

    async roomIn(key, windowMs, max) {
      // Reads only: entries past the window are left for the next slidingLog to delete.
      const [row] = await rows<{ ms: number }>(sql`
        with now as (select ${NOW_MS} as ms),
        live as (
          select count(*) as n, min(l.at) as oldest from coordination_log l, now
          where l.key = ${key} and l.at > now.ms - ${windowMs}::float8)
        select case when live.n < ${max}::int then 0
                    else greatest(1, coalesce(live.oldest + ${windowMs}::float8 - now.ms, ${windowMs}::float8)) end as ms
        from live, now`);
      return Number(row.ms);
    },

    breaker: (key, op, settings, now) =>
      track(() =>
        db.transaction(async (tx) => {
          await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`);
          const [row] = rowsOf<{ value: string | null; now: string | number }>(
            await tx.execute(sql`select
              (select value from coordination_values where key = ${key} and ${LIVE}) as value,
              ${NOW_MS} as now`),
          );
          const record = parseRecord(row.value) ?? initialBreaker();
          const step = breakerStep(record, op, now ?? Number(row.now), settings);
          // As the script: written only when changed (which refreshes its expiry), never by peek.
          if (op !== 'peek' && canonical(step.record) !== canonical(record)) {
            await tx.execute(sql`
              insert into coordination_values (key, value, expires_at)
              values (${key}, ${JSON.stringify(step.record)}, ${expiryIn(settings.idleTtlMs)})
              on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at`);
          }
          const reply: BreakerReply = {
            state: step.record.state,
            since: step.record.since ?? null,
            allowed: step.allowed,
            changes: step.changes,
          };
          return reply;
        }),
      ),

    async setIfAbsent(key, value, ttlMs) {
      const set = await rows(sql`
        insert into coordination_values as v (key, value, expires_at)
        values (${key}, ${value}, ${expiryIn(ttlMs)})
        on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at
          where v.expires_at <= clock_timestamp()
        returning 1`);
      return set.length === 1;
    },

    async extendIfHeld(key, token, ttlMs) {
      const ms = Math.max(0, Math.round(ttlMs));
      if (ms > 0)
        await run(sql`update coordination_values set expires_at = ${expiryIn(ms)}
          where key = ${key} and value = ${token} and ${LIVE}`);
      else
        await run(sql`delete from coordination_values where key = ${key} and value = ${token} and ${LIVE}`);
    },

    async get(key) {
      const [row] = await rows<{ value: string }>(
        sql`select value from coordination_values where key = ${key} and ${LIVE}`,
      );
      return row?.value ?? null;
    },

    async set(key, value, ttlMs) {
      await run(sql`
        insert into coordination_values (key, value, expires_at)
        values (${key}, ${value}, ${ttlMs === undefined ? null : expiryIn(ttlMs)})
        on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at`);
    },

    async take(key) {
      // An expired row is deleted too, but reads as absent.
      const [row] = await rows<{ value: string | null }>(sql`
        delete from coordination_values where key = ${key}
        returning case when ${LIVE} then value end as value`);
      return row?.value ?? null;
    },

    // As Redis DEL: whatever the key holds.
    del: (key) =>
      run(sql`
        with v as (delete from coordination_values where key = ${key}),
          l as (delete from coordination_log where key = ${key}),
          m as (delete from coordination_members where key = ${key}),
          t as (delete from coordination_fair_tags where key = ${key})
        delete from coordination_fair_lanes where key = ${key}`),

    addMember: (key, member) =>
      run(
        sql`insert into coordination_members (key, member) values (${key}, ${member}) on conflict do nothing`,
      ),

    async members(key) {
      const found = await rows<{ member: string }>(
        sql`select member from coordination_members where key = ${key}`,
      );
      return found.map((row) => row.member);
    },

    removeMember: (key, member) =>
      run(sql`delete from coordination_members where key = ${key} and member = ${member}`),

    publish: (channel, message) => track(() => database.notify(channelName(channel), message)),

    subscribe(channel, handlers): Subscription {
      let closed = false;
      let listening: { unlisten(): Promise<void> } | undefined;
      const started = (async () => {
        // The first listen may fail while the database is away: try again, as a Redis subscriber waits.
        while (!closed) {
          try {
            listening = await database.listen(channelName(channel), handlers.message, () => {
              if (!closed) handlers.ready?.();
            });
            return;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
          }
        }
      })();
      const stop = async () => {
        closed = true;
        subscriptions.delete(stop);
        await started;
        await listening?.unlisten().catch(() => undefined);
      };
      subscriptions.add(stop);
      return { close: () => void stop() };
    },

    async fairTags(lane, shops) {
      if (shops.length === 0) return [];
      const tags = await rows<{ tag: number }>(sql`
        select t.tag from unnest(coordination_fair_tag(${fairTagsKey(prefix, lane)}, ${JSON.stringify(shops)}::jsonb,
          ${MAX_PRIORITY}::int, ${FAIR_TAGS_TTL_MS}::float8)) with ordinality as t(tag, n)
        order by t.n`);
      return tags.map((row) => Number(row.tag));
    },

    async fairTake(lane, tag, laneIsEmpty) {
      const empty = await laneIsEmpty();
      await run(
        sql`select coordination_fair_take(${fairTagsKey(prefix, lane)}, ${tag}::int, ${empty}::boolean,
          ${FAIR_TAGS_TTL_MS}::float8, ${fairResetGraceMs}::float8)`,
      );
    },

    async close() {
      await Promise.all([...subscriptions].map((stop) => stop()));
    },
  };
}
