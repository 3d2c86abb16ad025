import { randomBytes, randomUUID } from 'node:crypto';
import type { Job, JobState, Queue } from 'bullmq';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Context } from '../../src/context.js';
import type { Db } from '../../src/db/client.js';
import { carrierAttempts, notifications, orders, shipments } from '../../src/db/schema.js';
import { TOPOLOGY } from '../../src/queues/topology.js';
import { reconcileOnce, type ReconcilePass } from '../../src/workers/reconciler.js';
import { createCarrier, orderBody, placeOrder, seedShopWithStock } from '../helpers/fixtures.js';
import {
  deleteRedisKeys,
  startTestServer,
  testDatabase,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

const HOUR = 3600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface OrderSeed {
  id: string;
  status: 'received' | 'allocated';
  updatedAt: Date;
}

/**
 * Copies the template order once per seed (fresh id, keys and token; the seed's status and
 * updated_at), in one statement: whatever columns the table has come from the template.
 */
async function cloneOrders(db: Db, templateId: string, seeds: OrderSeed[]) {
  const rows = seeds.map((s) => ({
    id: s.id,
    idempotency_key: `clone-${s.id}`,
    external_id: `C-${s.id.slice(0, 8)}`,
    tracking_token: randomBytes(18).toString('base64url'),
    status: s.status,
    created_at: s.updatedAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
  }));
  await db.execute(sql`
    insert into orders
    select p.* from orders o
      cross join jsonb_array_elements(${JSON.stringify(rows)}::jsonb) r
      cross join lateral jsonb_populate_record(o, r.value) p
    where o.id = ${templateId}::uuid`);
}

/** Copies the template notification once per seed, pending, for the seed's order and created_at. */
async function cloneNotifications(
  db: Db,
  templateId: string,
  seeds: { id: string; orderId: string; createdAt: Date }[],
) {
  const rows = seeds.map((s) => ({
    id: s.id,
    order_id: s.orderId,
    state: 'pending',
    created_at: s.createdAt.toISOString(),
  }));
  await db.execute(sql`
    insert into notifications
    select p.* from notifications n
      cross join jsonb_array_elements(${JSON.stringify(rows)}::jsonb) r
      cross join lateral jsonb_populate_record(n, r.value) p
    where n.id = ${templateId}::uuid`);
}

/** A shop and one order placed through the API, then taken out of the reconciler's way: the rows to copy. */
async function seedTemplate(server: TestServer) {
  const shop = await seedShopWithStock(server.app, { warehouseId: 'wh-template', stock: { 'MASK-N95': 10 } });
  const placed = await placeOrder(server.app, shop.apiKey, orderBody({ priority: 'express' }));
  const db = server.ctx.db;
  const [notification] = await db
    .select({ id: notifications.id, channel: notifications.channel })
    .from(notifications)
    .where(eq(notifications.orderId, placed.id));
  expect(notification).toBeDefined();
  await db.update(orders).set({ status: 'cancelled' }).where(eq(orders.id, placed.id));
  await db.update(notifications).set({ state: 'sent' }).where(eq(notifications.orderId, placed.id));
  return { orderId: placed.id as string, notificationId: notification.id, channel: notification.channel };
}

const allocationId = (orderId: string) => TOPOLOGY.allocation.jobId({ orderId, attempt: 1 });
const dispatchId = (orderId: string) => TOPOLOGY.dispatch.jobId({ orderId, attempt: 1 });
const notificationId = (id: string) => TOPOLOGY.notification.jobId({ notificationId: id, channel: 'sms' });

const statesOf = (queue: Queue, ids: string[]) => Promise.all(ids.map((id) => queue.getJobState(id)));

/** A worker that takes jobs by hand (getNextJob), so a test can hold one active or fail it. */
function manualWorker(server: TestServer, queue: string) {
  // On the process's own queue backend (Redis, or PostgreSQL in the pg-queues project).
  const worker = server.ctx.queues.backend.worker(queue, null as never, {
    autorun: false,
    lockDuration: 5 * 60_000,
  });
  worker.on('error', () => {});
  return {
    worker,
    async close() {
      await worker.close(true);
      await worker.disconnect();
    },
  };
}

/** Runs passes back to back until one scans both tables to their end; fails past `limitMs` of reconciler time. */
async function reconcileUntilExhausted(
  ctx: Context,
  options: { pageSize: number; budgetMs?: number; maxPages?: number },
  limitMs = 60_000,
) {
  const started = Date.now();
  const passes: ReconcilePass[] = [];
  for (;;) {
    const pass = await reconcileOnce(ctx, options);
    if (pass.ran) passes.push(pass);
    if (pass.ran && pass.exhausted) break;
    if (Date.now() - started > limitMs) throw new Error(`backlog not worked off in ${limitMs} ms`);
    if (!pass.ran) await sleep(50); // the lock of an earlier exhausted pass is still held
  }
  return { passes, elapsedMs: Date.now() - started };
}

describe('reconciler: a backlog larger than a page, live jobs sorting before lost ones', () => {
  let db: TestDatabase;
  let server: TestServer;
  let hand: ReturnType<typeof manualWorker> | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    // No workers and no reconciler of its own: the test runs every pass.
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await hand?.close();
    await server?.close();
    await db?.drop();
  });

  it('gives every lost order and notification its job again, and leaves live jobs alone', async () => {
    const { ctx } = server;
    const template = await seedTemplate(server);
    await deleteRedisKeys(server.config.queuePrefix); // Redis flushed: every job is gone

    const base = Date.now();
    const LIVE = 300;
    const LOST = 300;
    // Live rows sort first (older), lost rows after them.
    const live: OrderSeed[] = Array.from({ length: LIVE }, (_, i) => ({
      id: randomUUID(),
      status: 'received',
      updatedAt: new Date(base - 2 * HOUR + i * 1000),
    }));
    const lost: OrderSeed[] = Array.from({ length: LOST }, (_, i) => ({
      id: randomUUID(),
      status: i % 3 === 0 ? 'allocated' : 'received',
      updatedAt: new Date(base - HOUR + i * 1000),
    }));
    // Several rows at the same instant: the cursor's id tiebreak must neither skip nor loop.
    for (const seed of lost.slice(100, 160)) seed.updatedAt = new Date(base - HOUR + 100_000);
    await cloneOrders(ctx.db, template.orderId, [...live, ...lost]);

    const orderIds = [...live, ...lost].map((o) => o.id);
    const notes = orderIds.map((orderId, i) => ({
      id: randomUUID(),
      orderId,
      createdAt: new Date(base - 2 * HOUR + i * 1000),
    }));
    const liveNotes = notes.slice(0, LIVE);
    const lostNotes = notes.slice(LIVE);
    await cloneNotifications(ctx.db, template.notificationId, notes);

    // The live orders' jobs: some active (taken by a worker), some waiting, some delayed, the rest prioritized.
    const allocation = ctx.queues.lanes.allocation.byClass.express;
    const plain = (o: OrderSeed, opts: { delay?: number } = {}) =>
      allocation.add(
        TOPOLOGY.allocation.jobName,
        { orderId: o.id, attempt: 1 },
        { jobId: allocationId(o.id), ...opts },
      );
    for (const o of live.slice(0, 5)) await plain(o);
    hand = manualWorker(server, 'allocation.express');
    const active: Job[] = [];
    for (let i = 0; i < 5; i++) active.push(await hand.worker.getNextJob(`hand-${i}`));
    expect(active.every(Boolean)).toBe(true);
    for (const o of live.slice(5, 15)) await plain(o);
    for (const o of live.slice(15, 25)) await plain(o, { delay: HOUR });
    await ctx.queues.addBulk(
      'allocation',
      live.slice(25).map((o) => ({ data: { orderId: o.id, attempt: 1 }, priority: 'express' as const })),
    );
    await ctx.queues.addBulk(
      'notification',
      liveNotes.map((n) => ({
        data: { notificationId: n.id, channel: template.channel },
        priority: 'standard' as const,
      })),
    );

    const liveIds = live.map((o) => allocationId(o.id));
    const statesBefore = await statesOf(allocation, liveIds);
    expect(statesBefore.slice(0, 5)).toEqual(Array(5).fill('active'));
    expect(statesBefore.slice(5, 15)).toEqual(Array(10).fill('waiting'));
    expect(statesBefore.slice(15, 25)).toEqual(Array(10).fill('delayed'));
    expect(new Set(statesBefore.slice(25))).toEqual(new Set(['prioritized']));
    const stamps = async () =>
      (await Promise.all(liveIds.map((id) => allocation.getJob(id)))).map((job) => job?.timestamp);
    const stampsBefore = await stamps();

    // Small pages and short passes: several passes, each resuming from the last one's cursor.
    const { passes, elapsedMs } = await reconcileUntilExhausted(ctx, {
      pageSize: 50,
      maxPages: 10,
      budgetMs: 60_000,
    });
    expect(elapsedMs).toBeLessThan(60_000);
    // 600 orders and 600 messages, 13 pages of 50 each (the last one empty), 10 pages a pass.
    expect(passes.length).toBe(3);
    expect(passes.every((p) => p.scanned <= 500)).toBe(true);
    expect(passes.slice(0, -1).every((p) => !p.exhausted)).toBe(true);
    // Exactly the lost work came back: no live job counted, none twice.
    expect(passes.reduce((sum, p) => sum + p.requeued, 0)).toBe(LOST + lostNotes.length);

    const lostReceived = lost.filter((o) => o.status === 'received').map((o) => allocationId(o.id));
    const lostAllocated = lost.filter((o) => o.status === 'allocated').map((o) => dispatchId(o.id));
    expect(lostAllocated.length).toBeGreaterThan(0);
    for (const state of await statesOf(allocation, lostReceived)) expect(state).toBe('prioritized');
    for (const state of await statesOf(ctx.queues.lanes.dispatch.byClass.express, lostAllocated))
      expect(state).toBe('prioritized');
    for (const state of await statesOf(
      ctx.queues.notification[template.channel],
      notes.map((n) => notificationId(n.id)),
    ))
      expect(state).toBe('prioritized');

    // The live jobs are the same jobs, in the same states: not removed, not added again.
    expect(await statesOf(allocation, liveIds)).toEqual(statesBefore);
    expect(await stamps()).toEqual(stampsBefore);
    const counts = await allocation.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    expect(counts.active + counts.waiting + counts.delayed + counts.prioritized).toBe(
      LIVE + lostReceived.length,
    );

    // A further full pass finds nothing missing.
    await sleep(1100); // the exhausted pass holds the lock for one interval
    const again = await reconcileUntilExhausted(ctx, { pageSize: 500, budgetMs: 10_000 });
    expect(again.passes.reduce((sum, p) => sum + p.requeued, 0)).toBe(0);
  }, 120_000); // beyond the 60 s of reconciler time, so running out of it fails with its own message
});

