/**
 * The operators' scorecard (GET /v1/admin/kpis and the surgeline_kpi_* gauges) over a fixture
 * written straight into the database — orders, events, parcels, then their closure rows by the
 * migration's backfill (db/kpis.ts backfillClosures) — every figure computed by hand below; and the
 * closure rows the real path writes: transition() into failed and delivered, startRetry() between.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { backfillClosures, windowCounts } from '../../src/db/kpis.js';
import { windowBounds } from '../../src/domain/kpis.js';
import { findOrder, startRetry, transition } from '../../src/db/orders.js';
import {
  allocations,
  feedback,
  orderClosures,
  orderEvents,
  orders,
  shipments,
  shops,
} from '../../src/db/schema.js';
import {
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const MIN = 60_000;
const NOW = Date.now();
const ago = (minutes: number) => new Date(NOW - minutes * MIN);

type Status = 'delivered' | 'failed' | 'cancelled' | 'allocated';
interface Parcel {
  warehouse: string;
  carrier: string | null;
}
interface Attempt {
  status: Status;
  /** When the engine recorded the closing (or current) event. */
  closedAt?: number;
  /** The `at` of the delivered event (the carrier's), minutes ago. */
  deliveredAt?: number;
  failureReason?: string;
  /** received and dispatched event times, minutes ago. */
  receivedAt: number;
  dispatchedAt?: number;
  parcels?: Parcel[];
  reserved?: string[];
}
interface Fixture {
  name: string;
  priority: 'essential' | 'express' | 'standard';
  region: string;
  createdAt: number;
  initialPromisedBy: number;
  attempts: Attempt[];
  score?: number;
}

