/**
 * The OpenAPI document describes every answer, and the response schemas (which Fastify also
 * serializes with: fast-json-stringify drops any property a schema does not list) keep every
 * field the contract names. The field lists below are copied from CONTRACT.md section 3.
 */
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarrierSimulator } from '../../src/demo/carrier-simulator.js';
import {
  admin,
  newKey,
  orderBody,
  seedShopWithStock,
  shopHeaders,
  startSimulatedCarrier,
  waitForOrderStatus,
} from '../helpers/fixtures.js';
import { startTestServer, testDatabase, type TestDatabase, type TestServer } from '../helpers/harness.js';
import { expectProblem } from '../helpers/problem.js';

const SECRET = 'openapi-carrier-secret';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

// The contract's fields, answer by answer.
const ACCEPTED = ['id', 'status', 'priority', 'promisedBy', 'links'];
const LINKS = ['self', 'tracking'];
const ORDER = [
  'id',
  'externalId',
  'status',
  'priority',
  'promisedBy',
  'initialPromisedBy',
  'createdAt',
  'updatedAt',
  'deliveredAt',
  'failureReason',
  'links',
  'items',
  'allocations',
  'shipments',
  'events',
];
const ORDER_ITEM = ['sku', 'quantity'];
const ALLOCATION = ['warehouseId', 'sku', 'quantity'];
const ORDER_SHIPMENT = ['id', 'carrierId', 'trackingNumber', 'status', 'estimatedDeliveryAt'];
const ORDER_EVENT = ['status', 'at', 'detail'];
const LIST_ITEM = ['id', 'externalId', 'status', 'priority', 'promisedBy', 'createdAt'];
const PAGE = ['items', 'nextCursor'];
const TRACK = ['status', 'promisedBy', 'deliveredAt', 'events', 'shipments'];
const TRACK_EVENT = ['status', 'at'];
const TRACK_SHIPMENT = ['carrierId', 'trackingNumber', 'status', 'estimatedDeliveryAt'];
// "each carrier as created (without apiKey and webhookSecret) plus enabled, breaker and successRate"
const CARRIER = [
  'id',
  'name',
  'kind',
  'baseUrl',
  'regions',
  'rank',
  'rateLimitPerSecond',
  'transitHours',
  'enabled',
  'breaker',
  'successRate',
];
const BREAKER = ['state', 'since'];
const INVENTORY = [
  'warehouseId',
  'sku',
  'onHand',
  'reserved',
  'available',
  'inbound',
  'inboundEta',
  'coverHours',
];
const PROBLEM = ['type', 'title', 'status', 'detail', 'code'];
const FIELD_ISSUE = ['path', 'message'];

const keys = (value: object) => Object.keys(value).sort();
const exactly = (fields: string[]) => [...fields].sort();

type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema; nullable?: boolean };
type Operation = {
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
};