describe('reconciler: work that moved on between the scan and the re-enqueue', () => {
  let db: TestDatabase;
  let server: TestServer;
  let hand: ReturnType<typeof manualWorker> | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  afterAll(async () => {
    await hand?.close();
    await server?.close();
    await db?.drop();
  });

  it('is left alone: an order allocated meanwhile, a notification sent meanwhile, a completed job', async () => {
    const { ctx } = server;
    const template = await seedTemplate(server);
    await deleteRedisKeys(server.config.queuePrefix);
    const old = Date.now() - HOUR;
    const seeds: OrderSeed[] = Array.from({ length: 4 }, (_, i) => ({
      id: randomUUID(),
      status: 'received',
      updatedAt: new Date(old + i * 1000),
    }));
    await cloneOrders(ctx.db, template.orderId, seeds);
    const [movedOn, finished, stillLost, alsoLost] = seeds.map((s) => s.id);
    const notes = [movedOn, stillLost].map((orderId, i) => ({
      id: randomUUID(),
      orderId,
      createdAt: new Date(old + i * 1000),
    }));
    await cloneNotifications(ctx.db, template.notificationId, notes);
    const [sentNote, lostNote] = notes.map((n) => n.id);

    // `finished` ran to completion (its job is in the completed set).
    const allocation = ctx.queues.lanes.allocation.byClass.express;
    await allocation.add(
      TOPOLOGY.allocation.jobName,
      { orderId: finished, attempt: 1 },
      { jobId: allocationId(finished) },
    );
    hand = manualWorker(server, 'allocation.express');
    const job = await hand.worker.getNextJob('hand');
    expect(job.id).toBe(allocationId(finished));
    await job.moveToCompleted('allocated', 'hand', false);
    const completedAt = (await allocation.getJob(allocationId(finished)))?.finishedOn;
    expect(await allocation.getJobState(allocationId(finished))).toBe('completed');

    // While the reconciler looks at their jobs, the work moves on: what a slow worker's commit looks like.
    const moveOn: Record<string, () => Promise<unknown>> = {
      [allocationId(movedOn)]: () =>
        ctx.db
          .update(orders)
          .set({ status: 'allocated', updatedAt: new Date() })
          .where(eq(orders.id, movedOn)),
      [allocationId(finished)]: () =>
        ctx.db
          .update(orders)
          .set({ status: 'allocated', updatedAt: new Date() })
          .where(eq(orders.id, finished)),
      [notificationId(sentNote)]: () =>
        ctx.db
          .update(notifications)
          .set({ state: 'sent', sentAt: new Date() })
          .where(eq(notifications.id, sentNote)),
    };
    for (const queue of [allocation, ctx.queues.notification[template.channel]]) {
      const original = queue.getJobState.bind(queue);
      vi.spyOn(queue, 'getJobState').mockImplementation(async (jobId: string) => {
        const move = moveOn[jobId];
        delete moveOn[jobId];
        if (move) await move();
        return original(jobId);
      });
    }

    const pass = await reconcileOnce(ctx, { pageSize: 2 });
    expect(pass).toMatchObject({ ran: true, exhausted: true });
    expect(Object.keys(moveOn)).toEqual([]); // every move happened during the pass
    expect(pass.requeued).toBe(3); // stillLost, alsoLost, lostNote

    expect(await allocation.getJobState(allocationId(movedOn))).toBe('unknown');
    expect(await ctx.queues.lanes.dispatch.byClass.express.getJobState(dispatchId(movedOn))).toBe('unknown');
    expect(await allocation.getJobState(allocationId(finished))).toBe('completed');
    expect((await allocation.getJob(allocationId(finished)))?.finishedOn).toBe(completedAt);
    expect(await ctx.queues.notification[template.channel].getJobState(notificationId(sentNote))).toBe(
      'unknown',
    );

    expect(await allocation.getJobState(allocationId(stillLost))).toBe('prioritized');
    expect(await allocation.getJobState(allocationId(alsoLost))).toBe('prioritized');
    expect(await ctx.queues.notification[template.channel].getJobState(notificationId(lostNote))).toBe(
      'prioritized',
    );

    const rows = await ctx.db
      .select({ id: orders.id, status: orders.status })
      .from(orders)
      .where(inArray(orders.id, [movedOn, finished]));
    expect(rows.map((r) => r.status)).toEqual(['allocated', 'allocated']);
  });
});

