/**
 * GET /v1/admin/shipments?overdue=true (the "Operators" section of the contract): every booked
 * parcel gets `expected_by` — its estimatedDeliveryAt, else booking time + the carrier's
 * transitHours, else DEFAULT_TRANSIT_HOURS — and is overdue once that plus OVERDUE_GRACE_HOURS
 * has passed while it is not delivered. The carriers never report on their own (progress: false):
 * the test moves parcels' expected_by into the past through the database (set-up), and sends the
 * carrier events itself.
 */
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shipments } from '../../src/db/schema.js';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { httpCarrier } from '../../src/integrations/carriers/http-carrier.js';
import type { CarrierAdapter } from '../../src/integrations/carriers/types.js';
import { createLogger } from '../../src/logger.js';
import {
  admin,
  orderBody,
  placeOrder,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const HOUR = 3_600_000;
const DEFAULT_TRANSIT_HOURS = 40;
const CARRIER_TRANSIT_HOURS = 30;
const GRACE_HOURS = 12; // OVERDUE_GRACE_HOURS' default: the test runs without setting it

/** Regions, each served by one carrier. */
const ETA_REGION = 'shanghai-pudong'; // ov-eta: answers with an estimatedDeliveryAt
const TRANSIT_REGION = 'beijing-chaoyang'; // ov-transit: no ETA, transitHours 30
const DEFAULT_REGION = 'guangzhou-tianhe'; // ov-default: no ETA, no transitHours

/** Carriers whose bookings come back without an ETA, as a carrier may answer. */
const WITHOUT_ETA = new Set(['ov-transit', 'ov-default']);

interface Item {
  shipmentId: string;
  orderId: string;
  carrierId: string;
  trackingNumber: string;
  status: string;
  estimatedDeliveryAt: string | null;
  lastEventAt: string | null;
}

interface Parcel {
  orderId: string;
  shipmentId: string;
  carrierId: string;
  trackingNumber: string;
}

describe('GET /v1/admin/shipments?overdue=true', () => {
  let db: TestDatabase;
  let server: TestServer;
  const carriers = new Map<string, CarrierSimulator>();
  let shop: { apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    const http = httpCarrier(10_000, createLogger('silent'));
    const withoutEta: CarrierAdapter = {
      async book(carrier, request) {
        const outcome = await http.book(carrier, request);
        return outcome.kind === 'booked' && WITHOUT_ETA.has(carrier.id)
          ? { ...outcome, estimatedDeliveryAt: null }
          : outcome;
      },
      cancel: (carrier, reference) => http.cancel(carrier, reference),
    };
    server = await startTestServer(db.database, {
      env: { DEFAULT_TRANSIT_HOURS: String(DEFAULT_TRANSIT_HOURS) },
      overrides: { carriers: withoutEta },
    });
    for (const [id, region, extra] of [
      ['ov-eta', ETA_REGION, {}],
      ['ov-transit', TRANSIT_REGION, { transitHours: CARRIER_TRANSIT_HOURS }],
      ['ov-default', DEFAULT_REGION, {}],
    ] as const) {
      carriers.set(
        id,
        await startSimulatedCarrier(
          server.app,
          { carrierId: id, webhookSecret: `${id}-secret`, eventsBaseUrl: server.url, progress: false },
          { regions: [region], ...extra },
        ),
      );
    }
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-ov', stock: { 'MASK-N95': 100 } });
  });

  afterAll(async () => {
    for (const carrier of carriers.values()) await carrier.close();
    await server?.close();
    await db?.drop();
  });

  /** The simulator of ov-eta, which posts signed events for its parcels. */
  const etaCarrier = () => carriers.get('ov-eta')!;

  /** Places an order to `region` and waits until it is dispatched (one at a time: bookings in order). */
  async function dispatched(region: string): Promise<Parcel> {
    const body = orderBody();
    const { id } = await placeOrder(server.app, shop.apiKey, {
      ...body,
      shippingAddress: { ...(body.shippingAddress as object), region },
    });
    const order = await waitForOrderStatus(server.app, shop.apiKey, id, 'dispatched');
    expect(order.shipments).toHaveLength(1);
    const [parcel] = order.shipments;
    return {
      orderId: id,
      shipmentId: parcel.id,
      carrierId: parcel.carrierId,
      trackingNumber: parcel.trackingNumber,
    };
  }

  const row = async (shipmentId: string) =>
    (await db.database.db.select().from(shipments).where(eq(shipments.id, shipmentId)))[0];

  /** Test set-up: the carrier event of a parcel was due `hoursAgo` hours ago. */
  async function dueHoursAgo(parcel: Parcel, hoursAgo: number) {
    await db.database.db
      .update(shipments)
      .set({ expectedBy: new Date(Date.now() - hoursAgo * HOUR) })
      .where(eq(shipments.id, parcel.shipmentId));
  }

  const list = (query: string, headers: Record<string, string> = admin) =>
    server.app.inject({ url: `/v1/admin/shipments${query}`, headers });

  async function listAll(limit: number): Promise<Item[]> {
    const items: Item[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 50; pages++) {
      const response = await list(
        `?overdue=true&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as { items: Item[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(limit);
      items.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) return items;
    }
    throw new Error('the cursor never ran out');
  }

  let eta: Parcel; // overdue, no carrier event
  let moving: Parcel; // overdue, reported in_transit
  let graced: Parcel; // due, but still within the grace
  let delivered: Parcel; // due long ago, but delivered
  let returned: Parcel; // due long ago, but returned
  let transit: Parcel; // overdue, expected_by from the carrier's transitHours
  let fallback: Parcel; // overdue, expected_by from DEFAULT_TRANSIT_HOURS
  let inTransitAt: string;

  it('gives every booked parcel expected_by: its ETA, else booking + the carrier transitHours, else DEFAULT_TRANSIT_HOURS', async () => {
    eta = await dispatched(ETA_REGION);
    moving = await dispatched(ETA_REGION);
    graced = await dispatched(ETA_REGION);
    delivered = await dispatched(ETA_REGION);
    returned = await dispatched(ETA_REGION);
    transit = await dispatched(TRANSIT_REGION);
    fallback = await dispatched(DEFAULT_REGION);
    expect([eta.carrierId, transit.carrierId, fallback.carrierId]).toEqual([
      'ov-eta',
      'ov-transit',
      'ov-default',
    ]);

    const withEta = await row(eta.shipmentId);
    expect(withEta.estimatedDeliveryAt).toBeInstanceOf(Date);
    expect(withEta.expectedBy?.getTime()).toBe(withEta.estimatedDeliveryAt!.getTime());

    // expected_by is taken when the answer arrives, booked_at when it is stored: a few ms apart.
    for (const [parcel, hours] of [
      [transit, CARRIER_TRANSIT_HOURS],
      [fallback, DEFAULT_TRANSIT_HOURS],
    ] as const) {
      const stored = await row(parcel.shipmentId);
      expect(stored.estimatedDeliveryAt).toBeNull();
      expect(stored.bookedAt).toBeInstanceOf(Date);
      const offset = stored.expectedBy!.getTime() - hours * HOUR - stored.bookedAt!.getTime();
      expect(Math.abs(offset), `${parcel.carrierId}: expected_by − ${hours} h − booked_at`).toBeLessThan(
        5_000,
      );
    }

    // Freshly booked: nothing is overdue yet.
    expect((await listAll(100)).length).toBe(0);
  });

  it('lists the parcels past expected_by + the grace, not delivered ones, newest booking first', async () => {
    for (const parcel of [eta, moving, delivered, returned, transit, fallback])
      await dueHoursAgo(parcel, GRACE_HOURS + 1);
    await dueHoursAgo(graced, GRACE_HOURS - 1);

    inTransitAt = new Date(Date.now() - 2 * HOUR).toISOString();
    const ev = etaCarrier();
    expect(await ev.sendEvent(moving.trackingNumber, 'in_transit', inTransitAt)).toBeLessThan(300);
    expect(await ev.sendEvent(delivered.trackingNumber, 'delivered')).toBeLessThan(300);
    expect(await ev.sendEvent(returned.trackingNumber, 'returned')).toBeLessThan(300);
    await waitForOrderStatus(server.app, shop.apiKey, delivered.orderId, 'delivered');
    await waitForOrderStatus(server.app, shop.apiKey, returned.orderId, 'failed');

    // Two bookings at the same instant: the id breaks the tie, also across pages.
    const [{ bookedAt }] = await db.database.db
      .select({ bookedAt: shipments.bookedAt })
      .from(shipments)
      .where(eq(shipments.id, transit.shipmentId));
    await db.database.db.update(shipments).set({ bookedAt }).where(eq(shipments.id, eta.shipmentId));

    const overdue = [eta, moving, transit, fallback];
    const rows = await db.database.db
      .select()
      .from(shipments)
      .where(
        inArray(
          shipments.id,
          overdue.map((p) => p.shipmentId),
        ),
      );
    const newestFirst = rows
      .sort(
        (a, b) => b.bookedAt!.getTime() - a.bookedAt!.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
      )
      .map((r) => r.id);

    const response = await list('?overdue=true');
    expect(response.statusCode, response.body).toBe(200);
    const page = response.json() as { items: Item[]; nextCursor: string | null };
    expect(page.nextCursor).toBeNull();
    expect(page.items.map((i) => i.shipmentId)).toEqual(newestFirst);
    for (const left of [graced, delivered, returned])
      expect(page.items.map((i) => i.shipmentId)).not.toContain(left.shipmentId);

    const byId = new Map(page.items.map((i) => [i.shipmentId, i]));
    const first = byId.get(eta.shipmentId)!;
    const stored = await row(eta.shipmentId);
    expect(first).toEqual({
      shipmentId: eta.shipmentId,
      orderId: eta.orderId,
      carrierId: 'ov-eta',
      trackingNumber: eta.trackingNumber,
      status: 'booked',
      estimatedDeliveryAt: stored.estimatedDeliveryAt!.toISOString(),
      lastEventAt: null,
    });
    expect(byId.get(moving.shipmentId)).toMatchObject({ status: 'in_transit', lastEventAt: inTransitAt });
    expect(byId.get(transit.shipmentId)).toMatchObject({
      carrierId: 'ov-transit',
      estimatedDeliveryAt: null,
    });
    expect(byId.get(fallback.shipmentId)).toMatchObject({
      carrierId: 'ov-default',
      estimatedDeliveryAt: null,
    });
  });

  it('pages with limit=1 and the cursor through the same list, each parcel once', async () => {
    const whole = (await listAll(100)).map((i) => i.shipmentId);
    expect(whole).toHaveLength(4);

    const first = await list('?overdue=true&limit=1');
    const page = first.json() as { items: Item[]; nextCursor: string | null };
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).toEqual(expect.any(String));

    const paged = (await listAll(1)).map((i) => i.shipmentId);
    expect(paged).toEqual(whole);
    expect((await listAll(3)).map((i) => i.shipmentId)).toEqual(whole);
  });

  it('keeps lastEventAt at the latest carrier event, and drops a parcel once it is delivered', async () => {
    const earlier = new Date(Date.parse(inTransitAt) - HOUR).toISOString();
    const ev = etaCarrier();
    // A late event (older `at`) does not move lastEventAt back.
    expect(await ev.sendEvent(moving.trackingNumber, 'out_for_delivery', earlier)).toBeLessThan(300);
    let item = (await listAll(100)).find((i) => i.shipmentId === moving.shipmentId);
    expect(item?.lastEventAt).toBe(inTransitAt);

    const later = new Date(Date.parse(inTransitAt) + HOUR).toISOString();
    expect(await ev.sendEvent(moving.trackingNumber, 'out_for_delivery', later)).toBeLessThan(300);
    item = (await listAll(100)).find((i) => i.shipmentId === moving.shipmentId);
    expect(item?.lastEventAt).toBe(later);

    expect(await ev.sendEvent(moving.trackingNumber, 'delivered')).toBeLessThan(300);
    await waitForOrderStatus(server.app, shop.apiKey, moving.orderId, 'delivered');
    expect((await listAll(100)).map((i) => i.shipmentId)).not.toContain(moving.shipmentId);
  });

  it('counts the listed parcels in the gauge surgeline_shipments_overdue', async () => {
    const listed = await listAll(100);
    expect(listed).toHaveLength(3);
    const metrics = await server.app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    const line = metrics.body.split('\n').find((l) => /^surgeline_shipments_overdue(\{\})? /.test(l));
    expect(line, 'surgeline_shipments_overdue in /metrics').toBeDefined();
    expect(Number(line!.split(' ').pop())).toBe(listed.length);
  });

  it('needs the admin token', async () => {
    expectProblem(await list('?overdue=true', {}), 401);
    expectProblem(await list('?overdue=true', { authorization: 'Bearer not-the-admin-token' }), 401);
    expectProblem(await list('?overdue=true', shopHeaders(shop.apiKey)), 401);
  });

  it('refuses a missing or other overdue, and limits or cursors out of range, with 400 validation_failed', async () => {
    for (const query of [
      '',
      '?limit=10',
      '?overdue=false',
      '?overdue=1',
      '?overdue=TRUE',
      '?overdue=',
      '?overdue=true&overdue=true',
      '?overdue=true&limit=0',
      '?overdue=true&limit=101',
      '?overdue=true&limit=ten',
      '?overdue=true&cursor=not-a-cursor',
      '?overdue=true&status=booked',
    ]) {
      const problem = expectProblem(await list(query), 400, 'validation_failed');
      expect(problem.errors?.length, query).toBeGreaterThan(0);
    }
    for (const limit of [1, 100]) expect((await list(`?overdue=true&limit=${limit}`)).statusCode).toBe(200);
  });
});
