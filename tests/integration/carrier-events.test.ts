import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCarrierBody, type CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  createCarrier,
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const SECRET = 'carrier-events-secret-1';
const OTHER_SECRET = 'other-carrier-secret-2';

const PRIVATE = {
  customer: { name: 'Zhang Secretname', phone: '+8613912345678', email: 'zhang.secretmail@example.com' },
  shippingAddress: {
    region: 'shanghai-pudong',
    line1: '88 Hidden Lane',
    line2: 'Flat 1701',
    city: 'Privatecity',
    postalCode: '200999',
    country: 'CN',
  },
};

interface Order {
  id: string;
  status: string;
  deliveredAt: string | null;
  failureReason: string | null;
  links: { self: string; tracking: string };
  shipments: { id: string; carrierId: string; trackingNumber: string; status: string }[];
  events: { status: string; at: string; detail: string | null }[];
}

interface Parcel {
  orderId: string;
  token: string;
  trackingNumber: string;
}

describe('carrier events and the tracking page', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    carrier = await startSimulatedCarrier(
      server.app,
      { carrierId: 'ev-carrier', webhookSecret: SECRET, eventsBaseUrl: server.url, progress: false },
      { rank: 1 },
    );
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-ev', stock: { 'MASK-N95': 100 } });
    // A second carrier that never books here (it serves no region of these orders) but can post events.
    await createCarrier(server.app, {
      id: 'ev-other',
      baseUrl: 'http://127.0.0.1:9',
      webhookSecret: OTHER_SECRET,
      regions: ['nowhere'],
      rank: 2,
    });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  const readOrder = (id: string): Promise<Order> => getOrder(server.app, shop.apiKey, id);

  /** Places an order and waits until its parcel is booked and the order `dispatched`. */
  async function dispatchedOrder(): Promise<Parcel> {
    const { id, links } = (await placeOrder(server.app, shop.apiKey, orderBody(PRIVATE))) as {
      id: string;
      links: { tracking: string };
    };
    const order: Order = await waitForOrderStatus(server.app, shop.apiKey, id, 'dispatched');
    expect(order.shipments).toHaveLength(1);
    const token = new URL(links.tracking).pathname.split('/').pop()!;
    return { orderId: id, token, trackingNumber: order.shipments[0].trackingNumber };
  }

  /** Posts an event body exactly as given, signed with `secret` (or with the given signature header). */
  async function post(
    carrierId: string,
    body: unknown,
    signature: string | null | ((raw: string) => string) = SECRET,
  ) {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (typeof signature === 'function') headers['x-signature'] = signature(raw);
    else if (signature !== null) headers['x-signature'] = signCarrierBody(raw, signature);
    const response = await fetch(`${server.url}/v1/carriers/${carrierId}/events`, {
      method: 'POST',
      headers,
      body: raw,
    });
    const text = await response.text();
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', text };
  }

  function expect2xx(status: number) {
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(300);
  }

  const count = (order: Order, status: string) => order.events.filter((e) => e.status === status).length;

  let first: Parcel;

  it('refuses a bad or missing signature, an unknown carrier and a tracking number the carrier did not issue', async () => {
    first = await dispatchedOrder();
    const event = {
      trackingNumber: first.trackingNumber,
      status: 'in_transit',
      at: new Date().toISOString(),
    };

    expectProblem(await post('ev-carrier', event, 'not-the-secret'), 401);
    expectProblem(await post('ev-carrier', event, null), 401);
    expectProblem(await post('ev-carrier', event, () => 'sha256=' + '0'.repeat(64)), 401);
    expectProblem(await post('ev-carrier', event, () => 'garbage'), 401);
    // Signed over other bytes than the ones sent.
    expectProblem(
      await post('ev-carrier', event, () => signCarrierBody(JSON.stringify({ ...event, x: 1 }), SECRET)),
      401,
    );
    // The other carrier's secret is not this carrier's.
    expectProblem(await post('ev-carrier', event, OTHER_SECRET), 401);

    // An unknown carrier is a bad signature: the answer says nothing of which carrier ids exist.
    expectProblem(await post('no-such-carrier', event, SECRET), 401);
    expectProblem(await post('ev-carrier', { ...event, trackingNumber: 'EV-CARRIER-NOT-ISSUED' }), 404);
    // A tracking number issued by another carrier, correctly signed by the carrier that did not issue it.
    expectProblem(await post('ev-other', event, OTHER_SECRET), 404);

    // None of it moved the order.
    const order = await readOrder(first.orderId);
    expect(order.status).toBe('dispatched');
    expect(count(order, 'in_transit')).toBe(0);
  });

  it('rejects an invalid body with a valid signature as 400 validation_failed', async () => {
    const good = { trackingNumber: first.trackingNumber, status: 'in_transit', at: new Date().toISOString() };
    for (const body of [
      { ...good, status: 'lost' },
      { ...good, at: 'yesterday' },
      { trackingNumber: first.trackingNumber, status: 'in_transit' },
      { ...good, extra: 'field' },
      { ...good, trackingNumber: 12345 },
    ]) {
      const problem = expectProblem(await post('ev-carrier', body), 400);
      expect(problem.code).toBe('validation_failed');
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    const malformed = expectProblem(await post('ev-carrier', '{"trackingNumber": '), 400);
    expect(malformed.code).not.toBe('validation_failed');
    expect((await readOrder(first.orderId)).status).toBe('dispatched');
  });

  it('moves the order to in_transit once, however often the event is repeated', async () => {
    const status = await carrier.sendEvent(first.trackingNumber, 'in_transit');
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(300);
    let order = await readOrder(first.orderId);
    expect(order.status).toBe('in_transit');

    for (let i = 0; i < 3; i++) {
      const again = await carrier.sendEvent(first.trackingNumber, 'in_transit');
      expect(again).toBeGreaterThanOrEqual(200);
      expect(again).toBeLessThan(300);
    }
    order = await readOrder(first.orderId);
    expect(order.status).toBe('in_transit');
    expect(count(order, 'in_transit')).toBe(1);
  });

  it('records out_for_delivery and failed_attempt in the timeline while the order stays in_transit', async () => {
    const outAt = new Date(Date.now() + 1).toISOString();
    expect2xx(await carrier.sendEvent(first.trackingNumber, 'out_for_delivery', outAt));
    const failedAt = new Date(Date.now() + 2).toISOString();
    expect2xx(await carrier.sendEvent(first.trackingNumber, 'failed_attempt', failedAt));
    // A repeat adds nothing.
    expect2xx(await carrier.sendEvent(first.trackingNumber, 'failed_attempt', failedAt));

    const order = await readOrder(first.orderId);
    expect(order.status).toBe('in_transit');
    expect(order.events.find((e) => e.status === 'out_for_delivery')?.at).toBe(outAt);
    expect(order.events.find((e) => e.status === 'failed_attempt')?.at).toBe(failedAt);
    expect(count(order, 'failed_attempt')).toBe(1);
    expect(order.deliveredAt).toBeNull();
  });

  it('delivers the order with deliveredAt = the event time, and late events never move it back', async () => {
    const at = new Date(Date.now() + 5).toISOString();
    expect2xx(await carrier.sendEvent(first.trackingNumber, 'delivered', at));
    let order = await readOrder(first.orderId);
    expect(order.status).toBe('delivered');
    expect(order.deliveredAt).toBe(at);
    expect(order.events.find((e) => e.status === 'delivered')?.at).toBe(at);
    expect(order.shipments[0].status).toBe('delivered');

    for (const late of ['in_transit', 'out_for_delivery', 'failed_attempt', 'delivered']) {
      const status = await carrier.sendEvent(first.trackingNumber, late, new Date().toISOString());
      expect(`${late} → ${status >= 200 && status < 300}`).toBe(`${late} → true`);
    }
    order = await readOrder(first.orderId);
    expect(order.status).toBe('delivered');
    expect(order.deliveredAt).toBe(at);
    expect(count(order, 'in_transit')).toBe(1);
    expect(count(order, 'delivered')).toBe(1);
    expect(order.events.map((e) => e.status).slice(0, 4)).toEqual([
      'received',
      'allocated',
      'dispatched',
      'in_transit',
    ]);
    expect(order.events[order.events.length - 1].status).toBe('delivered');

    const returned = expectProblem(
      await post('ev-carrier', {
        trackingNumber: first.trackingNumber,
        status: 'returned',
        at: new Date().toISOString(),
      }),
      409,
    );
    expect(returned.code).toBe('already_delivered');
    order = await readOrder(first.orderId);
    expect(order.status).toBe('delivered');
    expect(order.failureReason).toBeNull();
  });

  it('fails an order returned before delivery with failureReason "returned"', async () => {
    const parcel = await dispatchedOrder();
    expect2xx(await carrier.sendEvent(parcel.trackingNumber, 'in_transit'));
    expect2xx(await carrier.sendEvent(parcel.trackingNumber, 'returned'));
    let order = await readOrder(parcel.orderId);
    expect(order.status).toBe('failed');
    expect(order.failureReason).toBe('returned');
    expect(count(order, 'failed')).toBe(1);

    // Neither a repeat nor a late delivery revives it.
    expect(await carrier.sendEvent(parcel.trackingNumber, 'returned')).toBeLessThan(300);
    expect(await carrier.sendEvent(parcel.trackingNumber, 'delivered')).toBeLessThan(300);
    order = await readOrder(parcel.orderId);
    expect(order.status).toBe('failed');
    expect(order.deliveredAt).toBeNull();
    expect(count(order, 'failed')).toBe(1);
  });

  it('stores a future `at` exactly as sent', async () => {
    const parcel = await dispatchedOrder();
    const inTransitAt = new Date(Date.now() + 2 * 24 * 3_600_000).toISOString();
    const deliveredAt = new Date(Date.now() + 3 * 24 * 3_600_000 + 123).toISOString();
    expect2xx(await carrier.sendEvent(parcel.trackingNumber, 'in_transit', inTransitAt));
    expect2xx(await carrier.sendEvent(parcel.trackingNumber, 'delivered', deliveredAt));
    const order = await readOrder(parcel.orderId);
    expect(order.events.find((e) => e.status === 'in_transit')?.at).toBe(inTransitAt);
    expect(order.status).toBe('delivered');
    expect(order.deliveredAt).toBe(deliveredAt);
  });

  describe('GET /v1/track/{token}', () => {
    it('shows status, promise, timeline and parcels without auth and without personal data', async () => {
      const response = await fetch(`${server.url}/v1/track/${first.token}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await response.text();
      const page = JSON.parse(text);
      const order = await readOrder(first.orderId);

      expect(page.status).toBe('delivered');
      expect(page.promisedBy).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(page.deliveredAt).toBe(order.deliveredAt);
      expect(page.events).toEqual(order.events.map((e) => ({ status: e.status, at: e.at })));
      expect(page.shipments).toEqual([
        {
          carrierId: 'ev-carrier',
          trackingNumber: first.trackingNumber,
          status: 'delivered',
          estimatedDeliveryAt: expect.stringMatching(/Z$/),
        },
      ]);

      const personal = [
        PRIVATE.customer.name,
        'Secretname',
        PRIVATE.customer.phone,
        PRIVATE.customer.phone.slice(3),
        PRIVATE.customer.email,
        PRIVATE.shippingAddress.line1,
        PRIVATE.shippingAddress.line2,
        PRIVATE.shippingAddress.city,
        PRIVATE.shippingAddress.postalCode,
        shop.id,
      ];
      for (const value of personal) expect(`${value}: ${text.includes(value)}`).toBe(`${value}: false`);
      for (const key of ['customer', 'shippingAddress', 'address', 'phone', 'email', 'name']) {
        expect(text).not.toContain(`"${key}"`);
      }
    });

    it('answers an unknown or malformed token with 404', async () => {
      for (const token of [
        'A'.repeat(24),
        first.token.slice(0, -1) + (first.token.endsWith('A') ? 'B' : 'A'),
        'x',
      ]) {
        const response = await fetch(`${server.url}/v1/track/${token}`);
        expect(response.status).toBe(404);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
    });

    it('follows an order that is still moving', async () => {
      const parcel = await dispatchedOrder();
      let page = await (await fetch(`${server.url}/v1/track/${parcel.token}`)).json();
      expect(page).toMatchObject({ status: 'dispatched', deliveredAt: null });
      expect(page.events.map((e: { status: string }) => e.status)).toEqual([
        'received',
        'allocated',
        'dispatched',
      ]);
      expect(page.shipments).toHaveLength(1);
      expect(page.shipments[0]).toMatchObject({
        carrierId: 'ev-carrier',
        trackingNumber: parcel.trackingNumber,
      });

      expect2xx(await carrier.sendEvent(parcel.trackingNumber, 'in_transit'));
      page = await (await fetch(`${server.url}/v1/track/${parcel.token}`)).json();
      expect(page.status).toBe('in_transit');
      expect(page.events.map((e: { status: string }) => e.status)).toContain('in_transit');
    });
  });
});