const ON_TIME = -60; // promised an hour from now
const FIXTURES: Fixture[] = [
  // Closed in the last hour.
  {
    name: 'A',
    priority: 'essential',
    region: 'north',
    createdAt: 50,
    initialPromisedBy: ON_TIME,
    score: 5,
    attempts: [
      {
        status: 'delivered',
        receivedAt: 50,
        dispatchedAt: 45,
        deliveredAt: 12,
        closedAt: 10,
        parcels: [{ warehouse: 'w1', carrier: 'c1' }],
        reserved: ['w1'],
      },
    ],
  },
  {
    // Late against its initial promise (its current promise was moved later: not what counts).
    name: 'B',
    priority: 'express',
    region: 'north',
    createdAt: 55,
    initialPromisedBy: 30,
    score: 4,
    attempts: [
      {
        status: 'delivered',
        receivedAt: 55,
        dispatchedAt: 45,
        deliveredAt: 20,
        closedAt: 20,
        parcels: [{ warehouse: 'w2', carrier: 'c2' }],
      },
    ],
  },
  {
    // Two parcels at two carriers from two warehouses: counts in each.
    name: 'C',
    priority: 'standard',
    region: 'south',
    createdAt: 45,
    initialPromisedBy: ON_TIME,
    score: 2,
    attempts: [
      {
        status: 'delivered',
        receivedAt: 58,
        dispatchedAt: 43,
        deliveredAt: 30,
        closedAt: 30,
        parcels: [
          { warehouse: 'w1', carrier: 'c1' },
          { warehouse: 'w2', carrier: 'c2' },
        ],
      },
    ],
  },
  {
    name: 'D',
    priority: 'standard',
    region: 'south',
    createdAt: 20,
    initialPromisedBy: ON_TIME,
    attempts: [{ status: 'failed', failureReason: 'out_of_stock', receivedAt: 20, closedAt: 15 }],
  },
  {
    name: 'E',
    priority: 'express',
    region: 'south',
    createdAt: 40,
    initialPromisedBy: ON_TIME,
    attempts: [
      {
        status: 'failed',
        failureReason: 'returned',
        receivedAt: 59,
        dispatchedAt: 39,
        closedAt: 25,
        parcels: [{ warehouse: 'w1', carrier: 'c1' }],
      },
    ],
  },
  {
    // Never booked: its parcel has no carrier; its warehouse is known from parcel and reservation.
    name: 'F',
    priority: 'standard',
    region: 'north',
    createdAt: 30,
    initialPromisedBy: ON_TIME,
    attempts: [
      {
        status: 'failed',
        failureReason: 'carrier_failed',
        receivedAt: 30,
        closedAt: 5,
        parcels: [{ warehouse: 'w2', carrier: null }],
        reserved: ['w2'],
      },
    ],
  },
  {
    // Cancelled: in no figure but ordersPerMinute.
    name: 'G',
    priority: 'essential',
    region: 'north',
    createdAt: 15,
    initialPromisedBy: ON_TIME,
    attempts: [{ status: 'cancelled', receivedAt: 15, closedAt: 10, reserved: ['w3'] }],
  },
  {
    // Failed (at c1, from w2), retried by an operator, then delivered (c2, from w1): counts once, delivered.
    name: 'H',
    priority: 'essential',
    region: 'south',
    createdAt: 2 * 24 * 60,
    initialPromisedBy: ON_TIME,
    attempts: [
      {
        status: 'failed',
        failureReason: 'carrier_failed',
        receivedAt: 2 * 24 * 60,
        closedAt: 40,
        parcels: [{ warehouse: 'w2', carrier: 'c1' }],
      },
      {
        status: 'delivered',
        receivedAt: 35,
        dispatchedAt: 10,
        deliveredAt: 9,
        closedAt: 8,
        parcels: [{ warehouse: 'w1', carrier: 'c2' }],
      },
    ],
  },
  // Closed 1–24 h ago.
  {
    // Recorded 3 h ago, though the carrier's `at` falls in the last hour: closed by the recording.
    name: 'I',
    priority: 'standard',
    region: 'north',
    createdAt: 240,
    initialPromisedBy: 300,
    attempts: [
      {
        status: 'delivered',
        receivedAt: 240,
        dispatchedAt: 210,
        deliveredAt: 10,
        closedAt: 180,
        parcels: [{ warehouse: 'w1', carrier: 'c1' }],
      },
    ],
  },
  {
    name: 'J',
    priority: 'express',
    region: 'south',
    createdAt: 130,
    initialPromisedBy: ON_TIME,
    attempts: [
      {
        status: 'failed',
        failureReason: 'no_carrier',
        receivedAt: 130,
        closedAt: 120,
        parcels: [{ warehouse: 'w2', carrier: null }],
        reserved: ['w2'],
      },
    ],
  },
  // Closed 3 days ago: only in 7d.
  {
    name: 'K',
    priority: 'standard',
    region: 'north',
    createdAt: 3 * 24 * 60 + 60,
    initialPromisedBy: 3 * 24 * 60 - 600,
    attempts: [
      {
        status: 'delivered',
        receivedAt: 3 * 24 * 60 + 60,
        dispatchedAt: 3 * 24 * 60 + 50,
        deliveredAt: 3 * 24 * 60,
        closedAt: 3 * 24 * 60,
        parcels: [{ warehouse: 'w1', carrier: 'c1' }],
      },
    ],
  },
  // Not closed: received 5 min ago, only in ordersPerMinute.
  {
    name: 'L',
    priority: 'standard',
    region: 'north',
    createdAt: 5,
    initialPromisedBy: ON_TIME,
    attempts: [{ status: 'allocated', receivedAt: 5, reserved: ['w1'] }],
  },
];

