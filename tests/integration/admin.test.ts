import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shops } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  admin,
  createShop,
  createWarehouse,
  getOrder,
  orderBody,
  placeOrder,
  setStock,
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
const CARRIER_KEY = 'carrier-api-key-do-not-leak';

interface InventoryItem {
  warehouseId: string;
  sku: string;
  onHand: number;
  reserved: number;
  available: number;
  inbound: number;
  inboundEta: string | null;
  coverHours: number | null;
}

interface CarrierItem {
  id: string;
  enabled: boolean;
  breaker: { state: string; since: string | null };
  successRate: number | null;
  [key: string]: unknown;
}

describe('operator routes (/v1/admin)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let fast: CarrierSimulator;
  let hang: CarrierSimulator;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    // Each carrier serves its own region, so which one an order meets is decided by its region.
    fast = await startSimulatedCarrier(
      server.app,
      { carrierId: 'adm-fast', webhookSecret: SECRET, apiKey: CARRIER_KEY, progress: false },
      { regions: ['shanghai-pudong'] },
    );
    hang = await startSimulatedCarrier(
      server.app,
      { carrierId: 'adm-hang', webhookSecret: SECRET, progress: false },
      { regions: ['hang-region'] },
    );
    hang.set({ hang: true });
    shop = await createShop(server.app);
    await createWarehouse(server.app, 'wh-adm');
  });

  afterAll(async () => {
    // The hanging carrier first: it drops the booking call a dispatch job is waiting on.
    await hang?.close();
    await fast?.close();
    await server?.close();
    await db?.drop();
  });

  const placeShopOrder = async (overrides: Record<string, unknown>) =>
    (await placeOrder(server.app, shop.apiKey, orderBody(overrides))).id as string;

  async function inventoryOf(query: string) {
    const response = await server.app.inject({ url: `/v1/admin/inventory?${query}`, headers: admin });
    expect(response.statusCode).toBe(200);
    return response.json() as { items: InventoryItem[]; nextCursor: string | null };
  }

  async function carrierList() {
    const response = await server.app.inject({ url: '/v1/admin/carriers?limit=100', headers: admin });
    expect(response.statusCode).toBe(200);
    return response.json() as { items: CarrierItem[]; nextCursor: string | null };
  }

  describe('admin token', () => {
    const known: { method: 'GET' | 'POST' | 'PUT' | 'PATCH'; url: string; payload?: object }[] = [
      { method: 'POST', url: '/v1/admin/shops', payload: { name: 'Sneaky' } },
      { method: 'POST', url: '/v1/admin/warehouses', payload: { name: 'W', region: 'shanghai-pudong' } },
      {
        method: 'PUT',
        url: '/v1/admin/inventory',
        payload: { warehouseId: 'wh-adm', sku: 'X', quantity: 1 },
      },
      { method: 'GET', url: '/v1/admin/inventory' },
      {
        method: 'POST',
        url: '/v1/admin/carriers',
        payload: {
          id: 'c',
          name: 'C',
          kind: 'http',
          baseUrl: 'http://x',
          webhookSecret: '12345678',
          regions: ['*'],
          rank: 1,
        },
      },
      { method: 'PATCH', url: '/v1/admin/carriers/adm-fast', payload: { enabled: false } },
      { method: 'GET', url: '/v1/admin/carriers' },
    ];

    it('is required by every documented /v1/admin route: none, a shop key or a wrong token → 401', async () => {
      const doc = (await server.app.inject({ url: '/docs/json' })).json() as {
        paths: Record<string, Record<string, unknown>>;
      };
      const documented: { method: string; url: string; payload?: object }[] = [];
      for (const [path, operations] of Object.entries(doc.paths)) {
        if (!path.startsWith('/v1/admin')) continue;
        for (const method of Object.keys(operations)) {
          if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
          documented.push({ method: method.toUpperCase(), url: path.replace(/\{[^}]+\}/g, 'x') });
        }
      }
      // The operator routes this suite knows about are all documented…
      for (const route of known) {
        const templated = route.url.replace('/adm-fast', '/x');
        expect(documented.some((d) => d.method === route.method && d.url === templated)).toBe(true);
      }
      // …and every documented one (and every known one, with a valid body) refuses a caller without the token.
      const credentials: (Record<string, string> | undefined)[] = [
        undefined,
        shopHeaders(shop.apiKey),
        { authorization: 'Bearer wrong-admin-token' },
        { authorization: admin.authorization.replace('Bearer ', 'Basic ') },
      ];
      for (const route of [...documented, ...known]) {
        for (const headers of credentials) {
          const response = await server.app.inject({
            method: route.method as 'GET',
            url: route.url,
            headers,
            ...(route.payload ? { payload: route.payload } : {}),
          });
          expect(`${route.method} ${route.url} → ${response.statusCode}`).toBe(
            `${route.method} ${route.url} → 401`,
          );
          expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/);
        }
      }
      // Nothing was changed by the refused calls.
      const carriers = await carrierList();
      expect(carriers.items.find((c) => c.id === 'adm-fast')?.enabled).toBe(true);
      expect(carriers.items.some((c) => c.id === 'c')).toBe(false);
    });
  });

  describe('shops', () => {
    it('creates a shop whose key works once shown and is stored only hashed', async () => {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/shops',
        headers: admin,
        payload: { name: 'Key Check Shop' },
      });
      expect(response.statusCode).toBe(201);
      const created = response.json() as { id: string; apiKey: string; webhookSecret: string };
      expect(created.id).toEqual(expect.any(String));
      expect(created.apiKey).toEqual(expect.any(String));
      expect(created.apiKey.length).toBeGreaterThanOrEqual(20);
      expect(created.webhookSecret).toEqual(expect.any(String));
      expect(created.webhookSecret.length).toBeGreaterThanOrEqual(16);

      const orders = await server.app.inject({ url: '/v1/orders', headers: shopHeaders(created.apiKey) });
      expect(orders.statusCode).toBe(200);
      expect(orders.json()).toEqual({ items: [], nextCursor: null });
      // A key that is almost right is not a key.
      const tampered = created.apiKey.slice(0, -1) + (created.apiKey.endsWith('A') ? 'B' : 'A');
      const refused = await server.app.inject({ url: '/v1/orders', headers: shopHeaders(tampered) });
      expectProblem(refused, 401);

      const [row] = await server.ctx.db.select().from(shops).where(eq(shops.id, created.id));
      expect(row).toBeDefined();
      expect(row.apiKeyHash).not.toBe(created.apiKey);
      for (const [column, value] of Object.entries(row)) {
        const stored = value instanceof Date ? value.toISOString() : JSON.stringify(value);
        expect(`${column}: ${stored.includes(created.apiKey)}`).toBe(`${column}: false`);
      }
    });

    it('accepts rateLimitPerMinute 1–1,000,000 only', async () => {
      for (const rateLimitPerMinute of [0, 1_000_001, -5, 1.5, '60']) {
        const response = await server.app.inject({
          method: 'POST',
          url: '/v1/admin/shops',
          headers: admin,
          payload: { name: 'Limits', rateLimitPerMinute },
        });
        const problem = expectProblem(response, 400);
        expect(problem.code).toBe('validation_failed');
        expect(problem.errors?.some((e) => e.path.includes('rateLimitPerMinute'))).toBe(true);
      }
      for (const rateLimitPerMinute of [1, 1_000_000]) {
        const response = await server.app.inject({
          method: 'POST',
          url: '/v1/admin/shops',
          headers: admin,
          payload: { name: 'Limits', rateLimitPerMinute },
        });
        expect(response.statusCode).toBe(201);
      }
    });

    it('rejects a shop without a name or with an unknown field', async () => {
      for (const payload of [{}, { name: 'X', rateLimit: 10 }]) {
        const response = await server.app.inject({
          method: 'POST',
          url: '/v1/admin/shops',
          headers: admin,
          payload,
        });
        expect(expectProblem(response, 400).code).toBe('validation_failed');
      }
    });
  });

  describe('warehouses', () => {
    it('creates one with a chosen id, one with a generated id, and refuses a duplicate id', async () => {
      const chosen = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/warehouses',
        headers: admin,
        payload: { id: 'wh-chosen', name: 'Chosen', region: 'beijing-chaoyang' },
      });
      expect(chosen.statusCode).toBe(201);
      expect(chosen.json()).toMatchObject({ id: 'wh-chosen', name: 'Chosen', region: 'beijing-chaoyang' });

      const generated = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/warehouses',
        headers: admin,
        payload: { name: 'Generated', region: 'beijing-chaoyang' },
      });
      expect(generated.statusCode).toBe(201);
      const generatedId = generated.json().id;
      expect(generatedId).toEqual(expect.any(String));
      expect(generatedId.length).toBeGreaterThan(0);
      // The generated id is a real warehouse: stock can be put in it.
      await setStock(server.app, generatedId, 'ADM-GEN', 1);
      expect((await inventoryOf(`warehouseId=${encodeURIComponent(generatedId)}`)).items).toHaveLength(1);

      const duplicate = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/warehouses',
        headers: admin,
        payload: { id: 'wh-chosen', name: 'Again', region: 'shanghai-pudong' },
      });
      expectProblem(duplicate, 409);
    });
  });

  describe('inventory', () => {
    it('sets on-hand stock and refuses an unknown warehouse with 422', async () => {
      const response = await server.app.inject({
        method: 'PUT',
        url: '/v1/admin/inventory',
        headers: admin,
        payload: { warehouseId: 'wh-adm', sku: 'ADM-SET', quantity: 7 },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        warehouseId: 'wh-adm',
        sku: 'ADM-SET',
        onHand: 7,
        reserved: 0,
        available: 7,
      });

      const unknown = await server.app.inject({
        method: 'PUT',
        url: '/v1/admin/inventory',
        headers: admin,
        payload: { warehouseId: 'wh-nowhere', sku: 'ADM-SET', quantity: 7 },
      });
      expectProblem(unknown, 422);
      expect((await inventoryOf('warehouseId=wh-nowhere')).items).toEqual([]);

      for (const quantity of [-1, 2.5, '3']) {
        const invalid = await server.app.inject({
          method: 'PUT',
          url: '/v1/admin/inventory',
          headers: admin,
          payload: { warehouseId: 'wh-adm', sku: 'ADM-SET', quantity },
        });
        expect(expectProblem(invalid, 400).code).toBe('validation_failed');
      }
      expect((await inventoryOf('sku=ADM-SET')).items[0].onHand).toBe(7);
    });

    it('refuses to set on-hand below what an allocated order holds (409 below_reserved)', async () => {
      await setStock(server.app, 'wh-adm', 'ADM-HELD', 5);
      // The only carrier of this region never answers, so the order sits allocated with its stock reserved.
      const orderId = await placeShopOrder({
        items: [{ sku: 'ADM-HELD', quantity: 3 }],
        shippingAddress: { ...orderBody().shippingAddress, region: 'hang-region' },
      });
      await waitForOrderStatus(server.app, shop.apiKey, orderId, 'allocated');
      await waitFor(async () => hang.stats.calls > 0, 'the booking call to the hanging carrier');
      expect((await inventoryOf('sku=ADM-HELD')).items).toEqual([
        {
          warehouseId: 'wh-adm',
          sku: 'ADM-HELD',
          onHand: 5,
          reserved: 3,
          available: 2,
          inbound: 0,
          inboundEta: null,
          // 2 available at the 3 units allocated in the last hour.
          coverHours: 2 / 3,
        },
      ]);

      const below = await server.app.inject({
        method: 'PUT',
        url: '/v1/admin/inventory',
        headers: admin,
        payload: { warehouseId: 'wh-adm', sku: 'ADM-HELD', quantity: 2 },
      });
      expect(expectProblem(below, 409).code).toBe('below_reserved');
      expect((await inventoryOf('sku=ADM-HELD')).items[0]).toMatchObject({ onHand: 5, reserved: 3 });

      const exactly = await server.app.inject({
        method: 'PUT',
        url: '/v1/admin/inventory',
        headers: admin,
        payload: { warehouseId: 'wh-adm', sku: 'ADM-HELD', quantity: 3 },
      });
      expect(exactly.statusCode).toBe(200);
      expect((await inventoryOf('sku=ADM-HELD')).items[0]).toMatchObject({
        onHand: 3,
        reserved: 3,
        available: 0,
      });
      expect((await getOrder(server.app, shop.apiKey, orderId)).status).toBe('allocated');
    });

    it('lists stock filtered by sku and warehouse, in the contract shape, page by page', async () => {
      await createWarehouse(server.app, 'wh-list-a');
      await createWarehouse(server.app, 'wh-list-b');
      const skus = ['LIST-1', 'LIST-2', 'LIST-3', 'LIST-4', 'LIST-5'];
      for (const [i, sku] of skus.entries()) await setStock(server.app, 'wh-list-a', sku, i);
      await setStock(server.app, 'wh-list-b', 'LIST-1', 9);

      const bySku = await inventoryOf('sku=LIST-1');
      expect(bySku.nextCursor).toBeNull();
      expect(bySku.items.map((i) => i.warehouseId).sort()).toEqual(['wh-list-a', 'wh-list-b']);
      for (const item of bySku.items) {
        expect(Object.keys(item).sort()).toEqual(
          [
            'available',
            'coverHours',
            'inbound',
            'inboundEta',
            'onHand',
            'reserved',
            'sku',
            'warehouseId',
          ].sort(),
        );
        expect(item.sku).toBe('LIST-1');
        expect(item.available).toBe(item.onHand - item.reserved);
        expect(item.inbound).toBe(0);
        expect(item.inboundEta).toBeNull();
      }
      // A SKU listed at 0 is still listed.
      expect((await inventoryOf('sku=LIST-1&warehouseId=wh-list-a')).items).toEqual([
        {
          warehouseId: 'wh-list-a',
          sku: 'LIST-1',
          onHand: 0,
          reserved: 0,
          available: 0,
          inbound: 0,
          inboundEta: null,
          coverHours: null,
        },
      ]);
      expect((await inventoryOf('sku=LIST-1&warehouseId=wh-list-b')).items.map((i) => i.onHand)).toEqual([9]);
      expect((await inventoryOf('sku=NO-SUCH-SKU')).items).toEqual([]);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { items: InventoryItem[]; nextCursor: string | null } = await inventoryOf(
          `warehouseId=wh-list-a&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(page.items.length).toBeLessThanOrEqual(2);
        for (const item of page.items) expect(item.warehouseId).toBe('wh-list-a');
        seen.push(...page.items.map((i) => i.sku));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(3);
      expect(seen.sort()).toEqual(skus);

      for (const query of ['limit=0', 'limit=101', 'limit=abc', 'cursor=not-a-cursor', 'colour=red']) {
        const response = await server.app.inject({ url: `/v1/admin/inventory?${query}`, headers: admin });
        expect(`${query} → ${response.statusCode}`).toBe(`${query} → 400`);
        expect(expectProblem(response, 400).code).toBe('validation_failed');
      }
    });
  });

  describe('carriers', () => {
    const body = {
      id: 'adm-new',
      name: 'New Carrier',
      kind: 'http',
      baseUrl: 'http://127.0.0.1:9/',
      apiKey: 'new-carrier-secret-key',
      webhookSecret: 'new-carrier-webhook-secret',
      regions: ['guangzhou-tianhe', 'shenzhen-nanshan'],
      rank: 7,
      rateLimitPerSecond: 20,
      transitHours: 36,
    };

    it('registers a carrier without echoing its secrets, and refuses a duplicate id', async () => {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/carriers',
        headers: admin,
        payload: body,
      });
      expect(response.statusCode).toBe(201);
      const created = response.json();
      expect(created).toMatchObject({
        id: 'adm-new',
        name: 'New Carrier',
        kind: 'http',
        regions: body.regions,
        rank: 7,
        rateLimitPerSecond: 20,
        transitHours: 36,
      });
      expect(created).not.toHaveProperty('apiKey');
      expect(created).not.toHaveProperty('webhookSecret');
      expect(response.body).not.toContain(body.apiKey);
      expect(response.body).not.toContain(body.webhookSecret);

      const duplicate = await server.app.inject({
        method: 'POST',
        url: '/v1/admin/carriers',
        headers: admin,
        payload: { ...body, name: 'Another' },
      });
      expectProblem(duplicate, 409);
      const listed = (await carrierList()).items.find((c) => c.id === 'adm-new');
      expect(listed?.name).toBe('New Carrier');

      for (const invalid of [
        { ...body, id: 'adm-bad-kind', kind: 'ftp' },
        { ...body, id: 'adm-no-regions', regions: [] },
        { ...body, id: 'adm-bad-url', baseUrl: 'not a url' },
      ]) {
        const refused = await server.app.inject({
          method: 'POST',
          url: '/v1/admin/carriers',
          headers: admin,
          payload: invalid,
        });
        expect(expectProblem(refused, 400).code).toBe('validation_failed');
      }
    });

    it('lists carriers with enabled, breaker and a success rate that is null before any booking', async () => {
      const list = await carrierList();
      expect(list.nextCursor).toBeNull();
      const ids = list.items.map((c) => c.id);
      expect(ids).toEqual(expect.arrayContaining(['adm-fast', 'adm-hang', 'adm-new']));
      for (const carrier of list.items) {
        expect(carrier).not.toHaveProperty('apiKey');
        expect(carrier).not.toHaveProperty('webhookSecret');
        expect(carrier.enabled).toEqual(expect.any(Boolean));
        expect(['closed', 'open', 'half_open']).toContain(carrier.breaker.state);
        expect(carrier.breaker).toHaveProperty('since');
        if (carrier.breaker.since !== null) expect(carrier.breaker.since).toMatch(/Z$/);
      }
      const fresh = list.items.find((c) => c.id === 'adm-new')!;
      expect(fresh).toMatchObject({
        enabled: true,
        breaker: { state: 'closed', since: null },
        successRate: null,
      });
      const raw = (await server.app.inject({ url: '/v1/admin/carriers', headers: admin })).body;
      expect(raw).not.toContain(CARRIER_KEY);
      expect(raw).not.toContain(SECRET);
      expect(raw).not.toContain(body.apiKey);

      const paged = await server.app.inject({ url: '/v1/admin/carriers?limit=1', headers: admin });
      expect(paged.statusCode).toBe(200);
      expect(paged.json().items).toHaveLength(1);
      expect(paged.json().nextCursor).toEqual(expect.any(String));
    });

    it('reports a success rate between 0 and 1 once the carrier has booked', async () => {
      expect((await carrierList()).items.find((c) => c.id === 'adm-fast')?.successRate).toBeNull();
      await setStock(server.app, 'wh-adm', 'ADM-SHIP', 10);
      const orderId = await placeShopOrder({ items: [{ sku: 'ADM-SHIP', quantity: 1 }] });
      const order = await waitForOrderStatus(server.app, shop.apiKey, orderId, 'dispatched');
      expect(order.shipments[0]).toMatchObject({ carrierId: 'adm-fast' });
      const rate = (await carrierList()).items.find((c) => c.id === 'adm-fast')!.successRate;
      expect(typeof rate).toBe('number');
      expect(rate).toBeGreaterThan(0);
      expect(rate).toBeLessThanOrEqual(1);
    });

    it('patches a carrier: {enabled:false} → 200, unknown id → 404, empty body → 400', async () => {
      const patched = await server.app.inject({
        method: 'PATCH',
        url: '/v1/admin/carriers/adm-new',
        headers: admin,
        payload: { enabled: false },
      });
      expect(patched.statusCode).toBe(200);
      expect(patched.json()).toMatchObject({ id: 'adm-new', enabled: false, rank: 7 });
      expect(patched.json()).not.toHaveProperty('apiKey');
      expect(patched.json()).not.toHaveProperty('webhookSecret');
      expect((await carrierList()).items.find((c) => c.id === 'adm-new')?.enabled).toBe(false);

      const unknown = await server.app.inject({
        method: 'PATCH',
        url: '/v1/admin/carriers/no-such-carrier',
        headers: admin,
        payload: { enabled: false },
      });
      expectProblem(unknown, 404);

      for (const payload of [{}, { enabled: 'no' }, { colour: 'red' }]) {
        const invalid = await server.app.inject({
          method: 'PATCH',
          url: '/v1/admin/carriers/adm-new',
          headers: admin,
          payload,
        });
        expect(expectProblem(invalid, 400).code).toBe('validation_failed');
      }
      expect((await carrierList()).items.find((c) => c.id === 'adm-new')?.enabled).toBe(false);
    });

    it('never books with a disabled carrier: an order whose only carrier is disabled fails no_carrier', async () => {
      const off = await startSimulatedCarrier(
        server.app,
        { carrierId: 'adm-off', webhookSecret: SECRET, progress: false },
        { regions: ['off-region'] },
      );
      try {
        const disabled = await server.app.inject({
          method: 'PATCH',
          url: '/v1/admin/carriers/adm-off',
          headers: admin,
          payload: { enabled: false },
        });
        expect(disabled.statusCode).toBe(200);
        await setStock(server.app, 'wh-adm', 'ADM-OFF', 5);
        const orderId = await placeShopOrder({
          items: [{ sku: 'ADM-OFF', quantity: 1 }],
          shippingAddress: { ...orderBody().shippingAddress, region: 'off-region' },
        });
        const failed = await waitForOrderStatus(server.app, shop.apiKey, orderId, 'failed');
        expect(failed.failureReason).toBe('no_carrier');
        expect(off.stats.calls).toBe(0);
        expect(off.bookings.size).toBe(0);
        // The failed order gave its stock back.
        expect((await inventoryOf('sku=ADM-OFF')).items[0]).toMatchObject({
          onHand: 5,
          reserved: 0,
          available: 5,
        });
      } finally {
        await off.close();
      }
    });
  });
});
