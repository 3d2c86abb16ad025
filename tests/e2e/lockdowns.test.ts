/**
 * Region lockdowns end to end, through the API and real workers: orders to a locked region go
 * `on_hold` (told to the customer, no stock reserved), other regions flow; a lift (DELETE, or
 * `until` passing with no request arriving) resumes the held orders essential, express, standard,
 * oldest first, and they are delivered. An order held keeping its reservation (as dispatch holds)
 * goes back to `allocated` with its dispatch job, also when held twice in one attempt.
 */
import { and, asc, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { liftLockdown } from '../../src/db/lockdowns.js';
import { findOrder } from '../../src/db/orders.js';
import { allocations, notifications, orderEvents } from '../../src/db/schema.js';
import type { TimelineStatus } from '../../src/domain/status.js';
import { holdIfLocked } from '../../src/steps/lockdown.js';
import {
  admin,
  allStoredWithStatus,
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

function addressIn(region: string) {
  return { region, line1: '1 Jiefang Road', city: 'Wuhan', postalCode: '430000', country: 'CN' };
}

async function lock(server: TestServer, region: string, body: Record<string, unknown>) {
  return server.app.inject({
    method: 'PUT',
    url: `/v1/admin/regions/${region}/lockdown`,
    headers: admin,
    payload: body,
  });
}

async function lift(server: TestServer, region: string) {
  return server.app.inject({ method: 'DELETE', url: `/v1/admin/regions/${region}/lockdown`, headers: admin });
}

async function eventsOf(server: TestServer, ids: string[], status: TimelineStatus) {
  return server.ctx.db
    .select()
    .from(orderEvents)
    .where(and(inArray(orderEvents.orderId, ids), eq(orderEvents.status, status)))
    .orderBy(asc(orderEvents.recordedAt), asc(orderEvents.id));
}

async function noActiveJobs(server: TestServer) {
  const counts = await Promise.all(
    (['allocation', 'dispatch'] as const).map((q) => server.ctx.queues.byName[q].getActiveCount()),
  );
  return counts.every((n) => n === 0);
}

describe('region lockdowns', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { env: { WORKER_CONCURRENCY: '1' } });
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'sim-lockdown',
      webhookSecret: SECRET,
      eventsBaseUrl: server.url,
      progress: { inTransitAfterMs: 100, deliveredAfterMs: 200 },
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-lockdown', stock: { 'MASK-N95': 1000 } });
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  it('holds orders of a locked region (told, no stock reserved), lets other regions flow, and resumes them highest priority first, oldest first, when lifted', async () => {
    const region = 'wuhan-hongshan';
    const put = await lock(server, region, { reason: 'Epidemic control in Hongshan' });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({ region, reason: 'Epidemic control in Hongshan', until: null });
    expect(put.json().since).toMatch(/Z$/);

    // Posted in this order; resumption must be essential, express, standard, oldest first in each.
    const classes = ['standard', 'express', 'essential', 'standard', 'express', 'essential'];
    const held: { id: string; priority: string }[] = [];
    for (const priority of classes) {
      const order = await placeOrder(
        server.app,
        shop.apiKey,
        orderBody({
          priority,
          shippingAddress: addressIn(region),
          items: [{ sku: 'MASK-N95', quantity: 3 }],
        }),
      );
      held.push({ id: order.id, priority });
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct createdAt
    }
    const elsewhere = await placeOrder(server.app, shop.apiKey, orderBody({ priority: 'standard' }));

    const ids = held.map((h) => h.id);
    await waitFor(() => allStoredWithStatus(server.ctx.db, ids, 'on_hold'), 'held orders on_hold');
    await waitFor(
      async () => (await storedStatus(server.ctx.db, elsewhere.id)) === 'delivered',
      'other region',
    );

    for (const { id } of held) {
      const order = await getOrder(server.app, shop.apiKey, id);
      expect(order.status).toBe('on_hold');
      expect(order.events.map((e: { status: string }) => e.status)).toEqual(['received', 'on_hold']);
      expect(order.events[1].detail).toBe('Epidemic control in Hongshan');
      expect(order.allocations).toEqual([]);
    }
    // No stock reserved for them: nothing of theirs in allocations, and only the delivered
    // order's units left the shelf.
    expect(await server.ctx.db.select().from(allocations).where(inArray(allocations.orderId, ids))).toEqual(
      [],
    );
    const inventory = await server.app.inject({ url: '/v1/admin/inventory?sku=MASK-N95', headers: admin });
    expect(inventory.json().items[0]).toMatchObject({ onHand: 998, reserved: 0 });
    // The customer is told: an outbox row per channel for each hold.
    const told = await server.ctx.db
      .select()
      .from(notifications)
      .where(and(inArray(notifications.orderId, ids), eq(notifications.status, 'on_hold')));
    expect(told).toHaveLength(ids.length * 2);

    // The job that held the last order must have finished before the lift, for a clean order.
    await waitFor(() => noActiveJobs(server), 'holding jobs to finish');
    const deleted = await lift(server, region);
    expect(deleted.statusCode, deleted.body).toBe(204);

    await waitFor(
      () => allStoredWithStatus(server.ctx.db, ids, 'delivered'),
      'held orders delivered',
      30_000,
    );
    const allocated = await eventsOf(server, ids, 'allocated');
    expect(allocated).toHaveLength(ids.length);
    const byId = new Map(held.map((h, i) => [h.id, `${h.priority}#${i}`]));
    expect(allocated.map((e) => byId.get(e.orderId))).toEqual([
      'essential#2',
      'essential#5',
      'express#1',
      'express#4',
      'standard#0',
      'standard#3',
    ]);
    const order = await getOrder(server.app, shop.apiKey, ids[0]);
    expect(order.events.map((e: { status: string }) => e.status)).toEqual([
      'received',
      'on_hold',
      'allocated',
      'dispatched',
      'in_transit',
      'delivered',
    ]);
  });

  it('lifts by itself when `until` passes, with no request arriving', async () => {
    const region = 'hangzhou-xihu';
    const until = new Date(Date.now() + 2500).toISOString();
    const put = await lock(server, region, { reason: 'Road closures', until });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json().until).toBe(until);

    const ids: string[] = [];
    for (const priority of ['standard', 'essential']) {
      ids.push(
        (
          await placeOrder(
            server.app,
            shop.apiKey,
            orderBody({ priority, shippingAddress: addressIn(region) }),
          )
        ).id,
      );
    }
    await waitFor(() => allStoredWithStatus(server.ctx.db, ids, 'on_hold'), 'orders on_hold');
    expect(Date.now()).toBeLessThan(Date.parse(until));

    // Only the database is read from here on: no request reaches the API.
    await waitFor(() => allStoredWithStatus(server.ctx.db, ids, 'delivered'), 'orders delivered', 30_000);
    const allocated = await eventsOf(server, ids, 'allocated');
    expect(allocated.map((e) => e.orderId)).toEqual([ids[1], ids[0]]);
    expect(allocated[0].recordedAt.getTime()).toBeGreaterThanOrEqual(Date.parse(until));

    const list = await server.app.inject({ url: '/v1/admin/regions/lockdowns', headers: admin });
    expect(list.json().items.map((l: { region: string }) => l.region)).not.toContain(region);
  });

  it('resumes orders left on hold in a region no longer locked (a lift whose resume was lost), by the sweep', async () => {
    const region = 'nanjing-gulou';
    expect((await lock(server, region, { reason: 'Flooding' })).statusCode).toBe(200);
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region) }),
    );
    await waitFor(async () => (await storedStatus(server.ctx.db, placed.id)) === 'on_hold', 'on_hold');
    // The row goes without the API's resume request (a process that died between the two).
    expect(await liftLockdown(server.ctx.db, region)).toBeDefined();
    await server.ctx.coord.del(`${server.config.queuePrefix}:lockdowns:sweep`); // the next pass sweeps
    await waitFor(
      async () => (await storedStatus(server.ctx.db, placed.id)) === 'delivered',
      'delivered',
      30_000,
    );
  });

  it('a second PUT replaces the first; DELETE lifts it, and with none answers 404', async () => {
    const region = 'xian-yanta';
    const first = await lock(server, region, { reason: 'first' });
    expect(first.statusCode).toBe(200);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const second = await lock(server, region, { reason: 'second', until });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual({ region, reason: 'second', until, since: first.json().since });

    const list = await server.app.inject({ url: '/v1/admin/regions/lockdowns', headers: admin });
    expect(list.statusCode).toBe(200);
    expect(list.json().items.filter((l: { region: string }) => l.region === region)).toEqual([second.json()]);

    expect((await lift(server, region)).statusCode).toBe(204);
    const again = await lift(server, region);
    expect(again.statusCode).toBe(404);
    expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await lift(server, 'never-locked')).statusCode).toBe(404);
  });

  it('refuses an `until` in the past and bad bodies (400), and a malformed region (404)', async () => {
    const past = await lock(server, 'chengdu-wuhou', {
      reason: 'late',
      until: new Date(Date.now() - 1000).toISOString(),
    });
    expect(past.statusCode).toBe(400);
    expect(past.json()).toMatchObject({ code: 'validation_failed', errors: [{ path: 'body/until' }] });

    for (const body of [
      {},
      { reason: '' },
      { reason: 'x'.repeat(501) },
      { reason: 42 },
      { reason: 'ok', until: 'tomorrow' },
      { reason: 'ok', extra: true },
    ]) {
      const response = await lock(server, 'chengdu-wuhou', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().code).toBe('validation_failed');
    }
    expect((await lock(server, 'chengdu-wuhou', { reason: 'x'.repeat(500) })).statusCode).toBe(200);
    expect((await lift(server, 'chengdu-wuhou')).statusCode).toBe(204);

    expect((await lock(server, 'Not_A_Region', { reason: 'ok' })).statusCode).toBe(404);
    expect((await lift(server, 'Not_A_Region')).statusCode).toBe(404);
  });

  it('asks for the admin token (401)', async () => {
    const url = '/v1/admin/regions/wuhan-jiangan/lockdown';
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token' },
      { authorization: `Bearer ${shop.apiKey}` },
    ]) {
      const put = await server.app.inject({ method: 'PUT', url, headers, payload: { reason: 'x' } });
      expect(put.statusCode).toBe(401);
      expect((await server.app.inject({ method: 'DELETE', url, headers })).statusCode).toBe(401);
      expect((await server.app.inject({ url: '/v1/admin/regions/lockdowns', headers })).statusCode).toBe(401);
    }
    const list = await server.app.inject({ url: '/v1/admin/regions/lockdowns', headers: admin });
    expect(list.json().items.map((l: { region: string }) => l.region)).not.toContain('wuhan-jiangan');
  });
});

