/**
 * A carrier may report a parcel moving before the engine has recorded the booking's answer (its
 * events carry its own `at`, taken as sent). The timeline — oldest first, by `at` — must still
 * read received → allocated → dispatched → in_transit → delivered: the order is dispatched as of
 * the call that booked its last parcel, not as of the commit that followed the answer.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARRIER_SECRET, registerScriptedCarrier } from '../helpers/carriers.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  createWarehouse,
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  setStock,
  startSimulatedCarrier,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

let serverUrl = '';

describe('a carrier that reports progress before its booking answer arrives', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  const closers: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    serverUrl = server.url;
    // Books at once but answers the booking call 600 ms later; its reports are sent by the test.
    carrier = await startSimulatedCarrier(
      server.app,
      {
        carrierId: 'eager',
        webhookSecret: 'carrier-secret-123',
        eventsBaseUrl: server.url,
        latencyMs: 600,
        progress: false,
      },
      { regions: ['shanghai-pudong'] },
    );
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-eager', stock: { 'MASK-N95': 5 } });
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
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

  it("takes a parcel's report while the order's other parcel still waits for its booking, and catches up once dispatched", async () => {
    // Split in two: the carrier books the first parcel at once and answers the second 4 s late.
    const first = new Map<string, string>();
    const split = await registerScriptedCarrier(
      server.app,
      {
        id: 'split-late',
        script: (call) => {
          if (call.method !== 'POST' || !call.orderId) return undefined;
          if (!first.has(call.orderId)) first.set(call.orderId, call.reference);
          return first.get(call.orderId) === call.reference ? { book: true } : { book: true, delayMs: 4000 };
        },
      },
      { regions: ['split-late'], rank: 1 },
    );
    closers.push(split);
    await createWarehouse(server.app, 'wh-late-a', 'split-late');
    await createWarehouse(server.app, 'wh-late-b', 'split-late');
    await setStock(server.app, 'wh-late-a', 'LATE-SKU', 2);
    await setStock(server.app, 'wh-late-b', 'LATE-SKU', 2);
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({
        shippingAddress: {
          region: 'split-late',
          line1: '1 Road',
          city: 'Wuhan',
          postalCode: '430000',
          country: 'CN',
        },
        items: [{ sku: 'LATE-SKU', quantity: 3 }],
      }),
    );
    const bookedFirst = await waitFor(async () => {
      const o = await getOrder(server.app, shop.apiKey, placed.id);
      return o.shipments.find((p: { trackingNumber: string | null }) => p.trackingNumber);
    }, 'the first parcel to be booked');
    // The order is still allocated (its second parcel's answer is seconds away): the report is taken.
    expect((await getOrder(server.app, shop.apiKey, placed.id)).status).toBe('allocated');
    expect(
      await report('split-late', bookedFirst.trackingNumber, 'in_transit', new Date().toISOString()),
    ).toBe(200);
    const order = await waitFor(
      async () => {
        const o = await getOrder(server.app, shop.apiKey, placed.id);
        return o.status === 'in_transit' ? o : undefined;
      },
      'the order to catch up to in_transit once dispatched',
      20_000,
    );
    const events = order.events as { status: string; at: string }[];
    expect(events.map((e) => e.status)).toEqual(['received', 'allocated', 'dispatched', 'in_transit']);
    const times = events.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});

/** A carrier event as a carrier sends it: signed with its webhook secret; the HTTP status. */
async function report(
  carrierId: string,
  trackingNumber: string,
  status: string,
  at: string,
): Promise<number> {
  const body = JSON.stringify({ trackingNumber, status, at });
  const signature = 'sha256=' + createHmac('sha256', CARRIER_SECRET).update(body).digest('hex');
  const response = await fetch(`${serverUrl}/v1/carriers/${carrierId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-signature': signature },
    body,
  });
  return response.status;
}
