/**
 * Dispatch under carrier faults, end to end through the API and real workers (contract: Carriers):
 * failover from a carrier that answers 503, a flaky carrier next to a healthy one, a timeout (the
 * carrier booked but the answer came too late: DELETE there before the next carrier is called), a
 * 422 (next carrier at once; every carrier refusing → `no_carrier`), a 429 with Retry-After, every
 * carrier down (`carrier_failed`, stock released), and priority inside a carrier's queue.
 *
 * The fault cases share one server and run side by side: each has its own region and carriers
 * serving only that region, so their carrier choices never meet. Every case ends by checking the
 * carriers' own records: no parcel booked twice at one carrier, none live at two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCarrierSimulator, type CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import { seededRandom } from '../../src/demo/surge.js';
import {
  admin,
  createCarrier,
  createShop,
  createWarehouse,
  getOrder,
  orderBody,
  placeOrder,
  setStock,
} from '../helpers/fixtures.js';
import {
  CARRIER_SECRET,
  doubleBookings,
  registerDownCarrier,
  registerScriptedCarrier,
  type ScriptedCarrier,
} from '../helpers/carriers.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { carrierAttempts, carriers, orders } from '../../src/db/schema.js';
import { asc, inArray } from 'drizzle-orm';

/** The carrier timeout of the server under test: a call with no answer by then is a timeout. */
// Roomy enough that a loaded machine (PGlite's queries hold the event loop) answering late does not turn
// a 201, 422 or 429 into a timeout.
const CARRIER_TIMEOUT_MS = 3000;
/** What a carrier slow past the timeout takes to answer (it books at once, answers late). */
const LATE_ANSWER_MS = 5000;

function addressIn(region: string) {
  return { region, line1: '1 Century Avenue', city: 'Shanghai', postalCode: '200120', country: 'CN' };
}

interface Harness {
  db: TestDatabase;
  server: TestServer;
  shop: { apiKey: string };
}

async function startHarness(env: Record<string, string>): Promise<Harness> {
  const db = await testDatabase();
  const server = await startTestServer(db.database, { env });
  // The API polls in these tests would trip the default 600/min shop limit.
  const shop = await createShop(server.app, { rateLimitPerMinute: 1_000_000 });
  return { db, server, shop };
}

async function stopHarness(h: Harness | undefined) {
  await h?.server.close();
  await h?.db.drop();
}

/** Places `count` orders to `region` at once; their ids in placement order. */
async function place(h: Harness, region: string, count: number, overrides: Record<string, unknown> = {}) {
  const placed = await Promise.all(
    Array.from({ length: count }, () =>
      placeOrder(
        h.server.app,
        h.shop.apiKey,
        orderBody({ shippingAddress: addressIn(region), ...overrides }),
      ),
    ),
  );
  return placed.map((p) => p.id as string);
}

const UNSETTLED = ['received', 'allocated'];

/** Waits until none of the orders is still waiting for dispatch; their stored statuses by id. */
async function settle(h: Harness, ids: string[], timeoutMs: number): Promise<Map<string, string>> {
  try {
    return await waitUntilSettled(h, ids, timeoutMs);
  } catch (error) {
    // What the engine did meanwhile, so a failure on a loaded machine says where it stalled.
    const rows = await h.db.database.db
      .select({ id: orders.id, status: orders.status })
      .from(orders)
      .where(inArray(orders.id, ids));
    const states = rows.map((r) => `${r.id.slice(0, 8)} ${r.status}`).join(', ');
    throw new Error(
      `${(error as Error).message}\norders: ${states}\nattempts:\n${await attemptLog(h, ids)}\njobs:\n${await jobLog(h, ids)}`,
    );
  }
}

async function waitUntilSettled(h: Harness, ids: string[], timeoutMs: number): Promise<Map<string, string>> {
  return waitFor(
    async () => {
      const rows = await h.db.database.db
        .select({ id: orders.id, status: orders.status })
        .from(orders)
        .where(inArray(orders.id, ids));
      if (rows.length !== ids.length || rows.some((r) => UNSETTLED.includes(r.status))) return undefined;
      return new Map(rows.map((r) => [r.id, r.status]));
    },
    `orders ${ids.join(', ')} to leave received/allocated`,
    timeoutMs,
  );
}

