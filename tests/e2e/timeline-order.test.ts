/**
 * A carrier may report a parcel moving before the engine has recorded the booking's answer (its
 * events carry its own `at`, taken as sent). The timeline — oldest first, by `at` — must still
 * read received → allocated → dispatched → in_transit → delivered: the order is dispatched as of
 * the call that booked its last parcel, not as of the commit that followed the answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

describe('a carrier that reports progress before its booking answer arrives', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    // Books at once but answers the booking call 600 ms later; its reports are sent by the test.
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'eager',
      webhookSecret: 'carrier-secret-123',
      eventsBaseUrl: server.url,
      latencyMs: 600,
      progress: false,
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-eager', stock: { 'MASK-N95': 5 } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  it('keeps the timeline in order, dispatched before in_transit', async () => {
    const placed = await placeOrder(server.app, shop.apiKey, orderBody());
    await waitFor(
      async () => (await getOrder(server.app, shop.apiKey, placed.id)).status === 'dispatched',
      'the order to be dispatched',
      30_000,
    );
    // The carrier says the parcel left at the moment it booked it — before its answer reached us.
    const booking = [...carrier.bookings.values()][0];
    expect(await carrier.sendEvent(booking.trackingNumber, 'in_transit', booking.bookedAt)).toBe(200);
    expect(await carrier.sendEvent(booking.trackingNumber, 'delivered')).toBe(200);
    const order = await getOrder(server.app, shop.apiKey, placed.id);
    expect(order.status).toBe('delivered');
    const events = order.events as { status: string; at: string }[];
    expect(events.map((e) => e.status)).toEqual([
      'received',
      'allocated',
      'dispatched',
      'in_transit',
      'delivered',
    ]);
    const times = events.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // The carrier's own report time is kept as sent.
    expect(events[3].at).toBe(new Date(booking.bookedAt).toISOString());
  });
});
