import { Redis } from 'ioredis';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/bulk.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { channelName, postgresCoordination } from '../../src/db/coordination.js';
import { breakerSettings, initialBreaker, type BreakerRecord } from '../../src/domain/breaker.js';
import { breakerKey, parseRecord } from '../../src/integrations/carriers/breaker-store.js';
import type { Coordination, Subscription } from '../../src/queues/coordination.js';
import { FAIR_TAGS_TTL_MS, MAX_PRIORITY, fairTagsKey } from '../../src/queues/fair.js';
import { redisCoordination } from '../../src/queues/redis-coordination.js';
import {
  REDIS_URL,
  deleteRedisKeys,
  testDatabase,
  uniquePrefix,
  usesServer,
  waitFor,
  type TestDatabase,
} from '../helpers/harness.js';
import {
  BREAKER_VARIANTS,
  EVERY_BREAKER_TRANSITION,
  expectedStep,
  mulberry32,
  nextBreakerStep,
} from '../helpers/breaker-sequences.js';

const prefix = uniquePrefix();
const otherPrefix = uniquePrefix();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let n = 0;
/** A short fair-reset grace, so the tests can wait it out. */
const GRACE_MS = 300;
const options = { fairResetGraceMs: GRACE_MS };
const key = (what: string) => `${prefix}:${what}:${++n}`;

/** One implementation, as the tests drive it. */
interface Backend {
  coord: Coordination;
  /** Another process's coordination on its own connection (the same store). */
  other: Coordination;
  /** The same store under another prefix. */
  otherPrefix: Coordination;
  /** Whether `lane` holds a waiting job (Redis: its BullMQ set; PostgreSQL: what laneIsEmpty says). */
  setBusy(lane: string, busy: boolean): Promise<void>;
  laneIsEmpty(lane: string): () => Promise<boolean>;
  /** Ms until a string's (or a lane's tags') expiry; -1 none, -2 absent (Redis PTTL). */
  pttl(key: string): Promise<number>;
  /** A coordination of its own, and a way to make its store unreachable. */
  breakable(): Promise<{ coord: Coordination; cut(): Promise<void> }>;
}

let database: TestDatabase;
let secondDatabase: Database | undefined;
const redisClients: Redis[] = [];
const busyLanes = new Set<string>();
const backends = {} as Record<'redis' | 'postgres', Backend>;

function redisClient(): Redis {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redisClients.push(client);
  return client;
}

beforeAll(async () => {
  database = await testDatabase();
  const db = database.database;
  // On the server, the second process gets its own pool; PGlite is one connection in this process.
  secondDatabase = usesServer() ? openDatabase(database.url!, '') : undefined;
  const redis = redisClient();
  backends.redis = {
    coord: redisCoordination(redis, prefix, options),
    other: redisCoordination(redisClient(), prefix, options),
    otherPrefix: redisCoordination(redisClient(), otherPrefix, options),
    async setBusy(lane, busy) {
      if (busy) await redis.zadd(`${prefix}:${lane}:prioritized`, 1, 'job');
      else await redis.del(`${prefix}:${lane}:prioritized`);
    },
    laneIsEmpty: () => async () => {
      throw new Error('the Redis script looks at the lane itself');
    },
    pttl: (k) => redis.pttl(k),
    async breakable() {
      const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
      await new Promise((resolve) => client.once('ready', resolve));
      return {
        coord: redisCoordination(client, prefix),
        async cut() {
          const ended = new Promise((resolve) => client.once('end', resolve));
          client.disconnect();
          await ended; // its status changes once the socket has closed
        },
      };
    },
  };
  backends.postgres = {
    coord: postgresCoordination(db, prefix, options),
    other: postgresCoordination(secondDatabase ?? db, prefix, options),
    otherPrefix: postgresCoordination(db, otherPrefix, options),
    async setBusy(lane, busy) {
      if (busy) busyLanes.add(lane);
      else busyLanes.delete(lane);
    },
    laneIsEmpty: (lane) => async () => !busyLanes.has(lane),
    async pttl(k) {
      const ms = (table: string) =>
        sql`select case when expires_at is null then -1
          else greatest(0, floor(extract(epoch from expires_at - clock_timestamp()) * 1000)) end as ms
          from ${sql.raw(table)} where key = ${k} and (expires_at is null or expires_at > clock_timestamp())`;
      for (const table of ['coordination_values', 'coordination_fair_lanes']) {
        const [row] = rowsOf<{ ms: number }>(await db.db.execute(ms(table)));
        if (row) return Number(row.ms);
      }
      return -2;
    },
    async breakable() {
      const own = await testDatabase();
      return { coord: postgresCoordination(own.database, prefix), cut: () => own.drop() };
    },
  };
});