describe('an order held keeping its reservation (as dispatch holds it)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    // No dispatch worker: allocated orders stay allocated, as if waiting for their booking.
    server = await startTestServer(db.database, { env: { WORKER_QUEUES: 'allocation,notification' } });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-held', stock: { 'MASK-N95': 10 } });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('goes on_hold with its stock still reserved and back to allocated with its dispatch job, also when held twice', async () => {
    const region = 'wuhan-wuchang';
    const placed = await placeOrder(
      server.app,
      shop.apiKey,
      orderBody({ shippingAddress: addressIn(region) }),
    );
    await waitFor(async () => (await storedStatus(server.ctx.db, placed.id)) === 'allocated', 'allocated');
    const dispatchQueue = server.ctx.queues.byName.dispatch;
    const jobId = `dispatch-${placed.id}-1`;
    await waitFor(async () => (await dispatchQueue.getJobState(jobId)) !== 'unknown', 'dispatch job');
    // What a dispatch run that holds the order leaves behind: its job finished.
    await dispatchQueue.remove(jobId);

    for (const round of [1, 2]) {
      expect((await lock(server, region, { reason: `closure ${round}` })).statusCode).toBe(200);
      const order = (await findOrder(server.ctx.db, placed.id))!;
      expect(await holdIfLocked(server.ctx, order)).toBe(true);
      expect(await storedStatus(server.ctx.db, placed.id)).toBe('on_hold');
      const reserved = await server.ctx.db
        .select()
        .from(allocations)
        .where(eq(allocations.orderId, placed.id));
      expect(reserved.map((a) => a.state)).toEqual(['reserved']);

      expect((await lift(server, region)).statusCode).toBe(204);
      await waitFor(
        async () => (await storedStatus(server.ctx.db, placed.id)) === 'allocated',
        'allocated again',
      );
      await waitFor(
        async () => ['waiting', 'prioritized'].includes(await dispatchQueue.getJobState(jobId)),
        'its dispatch job back',
      );
      await dispatchQueue.remove(jobId);
    }

    const events = await server.ctx.db
      .select()
      .from(orderEvents)
      .where(eq(orderEvents.orderId, placed.id))
      .orderBy(asc(orderEvents.id));
    expect(events.map((e) => `${e.status}/${e.seq}`)).toEqual([
      'received/1',
      'allocated/1',
      'on_hold/1',
      'allocated/2',
      'on_hold/2',
      'allocated/3',
    ]);
    expect(events.filter((e) => e.status === 'on_hold').map((e) => e.detail)).toEqual([
      'closure 1',
      'closure 2',
    ]);
    // Each change told: allocated#2, on_hold#2… have outbox rows of their own.
    const told = await server.ctx.db
      .selectDistinct({ status: notifications.status })
      .from(notifications)
      .where(eq(notifications.orderId, placed.id));
    expect(told.map((t) => t.status).sort()).toEqual(
      ['allocated', 'allocated#2', 'allocated#3', 'on_hold', 'on_hold#2', 'received'].sort(),
    );
    const view = await getOrder(server.app, shop.apiKey, placed.id);
    expect(view.allocations).toHaveLength(1);

    // A held order of an unlocked region is not held (the lockdown is gone).
    const current = (await findOrder(server.ctx.db, placed.id))!;
    expect(await holdIfLocked(server.ctx, current)).toBe(false);
  });
});
