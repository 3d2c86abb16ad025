import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialBreaker, type BreakerRecord } from '../../src/domain/breaker.js';
import {
  BreakerStateUnavailable,
  breakerKey,
  createBreakerStore,
  parseRecord,
  runBreaker,
} from '../../src/integrations/carriers/breaker-store.js';
import type { Logger } from '../../src/logger.js';
import { redisCoordination } from '../../src/queues/redis-coordination.js';
import { REDIS_URL, deleteRedisKeys, uniquePrefix } from '../helpers/harness.js';
import {
  BREAKER_VARIANTS,
  EVERY_BREAKER_TRANSITION,
  expectedStep,
  mulberry32,
  nextBreakerStep,
} from '../helpers/breaker-sequences.js';

const prefix = uniquePrefix();
let a: Redis;
let b: Redis;
let n = 0;
const carrier = () => `c${++n}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Line {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  message: string;
}
function captureLog() {
  const lines: Line[] = [];
  const log = {
    info: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'info', fields, message }),
    warn: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'warn', fields, message }),
  } as unknown as Logger;
  return { log, lines };
}

beforeAll(() => {
  a = new Redis(REDIS_URL);
  b = new Redis(REDIS_URL);
});

afterAll(async () => {
  await deleteRedisKeys(prefix);
  a.disconnect();
  b.disconnect();
});

describe('the Lua script mirrors domain/breaker.ts', () => {
  for (const [name, s] of BREAKER_VARIANTS) {
    for (const seed of [1, 2, 3]) {
      it(`agrees with the pure rules on every step of a random sequence (${name}, seed ${seed})`, async () => {
        const random = mulberry32(seed);
        const key = breakerKey(prefix, carrier());
        let record: BreakerRecord = initialBreaker();
        let now = Date.UTC(2026, 0, 31, 8, 0, 0) + Math.floor(random() * 1000);
        const seen = new Set<string>();
        for (let step = 0; step < 400; step++) {
          const next = nextBreakerStep(random, s, now);
          now = next.at;
          const op = next.op;
          const reply = await runBreaker(a, key, op, s, now);
          const { record: after, reply: expected } = expectedStep(record, op, now, s);
          record = after;
          expect(reply, `step ${step}: ${op} at +${now}`).toEqual(expected);
          if (op !== 'peek') {
            const stored = parseRecord(await a.get(key)) ?? initialBreaker();
            expect(stored, `record after step ${step}`).toEqual({ ...record, probeUntil: record.probeUntil });
          }
          seen.add(reply.state);
          for (const c of reply.changes) seen.add(`${c.from}>${c.to}`);
        }
        // The sequence went through every state and change, so each rule was compared.
        for (const state of EVERY_BREAKER_TRANSITION) expect(seen).toContain(state);
      });
    }
  }
});

describe('breaker store', () => {
  it('two stores on two connections share the state and its since', async () => {
    const id = carrier();
    const one = createBreakerStore(redisCoordination(a, prefix), prefix);
    const two = createBreakerStore(redisCoordination(b, prefix), prefix);
    expect(await two.states([id])).toEqual({ [id]: { state: 'closed', since: null } });
    for (let i = 0; i < 4; i++) expect((await one.record(id, 'failure')).state).toBe('closed');
    const opened = await two.record(id, 'failure'); // the 5th in a row, from the other process
    expect(opened).toEqual({ state: 'open', since: expect.any(Date) });
    expect(await one.states([id])).toEqual({ [id]: opened });
    expect(await one.allow(id)).toBe(false);
    expect(await two.allow(id)).toBe(false);
    const key = breakerKey(prefix, id);
    expect(key).toBe(`${prefix}:breaker:${id}`);
    const ttl = await a.pttl(key);
    expect(ttl).toBeGreaterThan(86_400_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000);
  });

  it('counts every one of 50 concurrent outcomes from two processes', async () => {
    const id = carrier();
    const settings = { failureThreshold: 1000, minimumCalls: 1000 };
    const one = createBreakerStore(redisCoordination(a, prefix), prefix, settings);
    const two = createBreakerStore(redisCoordination(b, prefix), prefix, settings);
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? one : two).record(id, 'failure')));
    const stored = parseRecord(await a.get(breakerKey(prefix, id)))!;
    expect(stored.streak).toBe(50);
    expect(stored.window.reduce((sum, bucket) => sum + bucket.n, 0)).toBe(50);
  });

  it('opens once under concurrent failures, and only the process that opened it logs it', async () => {
    const id = carrier();
    const logA = captureLog();
    const logB = captureLog();
    const settings = { failureThreshold: 20, minimumCalls: 1000 };
    const one = createBreakerStore(redisCoordination(a, prefix), prefix, settings, logA.log);
    const two = createBreakerStore(redisCoordination(b, prefix), prefix, settings, logB.log);
    const views = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? one : two).record(id, 'failure')),
    );
    const lines = [...logA.lines, ...logB.lines];
    expect(lines).toEqual([
      {
        level: 'warn',
        fields: { carrierId: id, from: 'closed', to: 'open' },
        message: 'carrier breaker opened',
      },
    ]);
    expect(views.filter((v) => v.state === 'closed')).toHaveLength(19);
    const since = views.find((v) => v.state === 'open')!.since!.getTime();
    expect(views.filter((v) => v.state === 'open').every((v) => v.since!.getTime() === since)).toBe(true);
  });

  it('open → half_open after the cool-down → closed after the probes succeed, each change logged once', async () => {
    const id = carrier();
    const { log, lines } = captureLog();
    const settings = { failureThreshold: 2, coolDownMs: 300, halfOpenProbes: 1, halfOpenSuccesses: 2 };
    const one = createBreakerStore(redisCoordination(a, prefix), prefix, settings, log);
    const two = createBreakerStore(redisCoordination(b, prefix), prefix, settings); // a reader elsewhere
    await one.record(id, 'failure');
    const opened = await one.record(id, 'failure');
    expect(opened.state).toBe('open');
    await sleep(350);
    // Read-only: both see half_open, since = opened + cool-down, and nothing was logged yet.
    const half = (await two.states([id]))[id];
    expect(half).toEqual({ state: 'half_open', since: new Date(opened.since!.getTime() + 300) });
    expect((await one.states([id]))[id]).toEqual(half);
    expect(lines.map((l) => l.message)).toEqual(['carrier breaker opened']);

    expect(await one.allow(id)).toBe(true); // the probe
    expect(await two.allow(id)).toBe(false); // its place is taken
    expect(await one.record(id, 'success')).toEqual(half); // 1 of 2: still half_open, same since
    expect(await two.allow(id)).toBe(true);
    const closed = await two.record(id, 'success');
    expect(closed.state).toBe('closed');
    expect(closed.since!.getTime()).toBeGreaterThan(half.since!.getTime());
    expect((await one.states([id]))[id]).toEqual(closed);
    expect(await one.allow(id)).toBe(true);
    expect(lines.map((l) => [l.message, l.fields])).toEqual([
      ['carrier breaker opened', { carrierId: id, from: 'closed', to: 'open' }],
      ['carrier breaker half-opened', { carrierId: id, from: 'open', to: 'half_open' }],
    ]); // "closed" was logged by the other store, which had no logger
  });

  it('a failed probe re-opens it with a new since, and the cool-down starts again', async () => {
    const id = carrier();
    const { log, lines } = captureLog();
    const store = createBreakerStore(
      redisCoordination(a, prefix),
      prefix,
      { failureThreshold: 1, coolDownMs: 200 },
      log,
    );
    const first = await store.record(id, 'failure');
    await sleep(250);
    expect(await store.allow(id)).toBe(true);
    const reopened = await store.record(id, 'failure');
    expect(reopened.state).toBe('open');
    expect(reopened.since!.getTime()).toBeGreaterThanOrEqual(first.since!.getTime() + 200);
    expect(await store.allow(id)).toBe(false);
    expect((await store.states([id]))[id]).toEqual(reopened);
    expect(lines.map((l) => l.message)).toEqual([
      'carrier breaker opened',
      'carrier breaker half-opened',
      'carrier breaker opened',
    ]);
  });

  it('since changes only with the state', async () => {
    const id = carrier();
    const store = createBreakerStore(redisCoordination(a, prefix), prefix, {
      failureThreshold: 3,
      minimumCalls: 100,
    });
    expect((await store.record(id, 'success')).since).toBeNull();
    expect((await store.record(id, 'failure')).since).toBeNull();
    const opened = [await store.record(id, 'failure'), await store.record(id, 'failure')][1];
    expect(opened.state).toBe('open');
    await sleep(20);
    // Outcomes of calls that were in flight when it opened, refused calls and reads leave it as it was.
    expect(await store.record(id, 'success')).toEqual(opened);
    expect(await store.record(id, 'failure')).toEqual(opened);
    expect(await store.allow(id)).toBe(false);
    expect((await store.states([id]))[id]).toEqual(opened);
  });

  it('admits only the allowed number of probes at once, across processes', async () => {
    const id = carrier();
    const settings = { failureThreshold: 1, coolDownMs: 100, halfOpenProbes: 2, halfOpenSuccesses: 5 };
    const one = createBreakerStore(redisCoordination(a, prefix), prefix, settings);
    const two = createBreakerStore(redisCoordination(b, prefix), prefix, settings);
    await one.record(id, 'failure');
    await sleep(150);
    const granted = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).allow(id)));
    expect(granted.filter(Boolean)).toHaveLength(2);
    await one.record(id, 'success'); // one probe reported: one place free
    const more = await Promise.all(Array.from({ length: 10 }, () => two.allow(id)));
    expect(more.filter(Boolean)).toHaveLength(1);
  });

  it('a probe that never reports frees its place after the lease', async () => {
    const id = carrier();
    const store = createBreakerStore(redisCoordination(a, prefix), prefix, {
      failureThreshold: 1,
      coolDownMs: 100,
      probeLeaseMs: 200,
    });
    await store.record(id, 'failure');
    await sleep(150);
    expect(await store.allow(id)).toBe(true);
    expect(await store.allow(id)).toBe(false);
    await sleep(250);
    expect(await store.allow(id)).toBe(true);
    expect((await store.states([id]))[id].state).toBe('half_open');
  });

  it('with Redis away, states() fails with what this process last saw', async () => {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    const id = carrier();
    const unseen = carrier();
    const store = createBreakerStore(redisCoordination(client, prefix), prefix, { failureThreshold: 1 });
    await new Promise((resolve) => client.once('ready', resolve));
    const opened = await store.record(id, 'failure');
    client.disconnect();
    const error = await store.states([id, unseen]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakerStateUnavailable);
    expect((error as BreakerStateUnavailable).lastKnown).toEqual({
      [id]: opened,
      [unseen]: { state: 'closed', since: null },
    });
    await expect(store.allow(id)).rejects.toThrow();
  });
});