afterAll(async () => {
  for (const backend of Object.values(backends)) {
    await backend.coord.close();
    await backend.other.close();
    await backend.otherPrefix.close();
  }
  await secondDatabase?.close();
  await database?.drop();
  await deleteRedisKeys(prefix);
  await deleteRedisKeys(otherPrefix);
  for (const client of redisClients) client.disconnect();
});

describe.each([['redis' as const], ['postgres' as const]])('%s coordination', (name) => {
  const b = () => backends[name];

  describe('sliding log', () => {
    it('accepts max calls in a window, then refuses until the oldest leaves it', async () => {
      const k = key('log');
      const window = 300;
      const started = Date.now();
      expect(await b().coord.slidingLog(k, window, 3)).toEqual({ count: 1, resetMs: window });
      expect((await b().coord.slidingLog(k, window, 3)).count).toBe(2);
      expect((await b().coord.slidingLog(k, window, 3)).count).toBe(3);
      const refused = await b().coord.slidingLog(k, window, 3);
      const elapsed = Date.now() - started;
      expect(refused.count).toBe(4);
      // The ms until the first call leaves: the window less the time since it was taken.
      expect(refused.resetMs).toBeGreaterThan(0);
      expect(refused.resetMs).toBeLessThanOrEqual(window);
      expect(refused.resetMs).toBeGreaterThanOrEqual(window - elapsed - 5);
      expect((await b().coord.slidingLog(k, window, 3)).count).toBe(4);
      await sleep(window + 50);
      // Every entry left (refused calls were never recorded): a fresh window.
      expect(await b().coord.slidingLog(k, window, 3)).toEqual({ count: 1, resetMs: window });
      expect((await b().coord.slidingLog(k, window, 3)).count).toBe(2);
    });

    it('always: a call over max is let through and recorded, taking room from the next', async () => {
      const k = key('log');
      expect((await b().coord.slidingLog(k, 10_000, 2)).count).toBe(1);
      expect((await b().coord.slidingLog(k, 10_000, 2)).count).toBe(2);
      expect((await b().coord.slidingLog(k, 10_000, 2, true)).count).toBe(3);
      expect((await b().coord.slidingLog(k, 10_000, 2, true)).count).toBe(4);
      const refused = await b().coord.slidingLog(k, 10_000, 2);
      expect(refused.count).toBe(3);
      expect(refused.resetMs).toBeGreaterThan(9_000);
      // A larger max sees the four recorded calls.
      expect((await b().coord.slidingLog(k, 10_000, 10)).count).toBe(5);
    });

    it('entries leave one by one as the window slides', async () => {
      const k = key('log');
      const window = 400;
      await b().coord.slidingLog(k, window, 2);
      await sleep(200);
      await b().coord.slidingLog(k, window, 2);
      const refused = await b().coord.slidingLog(k, window, 2);
      expect(refused.count).toBe(3);
      await sleep(refused.resetMs + 30);
      // The first left, the second is still in the window.
      const next = await b().coord.slidingLog(k, window, 2);
      expect(next.count).toBe(2);
      expect(next.resetMs).toBeGreaterThan(0);
      expect(next.resetMs).toBeLessThan(window - 100);
      expect((await b().coord.slidingLog(k, window, 2)).count).toBe(3);
    });

    it('50 concurrent calls from two processes: exactly max are accepted', async () => {
      const k = key('log');
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? b().coord : b().other).slidingLog(k, 60_000, 10)),
      );
      const accepted = replies.filter((r) => r.count <= 10).map((r) => r.count);
      expect(accepted.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(replies.filter((r) => r.count === 11)).toHaveLength(40);
      expect((await b().coord.slidingLog(k, 60_000, 100)).count).toBe(11);
    });

    it('roomIn tells when a slot frees and takes none', async () => {
      const k = key('log');
      const window = 300;
      expect(await b().coord.roomIn(k, window, 2)).toBe(0);
      expect(await b().coord.roomIn(k, window, 2)).toBe(0);
      expect((await b().coord.slidingLog(k, window, 2)).count).toBe(1);
      expect(await b().coord.roomIn(k, window, 2)).toBe(0);
      expect((await b().coord.slidingLog(k, window, 2)).count).toBe(2);
      const wait = await b().coord.roomIn(k, window, 2);
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(window);
      expect(await b().coord.roomIn(k, window, 3)).toBe(0);
      await sleep(wait + 30);
      expect(await b().coord.roomIn(k, window, 2)).toBe(0);
      expect((await b().coord.slidingLog(k, window, 2)).count).toBeLessThanOrEqual(2);
    });
  });

  describe('breaker', () => {
    it('peek writes nothing; a write keeps the record for idleTtlMs', async () => {
      const k = breakerKey(prefix, `peek-${++n}`);
      const s = breakerSettings({ idleTtlMs: 300, failureThreshold: 1 });
      expect(await b().coord.breaker(k, 'peek', s)).toEqual({
        state: 'closed',
        since: null,
        allowed: true,
        changes: [],
      });
      expect(await b().coord.get(k)).toBeNull();
      // An allowed call on a closed breaker changes nothing, so nothing is written either.
      expect((await b().coord.breaker(k, 'allow', s)).allowed).toBe(true);
      expect(await b().coord.get(k)).toBeNull();
      const opened = await b().coord.breaker(k, 'failure', s);
      expect(opened).toMatchObject({ state: 'open', changes: [{ from: 'closed', to: 'open' }] });
      expect(parseRecord(await b().coord.get(k))).toMatchObject({ state: 'open', since: opened.since });
      const ttl = await b().pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      expect((await b().coord.breaker(k, 'allow', s)).allowed).toBe(false);
      await sleep(400);
      expect(await b().coord.get(k)).toBeNull();
      expect(await b().coord.breaker(k, 'allow', s)).toEqual({
        state: 'closed',
        since: null,
        allowed: true,
        changes: [],
      });
    });

    it('uses the store clock when no time is given', async () => {
      const k = breakerKey(prefix, `clock-${++n}`);
      const s = breakerSettings({ failureThreshold: 1 });
      const before = Date.now();
      const opened = await b().coord.breaker(k, 'failure', s);
      expect(opened.state).toBe('open');
      // The store's clock and this process's agree to within a few seconds on one machine.
      expect(Math.abs(opened.since! - before)).toBeLessThan(5_000);
      expect(await b().pttl(k)).toBeGreaterThan(s.idleTtlMs - 60_000);
    });

    it('50 concurrent outcomes from two processes are all counted', async () => {
      const k = breakerKey(prefix, `many-${++n}`);
      const s = breakerSettings({ failureThreshold: 1000, minimumCalls: 1000 });
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? b().coord : b().other).breaker(k, 'failure', s)),
      );
      const stored = parseRecord(await b().coord.get(k))!;
      expect(stored.streak).toBe(50);
      expect(stored.window.reduce((sum, bucket) => sum + bucket.n, 0)).toBe(50);
    });
  });

  describe('strings', () => {
    it('setIfAbsent sets only a key that is absent or expired', async () => {
      const k = key('lock');
      expect(await b().coord.setIfAbsent(k, 'a', 200)).toBe(true);
      expect(await b().coord.setIfAbsent(k, 'b', 200)).toBe(false);
      expect(await b().other.setIfAbsent(k, 'c', 200)).toBe(false);
      expect(await b().coord.get(k)).toBe('a');
      await sleep(250);
      expect(await b().coord.get(k)).toBeNull();
      expect(await b().coord.setIfAbsent(k, 'b', 5_000)).toBe(true);
      expect(await b().other.get(k)).toBe('b');
    });

    it('only one of many concurrent setIfAbsent wins', async () => {
      const k = key('lock');
      const won = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? b().coord : b().other).setIfAbsent(k, `t${i}`, 5_000)),
      );
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(await b().coord.get(k)).toBe(`t${won.indexOf(true)}`);
    });

    it('extendIfHeld extends or releases only for the live holder', async () => {
      const k = key('lock');
      await b().coord.setIfAbsent(k, 'mine', 200);
      await b().coord.extendIfHeld(k, 'theirs', 5_000);
      await b().coord.extendIfHeld(k, 'theirs', 0);
      expect(await b().coord.get(k)).toBe('mine');
      expect(await b().pttl(k)).toBeLessThanOrEqual(200);
      await b().coord.extendIfHeld(k, 'mine', 5_000);
      expect(await b().pttl(k)).toBeGreaterThan(4_000);
      await sleep(250);
      expect(await b().coord.get(k)).toBe('mine');
      await b().coord.extendIfHeld(k, 'mine', 0);
      expect(await b().coord.get(k)).toBeNull();
      expect(await b().coord.setIfAbsent(k, 'next', 5_000)).toBe(true);

      const gone = key('lock');
      await b().coord.setIfAbsent(gone, 'mine', 100);
      await sleep(150);
      await b().coord.extendIfHeld(gone, 'mine', 5_000); // expired: not brought back
      expect(await b().coord.get(gone)).toBeNull();
      expect(await b().coord.setIfAbsent(gone, 'other', 5_000)).toBe(true);
    });

    it('set with and without expiry, take and del', async () => {
      const forever = key('kv');
      const brief = key('kv');
      await b().coord.set(forever, 'v');
      await b().coord.set(brief, 'w', 100);
      expect(await b().pttl(forever)).toBe(-1);
      expect(await b().coord.get(brief)).toBe('w');
      await sleep(150);
      expect(await b().coord.get(forever)).toBe('v');
      expect(await b().coord.get(brief)).toBeNull();
      expect(await b().coord.take(brief)).toBeNull();
      expect(await b().coord.take(forever)).toBe('v');
      expect(await b().coord.take(forever)).toBeNull();
      expect(await b().coord.get(forever)).toBeNull();
      // set replaces the value and its expiry.
      await b().coord.set(brief, 'x', 100);
      await b().coord.set(brief, 'y');
      await sleep(150);
      expect(await b().coord.get(brief)).toBe('y');
      await b().coord.set(brief, 'z', 5_000);
      expect(await b().pttl(brief)).toBeGreaterThan(4_000);
      await b().coord.del(brief);
      expect(await b().coord.get(brief)).toBeNull();
      expect(await b().pttl(brief)).toBe(-2);
      await b().coord.del(brief); // deleting an absent key is fine
    });

    it('a key under one prefix is not the same key under another', async () => {
      const k = `${n++}:flag`;
      await b().coord.set(`${prefix}:${k}`, 'one');
      expect(await b().otherPrefix.get(`${otherPrefix}:${k}`)).toBeNull();
      expect(await b().otherPrefix.setIfAbsent(`${otherPrefix}:${k}`, 'two', 5_000)).toBe(true);
      expect(await b().coord.get(`${prefix}:${k}`)).toBe('one');
    });
  });

  describe('sets', () => {
    it('adds members once, lists and removes them', async () => {
      const k = key('set');
      expect(await b().coord.members(k)).toEqual([]);
      await b().coord.addMember(k, 'a');
      await b().other.addMember(k, 'b c');
      await b().coord.addMember(k, 'a');
      expect((await b().coord.members(k)).sort()).toEqual(['a', 'b c']);
      await b().coord.removeMember(k, 'a');
      await b().coord.removeMember(k, 'never');
      expect(await b().other.members(k)).toEqual(['b c']);
      await b().coord.del(k);
      expect(await b().coord.members(k)).toEqual([]);
    });
  });

  describe('publish / subscribe', () => {
    it('delivers a message after ready, to that channel only, and nothing after close', async () => {
      const channel = `${prefix}:carriers-changed`;
      const got: string[] = [];
      const elsewhere: string[] = [];
      let readies = 0;
      let subscription: Subscription | undefined;
      await new Promise<void>((resolve) => {
        subscription = b().other.subscribe(channel, {
          message: (m) => got.push(m),
          ready: () => {
            readies++;
            resolve();
          },
        });
      });
      let otherReady = false;
      const other = b().otherPrefix.subscribe(`${otherPrefix}:carriers-changed`, {
        message: (m) => elsewhere.push(m),
        ready: () => {
          otherReady = true;
        },
      });
      await waitFor(async () => otherReady, 'the other subscription');
      await b().coord.publish(channel, 'carrier "ü" 1');
      await b().coord.publish(channel, 'carrier-2');
      await waitFor(async () => got.length >= 2, 'the messages', 5_000);
      await sleep(100);
      expect(got).toEqual(['carrier "ü" 1', 'carrier-2']);
      expect(elsewhere).toEqual([]);
      expect(readies).toBe(1);
      subscription!.close();
      await sleep(200);
      await b().coord.publish(channel, 'after close');
      await b().otherPrefix.publish(`${otherPrefix}:carriers-changed`, 'theirs');
      await waitFor(async () => elsewhere.length === 1, 'the other prefix message', 5_000);
      await sleep(100);
      expect(got).toEqual(['carrier "ü" 1', 'carrier-2']);
      expect(elsewhere).toEqual(['theirs']);
      other.close();
    });
  });

  describe('fair tags', () => {
    it('two shops alternate, an idle shop starts at the frontier, an empty lane starts again', async () => {
      const lane = `lane-${++n}`;
      const c = b().coord;
      await b().setBusy(lane, true);
      expect(await c.fairTags(lane, [])).toEqual([]);
      expect(await c.fairTags(lane, ['big', 'big', 'big', 'small'])).toEqual([1, 2, 3, 1]);
      expect(await b().other.fairTags(lane, ['small', 'big'])).toEqual([2, 4]);
      const ttl = await b().pttl(fairTagsKey(prefix, lane));
      expect(ttl).toBeGreaterThan(FAIR_TAGS_TTL_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(FAIR_TAGS_TTL_MS);
      await c.fairTake(lane, 2, b().laneIsEmpty(lane));
      // Idle until now: it starts at the frontier (2), not at 0, so it saved up no turns.
      expect(await c.fairTags(lane, ['idle'])).toEqual([3]);
      await c.fairTake(lane, 1, b().laneIsEmpty(lane)); // lower than the frontier: it stays
      expect(await c.fairTags(lane, ['late', 'small'])).toEqual([3, 3]);
      await c.fairTake(lane, 4, b().laneIsEmpty(lane));
      expect(await c.fairTags(lane, ['small', 'big'])).toEqual([5, 5]);
      // Another prefix's lane of the same name is another lane.
      expect(await b().otherPrefix.fairTags(lane, ['big'])).toEqual([1]);
      await b().setBusy(lane, false);
      await sleep(GRACE_MS + 20);
      await c.fairTake(lane, 5, b().laneIsEmpty(lane));
      expect(await b().pttl(fairTagsKey(prefix, lane))).toBe(-2);
      await b().setBusy(lane, true);
      expect(await c.fairTags(lane, ['big', 'idle', 'big'])).toEqual([1, 1, 2]);
    });

    it('an empty lane tagged within the grace keeps its tags, so a late-added job is not passed', async () => {
      const lane = `lane-${++n}`;
      const c = b().coord;
      await b().setBusy(lane, true);
      expect(await c.fairTags(lane, ['a', 'a'])).toEqual([1, 2]);
      await c.fairTake(lane, 1, b().laneIsEmpty(lane));
      // Job 2 is tagged but not yet in the lane when a worker finds the lane empty.
      await b().setBusy(lane, false);
      await c.fairTake(lane, 1, b().laneIsEmpty(lane));
      expect(await b().pttl(fairTagsKey(prefix, lane))).toBeGreaterThan(0);
      expect(await c.fairTags(lane, ['a'])).toEqual([3]);
      // Once the grace has passed since the last tag, the empty lane starts again.
      await sleep(GRACE_MS + 20);
      await c.fairTake(lane, 3, b().laneIsEmpty(lane));
      expect(await b().pttl(fairTagsKey(prefix, lane))).toBe(-2);
      expect(await c.fairTags(lane, ['a'])).toEqual([1]);
    });

    it('caps tags at the highest priority', async () => {
      const lane = `lane-${++n}`;
      await b().setBusy(lane, true);
      expect(await b().coord.fairTags(lane, ['a'])).toEqual([1]);
      await b().coord.fairTake(lane, MAX_PRIORITY - 1, b().laneIsEmpty(lane));
      expect(await b().coord.fairTags(lane, ['b', 'b', 'a'])).toEqual([
        MAX_PRIORITY,
        MAX_PRIORITY,
        MAX_PRIORITY,
      ]);
    });

    it('a take on a lane without tags keeps its frontier, with no expiry until a job joins', async () => {
      const lane = `lane-${++n}`;
      await b().setBusy(lane, true);
      await b().coord.fairTake(lane, 7, b().laneIsEmpty(lane));
      expect(await b().pttl(fairTagsKey(prefix, lane))).toBe(-1);
      expect(await b().coord.fairTags(lane, ['a'])).toEqual([8]);
      expect(await b().pttl(fairTagsKey(prefix, lane))).toBeGreaterThan(FAIR_TAGS_TTL_MS - 60_000);
    });

    it('concurrent joins from two processes get distinct tags per shop', async () => {
      const lane = `lane-${++n}`;
      const tags = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? b().coord : b().other).fairTags(lane, ['s', 's'])),
      );
      expect(tags.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      for (const pair of tags) expect(pair[1]).toBe(pair[0] + 1);
    });
  });

  describe('connection', () => {
    it('answers ping, and tells when the store is unreachable', async () => {
      await b().coord.ping();
      expect(b().coord.connected()).toBe(true);
      const { coord, cut } = await b().breakable();
      await coord.ping();
      expect(await coord.setIfAbsent(key('lock'), 'x', 1_000)).toBe(true);
      expect(coord.connected()).toBe(true);
      await cut();
      await expect(coord.ping()).rejects.toThrow();
      expect(coord.connected()).toBe(false);
      await expect(coord.get(key('kv'))).rejects.toThrow();
      expect(coord.connected()).toBe(false);
    });
  });
});

