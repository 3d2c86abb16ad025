/**
 * POST /v1/orders/batch (contract, Shops): each order follows the rules of a single POST, its
 * `error` is the problem object the single POST would have answered, one bad order never fails
 * the others — and the request as a whole has one deadline for enqueueing its work, so a Redis
 * that is slow makes a batch of 50 answer in seconds, not 50 × the per-enqueue bound, with every
 * order committed and finished once the reconciler has re-enqueued what the request left behind.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { and, count, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderEvents, orders } from '../../src/db/schema.js';
import { ENQUEUE_TIMEOUT_MS } from '../../src/queues/enqueue.js';
import { newKey, orderBody, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import {
  REDIS_URL,
  startTestServer,
  testDatabase,
  waitFor,
  type TestDatabase,
  type TestServer,
} from '../helpers/harness.js';

type Result = { status: number; id?: string; error?: Record<string, unknown> };

/** The fields of a problem object that are the contract's, not its prose. */
const problemShape = (p: Record<string, unknown>) => ({
  type: p.type,
  title: p.title,
  status: p.status,
  code: p.code,
  errors: p.errors,
});

describe('a batch: one bad order fails only itself', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    db = await testDatabase();
    // No worker: orders stay `received`, so what the batch committed is what the table holds.
    server = await startTestServer(db.database, { role: 'api' });
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-batch',
      stock: { 'MASK-N95': 1000 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const postBatch = (entries: unknown[]) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: { ...shopHeaders(shop.apiKey), 'content-type': 'application/json' },
      // As text: JSON.stringify keeps a lone surrogate as the escape `\ud800`, which JSON allows.
      payload: JSON.stringify({ orders: entries }),
    });
  const postOne = (body: unknown, key: string) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(shop.apiKey, key), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const ordersWithKey = async (key: string) =>
    (await db.database.db.select({ n: count() }).from(orders).where(eq(orders.idempotencyKey, key)))[0].n;

  it('answers each bad order with the single POST’s problem and processes every other one', async () => {
    // A key already used with another body: the batch entry under it conflicts.
    const usedKey = newKey();
    expect((await postOne(orderBody(), usedKey)).statusCode).toBe(202);
    // A key already used with this very body: the entry is a repeat (200, the same order).
    const repeatKey = newKey();
    const repeatBody = orderBody();
    const first = await postOne(repeatBody, repeatKey);
    expect(first.statusCode).toBe(202);

    const entries = {
      good1: { idempotencyKey: newKey(), ...orderBody() },
      invalid: { idempotencyKey: newKey(), ...orderBody({ items: [{ sku: 'MASK-N95', quantity: 0 }] }) },
      unknownSku: {
        idempotencyKey: newKey(),
        ...orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }),
      },
      conflict: { idempotencyKey: usedKey, ...orderBody() },
      repeat: { idempotencyKey: repeatKey, ...repeatBody },
      // Valid JSON and valid to the schema's types, but text no database can store (a lone UTF-16
      // surrogate): refused by validation, never a 500 from the database.
      refusedByDb: {
        idempotencyKey: newKey(),
        ...orderBody({ customer: { name: 'Li \ud800 Wei', phone: '+8613800000000' } }),
      },
      good2: { idempotencyKey: newKey(), ...orderBody() },
    };
    const names = Object.keys(entries) as (keyof typeof entries)[];

    const response = await postBatch(Object.values(entries));
    expect(response.statusCode, response.body).toBe(200);
    const results: Result[] = response.json().results;
    expect(results).toHaveLength(names.length);
    const by = Object.fromEntries(names.map((name, i) => [name, results[i]])) as Record<
      (typeof names)[number],
      Result
    >;

    expect(by.good1).toMatchObject({ status: 202, id: expect.any(String) });
    expect(by.good2).toMatchObject({ status: 202, id: expect.any(String) });
    expect(by.repeat).toEqual({ status: 200, id: first.json().id });
    expect(by.invalid.status).toBe(400);
    expect(by.invalid.error).toMatchObject({ status: 400, code: 'validation_failed' });
    expect((by.invalid.error!.errors as { path: string }[]).map((e) => e.path)).toContain(
      'body/items/0/quantity',
    );
    expect(by.unknownSku).toMatchObject({ status: 422, error: { status: 422, code: 'unknown_sku' } });
    expect(by.conflict).toMatchObject({ status: 409, error: { status: 409, code: 'idempotency_conflict' } });
    expect(by.refusedByDb).toMatchObject({ status: 400, error: { status: 400, code: 'validation_failed' } });
    // No stack, SQL or driver message in the entry's problem.
    expect(JSON.stringify(by.refusedByDb.error)).not.toMatch(/insert|jsonb|22P02|at .*\.ts/i);

    // Each problem is the one the single POST answers for the same order and key.
    for (const name of ['invalid', 'unknownSku', 'conflict', 'refusedByDb'] as const) {
      const { idempotencyKey, ...body } = entries[name];
      const single = await postOne(body, idempotencyKey);
      expect(single.statusCode, `${name}: ${single.body}`).toBe(by[name].status);
      expect(problemShape(by[name].error!), name).toEqual(problemShape(single.json()));
      for (const field of ['type', 'title', 'status', 'detail', 'code'])
        expect(by[name].error).toHaveProperty(field);
    }

    // The good orders are committed; the bad ones left nothing behind.
    for (const name of ['good1', 'good2'] as const) {
      const [row] = await db.database.db.select().from(orders).where(eq(orders.id, by[name].id!));
      expect(row).toMatchObject({ idempotencyKey: entries[name].idempotencyKey, status: 'received' });
    }
    for (const name of ['invalid', 'unknownSku', 'refusedByDb'] as const) {
      expect(await ordersWithKey(entries[name].idempotencyKey), name).toBe(0);
    }
    expect(await ordersWithKey(usedKey)).toBe(1);
    expect(await ordersWithKey(repeatKey)).toBe(1);
  });
});