async function insertFixtures(db: TestDatabase['database']['db']) {
  const shopId = randomUUID();
  await db.insert(shops).values({
    id: shopId,
    name: 'kpi shop',
    apiKeyId: randomBytes(8).toString('hex'),
    apiKeyHash: 'x',
    webhookSecret: 'secret-kpi',
  });
  for (const f of FIXTURES) {
    const id = randomUUID();
    const last = f.attempts[f.attempts.length - 1];
    await db.insert(orders).values({
      id,
      shopId,
      idempotencyKey: f.name,
      requestHash: f.name,
      externalId: f.name,
      status: last.status,
      priority: f.priority,
      attempt: f.attempts.length,
      customer: { name: 'K' },
      shippingAddress: { region: f.region, line1: '1', city: 'c', postalCode: '1', country: 'CN' },
      region: f.region,
      locale: 'en',
      notifyChannels: [],
      trackingToken: randomBytes(16).toString('base64url'),
      promisedBy: ago(-24 * 60),
      initialPromisedBy: ago(f.initialPromisedBy),
      deliveredAt: last.deliveredAt === undefined ? null : ago(last.deliveredAt),
      failureReason: (last.failureReason ?? null) as never,
      createdAt: ago(f.createdAt),
      updatedAt: ago(last.closedAt ?? 0),
    });
    for (const [index, a] of f.attempts.entries()) {
      const attempt = index + 1;
      const event = (status: string, at: number, recordedAt = at) => ({
        orderId: id,
        attempt,
        status: status as never,
        at: ago(at),
        recordedAt: ago(recordedAt),
      });
      const events = [event('received', a.receivedAt)];
      if (attempt > 1) events.push(event('retried', a.receivedAt));
      if (a.dispatchedAt !== undefined) events.push(event('dispatched', a.dispatchedAt));
      if (a.status === 'delivered') events.push(event('delivered', a.deliveredAt!, a.closedAt));
      else if (a.closedAt !== undefined) events.push(event(a.status, a.closedAt));
      else events.push(event(a.status, a.receivedAt));
      await db.insert(orderEvents).values(events);
      for (const p of a.parcels ?? []) {
        await db.insert(shipments).values({
          id: randomUUID(),
          orderId: id,
          attempt,
          warehouseId: p.warehouse,
          carrierId: p.carrier,
          trackingNumber: p.carrier ? randomUUID() : null,
          status: p.carrier ? (a.status === 'delivered' ? 'delivered' : 'returned') : 'pending',
        });
      }
      for (const w of a.reserved ?? []) {
        await db.insert(allocations).values({
          orderId: id,
          attempt,
          warehouseId: w,
          sku: 'SKU',
          quantity: 1,
          state: a.status === 'allocated' ? 'reserved' : 'released',
        });
      }
    }
    if (f.score !== undefined) await db.insert(feedback).values({ orderId: id, score: f.score });
  }
  // The rows are written straight in, not through transition(): their closures come from the
  // backfill, the same rule (closing event of the current attempt, its parcels and events).
  await backfillClosures(db);
}

const entry = (
  orders: number,
  onTimeRate: number | null,
  errorRate: number | null,
  satisfaction: number | null,
) => ({
  orders,
  onTimeRate,
  errorRate,
  satisfaction,
});

