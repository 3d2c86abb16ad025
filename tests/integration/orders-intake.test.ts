/**
 * POST /v1/orders and POST /v1/orders/batch against the "Shops" section of the contract:
 * the 202 answer, idempotency (repeats, conflicts, concurrent duplicates, per-shop keys),
 * shop authentication, and input that must be refused without leaving a trace.
 *
 * The process runs as `api` only: no worker moves an order on, so row counts taken before and
 * after a refused request change only if that request wrote something.
 */
import { count, eq } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifications, orderEvents, orderItems, orders } from '../../src/db/schema.js';
import { createShop, newKey, orderBody, seedShopWithStock, shopHeaders } from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const PUBLIC_URL = 'https://track.surgeline.test';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const TRACKING_TOKEN = /^[A-Za-z0-9_-]{22,}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Shop = { id: string; apiKey: string; webhookSecret: string };

function expectValidationError(response: LightMyRequestResponse, path: string) {
  const body = expectProblem(response, 400, 'validation_failed');
  expect(Array.isArray(body.errors)).toBe(true);
  for (const error of body.errors!) {
    expect(typeof error.path).toBe('string');
    expect(typeof error.message).toBe('string');
  }
  expect(body.errors!.map((e) => e.path)).toContain(path);
  return body;
}

describe('shop order intake', () => {
  let db: TestDatabase;
  let server: TestServer;
  let shop: Shop;
  let otherShop: Shop;

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database, { role: 'api', env: { PUBLIC_URL } });
    shop = await seedShopWithStock(server.app, {
      shop: { name: 'Intake Shop', rateLimitPerMinute: 100_000 },
      warehouseId: 'wh-intake',
      stock: { 'MASK-N95': 100_000, 'GLOVE-M': 100_000 },
    });
    otherShop = await createShop(server.app, { name: 'Other Shop', rateLimitPerMinute: 100_000 });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  /** `key: null` sends no Idempotency-Key at all. */
  const post = (payload: unknown, key: string | null = newKey(), apiKey = shop.apiKey) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...shopHeaders(apiKey, key ?? undefined), 'content-type': 'application/json' },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });

  const postBatch = (payload: unknown, apiKey = shop.apiKey) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/orders/batch',
      headers: { ...shopHeaders(apiKey), 'content-type': 'application/json' },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });

  async function rowCounts() {
    const db = server.ctx.db;
    const [[o], [i], [e], [n]] = await Promise.all([
      db.select({ n: count() }).from(orders),
      db.select({ n: count() }).from(orderItems),
      db.select({ n: count() }).from(orderEvents),
      db.select({ n: count() }).from(notifications),
    ]);
    return {
      orders: Number(o.n),
      orderItems: Number(i.n),
      orderEvents: Number(e.n),
      notifications: Number(n.n),
    };
  }

  /** Runs a request that must be refused and checks that it wrote nothing. */
  async function leavesNoTrace(send: () => Promise<LightMyRequestResponse>) {
    const before = await rowCounts();
    const response = await send();
    expect(await rowCounts()).toEqual(before);
    return response;
  }

  describe('POST /v1/orders', () => {
    it('answers 202 with the id, status received, priority, an RFC 3339 promise and both links', async () => {
      const before = Date.now();
      const response = await post(orderBody({ priority: 'essential' }));
      expect(response.statusCode, response.body).toBe(202);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const body = response.json();
      expect(body.id).toMatch(UUID);
      expect(body).toMatchObject({ status: 'received', priority: 'essential' });
      expect(body.promisedBy).toMatch(RFC3339_UTC);
      expect(Date.parse(body.promisedBy)).toBeGreaterThan(before);
      expect(body.links.self).toBe(`/v1/orders/${body.id}`);
      expect(body.links.tracking.startsWith(`${PUBLIC_URL}/v1/track/`)).toBe(true);
      const token = body.links.tracking.slice(`${PUBLIC_URL}/v1/track/`.length);
      expect(token).toMatch(TRACKING_TOKEN);
      expect(token).not.toContain(body.id);
      expect(token).not.toContain(body.id.replace(/-/g, ''));

      // The self link names the order the shop can read back.
      const read = await server.app.inject({ url: body.links.self, headers: shopHeaders(shop.apiKey) });
      expect(read.statusCode).toBe(200);
      expect(read.json()).toMatchObject({
        id: body.id,
        status: 'received',
        priority: 'essential',
        promisedBy: body.promisedBy,
      });
    });

    it('gives every order its own tracking token', async () => {
      const a = (await post(orderBody())).json();
      const b = (await post(orderBody())).json();
      expect(a.id).not.toBe(b.id);
      expect(a.links.tracking).not.toBe(b.links.tracking);
    });

    it('defaults priority to standard', async () => {
      const body = orderBody();
      delete (body as Record<string, unknown>).priority;
      const response = await post(body);
      expect(response.statusCode, response.body).toBe(202);
      expect(response.json().priority).toBe('standard');
      const [row] = await server.ctx.db.select().from(orders).where(eq(orders.id, response.json().id));
      expect(row.priority).toBe('standard');
    });

    it('accepts each listed priority', async () => {
      for (const priority of ['essential', 'express', 'standard']) {
        const response = await post(orderBody({ priority }));
        expect(response.statusCode, response.body).toBe(202);
        expect(response.json().priority).toBe(priority);
      }
    });

    it('records exactly what was ordered, with one received event', async () => {
      const items = [
        { sku: 'MASK-N95', quantity: 1 },
        { sku: 'GLOVE-M', quantity: 999 },
      ];
      const response = await post(orderBody({ items }));
      expect(response.statusCode, response.body).toBe(202);
      const id = response.json().id;
      const lines = await server.ctx.db.select().from(orderItems).where(eq(orderItems.orderId, id));
      expect(
        lines.sort((a, b) => a.line - b.line).map((l) => ({ sku: l.sku, quantity: l.quantity })),
      ).toEqual(items);
      const events = await server.ctx.db.select().from(orderEvents).where(eq(orderEvents.orderId, id));
      expect(events.map((e) => e.status)).toEqual(['received']);
    });

    it('accepts the boundaries: 100 lines, an Idempotency-Key of 200 characters', async () => {
      const hundred = Array.from({ length: 100 }, () => ({ sku: 'MASK-N95', quantity: 1 }));
      expect((await post(orderBody({ items: hundred }))).statusCode).toBe(202);
      expect((await post(orderBody(), 'k'.repeat(200))).statusCode).toBe(202);
    });
  });

  describe('idempotency', () => {
    it('answers a repeat of the same key and body 200 with the same order', async () => {
      const key = newKey();
      const body = orderBody();
      const first = await post(body, key);
      expect(first.statusCode).toBe(202);
      const second = await post(body, key);
      expect(second.statusCode, second.body).toBe(200);
      expect(second.json()).toEqual(first.json());
      const rows = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, key));
      expect(rows).toHaveLength(1);
    });

    it('treats key order and spacing as the same body', async () => {
      const key = newKey();
      const body = orderBody();
      const first = await post(JSON.stringify(body), key);
      expect(first.statusCode).toBe(202);

      const reversed = (value: unknown): unknown => {
        if (Array.isArray(value)) return value.map(reversed);
        if (value && typeof value === 'object') {
          return Object.fromEntries(
            Object.entries(value)
              .reverse()
              .map(([k, v]) => [k, reversed(v)]),
          );
        }
        return value;
      };
      const reordered = JSON.stringify(reversed(body), null, 4);
      expect(reordered).not.toBe(JSON.stringify(body));
      const second = await post(`\n  ${reordered}\n\n`, key);
      expect(second.statusCode, second.body).toBe(200);
      expect(second.json().id).toBe(first.json().id);
    });

    it('answers the same key with another body 409 idempotency_conflict and keeps the first order', async () => {
      const key = newKey();
      const body = orderBody();
      const first = await post(body, key);
      expect(first.statusCode).toBe(202);

      const conflicts = [
        orderBody({ externalId: body.externalId, items: [{ sku: 'MASK-N95', quantity: 3 }] }),
        { ...body, priority: 'express' },
        { ...body, items: [{ sku: 'GLOVE-M', quantity: 2 }] },
      ];
      for (const other of conflicts) {
        const response = await leavesNoTrace(() => post(other, key));
        expectProblem(response, 409, 'idempotency_conflict');
      }
      // The original body still answers the original order.
      const again = await post(body, key);
      expect(again.statusCode).toBe(200);
      expect(again.json().id).toBe(first.json().id);
    });

    it('answers concurrent duplicates with one 202, the rest 200, one order', async () => {
      const key = newKey();
      const body = orderBody({
        items: [
          { sku: 'MASK-N95', quantity: 2 },
          { sku: 'GLOVE-M', quantity: 1 },
        ],
      });
      const responses = await Promise.all(Array.from({ length: 10 }, () => post(body, key)));
      const statuses = responses.map((r) => r.statusCode);
      expect(
        statuses.filter((s) => s === 202),
        JSON.stringify(statuses),
      ).toHaveLength(1);
      expect(
        statuses.filter((s) => s === 200),
        JSON.stringify(statuses),
      ).toHaveLength(9);
      const ids = new Set(responses.map((r) => r.json().id));
      expect(ids.size).toBe(1);

      const rows = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, key));
      expect(rows).toHaveLength(1);
      expect(rows[0].id).toBe([...ids][0]);
      const lines = await server.ctx.db.select().from(orderItems).where(eq(orderItems.orderId, rows[0].id));
      expect(lines).toHaveLength(2);
      const events = await server.ctx.db
        .select()
        .from(orderEvents)
        .where(eq(orderEvents.orderId, rows[0].id));
      expect(events).toHaveLength(1);
    });

    it('answers concurrent requests with one key and different bodies with one order and 409s, never 5xx', async () => {
      const key = newKey();
      const bodies = Array.from({ length: 6 }, (_, i) =>
        orderBody({ items: [{ sku: 'MASK-N95', quantity: i + 1 }] }),
      );
      const responses = await Promise.all(bodies.map((b) => post(b, key)));
      const statuses = responses.map((r) => r.statusCode);
      expect(
        statuses.filter((s) => s === 202),
        JSON.stringify(statuses),
      ).toHaveLength(1);
      expect(
        statuses.filter((s) => s === 409),
        JSON.stringify(statuses),
      ).toHaveLength(5);
      for (const r of responses.filter((r) => r.statusCode === 409))
        expectProblem(r, 409, 'idempotency_conflict');
      const rows = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, key));
      expect(rows).toHaveLength(1);
    });

    it('keeps keys per shop: the same key at two shops makes two orders', async () => {
      const key = newKey();
      const body = orderBody();
      const mine = await post(body, key, shop.apiKey);
      const theirs = await post(body, key, otherShop.apiKey);
      expect(mine.statusCode).toBe(202);
      expect(theirs.statusCode).toBe(202);
      expect(mine.json().id).not.toBe(theirs.json().id);
      const rows = await server.ctx.db.select().from(orders).where(eq(orders.idempotencyKey, key));
      expect(rows.map((r) => r.shopId).sort()).toEqual([shop.id, otherShop.id].sort());
      // Each shop reads only its own.
      const cross = await server.app.inject({
        url: `/v1/orders/${theirs.json().id}`,
        headers: shopHeaders(shop.apiKey),
      });
      expectProblem(cross, 404);
    });

    it('requires an Idempotency-Key of 1–200 characters', async () => {
      const missing = await leavesNoTrace(() => post(orderBody(), null));
      expectValidationError(missing, 'headers/idempotency-key');
      const tooLong = await leavesNoTrace(() => post(orderBody(), 'k'.repeat(201)));
      expectProblem(tooLong, 400, 'validation_failed');
      const empty = await leavesNoTrace(() =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: { ...shopHeaders(shop.apiKey), 'idempotency-key': '', 'content-type': 'application/json' },
          payload: JSON.stringify(orderBody()),
        }),
      );
      expectProblem(empty, 400, 'validation_failed');
    });

    it('does not spend a key on a refused request', async () => {
      const key = newKey();
      expectProblem(
        await post(orderBody({ items: [{ sku: 'MASK-N95', quantity: 0 }] }), key),
        400,
        'validation_failed',
      );
      expectProblem(
        await post(orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }), key),
        422,
        'unknown_sku',
      );
      const accepted = await post(orderBody(), key);
      expect(accepted.statusCode, accepted.body).toBe(202);
    });
  });

  describe('authentication', () => {
    const send = (authorization?: string) =>
      server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: {
          ...(authorization === undefined ? {} : { authorization }),
          'idempotency-key': newKey(),
          'content-type': 'application/json',
        },
        payload: JSON.stringify(orderBody()),
      });

    it('answers no Authorization header 401 problem+json', async () => {
      expectProblem(await leavesNoTrace(() => send()), 401);
      const list = await server.app.inject({ url: '/v1/orders' });
      expectProblem(list, 401);
    });

    it('answers a wrong key 401', async () => {
      for (const authorization of [
        'Bearer nope',
        'Bearer',
        'Basic dXNlcjpwYXNz',
        shop.apiKey,
        `Bearer ${server.admin.authorization.slice(7)}`,
      ]) {
        expectProblem(await leavesNoTrace(() => send(authorization)), 401);
      }
    });

    it('answers a well-formed but unknown key 401, and a known key id with the wrong secret 401', async () => {
      const unknown = `sk_${'A'.repeat(12)}_${'b'.repeat(32)}`;
      expectProblem(await leavesNoTrace(() => send(`Bearer ${unknown}`)), 401);
      const [, keyId, secret] = /^sk_(.{12})_(.+)$/.exec(shop.apiKey)!;
      const wrongSecret = `sk_${keyId}_${secret.slice(0, -1)}${secret.endsWith('x') ? 'y' : 'x'}`;
      expectProblem(await leavesNoTrace(() => send(`Bearer ${wrongSecret}`)), 401);
      // The real key still works, and is taken whatever the scheme's case.
      expect((await send(`bearer ${shop.apiKey}`)).statusCode).toBe(202);
    });
  });

  describe('bad input leaves no trace', () => {
    const withBody = (mutate: (body: ReturnType<typeof orderBody>) => void) => {
      const body = orderBody();
      mutate(body);
      return body;
    };

    it('answers malformed JSON 400', async () => {
      for (const payload of ['{"externalId": "A-1",', '{not json}', "{'a': 1}", '[1, 2', 'undefined']) {
        const response = await leavesNoTrace(() => post(payload));
        expectProblem(response, 400);
      }
    });

    it('answers an empty or non-object body 400', async () => {
      expectProblem(await leavesNoTrace(() => post('')), 400);
      expectProblem(await leavesNoTrace(() => post('[]')), 400, 'validation_failed');
      expectProblem(await leavesNoTrace(() => post('"order"')), 400, 'validation_failed');
      expectProblem(await leavesNoTrace(() => post('null')), 400);
    });

    it('answers a body over 1 MiB 413', async () => {
      const body = orderBody({ externalId: 'x'.repeat(1024 * 1024 + 10) });
      const response = await leavesNoTrace(() => post(body));
      expectProblem(response, 413);
    });

    it('names a missing field in errors', async () => {
      const cases: [string, (b: ReturnType<typeof orderBody>) => void][] = [
        ['body/customer/name', (b) => delete (b.customer as Partial<typeof b.customer>).name],
        ['body/items', (b) => delete (b as Partial<typeof b>).items],
        ['body/externalId', (b) => delete (b as Partial<typeof b>).externalId],
        [
          'body/shippingAddress/region',
          (b) => delete (b.shippingAddress as Partial<typeof b.shippingAddress>).region,
        ],
        ['body/customer', (b) => delete (b as Partial<typeof b>).customer],
        ['body/items/0/sku', (b) => delete (b.items[0] as Partial<(typeof b.items)[0]>).sku],
      ];
      for (const [path, mutate] of cases) {
        const response = await leavesNoTrace(() => post(withBody(mutate)));
        expectValidationError(response, path);
      }
    });

    it('rejects a wrong type instead of coercing it', async () => {
      const cases: [string, Record<string, unknown>][] = [
        ['body/items/0/quantity', { items: [{ sku: 'MASK-N95', quantity: '2' }] }],
        ['body/items/0/quantity', { items: [{ sku: 'MASK-N95', quantity: 2.5 }] }],
        ['body/contactless', { contactless: 'true' }],
        ['body/contactless', { contactless: 1 }],
        ['body/externalId', { externalId: 10023 }],
        ['body/items', { items: { sku: 'MASK-N95', quantity: 1 } }],
      ];
      for (const [path, overrides] of cases) {
        const response = await leavesNoTrace(() => post(orderBody(overrides)));
        expectValidationError(response, path);
      }
    });

    it('rejects quantities outside 1–999', async () => {
      for (const quantity of [0, -1, 1000]) {
        const response = await leavesNoTrace(() =>
          post(orderBody({ items: [{ sku: 'MASK-N95', quantity }] })),
        );
        expectValidationError(response, 'body/items/0/quantity');
      }
    });

    it('rejects 0 items and 101 items', async () => {
      expectValidationError(await leavesNoTrace(() => post(orderBody({ items: [] }))), 'body/items');
      const many = Array.from({ length: 101 }, () => ({ sku: 'MASK-N95', quantity: 1 }));
      expectValidationError(await leavesNoTrace(() => post(orderBody({ items: many }))), 'body/items');
    });

    it('rejects a field the contract does not define, e.g. a misspelt priorty', async () => {
      const misspelt = withBody((b) => {
        delete (b as Partial<typeof b>).priority;
        (b as Record<string, unknown>).priorty = 'essential';
      });
      expectValidationError(await leavesNoTrace(() => post(misspelt)), 'body/priorty');
      const nested = withBody((b) => ((b.customer as Record<string, unknown>).nickname = 'Wei'));
      expectValidationError(await leavesNoTrace(() => post(nested)), 'body/customer/nickname');
      const inItem = withBody((b) => ((b.items[0] as Record<string, unknown>).price = 3));
      expectValidationError(await leavesNoTrace(() => post(inItem)), 'body/items/0/price');
    });

    it('rejects a value that is not listed', async () => {
      expectValidationError(
        await leavesNoTrace(() => post(orderBody({ priority: 'urgent' }))),
        'body/priority',
      );
      expectValidationError(await leavesNoTrace(() => post(orderBody({ locale: 'fr' }))), 'body/locale');
      expectValidationError(
        await leavesNoTrace(() => post(orderBody({ notify: { channels: ['pigeon'] } }))),
        'body/notify/channels/0',
      );
    });

    it('answers an unknown SKU 422 unknown_sku', async () => {
      const response = await leavesNoTrace(() =>
        post(
          orderBody({
            items: [
              { sku: 'MASK-N95', quantity: 1 },
              { sku: 'NO-SUCH-SKU', quantity: 1 },
            ],
          }),
        ),
      );
      const body = expectProblem(response, 422, 'unknown_sku');
      expect(body.detail).toContain('NO-SUCH-SKU');
    });
  });

  describe('POST /v1/orders/batch', () => {
    it('answers every order in request order: 202, 400 with its problem, 422 unknown_sku, 200 for a repeated key', async () => {
      const keyA = newKey();
      const valid = { idempotencyKey: keyA, ...orderBody() };
      const invalid = { idempotencyKey: newKey(), ...orderBody() };
      delete (invalid.customer as Partial<typeof invalid.customer>).name;
      const unknownSku = {
        idempotencyKey: newKey(),
        ...orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }),
      };
      const repeat = { ...valid };

      const before = await rowCounts();
      const response = await postBatch({ orders: [valid, invalid, unknownSku, repeat] });
      expect(response.statusCode, response.body).toBe(200);
      const { results } = response.json();
      expect(results).toHaveLength(4);
      expect(results.map((r: { status: number }) => r.status)).toEqual([202, 400, 422, 200]);

      expect(results[0].id).toMatch(UUID);
      expect(results[3].id).toBe(results[0].id);

      expect(results[1].id).toBeUndefined();
      expect(results[1].error).toMatchObject({ status: 400, code: 'validation_failed' });
      for (const field of ['type', 'title', 'detail', 'code'])
        expect(typeof results[1].error[field]).toBe('string');
      expect(results[1].error.errors.map((e: { path: string }) => e.path)).toContain('body/customer/name');

      expect(results[2].id).toBeUndefined();
      expect(results[2].error).toMatchObject({ status: 422, code: 'unknown_sku' });
      for (const field of ['type', 'title', 'detail', 'code'])
        expect(typeof results[2].error[field]).toBe('string');

      // Exactly one order was written, with its line and its received event.
      const after = await rowCounts();
      expect(after.orders - before.orders).toBe(1);
      expect(after.orderItems - before.orderItems).toBe(1);
      expect(after.orderEvents - before.orderEvents).toBe(1);
      const [row] = await server.ctx.db.select().from(orders).where(eq(orders.id, results[0].id));
      expect(row).toMatchObject({ shopId: shop.id, idempotencyKey: keyA, externalId: valid.externalId });
    });

    it('answers a batch entry as a single POST would: same key + other body 409, missing key 400', async () => {
      const key = newKey();
      const body = orderBody();
      const response = await postBatch({
        orders: [
          { idempotencyKey: key, ...body },
          { idempotencyKey: key, ...body, priority: 'express' },
          { ...orderBody() },
          { idempotencyKey: newKey(), ...orderBody({ priorty: 'essential' }) },
        ],
      });
      expect(response.statusCode, response.body).toBe(200);
      const { results } = response.json();
      expect(results.map((r: { status: number }) => r.status)).toEqual([202, 409, 400, 400]);
      expect(results[1].error).toMatchObject({ status: 409, code: 'idempotency_conflict' });
      expect(results[2].error.code).toBe('validation_failed');
      expect(results[2].error.errors.map((e: { path: string }) => e.path)).toContain('body/idempotencyKey');
      expect(results[3].error.errors.map((e: { path: string }) => e.path)).toContain('body/priorty');
    });

    it('shares the key space with the Idempotency-Key header, both ways', async () => {
      const headerKey = newKey();
      const headerBody = orderBody();
      const single = await post(headerBody, headerKey);
      expect(single.statusCode).toBe(202);

      const batchKey = newKey();
      const batchBody = orderBody();
      const batch = await postBatch({
        orders: [
          { idempotencyKey: headerKey, ...headerBody },
          { idempotencyKey: headerKey, ...orderBody() },
          { idempotencyKey: batchKey, ...batchBody },
        ],
      });
      const { results } = batch.json();
      expect(results.map((r: { status: number }) => r.status)).toEqual([200, 409, 202]);
      expect(results[0].id).toBe(single.json().id);
      expect(results[1].error.code).toBe('idempotency_conflict');

      const again = await post(batchBody, batchKey);
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json().id).toBe(results[2].id);
      expectProblem(await post(orderBody(), batchKey), 409, 'idempotency_conflict');

      // Another shop's batch with the same keys makes its own orders.
      const theirs = await postBatch(
        { orders: [{ idempotencyKey: headerKey, ...headerBody }] },
        otherShop.apiKey,
      );
      expect(theirs.json().results[0].status).toBe(202);
      expect(theirs.json().results[0].id).not.toBe(single.json().id);
    });

    it('answers 0 orders and 501 orders 400, writing nothing', async () => {
      expectValidationError(await leavesNoTrace(() => postBatch({ orders: [] })), 'body/orders');
      const many = Array.from({ length: 501 }, () => ({ idempotencyKey: newKey(), ...orderBody() }));
      expectValidationError(await leavesNoTrace(() => postBatch({ orders: many })), 'body/orders');
      expectValidationError(await leavesNoTrace(() => postBatch({})), 'body/orders');
      expectProblem(
        await leavesNoTrace(() =>
          postBatch({ orders: [{ idempotencyKey: newKey(), ...orderBody() }], extra: 1 }),
        ),
        400,
        'validation_failed',
      );
    });

    it('answers a batch without a valid shop key 401 and malformed JSON 400', async () => {
      const unauthenticated = await leavesNoTrace(() =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders/batch',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ orders: [{ idempotencyKey: newKey(), ...orderBody() }] }),
        }),
      );
      expectProblem(unauthenticated, 401);
      expectProblem(await leavesNoTrace(() => postBatch('{"orders": [')), 400);
    });
  });
});
