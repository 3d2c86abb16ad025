import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { exitWithin, killAll, spawnSurgeline, type SurgelineProcess } from '../helpers/worker-process.js';

const SECRET = 'carrier-secret-123';

describe('a worker that dies mid-job', () => {
  let db: TestDatabase;
  let api: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  let workerEnv: Record<string, string>;

  beforeAll(async () => {
    db = await testDatabase();
    api = await startTestServer(db.database, { role: 'api', env: { DATABASE_URL: db.url! } });
    // Progress events are sent by the test once the order is dispatched (a progress run started by
    // the first booking would race the crash).
    carrier = await startSimulatedCarrier(api.app, {
      carrierId: 'sim-crash',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: api.url,
      latencyMs: 3000,
      progress: false,
    });
    shop = await seedShopWithStock(api.app, { warehouseId: 'wh-crash', stock: { 'MASK-N95': 10 } });
    workerEnv = {
      DATABASE_URL: db.url!,
      REDIS_URL,
      QUEUE_PREFIX: api.config.queuePrefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: '0',
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      ADMIN_TOKEN,
    };
  });

  afterAll(async () => {
    await killAll();
    await carrier?.close();
    await api?.close();
    await db?.drop();
  });

  const statusOf = (id: string) => storedStatus(db.database.db, id);

  it('the order still completes, booked once', async () => {
    const first: SurgelineProcess = spawnSurgeline('worker', workerEnv);

    const orderId: string = (await placeOrder(api.app, shop.apiKey, orderBody({ priority: 'express' }))).id;

    // The first worker allocated the order and is waiting for the carrier's (delayed) answer.
    await waitFor(
      async () => carrier.stats.calls >= 1,
      `the booking call (worker output: ${first.output()})`,
      30_000,
    );
    expect(carrier.bookings.size).toBe(1);
    expect(await statusOf(orderId)).toBe('allocated');

    first.kill('SIGKILL');
    expect(await exitWithin(first, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await statusOf(orderId)).toBe('allocated'); // the answer never reached it
    carrier.set({ latencyMs: 100 });

    const second = spawnSurgeline('worker', workerEnv);
    await waitFor(
      async () => (await statusOf(orderId)) === 'dispatched',
      `the second worker to dispatch the order (output: ${second.output()})`,
      30_000,
    );

    const [booking] = [...carrier.bookings.values()];
    expect(carrier.bookings.size).toBe(1);
    expect(carrier.stats.booked).toBe(1);
    expect(booking.bookCalls).toBeGreaterThanOrEqual(2); // the second worker asked again, under the same key
    expect(booking.cancelled).toBe(false);

    expect(await carrier.sendEvent(booking.trackingNumber, 'in_transit')).toBe(200);
    expect(await carrier.sendEvent(booking.trackingNumber, 'delivered')).toBe(200);

    const order = await getOrder(api.app, shop.apiKey, orderId);
    expect(order.status).toBe('delivered');
    const timeline = order.events.map((e: { status: string }) => e.status);
    expect(timeline).toEqual(['received', 'allocated', 'dispatched', 'in_transit', 'delivered']);
    expect(timeline.filter((s: string) => s === 'dispatched')).toHaveLength(1);
    expect(order.shipments).toHaveLength(1);
    expect(order.shipments[0]).toMatchObject({
      id: booking.reference,
      trackingNumber: booking.trackingNumber,
    });

    // The parcel's stock left the shelf once.
    const stock = await api.app.inject({ url: '/v1/admin/inventory?sku=MASK-N95', headers: api.admin });
    expect(stock.json().items[0]).toMatchObject({ onHand: 8, reserved: 0 });
  });
});