/** The orders' booking calls as the engine recorded them, one line each (for failure messages). */
async function attemptLog(h: Harness, ids: string[]): Promise<string> {
  const rows = await h.db.database.db
    .select()
    .from(carrierAttempts)
    .where(inArray(carrierAttempts.orderId, ids))
    .orderBy(asc(carrierAttempts.id));
  return rows
    .map(
      (r) =>
        `${r.shipmentId.slice(0, 8)} ${r.carrierId} ${r.at.toISOString()} ${r.outcome} ${r.httpStatus ?? '-'} ` +
        `${(r.detail ?? '').slice(0, 60)}${r.cancelledAt ? ` cancelled ${r.cancelledAt.toISOString()}` : ''}`,
    )
    .join('\n');
}

/** The orders' jobs in the dispatch queue and every carrier's booking queue, with their state. */
async function jobLog(h: Harness, ids: string[]): Promise<string> {
  const queues = [
    ...h.server.ctx.queues.byName.dispatch.all,
    ...(await h.db.database.db.select({ id: carriers.id }).from(carriers)).flatMap(
      (c) => h.server.ctx.queues.carrierQueue(c.id).all,
    ),
  ];
  const lines: string[] = [];
  for (const queue of queues) {
    for (const job of await queue.getJobs([
      'active',
      'waiting',
      'prioritized',
      'delayed',
      'completed',
      'failed',
    ])) {
      if (!job || !ids.includes(job.data.orderId)) continue;
      lines.push(
        `${queue.name} ${job.id} ${await job.getState()} returned=${JSON.stringify(job.returnvalue)}`,
      );
    }
  }
  return lines.join('\n');
}

type Order = {
  id: string;
  status: string;
  failureReason: string | null;
  shipments: { id: string; carrierId: string; status: string }[];
  events: { status: string; at: string }[];
};

const eventAt = (order: Order, status: string) =>
  Date.parse(order.events.find((e) => e.status === status)?.at ?? 'NaN');

