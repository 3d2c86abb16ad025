import { inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
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
  deleteRedisKeys,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const SECRET = 'carrier-secret-123';
const LIFECYCLE = ['received', 'allocated', 'dispatched', 'in_transit', 'delivered'];

interface OrderView {
  id: string;
  status: string;
  events: { status: string }[];
  shipments: { id: string; status: string; carrierId: string; trackingNumber: string }[];
}

async function placeOrders(app: FastifyInstance, apiKey: string, count: number): Promise<string[]> {
  const priorities = ['essential', 'express', 'standard'];
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: shopHeaders(apiKey, newKey()),
        payload: orderBody({ priority: priorities[i % priorities.length] }),
      }),
    ),
  );
  for (const response of responses) expect(response.statusCode, response.body).toBe(202);
  return responses.map((r) => r.json().id as string);
}

/** Polls the database (the API's per-shop rate limit is not what this test is about), then reads each order once. */
async function allDelivered(server: TestServer, apiKey: string, ids: string[], timeoutMs = 25_000) {
  await waitFor(
    async () => {
      const rows = await server.ctx.db
        .select({ status: orders.status })
        .from(orders)
        .where(inArray(orders.id, ids));
      return rows.length === ids.length && rows.every((r) => r.status === 'delivered');
    },
    `${ids.length} orders to be delivered`,
    timeoutMs,
  );
  return Promise.all(
    ids.map(async (id) => {
      const response = await server.app.inject({ url: `/v1/orders/${id}`, headers: shopHeaders(apiKey) });
      expect(response.statusCode).toBe(200);
      return response.json() as OrderView;
    }),
  );
}

/** One booking per parcel at the carrier, none cancelled, none booked twice, each order's timeline walked once. */
function expectBookedOnce(carrier: CarrierSimulator, views: OrderView[]) {
  const parcels = views.flatMap((v) => v.shipments);
  expect(parcels).toHaveLength(views.length);
  expect(new Set(parcels.map((p) => p.id)).size).toBe(views.length);
  expect(carrier.bookings.size).toBe(views.length);
  expect(carrier.stats.booked).toBe(views.length); // no re-activation of a cancelled booking either
  expect(carrier.stats.cancelled).toBe(0);
  expect(new Set([...carrier.bookings.keys()])).toEqual(new Set(parcels.map((p) => p.id)));
  for (const parcel of parcels) {
    const booking = carrier.bookings.get(parcel.id);
    expect(booking?.cancelled).toBe(false);
    expect(booking?.trackingNumber).toBe(parcel.trackingNumber);
    expect(parcel.status).toBe('delivered');
  }
  for (const view of views) expect(view.events.map((e) => e.status)).toEqual(LIFECYCLE);
}

describe('Redis keys flushed while orders are mid-dispatch', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    // Booking answers take 1.5 s, so a flush lands while bookings are in flight; progress starts
    // once the answer is surely committed.
    carrier = await startCarrierSimulator({
      carrierId: 'sim-flush',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: server.url,
      latencyMs: 1500,
      progress: { inTransitAfterMs: 5000, deliveredAfterMs: 5500 },
    });
    shop = await createShop(server.app);
    await createWarehouse(server.app, 'wh-flush');
    await setStock(server.app, 'wh-flush', 'MASK-N95', 100);
    await createCarrier(server.app, {
      id: 'sim-flush',
      baseUrl: carrier.url,
      apiKey: 'carrier-key',
      webhookSecret: SECRET,
    });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  it('the reconciler finishes every order, with no double booking at the carrier', async () => {
    const ids = await placeOrders(server.app, shop.apiKey, 6);
    await waitFor(async () => carrier.stats.calls >= 1, 'the first booking call');
    const deleted = await deleteRedisKeys(server.config.queuePrefix);
    expect(deleted).toBeGreaterThan(0);

    const views = await allDelivered(server, shop.apiKey, ids);
    expectBookedOnce(carrier, views);
    // Stock left the shelf once per order: 100 - 6 × 2, nothing still reserved.
    const stock = await server.app.inject({ url: '/v1/admin/inventory?sku=MASK-N95', headers: server.admin });
    expect(stock.json().items[0]).toMatchObject({ onHand: 88, reserved: 0 });
  });
});

describe('orders accepted while no worker serves allocation, then Redis flushed', () => {
  let db: TestDatabase;
  let first: TestServer | undefined;
  let second: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    first = await startTestServer(db.database, { env: { WORKER_QUEUES: 'notification' } });
    carrier = await startCarrierSimulator({
      carrierId: 'sim-late',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: first.url,
      progress: { inTransitAfterMs: 300, deliveredAfterMs: 600 },
    });
    shop = await createShop(first.app);
    await createWarehouse(first.app, 'wh-late');
    await setStock(first.app, 'wh-late', 'MASK-N95', 100);
    await createCarrier(first.app, {
      id: 'sim-late',
      baseUrl: carrier.url,
      apiKey: 'carrier-key',
      webhookSecret: SECRET,
    });
  });

  afterAll(async () => {
    await carrier?.close();
    await first?.close();
    await second?.close();
    await db?.drop();
  });

  it('a process started later on the same database and prefix finishes every order, once', async () => {
    const ids = await placeOrders(first!.app, shop.apiKey, 5);
    // Nobody allocates: the orders wait, received, with their jobs only in Redis.
    const waiting = await first!.app.inject({
      url: '/v1/orders?status=received',
      headers: shopHeaders(shop.apiKey),
    });
    expect(waiting.statusCode).toBe(200);
    const received = waiting.json().items.map((o: { id: string }) => o.id);
    expect(received).toEqual(expect.arrayContaining(ids));
    expect(carrier.stats.calls).toBe(0);

    const prefix = first!.config.queuePrefix;
    expect(await deleteRedisKeys(prefix)).toBeGreaterThan(0);
    await first!.close();
    first = undefined;
    await deleteRedisKeys(prefix); // whatever the first process's reconciler wrote back before it stopped

    second = await startTestServer(db.database, { env: { QUEUE_PREFIX: prefix } });
    expect(second.config.queuePrefix).toBe(prefix);
    carrier.set({ eventsBaseUrl: second.url });

    const views = await allDelivered(second, shop.apiKey, ids);
    expectBookedOnce(carrier, views);
  });
});
