import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  allStoredWithStatus,
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
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
  const accepted = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      placeOrder(app, apiKey, orderBody({ priority: priorities[i % priorities.length] })),
    ),
  );
  return accepted.map((a) => a.id as string);
}

/** Polls the database (the API's per-shop rate limit is not what this test is about), then reads each order once. */
async function allDelivered(server: TestServer, apiKey: string, ids: string[], timeoutMs = 25_000) {
  await waitFor(
    () => allStoredWithStatus(server.ctx.db, ids, 'delivered'),
    `${ids.length} orders to be delivered`,
    timeoutMs,
  );
  return Promise.all(ids.map(async (id) => (await getOrder(server.app, apiKey, id)) as OrderView));
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
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'sim-flush',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: server.url,
      latencyMs: 1500,
      progress: { inTransitAfterMs: 5000, deliveredAfterMs: 5500 },
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-flush', stock: { 'MASK-N95': 100 } });
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

    // The contract gives a flushed Redis's work 60 s to be picked up again; alone this takes ~6 s,
    // but on a loaded CI machine it once took over 25 s.
    const views = await allDelivered(server, shop.apiKey, ids, 50_000);
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
    carrier = await startSimulatedCarrier(first.app, {
      carrierId: 'sim-late',
      webhookSecret: SECRET,
      apiKey: 'carrier-key',
      eventsBaseUrl: first.url,
      progress: { inTransitAfterMs: 300, deliveredAfterMs: 600 },
    });
    shop = await seedShopWithStock(first.app, { warehouseId: 'wh-late', stock: { 'MASK-N95': 100 } });
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