describe('reconciler: a failed job whose work is still due', () => {
  let db: TestDatabase;
  let server: TestServer;
  let hand: ReturnType<typeof manualWorker> | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await hand?.close();
    await server?.close();
    await db?.drop();
  });

  it('is retried with its attempts reset to 0', async () => {
    const { ctx } = server;
    const template = await seedTemplate(server);
    await deleteRedisKeys(server.config.queuePrefix);
    const order: OrderSeed = { id: randomUUID(), status: 'received', updatedAt: new Date(Date.now() - HOUR) };
    await cloneOrders(ctx.db, template.orderId, [order]);

    const allocation = ctx.queues.lanes.allocation.byClass.express;
    const jobId = allocationId(order.id);
    await allocation.add(
      TOPOLOGY.allocation.jobName,
      { orderId: order.id, attempt: 1 },
      { jobId, attempts: 2, backoff: { type: 'fixed', delay: 0 } },
    );
    hand = manualWorker(server, 'allocation.express');
    for (const token of ['first', 'second']) {
      const job = await hand.worker.getNextJob(token);
      expect(job?.id).toBe(jobId);
      await job.moveToFailed(new Error('database away'), token, false);
      if (token === 'first') await waitForState(allocation, jobId, ['waiting']);
    }
    expect(await allocation.getJobState(jobId)).toBe('failed');
    expect((await allocation.getJob(jobId))?.attemptsMade).toBe(2);

    const pass = await reconcileOnce(ctx);
    expect(pass).toMatchObject({ ran: true, requeued: 1, exhausted: true });

    const retried = await allocation.getJob(jobId);
    expect(retried?.attemptsMade).toBe(0);
    expect(retried?.attemptsStarted).toBe(0);
    expect(retried?.failedReason).toBeFalsy();
    expect(['waiting', 'prioritized']).toContain(await allocation.getJobState(jobId));
  });
});

