import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orders } from '../../src/db/schema.js';
import { startCarrierSimulator, type CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  createCarrier,
  createShop,
  createWarehouse,
  newKey,
  orderBody,
  setStock,
  shopHeaders,
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
    carrier = await startCarrierSimulator({
      carrierId: 'sim-crash',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: api.url,
      latencyMs: 3000,
      progress: false,
    });
    shop = await createShop(api.app);
    await createWarehouse(api.app, 'wh-crash');
    await setStock(api.app, 'wh-crash', 'MASK-N95', 10);
    await createCarrier(api.app, {
      id: 'sim-crash',
      baseUrl: carrier.url,
      apiKey: 'carrier-key',
      webhookSecret: SECRET,
    });
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

  const statusOf = async (id: string) => {
    const [row] = await db.database.db
      .select({ status: orders.status })
      .from(orders)
      .where(eq(orders.id, id));
    return row?.status;
  };

  it('the order still completes, booked once', async () => {
    const first: SurgelineProcess = spawnSurgeline('worker', workerEnv);

    const posted = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: shopHeaders(shop.apiKey, newKey()),
      payload: orderBody({ priority: 'express' }),
    });
    expect(posted.statusCode, posted.body).toBe(202);
    const orderId: string = posted.json().id;

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

    const view = await api.app.inject({ url: `/v1/orders/${orderId}`, headers: shopHeaders(shop.apiKey) });
    const order = view.json();
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
