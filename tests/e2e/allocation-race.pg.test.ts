/**
 * No overselling, ever, across processes: the race of allocation-race.test.ts — 1,000 one-unit
 * orders posted through POST /v1/orders/batch for 100 units of one SKU in three warehouses
 * (40 + 35 + 25) — allocated by TWO separate worker processes (`npm run start:worker`'s entry,
 * WORKER_QUEUES=allocation, WORKER_CONCURRENCY=8 each) sharing one PostgreSQL database, so
 * reservations really run at once on separate connections. This process serves the API and
 * dispatch only. The inventory table is sampled every ~20 ms in one statement (one snapshot), and
 * every sample must hold: onHand ≥ 0, 0 ≤ reserved ≤ onHand, onHand + shipped = units received,
 * reserved = allocations still reserved (per warehouse and over the SKU). At the end exactly 100
 * units shipped, 100 orders booked, 900 failed out_of_stock, none allocated twice.
 *
 * Dispatch books every parcel at a simulated carrier (20–80 ms, no progress events): reservations
 * are consumed by `dispatched`, never released, so the count stays exactly 100 (see the in-process
 * file for why not no carrier or a lockdown). Notification workers don't run: their messages wait
 * in Redis instead of competing with allocation for the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  checkEndState,
  postOrders,
  RACE_ORDERS,
  RACE_UNITS,
  seedRace,
  startSampler,
  waitUntilSettled,
} from '../helpers/allocation-race.js';
import { startSimulatedCarrier } from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  startTestServer,
  usesPostgresQueues,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { killAll, spawnSurgeline, type SurgelineProcess } from '../helpers/worker-process.js';

const SKU = 'RACE-ONE';

// With the queues on PostgreSQL too, fewer orders: the race is decided in the database, which the
// postgres project runs at full size; the same invariants, without the 1,000-order wait.
const ORDERS = usesPostgresQueues() ? 300 : RACE_ORDERS;

describe('allocation race across two worker processes on PostgreSQL', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let workers: SurgelineProcess[] = [];
  let shop: { apiKey: string };
  let received: Map<string, Map<string, number>>;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, {
      env: { DATABASE_URL: db.url!, WORKER_QUEUES: 'dispatch,cancellation' },
    });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'race-carrier',
      webhookSecret: 'race-carrier-secret',
      eventsBaseUrl: server.url,
      latencyMs: { min: 20, max: 80 },
      progress: false,
    });
    ({ shop, received } = await seedRace(server.app, [SKU]));
  });

  afterAll(async () => {
    await killAll();
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  const logs = () => workers.map((w, i) => `--- worker ${i + 1}\n${w.output()}`).join('\n');

  it(`books exactly ${RACE_UNITS} one-unit orders and fails the other ${ORDERS - RACE_UNITS} out_of_stock`, async () => {
    const allocation = server.ctx.queues.byName.allocation;
    // Held back until every order is in and both workers are up, so they race from the start.
    await allocation.pause();
    workers = [1, 2].map(() =>
      spawnSurgeline('worker', {
        DATABASE_URL: db.url!,
        REDIS_URL,
        QUEUE_PREFIX: server.config.queuePrefix,
        WORKER_QUEUES: 'allocation',
        WORKER_CONCURRENCY: '8',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        MIGRATE_ON_START: '0',
        ADMIN_TOKEN,
      }),
    );
    const t0 = Date.now();
    const lines = Array.from({ length: ORDERS }, () => ({ sku: SKU, quantity: 1 }));
    const ids = await postOrders(server.app, shop.apiKey, lines);
    const posted = Date.now();
    for (const w of workers)
      await waitFor(
        async () => w.output().includes('workers started'),
        `a worker to start: ${logs()}`,
        45_000,
      );

    const sampler = startSampler(db.database.db, new Map([[SKU, received.get(SKU)!]]));
    const start = Date.now();
    await allocation.resume();
    try {
      await waitUntilSettled(db.database.db, ids, 60_000, logs);
    } finally {
      await sampler.stop();
    }
    const settled = Date.now();
    const end = await checkEndState(db.database.db, SKU, ids, lines, received.get(SKU)!);
    const withReserved = sampler.samples.filter((s) => s.rows.some((r) => r.sku === SKU && r.reserved > 0));
    console.log(
      `allocation race [postgres, 2 worker processes] ${SKU}: ${ids.length} orders posted in ${posted - t0} ms, ` +
        `settled ${settled - start} ms after release; ${sampler.samples.length} samples (reserved > 0 in ` +
        `${withReserved.length}); ${end.booked} booked, ${end.failed} failed, ${end.shippedUnits} units shipped`,
    );

    expect(sampler.broken).toEqual([]);
    expect(sampler.samples.length).toBeGreaterThanOrEqual(10);
    expect(withReserved.length, 'no sample caught a reservation in flight').toBeGreaterThan(0);
    expect(end).toMatchObject({
      booked: RACE_UNITS,
      failed: ORDERS - RACE_UNITS,
      shippedUnits: RACE_UNITS,
      left: 0,
    });
    const booked = [...carrier.bookings.values()].filter((b) => !b.cancelled);
    expect(booked).toHaveLength(end.parcels);
    // Neither process hit the database's oversell guard, nor gave up on a job.
    expect(logs()).not.toContain('inventory_reserved_within_on_hand');
    expect(logs()).not.toContain('job failed for good');
  }, 120_000);
});