describe('GET /v1/admin/kpis', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await testDatabase();
    await insertFixtures(db.database.db);
    // The API alone: no worker or reconciler touches the fixture.
    server = await startTestServer(db.database, { role: 'api' });
    // Queue depths are read only while the queues' Redis connection is up (else `{}`).
    await waitFor(async () => server.ctx.queues.backend.connected(), 'the queues to reach Redis');
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const kpis = async (query: string) => {
    const response = await server.app.inject({
      method: 'GET',
      url: `/v1/admin/kpis${query}`,
      headers: server.admin,
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  it('1h: the orders whose closing event was recorded in the last hour, each figure by hand', async () => {
    const card = await kpis('?window=1h');
    // Closed: A B C H delivered (A C H on time), D E F failed; G cancelled, I J K outside.
    expect(card).toEqual({
      window: '1h',
      onTimeRate: 3 / 4,
      errorRate: 3 / 7,
      satisfaction: 2 / 3, // scores 5, 4, 2
      // received → dispatched: A 5, B 10, C 15, E 20, H 25 (its second attempt) minutes.
      processingTimeMs: { p50: 15 * MIN, p95: expect.closeTo(24 * MIN, 6) },
      // A B C D E F G L taken in during the hour.
      ordersPerMinute: 8 / 60,
      queueDepths: { allocation: 0, dispatch: 0, cancellation: 0, notification: 0 },
      targets: { onTimeRate: 0.95, errorRate: 0.01, satisfaction: 0.9 },
      breakdown: {
        priority: {
          essential: entry(2, 1, 0, 1), // A H
          express: entry(2, 0, 1 / 2, 1), // B E
          standard: entry(3, 1, 2 / 3, 0), // C D F
        },
        region: {
          north: entry(3, 1 / 2, 1 / 3, 1), // A B F
          south: entry(4, 1, 2 / 4, 0), // C D E H
        },
        carrier: {
          c1: entry(3, 1, 1 / 3, 1 / 2), // A C E (not H: its c1 parcel was the failed attempt's)
          c2: entry(3, 2 / 3, 0, 1 / 2), // B C H
        },
        warehouse: {
          w1: entry(4, 1, 1 / 4, 1 / 2), // A C E H
          w2: entry(3, 1 / 2, 1 / 3, 1 / 2), // B C F
        },
      },
    });
  });

  it('24h (the default): also the orders closed 1–24 h ago, by when the engine recorded it', async () => {
    const card = await kpis('');
    expect(card).toMatchObject({
      window: '24h',
      onTimeRate: 3 / 5, // + I late
      errorRate: 4 / 9, // + J failed
      satisfaction: 2 / 3,
      ordersPerMinute: 10 / (24 * 60), // + I J
    });
    // 5, 10, 15, 20, 25, 30 (I) minutes.
    expect(card.processingTimeMs.p50).toBeCloseTo(17.5 * MIN, 6);
    expect(card.processingTimeMs.p95).toBeCloseTo(28.75 * MIN, 6);
    expect(card.breakdown.priority).toEqual({
      essential: entry(2, 1, 0, 1),
      express: entry(3, 0, 2 / 3, 1), // B E J
      standard: entry(4, 1 / 2, 2 / 4, 0), // C D F I
    });
    expect(card.breakdown.region).toEqual({
      north: entry(4, 1 / 3, 1 / 4, 1), // A B F I
      south: entry(5, 1, 3 / 5, 0), // C D E H J
    });
    expect(card.breakdown.carrier).toEqual({
      c1: entry(4, 2 / 3, 1 / 4, 1 / 2), // A C E I
      c2: entry(3, 2 / 3, 0, 1 / 2),
    });
    expect(card.breakdown.warehouse).toEqual({
      w1: entry(5, 3 / 4, 1 / 5, 1 / 2), // A C E H I
      w2: entry(4, 1 / 2, 2 / 4, 1 / 2), // B C F J
    });
  });

  it('7d: also the order closed three days ago', async () => {
    const card = await kpis('?window=7d');
    expect(card).toMatchObject({ window: '7d', onTimeRate: 4 / 6, errorRate: 4 / 10, satisfaction: 2 / 3 });
    expect(card.ordersPerMinute).toBe(12 / (7 * 24 * 60));
    expect(card.breakdown.carrier.c1).toEqual(entry(5, 3 / 4, 1 / 5, 1 / 2));
  });

  it('refuses another window and unknown query fields (400), and callers without the admin token (401)', async () => {
    for (const query of ['?window=2h', '?window=24h&breakdown=none', '?windw=1h']) {
      const response = await server.app.inject({
        method: 'GET',
        url: `/v1/admin/kpis${query}`,
        headers: server.admin,
      });
      const problem = expectProblem(response, 400, 'validation_failed');
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    expectProblem(await server.app.inject({ method: 'GET', url: '/v1/admin/kpis' }), 401);
    expectProblem(
      await server.app.inject({
        method: 'GET',
        url: '/v1/admin/kpis',
        headers: { authorization: 'Bearer wrong' },
      }),
      401,
    );
  });

  it('the gauges show the 24 h rates in /metrics', async () => {
    const text = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    const value = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      expect(line, `${name} in /metrics`).toBeDefined();
      return Number(line!.split(' ')[1]);
    };
    expect(value('surgeline_kpi_on_time_rate')).toBeCloseTo(3 / 5, 12);
    expect(value('surgeline_kpi_error_rate')).toBeCloseTo(4 / 9, 12);
    expect(value('surgeline_kpi_satisfaction')).toBeCloseTo(2 / 3, 12);
  });
});

describe('order_closures: written by the closing transition, replaced on the next close, gone during a retry', () => {
  let db: TestDatabase;
  const env = { publicUrl: 'http://localhost' };

  beforeAll(async () => {
    db = await testDatabase();
  });

  afterAll(async () => {
    await db?.drop();
  });

  const closureOf = async (d: Db, id: string) =>
    (await d.select().from(orderClosures).where(eq(orderClosures.orderId, id)))[0];

  it('failed (attempt 1) → retry (no row) → delivered (attempt 2, its own parcels and events)', async () => {
    const d = db.database.db;
    const shopId = randomUUID();
    await d.insert(shops).values({
      id: shopId,
      name: 'closure shop',
      apiKeyId: randomBytes(8).toString('hex'),
      apiKeyHash: 'x',
      webhookSecret: 'secret-closure',
    });
    const id = randomUUID();
    await d.insert(orders).values({
      id,
      shopId,
      idempotencyKey: 'closure',
      requestHash: 'closure',
      externalId: 'closure',
      status: 'allocated',
      priority: 'express',
      customer: { name: 'K' },
      shippingAddress: { region: 'east', line1: '1', city: 'c', postalCode: '1', country: 'CN' },
      region: 'east',
      locale: 'en',
      notifyChannels: [],
      trackingToken: randomBytes(16).toString('base64url'),
      promisedBy: ago(-60),
      initialPromisedBy: ago(-60),
      createdAt: ago(60),
    });
    await d
      .insert(orderEvents)
      .values([{ orderId: id, attempt: 1, status: 'received', at: ago(60), recordedAt: ago(60) }]);
    await d.insert(shipments).values([
      { id: randomUUID(), orderId: id, attempt: 1, warehouseId: 'w1', carrierId: 'c1', trackingNumber: 'T1' },
      { id: randomUUID(), orderId: id, attempt: 1, warehouseId: 'w2', carrierId: null },
    ]);
    const move = async (to: 'allocated' | 'dispatched' | 'delivered' | 'failed', at: Date, set = {}) => {
      const order = (await findOrder(d, id))!;
      const moved = await d.transaction((tx) => transition(tx, order, { to, at, set }, env));
      expect(moved, to).not.toBeNull();
    };

    // Attempt 1: dispatched 10 min after intake, then returned.
    await move('dispatched', ago(50));
    expect(await closureOf(d, id)).toBeUndefined();
    await move('failed', ago(40), { failureReason: 'returned' });
    const [failedEvent] = await d
      .select()
      .from(orderEvents)
      .where(and(eq(orderEvents.orderId, id), eq(orderEvents.status, 'failed')));
    expect(await closureOf(d, id)).toEqual({
      orderId: id,
      attempt: 1,
      status: 'failed',
      failureReason: 'returned',
      closedAt: failedEvent.recordedAt,
      onTime: false,
      priority: 'express',
      region: 'east',
      processingMs: 10 * MIN,
      carriers: ['c1'],
      warehouses: ['w1', 'w2'],
    });

    // An operator's retry: in progress, the order counts nowhere.
    const failed = (await findOrder(d, id))!;
    const retried = await d.transaction((tx) => startRetry(tx, failed, env, { at: ago(30) }));
    expect(retried?.order.attempt).toBe(2);
    expect(await closureOf(d, id)).toBeUndefined();
    const hour = () => windowCounts(d, windowBounds('1h', new Date()));
    expect((await hour()).total.closed).toBe(0);

    // Attempt 2: one parcel at another carrier, dispatched 20 min after its received, delivered on time.
    await d.insert(shipments).values({
      id: randomUUID(),
      orderId: id,
      attempt: 2,
      warehouseId: 'w3',
      carrierId: 'c2',
      trackingNumber: 'T2',
    });
    await move('allocated', ago(20));
    await move('dispatched', ago(10));
    await move('delivered', ago(5), { deliveredAt: ago(5) });
    const [deliveredEvent] = await d
      .select()
      .from(orderEvents)
      .where(and(eq(orderEvents.orderId, id), eq(orderEvents.status, 'delivered')));
    expect(await closureOf(d, id)).toEqual({
      orderId: id,
      attempt: 2,
      status: 'delivered',
      failureReason: null,
      closedAt: deliveredEvent.recordedAt,
      onTime: true,
      priority: 'express',
      region: 'east',
      processingMs: 20 * MIN,
      carriers: ['c2'],
      warehouses: ['w3'],
    });
    expect(await d.select().from(orderClosures)).toHaveLength(1);
    // The scorecard counts it once, by how it last closed, at its second attempt's carrier.
    const card = await hour();
    expect(card.total).toEqual({ closed: 1, delivered: 1, onTime: 1, failed: 0, scores: 0, satisfied: 0 });
    expect(card.slices.carrier).toEqual({ c2: card.total });
    expect(card.processing).toEqual({ p50: 20 * MIN, p95: 20 * MIN });

    // The backfill (the migration's rule) finds the same row.
    await d.delete(orderClosures);
    await backfillClosures(d);
    expect(await closureOf(d, id)).toMatchObject({ attempt: 2, status: 'delivered', processingMs: 20 * MIN });
  });
});
