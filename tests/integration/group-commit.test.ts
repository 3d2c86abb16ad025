/**
 * Group-commit intake (README: INTAKE_BATCH_MS / INTAKE_BATCH_SIZE): concurrent POST /v1/orders
 * are taken in together — fewer batches than requests, each answered with its own result once
 * its batch committed — and the contract's idempotency and validation hold inside one batch as
 * between requests one after another: one key twice → one order (202 + 200, or 202 + 409); an
 * unknown SKU fails only its own request. Committed orders are enqueued (allocation and the
 * `received` messages). The promise reads the carriers from the process's cache, which a carrier
 * created through the API refreshes at once. A batch request whose orders share a key across
 * two batches still answers them in request order.
 *
 * The process runs as `api` only, so jobs stay in their queues and orders stay `received`.
 */
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailable } from '../../src/api/plugins/errors.js';
import { findShopByKeyId } from '../../src/db/shops.js';
import { orders, shops } from '../../src/db/schema.js';
import { intakeMany, type NewOrder } from '../../src/steps/intake.js';
import { createCarrier, newKey, orderBody, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const HOUR = 3_600_000;

describe('group-commit intake', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    // A wide window, so that requests sent together surely share a batch on a loaded machine.
    server = await startTestServer(db.database, {
      role: 'api',
      env: { INTAKE_BATCH_MS: '50', INTAKE_BATCH_SIZE: '100' },
    });
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-group',
      stock: { 'MASK-N95': 100_000 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const post = (body: unknown, key = newKey()) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(shop.apiKey, key), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const ordersWithKey = async (key: string) =>
    (await server.ctx.db.select({ n: count() }).from(orders).where(eq(orders.idempotencyKey, key)))[0].n;
  const batches = () => server.app.intakeBatcher.stats.batches;

  it('takes concurrent requests in fewer batches than requests, each answered with its own order, all enqueued', async () => {
    const N = 40;
    const before = batches();
    const keys = Array.from({ length: N }, () => newKey());
    const responses = await Promise.all(keys.map((key) => post(orderBody(), key)));
    expect(responses.map((r) => r.statusCode)).toEqual(keys.map(() => 202));
    const ids = responses.map((r) => r.json().id as string);
    expect(new Set(ids).size).toBe(N);
    const used = batches() - before;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThan(N);

    // Each answer is its own committed order, under its own key.
    for (const [i, key] of keys.entries()) {
      const [row] = await server.ctx.db.select().from(orders).where(eq(orders.id, ids[i]));
      expect(row).toMatchObject({ idempotencyKey: key, status: 'received', shopId: shop.id });
    }
    // Enqueued after the commit: an allocation job per order, and the `received` messages.
    const allocation = server.ctx.queues.byName.allocation;
    for (const order of responses.map((r) => r.json()))
      expect(await allocation.getJob(`allocation-${order.id}-1`), order.id).toBeDefined();
    const sms = await server.ctx.queues.notification.sms.getJobCounts();
    expect(Object.values(sms).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(N);
  });

  it('answers two requests with one key and one body in one batch with one order: one 202, one 200', async () => {
    const key = newKey();
    const body = orderBody();
    const before = batches();
    const [a, b] = await Promise.all([post(body, key), post({ ...body }, key)]);
    expect(batches() - before).toBe(1);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 202]);
    expect(a.json().id).toBe(b.json().id);
    expect(await ordersWithKey(key)).toBe(1);
  });

  it('answers one key with two bodies in one batch with one order: one 202, one 409 idempotency_conflict', async () => {
    const key = newKey();
    const before = batches();
    const [a, b] = await Promise.all([post(orderBody(), key), post(orderBody(), key)]);
    expect(batches() - before).toBe(1);
    const [created, conflict] = a.statusCode === 202 ? [a, b] : [b, a];
    expect(created.statusCode).toBe(202);
    expectProblem(conflict, 409, 'idempotency_conflict');
    expect(await ordersWithKey(key)).toBe(1);
    const [row] = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, key));
    expect(row.id).toBe(created.json().id);
  });

  it('fails only the request with an unknown SKU (422 unknown_sku, no row); the rest of its batch commits', async () => {
    const badKey = newKey();
    const goodKeys = [newKey(), newKey(), newKey()];
    const before = batches();
    const [bad, ...good] = await Promise.all([
      post(orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }), badKey),
      ...goodKeys.map((key) => post(orderBody(), key)),
    ]);
    expect(batches() - before).toBe(1);
    const problem = expectProblem(bad, 422, 'unknown_sku');
    expect(problem.errors!.map((e) => e.path)).toContain('body/items/0/sku');
    expect(await ordersWithKey(badKey)).toBe(0);
    expect(good.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    for (const key of goodKeys) expect(await ordersWithKey(key)).toBe(1);
  });

  it('reads a shop once per SHOP_CACHE_MS per process, and still checks every key against it', async () => {
    const keyId = /^sk_(.{12})_/.exec(shop.apiKey)![1];
    expect((await post(orderBody())).statusCode).toBe(202);
    // Its key id changed behind the API's back: within the cache's time the row is not read again…
    await server.ctx.db.update(shops).set({ apiKeyId: 'moved-away-0' }).where(eq(shops.apiKeyId, keyId));
    try {
      expect((await post(orderBody())).statusCode).toBe(202);
      // …but a wrong secret for a cached key id is refused as before.
      const forged = shop.apiKey.slice(0, -4) + (shop.apiKey.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      const refused = await server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { ...shopHeaders(forged, newKey()), 'content-type': 'application/json' },
        payload: JSON.stringify(orderBody()),
      });
      expectProblem(refused, 401, 'unauthorized');
    } finally {
      await server.ctx.db.update(shops).set({ apiKeyId: keyId }).where(eq(shops.apiKeyId, 'moved-away-0'));
    }
  });

  it('commits the rest of a batch when the database refuses one of its orders, which alone fails', async () => {
    // Past the API's validation (called here directly): text with U+0000, which PostgreSQL cannot store.
    const row = await findShopByKeyId(server.ctx.db, /^sk_(.{12})_/.exec(shop.apiKey)![1]);
    const goodKeys = [newKey(), newKey()];
    const badKey = newKey();
    const outcomes = await intakeMany(
      server.ctx,
      [
        { shop: row!, idempotencyKey: goodKeys[0], body: orderBody() as NewOrder },
        { shop: row!, idempotencyKey: badKey, body: orderBody({ externalId: 'A-\u0000' }) as NewOrder },
        { shop: row!, idempotencyKey: goodKeys[1], body: orderBody() as NewOrder },
      ],
      { retryAlone: (error) => !isUnavailable(error) },
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    for (const key of goodKeys) expect(await ordersWithKey(key)).toBe(1);
    expect(await ordersWithKey(badKey)).toBe(0);
  });

  it('promises with a carrier created through the API at once (the carrier cache is refreshed)', async () => {
    const region = 'group-commit-region';
    const body = orderBody({ shippingAddress: { ...orderBody().shippingAddress, region } });
    const first = await post(body);
    const defaultHours = server.config.defaultTransitHours;
    expect(Date.parse(first.json().promisedBy) - Date.now()).toBeGreaterThan((defaultHours - 1) * HOUR);

    await createCarrier(server.app, {
      id: 'carrier-group-commit',
      baseUrl: 'http://127.0.0.1:9',
      regions: [region],
      transitHours: 3,
    });
    const second = await post(orderBody({ shippingAddress: body.shippingAddress }));
    expect(second.statusCode).toBe(202);
    const promised = Date.parse(second.json().promisedBy) - Date.now();
    expect(promised).toBeGreaterThan(2 * HOUR);
    expect(promised).toBeLessThan(3 * HOUR + 60_000);
  });
});

