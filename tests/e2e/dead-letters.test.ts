import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrierAttempts, notifications } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  admin,
  getOrder,
  orderBody,
  placeOrder,
  seedShopWithStock,
  startSimulatedCarrier,
  storedStatus,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const SECRET = 'carrier-secret-123';
const REFUSED_REGION = 'wuhan-jiangan';

interface DeadLetter {
  orderId: string;
  shopId: string;
  failureReason: string;
  failedAt: string;
  attempts: { carrierId: string; at: string; outcome: string; detail: string | null }[];
}
interface Event {
  status: string;
  at: string;
  detail: string | null;
}

describe('dead letters and the operator retry', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carriers: CarrierSimulator[];
  let shop: { id: string; apiKey: string };
  let noCarrierId: string;
  let carrierFailedId: string;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, {
      env: {
        // Two calls per carrier before failing over (the 30 s budget holds too): a quick failure.
        DISPATCH_ATTEMPTS: '2',
        // The carriers' breakers must not open on the failures this file makes on purpose.
        BREAKER_FAILURE_THRESHOLD: '10000',
        BREAKER_MINIMUM_CALLS: '100000',
      },
    });
    carriers = [];
    for (const [carrierId, rank] of [
      ['sim-a', 1],
      ['sim-b', 2],
    ] as const) {
      carriers.push(
        await startSimulatedCarrier(
          server.app,
          {
            carrierId,
            webhookSecret: SECRET,
            apiKey: `${carrierId}-key`,
            eventsBaseUrl: server.url,
            refuseRegions: [REFUSED_REGION],
            progress: { inTransitAfterMs: 100, deliveredAfterMs: 300 },
          },
          { rank },
        ),
      );
    }
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 1_000_000 },
      warehouseId: 'wh-pudong',
      stock: { 'MASK-N95': 10 },
    });
  });

  afterAll(async () => {
    for (const carrier of carriers ?? []) await carrier.close();
    await server?.close();
    await db?.drop();
  });

  const setCarriers = (settings: Parameters<CarrierSimulator['set']>[0]) => {
    for (const carrier of carriers) carrier.set(settings);
  };

  async function deadLetters(query = '') {
    const response = await server.app.inject({ url: `/v1/admin/dead-letters${query}`, headers: admin });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { items: DeadLetter[]; nextCursor: string | null };
  }

  async function waitStored(id: string, status: string, timeoutMs = 45_000) {
    await waitFor(
      async () => (await storedStatus(db.database.db, id)) === status,
      `order ${id} to be ${status}`,
      timeoutMs,
    );
  }

  const retry = (id: string, headers: Record<string, string> = admin) =>
    server.app.inject({ method: 'POST', url: `/v1/admin/orders/${id}/retry`, headers });

  async function stock() {
    const response = await server.app.inject({ url: '/v1/admin/inventory?sku=MASK-N95', headers: admin });
    return response.json().items[0] as { onHand: number; reserved: number; available: number };
  }

  it('an order to a region every carrier refuses fails no_carrier and is listed with each refusal', async () => {
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({
        shippingAddress: {
          region: REFUSED_REGION,
          line1: '1 Zhongshan Avenue',
          city: 'Wuhan',
          postalCode: '430000',
          country: 'CN',
        },
      }),
    );
    noCarrierId = placed.id;
    await waitStored(noCarrierId, 'failed');
    const order = await getOrder(server.app, shop.apiKey, noCarrierId);
    expect(order.failureReason).toBe('no_carrier');

    const { items } = await deadLetters();
    expect(items).toHaveLength(1);
    const [letter] = items;
    expect(letter).toMatchObject({ orderId: noCarrierId, shopId: shop.id, failureReason: 'no_carrier' });
    expect(letter.failedAt).toBe(order.events.find((e: Event) => e.status === 'failed').at);
    expect(letter.attempts.map((a) => [a.carrierId, a.outcome])).toEqual([
      ['sim-a', 'refused'],
      ['sim-b', 'refused'],
    ]);
    for (const a of letter.attempts) expect(a.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The failure gave the reservation back.
    expect(await stock()).toMatchObject({ onHand: 10, reserved: 0 });
  });

  it('with every carrier down (5xx) an order fails carrier_failed and is listed with its transient calls', async () => {
    setCarriers({ failureRate: 1 });
    const placed = await placeOrder(server.app, shop.apiKey, orderBody());
    carrierFailedId = placed.id;
    await waitStored(carrierFailedId, 'failed');
    const order = await getOrder(server.app, shop.apiKey, carrierFailedId);
    expect(order.failureReason).toBe('carrier_failed');

    const { items } = await deadLetters();
    expect(items.map((i) => i.orderId)).toEqual([carrierFailedId, noCarrierId]); // newest first
    const [letter] = items;
    expect(letter).toMatchObject({ shopId: shop.id, failureReason: 'carrier_failed' });
    expect(letter.failedAt).toBe(order.events.find((e: Event) => e.status === 'failed').at);
    // DISPATCH_ATTEMPTS=2 calls at each carrier, oldest first, every one a transient failure.
    expect(letter.attempts).toHaveLength(4);
    expect(letter.attempts.every((a) => a.outcome === 'transient')).toBe(true);
    expect(letter.attempts.map((a) => a.carrierId)).toEqual(['sim-a', 'sim-a', 'sim-b', 'sim-b']);
    const times = letter.attempts.map((a) => Date.parse(a.at));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(Date.parse(letter.failedAt)).toBeGreaterThanOrEqual(times[times.length - 1]);
    expect(await stock()).toMatchObject({ onHand: 10, reserved: 0 });
  });

  it('pages newest first with limit and cursor, and refuses a cursor it did not issue', async () => {
    const first = await deadLetters('?limit=1');
    expect(first.items.map((i) => i.orderId)).toEqual([carrierFailedId]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await deadLetters(`?limit=1&cursor=${encodeURIComponent(first.nextCursor as string)}`);
    expect(second.items.map((i) => i.orderId)).toEqual([noCarrierId]);
    expect(second.nextCursor).toBeNull();

    const forged = Buffer.from(JSON.stringify({ failedAt: new Date().toISOString(), id: 'x' })).toString(
      'base64url',
    );
    for (const cursor of ['garbage', forged]) {
      const response = await server.app.inject({
        url: `/v1/admin/dead-letters?cursor=${cursor}`,
        headers: admin,
      });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().code).toBe('validation_failed');
    }
    const outOfRange = await server.app.inject({ url: '/v1/admin/dead-letters?limit=0', headers: admin });
    expect(outOfRange.statusCode).toBe(400);
  });

  it('shows a call still pending (its worker died mid-call) as a timeout', async () => {
    // A worker killed during a booking call leaves its attempt row `pending`: written here directly.
    const [call] = await db.database.db
      .select()
      .from(carrierAttempts)
      .where(and(eq(carrierAttempts.orderId, noCarrierId), eq(carrierAttempts.carrierId, 'sim-b')));
    await db.database.db
      .update(carrierAttempts)
      .set({ outcome: 'pending', httpStatus: null, detail: null })
      .where(eq(carrierAttempts.id, call.id));
    const { items } = await deadLetters();
    const letter = items.find((i) => i.orderId === noCarrierId) as DeadLetter;
    expect(letter.attempts.map((a) => [a.carrierId, a.outcome, a.detail])).toEqual([
      ['sim-a', 'refused', expect.any(String)],
      ['sim-b', 'timeout', null],
    ]);
  });

  it('once the carriers recover, a retry runs attempt 2 through to delivered and takes the order off the list', async () => {
    setCarriers({ failureRate: 0 });
    const before = await getOrder(server.app, shop.apiKey, carrierFailedId);

    const response = await retry(carrierFailedId);
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json()).toEqual({ id: carrierFailedId, status: 'received', attempt: 2 });

    // Off the dead-letter list at once; the other dead letter stays.
    expect((await deadLetters()).items.map((i) => i.orderId)).toEqual([noCarrierId]);

    await waitStored(carrierFailedId, 'delivered');
    const order = await getOrder(server.app, shop.apiKey, carrierFailedId);
    expect(order.failureReason).toBeNull();
    expect(order.deliveredAt).toMatch(/Z$/);
    expect(order.initialPromisedBy).toBe(before.initialPromisedBy);
    expect(Date.parse(order.promisedBy)).toBeGreaterThanOrEqual(Date.parse(before.promisedBy));
    // Every event of both attempts, oldest first.
    expect(order.events.map((e: Event) => e.status)).toEqual([
      'received',
      'allocated',
      'failed',
      'retried',
      'received',
      'allocated',
      'dispatched',
      'in_transit',
      'delivered',
    ]);
    const times = order.events.map((e: Event) => Date.parse(e.at));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    // The parcel and stock of attempt 2: reserved again, consumed once.
    expect(order.shipments).toHaveLength(1);
    expect(order.shipments[0]).toMatchObject({ carrierId: 'sim-a', status: 'delivered' });
    expect(order.allocations).toEqual([{ warehouseId: 'wh-pudong', sku: 'MASK-N95', quantity: 2 }]);
    expect(await stock()).toMatchObject({ onHand: 8, reserved: 0, available: 8 });
    const bookings = carriers.flatMap((c) => [...c.bookings.values()]);
    expect(bookings).toHaveLength(1);
    expect(bookings[0]).toMatchObject({ reference: order.shipments[0].id, bookCalls: 1, cancelled: false });

    // The new attempt is told like any status change, under keys that carry the attempt.
    const keys = await waitFor(async () => {
      const rows = await db.database.db
        .select({ attempt: notifications.attempt, status: notifications.status, body: notifications.body })
        .from(notifications)
        .where(and(eq(notifications.orderId, carrierFailedId), eq(notifications.channel, 'sms')));
      const found = rows.map(
        (r) => `${r.attempt} ${r.status} ${(r.body as { idempotencyKey: string }).idempotencyKey}`,
      );
      return found.some((k) => k.startsWith('2 delivered')) ? found : undefined;
    }, 'the sms of attempt 2');
    expect(keys).toEqual(
      expect.arrayContaining([
        `1 received ${carrierFailedId}:received:sms`,
        `1 failed ${carrierFailedId}:failed:sms`,
        `2 retried ${carrierFailedId}:2:retried:sms`,
        `2 received ${carrierFailedId}:2:received:sms`,
        `2 delivered ${carrierFailedId}:2:delivered:sms`,
      ]),
    );
  });

  it('answers 409 not_failed for an order that is not failed', async () => {
    const response = await retry(carrierFailedId);
    expect(response.statusCode, response.body).toBe(409);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().code).toBe('not_failed');
    expect((await getOrder(server.app, shop.apiKey, carrierFailedId)).status).toBe('delivered');
  });

  it('answers 404 for a malformed or unknown id', async () => {
    for (const id of ['not-a-uuid', randomUUID()]) {
      const response = await retry(id);
      expect(response.statusCode, response.body).toBe(404);
      expect(response.json().code).toBe('not_found');
    }
  });

  it('needs the admin token', async () => {
    const callers: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token' },
      { authorization: `Bearer ${shop.apiKey}` },
    ];
    for (const headers of callers) {
      const list = await server.app.inject({ url: '/v1/admin/dead-letters', headers });
      expect(list.statusCode).toBe(401);
      const response = await retry(noCarrierId, headers);
      expect(response.statusCode).toBe(401);
    }
    expect(await storedStatus(db.database.db, noCarrierId)).toBe('failed');
  });

  it('documents both routes in the OpenAPI document', async () => {
    const doc = (await server.app.inject({ url: '/docs/json' })).json();
    expect(doc.paths['/v1/admin/dead-letters'].get).toBeDefined();
    expect(doc.paths['/v1/admin/orders/{id}/retry'].post.summary).toMatch(/202/);
  });
});