describe('dispatch under carrier faults', () => {
  let h: Harness;
  const simulators: CarrierSimulator[] = [];
  const scripted: ScriptedCarrier[] = [];

  const scriptedCarrier = async (...args: Parameters<typeof registerScriptedCarrier>) => {
    const carrier = await registerScriptedCarrier(...args);
    scripted.push(carrier);
    return carrier;
  };
  const orderOf = (id: string): Promise<Order> => getOrder(h.server.app, h.shop.apiKey, id);

  beforeAll(async () => {
    h = await startHarness({ CARRIER_TIMEOUT_MS: String(CARRIER_TIMEOUT_MS) });
    await createWarehouse(h.server.app, 'wh-faults');
    await setStock(h.server.app, 'wh-faults', 'MASK-N95', 500);
    // Only the all-carriers-down case orders this SKU, so its reservations can be read alone.
    await createWarehouse(h.server.app, 'wh-down');
    await setStock(h.server.app, 'wh-down', 'GLOVE-6', 10);
  });

  afterAll(async () => {
    for (const c of [...simulators, ...scripted]) await c.close();
    await stopHarness(h);
  });

  it.concurrent(
    'a carrier answering 503 is given up after at most 5 calls; the parcel books at the next',
    async () => {
      const region = 'faults-503';
      const a = await scriptedCarrier(
        h.server.app,
        { id: 'down503-a', script: (c) => (c.method === 'POST' ? { status: 503 } : undefined) },
        { regions: [region], rank: 1 },
      );
      const b = await scriptedCarrier(h.server.app, { id: 'down503-b' }, { regions: [region], rank: 2 });
      const ids = await place(h, region, 3);

      const statuses = await settle(h, ids, 45_000);
      expect([...statuses.values()]).toEqual(ids.map(() => 'dispatched'));
      for (const id of ids) {
        const order = await orderOf(id);
        expect(order.shipments).toHaveLength(1);
        const [parcel] = order.shipments;
        expect(parcel.carrierId).toBe('down503-b');
        const atA = a.posts(parcel.id);
        const atB = b.posts(parcel.id);
        expect(atA.length).toBeGreaterThanOrEqual(1);
        expect(atA.length).toBeLessThanOrEqual(5);
        expect(atB).toHaveLength(1);
        // Failover: from the first call at A to the booking call at B, well inside the 30 s budget.
        const failoverMs = atB[0].at - atA[0].at;
        const dispatchMs = eventAt(order, 'dispatched') - eventAt(order, 'received');
        console.info(
          `[503] parcel ${parcel.id}: ${atA.length} calls at A, failover ${failoverMs} ms, received→dispatched ${dispatchMs} ms`,
        );
        expect(failoverMs).toBeLessThan(20_000);
        expect(dispatchMs).toBeLessThan(20_000);
      }
      // Fewer than 5 calls at A when its breaker opened (5 failures in a row, all parcels together).
      const listed = await h.server.app.inject({ url: '/v1/admin/carriers?limit=100', headers: admin });
      const breakerOfA = listed.json().items.find((c: { id: string }) => c.id === 'down503-a')?.breaker;
      console.info(`[503] A's breaker: ${JSON.stringify(breakerOfA)}, ${a.posts().length} calls at A in all`);
      expect([...a.calls, ...b.calls].every((c) => c.authorized)).toBe(true);
      expect(doubleBookings([a, b].map((c) => ({ id: c.id, carrier: c }))), await attemptLog(h, ids)).toEqual(
        [],
      );
    },
  );

  it.concurrent(
    'with 30% 5xx at A and B healthy, every order is delivered, what A failed booked by B',
    async () => {
      const region = 'faults-flaky';
      // Same rank: A (first by id) takes the first wave; once it has failed, its lower success rate
      // sends parcels to B. A answers slowly so the first wave is routed before its first failure.
      const start = async (carrierId: string, failureRate: number, latencyMs: number) => {
        const sim = await startCarrierSimulator({
          carrierId,
          webhookSecret: CARRIER_SECRET,
          eventsBaseUrl: h.server.url,
          failureRate,
          latencyMs,
          progress: { inTransitAfterMs: 100, deliveredAfterMs: 300 },
          // Seeded: A's first calls are among its failures, whatever the machine's timing.
          random: seededRandom(7),
        });
        simulators.push(sim);
        await createCarrier(h.server.app, { id: carrierId, baseUrl: sim.url, regions: [region], rank: 1 });
        return sim;
      };
      const a = await start('flaky-a', 0.3, 300);
      const b = await start('flaky-b', 0, 0);
      const ids = await place(h, region, 20);

      await settle(h, ids, 45_000);
      await waitFor(
        async () => {
          const rows = await h.db.database.db
            .select({ status: orders.status })
            .from(orders)
            .where(inArray(orders.id, ids));
          return rows.every((r) => r.status === 'delivered');
        },
        'every order delivered',
        20_000,
      );
      const byCarrier: Record<string, number> = {};
      for (const id of ids) {
        const order = await orderOf(id);
        expect(order.status).toBe('delivered');
        expect(order.shipments).toHaveLength(1);
        byCarrier[order.shipments[0].carrierId] = (byCarrier[order.shipments[0].carrierId] ?? 0) + 1;
      }
      console.info(
        `[flaky] delivered by carrier: ${JSON.stringify(byCarrier)}; A stats ${JSON.stringify(a.stats)}, B stats ${JSON.stringify(b.stats)}`,
      );
      // Of two carriers of equal rank the one with the better recent success rate goes first, so how
      // many A books depends on how many orders were routed before its first failures were counted
      // (any number from 0 to most, by the machine's timing); what A failed, B booked.
      expect((byCarrier['flaky-a'] ?? 0) + (byCarrier['flaky-b'] ?? 0)).toBe(ids.length);
      expect(byCarrier['flaky-b']).toBeGreaterThan(0);
      expect(a.stats.transient).toBeGreaterThan(0);
      expect(a.stats.booked - a.stats.cancelled).toBe(byCarrier['flaky-a'] ?? 0);
      // The carriers' own records agree with the orders: each parcel booked at exactly one carrier.
      expect(
        doubleBookings([
          { id: 'flaky-a', carrier: a },
          { id: 'flaky-b', carrier: b },
        ]),
        await attemptLog(h, ids),
      ).toEqual([]);
      const live = [...a.bookings.values(), ...b.bookings.values()].filter((x) => !x.cancelled);
      expect(live).toHaveLength(ids.length);
    },
  );

  it.concurrent(
    'a carrier that times out is sent a DELETE for the parcel before the next carrier is called',
    async () => {
      const region = 'faults-timeout';
      // A books every call at once but answers after the timeout: the booking exists, the engine
      // never hears of it.
      const a = await scriptedCarrier(
        h.server.app,
        {
          id: 'slow-a',
          script: (c) => (c.method === 'POST' ? { book: true, delayMs: LATE_ANSWER_MS } : undefined),
        },
        { regions: [region], rank: 1 },
      );
      const b = await scriptedCarrier(h.server.app, { id: 'slow-b' }, { regions: [region], rank: 2 });
      const ids = await place(h, region, 2);

      const statuses = await settle(h, ids, 90_000);
      expect([...statuses.values()]).toEqual(ids.map(() => 'dispatched'));
      for (const id of ids) {
        const order = await orderOf(id);
        const [parcel] = order.shipments;
        expect(parcel.carrierId).toBe('slow-b');
        const postsA = a.posts(parcel.id);
        const deletesA = a.deletes(parcel.id);
        const [atB] = b.posts(parcel.id);
        expect(postsA.length).toBeGreaterThanOrEqual(1);
        expect(postsA.length).toBeLessThanOrEqual(5);
        expect(postsA.every((p) => p.answeredAt === null)).toBe(true); // every answer came too late
        expect(deletesA.length).toBeGreaterThanOrEqual(1);
        // The DELETE came after A's last booking call and before B was called; it removed the booking.
        expect(deletesA[0].at).toBeGreaterThan(postsA[postsA.length - 1].at);
        expect(deletesA[0].at).toBeLessThan(atB.at);
        const confirmed = deletesA.filter((d) => d.status === 204);
        expect(confirmed).toHaveLength(1);
        expect(confirmed[0].answeredAt!).toBeLessThanOrEqual(atB.at);
        expect(a.bookings.get(parcel.id)).toMatchObject({ cancelled: true });
        console.info(
          `[timeout] parcel ${parcel.id}: ${postsA.length} calls at A, ${deletesA.length} DELETE(s) at A ` +
            `(first ${deletesA[0].at - postsA[postsA.length - 1].at} ms after A's last call), B called ` +
            `${atB.at - deletesA[0].at} ms after the first DELETE; received→dispatched ` +
            `${eventAt(order, 'dispatched') - eventAt(order, 'received')} ms`,
        );
      }
      expect(doubleBookings([a, b].map((c) => ({ id: c.id, carrier: c }))), await attemptLog(h, ids)).toEqual(
        [],
      );
    },
    120_000,
  );

  it.concurrent(
    'a carrier refusing the region (422) is called once; the next carrier books at once',
    async () => {
      const region = 'faults-refuse';
      const a = await scriptedCarrier(
        h.server.app,
        { id: 'refuse-a', script: (c) => (c.method === 'POST' ? { status: 422 } : undefined) },
        { regions: [region], rank: 1 },
      );
      const b = await scriptedCarrier(h.server.app, { id: 'refuse-b' }, { regions: [region], rank: 2 });
      const ids = await place(h, region, 3);

      const statuses = await settle(h, ids, 20_000);
      expect([...statuses.values()]).toEqual(ids.map(() => 'dispatched'));
      for (const id of ids) {
        const [parcel] = (await orderOf(id)).shipments;
        expect(parcel.carrierId).toBe('refuse-b');
        const atA = a.posts(parcel.id);
        const atB = b.posts(parcel.id);
        expect(atA).toHaveLength(1);
        expect(atB).toHaveLength(1);
        const gapMs = atB[0].at - atA[0].answeredAt!;
        console.info(`[422] parcel ${parcel.id}: B called ${gapMs} ms after A's 422`);
        // No backoff before the next carrier: B's booking job was queued without a delay (how
        // soon a worker takes it depends on the machine's load, so the gap is bounded loosely).
        const jobAtB = await h.server.ctx.queues.carrierQueue('refuse-b').getJob(`book-${parcel.id}-2`);
        expect(jobAtB?.opts.delay ?? 0).toBe(0);
        expect(gapMs).toBeLessThan(5_000);
      }
      expect(a.deletes()).toHaveLength(0); // a 422 is not ambiguous: nothing to cancel
      expect(doubleBookings([a, b].map((c) => ({ id: c.id, carrier: c }))), await attemptLog(h, ids)).toEqual(
        [],
      );
    },
  );

  it.concurrent('every carrier refusing the region fails the order no_carrier', async () => {
    const region = 'faults-nobody';
    const refuse = (id: string, rank: number) =>
      scriptedCarrier(
        h.server.app,
        { id, script: (c) => (c.method === 'POST' ? { status: 422 } : undefined) },
        { regions: [region], rank },
      );
    const carriers = [await refuse('nobody-a', 1), await refuse('nobody-b', 2)];
    const ids = await place(h, region, 2);

    const statuses = await settle(h, ids, 20_000);
    expect([...statuses.values()]).toEqual(ids.map(() => 'failed'));
    for (const id of ids) {
      const order = await orderOf(id);
      expect(order.failureReason).toBe('no_carrier');
      expect(order.events.map((e) => e.status)).toEqual(['received', 'allocated', 'failed']);
    }
    for (const carrier of carriers) {
      expect(carrier.posts()).toHaveLength(ids.length); // each was asked, once per parcel
      expect(new Set(carrier.posts().map((p) => p.reference)).size).toBe(ids.length);
      expect(carrier.bookings.size).toBe(0);
    }
    expect(doubleBookings(carriers.map((c) => ({ id: c.id, carrier: c }))), await attemptLog(h, ids)).toEqual(
      [],
    );
  });

  it.concurrent(
    'a 429 with Retry-After: 2 is honoured: the next call comes 2 s after the answer, then books',
    async () => {
      const region = 'faults-429';
      // The first call of each parcel is refused with 429: for the first parcel answered at once,
      // for the second after 250 ms (well inside the timeout). Retry-After counts from the
      // answer, not from when the call was made, so both must wait 2 s after their 429.
      const delays = [0, 250];
      let parcels = 0;
      const a = await scriptedCarrier(
        h.server.app,
        {
          id: 'busy-a',
          script: (c) =>
            c.method === 'POST' && c.n === 1
              ? { status: 429, headers: { 'retry-after': '2' }, delayMs: delays[parcels++] ?? 0 }
              : undefined,
        },
        { regions: [region], rank: 1 },
      );
      const b = await scriptedCarrier(h.server.app, { id: 'busy-b' }, { regions: [region], rank: 2 });
      const ids = await place(h, region, 2);

      const statuses = await settle(h, ids, 20_000);
      expect([...statuses.values()]).toEqual(['dispatched', 'dispatched']);
      const waited: { answeredAfterMs: number; waitedMs: number }[] = [];
      for (const id of ids) {
        const [parcel] = (await orderOf(id)).shipments;
        expect(parcel.carrierId).toBe('busy-a');
        const calls = a.posts(parcel.id);
        expect(calls).toHaveLength(2);
        expect(calls[0].status).toBe(429);
        expect(calls[1].status).toBe(201);
        waited.push({
          answeredAfterMs: calls[0].answeredAt! - calls[0].at,
          waitedMs: calls[1].at - calls[0].answeredAt!,
        });
      }
      console.info(`[429] ${JSON.stringify(waited)}`);
      for (const { waitedMs } of waited) {
        expect(waitedMs, await attemptLog(h, ids)).toBeGreaterThanOrEqual(2_000);
        expect(waitedMs).toBeLessThan(5_000);
      }
      expect(b.posts()).toHaveLength(0);
      expect(doubleBookings([a, b].map((c) => ({ id: c.id, carrier: c }))), await attemptLog(h, ids)).toEqual(
        [],
      );
    },
  );

  it.concurrent(
    'every carrier down fails the order carrier_failed, releases its stock, and leaves nothing live',
    async () => {
      const region = 'faults-down';
      // A: nothing listens (refused connection); C: books but answers after the timeout (so it
      // holds a booking that must be cancelled); B: 503.
      await registerDownCarrier(h.server.app, 'down-a', { regions: [region], rank: 1 });
      const c = await scriptedCarrier(
        h.server.app,
        {
          id: 'down-c',
          script: (call) => (call.method === 'POST' ? { book: true, delayMs: LATE_ANSWER_MS } : undefined),
        },
        { regions: [region], rank: 2 },
      );
      const b = await scriptedCarrier(
        h.server.app,
        { id: 'down-b', script: (call) => (call.method === 'POST' ? { status: 503 } : undefined) },
        { regions: [region], rank: 3 },
      );
      const [id] = await place(h, region, 1, { items: [{ sku: 'GLOVE-6', quantity: 2 }] });

      const statuses = await settle(h, [id], 90_000);
      expect(statuses.get(id)).toBe('failed');
      const order = await orderOf(id);
      expect(order.failureReason).toBe('carrier_failed');
      const reference = c.posts()[0]?.reference;
      expect(c.posts().length).toBeGreaterThanOrEqual(1);
      expect(c.posts().length).toBeLessThanOrEqual(5);
      expect(b.posts().length).toBeGreaterThanOrEqual(1);
      expect(b.posts().length).toBeLessThanOrEqual(5);
      // C's booking was cancelled before B was tried, and nothing is live anywhere.
      expect(c.deletes(reference).length).toBeGreaterThanOrEqual(1);
      expect(c.deletes(reference)[0].at).toBeLessThan(b.posts()[0].at);
      expect(c.bookings.get(reference)).toMatchObject({ cancelled: true });
      expect([...b.bookings.values()]).toEqual([]);
      console.info(
        `[down] ${c.posts().length} calls at C, ${c.deletes().length} DELETE(s), ${b.posts().length} calls at B; ` +
          `received→failed ${eventAt(order, 'failed') - eventAt(order, 'received')} ms`,
      );

      const stock = await h.server.app.inject({
        url: '/v1/admin/inventory?sku=GLOVE-6&warehouseId=wh-down',
        headers: admin,
      });
      expect(stock.json().items).toEqual([
        expect.objectContaining({ onHand: 10, reserved: 0, available: 10 }),
      ]);
      expect(
        doubleBookings([c, b].map((x) => ({ id: x.id, carrier: x }))),
        await attemptLog(h, [id]),
      ).toEqual([]);
    },
    120_000,
  );
});