/**
 * A TCP proxy in front of Redis that can be made slow: with `delayMs` set, every answer from
 * Redis reaches the client that much later (in order), as from a Redis under heavy load.
 */
async function startSlowProxy(target: { host: string; port: number }) {
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      const now = Date.now();
      while (queue.length > 0 && queue[0].due <= now) {
        if (!client.destroyed) client.write(queue.shift()!.chunk);
        else queue.shift();
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0].due - now);
    };
    upstream.on('data', (chunk) => {
      if (delayMs === 0 && queue.length === 0) {
        client.write(chunk);
        return;
      }
      queue.push({ due: Date.now() + delayMs, chunk });
      timer ??= setTimeout(flush, delayMs);
    });
    client.on('data', (chunk) => upstream.write(chunk));
    const end = () => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    setDelay(ms: number) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('a batch against a slow Redis', () => {
  const REDIS_DELAY_MS = 1500;
  const BATCH = 50;
  let db: TestDatabase;
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startSlowProxy>>;
  let shop: { id: string; apiKey: string };

  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    proxy = await startSlowProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    db = await testDatabase();
    // API and workers (with the reconciler) in one process, all of its Redis through the proxy.
    server = await startTestServer(db.database, { env: { REDIS_URL: proxy.url } });
    shop = await seedShopWithStock(server.app, {
      shop: { rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-slow',
      stock: { 'MASK-N95': 10_000 },
    });
  });

  afterAll(async () => {
    proxy?.setDelay(0);
    await server?.close();
    await proxy?.close();
    await db?.drop();
  });

  /** How many of the orders have an `allocated` event in their timeline. */
  const allocatedCount = async (ids: string[]) => {
    const rows = await db.database.db
      .selectDistinct({ orderId: orderEvents.orderId })
      .from(orderEvents)
      .where(and(inArray(orderEvents.orderId, ids), eq(orderEvents.status, 'allocated')));
    return rows.length;
  };

  it('answers 50 orders within one enqueue deadline; the reconciler finishes what it left', async () => {
    await waitFor(async () => server.ctx.coord.connected(), 'Redis through the proxy');
    // Warm-up while Redis is fast: the scripts of the rate limit and the queues are loaded, and
    // an order goes all the way to `allocated` through the proxy.
    const warm = await server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: shopHeaders(shop.apiKey, newKey()),
      payload: orderBody(),
    });
    expect(warm.statusCode, warm.body).toBe(202);
    await waitFor(
      async () => (await allocatedCount([warm.json().id])) === 1,
      'the warm-up order to be allocated',
    );

    proxy.setDelay(REDIS_DELAY_MS);
    const entries = Array.from({ length: BATCH }, () => ({ idempotencyKey: newKey(), ...orderBody() }));
    const started = Date.now();
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: shopHeaders(shop.apiKey),
      payload: { orders: entries },
    });
    const elapsed = Date.now() - started;
    expect(response.statusCode, response.body).toBe(200);
    const results: Result[] = response.json().results;
    expect(results.map((r) => r.status)).toEqual(entries.map(() => 202));

    // One rate-limit round trip, one enqueue deadline for the whole request, and the inserts.
    // Each order waiting out its own enqueues would take BATCH × 2 × REDIS_DELAY_MS (150 s).
    expect(elapsed).toBeLessThan(REDIS_DELAY_MS + ENQUEUE_TIMEOUT_MS + 6_000);

    // Every answered order is committed.
    const ids = results.map((r) => r.id!);
    const committed = await db.database.db
      .select({ id: orders.id })
      .from(orders)
      .where(inArray(orders.id, ids));
    expect(committed).toHaveLength(BATCH);

    // Redis recovers. Past the deadline the request enqueued nothing for most orders (it did not
    // even send the commands): their allocation comes from the reconciler.
    proxy.setDelay(0);
    await waitFor(
      async () => (await allocatedCount(ids)) === BATCH,
      'every order of the batch to be allocated',
      40_000,
    );
    expect(await allocatedCount(ids)).toBe(BATCH);
  });
});