describe('reconciler: an allocated order whose parcels wait in a carrier booking lane', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('is left alone while a booking job of a parcel is alive, and gets its dispatch job back once none is', async () => {
    const { ctx } = server;
    const template = await seedTemplate(server);
    for (const id of ['lane-a', 'lane-b']) {
      await createCarrier(server.app, {
        id,
        baseUrl: 'http://127.0.0.1:9/',
        webhookSecret: 'carrier-secret-123',
      });
    }
    await deleteRedisKeys(server.config.queuePrefix);
    const old = Date.now() - HOUR;
    const seeds: OrderSeed[] = Array.from({ length: 3 }, (_, i) => ({
      id: randomUUID(),
      status: 'allocated',
      updatedAt: new Date(old + i * 1000),
    }));
    await cloneOrders(ctx.db, template.orderId, seeds);
    const [waiting, retrying, lost] = seeds.map((s) => s.id);
    const parcel = Object.fromEntries(seeds.map((s) => [s.id, randomUUID()]));
    await ctx.db
      .insert(shipments)
      .values(
        seeds.map((s) => ({ id: parcel[s.id], orderId: s.id, attempt: 1, warehouseId: 'wh-template' })),
      );
    // `retrying` made one call, refused at lane-a; its second waits out a backoff at lane-b.
    await ctx.db.insert(carrierAttempts).values({
      orderId: retrying,
      shipmentId: parcel[retrying],
      carrierId: 'lane-a',
      outcome: 'transient',
      answeredAt: new Date(),
    });
    const shopId = (
      await ctx.db.select({ shopId: orders.shopId }).from(orders).where(eq(orders.id, waiting))
    )[0].shopId;
    const turn = { priority: 'express' as const, shopId };
    await ctx.queues.book(
      { orderId: waiting, attempt: 1, shipmentId: parcel[waiting], carrierId: 'lane-a', call: 1 },
      turn,
    );
    await ctx.queues.book(
      { orderId: retrying, attempt: 1, shipmentId: parcel[retrying], carrierId: 'lane-b', call: 2 },
      turn,
      60_000,
    );
    const dispatch = ctx.queues.lanes.dispatch.byClass.express;
    const lockKey = `${server.config.queuePrefix}:reconciler:lock`;

    const pass = await reconcileOnce(ctx);
    expect(pass).toMatchObject({ ran: true, requeued: 1, exhausted: true });
    expect(await statesOf(dispatch, [waiting, retrying, lost].map(dispatchId))).toEqual([
      'unknown',
      'unknown',
      'prioritized',
    ]);

    // The waiting call's job is gone (Redis flushed, say): its order's dispatch job comes back.
    await ctx.queues.carrierQueue('lane-a').byClass.express.remove(`book-${parcel[waiting]}-1`);
    await ctx.coord.del(lockKey);
    const again = await reconcileOnce(ctx);
    expect(again).toMatchObject({ ran: true, requeued: 1, exhausted: true });
    expect(await statesOf(dispatch, [waiting, retrying].map(dispatchId))).toEqual(['prioritized', 'unknown']);
  });
});

async function waitForState(queue: Queue, jobId: string, states: (JobState | 'unknown')[]) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const state = await queue.getJobState(jobId);
    if (states.includes(state)) return state;
    if (Date.now() > deadline) throw new Error(`job ${jobId} stayed ${state}`);
    await sleep(20);
  }
}
