/**
 * Reading, listing, cancelling and rating orders (the "Shops" section of the contract), on a
 * process with every worker running and three carrier simulators, one per region:
 *   - `shanghai-pudong` → sim-fast: books at once and reports in_transit then delivered;
 *   - `still-region`    → sim-still: books at once and reports nothing (orders stay dispatched);
 *   - `hang-region`     → sim-hang: never answers a booking (orders sit in allocated);
 *   - `nowhere-region`  → no carrier (orders fail no_carrier).
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { feedback } from '../../src/db/schema.js';
import {
  createShop,
  newKey,
  orderBody,
  placeOrder,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const SECRET = 'carrier-secret-123';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

type Shop = { id: string; apiKey: string; webhookSecret: string };
type Accepted = {
  id: string;
  status: string;
  priority: string;
  promisedBy: string;
  links: { self: string; tracking: string };
};

function address(region: string) {
  return { region, line1: '1 Century Avenue', city: 'Shanghai', postalCode: '200120', country: 'CN' };
}

function expectValidationError(response: LightMyRequestResponse, path: string) {
  const body = expectProblem(response, 400, 'validation_failed');
  expect(body.errors?.map((e) => e.path)).toContain(path);
}

describe('reading, listing, cancelling and rating orders', () => {
  let db: TestDatabase;
  let server: TestServer;
  let fast: CarrierSimulator;
  let still: CarrierSimulator;
  let hang: CarrierSimulator;
  let shop: Shop;
  let otherShop: Shop;
  /** An order of `shop` driven to delivered, and what intake answered for it. */
  let delivered: Accepted;
  let deliveredBody: ReturnType<typeof orderBody>;
  /** An order of `shop` that is dispatched and stays so. */
  let dispatched: Accepted;

  const get = (url: string, apiKey = shop.apiKey) => server.app.inject({ url, headers: shopHeaders(apiKey) });
  const postTo = (url: string, payload?: unknown, apiKey = shop.apiKey) =>
    server.app.inject({
      method: 'POST',
      url,
      headers: {
        ...shopHeaders(apiKey),
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });

  const place = (body: Record<string, unknown>, apiKey = shop.apiKey): Promise<Accepted> =>
    placeOrder(server.app, apiKey, body);
  const reachStatus = (id: string, status: string, apiKey = shop.apiKey) =>
    waitForOrderStatus(server.app, apiKey, id, status);

  async function stockOf(sku: string) {
    const response = await server.app.inject({
      url: `/v1/admin/inventory?sku=${sku}`,
      headers: server.admin,
    });
    expect(response.statusCode).toBe(200);
    return response.json().items[0] as { onHand: number; reserved: number; available: number };
  }

  beforeAll(async () => {
    db = await testDatabase();
    // A hung booking must keep its order in `allocated` for the whole file.
    server = await startTestServer(db.database, {
      env: { WORKER_CONCURRENCY: '32', CARRIER_TIMEOUT_MS: '60000' },
    });
    fast = await startSimulatedCarrier(
      server.app,
      {
        carrierId: 'sim-fast',
        webhookSecret: SECRET,
        apiKey: 'carrier-key',
        eventsBaseUrl: server.url,
        progress: { inTransitAfterMs: 300, deliveredAfterMs: 600 },
      },
      { regions: ['shanghai-pudong'] },
    );
    still = await startSimulatedCarrier(
      server.app,
      { carrierId: 'sim-still', webhookSecret: SECRET, eventsBaseUrl: server.url, progress: false },
      { regions: ['still-region'] },
    );
    hang = await startSimulatedCarrier(
      server.app,
      { carrierId: 'sim-hang', webhookSecret: SECRET, eventsBaseUrl: server.url, progress: false },
      { regions: ['hang-region'] },
    );
    hang.set({ hang: true });

    shop = await seedShopWithStock(server.app, {
      shop: { name: 'Reader Shop', rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-main',
      stock: { 'MASK-N95': 100_000, 'FACE-SHIELD': 100_000, 'GLOVE-L': 50 },
    });
    otherShop = await createShop(server.app, { name: 'Other Shop', rateLimitPerMinute: 100_000 });

    deliveredBody = orderBody({
      priority: 'express',
      items: [
        { sku: 'MASK-N95', quantity: 2 },
        { sku: 'FACE-SHIELD', quantity: 1 },
      ],
    });
    delivered = await place(deliveredBody);
    dispatched = await place(orderBody({ shippingAddress: address('still-region') }));
    await reachStatus(delivered.id, 'delivered');
    await reachStatus(dispatched.id, 'dispatched');
  });

  afterAll(async () => {
    // Carriers first: closing sim-hang drops the bookings it holds, so no job is left waiting.
    await Promise.all([fast?.close(), still?.close(), hang?.close()]);
    await server?.close();
    await db?.drop();
  });

  describe('GET /v1/orders/{id}', () => {
    it('shows every field of the contract for a delivered order', async () => {
      const response = await get(`/v1/orders/${delivered.id}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const order = response.json();

      for (const field of [
        'id',
        'externalId',
        'status',
        'priority',
        'promisedBy',
        'initialPromisedBy',
        'createdAt',
        'updatedAt',
        'deliveredAt',
        'failureReason',
        'links',
        'items',
        'allocations',
        'shipments',
        'events',
      ]) {
        expect(order, field).toHaveProperty(field);
      }
      expect(order).toMatchObject({
        id: delivered.id,
        externalId: deliveredBody.externalId,
        status: 'delivered',
        priority: 'express',
        promisedBy: delivered.promisedBy,
        initialPromisedBy: delivered.promisedBy,
        failureReason: null,
        links: delivered.links,
      });
      for (const field of ['promisedBy', 'initialPromisedBy', 'createdAt', 'updatedAt', 'deliveredAt']) {
        expect(order[field], field).toMatch(RFC3339_UTC);
      }
      expect(Date.parse(order.updatedAt)).toBeGreaterThanOrEqual(Date.parse(order.createdAt));
      expect(Date.parse(order.deliveredAt)).toBeGreaterThanOrEqual(Date.parse(order.createdAt));

      expect(order.items).toEqual(deliveredBody.items);

      expect(order.allocations).toHaveLength(2);
      expect(
        [...order.allocations].sort((a: { sku: string }, b: { sku: string }) => a.sku.localeCompare(b.sku)),
      ).toEqual([
        { warehouseId: 'wh-main', sku: 'FACE-SHIELD', quantity: 1 },
        { warehouseId: 'wh-main', sku: 'MASK-N95', quantity: 2 },
      ]);

      expect(order.shipments).toHaveLength(1);
      const [shipment] = order.shipments;
      const booking = fast.bookings.get(shipment.id);
      expect(booking, 'the shipment id is the carrier reference').toBeDefined();
      expect(shipment).toEqual({
        id: booking!.reference,
        carrierId: 'sim-fast',
        trackingNumber: booking!.trackingNumber,
        status: 'delivered',
        estimatedDeliveryAt: booking!.estimatedDeliveryAt,
      });
      expect(shipment.estimatedDeliveryAt).toMatch(RFC3339_UTC);

      // The full timeline, oldest first, each event { status, at, detail }.
      expect(order.events.map((e: { status: string }) => e.status)).toEqual([
        'received',
        'allocated',
        'dispatched',
        'in_transit',
        'delivered',
      ]);
      for (const event of order.events) {
        expect(Object.keys(event).sort()).toEqual(['at', 'detail', 'status']);
        expect(event.at).toMatch(RFC3339_UTC);
        expect(event.detail === null || typeof event.detail === 'string').toBe(true);
      }
      const times = order.events.map((e: { at: string }) => Date.parse(e.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(order.events.at(-1).at).toBe(order.deliveredAt);
    });

    it('shows a failed order with its failureReason and no allocations', async () => {
      const accepted = await place(orderBody({ shippingAddress: address('nowhere-region') }));
      const order = await reachStatus(accepted.id, 'failed');
      expect(order.failureReason).toBe('no_carrier');
      expect(order.deliveredAt).toBeNull();
      expect(order.allocations).toEqual([]);
      expect(order.events[0].status).toBe('received');
      expect(order.events.at(-1).status).toBe('failed');
    });

    it("answers another shop's order 404 on GET, cancel and feedback, and changes nothing", async () => {
      expectProblem(await get(`/v1/orders/${delivered.id}`, otherShop.apiKey), 404);
      expectProblem(await postTo(`/v1/orders/${dispatched.id}/cancel`, undefined, otherShop.apiKey), 404);
      expectProblem(await postTo(`/v1/orders/${delivered.id}/feedback`, { score: 1 }, otherShop.apiKey), 404);
      // A cancel of an order that could still be cancelled must not touch it either.
      const allocated = await place(orderBody({ shippingAddress: address('hang-region') }));
      await reachStatus(allocated.id, 'allocated');
      expectProblem(await postTo(`/v1/orders/${allocated.id}/cancel`, undefined, otherShop.apiKey), 404);
      expect((await get(`/v1/orders/${allocated.id}`)).json().status).toBe('allocated');
      expect(await server.ctx.db.select().from(feedback).where(eq(feedback.orderId, delivered.id))).toEqual(
        [],
      );
    });

    it('answers an unknown or malformed id 404', async () => {
      const ids = [
        randomUUID(),
        'abc',
        '..%2Fx',
        '%2E%2E%2Fx',
        `${delivered.id}x`,
        delivered.id.toUpperCase().replace(/-/g, ''),
        "1' OR '1'='1",
      ];
      for (const id of ids) {
        const encoded = id.includes('%') ? id : encodeURIComponent(id);
        expectProblem(await get(`/v1/orders/${encoded}`), 404);
        expectProblem(await postTo(`/v1/orders/${encoded}/cancel`), 404);
        expectProblem(await postTo(`/v1/orders/${encoded}/feedback`, { score: 5 }), 404);
      }
      expectProblem(await get('/v1/orders/../x'), 404);
    });

    it('requires the shop key', async () => {
      expectProblem(await server.app.inject({ url: `/v1/orders/${delivered.id}` }), 401);
      expectProblem(
        await server.app.inject({ url: `/v1/orders/${delivered.id}`, headers: server.admin }),
        401,
      );
    });
  });

  describe('GET /v1/orders', () => {
    let listShop: Shop;
    let placed: Accepted[];
    let newest: Accepted;

    beforeAll(async () => {
      listShop = await createShop(server.app, { name: 'Lister', rateLimitPerMinute: 100_000 });
      const batch = await server.app.inject({
        method: 'POST',
        url: '/v1/orders/batch',
        headers: shopHeaders(listShop.apiKey),
        payload: {
          orders: Array.from({ length: 24 }, (_, i) => ({
            idempotencyKey: newKey(),
            ...orderBody({ externalId: `L-${i}`, shippingAddress: address('nowhere-region') }),
          })),
        },
      });
      expect(batch.statusCode, batch.body).toBe(200);
      const results = batch.json().results as { status: number; id: string }[];
      expect(results.every((r) => r.status === 202)).toBe(true);
      placed = results.map((r) => ({ id: r.id }) as Accepted);
      await new Promise((resolve) => setTimeout(resolve, 5));
      newest = await place(
        orderBody({ externalId: 'L-newest', shippingAddress: address('nowhere-region') }),
        listShop.apiKey,
      );
      placed.push(newest);
    });

    async function walk(limit: number, apiKey: string) {
      const pages: { items: Record<string, string>[]; nextCursor: string | null }[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const response = await get(`/v1/orders?${query}`, apiKey);
        expect(response.statusCode, response.body).toBe(200);
        const page = response.json();
        pages.push(page);
        cursor = page.nextCursor;
        expect(pages.length).toBeLessThan(100);
      } while (cursor !== null);
      return pages;
    }

    it('lists the shop’s orders newest first, each with the listed fields', async () => {
      const response = await get('/v1/orders?limit=100', listShop.apiKey);
      expect(response.statusCode).toBe(200);
      const { items, nextCursor } = response.json();
      expect(nextCursor).toBeNull();
      expect(items).toHaveLength(25);
      expect(items[0].id).toBe(newest.id);
      expect(items[0].externalId).toBe('L-newest');
      for (const item of items) {
        expect(Object.keys(item).sort()).toEqual(
          ['createdAt', 'externalId', 'id', 'priority', 'promisedBy', 'status'].sort(),
        );
        expect(item.createdAt).toMatch(RFC3339_UTC);
        expect(item.promisedBy).toMatch(RFC3339_UTC);
        expect(item.priority).toBe('standard');
      }
      const created = items.map((i: { createdAt: string }) => Date.parse(i.createdAt));
      expect(created).toEqual([...created].sort((a, b) => b - a));
      expect(new Set(items.map((i: { id: string }) => i.id))).toEqual(new Set(placed.map((p) => p.id)));
    });

    it('walks every order exactly once with cursors, ending with nextCursor null', async () => {
      for (const limit of [7, 5, 1]) {
        const pages = await walk(limit, listShop.apiKey);
        const ids = pages.flatMap((p) => p.items.map((i) => i.id));
        expect(ids, `limit ${limit}`).toHaveLength(25);
        expect(new Set(ids).size).toBe(25);
        expect(new Set(ids)).toEqual(new Set(placed.map((p) => p.id)));
        expect(pages).toHaveLength(Math.ceil(25 / limit));
        for (const page of pages.slice(0, -1)) {
          expect(page.items).toHaveLength(limit);
          expect(typeof page.nextCursor).toBe('string');
        }
        expect(pages.at(-1)!.nextCursor).toBeNull();
        expect(pages.at(-1)!.items.length).toBeGreaterThan(0);
        const created = pages.flatMap((p) => p.items.map((i) => Date.parse(i.createdAt)));
        expect(created).toEqual([...created].sort((a, b) => b - a));
        // The same order as one big page.
        const whole = (await get('/v1/orders?limit=100', listShop.apiKey))
          .json()
          .items.map((i: { id: string }) => i.id);
        expect(ids).toEqual(whole);
      }
    });

    it('pages 20 by default', async () => {
      const first = (await get('/v1/orders', listShop.apiKey)).json();
      expect(first.items).toHaveLength(20);
      expect(typeof first.nextCursor).toBe('string');
      const second = (
        await get(`/v1/orders?cursor=${encodeURIComponent(first.nextCursor)}`, listShop.apiKey)
      ).json();
      expect(second.items).toHaveLength(5);
      expect(second.nextCursor).toBeNull();
    });

    it('accepts limit 1 and 100, and answers 0, 101, -1, 2.5 and "abc" 400', async () => {
      expect((await get('/v1/orders?limit=1', listShop.apiKey)).json().items).toHaveLength(1);
      expect((await get('/v1/orders?limit=100', listShop.apiKey)).json().items).toHaveLength(25);
      for (const limit of ['0', '101', '-1', '2.5', 'abc', '']) {
        expectValidationError(await get(`/v1/orders?limit=${limit}`, listShop.apiKey), 'query/limit');
      }
    });

    it('answers a cursor it did not issue 400', async () => {
      const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const cursors = [
        'garbage',
        '!!!',
        forged({ createdAt: 'yesterday', id: randomUUID() }),
        forged({ createdAt: new Date().toISOString(), id: "x' OR 1=1 --" }),
        forged({ createdAt: new Date().toISOString() }),
        forged([1, 2]),
        'c'.repeat(501),
      ];
      for (const cursor of cursors) {
        const response = await get(`/v1/orders?cursor=${encodeURIComponent(cursor)}`, listShop.apiKey);
        expectProblem(response, 400, 'validation_failed');
      }
    });

    it('answers an unknown status or query parameter 400', async () => {
      expectValidationError(await get('/v1/orders?status=lost', listShop.apiKey), 'query/status');
      expectProblem(await get('/v1/orders?sort=oldest', listShop.apiKey), 400, 'validation_failed');
    });

    it("never lists another shop's orders", async () => {
      const mine = (await walk(100, shop.apiKey)).flatMap((p) => p.items.map((i) => i.id));
      const theirs = new Set((await walk(100, listShop.apiKey)).flatMap((p) => p.items.map((i) => i.id)));
      expect(mine).toContain(delivered.id);
      expect(mine.some((id) => theirs.has(id))).toBe(false);
      expect(theirs.has(delivered.id)).toBe(false);
      const none = (await get('/v1/orders', otherShop.apiKey)).json();
      expect(none.items.map((i: { id: string }) => i.id)).not.toContain(delivered.id);
    });

    it('filters by ?status=', async () => {
      const filterShop = await createShop(server.app, { name: 'Filter', rateLimitPerMinute: 100_000 });
      const failed = await place(
        orderBody({ shippingAddress: address('nowhere-region') }),
        filterShop.apiKey,
      );
      const failedToo = await place(
        orderBody({ shippingAddress: address('nowhere-region') }),
        filterShop.apiKey,
      );
      const allocated = await place(
        orderBody({ shippingAddress: address('hang-region') }),
        filterShop.apiKey,
      );
      const cancelled = await place(
        orderBody({ shippingAddress: address('hang-region') }),
        filterShop.apiKey,
      );
      const shipped = await place(orderBody({ shippingAddress: address('still-region') }), filterShop.apiKey);
      await reachStatus(failed.id, 'failed', filterShop.apiKey);
      await reachStatus(failedToo.id, 'failed', filterShop.apiKey);
      await reachStatus(allocated.id, 'allocated', filterShop.apiKey);
      await reachStatus(cancelled.id, 'allocated', filterShop.apiKey);
      expect(
        (await postTo(`/v1/orders/${cancelled.id}/cancel`, undefined, filterShop.apiKey)).statusCode,
      ).toBe(200);
      await reachStatus(shipped.id, 'dispatched', filterShop.apiKey);

      const listed = async (status: string) => {
        const response = await get(`/v1/orders?status=${status}`, filterShop.apiKey);
        expect(response.statusCode, response.body).toBe(200);
        const items = response.json().items as { id: string; status: string }[];
        for (const item of items) expect(item.status).toBe(status);
        return items.map((i) => i.id);
      };
      expect(new Set(await listed('failed'))).toEqual(new Set([failed.id, failedToo.id]));
      expect(await listed('allocated')).toEqual([allocated.id]);
      expect(await listed('cancelled')).toEqual([cancelled.id]);
      expect(await listed('dispatched')).toEqual([shipped.id]);
      expect(await listed('delivered')).toEqual([]);
      expect(await listed('received')).toEqual([]);

      // With a small page the filter and the cursor work together.
      const first = (await get('/v1/orders?status=failed&limit=1', filterShop.apiKey)).json();
      expect(first.items).toHaveLength(1);
      expect(typeof first.nextCursor).toBe('string');
      const second = (
        await get(
          `/v1/orders?status=failed&limit=1&cursor=${encodeURIComponent(first.nextCursor)}`,
          filterShop.apiKey,
        )
      ).json();
      expect(second.items).toHaveLength(1);
      expect(second.nextCursor).toBeNull();
      expect(new Set([first.items[0].id, second.items[0].id])).toEqual(new Set([failed.id, failedToo.id]));
    });
  });

  describe('POST /v1/orders/{id}/cancel', () => {
    it('cancels an allocated order and returns its reserved stock', async () => {
      const before = await stockOf('GLOVE-L');
      expect(before).toMatchObject({ onHand: 50, reserved: 0, available: 50 });

      const callsBefore = hang.stats.calls;
      const accepted = await place(
        orderBody({ shippingAddress: address('hang-region'), items: [{ sku: 'GLOVE-L', quantity: 3 }] }),
      );
      const allocated = await reachStatus(accepted.id, 'allocated');
      expect(allocated.allocations).toEqual([{ warehouseId: 'wh-main', sku: 'GLOVE-L', quantity: 3 }]);
      expect(await stockOf('GLOVE-L')).toMatchObject({ onHand: 50, reserved: 3, available: 47 });
      // The booking is in flight at the hanging carrier: the order is not yet dispatched.
      await waitFor(async () => hang.stats.calls > callsBefore, 'a booking call at sim-hang');

      const response = await postTo(`/v1/orders/${accepted.id}/cancel`);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ id: accepted.id, status: 'cancelled' });

      expect(await stockOf('GLOVE-L')).toMatchObject({ onHand: 50, reserved: 0, available: 50 });
      const order = (await get(`/v1/orders/${accepted.id}`)).json();
      expect(order.status).toBe('cancelled');
      expect(order.allocations).toEqual([]);
      expect(order.events.map((e: { status: string }) => e.status)).toEqual([
        'received',
        'allocated',
        'cancelled',
      ]);

      // A second cancel, and feedback on a cancelled order, are refused.
      expectProblem(await postTo(`/v1/orders/${accepted.id}/cancel`), 409, 'not_cancellable');
      expectProblem(await postTo(`/v1/orders/${accepted.id}/feedback`, { score: 5 }), 409, 'not_delivered');
      expect(await stockOf('GLOVE-L')).toMatchObject({ onHand: 50, reserved: 0 });
    });

    it('answers a dispatched, delivered or failed order 409 not_cancellable and leaves it as it was', async () => {
      expectProblem(await postTo(`/v1/orders/${dispatched.id}/cancel`), 409, 'not_cancellable');
      expect((await get(`/v1/orders/${dispatched.id}`)).json().status).toBe('dispatched');
      expectProblem(await postTo(`/v1/orders/${delivered.id}/cancel`), 409, 'not_cancellable');
      expect((await get(`/v1/orders/${delivered.id}`)).json().status).toBe('delivered');

      const failed = await place(orderBody({ shippingAddress: address('nowhere-region') }));
      await reachStatus(failed.id, 'failed');
      expectProblem(await postTo(`/v1/orders/${failed.id}/cancel`), 409, 'not_cancellable');
      const order = (await get(`/v1/orders/${failed.id}`)).json();
      expect(order).toMatchObject({ status: 'failed', failureReason: 'no_carrier' });
      expect(order.events.map((e: { status: string }) => e.status)).not.toContain('cancelled');
    });
  });

  describe('POST /v1/orders/{id}/feedback', () => {
    it('answers an order that is not delivered 409 not_delivered', async () => {
      expectProblem(await postTo(`/v1/orders/${dispatched.id}/feedback`, { score: 4 }), 409, 'not_delivered');
      expect(await server.ctx.db.select().from(feedback).where(eq(feedback.orderId, dispatched.id))).toEqual(
        [],
      );
    });

    it('validates the score: 0, 6, "5", 4.5, missing, or an unknown field answer 400', async () => {
      const bodies: [unknown, string][] = [
        [{ score: 0 }, 'body/score'],
        [{ score: 6 }, 'body/score'],
        [{ score: '5' }, 'body/score'],
        [{ score: 4.5 }, 'body/score'],
        [{ comment: 'great' }, 'body/score'],
        [{ score: 5, rating: 5 }, 'body/rating'],
      ];
      for (const [body, path] of bodies) {
        expectValidationError(await postTo(`/v1/orders/${delivered.id}/feedback`, body), path);
      }
      expect(await server.ctx.db.select().from(feedback).where(eq(feedback.orderId, delivered.id))).toEqual(
        [],
      );
    });

    it('takes feedback once a delivered order, 201, and a second 409 feedback_exists', async () => {
      const first = await postTo(`/v1/orders/${delivered.id}/feedback`, {
        score: 5,
        comment: 'Arrived in time, thank you',
      });
      expect(first.statusCode, first.body).toBe(201);
      const second = await postTo(`/v1/orders/${delivered.id}/feedback`, { score: 1 });
      expectProblem(second, 409, 'feedback_exists');

      const rows = await server.ctx.db.select().from(feedback).where(eq(feedback.orderId, delivered.id));
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ score: 5, comment: 'Arrived in time, thank you' });
    });
  });
});