describe('the breaker on both stores and the pure rules', () => {
  for (const [label, s] of BREAKER_VARIANTS) {
    for (const seed of [1, 2]) {
      it(`give the same reply and record at every step (${label}, seed ${seed})`, async () => {
        const random = mulberry32(seed);
        const k = breakerKey(prefix, `seq-${++n}`);
        let record: BreakerRecord = initialBreaker();
        let now = Date.UTC(2026, 0, 31, 8, 0, 0) + Math.floor(random() * 1000);
        const seen = new Set<string>();
        for (let step = 0; step < 300; step++) {
          const next = nextBreakerStep(random, s, now);
          now = next.at;
          const op = next.op;
          const { record: after, reply: expected } = expectedStep(record, op, now, s);
          record = after;
          const [onRedis, onPostgres] = await Promise.all([
            backends.redis.coord.breaker(k, op, s, now),
            backends.postgres.coord.breaker(k, op, s, now),
          ]);
          expect(onRedis, `redis, step ${step}: ${op} at ${now}`).toEqual(expected);
          expect(onPostgres, `postgres, step ${step}: ${op} at ${now}`).toEqual(onRedis);
          const [storedRedis, storedPostgres] = await Promise.all([
            backends.redis.coord.get(k),
            backends.postgres.coord.get(k),
          ]);
          const want = { ...record, probeUntil: record.probeUntil };
          expect(parseRecord(storedRedis) ?? initialBreaker(), `redis record after step ${step}`).toEqual(
            want,
          );
          expect(
            parseRecord(storedPostgres) ?? initialBreaker(),
            `postgres record after step ${step}`,
          ).toEqual(want);
          expect(storedPostgres === null, `written alike after step ${step}`).toBe(storedRedis === null);
          seen.add(onRedis.state);
          for (const c of onRedis.changes) seen.add(`${c.from}>${c.to}`);
        }
        for (const state of EVERY_BREAKER_TRANSITION) expect(seen).toContain(state);
      });
    }
  }
});

