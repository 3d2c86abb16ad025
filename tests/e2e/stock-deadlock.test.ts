/**
 * Concurrency on shared rows, where PostgreSQL's row locks make it matter (PGlite runs one
 * transaction at a time; the file runs there too, as a functional check):
 *   - 40 orders listing the same SKUs in opposite orders ([A, B, C, D] vs [D, C, B, A] …),
 *     allocated by WORKER_CONCURRENCY=8 (and, on PostgreSQL, a second worker process): stock rows
 *     are locked in one order (src/db/stock.ts byLockOrder), so no transaction waits on another in
 *     a cycle — no 40P01 in any log — every order ends dispatched, or failed out_of_stock where a
 *     scarce SKU ran out by design, and onHand / reserved add up;
 *   - duplicate `delivered` and `in_transit` events for one parcel fired at once: the order row
 *     lock makes them apply in turn, so the order ends `delivered` with one `delivered` event.
 */
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocations, orderEvents, orders } from '../../src/db/schema.js';
import { signCarrierBody, type CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { createLogger } from '../../src/logger.js';
import {
  admin,
  getOrder,
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
} from '../helpers/fixtures.js';
import {
  ADMIN_TOKEN,
  REDIS_URL,
  startTestServer,
  testDatabase,
  usesServer,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { killAll, spawnSurgeline, type SurgelineProcess } from '../helpers/worker-process.js';

const SECRET = 'deadlock-carrier-secret';
const WAREHOUSE = 'wh-lock';
const SKUS = ['LOCK-A', 'LOCK-B', 'LOCK-C', 'LOCK-D'];
const SCARCE = 'LOCK-SCARCE';
const PLENTY = 1_000;
const SCARCE_STOCK = 6;
const ORDERS = 40;
/** Orders that also want one SCARCE unit: more than there are, so some fail out_of_stock by design. */
const WANT_SCARCE = 12;

/** The i-th order's lines: the SKUs forwards or backwards, rotated, quantities 1–3. */
function linesOf(i: number): { sku: string; quantity: number }[] {
  const rotated = [...SKUS.slice(i % SKUS.length), ...SKUS.slice(0, i % SKUS.length)];
  const ordered = i % 2 === 0 ? rotated : rotated.reverse();
  const lines = ordered.map((sku, k) => ({ sku, quantity: 1 + ((i + k) % 3) }));
  // The scarce SKU first for half of them, last for the others.
  if (i < WANT_SCARCE)
    return i % 2 === 0 ? [{ sku: SCARCE, quantity: 1 }, ...lines] : [...lines, { sku: SCARCE, quantity: 1 }];
  return lines;
}

describe('stock reservations under concurrency', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { apiKey: string };
  let second: SurgelineProcess | undefined;
  const log: string[] = [];
  const ids: string[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    const capture = createLogger('warn', { write: (line: string) => void log.push(line) });
    server = await startTestServer(db.database, {
      env: { WORKER_CONCURRENCY: '8', ...(db.url ? { DATABASE_URL: db.url } : {}) },
      overrides: { log: capture },
    });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'lock-carrier',
      webhookSecret: SECRET,
      eventsBaseUrl: server.url,
      progress: false,
    });
    shop = await seedShopWithStock(server.app, {
      warehouseId: WAREHOUSE,
      stock: { ...Object.fromEntries(SKUS.map((s) => [s, PLENTY])), [SCARCE]: SCARCE_STOCK },
      shop: { rateLimitPerMinute: 10_000 },
    });
    if (usesServer()) {
      // A second process allocating from the same queue and database: two pools of connections.
      second = spawnSurgeline('worker', {
        DATABASE_URL: db.url!,
        REDIS_URL,
        QUEUE_PREFIX: server.config.queuePrefix,
        WORKER_QUEUES: 'allocation',
        WORKER_CONCURRENCY: '8',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        MIGRATE_ON_START: '0',
        ADMIN_TOKEN,
      });
      await waitFor(
        async () => second!.output().includes('workers started'),
        'the second worker to start',
        30_000,
      );
    }
  });

  afterAll(async () => {
    await killAll();
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  const logs = () => [...log, second?.output() ?? ''].join('\n');

  it('allocates 40 orders listing the same SKUs in opposite orders without a deadlock', async () => {
    // Held back until every order is in, so the workers take them on eight (or sixteen) at a time.
    const allocation = server.ctx.queues.byName.allocation;
    await allocation.pause();
    const answers = await Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: shopHeaders(shop.apiKey, newKey()),
          payload: orderBody({ items: linesOf(i) }),
        }),
      ),
    );
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(202);
    ids.push(...answers.map((a) => a.json().id as string));
    await allocation.resume();

    let last: { status: string }[] = [];
    const settled = await waitFor(
      async () => {
        const rows = await db.database.db
          .select({ id: orders.id, status: orders.status, failureReason: orders.failureReason })
          .from(orders)
          .where(inArray(orders.id, ids));
        last = rows;
        return rows.every((r) => r.status === 'dispatched' || r.status === 'failed') ? rows : undefined;
      },
      'every order to be dispatched or failed',
      45_000,
    ).catch((error: Error) => {
      const counts = last.reduce(
        (m: Record<string, number>, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }),
        {},
      );
      throw new Error(`${error.message}: ${JSON.stringify(counts)}; log:\n${logs().slice(-3000)}`);
    });

    const byId = new Map(settled.map((r) => [r.id, r]));
    const scarceIds = ids.slice(0, WANT_SCARCE);
    for (const id of ids.slice(WANT_SCARCE)) expect(byId.get(id)?.status, id).toBe('dispatched');
    const scarceDispatched = scarceIds.filter((id) => byId.get(id)?.status === 'dispatched');
    const scarceFailed = scarceIds.filter((id) => byId.get(id)?.status === 'failed');
    expect(scarceDispatched).toHaveLength(SCARCE_STOCK);
    expect(scarceFailed).toHaveLength(WANT_SCARCE - SCARCE_STOCK);
    for (const id of scarceFailed) expect(byId.get(id)?.failureReason).toBe('out_of_stock');

    expect(logs()).not.toContain('40P01');
    expect(logs()).not.toMatch(/deadlock/i);
    expect(logs()).not.toContain('job failed');
  });

  it('leaves onHand and reserved adding up', async () => {
    const response = await server.app.inject({
      url: `/v1/admin/inventory?warehouseId=${WAREHOUSE}`,
      headers: admin,
    });
    expect(response.statusCode).toBe(200);
    const rows = (
      response.json() as { items: { sku: string; onHand: number; reserved: number; available: number }[] }
    ).items;
    // The reservations of every attempt of these orders, by state.
    const held = await db.database.db.select().from(allocations).where(inArray(allocations.orderId, ids));
    for (const [sku, initial] of [
      ...SKUS.map((s) => [s, PLENTY] as const),
      [SCARCE, SCARCE_STOCK] as const,
    ]) {
      const row = rows.find((r) => r.sku === sku)!;
      const ofSku = held.filter((a) => a.sku === sku);
      const consumed = ofSku.filter((a) => a.state === 'consumed').reduce((n, a) => n + a.quantity, 0);
      const reserved = ofSku.filter((a) => a.state === 'reserved').reduce((n, a) => n + a.quantity, 0);
      expect({ sku, onHand: row.onHand, reserved: row.reserved, available: row.available }).toEqual({
        sku,
        onHand: initial - consumed,
        reserved,
        available: initial - consumed - reserved,
      });
      // Every order settled: nothing is left reserved, and what left the shelf is what was ordered.
      expect(reserved).toBe(0);
    }
    const ordered = (sku: string, orderIds: string[]) =>
      orderIds.reduce((n, id) => n + (linesOf(ids.indexOf(id)).find((l) => l.sku === sku)?.quantity ?? 0), 0);
    const statuses = await db.database.db
      .select({ id: orders.id, status: orders.status })
      .from(orders)
      .where(inArray(orders.id, ids));
    const shipped = statuses.filter((s) => s.status === 'dispatched').map((s) => s.id);
    for (const sku of SKUS)
      expect(rows.find((r) => r.sku === sku)!.onHand).toBe(PLENTY - ordered(sku, shipped));
    expect(rows.find((r) => r.sku === SCARCE)!.onHand).toBe(0);
  });

  it('delivers an order once when duplicate delivered and in_transit events for its parcel arrive at once', async () => {
    const dispatchedIds = (
      await db.database.db
        .select({ id: orders.id, status: orders.status })
        .from(orders)
        .where(inArray(orders.id, ids))
    )
      .filter((r) => r.status === 'dispatched')
      .map((r) => r.id)
      .slice(0, 6);
    expect(dispatchedIds).toHaveLength(6);

    const post = (body: object) => {
      const raw = JSON.stringify(body);
      return fetch(`${server.url}/v1/carriers/lock-carrier/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': signCarrierBody(raw, SECRET) },
        body: raw,
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    };

    const expected = new Map<string, string>();
    await Promise.all(
      dispatchedIds.map(async (id, n) => {
        const { trackingNumber } = (await getOrder(server.app, shop.apiKey, id)).shipments[0];
        const deliveredAt = new Date(Date.now() + 60_000).toISOString();
        const inTransitAt = new Date(Date.now() - 60_000).toISOString();
        // Half the orders get the same delivered event three times; the others three with different times.
        const deliveredAts =
          n % 2 === 0
            ? [deliveredAt, deliveredAt, deliveredAt]
            : [0, 1, 2].map((k) => new Date(Date.parse(deliveredAt) + k).toISOString());
        expected.set(id, deliveredAts.join(','));
        const answers = await Promise.all([
          ...deliveredAts.map((at) => post({ trackingNumber, status: 'delivered', at })),
          ...[0, 1, 2].map(() => post({ trackingNumber, status: 'in_transit', at: inTransitAt })),
        ]);
        for (const answer of answers) expect(answer.status, answer.text).toBeLessThan(300);
      }),
    );

    for (const id of dispatchedIds) {
      const order = await getOrder(server.app, shop.apiKey, id);
      expect(order.status, id).toBe('delivered');
      expect(order.shipments[0].status).toBe('delivered');
      const events = await db.database.db
        .select({ status: orderEvents.status })
        .from(orderEvents)
        .where(eq(orderEvents.orderId, id));
      expect(events.filter((e) => e.status === 'delivered')).toHaveLength(1);
      expect(events.filter((e) => e.status === 'in_transit').length).toBeLessThanOrEqual(1);
      // deliveredAt is the `at` of the delivered event that applied first: one of those sent.
      expect(expected.get(id)!.split(',')).toContain(order.deliveredAt);
    }
    expect(logs()).not.toContain('40P01');
  });
});
