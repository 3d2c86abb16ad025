import { randomBytes, randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from './client.js';
import { recordEvent, type OrderRow } from './orders.js';
import { carriers, inventory, orderItems, orders } from './schema.js';
import type { Address, Customer } from './schema.js';
import { requestHash } from '../domain/canonical.js';
import { promiseAt, transitHoursFor } from '../domain/promise.js';
import type { Priority } from '../domain/priority.js';
import { AppError } from '../errors.js';
import { CUSTOMER_CHANNELS } from './notifications.js';

/** The body of POST /v1/orders, after schema validation. */
export interface NewOrder {
  externalId: string;
  priority?: Priority;
  customer: Customer;
  shippingAddress: Address;
  items: { sku: string; quantity: number }[];
  contactless?: boolean;
  locale?: 'zh-CN' | 'en';
  notify?: { channels?: ('sms' | 'email')[] };
}

export interface IntakeResult {
  /** true: this request created the order (202); false: a repeat of an earlier one (200). */
  created: boolean;
  order: OrderRow;
  notificationIds: string[];
}

/**
 * Commits an order under the shop's idempotency key. The unique (shop, key) constraint decides
 * between concurrent duplicates: the loser's insert waits for the winner's commit, inserts
 * nothing, and answers the winner's order.
 */
export async function createOrder(
  db: Db,
  shopId: string,
  idempotencyKey: string,
  body: NewOrder,
  defaultTransitHours: number,
): Promise<IntakeResult> {
  const hash = requestHash(body);
  const existing = await findByKey(db, shopId, idempotencyKey);
  if (existing) return repeat(existing, hash);

  await assertKnownSkus(
    db,
    body.items.map((i) => i.sku),
  );

  const region = body.shippingAddress.region;
  const carrierRows = await db.select().from(carriers);
  const now = new Date(); // set here, not by the database, so cursors keep millisecond precision
  const promisedBy = promiseAt(now, transitHoursFor(carrierRows, region, defaultTransitHours));

  const result = await db.transaction(async (tx) => {
    const [order] = await tx
      .insert(orders)
      .values({
        id: randomUUID(),
        shopId,
        idempotencyKey,
        requestHash: hash,
        externalId: body.externalId,
        status: 'received',
        priority: body.priority ?? 'standard',
        customer: body.customer,
        shippingAddress: body.shippingAddress,
        region,
        contactless: body.contactless ?? false,
        locale: body.locale ?? 'zh-CN',
        notifyChannels: body.notify?.channels ?? [...CUSTOMER_CHANNELS],
        trackingToken: randomBytes(18).toString('base64url'),
        promisedBy,
        initialPromisedBy: promisedBy,
        createdAt: now,
        updatedAt: now,
      })
      .onConflictDoNothing({ target: [orders.shopId, orders.idempotencyKey] })
      .returning();
    if (!order) return null; // a concurrent request with this key committed first
    await tx
      .insert(orderItems)
      .values(body.items.map((item, line) => ({ orderId: order.id, line, ...item })));
    const notificationIds = await recordEvent(tx, order, 'received', now, null);
    return { created: true, order, notificationIds };
  });
  if (result) return result;

  const winner = await findByKey(db, shopId, idempotencyKey);
  if (!winner) throw new Error('idempotency key conflict without a committed order');
  return repeat(winner, hash);
}

async function findByKey(db: Db, shopId: string, key: string): Promise<OrderRow | undefined> {
  const [order] = await db
    .select()
    .from(orders)
    .where(and(eq(orders.shopId, shopId), eq(orders.idempotencyKey, key)));
  return order;
}

function repeat(order: OrderRow, hash: string): IntakeResult {
  if (order.requestHash !== hash) {
    throw new AppError(
      409,
      'idempotency_conflict',
      'This Idempotency-Key was already used with a different request body.',
    );
  }
  return { created: false, order, notificationIds: [] };
}

/** A SKU is known once any warehouse lists it, even at 0. */
async function assertKnownSkus(db: Db, skus: string[]): Promise<void> {
  const wanted = [...new Set(skus)];
  const known = await db
    .selectDistinct({ sku: inventory.sku })
    .from(inventory)
    .where(inArray(inventory.sku, wanted));
  const knownSet = new Set(known.map((k) => k.sku));
  const unknown = wanted.filter((s) => !knownSet.has(s));
  if (unknown.length > 0) {
    throw new AppError(
      422,
      'unknown_sku',
      `Unknown SKU: ${unknown.join(', ')}.`,
      unknownSkuErrors(skus, knownSet),
    );
  }
}

function unknownSkuErrors(skus: string[], known: Set<string>) {
  return skus.flatMap((sku, i) =>
    known.has(sku) ? [] : [{ path: `body/items/${i}/sku`, message: `unknown SKU "${sku}"` }],
  );
}