describe('postgres coordination only', () => {
  it('maps each channel to its own short identifier', () => {
    const names = [
      `${prefix}:carriers-changed`,
      `${otherPrefix}:carriers-changed`,
      '{surgeline}:carriers-changed',
      `${'x'.repeat(200)}:carriers-changed`,
    ].map(channelName);
    expect(new Set(names).size).toBe(4);
    for (const name of names) {
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
      expect(name.length).toBeLessThanOrEqual(63);
    }
    expect(channelName('{surgeline}:carriers-changed')).toBe(names[2]);
  });

  it('close() ends every subscription of the coordination', async () => {
    const own = postgresCoordination(database.database, prefix);
    const channel = `${prefix}:closing`;
    const got: string[] = [];
    await new Promise<void>((resolve) =>
      own.subscribe(channel, { message: (m) => got.push(m), ready: resolve }),
    );
    await backends.postgres.coord.publish(channel, 'before');
    await waitFor(async () => got.length === 1, 'the message', 5_000);
    await own.close();
    await backends.postgres.coord.publish(channel, 'after');
    await sleep(200);
    expect(got).toEqual(['before']);
    await own.ping(); // the database itself stays open: its owner closes it
  });

  it('a subscription whose first listen fails keeps trying until closed', async () => {
    let attempts = 0;
    const away = {
      ...database.database,
      listen: async () => {
        attempts++;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    } as Database;
    const subscription = postgresCoordination(away, prefix).subscribe(`${prefix}:away`, {
      message: () => {},
    });
    await waitFor(async () => attempts >= 2, 'a second listen', 5_000);
    subscription.close();
    const seen = attempts;
    await sleep(1_200);
    expect(attempts).toBe(seen);
  });
});
