import { and, asc, eq, inArray } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { orderEvents } from '../../src/db/schema.js';
import type { Priority } from '../../src/domain/priority.js';
import { registerScriptedCarrier } from '../helpers/carriers.js';
import { createShop, createWarehouse, newKey, orderBody, setStock } from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  uniquePrefix,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

/**
 * Priority without starvation, through the real API and the allocation stage's lanes: a backlog
 * is posted while no allocation worker runs, then one worker with a single slot drains it, and the
 * order in which orders were allocated (their `allocated` events) is read back.
 */
describe('priority lanes: essential first, every class its minimum share, shops served in turn', () => {
  let db: TestDatabase;
  let api: TestServer;
  let workers: TestServer | undefined;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    db = await testDatabase();
    // The API and messages only: allocation jobs wait in their lanes until a worker is started.
    api = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'notification' },
    });
    await createWarehouse(api.app, 'wh-lanes');
    await setStock(api.app, 'wh-lanes', 'MASK-N95', 100_000);
  });

  afterEach(async () => {
    await workers?.stop();
    workers = undefined;
  });

  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  /**
   * Posts the orders through the batch route, 50 a request (a request enqueues within 2 s, and
   * leaves the rest to the reconciler), and waits until every allocation job is in its lane.
   */
  async function post(apiKey: string, priorities: Priority[]): Promise<string[]> {
    const ids: string[] = [];
    const before = await queued();
    for (let i = 0; i < priorities.length; i += 50) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/orders/batch',
        headers: { authorization: `Bearer ${apiKey}` },
        payload: {
          orders: priorities.slice(i, i + 50).map((priority) => ({
            idempotencyKey: newKey(),
            ...orderBody({ priority, notify: { channels: [] } }),
          })),
        },
      });
      expect(response.statusCode).toBe(200);
      for (const result of response.json().results) {
        expect(result.status).toBe(202);
        ids.push(result.id);
      }
    }
    await waitFor(async () => (await queued()) - before >= ids.length, 'every allocation job queued');
    return ids;
  }

  async function queued(): Promise<number> {
    const counts = await api.ctx.queues.lanes.allocation.getJobCounts('prioritized', 'waiting');
    return (counts.prioritized ?? 0) + (counts.waiting ?? 0);
  }

  /** Starts one allocation worker with a single slot and answers the orders in allocation order. */
  async function drain(ids: string[]): Promise<string[]> {
    workers = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'allocation', WORKER_CONCURRENCY: '1' },
    });
    return waitFor(
      async () => {
        const events = await db.database.db
          .select({ orderId: orderEvents.orderId })
          .from(orderEvents)
          .where(and(inArray(orderEvents.orderId, ids), eq(orderEvents.status, 'allocated')))
          .orderBy(asc(orderEvents.id));
        return events.length === ids.length ? events.map((e) => e.orderId) : undefined;
      },
      `${ids.length} orders allocated`,
      90_000,
    );
  }

  it("shares a rate-limited carrier's booking calls by class: standard and express keep their minimum", async () => {
    const carrier = await registerScriptedCarrier(
      api.app,
      { id: 'lanes-limited', script: (c) => (c.method === 'POST' ? { book: true } : undefined) },
      { rateLimitPerSecond: 10 },
    );
    try {
      const shop = await createShop(api.app, { rateLimitPerMinute: 100_000 });
      const classes: Priority[] = [
        ...Array<Priority>(30).fill('standard'),
        ...Array<Priority>(30).fill('express'),
        ...Array<Priority>(30).fill('essential'),
      ];
      const ids = await post(shop.apiKey, classes);
      // First in the file: the lanes hold this test's work only. Allocated first, so that routing
      // (far faster than 10 calls a second) fills the carrier's lanes at once when dispatch starts.
      await drain(ids);
      await workers?.stop();
      workers = await startTestServer(db.database, {
        env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'dispatch' },
      });
      await waitFor(async () => carrier.posts().length >= ids.length, 'every parcel booked', 90_000);
      // The carrier's rate is what the classes share: past the first second (the lanes filling),
      // while all three wait (the next 36 calls), standard keeps ~10% and express ~20% of the
      // calls, essential the rest.
      const booked = carrier.posts().map((call) => call.priority as Priority);
      const first = booked.slice(10, 46);
      const count = (c: Priority) => first.filter((x) => x === c).length;
      expect(count('standard'), booked.join(' ')).toBeGreaterThanOrEqual(2);
      expect(count('express'), booked.join(' ')).toBeGreaterThanOrEqual(5);
      expect(count('essential'), booked.join(' ')).toBeGreaterThanOrEqual(18);
      const lastEssential = booked.lastIndexOf('essential');
      expect(
        booked.slice(lastEssential).filter((c) => c === 'standard').length,
        booked.join(' '),
      ).toBeGreaterThan(15);
    } finally {
      await carrier.close();
    }
  });

  it('drains a mixed backlog essential first while standard keeps 10% and express 20%', async () => {
    const shop = await createShop(api.app, { rateLimitPerMinute: 100_000 });
    // Standard posted first, essential last: the lanes, not arrival, decide.
    const classes: Priority[] = [
      ...Array<Priority>(60).fill('standard'),
      ...Array<Priority>(60).fill('express'),
      ...Array<Priority>(60).fill('essential'),
    ];
    const ids = await post(shop.apiKey, classes);
    const classOf = new Map(ids.map((id, i) => [id, classes[i]]));
    const order = (await drain(ids)).map((id) => classOf.get(id)!);

    expect(order[0], order.slice(0, 30).join(' ')).toBe('essential');
    // While all three lanes are full (the first 60 admissions: essential alone would last longer),
    // each lower class gets its share — within one admission — and essential the rest.
    const saturated = order.slice(0, 60);
    const count = (c: Priority) => saturated.filter((x) => x === c).length;
    expect(count('standard')).toBeGreaterThanOrEqual(5);
    expect(count('express')).toBeGreaterThanOrEqual(11);
    expect(count('essential'), order.map((c) => c.slice(0, 2)).join(' ')).toBeGreaterThanOrEqual(40);
    // Essential is done long before the others: its last order leaves before most standard ones.
    const lastEssential = order.lastIndexOf('essential');
    expect(order.slice(lastEssential).filter((c) => c === 'standard').length).toBeGreaterThan(30);
    expect(order.indexOf('standard')).toBeLessThan(12); // no starvation: a standard order early on
  });

  it("serves a small shop's orders in turn with a flooding shop's, not behind them", async () => {
    const flood = await createShop(api.app, { name: 'Marketplace', rateLimitPerMinute: 100_000 });
    const small = await createShop(api.app, { name: 'Pharmacy', rateLimitPerMinute: 100_000 });
    const floodIds = await post(flood.apiKey, Array<Priority>(120).fill('standard'));
    const smallIds = await post(small.apiKey, Array<Priority>(8).fill('standard'));
    const order = await drain([...floodIds, ...smallIds]);

    const positions = smallIds.map((id) => order.indexOf(id));
    // Turns alternate: the pharmacy's 8th order is taken within the first ~16, not after 120.
    expect(Math.max(...positions)).toBeLessThan(20);
    // And the flood is not starved in return: it keeps every other turn meanwhile.
    expect(order.slice(0, 16).filter((id) => floodIds.includes(id)).length).toBeGreaterThanOrEqual(7);
  });
});
