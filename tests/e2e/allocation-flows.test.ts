/**
 * Allocation end to end, through the HTTP API and real workers (contract: Allocation, suppliers,
 * restocks): an order no warehouse can fill alone ships as one parcel per warehouse and is
 * delivered once every parcel is; a split order whose second parcel can't be booked fails
 * `carrier_failed` with the booked parcel cancelled at its carrier and every unit back; a halted
 * supplier's warehouse counts as empty and its return allocates the waiting orders; backorders are
 * allocated highest priority first, then oldest, when the restock is received.
 *
 * Each case has its own region, SKUs and carriers, so the cases never take each other's stock.
 */
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { allocations, inventory, orderEvents, orders } from '../../src/db/schema.js';
import { registerScriptedCarrier, type ScriptedCarrier } from '../helpers/carriers.js';
import {
  admin,
  createShop,
  createWarehouse,
  getOrder,
  orderBody,
  placeOrder,
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

const HOUR = 3_600_000;
const TRANSIT_HOURS = 24;

function addressIn(region: string) {
  return { region, line1: '8 Middle Road', city: 'Shanghai', postalCode: '200000', country: 'CN' };
}

describe('allocation across warehouses and suppliers', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: { apiKey: string };
  const closers: { close(): Promise<void> }[] = [];

  const adminCall = async (method: 'POST' | 'PATCH' | 'PUT', url: string, payload?: object) => {
    const response = await server.app.inject({ method, url, headers: admin, payload });
    expect(response.statusCode, `${method} ${url}: ${response.body}`).toBeLessThan(300);
    return response.json();
  };
  const storedStatuses = async (ids: string[]) => {
    const rows = await db.database.db
      .select({ id: orders.id, status: orders.status })
      .from(orders)
      .where(inArray(orders.id, ids));
    return new Map(rows.map((r) => [r.id, r.status]));
  };
  const waitForStatuses = (ids: string[], done: (status: string) => boolean, what: string, ms = 30_000) =>
    waitFor(
      async () => {
        const statuses = await storedStatuses(ids);
        return ids.every((id) => done(statuses.get(id) ?? '')) ? statuses : undefined;
      },
      what,
      ms,
    );
  const stockOf = async (sku: string) =>
    db.database.db.select().from(inventory).where(eq(inventory.sku, sku)).orderBy(inventory.warehouseId);

  beforeAll(async () => {
    db = await testDatabase();
    // One booking call per parcel and carrier: a parcel its carrier won't book fails at once.
    server = await startTestServer(db.database, { env: { DISPATCH_ATTEMPTS: '1' } });
    shop = await createShop(server.app, { rateLimitPerMinute: 1_000_000 });
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await server?.close();
    await db?.drop();
  });

  it('splits an order no warehouse can fill alone, one parcel per warehouse, delivered once both are', async () => {
    const region = 'split-ok';
    const carrier: CarrierSimulator = await startSimulatedCarrier(
      server.app,
      {
        carrierId: 'split-ok-carrier',
        webhookSecret: 'carrier-secret-123',
        eventsBaseUrl: server.url,
        progress: { inTransitAfterMs: 150, deliveredAfterMs: 400 },
      },
      { regions: [region], rank: 1 },
    );
    closers.push(carrier);
    await createWarehouse(server.app, 'split-ok-near', region);
    await createWarehouse(server.app, 'split-ok-far', 'elsewhere');
    await setStock(server.app, 'split-ok-near', 'SPLIT-OK', 3);
    await setStock(server.app, 'split-ok-far', 'SPLIT-OK', 5);

    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region), items: [{ sku: 'SPLIT-OK', quantity: 6 }] }),
    );
    await waitForStatuses([placed.id], (s) => s === 'delivered', 'the split order to be delivered');

    const order = await getOrder(server.app, shop.apiKey, placed.id);
    // Two parcels, one per warehouse, together exactly the order, none over what its shelf had.
    const byWarehouse = new Map<string, number>();
    for (const a of order.allocations as { warehouseId: string; sku: string; quantity: number }[])
      byWarehouse.set(a.warehouseId, (byWarehouse.get(a.warehouseId) ?? 0) + a.quantity);
    expect([...byWarehouse.keys()].sort()).toEqual(['split-ok-far', 'split-ok-near']);
    expect(byWarehouse.get('split-ok-near')! + byWarehouse.get('split-ok-far')!).toBe(6);
    expect(byWarehouse.get('split-ok-near')!).toBeLessThanOrEqual(3);
    expect(byWarehouse.get('split-ok-far')!).toBeLessThanOrEqual(5);
    expect(order.shipments).toHaveLength(2);
    expect(order.shipments.every((s: { status: string }) => s.status === 'delivered')).toBe(true);
    const statuses = order.events.map((e: { status: string }) => e.status);
    expect(statuses.filter((s: string) => s === 'dispatched')).toHaveLength(1);
    expect(statuses.filter((s: string) => s === 'delivered')).toHaveLength(1);
    expect(statuses.indexOf('dispatched')).toBeLessThan(statuses.indexOf('in_transit'));
    expect(statuses.at(-1)).toBe('delivered');
    // Both parcels booked at the carrier, each once.
    const booked = [...carrier.bookings.values()].filter((b) => b.orderId === placed.id);
    expect(booked).toHaveLength(2);
    expect(booked.every((b) => b.bookCalls === 1 && !b.cancelled)).toBe(true);
    // The stock left both shelves: 8 units, 6 shipped.
    const rows = await stockOf('SPLIT-OK');
    expect(rows.reduce((sum, r) => sum + r.onHand, 0)).toBe(2);
    expect(rows.every((r) => r.reserved === 0)).toBe(true);
  });

  it('fails a split order carrier_failed when one parcel cannot be booked: the booked one is cancelled, every unit returned', async () => {
    const region = 'split-fail';
    // The first parcel of each order is booked; the second is answered 503, and with one call per
    // parcel and no other carrier, it can't be booked anywhere.
    const firstParcel = new Map<string, string>();
    const carrier: ScriptedCarrier = await registerScriptedCarrier(
      server.app,
      {
        id: 'split-fail-carrier',
        script: (call) => {
          if (call.method !== 'POST' || !call.orderId) return undefined;
          if (!firstParcel.has(call.orderId)) firstParcel.set(call.orderId, call.reference);
          return firstParcel.get(call.orderId) === call.reference ? { book: true } : { status: 503 };
        },
      },
      { regions: [region], rank: 1 },
    );
    closers.push(carrier);
    await createWarehouse(server.app, 'split-fail-a', region);
    await createWarehouse(server.app, 'split-fail-b', region);
    await setStock(server.app, 'split-fail-a', 'SPLIT-FAIL', 2);
    await setStock(server.app, 'split-fail-b', 'SPLIT-FAIL', 2);

    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region), items: [{ sku: 'SPLIT-FAIL', quantity: 4 }] }),
    );
    await waitForStatuses([placed.id], (s) => s === 'failed', 'the split order to fail');
    const order = await getOrder(server.app, shop.apiKey, placed.id);
    expect(order.failureReason).toBe('carrier_failed');
    expect(order.shipments).toHaveLength(2);

    // The parcel that was booked is cancelled at the carrier: nothing of the order stays live.
    await waitFor(
      async () => [...carrier.bookings.values()].every((b) => b.orderId !== placed.id || b.cancelled),
      'the booked parcel to be cancelled at its carrier',
    );
    const bookedThere = [...carrier.bookings.values()].filter((b) => b.orderId === placed.id);
    expect(bookedThere.length).toBeGreaterThanOrEqual(1);
    expect(carrier.deletes(bookedThere[0].reference).length).toBeGreaterThanOrEqual(1);
    // Every reservation released in the failing transaction: both shelves whole again.
    expect((await stockOf('SPLIT-FAIL')).map((r) => [r.warehouseId, r.onHand, r.reserved])).toEqual([
      ['split-fail-a', 2, 0],
      ['split-fail-b', 2, 0],
    ]);
    const held = await db.database.db
      .select()
      .from(allocations)
      .where(and(eq(allocations.orderId, placed.id), eq(allocations.state, 'reserved')));
    expect(held).toEqual([]);
  });

  it("counts a halted supplier's warehouse as empty, and its return allocates the order waiting for stock", async () => {
    const region = 'supplier-halt';
    const carrier = await startSimulatedCarrier(
      server.app,
      { carrierId: 'supplier-halt-carrier', webhookSecret: 'carrier-secret-123', progress: false },
      { regions: [region], rank: 1, transitHours: TRANSIT_HOURS },
    );
    closers.push(carrier);
    await adminCall('POST', '/v1/admin/suppliers', { id: 'sup-halt', name: 'Mask Factory' });
    await adminCall('POST', '/v1/admin/warehouses', {
      id: 'halt-wh',
      name: 'Factory store',
      region,
      supplierId: 'sup-halt',
    });
    await createWarehouse(server.app, 'halt-other', region);
    await setStock(server.app, 'halt-wh', 'HALT-SKU', 10);
    await setStock(server.app, 'halt-other', 'HALT-SKU', 0);
    await adminCall('PATCH', '/v1/admin/suppliers/sup-halt', { available: false });

    // With nothing on its way, an order its halted supplier alone could fill is out of stock.
    const lost = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region), items: [{ sku: 'HALT-SKU', quantity: 2 }] }),
    );
    await waitForStatuses([lost.id], (s) => s === 'failed', 'the order to fail out of stock');
    expect((await getOrder(server.app, shop.apiKey, lost.id)).failureReason).toBe('out_of_stock');

    // With a restock on its way elsewhere, the next one waits for it…
    const eta = new Date(Date.now() + 6 * HOUR);
    await adminCall('POST', '/v1/admin/inventory/restocks', {
      warehouseId: 'halt-other',
      sku: 'HALT-SKU',
      quantity: 5,
      eta: eta.toISOString(),
    });
    const waiting = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region), items: [{ sku: 'HALT-SKU', quantity: 2 }] }),
    );
    // Promised from the restock's ETA from the start: a promise the engine can keep.
    expect(Date.parse(waiting.promisedBy)).toBe(eta.getTime() + TRANSIT_HOURS * HOUR);
    await waitForStatuses([waiting.id], (s) => s === 'backordered', 'the order to be backordered');
    const backordered = await getOrder(server.app, shop.apiKey, waiting.id);
    expect(Date.parse(backordered.promisedBy)).toBe(eta.getTime() + TRANSIT_HOURS * HOUR);
    expect(backordered.initialPromisedBy).toBe(waiting.promisedBy);

    // …and the supplier's return allocates it from the supplier's warehouse, before the restock.
    await adminCall('PATCH', '/v1/admin/suppliers/sup-halt', { available: true });
    await waitForStatuses([waiting.id], (s) => s === 'dispatched', 'the waiting order to be dispatched');
    const resumed = await getOrder(server.app, shop.apiKey, waiting.id);
    expect(resumed.allocations).toEqual([{ warehouseId: 'halt-wh', sku: 'HALT-SKU', quantity: 2 }]);
    expect(resumed.events.map((e: { status: string }) => e.status)).toEqual([
      'received',
      'backordered',
      'allocated',
      'dispatched',
    ]);
  });

  it('allocates backorders highest priority first, then oldest, when the restock is received', async () => {
    const region = 'backorders';
    const carrier = await startSimulatedCarrier(
      server.app,
      { carrierId: 'backorders-carrier', webhookSecret: 'carrier-secret-123', progress: false },
      { regions: [region], rank: 1, transitHours: TRANSIT_HOURS },
    );
    closers.push(carrier);
    await createWarehouse(server.app, 'bo-wh', region);
    await setStock(server.app, 'bo-wh', 'BO-SKU', 0);
    const eta = new Date(Date.now() + 3 * HOUR);
    const restock = await adminCall('POST', '/v1/admin/inventory/restocks', {
      warehouseId: 'bo-wh',
      sku: 'BO-SKU',
      quantity: 3,
      eta: eta.toISOString(),
    });
    expect(restock.receivedAt).toBeNull();

    // Promised from the restock's ETA: ETA + the wait ahead + transit. The wait ahead is the
    // backlog over the measured throughput: at most a few seconds here (an earlier order's job
    // may still wait for its worker), never negative.
    const expectPromisedFromEta = (promisedBy: string, what?: string) => {
      const fromEta = Date.parse(promisedBy) - (eta.getTime() + TRANSIT_HOURS * HOUR);
      expect(fromEta, what).toBeGreaterThanOrEqual(0);
      expect(fromEta, what).toBeLessThan(60_000);
    };
    // Placed in this order, one at a time: two standard, then express, then essential.
    const place = async (priority: string) => {
      const placed = await placeOrder(
        server.app,
        shop.apiKey,
        orderBody({ priority, shippingAddress: addressIn(region), items: [{ sku: 'BO-SKU', quantity: 1 }] }),
      );
      expectPromisedFromEta(placed.promisedBy);
      return placed.id as string;
    };
    const standard1 = await place('standard');
    const standard2 = await place('standard');
    const express = await place('express');
    const essential = await place('essential');
    const all = [standard1, standard2, express, essential];
    await waitForStatuses(all, (s) => s === 'backordered', 'every order to be backordered');
    for (const id of all) {
      const order = await getOrder(server.app, shop.apiKey, id);
      expectPromisedFromEta(order.promisedBy, id);
    }

    // Four orders wait for three units: the pass decides which three, by class, then age.
    await adminCall('POST', `/v1/admin/inventory/restocks/${restock.id}/receive`);
    await waitForStatuses(
      all,
      (s) => s === 'dispatched' || s === 'failed',
      'every backorder to be allocated or to fail',
    );
    const statuses = await storedStatuses(all);
    expect(statuses.get(essential)).toBe('dispatched');
    expect(statuses.get(express)).toBe('dispatched');
    expect(statuses.get(standard1)).toBe('dispatched');
    // The youngest standard order is the one left without stock: it never overtook the older one.
    expect(statuses.get(standard2)).toBe('failed');
    expect((await getOrder(server.app, shop.apiKey, standard2)).failureReason).toBe('out_of_stock');

    // Allocated in class order, then age order.
    const allocatedAt = new Map<string, number>();
    const events = await db.database.db
      .select()
      .from(orderEvents)
      .where(and(inArray(orderEvents.orderId, all), eq(orderEvents.status, 'allocated')));
    for (const e of events) allocatedAt.set(e.orderId, e.id);
    expect(allocatedAt.get(essential)!).toBeLessThan(allocatedAt.get(express)!);
    expect(allocatedAt.get(express)!).toBeLessThan(allocatedAt.get(standard1)!);
    expect((await stockOf('BO-SKU')).map((r) => [r.onHand, r.reserved])).toEqual([[0, 0]]);
  });
});