describe('priority inside a carrier queue', () => {
  let h: Harness;
  let carrier: ScriptedCarrier;

  beforeAll(async () => {
    h = await startHarness({ WORKER_CONCURRENCY: '1' });
    await createWarehouse(h.server.app, 'wh-prio');
    await setStock(h.server.app, 'wh-prio', 'MASK-N95', 100);
    // A slow carrier: each booking call holds the one worker slot for 600 ms — longer than the
    // essential order takes through allocation and routing, even on a loaded machine.
    carrier = await registerScriptedCarrier(
      h.server.app,
      { id: 'slow-prio', script: (c) => (c.method === 'POST' ? { book: true, delayMs: 600 } : undefined) },
      { regions: ['prio-region'], rank: 1 },
    );
  });

  afterAll(async () => {
    await carrier?.close();
    await stopHarness(h);
  });

  it('an essential order placed behind a standard backlog is booked before most of it', async () => {
    const standard: string[] = [];
    for (let i = 0; i < 12; i++) standard.push(...(await place(h, 'prio-region', 1)));
    // The backlog is there: the carrier is busy with its first booking.
    await waitFor(async () => carrier.posts().length >= 1, 'the first booking call');
    const [essential] = await place(h, 'prio-region', 1, { priority: 'essential' });

    const all = [...standard, essential];
    const statuses = await settle(h, all, 30_000);
    expect([...statuses.values()].every((s) => s === 'dispatched')).toBe(true);
    const booked = carrier.posts().map((p) => p.orderId);
    expect(new Set(booked).size).toBe(all.length);
    const standardBefore = booked.indexOf(essential);
    console.info(
      `[priority] essential booked as call ${standardBefore + 1} of ${booked.length}: ` +
        `${standardBefore} standard before it, ${standard.length - standardBefore} after`,
    );
    expect(standardBefore).toBeGreaterThanOrEqual(0);
    expect(standardBefore).toBeLessThan(standard.length / 2);
    expect(doubleBookings([{ id: carrier.id, carrier }]), await attemptLog(h, all)).toEqual([]);
  });
});
