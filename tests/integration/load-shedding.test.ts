/**
 * Load shedding and the global intake ceiling (contract: POST /v1/orders, "Overloaded → 503 with
 * Retry-After", and POST /v1/orders/batch). The processes run as `api` only: no worker drains the
 * allocation queue, so the backlog is exactly what the test puts there (fake jobs, plus one
 * allocation job per order accepted).
 */
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orders } from '../../src/db/schema.js';
import { BACKLOG_CACHE_MS } from '../../src/queues/backlog.js';
import { newKey, orderBody, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

type Shop = { id: string; apiKey: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('load shedding and the intake ceiling', () => {
  let db: TestDatabase;
  let shedding: TestServer;
  let ceiling: TestServer;
  let shop: Shop;

  beforeAll(async () => {
    db = await testDatabase();
    shedding = await startTestServer(db.database, {
      role: 'api',
      env: { SHED_STANDARD_AT: '5', SHED_EXPRESS_AT: '10', SHED_ALL_AT: '15' },
    });
    // Another deployment (its own prefix, so its own queues and ceiling) on the same database.
    ceiling = await startTestServer(db.database, { role: 'api', env: { INTAKE_MAX_PER_SECOND: '3' } });
    shop = await seedShopWithStock(shedding.app, {
      shop: { name: 'Surge Shop', rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-shed',
      stock: { 'MASK-N95': 100_000 },
    });
  });

  afterAll(async () => {
    await ceiling?.close();
    await shedding?.close();
    await db?.drop();
  });

  const post = (server: TestServer, priority: string, key = newKey()) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(shop.apiKey, key), 'content-type': 'application/json' },
      payload: JSON.stringify(orderBody({ priority })),
    });

  const postBatch = (server: TestServer, entries: Record<string, unknown>[]) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: { ...shopHeaders(shop.apiKey), 'content-type': 'application/json' },
      payload: JSON.stringify({ orders: entries }),
    });

  const orderCount = async () =>
    (await shedding.ctx.db.select({ n: count() }).from(orders).where(eq(orders.shopId, shop.id)))[0].n;

  /** Empties the allocation queue, then fills it with `n` jobs of orders that do not exist. */
  async function setBacklog(n: number) {
    const allocation = shedding.ctx.queues.byName.allocation;
    await allocation.drain(true);
    const jobs = Array.from({ length: n }, (_, i) => ({
      data: { orderId: `fake-${Date.now()}-${i}`, attempt: 1 },
      priority: (['essential', 'express', 'standard'] as const)[i % 3],
    }));
    if (jobs.length > 0) await shedding.ctx.queues.addBulk('allocation', jobs);
    const counts = await allocation.getJobCounts('waiting', 'prioritized', 'delayed');
    expect(counts.waiting + counts.prioritized + counts.delayed).toBe(n);
    await sleep(BACKLOG_CACHE_MS + 50); // past the reading every process keeps
  }

  it('sheds standard orders above SHED_STANDARD_AT with 503 overloaded and Retry-After, writing nothing', async () => {
    await setBacklog(6);
    const before = await orderCount();
    const key = newKey();
    const refused = await post(shedding, 'standard', key);
    const body = expectProblem(refused, 503, 'overloaded');
    expect(body.type).toBe('urn:surgeline:problem:overloaded');
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // No priority given is standard.
    const { priority: _omitted, ...noPriority } = orderBody();
    const defaulted = await shedding.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(shop.apiKey, newKey()), 'content-type': 'application/json' },
      payload: JSON.stringify(noPriority),
    });
    expectProblem(defaulted, 503, 'overloaded');
    expect(await orderCount()).toBe(before);

    // Express and essential still go through (each adds its allocation job: backlog 8).
    expect((await post(shedding, 'express')).statusCode).toBe(202);
    expect((await post(shedding, 'essential')).statusCode).toBe(202);
    expect(await orderCount()).toBe(before + 2);

    // The refused key was not consumed: once the backlog is down, the same key makes the order.
    await setBacklog(0);
    const accepted = await post(shedding, 'standard', key);
    expect(accepted.statusCode).toBe(202);
    expect(await orderCount()).toBe(before + 3);
  });

  it('sheds express too above SHED_EXPRESS_AT, and every order at SHED_ALL_AT; takes them again below', async () => {
    await setBacklog(11);
    const before = await orderCount();
    expectProblem(await post(shedding, 'standard'), 503, 'overloaded');
    expectProblem(await post(shedding, 'express'), 503, 'overloaded');
    expect((await post(shedding, 'essential')).statusCode).toBe(202);

    await setBacklog(15);
    const essential = await post(shedding, 'essential');
    expectProblem(essential, 503, 'overloaded');
    expect(essential.headers['retry-after']).toMatch(/^\d+$/);
    expectProblem(await post(shedding, 'express'), 503, 'overloaded');
    expect(await orderCount()).toBe(before + 1);

    await setBacklog(2);
    for (const priority of ['standard', 'express', 'essential'])
      expect((await post(shedding, priority)).statusCode).toBe(202);
    expect(await orderCount()).toBe(before + 4);

    const metrics = await shedding.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/surgeline_orders_shed_total\{priority="standard"\} [1-9]/);
    expect(metrics.body).toMatch(/surgeline_orders_shed_total\{priority="express"\} [1-9]/);
    expect(metrics.body).toMatch(/surgeline_orders_shed_total\{priority="essential"\} [1-9]/);
  });

  it('applies shedding to each order of a batch, each shed one with its own 503 problem', async () => {
    await setBacklog(11);
    const before = await orderCount();
    const entries = ['standard', 'express', 'essential', 'standard'].map((priority) => ({
      idempotencyKey: newKey(),
      ...orderBody({ priority }),
    }));
    const response = await postBatch(shedding, entries);
    expect(response.statusCode).toBe(200);
    const { results } = response.json() as {
      results: { status: number; id?: string; error?: { status: number; code: string } }[];
    };
    expect(results.map((r) => r.status)).toEqual([503, 503, 202, 503]);
    for (const shed of [results[0], results[1], results[3]]) {
      expect(shed.id).toBeUndefined();
      expect(shed.error).toMatchObject({
        status: 503,
        code: 'overloaded',
        type: 'urn:surgeline:problem:overloaded',
        title: expect.any(String),
        detail: expect.any(String),
      });
    }
    expect(results[2].id).toEqual(expect.any(String));
    expect(await orderCount()).toBe(before + 1);

    // The shed keys were not consumed either.
    await setBacklog(0);
    const again = await postBatch(shedding, entries);
    expect((again.json() as { results: { status: number }[] }).results.map((r) => r.status)).toEqual([
      202, 202, 200, 202,
    ]);
  });

  it('answers the 4th order in a second over INTAKE_MAX_PER_SECOND=3 with 429 rate_limited and Retry-After', async () => {
    const before = await orderCount();
    const burst = await Promise.all(Array.from({ length: 4 }, () => post(ceiling, 'standard')));
    const statuses = burst.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([202, 202, 202, 429]);
    const refused = burst.find((r) => r.statusCode === 429)!;
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.headers['retry-after']).toBe('1');
    expect(await orderCount()).toBe(before + 3);

    // Essential orders are never refused by the ceiling…
    expect((await post(ceiling, 'essential')).statusCode).toBe(202);

    // …but count towards it: three essential orders fill a fresh second, then standard is refused.
    await sleep(1_100);
    const essentials = await Promise.all(Array.from({ length: 3 }, () => post(ceiling, 'essential')));
    expect(essentials.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    expectProblem(await post(ceiling, 'express'), 429, 'rate_limited');
  });

  it('counts each order of a batch against the ceiling', async () => {
    await sleep(1_100);
    const entries = Array.from({ length: 5 }, () => ({ idempotencyKey: newKey(), ...orderBody() }));
    const response = await postBatch(ceiling, entries);
    const { results } = response.json() as { results: { status: number; error?: { code: string } }[] };
    expect(results.slice(0, 4).map((r) => r.status)).toEqual([202, 202, 202, 429]);
    expect(results[3].error).toMatchObject({ status: 429, code: 'rate_limited' });
  });
});
