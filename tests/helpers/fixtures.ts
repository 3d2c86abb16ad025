import { randomBytes } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { orders } from '../../src/db/schema.js';
import {
  startCarrierSimulator,
  type CarrierSimulator,
  type CarrierSimulatorOptions,
} from '../../src/demo/carrier-simulator.js';
import { ADMIN_TOKEN, waitFor } from './harness.js';

export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

export function shopHeaders(apiKey: string, idempotencyKey?: string): Record<string, string> {
  return {
    authorization: `Bearer ${apiKey}`,
    ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
  };
}

export const newKey = () => `key-${randomBytes(8).toString('hex')}`;

export function orderBody(overrides: Record<string, unknown> = {}) {
  return {
    externalId: `A-${randomBytes(4).toString('hex')}`,
    priority: 'standard',
    customer: { name: 'Li Wei', phone: '+8613800000000', email: 'li.wei@example.com' },
    shippingAddress: {
      region: 'shanghai-pudong',
      line1: '1 Century Avenue',
      city: 'Shanghai',
      postalCode: '200120',
      country: 'CN',
    },
    items: [{ sku: 'MASK-N95', quantity: 2 }],
    contactless: true,
    locale: 'en',
    ...overrides,
  };
}

async function adminPost(
  app: FastifyInstance,
  url: string,
  payload: unknown,
  method: 'POST' | 'PUT' = 'POST',
) {
  const response = await app.inject({ method, url, headers: admin, payload: payload as object });
  if (response.statusCode >= 300)
    throw new Error(`${method} ${url} → ${response.statusCode} ${response.body}`);
  return response.json();
}

export async function createShop(app: FastifyInstance, body: Record<string, unknown> = {}) {
  return (await adminPost(app, '/v1/admin/shops', { name: 'Test Shop', ...body })) as {
    id: string;
    apiKey: string;
    webhookSecret: string;
  };
}

export async function createWarehouse(app: FastifyInstance, id: string, region = 'shanghai-pudong') {
  return adminPost(app, '/v1/admin/warehouses', { id, name: `Warehouse ${id}`, region });
}

export async function setStock(app: FastifyInstance, warehouseId: string, sku: string, quantity: number) {
  return adminPost(app, '/v1/admin/inventory', { warehouseId, sku, quantity }, 'PUT');
}

export async function createCarrier(app: FastifyInstance, body: Record<string, unknown>) {
  return adminPost(app, '/v1/admin/carriers', {
    name: 'Carrier',
    kind: 'http',
    webhookSecret: 'carrier-secret-123',
    regions: ['*'],
    rank: 1,
    ...body,
  });
}

/**
 * Starts a carrier simulator and registers it through the admin API under the simulator's own id,
 * URL, webhook secret and API key; `carrier` adds to or overrides that registration body.
 */
export async function startSimulatedCarrier(
  app: FastifyInstance,
  simulator: CarrierSimulatorOptions,
  carrier: Record<string, unknown> = {},
): Promise<CarrierSimulator> {
  const started = await startCarrierSimulator(simulator);
  try {
    await createCarrier(app, {
      id: simulator.carrierId,
      baseUrl: started.url,
      webhookSecret: simulator.webhookSecret,
      ...(simulator.apiKey === undefined ? {} : { apiKey: simulator.apiKey }),
      ...carrier,
    });
  } catch (error) {
    await started.close();
    throw error;
  }
  return started;
}

/** Creates a shop (`shop` is its request body) and a warehouse holding `stock` (quantity by SKU); returns the shop. */
export async function seedShopWithStock(
  app: FastifyInstance,
  seed: { warehouseId: string; stock: Record<string, number>; shop?: Record<string, unknown> },
) {
  const shop = await createShop(app, seed.shop);
  await createWarehouse(app, seed.warehouseId);
  for (const [sku, quantity] of Object.entries(seed.stock))
    await setStock(app, seed.warehouseId, sku, quantity);
  return shop;
}

/** POST /v1/orders with a fresh Idempotency-Key; expects 202 and returns the answer. */
export async function placeOrder(app: FastifyInstance, apiKey: string, body: Record<string, unknown>) {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers: shopHeaders(apiKey, newKey()),
    payload: body,
  });
  expect(response.statusCode, response.body).toBe(202);
  return response.json();
}

/** GET /v1/orders/{id} as the shop; expects 200 and returns the order. */
export async function getOrder(app: FastifyInstance, apiKey: string, id: string) {
  const response = await app.inject({ url: `/v1/orders/${id}`, headers: shopHeaders(apiKey) });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

/** Reads the order through the API until it has `status`; returns it then. */
export async function waitForOrderStatus(app: FastifyInstance, apiKey: string, id: string, status: string) {
  return waitFor(async () => {
    const order = await getOrder(app, apiKey, id);
    return order.status === status ? order : undefined;
  }, `order ${id} to be ${status}`);
}

/** The order's status as stored, read from the database (not through the rate-limited API). */
export async function storedStatus(db: Db, id: string): Promise<string | undefined> {
  const [row] = await db.select({ status: orders.status }).from(orders).where(eq(orders.id, id));
  return row?.status;
}

/** Whether every one of the orders is stored with `status` (read from the database). */
export async function allStoredWithStatus(db: Db, ids: string[], status: string): Promise<boolean> {
  const rows = await db.select({ status: orders.status }).from(orders).where(inArray(orders.id, ids));
  return rows.length === ids.length && rows.every((r) => r.status === status);
}
