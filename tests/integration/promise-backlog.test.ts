/**
 * Promises the engine can keep (contract: POST /v1/orders `promisedBy`): now + the wait ahead of
 * the order (the allocation and dispatch backlog of its class and above ÷ each stage's measured
 * throughput) + the region's transit time. The API runs alone first (role `api`: no worker drains
 * the queues, so the backlog is exactly the orders accepted), with WORKER_CONCURRENCY=1: with no
 * worker and no completed job measured, each stage is taken at one replica of that concurrency
 * at the default job duration — allocation 1 ÷ 0.05 s = 20 jobs a second, i.e. 50 ms per job
 * ahead. Then a worker process on the same queues drains them, and promises come back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_JOB_SECONDS } from '../../src/domain/forecast.js';
import { backlogByClass, sharedBacklog } from '../../src/queues/backlog.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { promiseFor } from '../../src/steps/promise.js';
import {
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const HOUR = 3_600_000;
const TRANSIT_HOURS = 12;
/** ms of wait per allocation job ahead: one replica × WORKER_CONCURRENCY=1 at the default duration. */
const MS_PER_JOB = DEFAULT_JOB_SECONDS.allocation * 1000;

describe('promises account for the backlog ahead', () => {
  let db: TestDatabase;
  let api: TestServer;
  let worker: TestServer | undefined;
  let carrier: CarrierSimulator;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    api = await startTestServer(db.database, { role: 'api', env: { WORKER_CONCURRENCY: '1' } });
    shop = await seedShopWithStock(api.app, {
      shop: { name: 'Promise Shop', rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-promise',
      stock: { 'MASK-N95': 100_000 },
    });
    carrier = await startSimulatedCarrier(
      api.app,
      { carrierId: 'pb-carrier', webhookSecret: 'carrier-secret-123', progress: false },
      { transitHours: TRANSIT_HOURS },
    );
  });

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await carrier?.close();
    await db?.drop();
  });

  /** POSTs one order; answers how far its promise is past now + transit (the wait it was given). */
  async function promiseOffset(priority: string): Promise<{ waitMs: number; slackMs: number }> {
    const before = Date.now();
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
      payload: JSON.stringify(orderBody({ priority })),
    });
    const after = Date.now();
    expect(response.statusCode, response.body).toBe(202);
    const promisedBy = Date.parse(response.json().promisedBy);
    // Intake's `now` lies in [before, after]: the wait is within that much of this.
    return { waitMs: promisedBy - TRANSIT_HOURS * HOUR - before, slackMs: after - before };
  }

  /**
   * Accepts `n` standard orders, in batches of 10 (each one more allocation job; a batch that
   * takes over 2 s to enqueue leaves the rest to the reconciler, which an API-only process does
   * not run, so batches are kept small and the test counts what the queue holds).
   */
  async function postOrders(n: number) {
    for (let i = 0; i < n; i += 10) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/orders/batch',
        headers: { ...shopHeaders(shop.apiKey), 'content-type': 'application/json' },
        payload: JSON.stringify({
          orders: Array.from({ length: Math.min(10, n - i) }, () => ({
            idempotencyKey: newKey(),
            ...orderBody(),
          })),
        }),
      });
      expect(response.statusCode, response.body).toBe(200);
      for (const result of response.json().results) expect(result.status).toBe(202);
    }
  }

  /**
   * The allocation jobs of each class waiting now, once this process's shared reading (the one
   * the next order is promised from) was taken after everything posted so far.
   */
  async function settledBacklog() {
    const after = Date.now();
    const reading = await waitFor(async () => {
      const current = await sharedBacklog(api.ctx)();
      return current && current.at > after && current.value;
    }, 'a fresh backlog reading');
    const counted = await backlogByClass(api.ctx);
    expect(counted.stages).toEqual(reading.stages);
    return reading.stages.allocation;
  }

  it('promises now + transit on an empty backlog', async () => {
    expect(await settledBacklog()).toEqual({ essential: 0, express: 0, standard: 0 });
    const { waitMs, slackMs } = await promiseOffset('standard');
    expect(waitMs).toBeGreaterThanOrEqual(-1);
    expect(waitMs).toBeLessThanOrEqual(slackMs + 1);
  });

  it('moves new promises later as the allocation backlog grows', async () => {
    const waits: number[] = [];
    let last = 0;
    for (let round = 0; round < 3; round++) {
      await postOrders(20);
      const ahead = (await settledBacklog()).standard;
      expect(ahead).toBeGreaterThanOrEqual(last + 20);
      last = ahead;
      const { waitMs, slackMs } = await promiseOffset('standard');
      // Exactly the jobs ahead × 50 ms, give or take the request's own duration.
      expect(waitMs).toBeGreaterThanOrEqual(ahead * MS_PER_JOB - 1);
      expect(waitMs).toBeLessThanOrEqual(ahead * MS_PER_JOB + slackMs + 1);
      waits.push(waitMs);
    }
    expect(waits[1]).toBeGreaterThan(waits[0] + 900);
    expect(waits[2]).toBeGreaterThan(waits[1] + 900);
  });

  it('promises an essential order earlier than a standard one posted with it behind a standard backlog', async () => {
    const ahead = await settledBacklog();
    expect(ahead.essential).toBe(0);
    expect(ahead.standard).toBeGreaterThan(40);
    const [essential, standard] = await Promise.all([promiseOffset('essential'), promiseOffset('standard')]);
    expect(standard.waitMs).toBeGreaterThanOrEqual(ahead.standard * MS_PER_JOB - 1);
    // No essential work is ahead of it: its promise ignores the standard backlog.
    expect(essential.waitMs).toBeLessThanOrEqual(essential.slackMs + 1);
    expect(essential.waitMs).toBeLessThan(standard.waitMs - 2_000);
  });

  it('brings promises back near now + transit once workers drain the queues', async () => {
    expect((await settledBacklog()).standard).toBeGreaterThan(40);
    worker = await startTestServer(db.database, {
      role: 'worker',
      env: { QUEUE_PREFIX: api.config.queuePrefix },
    });
    await waitFor(
      async () => {
        const { stages } = await backlogByClass(api.ctx);
        return Object.values(stages).every((c) => c.essential + c.express + c.standard === 0);
      },
      'the allocation and dispatch backlog drained',
      80_000,
    );
    expect(await settledBacklog()).toEqual({ essential: 0, express: 0, standard: 0 });
    const { waitMs, slackMs } = await promiseOffset('standard');
    expect(waitMs).toBeGreaterThanOrEqual(-1);
    expect(waitMs).toBeLessThanOrEqual(slackMs + 1);
  }, 100_000);

  it('promises without the wait when Redis is away, at once', async () => {
    // An API process on the same database (so the same carrier and its transit), its Redis at a closed port.
    const down = await startTestServer(db.database, {
      role: 'api',
      env: { REDIS_URL: 'redis://127.0.0.1:6390' },
    });
    try {
      const now = new Date();
      const started = Date.now();
      const region = orderBody().shippingAddress.region;
      const promised = await promiseFor(down.ctx, { now, priority: 'standard', region, restockEta: null });
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(promised.getTime()).toBe(now.getTime() + TRANSIT_HOURS * HOUR);
      // A restock's ETA still moves it, as without Redis before.
      const restockEta = new Date(now.getTime() + 5 * HOUR);
      const backordered = await promiseFor(down.ctx, { now, priority: 'standard', region, restockEta });
      expect(backordered.getTime()).toBe(restockEta.getTime() + TRANSIT_HOURS * HOUR);
    } finally {
      await down.close();
    }
  });
});