describe('a batch request split across group-commit batches', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    // Batches of two: a batch request of six orders spans at least three of them.
    server = await startTestServer(db.database, { role: 'api', env: { INTAKE_BATCH_SIZE: '2' } });
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-split',
      stock: { 'MASK-N95': 1000 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('answers in request order; the first of two orders with one key makes the order', async () => {
    const shared = newKey();
    const body = orderBody();
    const entries = [
      { idempotencyKey: shared, ...body },
      ...Array.from({ length: 3 }, () => ({ idempotencyKey: newKey(), ...orderBody() })),
      { idempotencyKey: newKey(), ...orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }) },
      { idempotencyKey: shared, ...body },
      { idempotencyKey: shared, ...orderBody() },
    ];
    const before = server.app.intakeBatcher.stats.batches;
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: { ...shopHeaders(shop.apiKey), 'content-type': 'application/json' },
      payload: JSON.stringify({ orders: entries }),
    });
    expect(response.statusCode, response.body).toBe(200);
    const results: { status: number; id?: string; error?: { code: string } }[] = response.json().results;
    expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202, 422, 200, 409]);
    expect(results[5].id).toBe(results[0].id);
    expect(results[4].error?.code).toBe('unknown_sku');
    expect(results[6].error?.code).toBe('idempotency_conflict');
    expect(server.app.intakeBatcher.stats.batches - before).toBeGreaterThanOrEqual(3);
    const rows = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, shared));
    expect(rows.map((r) => r.id)).toEqual([results[0].id]);
  });
});
