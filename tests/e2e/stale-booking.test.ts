import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { carrierAttempts, shipments } from '../../src/db/schema.js';
import {
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  deleteRedisKeys,
  startTestServer,
  testDatabase,
  uniquePrefix,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

/**
 * A worker died in the middle of a booking call and Redis lost its job: the parcel is left
 * `booking` with a `pending` attempt, and only the reconciler knows the order is unfinished. The
 * re-routed call must take the parcel over (the dead call is long over), not skip it forever.
 */
describe('a parcel left booking by a dead worker whose job Redis lost', () => {
  let db: TestDatabase;
  let allocator: TestServer;
  let dispatcher: TestServer | undefined;
  let carrier: CarrierSimulator;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    db = await testDatabase();
    // Allocation only: the order stops at `allocated`, where the test plays the dead worker.
    allocator = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'allocation', CARRIER_TIMEOUT_MS: '1000' },
    });
    carrier = await startSimulatedCarrier(allocator.app, {
      carrierId: 'stale-sim',
      webhookSecret: 'carrier-secret-123',
      progress: false,
    });
  });

  afterAll(async () => {
    await dispatcher?.close();
    await allocator?.close();
    await carrier?.close();
    await db?.drop();
  });

  it('is booked once by the next call and the order is dispatched', async () => {
    const shop = await seedShopWithStock(allocator.app, {
      warehouseId: 'wh-stale',
      stock: { 'MASK-N95': 5 },
    });
    const { id } = await placeOrder(allocator.app, shop.apiKey, orderBody());
    await waitFor(
      async () => (await storedStatus(db.database.db, id)) === 'allocated',
      'the order to be allocated',
    );

    // The dead worker's traces: the intent it wrote 10 s ago, and no job anywhere.
    const [parcel] = await db.database.db.select().from(shipments).where(eq(shipments.orderId, id));
    await db.database.db
      .update(shipments)
      .set({ status: 'booking', carrierId: 'stale-sim' })
      .where(eq(shipments.id, parcel.id));
    await db.database.db.insert(carrierAttempts).values({
      orderId: id,
      shipmentId: parcel.id,
      carrierId: 'stale-sim',
      outcome: 'pending',
      at: new Date(Date.now() - 10_000), // past the in-flight grace (timeout + 5 s), inside the 30 s budget
    });
    await deleteRedisKeys(prefix);

    dispatcher = await startTestServer(db.database, {
      env: { QUEUE_PREFIX: prefix, WORKER_QUEUES: 'dispatch', CARRIER_TIMEOUT_MS: '1000' },
    });
    await waitFor(
      async () => (await storedStatus(db.database.db, id)) === 'dispatched',
      'the reconciler and a new call to dispatch the order',
      30_000,
    );
    const [booked] = await db.database.db.select().from(shipments).where(eq(shipments.id, parcel.id));
    expect(booked).toMatchObject({ status: 'booked', carrierId: 'stale-sim' });
    expect(carrier.bookings.size).toBe(1);
    expect(carrier.bookings.get(parcel.id)?.cancelled).toBe(false);
  });
});
