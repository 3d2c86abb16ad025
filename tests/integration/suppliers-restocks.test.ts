import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { availableStock, backorderedDemand, inboundStock } from '../../src/db/stock.js';
import { backorderKeys } from '../../src/steps/backorders.js';
import { admin, createShop, createWarehouse, setStock } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';
import { insertAllocation, insertOrderRow } from '../helpers/stock.js';

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

interface Restock {
  id: string;
  warehouseId: string;
  sku: string;
  quantity: number;
  eta: string;
  receivedAt: string | null;
}

const HOUR = 3600_000;
const inHours = (h: number) => new Date(Date.now() + h * HOUR).toISOString();

describe('suppliers, restocks and the inventory they show in', () => {
  let db: TestDatabase;
  let server: TestServer;

  // An API process only: no worker takes the orders or the backorder requests these tests look at.
  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const post = (url: string, payload?: object) =>
    server.app.inject({ method: 'POST', url, headers: admin, ...(payload ? { payload } : {}) });
  const patch = (url: string, payload: object) =>
    server.app.inject({ method: 'PATCH', url, headers: admin, payload });
  const get = (url: string) => server.app.inject({ url, headers: admin });

  const inventoryRow = async (warehouseId: string, sku: string): Promise<InventoryItem> => {
    const response = await get(`/v1/admin/inventory?warehouseId=${warehouseId}&sku=${sku}`);
    expect(response.statusCode, response.body).toBe(200);
    const items = response.json().items as InventoryItem[];
    expect(items).toHaveLength(1);
    return items[0];
  };

  const createRestock = async (body: Record<string, unknown>): Promise<Restock> => {
    const response = await post('/v1/admin/inventory/restocks', body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  };

  /** The backorder pass's request key: cleared before, read after. */
  const requested = () => server.ctx.coord.get(backorderKeys(server.ctx).requested);
  const clearRequest = () => server.ctx.coord.del(backorderKeys(server.ctx).requested);

  describe('suppliers', () => {
    it('creates a supplier available (201), refuses its id again (409 already_exists)', async () => {
      const created = await post('/v1/admin/suppliers', { id: 'sup-acme', name: 'Acme Masks' });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json()).toEqual({ id: 'sup-acme', name: 'Acme Masks', available: true });

      const again = await post('/v1/admin/suppliers', { id: 'sup-acme', name: 'Other' });
      expectProblem(again, 409, 'already_exists');
    });

    it('validates the body: unknown field, missing name, bad id (400 validation_failed)', async () => {
      for (const body of [
        { id: 'sup-x', name: 'X', availble: true },
        { id: 'sup-x', name: 'X', available: false },
        { id: 'sup-x' },
        { id: 'sup x!', name: 'X' },
        { id: 'sup-x', name: '' },
        { id: 7, name: 'X' },
      ]) {
        const problem = expectProblem(await post('/v1/admin/suppliers', body), 400, 'validation_failed');
        expect(problem.errors?.length).toBeGreaterThan(0);
      }
      const unknownField = expectProblem(
        await post('/v1/admin/suppliers', { id: 'sup-x', name: 'X', availble: true }),
        400,
        'validation_failed',
      );
      expect(unknownField.errors?.map((e) => e.path)).toContain('body/availble');
      expect((await get('/v1/admin/suppliers')).json().items.map((s: { id: string }) => s.id)).not.toContain(
        'sup-x',
      );
    });

    it('PATCH sets available (200 with the supplier); unknown or malformed id → 404; bad body → 400', async () => {
      await post('/v1/admin/suppliers', { id: 'sup-patch', name: 'Patchy' });
      const off = await patch('/v1/admin/suppliers/sup-patch', { available: false });
      expect(off.statusCode, off.body).toBe(200);
      expect(off.json()).toEqual({ id: 'sup-patch', name: 'Patchy', available: false });

      expectProblem(await patch('/v1/admin/suppliers/sup-nobody', { available: true }), 404, 'not_found');
      expectProblem(await patch(`/v1/admin/suppliers/${'x'.repeat(300)}`, { available: true }), 404);
      for (const body of [{}, { available: 'true' }, { available: true, name: 'renamed' }]) {
        expectProblem(await patch('/v1/admin/suppliers/sup-patch', body), 400, 'validation_failed');
      }
      const list = (await get('/v1/admin/suppliers')).json().items as { id: string; available: boolean }[];
      expect(list.find((s) => s.id === 'sup-patch')).toEqual({
        id: 'sup-patch',
        name: 'Patchy',
        available: false,
      });
    });

    it('lists suppliers by id, page by page', async () => {
      for (const id of ['sup-list-1', 'sup-list-2', 'sup-list-3'])
        await post('/v1/admin/suppliers', { id, name: id });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const response = await get(`/v1/admin/suppliers?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(response.statusCode, response.body).toBe(200);
        const body = response.json() as { items: { id: string }[]; nextCursor: string | null };
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...body.items.map((s) => s.id));
        cursor = body.nextCursor;
      } while (cursor);
      expect(seen).toEqual([...seen].sort());
      expect(seen).toEqual(expect.arrayContaining(['sup-list-1', 'sup-list-2', 'sup-list-3']));
      expectProblem(await get('/v1/admin/suppliers?limit=0'), 400, 'validation_failed');
    });

    it('a warehouse naming no supplier is refused (422 unknown_supplier); one naming a supplier keeps it', async () => {
      const unknown = await post('/v1/admin/warehouses', {
        id: 'wh-orphan',
        name: 'Orphan',
        region: 'shanghai-pudong',
        supplierId: 'sup-nobody',
      });
      expectProblem(unknown, 422, 'unknown_supplier');
      // Nothing was created: the id is still free.
      const free = await post('/v1/admin/warehouses', {
        id: 'wh-orphan',
        name: 'Orphan',
        region: 'shanghai-pudong',
      });
      expect(free.statusCode, free.body).toBe(201);

      await post('/v1/admin/suppliers', { id: 'sup-wh', name: 'Stocks a warehouse' });
      const made = await post('/v1/admin/warehouses', {
        id: 'wh-supplied',
        name: 'Supplied',
        region: 'shanghai-pudong',
        supplierId: 'sup-wh',
      });
      expect(made.statusCode, made.body).toBe(201);
      expect(made.json()).toEqual({
        id: 'wh-supplied',
        name: 'Supplied',
        region: 'shanghai-pudong',
        supplierId: 'sup-wh',
      });
    });

    it("an unavailable supplier's warehouse reads 0 to allocation, while inventory still shows its stock", async () => {
      await post('/v1/admin/suppliers', { id: 'sup-down', name: 'Down' });
      await post('/v1/admin/warehouses', {
        id: 'wh-sup-down',
        name: 'Of Down',
        region: 'shanghai-pudong',
        supplierId: 'sup-down',
      });
      await createWarehouse(server.app, 'wh-sup-free', 'beijing-chaoyang');
      await setStock(server.app, 'wh-sup-down', 'SUP-SKU', 40);
      await setStock(server.app, 'wh-sup-free', 'SUP-SKU', 6);

      const read = async () =>
        Object.fromEntries((await availableStock(server.ctx.db, ['SUP-SKU'])).map((s) => [s.warehouseId, s]));
      expect(await read()).toEqual({
        'wh-sup-down': {
          warehouseId: 'wh-sup-down',
          region: 'shanghai-pudong',
          sku: 'SUP-SKU',
          available: 40,
        },
        'wh-sup-free': {
          warehouseId: 'wh-sup-free',
          region: 'beijing-chaoyang',
          sku: 'SUP-SKU',
          available: 6,
        },
      });

      await clearRequest();
      expect((await patch('/v1/admin/suppliers/sup-down', { available: false })).statusCode).toBe(200);
      expect(await requested()).toBeNull(); // going unavailable brings no stock
      expect((await read())['wh-sup-down'].available).toBe(0);
      expect((await read())['wh-sup-free'].available).toBe(6);
      expect(await inventoryRow('wh-sup-down', 'SUP-SKU')).toMatchObject({
        onHand: 40,
        reserved: 0,
        available: 40,
      });

      // Marked unavailable again: nothing changed, nothing to wake.
      expect((await patch('/v1/admin/suppliers/sup-down', { available: false })).statusCode).toBe(200);
      expect(await requested()).toBeNull();

      // Back: its stock counts again and the backorder pass is asked for.
      expect((await patch('/v1/admin/suppliers/sup-down', { available: true })).statusCode).toBe(200);
      expect(await requested()).toBe('supplier back');
      expect((await read())['wh-sup-down'].available).toBe(40);

      await clearRequest();
      expect((await patch('/v1/admin/suppliers/sup-down', { available: true })).statusCode).toBe(200);
      expect(await requested()).toBeNull(); // already available: nothing arrived
    });
  });

  describe('restocks', () => {
    beforeAll(async () => {
      await createWarehouse(server.app, 'wh-rs');
      await createWarehouse(server.app, 'wh-rs-other');
    });
    beforeEach(async () => {
      await clearRequest();
    });

    it('creates a restock (201 with receivedAt null); the new SKU is known at on-hand 0 with it inbound', async () => {
      const eta = '2026-12-24T08:00:00.000Z';
      const restock = await createRestock({ warehouseId: 'wh-rs', sku: 'RS-NEW', quantity: 25, eta });
      expect(Object.keys(restock).sort()).toEqual([
        'eta',
        'id',
        'quantity',
        'receivedAt',
        'sku',
        'warehouseId',
      ]);
      expect(restock).toMatchObject({
        warehouseId: 'wh-rs',
        sku: 'RS-NEW',
        quantity: 25,
        eta,
        receivedAt: null,
      });
      expect(restock.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await inventoryRow('wh-rs', 'RS-NEW')).toEqual({
        warehouseId: 'wh-rs',
        sku: 'RS-NEW',
        onHand: 0,
        reserved: 0,
        available: 0,
        inbound: 25,
        inboundEta: eta,
        coverHours: null,
      });
      // Creating a restock brings no stock yet.
      expect(await requested()).toBeNull();
    });

    it('an ETA with an offset is kept as the same instant, written in UTC', async () => {
      const restock = await createRestock({
        warehouseId: 'wh-rs',
        sku: 'RS-TZ',
        quantity: 1,
        eta: '2026-12-24T16:00:00+08:00',
      });
      expect(restock.eta).toBe('2026-12-24T08:00:00.000Z');
    });

    it('refuses an unknown warehouse (422 unknown_warehouse) and an invalid body (400)', async () => {
      const unknown = await post('/v1/admin/inventory/restocks', {
        warehouseId: 'wh-nowhere',
        sku: 'RS-X',
        quantity: 5,
        eta: inHours(5),
      });
      expectProblem(unknown, 422, 'unknown_warehouse');
      const good = { warehouseId: 'wh-rs', sku: 'RS-BAD', quantity: 5, eta: inHours(5) };
      for (const body of [
        { ...good, quantity: 0 },
        { ...good, quantity: 1_000_001 },
        { ...good, quantity: 2.5 },
        { ...good, quantity: '5' },
        { ...good, eta: 'tomorrow' },
        { ...good, eta: '2026-12-24' },
        { ...good, received: true },
        { warehouseId: 'wh-rs', sku: 'RS-BAD', quantity: 5 },
      ]) {
        expectProblem(await post('/v1/admin/inventory/restocks', body), 400, 'validation_failed');
      }
      expect((await get('/v1/admin/inventory?sku=RS-BAD')).json().items).toEqual([]);
      // The bounds themselves are fine.
      await createRestock({ ...good, quantity: 1 });
      await createRestock({ ...good, quantity: 1_000_000 });
    });

    it('inventory shows inbound and the earliest ETA of the unreceived restocks, back to 0/null once received', async () => {
      await setStock(server.app, 'wh-rs', 'RS-IN', 3);
      await clearRequest();
      const later = inHours(30);
      const sooner = inHours(6);
      const a = await createRestock({ warehouseId: 'wh-rs', sku: 'RS-IN', quantity: 10, eta: later });
      const b = await createRestock({ warehouseId: 'wh-rs', sku: 'RS-IN', quantity: 5, eta: sooner });
      // Another warehouse's restock of the SKU, and another SKU's in this warehouse, count elsewhere.
      await createRestock({ warehouseId: 'wh-rs-other', sku: 'RS-IN', quantity: 100, eta: inHours(1) });
      await createRestock({ warehouseId: 'wh-rs', sku: 'RS-IN-2', quantity: 100, eta: inHours(1) });

      expect(await inventoryRow('wh-rs', 'RS-IN')).toMatchObject({
        onHand: 3,
        available: 3,
        inbound: 15,
        inboundEta: sooner,
      });
      const inbound = await inboundStock(server.ctx.db, ['RS-IN']);
      expect(inbound.map((r) => [r.warehouseId, r.quantity, r.eta.toISOString()])).toEqual([
        ['wh-rs-other', 100, inbound[0].eta.toISOString()],
        ['wh-rs', 5, sooner],
        ['wh-rs', 10, later],
      ]);

      const received = await post(`/v1/admin/inventory/restocks/${b.id}/receive`);
      expect(received.statusCode, received.body).toBe(200);
      const row = received.json() as Restock;
      expect(row).toMatchObject({ id: b.id, warehouseId: 'wh-rs', sku: 'RS-IN', quantity: 5, eta: sooner });
      expect(Date.parse(row.receivedAt!)).toBeGreaterThan(Date.now() - 60_000);
      expect(await requested()).toBe('restock received');
      expect(await inventoryRow('wh-rs', 'RS-IN')).toMatchObject({
        onHand: 8,
        available: 8,
        inbound: 10,
        inboundEta: later,
      });
      expect((await inboundStock(server.ctx.db, ['RS-IN'])).map((r) => r.quantity).sort()).toEqual([10, 100]);

      // A second receipt adds nothing.
      await clearRequest();
      expectProblem(await post(`/v1/admin/inventory/restocks/${b.id}/receive`), 409, 'already_received');
      expect(await requested()).toBeNull();
      expect((await inventoryRow('wh-rs', 'RS-IN')).onHand).toBe(8);

      expect((await post(`/v1/admin/inventory/restocks/${a.id}/receive`)).statusCode).toBe(200);
      expect(await inventoryRow('wh-rs', 'RS-IN')).toMatchObject({
        onHand: 18,
        inbound: 0,
        inboundEta: null,
      });
    });

    it('two receipts of one restock at once add it once', async () => {
      const r = await createRestock({ warehouseId: 'wh-rs', sku: 'RS-RACE', quantity: 7, eta: inHours(2) });
      const answers = await Promise.all(
        [1, 2, 3].map(() => post(`/v1/admin/inventory/restocks/${r.id}/receive`)),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 409, 409]);
      expect((await inventoryRow('wh-rs', 'RS-RACE')).onHand).toBe(7);
    });

    it('receiving an unknown or malformed id answers 404', async () => {
      expectProblem(await post(`/v1/admin/inventory/restocks/${randomUUID()}/receive`), 404, 'not_found');
      expectProblem(await post('/v1/admin/inventory/restocks/not-a-uuid/receive'), 404, 'not_found');
      expectProblem(await post(`/v1/admin/inventory/restocks/${'9'.repeat(300)}/receive`), 404);
      expect(await requested()).toBeNull();
    });

    it('lists restocks by warehouse, SKU and received, earliest ETA first, page by page', async () => {
      await createWarehouse(server.app, 'wh-rs-list');
      const made: Restock[] = [];
      for (const h of [9, 3, 6]) {
        made.push(
          await createRestock({ warehouseId: 'wh-rs-list', sku: 'RS-L', quantity: h, eta: inHours(h) }),
        );
      }
      await post(`/v1/admin/inventory/restocks/${made[2].id}/receive`);

      const all = (await get('/v1/admin/inventory/restocks?warehouseId=wh-rs-list&sku=RS-L')).json();
      expect(all.items.map((r: Restock) => r.quantity)).toEqual([3, 6, 9]);
      const inbound = (
        await get('/v1/admin/inventory/restocks?warehouseId=wh-rs-list&received=false')
      ).json();
      expect(inbound.items.map((r: Restock) => r.quantity)).toEqual([3, 9]);
      const done = (await get('/v1/admin/inventory/restocks?warehouseId=wh-rs-list&received=true')).json();
      expect(done.items.map((r: Restock) => r.quantity)).toEqual([6]);

      const first = (await get('/v1/admin/inventory/restocks?warehouseId=wh-rs-list&limit=2')).json();
      expect(first.items.map((r: Restock) => r.quantity)).toEqual([3, 6]);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (
        await get(`/v1/admin/inventory/restocks?warehouseId=wh-rs-list&limit=2&cursor=${first.nextCursor}`)
      ).json();
      expect(second.items.map((r: Restock) => r.quantity)).toEqual([9]);
      expect(second.nextCursor).toBeNull();

      expectProblem(await get('/v1/admin/inventory/restocks?received=yes'), 400, 'validation_failed');
      expectProblem(await get('/v1/admin/inventory/restocks?cursor=bogus'), 400, 'validation_failed');
    });

    it('PUT /v1/admin/inventory asks for the backorder pass when it raises on-hand, not when it lowers it', async () => {
      await setStock(server.app, 'wh-rs', 'RS-PUT', 5);
      expect(await requested()).toBe('on-hand raised'); // a new row at 5: raised from nothing
      await clearRequest();
      await setStock(server.app, 'wh-rs', 'RS-PUT', 2);
      expect(await requested()).toBeNull();
      await setStock(server.app, 'wh-rs', 'RS-PUT', 2);
      expect(await requested()).toBeNull();
      await setStock(server.app, 'wh-rs', 'RS-PUT', 9);
      expect(await requested()).toBe('on-hand raised');
      await clearRequest();
      await setStock(server.app, 'wh-rs', 'RS-PUT-ZERO', 0);
      expect(await requested()).toBeNull(); // listed at 0: nothing arrived
    });
  });

  describe('coverHours', () => {
    let orderId: string;
    beforeAll(async () => {
      const shop = await createShop(server.app);
      orderId = (await insertOrderRow(server.ctx.db, { shopId: shop.id, status: 'dispatched' })).id;
      await createWarehouse(server.app, 'wh-cover');
      await createWarehouse(server.app, 'wh-cover-2');
    });

    it("is available ÷ the row's units allocated in the last 60 minutes; older, released and other rows' allocations don't count", async () => {
      await setStock(server.app, 'wh-cover', 'CV-1', 30);
      const db = server.ctx.db;
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-1',
        quantity: 4,
        minutesAgo: 10,
      });
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-1',
        quantity: 8,
        minutesAgo: 58,
      });
      // Outside the hour, given back, or another row's: not this row's demand.
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-1',
        quantity: 100,
        minutesAgo: 62,
      });
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-1',
        quantity: 50,
        minutesAgo: 5,
        state: 'released',
      });
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover-2',
        sku: 'CV-1',
        quantity: 70,
        minutesAgo: 5,
      });
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-2',
        quantity: 70,
        minutesAgo: 5,
      });

      // 30 available ÷ 12 units in the hour = 2.5 hours.
      expect((await inventoryRow('wh-cover', 'CV-1')).coverHours).toBe(2.5);
      // The PUT answer carries it too: 9 ÷ 12 = 0.75.
      const put = await server.app.inject({
        method: 'PUT',
        url: '/v1/admin/inventory',
        headers: admin,
        payload: { warehouseId: 'wh-cover', sku: 'CV-1', quantity: 9 },
      });
      expect(put.json()).toMatchObject({ available: 9, coverHours: 0.75 });

      // A row with nothing allocated in the hour has no cover.
      await setStock(server.app, 'wh-cover', 'CV-IDLE', 10);
      await insertAllocation(db, {
        orderId,
        warehouseId: 'wh-cover',
        sku: 'CV-IDLE',
        quantity: 5,
        minutesAgo: 61,
      });
      expect((await inventoryRow('wh-cover', 'CV-IDLE')).coverHours).toBeNull();

      // Nothing available under demand: 0 hours.
      await setStock(server.app, 'wh-cover', 'CV-1', 0);
      expect((await inventoryRow('wh-cover', 'CV-1')).coverHours).toBe(0);

      // The list computes each row of its page.
      await setStock(server.app, 'wh-cover', 'CV-1', 30);
      const page = (await get('/v1/admin/inventory?warehouseId=wh-cover')).json().items as InventoryItem[];
      expect(Object.fromEntries(page.map((r) => [r.sku, r.coverHours]))).toEqual({
        'CV-1': 2.5,
        'CV-IDLE': null,
      });
    });
  });

  describe('backorderedDemand', () => {
    it('sums the items of backordered orders ahead: a higher class, or the same class placed before (then by id)', async () => {
      const shop = await createShop(server.app);
      const db = server.ctx.db;
      const t0 = new Date('2026-11-30T10:00:00.000Z');
      const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
      const items = (x: number, y: number, z = 0) => [
        { sku: 'BD-X', quantity: x },
        { sku: 'BD-Y', quantity: y },
        ...(z ? [{ sku: 'BD-Z', quantity: z }] : []),
      ];
      const order = (
        status: 'backordered' | 'received' | 'failed',
        priority: 'essential' | 'express' | 'standard',
        minutes: number,
        its: ReturnType<typeof items>,
        id?: string,
      ) => insertOrderRow(db, { shopId: shop.id, status, priority, createdAt: at(minutes), items: its, id });

      // Two orders placed at the same instant as the target, one with a smaller id, one larger.
      const [low, target, high] = [randomUUID(), randomUUID(), randomUUID()].sort();
      const me = await order('backordered', 'standard', 0, items(1000, 1000), target);
      await order('backordered', 'essential', 30, items(1, 0)); // higher class, later: ahead
      await order('backordered', 'express', 20, items(2, 10)); // higher class: ahead
      await order('backordered', 'standard', -5, items(4, 0, 7)); // same class, earlier: ahead
      await order('backordered', 'standard', 0, items(8, 0), low); // same instant, smaller id: ahead
      await order('backordered', 'standard', 0, items(16, 0), high); // same instant, larger id: behind
      await order('backordered', 'standard', 5, items(32, 0)); // same class, later: behind
      await order('received', 'essential', -60, items(64, 64)); // not backordered
      await order('failed', 'essential', -60, items(128, 128)); // not backordered

      const demand = await backorderedDemand(db, me, ['BD-X', 'BD-Y']);
      expect(Object.fromEntries(demand)).toEqual({ 'BD-X': 1 + 2 + 4 + 8, 'BD-Y': 10 });

      // An essential order placed first has nobody ahead of it; one placed last has the essential ones.
      const first = await order('backordered', 'essential', -120, items(256, 256));
      expect(Object.fromEntries(await backorderedDemand(db, first, ['BD-X', 'BD-Y', 'BD-Z']))).toEqual({});
      const last = await order('backordered', 'essential', 120, items(512, 0));
      expect(Object.fromEntries(await backorderedDemand(db, last, ['BD-X', 'BD-Y']))).toEqual({
        'BD-X': 256 + 1,
        'BD-Y': 256,
      });
      // A standard order placed last waits behind every backordered one but itself.
      const lastStandard = await order('backordered', 'standard', 600, items(1, 1, 1));
      expect(Object.fromEntries(await backorderedDemand(db, lastStandard, ['BD-Z', 'BD-Y']))).toEqual({
        'BD-Z': 7,
        'BD-Y': 1000 + 10 + 256,
      });
      expect(await backorderedDemand(db, lastStandard, [])).toEqual(new Map());
    });
  });
});