describe('OpenAPI document and answers', () => {
  let db: TestDatabase;
  let server: TestServer;
  let carrier: CarrierSimulator;
  let shop: { id: string; apiKey: string; webhookSecret: string };
  let doc: { paths: Record<string, Record<string, Operation>> };

  const inject = (url: string, headers: Record<string, string>) => server.app.inject({ url, headers });
  const json = (response: LightMyRequestResponse, status: number) => {
    expect(response.statusCode, response.body).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    return response.json();
  };

  beforeAll(async () => {
    db = await testDatabase();
    server = await startTestServer(db.database);
    carrier = await startSimulatedCarrier(server.app, {
      carrierId: 'openapi-carrier',
      webhookSecret: SECRET,
      eventsBaseUrl: server.url,
    });
    shop = await seedShopWithStock(server.app, { warehouseId: 'wh-openapi', stock: { 'MASK-N95': 100 } });
    const response = await fetch(`${server.url}/docs/json`);
    expect(response.status).toBe(200);
    doc = await response.json();
  });

  afterAll(async () => {
    await carrier?.close();
    await server?.close();
    await db?.drop();
  });

  describe('/docs/json', () => {
    const operations = () =>
      Object.entries(doc.paths).flatMap(([path, item]) =>
        METHODS.filter((m) => item[m]).map((method) => ({ path, method, operation: item[method] })),
      );

    it('writes paths as the contract does (/v1/orders/{id})', () => {
      const paths = Object.keys(doc.paths);
      expect(paths).toContain('/v1/orders/{id}');
      expect(paths).toContain('/v1/track/{token}');
      expect(paths).toContain('/v1/carriers/{carrierId}/events');
      for (const path of paths) expect(path).not.toMatch(/\/:/);
    });

    it('describes a 2xx answer with its properties for every path and method (/metrics: text, 204: none)', () => {
      const all = operations();
      expect(all.length).toBeGreaterThanOrEqual(15);
      const undescribed: string[] = [];
      for (const { path, method, operation } of all) {
        const where = `${method.toUpperCase()} ${path}`;
        const success = Object.entries(operation.responses ?? {}).filter(([status]) =>
          /^2\d\d$/.test(status),
        );
        if (success.length === 0) undescribed.push(`${where}: no 2xx response`);
        for (const [status, response] of success) {
          if (status === '204') {
            if (response.content !== undefined) undescribed.push(`${where} 204: has a body`);
          } else if (path === '/metrics') {
            if (response.content?.['text/plain']?.schema?.type !== 'string')
              undescribed.push(`${where} ${status}: not text/plain`);
          } else {
            const schema = response.content?.['application/json']?.schema;
            if (schema?.type !== 'object' || Object.keys(schema.properties ?? {}).length === 0)
              undescribed.push(`${where} ${status}: no object schema with properties`);
          }
        }
      }
      expect(undescribed).toEqual([]);
    });

    it('describes every error answer as an application/problem+json Problem', () => {
      const undescribed: string[] = [];
      for (const { path, method, operation } of operations()) {
        if (path === '/healthz' || path === '/metrics') continue;
        const where = `${method.toUpperCase()} ${path}`;
        const errors = Object.entries(operation.responses ?? {}).filter(([status]) =>
          /^[45]\d\d$/.test(status),
        );
        if (errors.length === 0) undescribed.push(`${where}: no error response`);
        for (const [status, response] of errors) {
          const schema = response.content?.['application/problem+json']?.schema;
          if (keys(schema?.properties ?? {}).join() !== exactly([...PROBLEM, 'errors']).join())
            undescribed.push(`${where} ${status}: not a Problem`);
        }
      }
      expect(undescribed).toEqual([]);
    });

    it('lists the errors the contract gives each route', () => {
      const statuses = (path: string, method: (typeof METHODS)[number]) =>
        Object.keys(doc.paths[path]?.[method]?.responses ?? {});
      expect(statuses('/v1/orders', 'post')).toEqual(
        expect.arrayContaining(['200', '202', '400', '401', '409', '413', '422', '429', '503']),
      );
      expect(statuses('/v1/orders/{id}', 'get')).toEqual(
        expect.arrayContaining(['200', '401', '404', '429']),
      );
      expect(statuses('/v1/orders/{id}/cancel', 'post')).toEqual(
        expect.arrayContaining(['200', '404', '409']),
      );
      expect(statuses('/v1/orders/{id}/feedback', 'post')).toEqual(
        expect.arrayContaining(['201', '404', '409']),
      );
      expect(statuses('/v1/track/{token}', 'get')).toEqual(expect.arrayContaining(['200', '404']));
      expect(statuses('/v1/carriers/{carrierId}/events', 'post')).toEqual(
        expect.arrayContaining(['200', '400', '401', '404', '409']),
      );
      expect(statuses('/v1/admin/inventory', 'put')).toEqual(
        expect.arrayContaining(['200', '401', '409', '422']),
      );
      expect(statuses('/readyz', 'get')).toEqual(expect.arrayContaining(['200', '503']));
    });

    it('documents nullable times as nullable date-times', () => {
      const order = doc.paths['/v1/orders/{id}'].get.responses?.['200'].content?.['application/json'].schema;
      expect(order?.properties?.deliveredAt).toMatchObject({ type: 'string', nullable: true });
      expect(order?.properties?.promisedBy).toMatchObject({ type: 'string' });
      expect(order?.properties?.promisedBy.nullable).not.toBe(true);
      const list = doc.paths['/v1/orders'].get.responses?.['200'].content?.['application/json'].schema;
      expect(list?.properties?.nextCursor).toMatchObject({ type: 'string', nullable: true });
    });
  });

  describe('real answers keep every field the contract names', () => {
    let accepted: { id: string; links: { self: string; tracking: string } };

    it('POST /v1/orders 202, and 200 for the same key and body', async () => {
      const key = newKey();
      const body = orderBody();
      const post = () =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: shopHeaders(shop.apiKey, key),
          payload: body,
        });
      accepted = json(await post(), 202);
      expect(keys(accepted)).toEqual(exactly(ACCEPTED));
      expect(keys(accepted.links)).toEqual(exactly(LINKS));
      expect(accepted).toMatchObject({ status: 'received', priority: 'standard' });
      expect((accepted as unknown as { promisedBy: string }).promisedBy).toMatch(RFC3339_UTC);
      expect(accepted.links.self).toBe(`/v1/orders/${accepted.id}`);
      expect(accepted.links.tracking).toMatch(/\/v1\/track\/[A-Za-z0-9_-]{22,}$/);
      const again = json(await post(), 200);
      expect(keys(again)).toEqual(exactly(ACCEPTED));
      expect(again.id).toBe(accepted.id);
    });

    it('GET /v1/orders/{id}: the order, its parcels and timeline; null stays null', async () => {
      const fresh = json(await inject(`/v1/orders/${accepted.id}`, shopHeaders(shop.apiKey)), 200);
      expect(keys(fresh)).toEqual(exactly(ORDER));
      expect(fresh.failureReason).toBeNull();

      const order = await waitForOrderStatus(server.app, shop.apiKey, accepted.id, 'delivered');
      expect(keys(order)).toEqual(exactly(ORDER));
      expect(keys(order.links)).toEqual(exactly(LINKS));
      for (const field of ['promisedBy', 'initialPromisedBy', 'createdAt', 'updatedAt', 'deliveredAt'])
        expect(order[field], field).toMatch(RFC3339_UTC);
      expect(order.failureReason).toBeNull();
      expect(order.items).toHaveLength(1);
      for (const item of order.items) expect(keys(item)).toEqual(exactly(ORDER_ITEM));
      expect(order.allocations.length).toBeGreaterThan(0);
      for (const allocation of order.allocations) expect(keys(allocation)).toEqual(exactly(ALLOCATION));
      expect(order.shipments.length).toBeGreaterThan(0);
      for (const parcel of order.shipments) {
        expect(keys(parcel)).toEqual(exactly(ORDER_SHIPMENT));
        expect(parcel.carrierId).toBe('openapi-carrier');
        expect(typeof parcel.trackingNumber).toBe('string');
        expect(parcel.estimatedDeliveryAt).toMatch(RFC3339_UTC);
      }
      expect(order.events.map((e: { status: string }) => e.status)).toEqual(
        expect.arrayContaining(['received', 'allocated', 'dispatched', 'delivered']),
      );
      for (const event of order.events) {
        expect(keys(event)).toEqual(exactly(ORDER_EVENT));
        expect(event.at).toMatch(RFC3339_UTC);
      }
    });

    it('GET /v1/orders: items and nextCursor (null on the last page, a string otherwise)', async () => {
      await server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: shopHeaders(shop.apiKey, newKey()),
        payload: orderBody(),
      });
      const first = json(await inject('/v1/orders?limit=1', shopHeaders(shop.apiKey)), 200);
      expect(keys(first)).toEqual(exactly(PAGE));
      expect(typeof first.nextCursor).toBe('string');
      for (const item of first.items) expect(keys(item)).toEqual(exactly(LIST_ITEM));
      const all = json(await inject('/v1/orders?limit=100', shopHeaders(shop.apiKey)), 200);
      expect(all.nextCursor).toBeNull();
      expect(all.items.length).toBeGreaterThanOrEqual(2);
      for (const item of all.items) expect(keys(item)).toEqual(exactly(LIST_ITEM));
    });

    it('GET /v1/track/{token}: status, promise, timeline and parcels, nothing personal', async () => {
      const token = accepted.links.tracking.split('/').pop() as string;
      const response = await inject(`/v1/track/${token}`, {});
      const tracking = json(response, 200);
      expect(keys(tracking)).toEqual(exactly(TRACK));
      expect(tracking.status).toBe('delivered');
      expect(tracking.deliveredAt).toMatch(RFC3339_UTC);
      for (const event of tracking.events) expect(keys(event)).toEqual(exactly(TRACK_EVENT));
      expect(tracking.shipments.length).toBeGreaterThan(0);
      for (const parcel of tracking.shipments) expect(keys(parcel)).toEqual(exactly(TRACK_SHIPMENT));
      expect(response.body).not.toContain('Li Wei');
      expect(response.body).not.toContain('+8613800000000');
    });

    it('GET /v1/admin/carriers: each carrier as created plus enabled, breaker and successRate', async () => {
      const list = json(await inject('/v1/admin/carriers', admin), 200);
      expect(keys(list)).toEqual(exactly(PAGE));
      expect(list.nextCursor).toBeNull();
      const mine = list.items.find((c: { id: string }) => c.id === 'openapi-carrier');
      expect(mine).toBeDefined();
      for (const item of list.items) {
        expect(keys(item)).toEqual(exactly(CARRIER));
        expect(keys(item.breaker)).toEqual(exactly(BREAKER));
      }
      expect(mine).toMatchObject({ kind: 'http', regions: ['*'], enabled: true, rateLimitPerSecond: null });
      // One booking answered 201 by now: a rate, not null and not coerced to an integer.
      expect(mine.successRate).toBe(1);
      expect(mine.breaker.since === null || RFC3339_UTC.test(mine.breaker.since)).toBe(true);
    });

    it('admin answers: shop, warehouse, inventory, overdue parcels', async () => {
      const created = json(
        await server.app.inject({
          method: 'POST',
          url: '/v1/admin/shops',
          headers: admin,
          payload: { name: 'S' },
        }),
        201,
      );
      expect(keys(created)).toEqual(expect.arrayContaining(['id', 'apiKey', 'webhookSecret']));
      expect(created.webhookUrl).toBeNull();

      const warehouse = json(
        await server.app.inject({
          method: 'POST',
          url: '/v1/admin/warehouses',
          headers: admin,
          payload: { name: 'W', region: 'shanghai-pudong' },
        }),
        201,
      );
      expect(keys(warehouse)).toEqual(exactly(['id', 'name', 'region', 'supplierId']));
      expect(warehouse.supplierId).toBeNull();

      const row = json(
        await server.app.inject({
          method: 'PUT',
          url: '/v1/admin/inventory',
          headers: admin,
          payload: { warehouseId: warehouse.id, sku: 'GLOVE-L', quantity: 7 },
        }),
        200,
      );
      expect(keys(row)).toEqual(expect.arrayContaining(INVENTORY));
      expect(row).toMatchObject({ onHand: 7, reserved: 0, available: 7, inbound: 0, inboundEta: null });

      const stock = json(await inject(`/v1/admin/inventory?warehouseId=${warehouse.id}`, admin), 200);
      expect(keys(stock)).toEqual(exactly(PAGE));
      expect(stock.items).toHaveLength(1);
      expect(keys(stock.items[0])).toEqual(expect.arrayContaining(INVENTORY));

      const overdue = json(await inject('/v1/admin/shipments?overdue=true', admin), 200);
      expect(keys(overdue)).toEqual(exactly(PAGE));
    });

    it('service answers: /healthz and /readyz', async () => {
      expect(json(await inject('/healthz', {}), 200)).toEqual({ status: 'ok' });
      expect(json(await inject('/readyz', {}), 200)).toEqual({
        status: 'ready',
        redis: 'up',
        database: 'up',
      });
    });
  });

  describe('error answers keep every problem field', () => {
    it('404 for an order that is not the shop’s', async () => {
      const response = await inject(`/v1/orders/${randomUUID()}`, shopHeaders(shop.apiKey));
      const problem = expectProblem(response, 404, 'not_found');
      expect(keys(problem)).toEqual(exactly(PROBLEM));
      expect(problem.type).toBe('urn:surgeline:problem:not_found');
    });

    it('400 validation_failed with errors [{ path, message }]', async () => {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: shopHeaders(shop.apiKey, newKey()),
        payload: orderBody({ priorty: 'express', items: [] }),
      });
      const problem = expectProblem(response, 400, 'validation_failed');
      expect(keys(problem)).toEqual(exactly([...PROBLEM, 'errors']));
      expect(problem.errors?.length).toBeGreaterThanOrEqual(2);
      for (const issue of problem.errors ?? []) expect(keys(issue)).toEqual(exactly(FIELD_ISSUE));
      expect(problem.errors?.map((e) => e.path)).toEqual(
        expect.arrayContaining(['body/priorty', 'body/items']),
      );
    });

    it('401, 409 and 422 keep their fields and codes', async () => {
      const unauthorized = expectProblem(await inject('/v1/orders', {}), 401);
      expect(keys(unauthorized)).toEqual(exactly(PROBLEM));

      const key = newKey();
      const post = (payload: object) =>
        server.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: shopHeaders(shop.apiKey, key),
          payload,
        });
      json(await post(orderBody()), 202);
      const conflict = expectProblem(await post(orderBody()), 409, 'idempotency_conflict');
      expect(keys(conflict)).toEqual(exactly(PROBLEM));

      const unknown = await server.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: shopHeaders(shop.apiKey, newKey()),
        payload: orderBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }),
      });
      const problem = expectProblem(unknown, 422, 'unknown_sku');
      expect(keys(problem)).toEqual(expect.arrayContaining(PROBLEM));
    });

    it('batch results carry each entry’s problem whole', async () => {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/orders/batch',
        headers: shopHeaders(shop.apiKey),
        payload: {
          orders: [
            { idempotencyKey: newKey(), ...orderBody() },
            { idempotencyKey: newKey(), ...orderBody({ items: [] }) },
          ],
        },
      });
      const { results } = json(response, 200);
      expect(results).toHaveLength(2);
      expect(keys(results[0])).toEqual(['id', 'status']);
      expect(results[0].status).toBe(202);
      expect(keys(results[1])).toEqual(['error', 'status']);
      expect(keys(results[1].error)).toEqual(exactly([...PROBLEM, 'errors']));
      expect(keys(results[1].error.errors[0])).toEqual(exactly(FIELD_ISSUE));
    });

    it('a carrier event with a bad signature: 401 problem+json', async () => {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/carriers/openapi-carrier/events',
        headers: { 'content-type': 'application/json', 'x-signature': 'sha256=00' },
        payload: JSON.stringify({ trackingNumber: 'T', status: 'in_transit', at: new Date().toISOString() }),
      });
      expect(keys(expectProblem(response, 401, 'invalid_signature'))).toEqual(exactly(PROBLEM));
    });
  });
});
