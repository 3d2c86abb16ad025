import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ADMIN_TOKEN } from './harness.js';

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
